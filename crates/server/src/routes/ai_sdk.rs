//! The Vercel AI SDK's UI message stream (`POST /api/v1/ai-sdk/chat/{agent}`), so `useChat`
//! with `DefaultChatTransport({api})` can talk to an agent. The request's UI messages become
//! a turn and the run's events become UI message chunks (`start`, `text-*`, `tool-*`,
//! `data-*`, `finish`, `error`) ending in `data: [DONE]`.
//!
//! A chat whose `id` is one of the tenant's conversations (`conv_…`, made with the native
//! API) goes on in that conversation: the server's history counts and only the new user
//! message is taken. Any other `id` is a stateless chat: its history is stored as a
//! conversation of its own, as for Chat Completions. The agent's tools run on the server and
//! show as tool parts with their output; approvals, handoffs, guardrails and structured
//! answers come as `data-approval`, `data-handoff`, `data-guardrail`, `data-structured` parts.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use frontdesk_agents::{
    AgentMatch, Follower, Imported, Input, NewConversationTurn, Target, TurnOptions, TurnRequest,
};
use frontdesk_core::agent::AgentRef;
use frontdesk_core::conversation::ContentPart;
use frontdesk_core::id::ConversationId;
use frontdesk_core::run::{FinishReason, RunEvent, SequencedEvent};
use frontdesk_core::Error;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::routes::wire::{self, Encoder, Frames};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/ai-sdk/chat/{agent}", post(chat))
}

/// What `DefaultChatTransport` posts (other body fields are the app's and ignored).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UiChatRequest {
    #[serde(default)]
    id: Option<String>,
    #[schema(min_items = 1)]
    messages: Vec<UiMessage>,
    #[serde(default)]
    trigger: Option<String>,
    /// The run's context (`body: {context}` in `DefaultChatTransport`): a new conversation
    /// keeps it as its metadata; a conversation that goes on gets it over its own.
    #[serde(default)]
    context: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct UiMessage {
    role: String,
    #[serde(default)]
    parts: Vec<Value>,
}

/// The history in UI messages, and the system messages' text.
fn history_of(messages: &[UiMessage]) -> Result<(Vec<Imported>, Vec<String>), Error> {
    let mut history = Vec::new();
    let mut instructions = Vec::new();
    for (idx, message) in messages.iter().enumerate() {
        let mut text = Vec::new();
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for part in &message.parts {
            let kind = part["type"].as_str().unwrap_or_default();
            if kind == "text" {
                text.push(part["text"].as_str().unwrap_or_default().to_owned());
            } else if kind.starts_with("tool-") || kind == "dynamic-tool" {
                let name = if kind == "dynamic-tool" {
                    part["toolName"].as_str().unwrap_or_default().to_owned()
                } else {
                    kind.trim_start_matches("tool-").to_owned()
                };
                let Some(id) = part["toolCallId"].as_str() else {
                    return Err(Error::invalid(
                        format!("messages[{idx}].parts"),
                        "a tool part needs a toolCallId",
                    ));
                };
                calls.push((id.to_owned(), name, part["input"].to_string()));
                match part["state"].as_str() {
                    Some("output-available") => results.push(Imported::ToolResult {
                        call_id: id.to_owned(),
                        content: match &part["output"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        },
                    }),
                    Some("output-error") => results.push(Imported::ToolResult {
                        call_id: id.to_owned(),
                        content: part["errorText"].as_str().unwrap_or("error").to_owned(),
                    }),
                    _ => {}
                }
            }
        }
        let text = text.join("");
        match message.role.as_str() {
            "user" => history.push(Imported::User(text)),
            "system" => instructions.push(text),
            "assistant" => {
                history.push(Imported::Assistant {
                    text,
                    tool_calls: calls,
                });
                history.extend(results);
            }
            other => {
                return Err(Error::invalid(
                    format!("messages[{idx}].role"),
                    format!("`{other}` is not one of user, assistant, system"),
                ))
            }
        }
    }
    Ok((history, instructions))
}

