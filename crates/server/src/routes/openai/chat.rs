//! `POST /openai/v1/chat/completions`: OpenAI's request becomes a stateless turn (system and
//! developer messages as extra instructions, the rest as history, `tools` as client tools);
//! the run's events become a `chat.completion` or `chat.completion.chunk`s ending in
//! `data: [DONE]`, with the usage chunk when `stream_options.include_usage` asks for it.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use frontdesk_agents::{
    Imported, Input, NewConversationTurn, Outcome, Target, TurnOptions, TurnRequest,
};
use frontdesk_core::conversation::{ContentPart, Message, Usage};
use frontdesk_core::run::{FinishReason, RunEvent, RunFailure, RunStatus, SequencedEvent};
use frontdesk_core::Error;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::routes::turns::upstream_error;
use crate::routes::wire::{self, Encoder, Frames};
use crate::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ChatRequest {
    model: String,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Vec<ChatTool>,
    #[serde(default)]
    user: Option<String>,
    /// Kept as the conversation's metadata: the run's context.
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<Value>,
    #[serde(default)]
    tool_calls: Vec<ChatToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ChatToolCall {
    id: String,
    function: FunctionCall,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct FunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct ChatTool {
    #[serde(rename = "type")]
    kind: String,
    function: FunctionDef,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct FunctionDef {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// The text of a message's `content`: a string, or text parts joined.
fn text_of(content: &Option<Value>, field: &str) -> Result<String, Error> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for part in parts {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("text"), Some(text)) => texts.push(text),
                    _ => {
                        return Err(Error::invalid(
                            field,
                            "only text content parts are supported",
                        ))
                    }
                }
            }
            Ok(texts.join("\n"))
        }
        Some(_) => Err(Error::invalid(field, "must be a string or a list of parts")),
    }
}

impl ChatRequest {
    /// The turn this request asks for.
    fn into_turn(
        self,
        tenant: &frontdesk_core::id::TenantId,
    ) -> Result<(TurnRequest, ChatShape), Error> {
        let mut instructions = Vec::new();
        let mut history = Vec::new();
        for (idx, message) in self.messages.iter().enumerate() {
            let field = format!("messages[{idx}].content");
            match message.role.as_str() {
                "system" | "developer" => instructions.push(text_of(&message.content, &field)?),
                "user" => history.push(Imported::User(text_of(&message.content, &field)?)),
                "assistant" => history.push(Imported::Assistant {
                    text: text_of(&message.content, &field)?,
                    tool_calls: message
                        .tool_calls
                        .iter()
                        .map(|c| {
                            (
                                c.id.clone(),
                                c.function.name.clone(),
                                c.function.arguments.clone(),
                            )
                        })
                        .collect(),
                }),
                "tool" => history.push(Imported::ToolResult {
                    call_id: message.tool_call_id.clone().ok_or_else(|| {
                        Error::invalid(format!("messages[{idx}].tool_call_id"), "is required")
                    })?,
                    content: text_of(&message.content, &field)?,
                }),
                other => {
                    return Err(Error::invalid(
                        format!("messages[{idx}].role"),
                        format!("`{other}` is not one of system, developer, user, assistant, tool"),
                    ))
                }
            }
        }
        let client_tools = super::client_tools(self.tools.iter().map(|tool| super::ClientTool {
            kind: &tool.kind,
            name: &tool.function.name,
            name_field: "function.name",
            description: tool.function.description.as_deref(),
            parameters: tool.function.parameters.as_ref(),
        }))?;
        let shape = ChatShape {
            model: self.model.clone(),
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
            client_tools: client_tools.iter().map(|t| t.name.clone()).collect(),
        };
        Ok((
            TurnRequest {
                tenant: tenant.clone(),
                target: Target::New(NewConversationTurn {
                    agent: self.model,
                    end_user_id: self.user,
                    metadata: self.metadata.unwrap_or_default(),
                    source: Some("openai.chat_completions"),
                    history,
                    ..NewConversationTurn::default()
                }),
                input: Input::History,
                options: TurnOptions {
                    client_tools,
                    ..TurnOptions::default()
                }
                .with_instructions(&instructions),
            },
            shape,
        ))
    }
}

/// What the answer's shape needs from the request.
#[derive(Debug, Clone)]
struct ChatShape {
    model: String,
    include_usage: bool,
    client_tools: Vec<String>,
}

/// The calls in an answer that are for the client (made, not answered).
fn client_calls(message: &Message, shape: &ChatShape) -> Vec<Value> {
    message
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::ToolCall {
                id,
                name,
                arguments,
            } if shape.client_tools.contains(name) => Some(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": match arguments {
                    Value::String(raw) => raw.clone(),
                    other => other.to_string(),
                }},
            })),
            _ => None,
        })
        .collect()
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    })
}

