//! Chat turns over the native API: `POST /api/v1/conversations/{id}/messages` starts a run
//! and streams its `RunEvent`s as SSE (`Accept: text/event-stream`) or answers one JSON
//! object when it ends; `GET /api/v1/runs/{id}/events` replays and follows a run from
//! `Last-Event-ID`; `POST /api/v1/runs/{id}/cancel` stops it. The run itself lives in the
//! Runner: leaving the stream does not stop it.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use frontdesk_agents::{
    Follower, Input, NewConversationTurn, Outcome, StartedRun, Target, TurnOptions, TurnRequest,
};
use frontdesk_core::conversation::{ContentPart, Message};
use frontdesk_core::id::{ConversationId, MessageId, RunId};
use frontdesk_core::run::{PendingApproval, RunEvent, RunFailure, RunStatus, SequencedEvent};
use frontdesk_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::SecretKeyAuth;
use crate::error::{path_id, ApiError, ApiResult, JsonBody};
use crate::routes::wire::{self, Encoder, Frames};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/conversations/{conversation}/messages",
            post(send_message),
        )
        .route(
            "/api/v1/conversations/{conversation}/messages/{message}/regenerate",
            post(regenerate),
        )
        .route(
            "/api/v1/conversations/{conversation}/messages/{message}/edit",
            post(edit_message),
        )
        .route("/api/v1/messages", post(start_conversation))
        .route("/api/v1/runs/{run}/events", axum::routing::get(run_events))
        .route("/api/v1/runs/{run}/cancel", post(cancel_run))
}

/// A message from the end user: text, or a list of content parts (text parts only, for now).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    #[schema(value_type = Object)]
    pub content: Value,
    /// Context for this turn, over the conversation's `metadata`: the agent's instructions
    /// read it as `{{context.NAME}}`, webhooks get it in `X-Frontdesk-Context`, MCP tools in
    /// `_meta`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, Value>,
    /// Another `provider/model` for this turn, in place of the agent's and its fallbacks.
    #[serde(default)]
    pub model: Option<String>,
    /// A saved version of the agent's config to answer with, in place of the current one.
    #[serde(default)]
    pub agent_version: Option<i64>,
}

impl SendMessage {
    /// What the turn adds to the conversation's context, and how it is answered.
    fn options(self) -> Result<TurnOptions, Error> {
        frontdesk_core::context::check("metadata", &self.metadata)?;
        Answering {
            model: self.model,
            agent_version: self.agent_version,
        }
        .options(TurnOptions {
            context: self.metadata,
            ..TurnOptions::default()
        })
    }
}

/// How another answer is made: with another model or a saved version of the agent (the
/// playground compares answers this way). Every field may be left out, and so may the body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answering {
    /// Another `provider/model`, in place of the agent's and its fallbacks.
    #[serde(default)]
    pub model: Option<String>,
    /// A saved version of the agent's config, in place of the current one.
    #[serde(default)]
    pub agent_version: Option<i64>,
}

impl Answering {
    /// The options with this model and version, once checked.
    fn options(self, options: TurnOptions) -> Result<TurnOptions, Error> {
        if let Some(model) = &self.model {
            frontdesk_core::agent::model_name("model", model)?;
        }
        if self.agent_version.is_some_and(|v| v < 1) {
            return Err(Error::invalid("agent_version", "versions start at 1"));
        }
        Ok(TurnOptions {
            model: self.model,
            agent_version: self.agent_version,
            ..options
        })
    }
}

impl SendMessage {
    fn text(&self) -> Result<String, Error> {
        match &self.content {
            Value::String(text) => Ok(text.clone()),
            Value::Array(parts) => {
                let mut texts = Vec::new();
                for (idx, part) in parts.iter().enumerate() {
                    if !part.is_object() {
                        return Err(Error::invalid(
                            format!("content[{idx}]"),
                            "must be an object",
                        ));
                    }
                    let part: ContentPart = frontdesk_core::json::from_value(part.clone())
                        .map_err(|e| Error::invalid(format!("content[{idx}]"), e.to_string()))?;
                    match part {
                        ContentPart::Text { text } => texts.push(text),
                        _ => {
                            return Err(Error::invalid(
                                format!("content[{idx}]"),
                                "only text parts are supported yet",
                            ))
                        }
                    }
                }
                Ok(texts.join("\n\n"))
            }
            _ => Err(Error::invalid(
                "content",
                "must be a string or a list of content parts",
            )),
        }
    }
}

/// A message that starts a new conversation with an agent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartConversation {
    /// The agent's slug or id.
    pub agent: String,
    #[schema(value_type = Object)]
    pub content: Value,
    #[serde(default)]
    pub end_user_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: serde_json::Map<String, Value>,
}

