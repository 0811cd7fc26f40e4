//! Liveness, readiness, Prometheus metrics, the OpenAPI document and its docs page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/openapi/protocols.json", get(protocols))
        .route("/api/v1/docs", get(docs))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// The process can serve: its store answers.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "ready"), (status = 503, description = "the store does not answer")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.service.store().ping().await {
        Ok(()) => Json(json!({"status": "ready", "store": state.service.store().backend()}))
            .into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "store": "unreachable"})),
            )
                .into_response()
        }
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>, _auth: crate::auth::MetricsAuth) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// This API's OpenAPI 3.1 document, generated from the code.
pub async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::openapi::document(&state.config.limits))
}

/// The protocol endpoints' OpenAPI document (OpenAI-compatible, AI SDK, ChatKit, widget).
pub async fn protocols(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(crate::openapi::protocols(&state.config.limits))
}

/// A readable page of the API, rendered from the same OpenAPI documents.
pub async fn docs(State(state): State<AppState>) -> Html<String> {
    Html(crate::openapi::render_docs(&[
        (
            &crate::openapi::document(&state.config.limits),
            "/api/v1/openapi.json",
        ),
        (
            &crate::openapi::protocols(&state.config.limits),
            "/api/v1/openapi/protocols.json",
        ),
    ]))
}
