//! Turns for stateless protocols (OpenAI Chat Completions, the AI SDK's UI messages): the
//! client sends the whole history each time. It becomes a conversation of its own (so the
//! dashboard, usage and traces see it like any other), the history stored as messages —
//! answers with the client's tool calls and their results as parts — and the last message
//! answered: a user message as a new turn, tool results as the continuation of the answer
//! that asked for them.

use frontdesk_core::conversation::{ContentPart, MessageDraft, MessageRole, Parent};
use frontdesk_core::id::{MessageId, TenantId};
use frontdesk_core::service::NewConversation;
use frontdesk_core::{Error, Result};
use serde_json::{Map, Value};

use crate::runner::{Runner, StartedRun, TurnInput, TurnOptions};

/// One message of a client's history, protocol-neutral.
#[derive(Debug, Clone, PartialEq)]
pub enum Imported {
    User(String),
    /// An answer: its text and the tool calls it made (`id`, `name`, arguments as JSON text).
    Assistant {
        text: String,
        tool_calls: Vec<(String, String, String)>,
    },
    /// The result of a tool call the client ran.
    ToolResult {
        call_id: String,
        content: String,
    },
}

/// A stateless turn: who asks which agent, with what history and options.
#[derive(Debug, Clone)]
pub struct StatelessTurn {
    /// The agent's slug or id.
    pub agent: String,
    pub end_user_id: Option<String>,
    /// Where the conversation came from (`openai.chat_completions`, …), kept in its metadata.
    pub source: &'static str,
    pub history: Vec<Imported>,
    pub options: TurnOptions,
}

/// A turn that goes on from a stored message (OpenAI Responses' `previous_response_id` or
/// `conversation`): the results of the client's tool calls and/or a new user message.
#[derive(Debug, Clone)]
pub struct ChainedTurn {
    pub conversation: frontdesk_core::id::ConversationId,
    /// The message to go on from; the conversation's active message when `None`.
    pub after: Option<MessageId>,
    pub user_text: Option<String>,
    /// `(call_id, output)` of calls the answer at `after` asked the client to make.
    pub tool_results: Vec<(String, String)>,
    pub options: TurnOptions,
}

/// Most messages a stateless history may hold.
const MAX_HISTORY: usize = 500;

