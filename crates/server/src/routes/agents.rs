//! `/api/v1/agents`: list, create, get, update (JSON merge patch), delete, versions; and
//! trying its tools: a webhook request sent once, the tools its MCP servers offer.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use frontdesk_core::agent::{Agent, AgentRef, AgentSpec, AgentVersion, ToolEntry};
use frontdesk_core::tool::{McpServerTools, WebhookTrial};
use serde::Deserialize;
use serde_json::Value;

use super::ListPage;
use crate::auth::SecretKeyAuth;
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/agents", get(list_agents).post(create_agent))
        .route(
            "/api/v1/agents/{agent}",
            get(get_agent).patch(update_agent).delete(delete_agent),
        )
        .route("/api/v1/agents/{agent}/versions", get(list_versions))
        .route(
            "/api/v1/agents/{agent}/tools/test",
            axum::routing::post(test_tool),
        )
        .route("/api/v1/agents/{agent}/mcp-tools", get(mcp_tools))
}

/// A webhook tool to send once, and the arguments to send.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolTest {
    /// The tool as saved or as being edited (a `webhook` entry of the agent's `tools`).
    pub tool: ToolEntry,
    /// Arguments as the model would write them: checked against the tool's `parameters`.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub arguments: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A path segment naming an agent; one that is neither id nor slug cannot exist (404).
fn agent_ref(value: &str) -> ApiResult<AgentRef> {
    AgentRef::parse(value)
        .map_err(|_| ApiError(frontdesk_core::Error::NotFound { resource: "agent" }))
}

/// Lists the tenant's agents, by slug.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents", security(("secret_key" = [])),
    responses((status = 200, body = ListPage<Agent>)))]
pub async fn list_agents(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ListPage<Agent>>> {
    Ok(Json(ListPage::all(
        state.service.list_agents(&auth.tenant).await?,
    )))
}

/// Creates an agent.
#[utoipa::path(post, path = "/api/v1/agents", tag = "agents", security(("secret_key" = [])),
    request_body = AgentSpec,
    responses((status = 201, body = Agent), (status = 409, description = "slug taken"), (status = 422, description = "invalid field")))]
pub async fn create_agent(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    JsonBody(spec): JsonBody<Value>,
) -> ApiResult<(StatusCode, Json<Agent>)> {
    let agent = state.service.create_agent(&auth.tenant, spec).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Gets an agent by id (`agt_…`) or slug.
#[utoipa::path(get, path = "/api/v1/agents/{agent}", tag = "agents", security(("secret_key" = [])),
    params(("agent" = String, Path, description = "agent id or slug")),
    responses((status = 200, body = Agent), (status = 404)))]
pub async fn get_agent(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(
        state
            .service
            .get_agent(&auth.tenant, &agent_ref(&agent)?)
            .await?,
    ))
}

/// Changes an agent with a JSON merge patch (fields left out stay; `null` resets a field).
/// Every change is kept as a new version.
#[utoipa::path(patch, path = "/api/v1/agents/{agent}", tag = "agents", security(("secret_key" = [])),
    params(("agent" = String, Path, description = "agent id or slug")),
    request_body(content = Object, description = "any subset of the agent's fields"),
    responses((status = 200, body = Agent), (status = 404), (status = 409), (status = 422)))]
pub async fn update_agent(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> ApiResult<Json<Agent>> {
    Ok(Json(
        state
            .service
            .update_agent(&auth.tenant, &agent_ref(&agent)?, patch)
            .await?,
    ))
}

/// Deletes an agent. Its conversations stay; its slug becomes free.
#[utoipa::path(delete, path = "/api/v1/agents/{agent}", tag = "agents", security(("secret_key" = [])),
    params(("agent" = String, Path, description = "agent id or slug")),
    responses((status = 204), (status = 404)))]
pub async fn delete_agent(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_agent(&auth.tenant, &agent_ref(&agent)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lists an agent's versions, newest first.
#[utoipa::path(get, path = "/api/v1/agents/{agent}/versions", tag = "agents", security(("secret_key" = [])),
    params(("agent" = String, Path, description = "agent id or slug")),
    responses((status = 200, body = ListPage<AgentVersion>), (status = 404)))]
pub async fn list_versions(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
) -> ApiResult<Json<ListPage<AgentVersion>>> {
    Ok(Json(ListPage::all(
        state
            .service
            .agent_versions(&auth.tenant, &agent_ref(&agent)?)
            .await?,
    )))
}

/// Sends a webhook tool once for the agent, signed as a run signs it and marked
/// `X-Frontdesk-Test: 1`: the request as sent and the response (or why none came). The
/// tool need not be saved; the URL gets the same checks as in a run.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/tools/test", tag = "agents", security(("secret_key" = [])),
    params(("agent" = String, Path, description = "agent id or slug")),
    request_body = ToolTest,
    responses((status = 200, body = WebhookTrial), (status = 404), (status = 422)))]
pub async fn test_tool(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
    JsonBody(test): JsonBody<ToolTest>,
) -> ApiResult<Json<WebhookTrial>> {
    let agent = state
        .service
        .get_agent(&auth.tenant, &agent_ref(&agent)?)
        .await?;
    Ok(Json(
        state
            .runner
            .try_webhook(&agent, &test.tool, &test.arguments)
            .await?,
    ))
}

/// The tools each of the agent's MCP servers offers now (each asked afresh), or why one
/// could not be asked.
#[utoipa::path(get, path = "/api/v1/agents/{agent}/mcp-tools", tag = "agents", security(("secret_key" = [])),
    params(("agent" = String, Path, description = "agent id or slug")),
    responses((status = 200, body = ListPage<McpServerTools>), (status = 404)))]
pub async fn mcp_tools(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(agent): Path<String>,
) -> ApiResult<Json<ListPage<McpServerTools>>> {
    let agent = state
        .service
        .get_agent(&auth.tenant, &agent_ref(&agent)?)
        .await?;
    Ok(Json(ListPage::all(state.runner.mcp_tools(&agent).await?)))
}