/// Runs the agent named by `model` (its slug) on the messages, as OpenAI's Chat Completions
/// do: JSON, or with `stream: true` server-sent `chat.completion.chunk`s ending in `[DONE]`.
/// The agent's own tools run here; `tools` the client sends come back as `tool_calls`.
#[utoipa::path(post, path = "/openai/v1/chat/completions", tag = "openai", security(("secret_key" = [])),
    request_body = ChatRequest,
    responses((status = 200, description = "a `chat.completion`, or with `stream: true` a stream of `chat.completion.chunk`s",
               content((Object = "application/json"), (String = "text/event-stream"))),
              (status = 404, description = "no agent has the slug `model` names", body = crate::openapi::ErrorBody),
              (status = 502, description = "the model provider failed", body = crate::openapi::ErrorBody)))]
pub async fn completions(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(request): JsonBody<ChatRequest>,
) -> ApiResult<Response> {
    let stream = request.stream;
    super::agent_for_model(&state, &auth.tenant, &request.model).await?;
    let (turn, shape) = request.into_turn(&auth.tenant)?;
    let started = state.runner.start(turn).await?;
    let id = format!("chatcmpl-{}", started.run_id.as_str());
    let created = frontdesk_core::time::Timestamp::now().as_millis() / 1000;
    if stream {
        return Ok(wire::stream(started.events, Chunks { id, created, shape }));
    }
    let Outcome {
        run_id,
        message,
        failure,
        status,
        usage,
        approvals,
        ..
    } = Outcome::collect(started.run_id, started.conversation_id, started.events).await;
    if let Some((failure, message)) = failure {
        return Err(run_error(failure, message));
    }
    let message = match (status, message) {
        (RunStatus::AwaitingApproval, _) => {
            return Err(ApiError(Error::awaiting_approval(
                "approval_required",
                run_id,
                approvals,
            )))
        }
        (_, Some(message)) => message,
        (_, None) => {
            return Err(ApiError(Error::internal(std::io::Error::other(
                "the run ended without an answer",
            ))))
        }
    };
    let calls = client_calls(&message, &shape);
    let text = message.text();
    let finish = message.finish_reason.unwrap_or(FinishReason::Stop).as_str();
    let mut body_message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) }, "refusal": null});
    if !calls.is_empty() {
        body_message["tool_calls"] = Value::Array(calls);
    }
    Ok(Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": shape.model,
        "choices": [{"index": 0, "message": body_message, "finish_reason": finish, "logprobs": null}],
        "usage": usage_json(&usage),
    }))
    .into_response())
}

/// A run that failed: the model provider's failures are 502, the agent's own limits 422.
fn run_error(failure: RunFailure, message: String) -> ApiError {
    upstream_error(failure, &message).unwrap_or_else(|| {
        ApiError(Error::invalid(
            "model",
            format!("the agent could not finish ({failure}): {message}"),
        ))
    })
}

fn chunk(id: &str, created: i64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
    })
}

/// The run's events as `chat.completion.chunk`s, ending in `data: [DONE]`.
struct Chunks {
    id: String,
    created: i64,
    shape: ChatShape,
}

impl Chunks {
    fn chunk(&self, out: &mut Frames, delta: Value, finish: Option<&str>) {
        out.data(&chunk(
            &self.id,
            self.created,
            &self.shape.model,
            delta,
            finish,
        ));
    }
}

impl Encoder for Chunks {
    fn open(&mut self, out: &mut Frames) {
        self.chunk(out, json!({"role": "assistant", "content": ""}), None);
    }

    fn event(&mut self, event: SequencedEvent, out: &mut Frames) {
        match event.event {
            RunEvent::MessageDelta { text } => self.chunk(out, json!({"content": text}), None),
            RunEvent::MessageCompleted { message } => {
                for (index, mut call) in client_calls(&message, &self.shape).into_iter().enumerate()
                {
                    call["index"] = json!(index);
                    self.chunk(out, json!({"tool_calls": [call]}), None);
                }
                match message.finish_reason.unwrap_or(FinishReason::Stop) {
                    // The `error` event says it.
                    FinishReason::Error => {}
                    FinishReason::Cancelled => self.chunk(out, json!({}), Some("stop")),
                    finish => self.chunk(out, json!({}), Some(finish.as_str())),
                }
            }
            RunEvent::Error { code, message } => {
                out.data(&json!({"error": {"message": message, "type": "server_error", "code": code, "param": null}}));
            }
            RunEvent::RunCompleted { status, usage } => {
                if status == RunStatus::AwaitingApproval {
                    out.data(&json!({"error": {"message": "the agent waits for a person to approve a tool call", "type": "invalid_request_error", "code": "approval_required", "param": null}}));
                }
                if self.shape.include_usage {
                    out.data(&json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.shape.model, "choices": [], "usage": usage_json(&usage)}));
                }
            }
            RunEvent::RunStarted { .. }
            | RunEvent::ToolStarted { .. }
            | RunEvent::ToolCompleted { .. }
            | RunEvent::Handoff { .. }
            | RunEvent::ApprovalRequired { .. }
            | RunEvent::GuardrailTripped { .. } => {}
        }
    }

    async fn close(&mut self, out: &mut Frames) {
        out.raw("data: [DONE]\n\n");
    }
}
