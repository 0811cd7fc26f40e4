//! The widget's side of human handoff: a visitor follows their conversation (staff replies,
//! a person joining, the assistant coming back, typing, runs started elsewhere) and may ask
//! for a person with the widget's button.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use frontdesk_core::Error;
use serde::{Deserialize, Serialize};

use super::widget::{own_conversation, view_of, visitor};
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;

/// Follows the visitor's conversation: staff replies, "a person joined", "the assistant is
/// back", typing and runs starting, resuming after `Last-Event-ID`.
#[utoipa::path(get, path = "/widget/v1/conversations/{conversation}/events", tag = "widget", security(("visitor_token" = [])),
    params(("conversation" = String, Path, description = "conversation id"),
           ("Last-Event-ID" = Option<u64>, Header, description = "the last event seen")),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = crate::openapi::ErrorBody)))]
pub async fn conversation_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(conversation): Path<String>,
) -> ApiResult<Response> {
    let visitor = visitor(&state, &headers).await?;
    let conversation = own_conversation(&state, &visitor, &conversation).await?;
    let after = i64::try_from(crate::routes::turns::last_event_id(&headers)?).unwrap_or(i64::MAX);
    let view = view_of(&state, &conversation).await?;
    Ok(crate::routes::follow::conversation_events(
        state.service.clone(),
        state.runner.feed().clone(),
        visitor.tenant().clone(),
        conversation.id,
        after,
        crate::routes::follow::Viewer::Visitor(view),
    ))
}

/// What the visitor says when asking (the button's label in their language); the agent
/// answers it while the team is away.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    #[serde(default)]
    content: Option<String>,
}

/// What asking for a person came to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AskedForHuman {
    /// `waiting` (the team will join; `message` says so) or `away` (the agent answers:
    /// follow `run_id`).
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<frontdesk_core::id::RunId>,
}

/// The visitor asks for a person (the widget's button, when the agent offers it).
#[utoipa::path(post, path = "/widget/v1/conversations/{conversation}/human", tag = "widget", security(("visitor_token" = [])),
    params(("conversation" = String, Path, description = "conversation id")),
    request_body(content = AskBody, description = "optional: what the visitor says (the button's label)"),
    responses((status = 200, body = AskedForHuman), (status = 404, body = crate::openapi::ErrorBody),
              (status = 409, body = crate::openapi::ErrorBody, description = "the agent offers no person")))]
pub async fn ask_for_human(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(conversation): Path<String>,
    body: Option<JsonBody<AskBody>>,
) -> ApiResult<Json<AskedForHuman>> {
    let said = body
        .and_then(|b| b.0.content)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "I would like to talk to a person.".to_owned());
    frontdesk_core::validate::max_chars("content", &said, 2_000)?;
    let visitor = visitor(&state, &headers).await?;
    let conversation = own_conversation(&state, &visitor, &conversation).await?;
    let agent = state
        .service
        .get_agent(
            visitor.tenant(),
            &frontdesk_core::agent::AgentRef::Id(conversation.agent_id.clone()),
        )
        .await?;
    if !agent.spec.widget.human_button {
        return Err(ApiError(Error::Conflict {
            code: "no_human_handoff",
            message: "this assistant does not offer to connect you with a person".into(),
        }));
    }
    Ok(Json(
        match state
            .runner
            .visitor_asks_for_human(visitor.tenant(), &conversation, &agent, &said)
            .await?
        {
            frontdesk_agents::Asked::Waiting { message } => AskedForHuman {
                status: "waiting",
                message: Some(message),
                run_id: None,
            },
            frontdesk_agents::Asked::Away { run_id } => AskedForHuman {
                status: "away",
                message: None,
                run_id,
            },
        },
    ))
}
