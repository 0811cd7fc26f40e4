//! The OpenAI-compatible API (`/openai/v1`): `models` lists the tenant's agents, and
//! `chat/completions` and `responses` run one (the `model` names the agent) — a thin translation of the
//! request into a stateless turn and of the run's events into OpenAI's shapes. The agent's
//! own tools run server-side; tools the client sends are offered as client tools and come
//! back as `tool_calls`, as from a plain model. Errors keep our JSON shape, whose `message`,
//! `type` and `code` are what OpenAI's clients read, with the statuses they map to exceptions.

pub(crate) mod chat;
pub(crate) mod responses;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use frontdesk_core::agent::{Agent, AgentRef};
use serde::Serialize;

use crate::auth::SecretKeyAuth;
use crate::error::ApiResult;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openai/v1/models", get(list_models))
        .route("/openai/v1/models/{model}", get(get_model))
        .route("/openai/v1/chat/completions", post(chat::completions))
        .route("/openai/v1/responses", post(responses::create))
        .route("/openai/v1/responses/{id}", get(responses::retrieve))
}

/// The agent a request's `model` names; OpenAI answers an unknown model with 404, whatever
/// its name looks like.
async fn agent_for_model(
    state: &AppState,
    tenant: &frontdesk_core::id::TenantId,
    model: &str,
) -> ApiResult<Agent> {
    let not_found =
        || crate::error::ApiError(frontdesk_core::Error::NotFound { resource: "model" });
    let agent = AgentRef::parse(model).map_err(|_| not_found())?;
    match state.service.get_agent(tenant, &agent).await {
        Err(frontdesk_core::Error::NotFound { .. }) => Err(not_found()),
        other => Ok(other?),
    }
}

/// Most client tools in one request.
const MAX_CLIENT_TOOLS: usize = 128;

/// A tool the client sends, however its protocol nests it.
struct ClientTool<'a> {
    kind: &'a str,
    name: &'a str,
    /// Where the name sits under `tools[i]`, for errors.
    name_field: &'static str,
    description: Option<&'a str>,
    parameters: Option<&'a serde_json::Value>,
}

/// The client's function tools as tools to offer the model (client tools of the turn).
fn client_tools<'a>(
    tools: impl ExactSizeIterator<Item = ClientTool<'a>>,
) -> Result<Vec<frontdesk_core::model::ToolSpec>, frontdesk_core::Error> {
    use frontdesk_core::Error;
    if tools.len() > MAX_CLIENT_TOOLS {
        return Err(Error::invalid(
            "tools",
            format!("at most {MAX_CLIENT_TOOLS} tools"),
        ));
    }
    tools
        .enumerate()
        .map(|(idx, tool)| {
            if tool.kind != "function" {
                return Err(Error::invalid(
                    format!("tools[{idx}].type"),
                    "only function tools are supported",
                ));
            }
            frontdesk_core::validate::tool_name(
                &format!("tools[{idx}].{}", tool.name_field),
                tool.name,
            )?;
            Ok(frontdesk_core::model::ToolSpec {
                name: tool.name.to_owned(),
                description: tool.description.unwrap_or_default().to_owned(),
                parameters: tool
                    .parameters
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

/// An agent as an OpenAI model.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Model {
    id: String,
    object: &'static str,
    created: i64,
    owned_by: &'static str,
}

impl From<Agent> for Model {
    fn from(agent: Agent) -> Self {
        Model {
            id: agent.spec.slug,
            object: "model",
            created: agent.created_at.as_millis() / 1000,
            owned_by: "frontdesk",
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

/// The tenant's agents, as models (`id` is the agent's slug).
#[utoipa::path(get, path = "/openai/v1/models", tag = "openai", security(("secret_key" = [])),
    responses((status = 200, body = ModelList)))]
pub(crate) async fn list_models(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ModelList>> {
    let agents = state.service.list_agents(&auth.tenant).await?;
    Ok(Json(ModelList {
        object: "list",
        data: agents.into_iter().map(Model::from).collect(),
    }))
}

/// One agent, as a model.
#[utoipa::path(get, path = "/openai/v1/models/{model}", tag = "openai", security(("secret_key" = [])),
    params(("model" = String, Path, description = "the agent's slug")),
    responses((status = 200, body = Model), (status = 404, body = crate::openapi::ErrorBody)))]
pub(crate) async fn get_model(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(model): Path<String>,
) -> ApiResult<Json<Model>> {
    Ok(Json(
        agent_for_model(&state, &auth.tenant, &model).await?.into(),
    ))
}
