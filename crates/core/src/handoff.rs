//! Human handoff: a conversation is answered by its agent or by people.
//!
//! A conversation's [`Handler`] says who answers: `agent` (runs start on every message) or
//! `human` (messages are stored for staff; no run starts). It becomes `human` when the agent
//! calls `transfer_to_human` or the visitor asks for a person, and then *waits*
//! (`waiting_since`) until a staff member takes it ([`Assignee`], one at a time), or until
//! the agent's wait runs out, when the agent is told and goes on. Staff hand it back to the
//! agent, which continues with the whole conversation (staff replies included) as history.
//!
//! Everything that happens to a conversation besides its runs — asked for a person, taken,
//! a staff reply, an internal note, handed back — is a [`ConversationEvent`] with its own
//! sequence number: the conversation's timeline and audit trail, and what its followers
//! (the widget, the inbox) replay from `Last-Event-ID`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::id::ConversationId;
use crate::time::Timestamp;

/// Who answers a conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Handler {
    #[default]
    Agent,
    Human,
}

impl Handler {
    pub fn as_str(self) -> &'static str {
        match self {
            Handler::Agent => "agent",
            Handler::Human => "human",
        }
    }

    pub fn parse(value: &str) -> Self {
        if value == "human" {
            Handler::Human
        } else {
            Handler::Agent
        }
    }
}

/// The person who holds a conversation (a staff member of the tenant, or someone of the
/// tenant's own helpdesk named through the API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Assignee {
    /// A user id (`usr_…`) for the dashboard's staff; the helpdesk's own id otherwise.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

impl Assignee {
    /// Checks a name and avatar given through the API.
    pub fn validate(&self) -> Result<()> {
        crate::validate::non_empty("assignee.id", &self.id, 200)?;
        crate::validate::non_empty("assignee.name", &self.name, 200)?;
        if let Some(url) = &self.avatar_url {
            check_avatar("assignee.avatar_url", url)?;
        }
        Ok(())
    }
}

/// An avatar is an absolute `http(s)` URL.
pub fn check_avatar(field: &str, url: &str) -> Result<()> {
    crate::validate::http_url(field, url)
}

/// Who wrote a message, when it is not the agent or the end user: a staff member's reply
/// is stored as the assistant's side of the conversation, marked with its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Author {
    /// Always `staff`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Their id; left out of what end users see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

impl Author {
    pub fn staff(assignee: &Assignee) -> Self {
        Self {
            kind: "staff".to_owned(),
            id: Some(assignee.id.clone()),
            name: assignee.name.clone(),
            avatar_url: assignee.avatar_url.clone(),
        }
    }
}

/// What happened to a conversation besides its runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum EventKind {
    /// The agent or the visitor asked for a person: the conversation waits.
    #[serde(rename = "handoff.requested")]
    Requested,
    /// A staff member took the conversation ("a person joined").
    #[serde(rename = "handoff.taken")]
    Taken,
    /// A message was stored while people handle the conversation (a staff reply, or the
    /// visitor's message that started no run).
    #[serde(rename = "message.created")]
    Message,
    /// An internal note between staff: never sent to the visitor or the model.
    #[serde(rename = "note.created")]
    Note,
    /// Handed back to the agent ("the assistant is back").
    #[serde(rename = "handoff.returned")]
    Returned,
    /// Nobody took the conversation in time: the agent was told and goes on.
    #[serde(rename = "handoff.timed_out")]
    TimedOut,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Requested => "handoff.requested",
            EventKind::Taken => "handoff.taken",
            EventKind::Message => "message.created",
            EventKind::Note => "note.created",
            EventKind::Returned => "handoff.returned",
            EventKind::TimedOut => "handoff.timed_out",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "handoff.requested" => EventKind::Requested,
            "handoff.taken" => EventKind::Taken,
            "message.created" => EventKind::Message,
            "note.created" => EventKind::Note,
            "handoff.returned" => EventKind::Returned,
            "handoff.timed_out" => EventKind::TimedOut,
            _ => return None,
        })
    }

    /// Whether only staff see it.
    pub fn internal(self) -> bool {
        self == EventKind::Note
    }
}

