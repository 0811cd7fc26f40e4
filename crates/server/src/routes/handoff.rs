//! Human handoff over the API: staff (a dashboard session, or a tenant's helpdesk with its
//! secret key, naming its person) take a conversation, reply, write internal notes, show
//! that they are typing and hand it back; they follow it live at `…/events`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk_core::conversation::{Conversation, Message};
use frontdesk_core::handoff::{Assignee, ConversationEvent};
use frontdesk_core::Error;
use serde::{Deserialize, Serialize};

use super::follow::{conversation_events, Viewer};
use crate::auth::SecretKeyAuth;
use crate::error::{path_id, ApiError, ApiResult, JsonBody};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/conversations/{conversation}/takeover",
            post(take_over),
        )
        .route(
            "/api/v1/conversations/{conversation}/staff-messages",
            post(staff_message),
        )
        .route(
            "/api/v1/conversations/{conversation}/handback",
            post(hand_back),
        )
        .route("/api/v1/conversations/{conversation}/typing", post(typing))
        .route("/api/v1/conversations/{conversation}/events", get(events))
}

fn conversation_id(value: &str) -> ApiResult<frontdesk_core::id::ConversationId> {
    path_id(
        value,
        frontdesk_core::id::ConversationId::parse,
        "conversation",
    )
}

/// Who acts: the signed-in member, or the person a secret key's caller names.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acting {
    /// The person acting, for callers with a secret key (a helpdesk's own agent): `id`,
    /// `name`, optional `avatar_url`. A dashboard session acts as its member.
    #[serde(default)]
    #[schema(nullable = false)]
    assignee: Option<Assignee>,
}

async fn acting(
    state: &AppState,
    auth: &SecretKeyAuth,
    named: Option<Assignee>,
) -> ApiResult<Assignee> {
    match (&auth.member, named) {
        (Some(member), _) => Ok(state.service.member_assignee(member).await?),
        (None, Some(named)) => {
            named.validate()?;
            Ok(named)
        }
        (None, None) => Err(ApiError(Error::invalid(
            "assignee",
            "name the person acting ({\"id\", \"name\"}) when calling with a secret key",
        ))),
    }
}

/// Takes a conversation: the agent stops answering there and the visitor hears that a person
/// joined. Taking one's own again changes nothing; one someone else holds is a 409.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation}/takeover", tag = "conversations",
    security(("secret_key" = [])), params(("conversation" = String, Path, description = "conversation id")),
    request_body(content = Acting, description = "the person acting: required with a secret key, left out with a dashboard session (its member acts)"),
    responses((status = 200, body = Conversation), (status = 404), (status = 409, description = "someone else holds it"), (status = 422)))]
pub async fn take_over(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    body: Option<JsonBody<Acting>>,
) -> ApiResult<Json<Conversation>> {
    let conversation = conversation_id(&conversation)?;
    let by = acting(&state, &auth, body.and_then(|b| b.0.assignee)).await?;
    Ok(Json(
        state
            .runner
            .take_over(&auth.tenant, &conversation, &by)
            .await?,
    ))
}

/// A staff reply or internal note.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffMessage {
    content: String,
    /// An internal note: stored, shown to staff, never to the visitor or the model.
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    #[schema(nullable = false)]
    assignee: Option<Assignee>,
}

/// What a staff message made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StaffPostedView {
    /// The reply as stored (none for an internal note).
    message: Option<Message>,
    /// Its timeline event (`message.created` or `note.created`).
    event: ConversationEvent,
    conversation: Conversation,
}

/// Replies to the visitor (shown at once in their widget, marked as from a person) or adds
/// an internal note. Replying to a conversation nobody holds takes it.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation}/staff-messages", tag = "conversations",
    security(("secret_key" = [])), params(("conversation" = String, Path, description = "conversation id")),
    request_body = StaffMessage,
    responses((status = 201, body = StaffPostedView), (status = 404), (status = 409, description = "someone else holds it"), (status = 422)))]
pub async fn staff_message(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    JsonBody(input): JsonBody<StaffMessage>,
) -> ApiResult<(StatusCode, Json<StaffPostedView>)> {
    let conversation = conversation_id(&conversation)?;
    let by = acting(&state, &auth, input.assignee).await?;
    let posted = state
        .runner
        .staff_message(
            &auth.tenant,
            &conversation,
            &by,
            &input.content,
            input.internal,
        )
        .await?;
    let conversation = state
        .service
        .get_conversation(&auth.tenant, &conversation)
        .await
        .unwrap_or(posted.conversation);
    Ok((
        StatusCode::CREATED,
        Json(StaffPostedView {
            message: posted.message,
            event: posted.event,
            conversation,
        }),
    ))
}

/// Hands the conversation back to the agent, which answers the next message with the whole
/// conversation (staff replies included) as history.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation}/handback", tag = "conversations",
    security(("secret_key" = [])), params(("conversation" = String, Path, description = "conversation id")),
    request_body(content = Acting, description = "the person acting: required with a secret key, left out with a dashboard session (its member acts)"),
    responses((status = 200, body = Conversation), (status = 404), (status = 409, description = "someone else holds it, or the agent answers already"), (status = 422)))]
pub async fn hand_back(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    body: Option<JsonBody<Acting>>,
) -> ApiResult<Json<Conversation>> {
    let conversation = conversation_id(&conversation)?;
    let by = acting(&state, &auth, body.and_then(|b| b.0.assignee)).await?;
    Ok(Json(
        state
            .runner
            .hand_back(&auth.tenant, &conversation, &by)
            .await?,
    ))
}

/// Shows the visitor that a person is writing (a fleeting event).
#[utoipa::path(post, path = "/api/v1/conversations/{conversation}/typing", tag = "conversations",
    security(("secret_key" = [])), params(("conversation" = String, Path, description = "conversation id")),
    request_body(content = Acting, description = "the person acting: required with a secret key, left out with a dashboard session (its member acts)"),
    responses((status = 204), (status = 404), (status = 422)))]
pub async fn typing(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    body: Option<JsonBody<Acting>>,
) -> ApiResult<StatusCode> {
    let conversation = conversation_id(&conversation)?;
    let by = acting(&state, &auth, body.and_then(|b| b.0.assignee)).await?;
    // The conversation must be the tenant's.
    state
        .service
        .get_conversation(&auth.tenant, &conversation)
        .await?;
    state.runner.typing(&auth.tenant, &conversation, &by.name);
    Ok(StatusCode::NO_CONTENT)
}

/// The conversation's timeline (taken, replies, notes, handed back). With
/// `Accept: text/event-stream`: then what happens live, resuming after `Last-Event-ID`.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation}/events", tag = "conversations",
    security(("secret_key" = [])), params(("conversation" = String, Path, description = "conversation id")),
    responses((status = 200, body = Vec<ConversationEvent>), (status = 400), (status = 404)))]
pub async fn events(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(conversation): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let conversation = conversation_id(&conversation)?;
    state
        .service
        .get_conversation(&auth.tenant, &conversation)
        .await?;
    let after = i64::try_from(super::turns::last_event_id(&headers)?).unwrap_or(i64::MAX);
    if super::turns::wants_sse(&headers) {
        return Ok(conversation_events(
            state.service.clone(),
            state.runner.feed().clone(),
            auth.tenant,
            conversation,
            after,
            Viewer::Staff,
        ));
    }
    let events = state
        .service
        .conversation_events(&auth.tenant, &conversation, after, 1_000)
        .await?;
    Ok(Json(events).into_response())
}
