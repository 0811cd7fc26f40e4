//! Twilio ConversationRelay (Telnyx speaks the same): Twilio recognises the caller's speech
//! and speaks frontdesk's text. Each `prompt` is an ordinary text turn of the agent in the
//! call's conversation, streamed back as `text` tokens; an `interrupt` stops the turn and cuts
//! the stored answer to what the caller heard; the agent ends or transfers the call with the
//! tools `end_call` and `transfer_call` (the call's own: the turn ends with them, and an `end`
//! frame carries what Twilio's `<Connect action>` needs). So any chat model takes calls.
//!
//! Wire facts: `../shared/PROTOCOLS.md` §6b.

use frontdesk_core::agent::Agent;
use frontdesk_core::conversation::Message;
use frontdesk_core::id::RunId;
use frontdesk_core::run::RunEvent;
use frontdesk_core::service::NewCall;
use frontdesk_core::voice::{CallChannel, CallDirection, CallStatus};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::call::CallLog;
use crate::host::VoiceHost;
use crate::leg::{Socket, WsMessage};
use crate::supervisor::TRANSFER_CALL;

/// A turn under way: its run, the answer's stored message and what the caller heard.
struct Turn {
    run_id: RunId,
    /// The tokens sent for Twilio to speak.
    said: String,
    /// What the caller heard when they interrupted.
    heard: Option<String>,
}

/// What the turn's follower reports.
enum Update {
    Token {
        run_id: RunId,
        text: String,
    },
    /// The turn ended: its answer and the call tool it asked for.
    Done {
        run_id: RunId,
        message: Option<Box<Message>>,
        action: Option<(String, Value)>,
    },
}

fn text_frame(token: &str, last: bool) -> WsMessage {
    WsMessage::Text(json!({"type": "text", "token": token, "last": last}).to_string())
}