/// One entry of a conversation's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConversationEvent {
    pub conversation_id: ConversationId,
    /// From 1, in order, per conversation.
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// The staff member who did it, if one did.
    pub actor: Option<Assignee>,
    /// What the event carries: `reason`, `by`, `message`, `note`, `content`.
    #[schema(value_type = Object)]
    pub data: Value,
    pub created_at: Timestamp,
}

/// An event to append; the store gives it the next sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub actor: Option<Assignee>,
    pub data: Value,
    pub at: Timestamp,
}

/// A conversation's handling, as one change sets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Handling {
    pub handler: Handler,
    pub waiting_since: Option<Timestamp>,
    /// When the wait runs out (the agent goes on then), while it waits.
    pub wait_until: Option<Timestamp>,
    pub assignee: Option<Assignee>,
}

/// What a change of handling requires of the current state (checked and set atomically).
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Only while the agent handles it (asking for a person twice does nothing).
    Agent,
    /// Only while `id` holds it, or nobody does.
    Free { id: String },
    /// Only while it still waits since this time (the wait sweep).
    WaitingSince(Timestamp),
}

/// When people answer, and what the visitor is told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HumanSettings {
    /// What the visitor reads when the conversation starts waiting for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_message: Option<String>,
    /// How long a conversation waits for a person before the agent is told and goes on
    /// (seconds; 300 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u32>,
    /// The team's hours; always open when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<OpeningHours>,
    /// Where a signed `conversation.waiting` webhook goes when a conversation starts waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_url: Option<String>,
}

/// Opening hours in a time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpeningHours {
    /// An IANA time zone, e.g. `Europe/Berlin` (`UTC` when unset).
    #[serde(default = "utc")]
    pub timezone: String,
    /// Open periods, e.g. `{"days": ["mon", "tue"], "from": "09:00", "to": "17:30"}`; with
    /// none the team is never in.
    #[serde(default)]
    pub periods: Vec<Period>,
}

fn utc() -> String {
    "UTC".to_owned()
}

/// Reads `human` settings from an object only (serde would also take a list of values).
pub fn settings_object<'de, D>(deserializer: D) -> std::result::Result<HumanSettings, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    match value {
        Value::Object(_) => serde_json::from_value(value).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("expected an object")),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// `mon` … `sun`.
    pub days: Vec<String>,
    /// `HH:MM`, inclusive.
    pub from: String,
    /// `HH:MM`, exclusive; `24:00` for midnight.
    pub to: String,
}

pub const DEFAULT_WAIT_SECONDS: u32 = 300;
pub const DEFAULT_WAITING_MESSAGE: &str =
    "I've asked a member of our team to join. They'll reply here as soon as they can.";
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl HumanSettings {
    pub fn validate(&self) -> Result<()> {
        if let Some(message) = &self.waiting_message {
            crate::validate::non_empty("human.waiting_message", message, 2_000)?;
        }
        if let Some(wait) = self.wait_seconds {
            if !(1..=86_400).contains(&wait) {
                return Err(Error::invalid(
                    "human.wait_seconds",
                    "must be between 1 and 86400",
                ));
            }
        }
        if let Some(url) = &self.notify_url {
            crate::validate::http_url("human.notify_url", url)?;
        }
        if let Some(hours) = &self.hours {
            hours.zone()?;
            if hours.periods.len() > 50 {
                return Err(Error::invalid("human.hours.periods", "at most 50 periods"));
            }
            for (i, period) in hours.periods.iter().enumerate() {
                let field = |name: &str| format!("human.hours.periods[{i}].{name}");
                if period.days.is_empty() {
                    return Err(Error::invalid(field("days"), "must name at least one day"));
                }
                if let Some(day) = period.days.iter().find(|d| !DAYS.contains(&d.as_str())) {
                    return Err(Error::invalid(
                        field("days"),
                        format!("`{day}` is not one of mon, tue, wed, thu, fri, sat, sun"),
                    ));
                }
                let from = minutes(&period.from).ok_or_else(|| {
                    Error::invalid(field("from"), "must be a time HH:MM (00:00 to 23:59)")
                })?;
                let to = minutes(&period.to).ok_or_else(|| {
                    Error::invalid(field("to"), "must be a time HH:MM (00:01 to 24:00)")
                })?;
                if to <= from {
                    return Err(Error::invalid(field("to"), "must be after `from`"));
                }
            }
        }
        Ok(())
    }

    pub fn wait_seconds(&self) -> u32 {
        self.wait_seconds.unwrap_or(DEFAULT_WAIT_SECONDS)
    }

    pub fn waiting_message(&self) -> &str {
        self.waiting_message
            .as_deref()
            .unwrap_or(DEFAULT_WAITING_MESSAGE)
    }

    /// Whether the team is in at `at`.
    pub fn open_at(&self, at: Timestamp) -> bool {
        self.hours.as_ref().is_none_or(|hours| hours.open_at(at))
    }
}

