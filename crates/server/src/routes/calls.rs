//! Calls over the API: the list (filters and search), one call with its transcript, tools,
//! usage and summary, outbound phone calls, and short-lived Realtime client secrets for
//! browsers that connect straight to the provider.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk_core::agent::AgentRef;
use frontdesk_core::conversation::Cursor;
use frontdesk_core::voice::{Call, CallChannel, CallQuery, CallStatus};
use frontdesk_core::Error;
use serde::Deserialize;
use serde_json::Value;

use super::ListPage;
use crate::auth::SecretKeyAuth;
use crate::error::{path_id, ApiResult, JsonBody, Query};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/calls", get(list_calls).post(place_call))
        .route("/api/v1/calls/{call}", get(get_call))
        .route(
            "/api/v1/agents/{agent}/realtime-client-secrets",
            post(client_secret),
        )
}

/// Filters of the call list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallParams {
    /// Only calls of this agent (id or slug).
    agent: Option<String>,
    /// `active`, `completed`, `failed` or `transferred`.
    status: Option<String>,
    /// `phone` or `browser`.
    channel: Option<String>,
    /// Words the numbers, summary or transcript hold.
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Lists calls, newest first.
#[utoipa::path(get, path = "/api/v1/calls", tag = "calls", security(("secret_key" = [])),
    params(CallParams), responses((status = 200, body = ListPage<Call>), (status = 400), (status = 404, description = "no such agent"), (status = 422)))]
pub async fn list_calls(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Query(params): Query<CallParams>,
) -> ApiResult<Json<ListPage<Call>>> {
    let status = params
        .status
        .as_deref()
        .map(|s| {
            CallStatus::parse(s).ok_or_else(|| {
                Error::invalid(
                    "status",
                    "must be one of active, completed, failed, transferred",
                )
            })
        })
        .transpose()?;
    let channel = params
        .channel
        .as_deref()
        .map(|c| {
            CallChannel::parse(c)
                .ok_or_else(|| Error::invalid("channel", "must be phone or browser"))
        })
        .transpose()?;
    let after = params.cursor.as_deref().map(Cursor::decode).transpose()?;
    let query = CallQuery {
        agent_id: None,
        status,
        channel,
        search: params.q,
        limit: state.service.page_size(params.limit)?,
        after,
    };
    let page = state
        .service
        .list_calls(&auth.tenant, params.agent.as_deref(), query)
        .await?;
    let next_cursor = page.next.map(|c| c.encode());
    Ok(Json(ListPage {
        has_more: next_cursor.is_some(),
        data: page.items,
        next_cursor,
    }))
}

/// One call: its transcript (both sides), tool calls, usage, cost and summary.
#[utoipa::path(get, path = "/api/v1/calls/{call}", tag = "calls", security(("secret_key" = [])),
    params(("call" = String, Path, description = "call id")),
    responses((status = 200, body = Call), (status = 404)))]
pub async fn get_call(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(call): Path<String>,
) -> ApiResult<Json<Call>> {
    let id = path_id(&call, frontdesk_core::id::CallId::parse, "call")?;
    Ok(Json(state.service.get_call(&auth.tenant, &id).await?))
}

/// An outbound call to place.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceCall {
    /// The agent that talks (id or slug).
    pub agent: String,
    /// The number to call (E.164).
    pub to: String,
    /// The tenant's Twilio number to call from (E.164); the agent's `voice.phone_number`
    /// when left out.
    #[serde(default)]
    pub from: Option<String>,
}

/// Places an outbound phone call through the tenant's Twilio account: Twilio rings `to`
/// and, when answered, asks this server's voice webhook what to do, as for a call in.
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls", security(("secret_key" = [])),
    request_body = PlaceCall,
    responses((status = 201, body = Call), (status = 404, description = "no such agent"),
        (status = 409, description = "Twilio or the public URL is not set up"), (status = 422), (status = 429, description = "the tenant's calls are at their limit"), (status = 502)))]
pub async fn place_call(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(input): JsonBody<PlaceCall>,
) -> ApiResult<(StatusCode, Json<Call>)> {
    let agent = state
        .service
        .get_agent(&auth.tenant, &AgentRef::parse(&input.agent)?)
        .await?;
    let call = frontdesk_voice::session::place_call(
        &state.voice,
        &agent,
        &input.to,
        input.from.as_deref(),
    )
    .await
    .map_err(super::voice::voice_error)?;
    Ok((StatusCode::CREATED, Json(call)))
}

/// Mints a short-lived Realtime client secret configured from the agent (instructions,
/// voice, tools, turn detection), for a browser that connects straight to the provider over
/// WebRTC. The answer is the provider's: `{value, expires_at, session}`.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/realtime-client-secrets", tag = "calls",
    security(("secret_key" = [])), params(("agent" = String, Path, description = "agent id or slug")),
    responses((status = 200, body = Object), (status = 404), (status = 409, description = "the agent has no realtime model"), (status = 422), (status = 502)))]
pub async fn client_secret(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
) -> ApiResult<Json<Value>> {
    let agent = state
        .service
        .get_agent(&auth.tenant, &AgentRef::parse(&agent)?)
        .await?;
    let secret = frontdesk_voice::session::client_secret(&state.voice, &agent)
        .await
        .map_err(super::voice::voice_error)?;
    Ok(Json(secret))
}