/// The answer of a turn in JSON mode.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TurnResult {
    pub run_id: RunId,
    pub conversation_id: ConversationId,
    pub status: RunStatus,
    pub message: Option<Message>,
    /// The calls waiting for a decision when `status` is `awaiting_approval`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<PendingApproval>,
    /// What stopped a run that did not finish (its `error` event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
}

/// The `error` event of a run, in JSON mode.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunError {
    pub code: RunFailure,
    pub message: String,
}

pub(crate) fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Sends a message and runs the agent: SSE of RunEvents, or one JSON object at the end.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation}/messages", tag = "conversations",
    security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id")),
    request_body = SendMessage,
    responses((status = 200, description = "`text/event-stream` of RunEvents with Accept: text/event-stream; otherwise the final message",
               content((TurnResult = "application/json"), (RunEvent = "text/event-stream"))),
              (status = 202, description = "people handle the conversation: the message was stored for them (`{\"handler\": \"human\", \"message\"}`) and no run started"),
              (status = 404), (status = 409, description = "the agent or its model is unavailable"), (status = 422),
              (status = 502, description = "the model provider failed")))]
pub async fn send_message(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<SendMessage>,
) -> ApiResult<Response> {
    let conversation = path_id(&conversation, ConversationId::parse, "conversation")?;
    let text = input.text()?;
    let run = state
        .runner
        .start(
            TurnRequest::on(&auth.tenant, &conversation, Input::Send { text })
                .with_options(input.options()?),
        )
        .await?;
    respond(run, &headers).await
}

/// Starts a conversation with an agent and sends its first message, in one call.
#[utoipa::path(post, path = "/api/v1/messages", tag = "conversations",
    security(("secret_key" = [])),
    request_body = StartConversation,
    responses((status = 200, description = "as for sending a message; `run.started` carries the new conversation's id",
               content((TurnResult = "application/json"), (RunEvent = "text/event-stream"))),
              (status = 404, description = "no such agent"), (status = 409), (status = 422), (status = 502)))]
pub async fn start_conversation(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    headers: HeaderMap,
    JsonBody(input): JsonBody<StartConversation>,
) -> ApiResult<Response> {
    let text = SendMessage {
        content: input.content,
        metadata: Default::default(),
        model: None,
        agent_version: None,
    }
    .text()?;
    let run = state
        .runner
        .start(TurnRequest {
            tenant: auth.tenant.clone(),
            target: Target::New(NewConversationTurn {
                agent: input.agent,
                end_user_id: input.end_user_id,
                title: input.title,
                metadata: input.metadata,
                ..NewConversationTurn::default()
            }),
            input: Input::Send { text },
            options: Default::default(),
        })
        .await?;
    respond(run, &headers).await
}

/// Another answer to a user message; the earlier answers stay as its siblings.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation}/messages/{message}/regenerate", tag = "conversations",
    security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id"),
           ("message" = String, Path, description = "the answer to replace, or the user message to answer again")),
    request_body = Option<Answering>,
    responses((status = 200, description = "as for sending a message",
               content((TurnResult = "application/json"), (RunEvent = "text/event-stream"))),
              (status = 404), (status = 409), (status = 422), (status = 502)))]
pub async fn regenerate(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path((conversation, message)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<JsonBody<Answering>>,
) -> ApiResult<Response> {
    let conversation = path_id(&conversation, ConversationId::parse, "conversation")?;
    let message = path_id(&message, MessageId::parse, "message")?;
    let options = body
        .map(|JsonBody(answering)| answering)
        .unwrap_or_default()
        .options(TurnOptions::default())?;
    let run = state
        .runner
        .start(
            TurnRequest::on(&auth.tenant, &conversation, Input::Regenerate { message })
                .with_options(options),
        )
        .await?;
    respond(run, &headers).await
}

/// Edits a user message: its new version starts a new branch (the old one stays) and is
/// answered.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation}/messages/{message}/edit", tag = "conversations",
    security(("secret_key" = [])),
    params(("conversation" = String, Path, description = "conversation id"),
           ("message" = String, Path, description = "the user message to edit")),
    request_body = SendMessage,
    responses((status = 200, description = "as for sending a message",
               content((TurnResult = "application/json"), (RunEvent = "text/event-stream"))),
              (status = 404), (status = 409), (status = 422), (status = 502)))]
