//! Voice: an agent's voice settings and the record of each call.
//!
//! An agent answers calls with the same instructions, tools and knowledge as chat. Its
//! `voice` settings say how calls reach it (`transport`), which realtime model speaks (or,
//! without one, the pipeline: speech-to-text → the agent's chat model → text-to-speech), which
//! text agent it asks what to say (`supervisor`), and how it sounds and listens.
//!
//! A [`Call`] is one phone call or browser voice session: who called, how it went, what was
//! said (both sides' transcripts), which tools ran, what it cost and a summary.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conversation::Cursor;
use crate::error::{Error, Result};
use crate::id::{AgentId, CallId, ConversationId, RunId, TenantId};
use crate::time::Timestamp;
use crate::validate;

/// How phone calls reach the agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// Twilio streams the call's audio; frontdesk bridges it to a realtime model (or the
    /// pipeline).
    #[default]
    MediaStream,
    /// Twilio recognises and speaks; frontdesk answers text prompts with the agent's chat
    /// model.
    ConversationRelay,
}

/// How the model hears that the caller finished speaking (the Realtime API's
/// `turn_detection`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TurnDetection {
    /// `server_vad` (silence; the default), `semantic_vad` (meaning) or `none` (frontdesk's
    /// own voice activity detection decides, in pipeline mode and for models without it).
    #[serde(rename = "type", default = "server_vad")]
    pub kind: String,
    /// Loudness needed to count as speech, 0–1 (server VAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// Audio kept from before speech started (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_padding_ms: Option<u32>,
    /// Silence that ends a turn (ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_duration_ms: Option<u32>,
    /// `low`, `medium`, `high` or `auto` (semantic VAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eagerness: Option<String>,
}

fn server_vad() -> String {
    "server_vad".to_owned()
}

impl Default for TurnDetection {
    fn default() -> Self {
        Self {
            kind: "server_vad".to_owned(),
            threshold: None,
            prefix_padding_ms: None,
            silence_duration_ms: None,
            eagerness: None,
        }
    }
}

/// An agent's voice settings (the agent's `voice` field).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoiceSettings {
    #[serde(default)]
    pub transport: Transport,
    /// The realtime model (`provider/model`): the provider's base URL gives
    /// `ws(s)://…/realtime?model=…`. Unset: the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_model: Option<String>,
    /// The slug of the text agent the voice asks what to say (its tools, knowledge and
    /// approvals); unset: the voice agent's own tools run directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor: Option<String>,
    /// The provider's voice name (e.g. `alloy`, `marin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    /// What the agent says first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Languages the caller may speak (BCP 47, e.g. `en-US`); the first is the default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_detection: Option<TurnDetection>,
    /// What the voice says while it waits for the supervisor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler: Option<String>,
    /// Speech-to-text model (`provider/model`, an OpenAI-compatible `/audio/transcriptions`)
    /// for the pipeline, and the realtime session's input transcription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription_model: Option<String>,
    /// Text-to-speech model (`provider/model`, an OpenAI-compatible `/audio/speech`) for the
    /// pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_model: Option<String>,
    /// The phone number (E.164) `transfer_call` dials; without one, a transfer goes to the
    /// team's inbox (human handoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_number: Option<String>,
    /// The agent's own phone number at Twilio (E.164): outbound calls come from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Whether the hosted voice page `/voice/{tenant}/{agent}` and its socket are on.
    #[serde(default)]
    pub browser: bool,
    /// The longest a call may last (seconds; 1800 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_call_seconds: Option<u32>,
}

pub const DEFAULT_MAX_CALL_SECONDS: u32 = 1_800;
pub const DEFAULT_FILLER: &str = "One moment, let me check that.";
const TURN_DETECTIONS: [&str; 3] = ["server_vad", "semantic_vad", "none"];
const EAGERNESS: [&str; 4] = ["low", "medium", "high", "auto"];

