//! Turns that bring their own history: a new conversation holding the messages a stateless
//! client sends (OpenAI Chat Completions, the AI SDK's UI messages), answers with the
//! client's tool calls and their results as parts; and the results of calls an earlier
//! answer left for the client (OpenAI Responses' `function_call_output`).

use frontdesk_core::agent::AgentRef;
use frontdesk_core::conversation::{ContentPart, MessageDraft, MessageRole, Parent};
use frontdesk_core::id::{ConversationId, MessageId, TenantId};
use frontdesk_core::service::NewConversation;
use frontdesk_core::{Error, Result};
use serde_json::Value;

use crate::deps::Deps;
use crate::guardrails;
use crate::request::{check_text, Imported, Input, NewConversationTurn, Resolved};

/// Most messages an imported history may hold.
const MAX_IMPORTED: usize = 500;

/// Records the results of calls the answer at `after` asked the client to make, as an
/// answer part of the chain; returns the stored message.
pub(crate) async fn store_tool_results(
    deps: &Deps,
    tenant: &TenantId,
    conversation: &ConversationId,
    after: Option<MessageId>,
    tool_results: Vec<(String, String)>,
) -> Result<MessageId> {
    let Some(anchor) = after else {
        return Err(Error::invalid(
            "input",
            "there is no call to give a result for",
        ));
    };
    let asked = deps
        .service
        .get_message(tenant, conversation, &anchor)
        .await?;
    let mut parts = Vec::new();
    for (call_id, output) in tool_results {
        let called = asked
            .content
            .iter()
            .any(|p| matches!(p, ContentPart::ToolCall { id, .. } if *id == call_id));
        let answered = asked.content.iter().chain(parts.iter()).any(
            |p| matches!(p, ContentPart::ToolResult { call_id: done, .. } if *done == call_id),
        );
        if answered {
            return Err(Error::invalid(
                "input",
                format!("the call `{call_id}` already has a result"),
            ));
        }
        if !called {
            return Err(Error::invalid(
                "input",
                format!("the previous answer made no call `{call_id}`"),
            ));
        }
        parts.push(ContentPart::ToolResult {
            call_id,
            output: Value::String(output),
            is_error: false,
        });
    }
    deps.service.check_quota(tenant).await?;
    let draft = MessageDraft {
        parent: Parent::Message(anchor),
        content: parts,
        ..MessageDraft::text(MessageRole::Assistant, "")
    };
    Ok(deps
        .service
        .append_message(tenant, conversation, draft)
        .await?
        .id)
}

/// Creates a new conversation holding the imported history; returns it with what to answer.
pub(crate) async fn new_conversation(
    deps: &Deps,
    tenant: &TenantId,
    new: NewConversationTurn,
    input: Input,
) -> Result<(ConversationId, Resolved)> {
    let NewConversationTurn {
        agent,
        end_user_id,
        title,
        mut metadata,
        source,
        mut history,
    } = new;
    if matches!(input, Input::History) {
        deps.service.check_quota(tenant).await?;
    }
    if history.len() > MAX_IMPORTED {
        return Err(Error::invalid(
            "messages",
            format!(
                "has {} messages; the limit is {MAX_IMPORTED}",
                history.len()
            ),
        ));
    }
    // What is answered: a new message, or the history's last message — a user message (a
    // new turn) or tool results (a continuation).
    let new_text = match input {
        Input::Send { text } => Some(check_text(text)?),
        Input::History => match history.last() {
            Some(Imported::User(text)) => {
                let text = text.clone();
                history.pop();
                Some(text)
            }
            Some(Imported::ToolResult { .. }) => None,
            Some(Imported::Assistant { .. }) => {
                return Err(Error::invalid(
                    "messages",
                    "the last message must be from the user or a tool result",
                ))
            }
            None => return Err(Error::invalid("messages", "must not be empty")),
        },
        _ => {
            return Err(Error::invalid(
                "input",
                "a new conversation takes a new message or answers its history",
            ))
        }
    };
    check_order(&history)?;
    if let Some(source) = source {
        metadata.insert("source".into(), Value::String(source.to_owned()));
    }
    let conversation = deps
        .service
        .create_conversation(
            tenant,
            NewConversation {
                agent,
                end_user_id,
                title,
                metadata,
            },
        )
        .await?;
    // Every end-user text goes through the agent's input redaction, whichever turn brought it:
    // an imported history's messages as much as its last one (redacted with the turn).
    let agent = deps
        .service
        .get_agent(tenant, &AgentRef::Id(conversation.agent_id.clone()))
        .await?;
    let history = if agent.spec.guardrails.input.redact_pii {
        history
            .into_iter()
            .map(|item| match item {
                Imported::User(text) => Imported::User(guardrails::redact_pii(&text)),
                other => other,
            })
            .collect()
    } else {
        history
    };
    let last = store_history(deps, tenant, &conversation.id, history).await?;
    let resolved = match (new_text, last) {
        (Some(text), _) => Resolved::Send(text),
        (None, Some(after)) => Resolved::Continue(after),
        (None, None) => return Err(Error::invalid("messages", "nothing to answer")),
    };
    Ok((conversation.id, resolved))
}

