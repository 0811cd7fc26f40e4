//! The playground: chat with any agent beside a live trace of each run. The page is a frame;
//! its script talks to the native API with the member's session and CSRF token, and reads
//! the same RunEvent stream as every other client.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use super::frame::Frame;
use super::render::{page, PageResult};
use super::session::StaffSession;
use crate::AppState;

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
    let options: Vec<_> = agents
        .iter()
        .map(|a| json!({"slug": a.spec.slug, "name": a.spec.name}))
        .collect();
    Ok(page(
        StatusCode::OK,
        "playground.html",
        context! {
            frame => Frame::new(staff, "playground", "Playground"),
            agents => options, agent => chosen,
        },
    ))
}