impl VoiceSettings {
    pub fn validate(&self) -> Result<()> {
        for (field, model) in [
            ("voice.realtime_model", &self.realtime_model),
            ("voice.transcription_model", &self.transcription_model),
            ("voice.speech_model", &self.speech_model),
        ] {
            if let Some(model) = model {
                crate::agent::model_name(field, model)?;
            }
        }
        if let Some(slug) = &self.supervisor {
            validate::slug("voice.supervisor", slug)?;
        }
        if let Some(voice) = &self.voice {
            validate::non_empty("voice.voice", voice, 64)?;
        }
        if let Some(greeting) = &self.greeting {
            validate::non_empty("voice.greeting", greeting, 1_000)?;
        }
        if let Some(filler) = &self.filler {
            validate::non_empty("voice.filler", filler, 200)?;
        }
        validate::max_items("voice.languages", &self.languages, 10)?;
        for (i, language) in self.languages.iter().enumerate() {
            if !is_language_tag(language) {
                return Err(Error::invalid(
                    format!("voice.languages[{i}]"),
                    format!("`{language}` is not a language tag such as en-US"),
                ));
            }
        }
        if let Some(detection) = &self.turn_detection {
            if !TURN_DETECTIONS.contains(&detection.kind.as_str()) {
                return Err(Error::invalid(
                    "voice.turn_detection.type",
                    "must be one of server_vad, semantic_vad, none",
                ));
            }
            if let Some(threshold) = detection.threshold {
                if !(0.0..=1.0).contains(&threshold) {
                    return Err(Error::invalid(
                        "voice.turn_detection.threshold",
                        "must be between 0 and 1",
                    ));
                }
            }
            for (field, ms) in [
                ("prefix_padding_ms", detection.prefix_padding_ms),
                ("silence_duration_ms", detection.silence_duration_ms),
            ] {
                if ms.is_some_and(|ms| ms > 10_000) {
                    return Err(Error::invalid(
                        format!("voice.turn_detection.{field}"),
                        "must be at most 10000",
                    ));
                }
            }
            if let Some(eagerness) = &detection.eagerness {
                if !EAGERNESS.contains(&eagerness.as_str()) {
                    return Err(Error::invalid(
                        "voice.turn_detection.eagerness",
                        "must be one of low, medium, high, auto",
                    ));
                }
            }
        }
        if let Some(number) = &self.transfer_number {
            check_phone("voice.transfer_number", number)?;
        }
        if let Some(number) = &self.phone_number {
            check_phone("voice.phone_number", number)?;
        }
        if let Some(seconds) = self.max_call_seconds {
            if !(10..=14_400).contains(&seconds) {
                return Err(Error::invalid(
                    "voice.max_call_seconds",
                    "must be between 10 and 14400",
                ));
            }
        }
        Ok(())
    }

    /// The language the call starts in.
    pub fn language(&self) -> &str {
        self.languages.first().map_or("en-US", String::as_str)
    }

    pub fn max_call(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(
            self.max_call_seconds.unwrap_or(DEFAULT_MAX_CALL_SECONDS),
        ))
    }

    pub fn filler(&self) -> &str {
        self.filler.as_deref().unwrap_or(DEFAULT_FILLER)
    }
}

/// Reads `voice` settings from an object only.
pub fn settings_object<'de, D>(deserializer: D) -> std::result::Result<VoiceSettings, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let value = Value::deserialize(deserializer)?;
    match value {
        Value::Object(_) => serde_json::from_value(value).map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("expected an object")),
    }
}

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok
        && tag.len() <= 35
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Checks an E.164 phone number (`+` and 8 to 15 digits).
pub fn check_phone(field: &str, number: &str) -> Result<()> {
    let digits = number.strip_prefix('+').unwrap_or("");
    if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            "must be a phone number in E.164 form, e.g. +15550001111",
        ))
    }
}

/// Where a call comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallChannel {
    Browser,
    Phone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    Inbound,
    Outbound,
}

/// How a call stands or ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallStatus {
    /// Ringing (an outbound call being placed) or under way.
    Active,
    Completed,
    Failed,
    /// Handed to a person: a phone number or the team's inbox.
    Transferred,
}

/// Who said a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    Caller,
    Agent,
}