pub async fn edit_message(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path((conversation, message)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(input): JsonBody<SendMessage>,
) -> ApiResult<Response> {
    let conversation = path_id(&conversation, ConversationId::parse, "conversation")?;
    let message = path_id(&message, MessageId::parse, "message")?;
    let text = input.text()?;
    let run = state
        .runner
        .start(
            TurnRequest::on(&auth.tenant, &conversation, Input::Edit { message, text })
                .with_options(input.options()?),
        )
        .await?;
    respond(run, &headers).await
}

/// A started run as the client asked: SSE, or one JSON object when it ends.
async fn respond(run: StartedRun, headers: &HeaderMap) -> ApiResult<Response> {
    respond_events(run.run_id, run.conversation_id, run.events, headers).await
}

/// A run's events from a follower as the client asked: SSE, or one JSON object at the end
/// (of the run, or of this part of it when it pauses for an approval).
pub(crate) async fn respond_events(
    run_id: RunId,
    conversation_id: ConversationId,
    follower: Follower,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    if wants_sse(headers) {
        return Ok(sse(follower));
    }
    let Outcome {
        message,
        failure,
        status,
        approvals,
        ..
    } = Outcome::collect(run_id.clone(), conversation_id.clone(), follower).await;
    // A model provider that failed the run is an upstream failure (502); a run the agent's
    // own limits stopped (max_turns, budgets) is an answer that says so.
    if let (RunStatus::Failed, Some((failure, message))) = (status, &failure) {
        if let Some(error) = upstream_error(*failure, message) {
            return Err(error);
        }
    }
    Ok(Json(TurnResult {
        run_id,
        conversation_id,
        status,
        message,
        approvals,
        error: failure.map(|(code, message)| RunError { code, message }),
    })
    .into_response())
}

/// A failed run as an HTTP error, for the protocols that answer with a status: the model
/// provider's failures are 502 (`None` for the rest, which each protocol answers its way).
pub(crate) fn upstream_error(failure: RunFailure, message: &str) -> Option<ApiError> {
    failure.is_upstream().then(|| {
        ApiError(Error::Upstream {
            message: message.to_owned(),
        })
    })
}

/// Replays a run's events after `Last-Event-ID` (or from the start) and follows it live.
#[utoipa::path(get, path = "/api/v1/runs/{run}/events", tag = "conversations", security(("secret_key" = [])),
    params(("run" = String, Path, description = "run id"),
           ("Last-Event-ID" = Option<u64>, Header, description = "the last event seen")),
    responses((status = 200, content_type = "text/event-stream"), (status = 404)))]
pub async fn run_events(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(run): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let run = path_id(&run, RunId::parse, "run")?;
    let last = last_event_id(&headers)?;
    let follower = state.runner.follow(&auth.tenant, &run, last).await?;
    Ok(sse(follower))
}

/// The `Last-Event-ID` a re-attaching client sends (0 without one).
pub(crate) fn last_event_id(headers: &HeaderMap) -> ApiResult<u64> {
    let invalid = || {
        ApiError(Error::bad_request(
            "invalid_last_event_id",
            "Last-Event-ID must be an event number",
        ))
    };
    match headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::trim))
    {
        None => Ok(0),
        Some(Ok(value)) => value.parse::<u64>().map_err(|_| invalid()),
        Some(Err(_)) => Err(invalid()),
    }
}

/// Stops a running turn; the partial answer is stored with `finish_reason: cancelled`.
#[utoipa::path(post, path = "/api/v1/runs/{run}/cancel", tag = "conversations", security(("secret_key" = [])),
    params(("run" = String, Path, description = "run id")),
    responses((status = 202), (status = 404)))]
pub async fn cancel_run(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(run): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let run = path_id(&run, RunId::parse, "run")?;
    match state.runner.cancel(&auth.tenant, &run) {
        // Not running here: it may be waiting for approvals (then its calls are rejected).
        Err(Error::NotFound { .. }) => {
            state
                .runner
                .cancel_paused(&auth.tenant, &run, frontdesk_core::run::DecidedBy::Staff)
                .await?
        }
        other => other?,
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"run_id": run, "status": "cancelling"})),
    ))
}

/// The native event stream: each `RunEvent` as it is, `id:` its sequence number (what
/// `Last-Event-ID` names), `event:` its type, `data:` its JSON.
struct NativeEvents;

impl Encoder for NativeEvents {
    fn event(&mut self, event: SequencedEvent, out: &mut Frames) {
        let data = serde_json::to_string(&event.event).unwrap_or_else(|_| "{}".to_owned());
        out.raw(&format!(
            "id: {}\nevent: {}\ndata: {data}\n\n",
            event.seq,
            event.event.name()
        ));
    }
}

/// A follower as the native event stream.
pub(crate) fn sse(follower: Follower) -> Response {
    wire::stream(follower, NativeEvents)
}
