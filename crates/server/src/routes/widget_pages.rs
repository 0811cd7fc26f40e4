//! The widget's pages and assets: the script itself, the `/demo` shop that embeds it, and
//! an agent's hosted full-page chat at `/c/{tenant}/{agent}` (or `/c/{tenant}?agent=…`),
//! shown only when the agent's `widget.public_page` is on. Pages carry a strict Content
//! Security Policy: the widget needs no inline script or style and talks only to us.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use frontdesk_core::agent::{Agent, AgentRef};
use frontdesk_core::id::TenantId;
use frontdesk_core::Error;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::openapi::escape;
use crate::AppState;

/// What our pages may load: our own scripts, styles and API, images from anywhere secure;
/// and no other site may frame them (a framed page would act as this server's own origin,
/// and could trick a visitor into approving a call).
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' https: data:; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(script))
        .route("/demo", get(demo))
        .route(
            "/demo.css",
            get(|headers: HeaderMap| stylesheet(headers, include_str!("../../assets/demo.css"))),
        )
        .route(
            "/page.css",
            get(|headers: HeaderMap| stylesheet(headers, include_str!("../../assets/page.css"))),
        )
        .route("/c/{tenant}", get(hosted_by_query))
        .route("/c/{tenant}/{agent}", get(hosted))
}

/// The widget's script (plain JavaScript, no build step; see `assets/widget.js`).
async fn script(headers: HeaderMap) -> Response {
    asset(
        &headers,
        "text/javascript; charset=utf-8",
        include_str!("../../assets/widget.js"),
    )
}

async fn stylesheet(headers: HeaderMap, css: &'static str) -> Response {
    asset(&headers, "text/css; charset=utf-8", css)
}

/// A static asset, cached for a while and revalidated by its `ETag` (a hash of its bytes):
/// an unchanged one answers 304 with no body.
pub(crate) fn asset(
    request: &HeaderMap,
    content_type: &'static str,
    body: &'static str,
) -> Response {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let headers = [
        (header::CONTENT_TYPE, content_type.to_owned()),
        (header::CACHE_CONTROL, "public, max-age=300".to_owned()),
        (header::ETAG, etag),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, body).into_response()
}

fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    response
        .headers_mut()
        .insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// A made-up shop that embeds the widget with the demo tenant's publishable key.
async fn demo(State(state): State<AppState>) -> ApiResult<Response> {
    let Some((key, agent)) = state.service.demo_widget().await? else {
        return Err(ApiError(Error::NotFound { resource: "demo" }));
    };
    let html = crate::demo::DEMO_PAGE
        .replace("__KEY__", &escape(&key))
        .replace("__AGENT__", &escape(&agent));
    Ok(page(StatusCode::OK, html))
}

#[derive(Debug, Deserialize)]
struct AgentQuery {
    #[serde(default)]
    agent: Option<String>,
}

async fn hosted_by_query(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<AgentQuery>,
) -> Response {
    match query.agent {
        Some(agent) => hosted_page(&state, &tenant, &agent).await,
        None => unavailable(),
    }
}

async fn hosted(
    State(state): State<AppState>,
    Path((tenant, agent)): Path<(String, String)>,
) -> Response {
    hosted_page(&state, &tenant, &agent).await
}

/// The agent of a public hosted page, or `None` (unknown tenant or agent, or not public).
async fn public_agent(state: &AppState, tenant: &str, agent: &str) -> Option<(TenantId, Agent)> {
    let tenant = TenantId::parse(tenant).ok()?;
    let agent = state
        .service
        .get_agent(&tenant, &AgentRef::parse(agent).ok()?)
        .await
        .ok()?;
    agent.spec.widget.public_page.then_some((tenant, agent))
}

async fn hosted_page(state: &AppState, tenant: &str, agent: &str) -> Response {
    let Some((tenant, agent)) = public_agent(state, tenant, agent).await else {
        return unavailable();
    };
    let title = agent
        .spec
        .widget
        .title
        .clone()
        .unwrap_or_else(|| agent.spec.name.clone());
    let html = include_str!("../../assets/page.html")
        .replace("__TITLE__", &escape(&title))
        .replace("__TENANT__", &escape(tenant.as_str()))
        .replace("__AGENT__", &escape(&agent.spec.slug));
    page(StatusCode::OK, html)
}

/// The same answer for a tenant or agent that does not exist and a page that is not public.
fn unavailable() -> Response {
    page(
        StatusCode::NOT_FOUND,
        include_str!("../../assets/page.html")
            .replace("__TITLE__", "Chat not available")
            .replace(
                r#"<frontdesk-chat inline tenant="__TENANT__" agent="__AGENT__"></frontdesk-chat>"#,
                r#"<p class="gone">This chat is not available.</p>"#,
            ),
    )
}
