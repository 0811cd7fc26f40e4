//! The playground: chat with any agent beside a live trace of each run. The page is a frame;
//! its script talks to the native API with the member's session and CSRF token, and reads
//! the same RunEvent stream as every other client. The last answer can be made again with
//! another saved version of the agent or another model, and the two read side by side.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use frontdesk_core::agent::AgentRef;

use super::frame::{Frame, When};
use super::render::{page, PageResult};
use super::session::StaffSession;
use crate::AppState;

/// How many of an agent's versions the comparison offers (the newest).
const MAX_VERSIONS: usize = 50;

#[derive(Debug, Default, Deserialize)]
pub struct PlaygroundQuery {
    #[serde(default)]
    agent: Option<String>,
}

pub async fn page_playground(
    State(state): State<AppState>,
    session: StaffSession,
    Query(query): Query<PlaygroundQuery>,
) -> PageResult {
    let staff = &session.staff;
    let agents = state.service.list_agents(&staff.tenant.id).await?;
    let chosen = query
        .agent
        .as_deref()
        .and_then(|slug| agents.iter().find(|a| a.spec.slug == slug))
        .or_else(|| agents.first())
        .map(|a| {
            json!({"slug": a.spec.slug, "name": a.spec.name, "model": a.spec.model,
                   "greeting": a.spec.widget.greeting})
        });
    // What a comparison may pick: the chosen agent's saved versions and the models there are.
    let versions: Vec<_> = match &chosen {
        Some(agent) => {
            let slug = agent["slug"].as_str().unwrap_or_default().to_owned();
            state
                .service
                .agent_versions(&staff.tenant.id, &AgentRef::Slug(slug))
                .await?
                .into_iter()
                .take(MAX_VERSIONS)
                .map(|v| json!({"version": v.version, "model": v.spec.model, "when": When::of(v.created_at)}))
                .collect()
        }
        None => Vec::new(),
    };
    let models = super::agents::model_choices(&state, &agents);
    let options: Vec<_> = agents
        .iter()
        .map(|a| json!({"slug": a.spec.slug, "name": a.spec.name}))
        .collect();
    Ok(page(
        StatusCode::OK,
        "playground.html",
        context! {
            frame => Frame::new(staff, "playground", "Playground"),
            agents => options, agent => chosen, versions, models,
        },
    ))
}