/// Runs a ConversationRelay session on `socket` for `agent` until the call ends.
pub async fn run<S: Socket>(host: VoiceHost, agent: Agent, mut socket: S) {
    // The first frame is `setup`.
    let setup = loop {
        match socket.recv().await {
            Some(WsMessage::Text(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(value) if value.get("type").and_then(Value::as_str) == Some("setup") => {
                    break value
                }
                _ => continue,
            },
            Some(WsMessage::Binary(_)) => continue,
            Some(WsMessage::Close) | None => return,
        }
    };
    let field = |key: &str| setup.get(key).and_then(Value::as_str).map(str::to_owned);
    let direction = match field("direction").as_deref() {
        Some(d) if d.starts_with("outbound") => CallDirection::Outbound,
        _ => CallDirection::Inbound,
    };
    let mut context = Map::new();
    if let Some(Value::Object(params)) = setup.get("customParameters") {
        for (key, value) in params {
            context.insert(key.clone(), value.clone());
        }
    }
    let call_sid = field("callSid").unwrap_or_default();
    if crate::session::stream_account(
        &host,
        &agent,
        &call_sid,
        &field("accountSid").unwrap_or_default(),
        &context,
    )
    .await
    .is_none()
    {
        let _ = socket.send(WsMessage::Close).await;
        return;
    }
    context.remove("token");
    context.remove("expires");
    let existing = context
        .remove("call_id")
        .and_then(|id| id.as_str().map(str::to_owned));
    let opened = match existing {
        Some(id) => CallLog::resume(&host, agent.clone(), &id, field("callSid"), context).await,
        None => {
            CallLog::open(
                &host,
                agent.clone(),
                NewCall {
                    channel: CallChannel::Phone,
                    direction,
                    mode: "conversation_relay",
                    from: field("from"),
                    to: field("to"),
                    provider_call_id: field("callSid"),
                },
                context,
            )
            .await
        }
    };
    let mut log = match opened {
        Ok(log) => log,
        Err(error) => {
            tracing::warn!(%error, "a ConversationRelay call was refused");
            let _ = socket
                .send(WsMessage::Text(
                    json!({"type": "end", "handoffData": json!({"reason": "refused", "message": error.to_string()}).to_string()}).to_string(),
                ))
                .await;
            return;
        }
    };
    log.store_lines(false);
    if let Some(greeting) = &agent.spec.voice.greeting {
        log.agent_said(None, greeting).await;
    }
    let (tx, mut rx) = mpsc::channel::<Update>(256);
    let mut turn: Option<Turn> = None;
    let mut partial = String::new();
    let mut ending: Option<(CallStatus, Option<String>)> = None;
    let mut superseded: std::collections::HashMap<RunId, String> = std::collections::HashMap::new();
    let shutdown = host.shutdown().clone();
    let timer = tokio::time::sleep(agent.spec.voice.max_call());
    let stopping = shutdown.cancelled();
    tokio::pin!(timer, stopping);
    let (status, error) = loop {
        tokio::select! {
            frame = socket.recv() => {
                let text = match frame {
                    Some(WsMessage::Text(text)) => text,
                    Some(WsMessage::Binary(_)) => continue,
                    Some(WsMessage::Close) | None => break ending.take().unwrap_or((CallStatus::Completed, None)),
                };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    tracing::debug!(call = %log.call.id, "a ConversationRelay frame that is not JSON was skipped");
                    continue;
                };
                let get = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
                match value.get("type").and_then(Value::as_str) {
                    Some("prompt") => {
                        let last = value.get("last").and_then(Value::as_bool).unwrap_or(true);
                        if !last {
                            partial = get("voicePrompt");
                            continue;
                        }
                        let mut said = get("voicePrompt");
                        if said.trim().is_empty() {
                            said = std::mem::take(&mut partial);
                        }
                        partial.clear();
                        if let Some(current) = turn.take() {
                            // Spoken past: it keeps what was heard of it.
                            let _ = host.runner().cancel(&log.call.tenant_id, &current.run_id);
                            superseded.insert(current.run_id, current.heard.unwrap_or(current.said));
                        }
                        log.caller_said(&said).await;
                        turn = start_turn(&log, said, tx.clone()).await;
                        if turn.is_none() {
                            let _ = socket.send(text_frame("Sorry, I cannot answer right now.", true)).await;
                        }
                    }
                    Some("interrupt") => {
                        let heard = get("utteranceUntilInterrupt");
                        if let Some(current) = turn.as_mut() {
                            current.heard = Some(heard.clone());
                            let _ = host.runner().cancel(&log.call.tenant_id, &current.run_id);
                        } else {
                            log.cut_last_answer(&heard).await;
                        }
                    }
                    Some("dtmf") => {
                        let digit: String = get("digit").chars().filter(|c| c.is_ascii_alphanumeric() || *c == '#' || *c == '*').take(1).collect();
                        if !digit.is_empty() && turn.is_none() {
                            let said = format!("[The caller pressed {digit} on the keypad]");
                            log.caller_said(&format!("(pressed {digit})")).await;
                            turn = start_turn(&log, said, tx.clone()).await;
                        }
                    }
                    Some("error") => {
                        tracing::warn!(call = %log.call.id, description = %get("description"), "ConversationRelay reported an error");
                    }
                    _ => {}
                }
            }
            Some(update) = rx.recv() => match update {
                Update::Token { run_id, text } => {
                    // Only the current turn's words, and not once the caller spoke over it.
                    if let Some(current) = turn.as_mut().filter(|t| t.run_id == run_id && t.heard.is_none()) {
                        current.said.push_str(&text);
                        let _ = socket.send(text_frame(&text, false)).await;
                    }
                }
                Update::Done { run_id, message, action } => {
                    let (heard, finished) = match turn.take() {
                        Some(current) if current.run_id == run_id => (current.heard, true),
                        other => {
                            turn = other;
                            (Some(superseded.remove(&run_id).unwrap_or_default()), false)
                        }
                    };
                    if finished && heard.is_none() {
                        let _ = socket.send(text_frame("", true)).await;
                    }
                    if let Some(message) = &message {
                        log.answered(message, heard.as_deref()).await;
                    }
                    // Only an answer the caller let finish ends or transfers the call.
                    if let (Some((name, args)), true, None) = (action, finished, &heard) {
                        if let Some(end) = act(&mut log, &name, args, &mut socket).await {
                            ending = Some(end);
                        }
                    }
                    log.checkpoint().await;
                }
            },
            () = &mut timer => {
                let _ = socket.send(WsMessage::Text(json!({"type": "end", "handoffData": json!({"reason": "time_limit"}).to_string()}).to_string())).await;
                break (CallStatus::Completed, Some("the call reached its time limit".to_owned()));
            }
            () = &mut stopping => {
                let _ = socket.send(WsMessage::Text(json!({"type": "end", "handoffData": json!({"reason": "shutdown"}).to_string()}).to_string())).await;
                break (CallStatus::Failed, Some("the server stopped during the call".to_owned()));
            }
        }
    };
    if let Some(current) = turn {
        let _ = host.runner().cancel(&log.call.tenant_id, &current.run_id);
    }
    let status = if status == CallStatus::Completed && log.call.transferred_to.is_some() {
        CallStatus::Transferred
    } else {
        status
    };
    log.finish(status, error).await;
}

