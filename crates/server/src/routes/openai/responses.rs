//! `POST /openai/v1/responses` and `GET /openai/v1/responses/{id}`: OpenAI's Responses API
//! over our conversations. A response is a run (`resp_…` carries the run's id); with
//! `previous_response_id` the turn goes on from that response's answer, with `conversation`
//! (a `conv_…` id) from the conversation's active message, and without either the `input`
//! items are a history of their own, as in Chat Completions. `function_call_output` items
//! answer the calls a previous response left for the client.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use frontdesk_agents::{
    AgentMatch, Imported, Input, NewConversationTurn, Outcome, Target, TurnOptions, TurnRequest,
};
use frontdesk_core::conversation::{ContentPart, Message, Usage};
use frontdesk_core::id::{ConversationId, RunId};
use frontdesk_core::run::{RunEvent, RunRecord, RunStatus, SequencedEvent};
use frontdesk_core::Error;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::routes::turns::upstream_error;
use crate::routes::wire::{self, Encoder, Frames};
use crate::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ResponsesRequest {
    model: String,
    input: Value,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    tools: Vec<FlatTool>,
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    conversation: Option<Value>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    user: Option<String>,
    /// The run's context: a new conversation keeps it as its metadata; a chained turn adds
    /// it over the conversation's.
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct FlatTool {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// The response id of a run, and back.
fn response_id(run: &RunId) -> String {
    format!("resp_{}", run.as_str().trim_start_matches("run_"))
}

fn run_of(response: &str) -> Result<RunId, Error> {
    response
        .strip_prefix("resp_")
        .and_then(|rest| RunId::parse(&format!("run_{rest}")).ok())
        .ok_or(Error::NotFound {
            resource: "response",
        })
}

/// The input as history items (and the instructions found among them).
fn parse_input(input: &Value) -> Result<(Vec<Imported>, Vec<String>), Error> {
    let items = match input {
        Value::String(text) => return Ok((vec![Imported::User(text.clone())], Vec::new())),
        Value::Array(items) => items,
        _ => {
            return Err(Error::invalid(
                "input",
                "must be a string or a list of items",
            ))
        }
    };
    let mut history = Vec::new();
    let mut instructions = Vec::new();
    for (idx, item) in items.iter().enumerate() {
        let field = format!("input[{idx}]");
        let kind = item["type"].as_str().unwrap_or("message");
        match kind {
            "message" => {
                let text = content_text(&item["content"], &field)?;
                match item["role"].as_str() {
                    Some("user") => history.push(Imported::User(text)),
                    Some("assistant") => history.push(Imported::Assistant {
                        text,
                        tool_calls: Vec::new(),
                    }),
                    Some("system" | "developer") => instructions.push(text),
                    _ => {
                        return Err(Error::invalid(
                            format!("{field}.role"),
                            "must be user, assistant, system or developer",
                        ))
                    }
                }
            }
            "function_call" => {
                let call = (
                    str_field(item, "call_id", &field)?,
                    str_field(item, "name", &field)?,
                    item["arguments"].as_str().unwrap_or("{}").to_owned(),
                );
                // Calls of one answer follow its text.
                match history.last_mut() {
                    Some(Imported::Assistant { tool_calls, .. }) => tool_calls.push(call),
                    _ => history.push(Imported::Assistant {
                        text: String::new(),
                        tool_calls: vec![call],
                    }),
                }
            }
            "function_call_output" => history.push(Imported::ToolResult {
                call_id: str_field(item, "call_id", &field)?,
                content: match &item["output"] {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                },
            }),
            other => {
                return Err(Error::invalid(
                    format!("{field}.type"),
                    format!("`{other}` items are not supported"),
                ))
            }
        }
    }
    Ok((history, instructions))
}

fn str_field(item: &Value, name: &str, field: &str) -> Result<String, Error> {
    item[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::invalid(format!("{field}.{name}"), "is required"))
}

fn content_text(content: &Value, field: &str) -> Result<String, Error> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for part in parts {
                match (part["type"].as_str(), part["text"].as_str()) {
                    (Some("input_text" | "output_text" | "text"), Some(text)) => texts.push(text),
                    _ => return Err(Error::invalid(field, "only text content is supported")),
                }
            }
            Ok(texts.join("\n"))
        }
        _ => Err(Error::invalid(
            field,
            "content must be a string or a list of parts",
        )),
    }
}