/// Stores an imported history, answers with the client's tool calls and their results as
/// parts; returns the last message stored.
async fn store_history(
    deps: &Deps,
    tenant: &TenantId,
    conversation: &ConversationId,
    history: Vec<Imported>,
) -> Result<Option<MessageId>> {
    let store_answer = |parts: Vec<ContentPart>| async move {
        let draft = MessageDraft {
            parent: Parent::Active,
            content: parts,
            ..MessageDraft::text(MessageRole::Assistant, "")
        };
        Ok::<_, Error>(
            deps.service
                .append_message(tenant, conversation, draft)
                .await?
                .id,
        )
    };
    let mut last_stored: Option<MessageId> = None;
    let mut pending: Option<Vec<ContentPart>> = None;
    for item in history {
        match item {
            Imported::User(text) => {
                if let Some(parts) = pending.take() {
                    store_answer(parts).await?;
                }
                let stored = deps
                    .service
                    .append_message(
                        tenant,
                        conversation,
                        MessageDraft::text(MessageRole::User, text),
                    )
                    .await?;
                last_stored = Some(stored.id);
            }
            Imported::Assistant { text, tool_calls } => {
                if let Some(parts) = pending.take() {
                    last_stored = Some(store_answer(parts).await?);
                }
                let mut parts = Vec::new();
                if !text.is_empty() {
                    parts.push(ContentPart::Text { text });
                }
                for (id, name, arguments) in tool_calls {
                    let arguments =
                        serde_json::from_str(&arguments).unwrap_or(Value::String(arguments));
                    parts.push(ContentPart::ToolCall {
                        id,
                        name,
                        arguments,
                    });
                }
                pending = Some(parts);
            }
            Imported::ToolResult { call_id, content } => {
                // `check_order` saw that a call precedes every result.
                if let Some(parts) = pending.as_mut() {
                    parts.push(ContentPart::ToolResult {
                        call_id,
                        output: Value::String(content),
                        is_error: false,
                    });
                }
            }
        }
    }
    if let Some(parts) = pending.take() {
        last_stored = Some(store_answer(parts).await?);
    }
    Ok(last_stored)
}

/// Every tool result follows the answer that made its call (checked before anything is
/// stored, so a bad history leaves nothing behind).
fn check_order(history: &[Imported]) -> Result<()> {
    let mut calls: Vec<&str> = Vec::new();
    for item in history {
        match item {
            Imported::User(_) => calls.clear(),
            Imported::Assistant { tool_calls, .. } => {
                calls = tool_calls.iter().map(|(id, _, _)| id.as_str()).collect();
            }
            Imported::ToolResult { call_id, .. } => {
                // Each call gets one result.
                let Some(at) = calls.iter().position(|c| *c == call_id.as_str()) else {
                    return Err(Error::invalid(
                        "messages",
                        format!("a tool result for `{call_id}` does not follow an assistant message that called it (or repeats one)"),
                    ));
                };
                calls.remove(at);
            }
        }
    }
    Ok(())
}