/// Starts a turn answering `said` and follows it in a task that reports tokens and its end.
async fn start_turn(log: &CallLog, said: String, tx: mpsc::Sender<Update>) -> Option<Turn> {
    let started = crate::turns::start(log, said).await?;
    let run_id = started.run_id.clone();
    let mut events = started.events;
    let id = run_id.clone();
    tokio::spawn(async move {
        let mut message = None;
        while let Some(event) = events.next().await {
            match event.event {
                RunEvent::MessageDelta { text } => {
                    let Ok(()) = tx
                        .send(Update::Token {
                            run_id: id.clone(),
                            text,
                        })
                        .await
                    else {
                        return;
                    };
                }
                RunEvent::MessageCompleted { message: m } => message = Some(*m),
                _ => {}
            }
        }
        let action = crate::turns::action(message.as_ref());
        let _ = tx
            .send(Update::Done {
                run_id: id,
                message: message.map(Box::new),
                action,
            })
            .await;
    });
    Some(Turn {
        run_id,
        said: String::new(),
        heard: None,
    })
}

/// The agent asked to end or transfer the call: the `end` frame, with what the
/// `<Connect action>` callback needs in `handoffData`.
async fn act<S: Socket>(
    log: &mut CallLog,
    name: &str,
    args: Value,
    socket: &mut S,
) -> Option<(CallStatus, Option<String>)> {
    let call_id = log.call.id.clone();
    let (handoff, status, output) = match (name, log.agent.spec.voice.transfer_number.clone()) {
        (TRANSFER_CALL, Some(number)) => {
            log.call.transferred_to = Some(number.clone());
            (
                json!({"reason": "transfer", "number": number, "call_id": call_id}),
                CallStatus::Transferred,
                format!("transferred to {number}"),
            )
        }
        (TRANSFER_CALL, None) => {
            let waiting = crate::turns::to_inbox(log, &args).await;
            (
                json!({"reason": "inbox", "call_id": call_id}),
                if waiting {
                    CallStatus::Transferred
                } else {
                    CallStatus::Completed
                },
                if waiting {
                    "the team will follow up"
                } else {
                    "the team is away"
                }
                .to_owned(),
            )
        }
        _ => (
            json!({"reason": "ended", "call_id": call_id}),
            CallStatus::Completed,
            "ended".to_owned(),
        ),
    };
    crate::turns::record(log, name, args, &output);
    let frame = json!({"type": "end", "handoffData": handoff.to_string()});
    let _ = socket.send(WsMessage::Text(frame.to_string())).await;
    Some((status, None))
}