/// What the answer's shape needs from the request.
#[derive(Debug, Clone)]
struct Shape {
    model: String,
    instructions: Option<String>,
    previous_response_id: Option<String>,
    conversation: Option<ConversationId>,
    client_tools: Vec<String>,
}

/// Runs the agent named by `model` (its slug), as OpenAI's Responses API does: a `response`
/// object, or with `stream: true` its server-sent events. `previous_response_id` or
/// `conversation` continue a conversation kept here.
#[utoipa::path(post, path = "/openai/v1/responses", tag = "openai", security(("secret_key" = [])),
    request_body = ResponsesRequest,
    responses((status = 200, description = "a `response`, or with `stream: true` its events (`response.created` … `response.completed`)",
               content((Object = "application/json"), (String = "text/event-stream"))),
              (status = 404, description = "no such agent, previous response or conversation", body = crate::openapi::ErrorBody),
              (status = 502, description = "the model provider failed", body = crate::openapi::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(request): JsonBody<ResponsesRequest>,
) -> ApiResult<Response> {
    let tenant = &auth.tenant;
    let agent = super::agent_for_model(&state, tenant, &request.model).await?;
    let client_tools = super::client_tools(request.tools.iter().map(|tool| super::ClientTool {
        kind: &tool.kind,
        name: &tool.name,
        name_field: "name",
        description: tool.description.as_deref(),
        parameters: tool.parameters.as_ref(),
    }))?;
    let (history, mut instructions) = parse_input(&request.input)?;
    if let Some(extra) = &request.instructions {
        instructions.insert(0, extra.clone());
    }
    let options = TurnOptions {
        client_tools: client_tools.clone(),
        ..TurnOptions::default()
    }
    .with_instructions(&instructions);
    let conversation_id = match &request.conversation {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(value) => value["id"].as_str().map(str::to_owned),
    };
    let chained = match (&request.previous_response_id, conversation_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError(Error::invalid(
                "previous_response_id",
                "give previous_response_id or conversation, not both",
            )))
        }
        (Some(previous), None) => {
            let record = state
                .service
                .get_run(tenant, &run_of(previous)?)
                .await
                .map_err(|e| match e {
                    Error::NotFound { .. } => Error::NotFound {
                        resource: "response",
                    },
                    other => other,
                })?;
            let answer = answer_of(&record).ok_or(Error::NotFound {
                resource: "response",
            })?;
            Some((record.conversation_id, Some(answer.id)))
        }
        (None, Some(id)) => {
            let id = ConversationId::parse(&id).map_err(|_| not_found("conversation"))?;
            Some((id, None))
        }
        (None, None) => None,
    };
    let turn = match chained {
        Some((conversation, after)) => {
            let mut user_texts = Vec::new();
            let mut tool_results = Vec::new();
            for item in history {
                match item {
                    Imported::User(text) => user_texts.push(text),
                    Imported::ToolResult { call_id, content } => tool_results.push((call_id, content)),
                    Imported::Assistant { .. } => {
                        return Err(ApiError(Error::invalid(
                            "input",
                            "with previous_response_id or conversation, the input holds only new user messages and function_call_output items",
                        )))
                    }
                }
            }
            TurnRequest {
                tenant: tenant.clone(),
                target: Target::Conversation {
                    id: conversation,
                    agent: Some(AgentMatch {
                        agent: agent.id.clone(),
                        field: "model",
                    }),
                },
                input: Input::Reply {
                    after,
                    tool_results,
                    text: (!user_texts.is_empty()).then(|| user_texts.join("\n\n")),
                },
                options: TurnOptions {
                    context: request.metadata.clone().unwrap_or_default(),
                    ..options
                },
            }
        }
        None => TurnRequest {
            tenant: tenant.clone(),
            target: Target::New(NewConversationTurn {
                agent: request.model.clone(),
                end_user_id: request.user.clone(),
                metadata: request.metadata.clone().unwrap_or_default(),
                source: Some("openai.responses"),
                history,
                ..NewConversationTurn::default()
            }),
            input: Input::History,
            options,
        },
    };
    let started = state.runner.start(turn).await?;
    let shape = Shape {
        model: request.model.clone(),
        instructions: request.instructions.clone(),
        previous_response_id: request.previous_response_id.clone(),
        conversation: request
            .conversation
            .as_ref()
            .map(|_| started.conversation_id.clone()),
        client_tools: client_tools.iter().map(|t| t.name.clone()).collect(),
    };
    let id = response_id(&started.run_id);
    let created = frontdesk_core::time::Timestamp::now().as_millis() / 1000;
    if request.stream {
        let events = ResponseEvents {
            id,
            created,
            shape,
            seq: 0,
            text: None,
            answer: None,
        };
        return Ok(wire::stream(started.events, events));
    }
    let Outcome {
        message,
        failure,
        status,
        usage,
        ..
    } = Outcome::collect(started.run_id, started.conversation_id, started.events).await;
    if let Some(error) = failure.and_then(|(failure, message)| upstream_error(failure, &message)) {
        return Err(error);
    }
    Ok(Json(response_json(
        &id,
        created,
        &shape,
        status,
        message.as_ref(),
        &usage,
    ))
    .into_response())
}