impl OpeningHours {
    fn zone(&self) -> Result<jiff::tz::TimeZone> {
        jiff::tz::TimeZone::get(&self.timezone).map_err(|_| {
            Error::invalid(
                "human.hours.timezone",
                format!("`{}` is not a known time zone", self.timezone),
            )
        })
    }

    /// Whether `at` falls in one of the periods, in the hours' time zone.
    pub fn open_at(&self, at: Timestamp) -> bool {
        let (Ok(zone), Ok(instant)) = (
            self.zone(),
            jiff::Timestamp::from_millisecond(at.as_millis()),
        ) else {
            return true;
        };
        let local = instant.to_zoned(zone);
        let day = DAYS[local.weekday().to_monday_zero_offset() as usize];
        let now = i32::from(local.hour()) * 60 + i32::from(local.minute());
        self.periods.iter().any(|p| {
            p.days.iter().any(|d| d == day)
                && matches!((minutes(&p.from), minutes(&p.to)), (Some(f), Some(t)) if f <= now && now < t)
        })
    }
}

/// `HH:MM` as minutes since midnight (`24:00` allowed as the end of a day).
fn minutes(value: &str) -> Option<i32> {
    let (h, m) = value.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> Timestamp {
        Timestamp::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn opening_hours_follow_the_time_zone_and_the_days() {
        let settings: HumanSettings = serde_json::from_value(serde_json::json!({
            "hours": {"timezone": "Europe/Berlin", "periods": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:30"}
            ]}
        }))
        .unwrap();
        settings.validate().unwrap();
        // Monday 2026-12-07: 08:30 UTC is 09:30 in Berlin (winter, UTC+1).
        assert!(settings.open_at(at("2026-12-07T08:30:00Z")));
        assert!(!settings.open_at(at("2026-12-07T07:30:00Z")), "08:30 local");
        assert!(
            !settings.open_at(at("2026-12-07T16:30:00Z")),
            "17:30 local, closed"
        );
        // Saturday.
        assert!(!settings.open_at(at("2026-12-12T10:00:00Z")));
        assert!(HumanSettings::default().open_at(at("2026-12-12T03:00:00Z")));
    }

    #[test]
    fn bad_settings_name_their_field() {
        let bad = |value: serde_json::Value| {
            serde_json::from_value::<HumanSettings>(value)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert!(bad(serde_json::json!({"wait_seconds": 0})).starts_with("human.wait_seconds"));
        assert!(
            bad(serde_json::json!({"hours": {"timezone": "Mars/Base", "periods": []}}))
                .starts_with("human.hours.timezone")
        );
        let period = |from: &str, to: &str, day: &str| {
            serde_json::json!({"hours": {"timezone": "UTC", "periods": [
                {"days": [day], "from": from, "to": to}
            ]}})
        };
        assert!(bad(period("25:00", "26:00", "mon")).contains("periods[0].from"));
        assert!(bad(period("10:00", "09:00", "mon")).contains("periods[0].to"));
        assert!(bad(period("09:00", "10:00", "someday")).contains("periods[0].days"));
        assert!(bad(serde_json::json!({"notify_url": "ftp://x"})).starts_with("human.notify_url"));
        assert!(
            serde_json::from_value::<HumanSettings>(period("00:00", "24:00", "sun"))
                .unwrap()
                .validate()
                .is_ok()
        );
    }
}
