//! How a call ends and where it goes when it leaves the agent: a transfer (to a number
//! through Twilio, or to the team's inbox), the apology when the model cannot go on, and the
//! model's socket opened (again).

use crate::bridge::{Then, APOLOGY, CONNECT_TIMEOUT};
use crate::call::CallLog;
use crate::error::{Result, VoiceError};
use crate::leg::Leg;
use crate::realtime::{self, Connection, SessionConfig};
use crate::twilio::Account;
use frontdesk_core::voice::CallStatus;
use frontdesk_core::voice::CallToolCall;
use serde_json::Value;

/// How the call ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    pub status: CallStatus,
    pub error: Option<String>,
}

impl Ending {
    pub(crate) fn completed() -> Self {
        Self {
            status: CallStatus::Completed,
            error: None,
        }
    }

    pub(crate) fn failed(error: impl Into<String>) -> Self {
        Self {
            status: CallStatus::Failed,
            error: Some(error.into()),
        }
    }
}

/// A phone call's handle at Twilio (transfers and apologies go through its REST API).
#[derive(Debug, Clone)]
pub struct PhoneLine {
    pub account: Account,
    pub call_sid: String,
}

/// The model cannot be reached: the caller hears an apology (Twilio says it; a browser
/// shows it) and the call ends as failed.
pub(crate) async fn apologise(
    leg: &mut dyn Leg,
    phone: Option<&PhoneLine>,
    log: &CallLog,
    error: VoiceError,
) -> Ending {
    tracing::warn!(call = %log.call.id, %error, "the call cannot go on");
    if let Some(phone) = phone {
        let twiml = crate::twilio::say_and_hang_up(APOLOGY);
        if let Err(e) = log
            .host()
            .twilio()
            .redirect(&phone.account, &phone.call_sid, &twiml)
            .await
        {
            tracing::warn!(call = %log.call.id, error = %e, "the apology could not be played");
        }
    }
    let _ = leg.end(APOLOGY).await;
    Ending::failed(error.to_string())
}

/// Transfers the call: to the agent's `transfer_number` through Twilio (the call leaves
/// the stream), else to the team's inbox (the conversation waits for a person and the
/// caller is told someone will get back to them). What the model is told, what follows and
/// where the call went.
pub(crate) async fn transfer(
    host: &crate::host::VoiceHost,
    agent: &frontdesk_core::agent::Agent,
    conversation: Option<&frontdesk_core::id::ConversationId>,
    phone: Option<&PhoneLine>,
    reason: &str,
) -> (String, Then, Option<String>) {
    if let (Some(number), Some(phone)) = (&agent.spec.voice.transfer_number, phone) {
        let twiml = crate::twilio::dial(number, Some("Transferring you now. Please hold."));
        return match host
            .twilio()
            .redirect(&phone.account, &phone.call_sid, &twiml)
            .await
        {
            Ok(()) => (
                format!("transferred to {number}"),
                Then::Transferred,
                Some(number.clone()),
            ),
            Err(error) => {
                tracing::warn!(%error, "the transfer failed");
                (
                    "The transfer did not go through. Apologise and offer to take a message."
                        .to_owned(),
                    Then::Answer,
                    None,
                )
            }
        };
    }
    let Some(conversation) = conversation else {
        return (
            "Nobody can take the call now; offer to take a message.".to_owned(),
            Then::Answer,
            None,
        );
    };
    let reason = (!reason.is_empty()).then_some(reason);
    match host
        .runner()
        .call_asks_for_human(agent, conversation, reason)
        .await
    {
        Ok(true) => (
            "The team has been asked to follow up. Tell the caller someone will get back to them \
             soon, then say goodbye and end the call."
                .to_owned(),
            Then::Answer,
            Some("inbox".to_owned()),
        ),
        Ok(false) => (
            "The team is away right now. Tell the caller, and offer to take their name and number \
             so someone calls back."
                .to_owned(),
            Then::Answer,
            None,
        ),
        Err(error) => {
            tracing::warn!(%error, "asking the team failed");
            (
                "Nobody can take the call now; offer to take a message.".to_owned(),
                Then::Answer,
                None,
            )
        }
    }
}

/// Opens the model's socket and configures its session.
pub(crate) async fn connect(
    endpoint: &realtime::Endpoint,
    config: &SessionConfig,
) -> Result<Connection> {
    let mut conn = Connection::open(endpoint, CONNECT_TIMEOUT).await?;
    conn.send(&realtime::session_update(config)).await?;
    Ok(conn)
}

/// A tool the call ran, for its record.
pub(crate) fn record(
    name: &str,
    arguments: Value,
    output: &str,
    agent: &str,
    at_ms: u64,
) -> CallToolCall {
    CallToolCall {
        name: name.to_owned(),
        arguments,
        output: output.to_owned(),
        is_error: false,
        agent: agent.to_owned(),
        run_id: None,
        at_ms,
    }
}