/// A stored response (a run's answer), as `GET /responses/{id}` shows it.
#[utoipa::path(get, path = "/openai/v1/responses/{id}", tag = "openai", security(("secret_key" = [])),
    params(("id" = String, Path, description = "the response id (`resp_…`)")),
    responses((status = 200, description = "the `response`", body = Object),
              (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let record = state
        .service
        .get_run(&auth.tenant, &run_of(&id)?)
        .await
        .map_err(|e| match e {
            Error::NotFound { .. } => Error::NotFound {
                resource: "response",
            },
            other => other,
        })?;
    let message = answer_of(&record);
    let shape = Shape {
        model: record.agent.clone(),
        instructions: None,
        previous_response_id: None,
        conversation: None,
        client_tools: message
            .as_ref()
            .map(|m| {
                m.content
                    .iter()
                    .filter_map(|p| match p {
                        ContentPart::ToolCall { id, name, .. } if !answered(m, id) => {
                            Some(name.clone())
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok(Json(response_json(
        &id,
        record.created_at.as_millis() / 1000,
        &shape,
        record.status,
        message.as_ref(),
        &record.usage,
    )))
}

fn answered(message: &Message, call: &str) -> bool {
    message
        .content
        .iter()
        .any(|p| matches!(p, ContentPart::ToolResult { call_id, .. } if call_id == call))
}

/// The answer a run stored (its `message.completed`).
fn answer_of(record: &RunRecord) -> Option<Message> {
    record.events.iter().rev().find_map(|e| match &e.event {
        RunEvent::MessageCompleted { message } => Some((**message).clone()),
        _ => None,
    })
}

fn not_found(resource: &'static str) -> ApiError {
    ApiError(Error::NotFound { resource })
}

fn item_id(prefix: &str, response: &str) -> String {
    format!("{prefix}_{}", response.trim_start_matches("resp_"))
}

/// The client's calls in an answer, as `function_call` items.
fn call_items(message: &Message, shape: &Shape) -> Vec<Value> {
    message
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::ToolCall { id, name, arguments } if shape.client_tools.contains(name) => Some(json!({
                "type": "function_call",
                "id": format!("fc_{id}"),
                "call_id": id,
                "name": name,
                "arguments": match arguments { Value::String(raw) => raw.clone(), other => other.to_string() },
                "status": "completed",
            })),
            _ => None,
        })
        .collect()
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    })
}

fn response_json(
    id: &str,
    created: i64,
    shape: &Shape,
    status: RunStatus,
    message: Option<&Message>,
    usage: &Usage,
) -> Value {
    let mut output = Vec::new();
    if let Some(message) = message {
        let text = message.text();
        if !text.is_empty() {
            output.push(message_item(&item_id("msg", id), &text, "completed"));
        }
        output.extend(call_items(message, shape));
    }
    let status = match status {
        RunStatus::Completed => "completed",
        RunStatus::Running => "in_progress",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Failed => "failed",
        RunStatus::AwaitingApproval => "incomplete",
    };
    json!({
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": shape.model,
        "output": output,
        "usage": usage_json(usage),
        "instructions": shape.instructions,
        "previous_response_id": shape.previous_response_id,
        "conversation": shape.conversation.as_ref().map(|c| json!({"id": c})),
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": true,
        "temperature": null,
        "top_p": null,
        "metadata": {},
        "error": null,
        "incomplete_details": null,
        "store": true,
        "text": {"format": {"type": "text"}},
    })
}

/// The run's events as Responses stream events, numbered.
struct ResponseEvents {
    id: String,
    created: i64,
    shape: Shape,
    seq: u64,
    /// The answer's text so far, once it began.
    text: Option<String>,
    /// The stored answer, until `run.completed` brings the status and usage.
    answer: Option<Message>,
}

impl ResponseEvents {
    fn push(&mut self, out: &mut Frames, kind: &str, mut data: Value) {
        data["type"] = json!(kind);
        data["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.named(kind, &data);
    }
}

impl Encoder for ResponseEvents {
    fn open(&mut self, out: &mut Frames) {
        let shell = response_json(
            &self.id,
            self.created,
            &self.shape,
            RunStatus::Running,
            None,
            &Usage::default(),
        );
        self.push(out, "response.created", json!({"response": shell}));
        self.push(out, "response.in_progress", json!({"response": shell}));
    }

    fn event(&mut self, event: SequencedEvent, out: &mut Frames) {
        let msg_id = item_id("msg", &self.id);
        match event.event {
            RunEvent::MessageDelta { text } => {
                if self.text.is_none() {
                    self.push(out, "response.output_item.added", json!({"output_index": 0, "item": {"type": "message", "id": msg_id, "role": "assistant", "status": "in_progress", "content": []}}));
                    self.push(out, "response.content_part.added", json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}));
                    self.text = Some(String::new());
                }
                if let Some(all) = self.text.as_mut() {
                    all.push_str(&text);
                }
                self.push(out, "response.output_text.delta", json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "delta": text, "logprobs": []}));
            }
            RunEvent::MessageCompleted { message } => {
                let mut index = 0;
                if let Some(text) = self.text.take() {
                    self.push(out, "response.output_text.done", json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []}));
                    self.push(out, "response.content_part.done", json!({"item_id": msg_id, "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": []}}));
                    self.push(out, "response.output_item.done", json!({"output_index": 0, "item": message_item(&msg_id, &text, "completed")}));
                    index = 1;
                }
                for item in call_items(&message, &self.shape) {
                    let mut open = item.clone();
                    open["arguments"] = json!("");
                    open["status"] = json!("in_progress");
                    self.push(
                        out,
                        "response.output_item.added",
                        json!({"output_index": index, "item": open}),
                    );
                    self.push(out, "response.function_call_arguments.delta", json!({"item_id": item["id"], "output_index": index, "delta": item["arguments"]}));
                    self.push(out, "response.function_call_arguments.done", json!({"item_id": item["id"], "output_index": index, "arguments": item["arguments"]}));
                    self.push(
                        out,
                        "response.output_item.done",
                        json!({"output_index": index, "item": item}),
                    );
                    index += 1;
                }
                self.answer = Some(*message);
            }
            // `run.completed` follows the answer, with the run's usage and status.
            RunEvent::RunCompleted { status, usage } => {
                if let Some(message) = self.answer.take() {
                    let response = response_json(
                        &self.id,
                        self.created,
                        &self.shape,
                        status,
                        Some(&message),
                        &usage,
                    );
                    let kind = if status == RunStatus::Failed {
                        "response.failed"
                    } else {
                        "response.completed"
                    };
                    self.push(out, kind, json!({"response": response}));
                }
            }
            RunEvent::Error { code, message } => {
                self.push(
                    out,
                    "error",
                    json!({"code": code, "message": message, "param": null}),
                );
            }
            RunEvent::RunStarted { .. }
            | RunEvent::ToolStarted { .. }
            | RunEvent::ToolCompleted { .. }
            | RunEvent::Handoff { .. }
            | RunEvent::ApprovalRequired { .. }
            | RunEvent::GuardrailTripped { .. } => {}
        }
    }
}
