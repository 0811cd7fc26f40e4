//! Text turns on a call (ConversationRelay and the pipeline): each caller turn is an ordinary
//! run of the agent with the call's rules and its two tools, `end_call` and `transfer_call`,
//! which the run leaves to the call (client tools); and what those tools do.

use frontdesk_agents::{Input, StartedRun, TurnOptions, TurnRequest};
use frontdesk_core::conversation::{ContentPart, Message};
use frontdesk_core::model::ToolSpec;
use frontdesk_core::voice::CallToolCall;
use serde_json::{json, Value};

use crate::call::CallLog;
use crate::supervisor::{END_CALL, TRANSFER_CALL};

/// What the agent is told about the call.
const RULES: &str = "You are speaking on a phone call: your words are read aloud. Keep answers \
short and natural, no lists, links, markdown or emojis. When the caller is done, say goodbye and \
call end_call. If the caller asks for a person or you cannot help, call transfer_call.";

/// The client tools that end or transfer the call.
fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: END_CALL.to_owned(),
            description: "Hang up, after saying goodbye.".to_owned(),
            parameters: json!({"type": "object", "properties": {}}),
        },
        ToolSpec {
            name: TRANSFER_CALL.to_owned(),
            description: "Hand the call to a person from the team.".to_owned(),
            parameters: json!({"type": "object", "properties": {"reason": {"type": "string"}}}),
        },
    ]
}

/// Starts a turn of the call's agent answering `said` in the call's conversation.
pub(crate) async fn start(log: &CallLog, said: String) -> Option<StartedRun> {
    let conversation = log.conversation()?.clone();
    let request = TurnRequest::on(
        &log.call.tenant_id,
        &conversation,
        Input::Send { text: said },
    )
    .with_options(TurnOptions {
        client_tools: tools(),
        instructions: Some(RULES.to_owned()),
        ..TurnOptions::default()
    });
    match log.host().runner().start(request).await {
        Ok(started) => Some(started),
        Err(error) => {
            tracing::warn!(call = %log.call.id, %error, "a turn of the call could not start");
            None
        }
    }
}

/// The call tool an answer asked for (`end_call` or `transfer_call`) and its arguments.
pub(crate) fn action(message: Option<&Message>) -> Option<(String, Value)> {
    message?.content.iter().find_map(|part| match part {
        ContentPart::ToolCall {
            name, arguments, ..
        } if name == END_CALL || name == TRANSFER_CALL => Some((name.clone(), arguments.clone())),
        _ => None,
    })
}

/// Hands the caller to the team's inbox: whether the conversation now waits for a person
/// (the call's record then says `inbox`).
pub(crate) async fn to_inbox(log: &mut CallLog, args: &Value) -> bool {
    let reason = args
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let waiting = match log.conversation() {
        Some(conversation) => log
            .host()
            .runner()
            .call_asks_for_human(
                &log.agent,
                conversation,
                (!reason.is_empty()).then_some(reason),
            )
            .await
            .unwrap_or(false),
        None => false,
    };
    if waiting {
        log.call.transferred_to = Some("inbox".to_owned());
    }
    waiting
}

/// Records a call tool the agent used.
pub(crate) fn record(log: &mut CallLog, name: &str, args: Value, output: &str) {
    let (at_ms, agent) = (log.at_ms(), log.agent.spec.slug.clone());
    log.tool(CallToolCall {
        name: name.to_owned(),
        arguments: args,
        output: output.to_owned(),
        is_error: false,
        agent,
        run_id: None,
        at_ms,
    });
}
