//! The OpenAI-compatible API (`/openai/v1`): `models` lists the tenant's agents, and
//! `chat/completions` and `responses` run one (the `model` names the agent) — a thin translation of the
//! request into a stateless turn and of the run's events into OpenAI's shapes. The agent's
//! own tools run server-side; tools the client sends are offered as client tools and come
//! back as `tool_calls`, as from a plain model. Errors keep our JSON shape, whose `message`,
//! `type` and `code` are what OpenAI's clients read, with the statuses they map to exceptions.

mod chat;
mod responses;

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

/// An agent as an OpenAI model.
#[derive(Debug, Serialize)]
struct Model {
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

#[derive(Debug, Serialize)]
struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

async fn list_models(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
) -> ApiResult<Json<ModelList>> {
    let agents = state.service.list_agents(&auth.tenant).await?;
    Ok(Json(ModelList {
        object: "list",
        data: agents.into_iter().map(Model::from).collect(),
    }))
}

async fn get_model(
    State(state): State<AppState>,
    auth: SecretKeyAuth,
    Path(model): Path<String>,
) -> ApiResult<Json<Model>> {
    let agent = state
        .service
        .get_agent(&auth.tenant, &AgentRef::parse(&model)?)
        .await?;
    Ok(Json(agent.into()))
}