macro_rules! str_enum {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
            pub fn parse(value: &str) -> Option<Self> {
                match value { $($name => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}
str_enum!(CallChannel { Browser => "browser", Phone => "phone" });
str_enum!(CallDirection { Inbound => "inbound", Outbound => "outbound" });
str_enum!(CallStatus { Active => "active", Completed => "completed", Failed => "failed", Transferred => "transferred" });

/// One line of a call's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptLine {
    pub speaker: Speaker,
    pub text: String,
    /// When it was said, in milliseconds since the call started.
    pub at_ms: u64,
    /// The caller spoke over it: `text` is what they heard.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// A tool the call ran: the voice agent's own, or its supervisor's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallToolCall {
    pub name: String,
    #[schema(value_type = Object)]
    pub arguments: Value,
    pub output: String,
    #[serde(default)]
    pub is_error: bool,
    /// The agent that called it (the voice agent or its supervisor).
    pub agent: String,
    /// The supervisor's run it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    pub at_ms: u64,
}

/// What a call used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallUsage {
    /// Tokens of the realtime model (audio and text) and of the supervisor's runs.
    pub input_tokens: i64,
    pub output_tokens: i64,
    /// In US dollars, where the models have prices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Audio frames relayed each way.
    pub frames_in: u64,
    pub frames_out: u64,
}

/// One call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Call {
    pub id: CallId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    /// The conversation the call is kept in (its transcript, the supervisor's runs).
    pub conversation_id: Option<ConversationId>,
    pub channel: CallChannel,
    pub direction: CallDirection,
    /// `realtime`, `pipeline` or `conversation_relay`.
    pub mode: String,
    /// The caller's number (or, for the browser, nothing).
    pub from: Option<String>,
    pub to: Option<String>,
    /// The telephony provider's id of the call (Twilio's `CallSid`).
    pub provider_call_id: Option<String>,
    pub status: CallStatus,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub duration_ms: Option<i64>,
    pub transcript: Vec<TranscriptLine>,
    /// Written by the text model when the call ends.
    pub summary: Option<String>,
    pub tool_calls: Vec<CallToolCall>,
    pub usage: CallUsage,
    /// Why it failed.
    pub error: Option<String>,
    /// Where it went: a phone number, or `inbox`.
    pub transferred_to: Option<String>,
}

impl Call {
    /// Text the call list searches: numbers, summary and transcript.
    pub fn search_text(&self) -> String {
        let mut text = String::new();
        for part in [&self.from, &self.to, &self.summary].into_iter().flatten() {
            text.push_str(part);
            text.push('\n');
        }
        for line in &self.transcript {
            text.push_str(&line.text);
            text.push('\n');
        }
        text.to_lowercase()
    }
}

/// Which calls to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct CallQuery {
    pub agent_id: Option<AgentId>,
    pub status: Option<CallStatus>,
    pub channel: Option<CallChannel>,
    /// Words the numbers, summary or transcript hold.
    pub search: Option<String>,
    pub limit: u32,
    pub after: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(value: Value) -> Result<VoiceSettings> {
        let settings: VoiceSettings =
            serde_json::from_value(value).map_err(|e| Error::invalid("voice", e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    #[test]
    fn settings_read_and_check_their_fields() {
        let ok = settings(json!({
            "transport": "conversation_relay", "realtime_model": "openai/gpt-realtime",
            "supervisor": "front-desk", "voice": "marin", "languages": ["en-US", "de"],
            "turn_detection": {"type": "semantic_vad", "eagerness": "auto"},
            "transfer_number": "+15550001111", "browser": true
        }))
        .ok();
        assert_eq!(
            ok.as_ref().map(|s| s.transport),
            Some(Transport::ConversationRelay)
        );
        assert_eq!(ok.as_ref().map(VoiceSettings::language), Some("en-US"));
        let field = |value: Value| match settings(value) {
            Err(Error::InvalidField { field, .. }) => field,
            other => format!("{other:?}"),
        };
        assert_eq!(
            field(json!({"realtime_model": "gpt"})),
            "voice.realtime_model"
        );
        assert_eq!(
            field(json!({"languages": ["english!"]})),
            "voice.languages[0]"
        );
        assert_eq!(
            field(json!({"transfer_number": "555"})),
            "voice.transfer_number"
        );
        assert_eq!(
            field(json!({"turn_detection": {"type": "loud"}})),
            "voice.turn_detection.type"
        );
        assert_eq!(
            field(json!({"max_call_seconds": 1})),
            "voice.max_call_seconds"
        );
        assert!(
            settings(json!({"trasnport": "x"})).is_err(),
            "unknown fields are refused"
        );
    }

    #[test]
    fn phone_numbers_are_e164() {
        assert!(check_phone("to", "+15550001111").is_ok());
        assert!(check_phone("to", "15550001111").is_err());
        assert!(check_phone("to", "+1555abc1111").is_err());
        assert!(check_phone("to", "+1234567").is_err());
    }
}