/// Runs a turn of `agent` and answers the UI message stream.
#[utoipa::path(post, path = "/api/v1/ai-sdk/chat/{agent}", tag = "ai-sdk", security(("secret_key" = [])),
    params(("agent" = String, Path, description = "agent id or slug")),
    request_body(content = UiChatRequest, description = "what the AI SDK's `DefaultChatTransport` posts: `id` (the conversation), `messages`, `trigger`"),
    responses((status = 200, description = "the UI message stream (`x-vercel-ai-ui-message-stream: v1`)", content_type = "text/event-stream", body = String),
              (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn chat(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
    JsonBody(request): JsonBody<UiChatRequest>,
) -> ApiResult<Response> {
    let tenant = &auth.tenant;
    let agent = state
        .service
        .get_agent(tenant, &AgentRef::parse(&agent)?)
        .await?;
    let regenerate = request.trigger.as_deref() == Some("regenerate-message");
    let (mut history, instructions) = history_of(&request.messages)?;
    let context = request.context.clone().unwrap_or_default();
    let options = TurnOptions::default().with_instructions(&instructions);
    let chained = TurnOptions {
        context: context.clone(),
        ..options.clone()
    };
    let conversation = match request.id.as_deref().map(ConversationId::parse) {
        Some(Ok(id)) => Some(state.service.get_conversation(tenant, &id).await?),
        _ => None,
    };
    let target = |conversation: ConversationId| Target::Conversation {
        id: conversation,
        agent: Some(AgentMatch {
            agent: agent.id.clone(),
            field: "id",
        }),
    };
    let turn = match conversation {
        Some(conv) if regenerate => {
            let answer = conv
                .active_message_id
                .ok_or_else(|| Error::invalid("trigger", "there is no answer to regenerate"))?;
            TurnRequest {
                tenant: tenant.clone(),
                target: target(conv.id),
                input: Input::Regenerate { message: answer },
                options: chained,
            }
        }
        Some(conv) => {
            let Some(Imported::User(text)) = history.pop() else {
                return Err(ApiError(Error::invalid(
                    "messages",
                    "the last message must be the user's",
                )));
            };
            TurnRequest {
                tenant: tenant.clone(),
                target: target(conv.id),
                input: Input::Reply {
                    after: None,
                    tool_results: Vec::new(),
                    text: Some(text),
                },
                options: chained,
            }
        }
        None => {
            if regenerate {
                while matches!(
                    history.last(),
                    Some(Imported::Assistant { .. } | Imported::ToolResult { .. })
                ) {
                    history.pop();
                }
            }
            TurnRequest {
                tenant: tenant.clone(),
                target: Target::New(NewConversationTurn {
                    agent: agent.spec.slug.clone(),
                    metadata: context,
                    source: Some("ai-sdk"),
                    history,
                    ..NewConversationTurn::default()
                }),
                input: Input::History,
                options,
            }
        }
    };
    match state.runner.start(turn).await {
        Ok(started) => Ok(stream(started.events)),
        // People handle the conversation: the message waits for them; the stream says
        // nothing more (their replies come with the conversation's next read).
        Err(Error::ForPeople { .. }) => Ok(stream(Follower::finished(Vec::new(), 0))),
        Err(other) => Err(other.into()),
    }
}

/// Translates run events into UI message chunks.
struct Chunks {
    text_open: Option<String>,
    texts: u32,
    finished: bool,
    out: String,
}

impl Chunks {
    fn push(&mut self, chunk: Value) {
        self.out.push_str(&format!("data: {chunk}\n\n"));
    }

    fn close_text(&mut self) {
        if let Some(id) = self.text_open.take() {
            self.push(json!({"type": "text-end", "id": id}));
        }
    }

    fn event(&mut self, event: RunEvent) {
        match event {
            RunEvent::RunStarted { message_id, .. } => {
                self.push(json!({"type": "start", "messageId": message_id}));
                self.push(json!({"type": "start-step"}));
            }
            RunEvent::MessageDelta { text } => {
                let id = match &self.text_open {
                    Some(id) => id.clone(),
                    None => {
                        self.texts += 1;
                        let id = format!("text-{}", self.texts);
                        self.push(json!({"type": "text-start", "id": id}));
                        self.text_open = Some(id.clone());
                        id
                    }
                };
                self.push(json!({"type": "text-delta", "id": id, "delta": text}));
            }
            RunEvent::ToolStarted {
                call_id,
                name,
                arguments,
            } => {
                self.close_text();
                self.push(
                    json!({"type": "tool-input-available", "toolCallId": call_id, "toolName": name,
                    "input": arguments, "providerExecuted": true}),
                );
            }
            RunEvent::ToolCompleted {
                call_id,
                result,
                is_error,
                ..
            } => {
                if is_error {
                    self.push(json!({"type": "tool-output-error", "toolCallId": call_id, "errorText": result, "providerExecuted": true}));
                } else {
                    let output =
                        serde_json::from_str::<Value>(&result).unwrap_or(Value::String(result));
                    self.push(json!({"type": "tool-output-available", "toolCallId": call_id, "output": output, "providerExecuted": true}));
                }
            }
            RunEvent::Handoff { from, to } => {
                self.close_text();
                self.push(json!({"type": "data-handoff", "data": {"from": from, "to": to}}));
            }
            RunEvent::ApprovalRequired {
                run_id,
                call_id,
                tool,
                arguments,
                approver,
                expires_at,
            } => {
                self.close_text();
                self.push(json!({"type": "data-approval", "id": call_id, "data": {
                    "run_id": run_id, "call_id": call_id, "tool": tool, "arguments": arguments,
                    "approver": approver, "expires_at": expires_at}}));
            }
            RunEvent::GuardrailTripped { guardrail, message } => {
                self.push(json!({"type": "data-guardrail", "data": {"guardrail": guardrail, "message": message}}));
            }
            RunEvent::MessageCompleted { message } => {
                self.close_text();
                if let Some(structured) = &message.structured {
                    self.push(json!({"type": "data-structured", "data": structured}));
                }
                // Cited sources become the protocol's source parts.
                for (n, part) in message.content.iter().enumerate() {
                    if let ContentPart::Citation {
                        title,
                        url,
                        section,
                        page,
                        ..
                    } = part
                    {
                        let id = format!("{}-src-{n}", message.id);
                        if url.is_empty() {
                            // A document without a link: named, with its place in it.
                            let mut named = title.clone();
                            if let Some(section) = section {
                                named.push_str(&format!(" › {section}"));
                            }
                            if let Some(page) = page {
                                named.push_str(&format!(" (page {page})"));
                            }
                            self.push(json!({"type": "source-document", "sourceId": id, "mediaType": "text/plain", "title": named}));
                        } else {
                            self.push(json!({"type": "source-url", "sourceId": id, "url": url, "title": title}));
                        }
                    }
                }
                // Calls the run left unanswered (none without client tools) stay inputs.
                let answered: Vec<&str> = message
                    .content
                    .iter()
                    .filter_map(|p| match p {
                        ContentPart::ToolResult { call_id, .. } => Some(call_id.as_str()),
                        _ => None,
                    })
                    .collect();
                for part in &message.content {
                    if let ContentPart::ToolCall {
                        id,
                        name,
                        arguments,
                    } = part
                    {
                        if !answered.contains(&id.as_str())
                            && !name.starts_with(frontdesk_agents::tools::HANDOFF_PREFIX)
                        {
                            self.push(json!({"type": "tool-input-available", "toolCallId": id, "toolName": name, "input": arguments}));
                        }
                    }
                }
                let finish = match message.finish_reason {
                    Some(FinishReason::Length) => "length",
                    Some(FinishReason::ContentFilter) => "content-filter",
                    Some(FinishReason::ToolCalls) => "tool-calls",
                    Some(FinishReason::Error) => "error",
                    Some(FinishReason::Cancelled) => "other",
                    Some(FinishReason::Stop) | None => "stop",
                };
                self.push(json!({"type": "finish-step"}));
                self.push(json!({"type": "finish", "finishReason": finish}));
                self.finished = true;
            }
            RunEvent::Error { message, .. } => {
                self.close_text();
                self.push(json!({"type": "error", "errorText": message}));
            }
            RunEvent::RunCompleted { .. } => {
                self.close_text();
                // A run that paused for an approval has no answer yet.
                if !self.finished {
                    self.push(json!({"type": "finish-step"}));
                    self.push(json!({"type": "finish", "finishReason": "other"}));
                    self.finished = true;
                }
            }
        }
    }
}

impl Encoder for Chunks {
    fn event(&mut self, event: SequencedEvent, out: &mut Frames) {
        Chunks::event(self, event.event);
        out.raw(&std::mem::take(&mut self.out));
    }

    async fn close(&mut self, out: &mut Frames) {
        out.raw("data: [DONE]\n\n");
    }
}

fn stream(follower: Follower) -> Response {
    let chunks = Chunks {
        text_open: None,
        texts: 0,
        finished: false,
        out: String::new(),
    };
    let mut response = wire::stream(follower, chunks);
    response.headers_mut().insert(
        "x-vercel-ai-ui-message-stream",
        axum::http::HeaderValue::from_static("v1"),
    );
    response
}