impl Runner {
    /// Stores the history as a new conversation and answers its last message.
    pub async fn start_stateless(
        &self,
        tenant: &TenantId,
        turn: StatelessTurn,
    ) -> Result<StartedRun> {
        let StatelessTurn {
            agent,
            end_user_id,
            source,
            mut history,
            options,
        } = turn;
        self.service().check_quota(tenant).await?;
        if history.len() > MAX_HISTORY {
            return Err(Error::invalid(
                "messages",
                format!("has {} messages; the limit is {MAX_HISTORY}", history.len()),
            ));
        }
        // What is answered: the last user message (a new turn), or tool results (a continuation).
        let last_user = match history.last() {
            Some(Imported::User(text)) => Some(text.clone()),
            Some(Imported::ToolResult { .. }) => None,
            Some(Imported::Assistant { .. }) => {
                return Err(Error::invalid(
                    "messages",
                    "the last message must be from the user or a tool result",
                ))
            }
            None => return Err(Error::invalid("messages", "must not be empty")),
        };
        if last_user.is_some() {
            history.pop();
        }
        check_order(&history)?;
        let mut metadata = Map::new();
        metadata.insert("source".into(), Value::String(source.to_owned()));
        let conversation = self
            .service()
            .create_conversation(
                tenant,
                NewConversation {
                    agent,
                    end_user_id,
                    title: None,
                    metadata,
                },
            )
            .await?;
        let mut last_stored: Option<MessageId> = None;
        let mut pending: Option<Vec<ContentPart>> = None;
        for item in history {
            match item {
                Imported::User(text) => {
                    if let Some(parts) = pending.take() {
                        self.store_answer(tenant, &conversation.id, parts).await?;
                    }
                    let stored = self
                        .service()
                        .append_message(
                            tenant,
                            &conversation.id,
                            MessageDraft::text(MessageRole::User, text),
                        )
                        .await?;
                    last_stored = Some(stored.id);
                }
                Imported::Assistant { text, tool_calls } => {
                    if let Some(parts) = pending.take() {
                        last_stored =
                            Some(self.store_answer(tenant, &conversation.id, parts).await?);
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
                    let Some(parts) = pending.as_mut() else {
                        return Err(Error::invalid(
                            "messages",
                            "a tool result must follow the assistant message that called the tool",
                        ));
                    };
                    if !parts
                        .iter()
                        .any(|p| matches!(p, ContentPart::ToolCall { id, .. } if *id == call_id))
                    {
                        return Err(Error::invalid(
                            "messages",
                            format!("no tool call `{call_id}` precedes this tool result"),
                        ));
                    }
                    parts.push(ContentPart::ToolResult {
                        call_id,
                        output: Value::String(content),
                        is_error: false,
                    });
                }
            }
        }
        if let Some(parts) = pending.take() {
            last_stored = Some(self.store_answer(tenant, &conversation.id, parts).await?);
        }
        let input = match (last_user, last_stored) {
            (Some(text), _) => TurnInput::Send { text },
            (None, Some(after)) => TurnInput::Continue { after },
            (None, None) => return Err(Error::invalid("messages", "nothing to answer")),
        };
        self.start_with(tenant, &conversation.id, input, options)
            .await
    }

    /// Goes on from a stored message: records the client's tool results (as an answer part
    /// of the chain), then answers them, or the new user message after them.
    pub async fn start_chained(&self, tenant: &TenantId, turn: ChainedTurn) -> Result<StartedRun> {
        let ChainedTurn {
            conversation,
            after,
            user_text,
            tool_results,
            options,
        } = turn;
        let conv = self
            .service()
            .get_conversation(tenant, &conversation)
            .await?;
        let after = after.or(conv.active_message_id);
        if user_text.is_none() && tool_results.is_empty() {
            return Err(Error::invalid("input", "must not be empty"));
        }
        let mut last = after.clone();
        if !tool_results.is_empty() {
            let Some(anchor) = &after else {
                return Err(Error::invalid(
                    "input",
                    "there is no call to give a result for",
                ));
            };
            let asked = self
                .service()
                .get_message(tenant, &conversation, anchor)
                .await?;
            let mut parts = Vec::new();
            for (call_id, output) in tool_results {
                let called = asked
                    .content
                    .iter()
                    .any(|p| matches!(p, ContentPart::ToolCall { id, .. } if *id == call_id));
                let answered = asked
                    .content
                    .iter()
                    .chain(parts.iter())
                    .any(|p| matches!(p, ContentPart::ToolResult { call_id: done, .. } if *done == call_id));
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
            self.service().check_quota(tenant).await?;
            let draft = MessageDraft {
                parent: Parent::Message(anchor.clone()),
                content: parts,
                ..MessageDraft::text(MessageRole::Assistant, "")
            };
            last = Some(
                self.service()
                    .append_message(tenant, &conversation, draft)
                    .await?
                    .id,
            );
        }
        let input = match (user_text, last) {
            (Some(text), Some(after)) => TurnInput::Reply { after, text },
            (Some(text), None) => TurnInput::Send { text },
            (None, Some(after)) => TurnInput::Continue { after },
            (None, None) => return Err(Error::invalid("input", "nothing to answer")),
        };
        self.start_with(tenant, &conversation, input, options).await
    }

    async fn store_answer(
        &self,
        tenant: &TenantId,
        conversation: &frontdesk_core::id::ConversationId,
        parts: Vec<ContentPart>,
    ) -> Result<MessageId> {
        let draft = MessageDraft {
            parent: Parent::Active,
            content: parts,
            ..MessageDraft::text(MessageRole::Assistant, "")
        };
        Ok(self
            .service()
            .append_message(tenant, conversation, draft)
            .await?
            .id)
    }
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
