//! frontdesk-server: the HTTP surface of frontdesk (axum).
//!
//! Invariants:
//! - Handlers are thin: extract, make one call into `frontdesk_core::Service`, map the
//!   result. Domain rules live in the core crate.
//! - Every error leaves through [`error::ApiError`] in the one JSON shape; 5xx details are
//!   logged once, here, with the request id.
//! - Every `/api/v1` route that reads tenant data takes a [`auth::SecretKeyAuth`], whose
//!   tenant id goes into every store call; another tenant's object is a 404.
//!
//! It deliberately knows no SQL and runs no agent logic.

pub mod auth;
pub mod dashboard;
pub mod demo;
pub mod error;
mod headers;
mod listen;
pub mod observe;
pub mod openapi;
pub mod rate_limit;
pub mod routes;

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::Router;
use frontdesk_agents::{RunHub, Runner, RunnerOptions};
use frontdesk_core::config::Config;
use frontdesk_core::{Error, Service};
use frontdesk_models::fallback::RetryPolicy;
use frontdesk_models::registry::Registry;
use frontdesk_models::Timeouts;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

/// What every handler can reach.
pub struct Inner {
    pub service: Service,
    pub config: Config,
    pub runner: Runner,
    /// Documents and their search; none on a server without an embedder.
    pub knowledge: Option<frontdesk_knowledge::Library>,
    pub limiter: rate_limit::RateLimiter,
    pub metrics: PrometheusHandle,
    /// Voice calls: their models, Twilio, and the tasks shutdown drains.
    pub voice: frontdesk_voice::VoiceHost,
}

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// The state with the model providers the configuration declares.
    pub fn new(service: Service, config: Config) -> anyhow::Result<Self> {
        let registry = Registry::from_config(&config.providers, Timeouts::default())?;
        Ok(Self::with_registry(service, config, registry))
    }

    /// The state with a given set of model providers (tests register scripted ones), and no
    /// knowledge (no embedder).
    pub fn with_registry(service: Service, config: Config, registry: Registry) -> Self {
        Self::with_embedder(service, config, registry, None)
    }

    /// The state with model providers and the embedder documents are searched with.
    pub fn with_embedder(
        service: Service,
        config: Config,
        registry: Registry,
        embedder: Option<Arc<dyn frontdesk_core::embed::Embedder>>,
    ) -> Self {
        let knowledge = embedder.map(|embedder| {
            frontdesk_knowledge::Library::new(
                service.clone(),
                embedder,
                frontdesk_knowledge::LibrarySettings {
                    allow_private_urls: config.allow_private_urls,
                    workers: config.knowledge.workers,
                    max_document_bytes: config.knowledge.max_document_mb * 1024 * 1024,
                    ..Default::default()
                },
            )
        });
        let runner = Runner::with_options(
            service.clone(),
            registry,
            RunHub::default(),
            RetryPolicy::default(),
            RunnerOptions {
                allow_private_urls: config.allow_private_urls,
                knowledge: knowledge
                    .clone()
                    .map(|k| Arc::new(k) as Arc<dyn frontdesk_core::knowledge::Retriever>),
            },
        );
        let voice = frontdesk_voice::VoiceHost::new(
            service.clone(),
            runner.clone(),
            &config,
            tokio_util::sync::CancellationToken::new(),
        );
        Self(Arc::new(Inner {
            service,
            config,
            runner,
            voice,
            knowledge,
            limiter: rate_limit::RateLimiter::default(),
            metrics: observe::prometheus(),
        }))
    }
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.limits.max_body_bytes;
    let widget = routes::widget::routes(&state);
    Router::new()
        .merge(routes::agents::routes())
        .merge(routes::keys::routes())
        .merge(routes::knowledge::routes(&state))
        .merge(routes::provider_keys::routes())
        .merge(routes::secrets::routes())
        .merge(routes::runs::routes())
        .merge(routes::openai::routes())
        .merge(routes::ai_sdk::routes())
        .merge(routes::chatkit::routes(&state))
        .merge(widget)
        .merge(routes::conversations::routes())
        .merge(routes::handoff::routes())
        .merge(routes::calls::routes())
        .merge(routes::voice::routes(&state))
        .merge(routes::turns::routes())
        .merge(routes::usage::routes())
        .merge(routes::tenants::routes())
        .merge(routes::system::routes())
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(observe::record_route))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::back_off_failed_auth,
        ))
        .layer(axum::middleware::from_fn(error::mark_end_users))
        .layer(axum::middleware::from_fn(headers::security_headers))
        // gzip or brotli when the client takes it; never a server-sent event stream (it would
        // buffer) nor a small body (the default predicate).
        .layer(tower_http::compression::CompressionLayer::new())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    error::ApiError(Error::NotFound { resource: "route" })
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut response = error::ApiError(Error::bad_request(
        "method_not_allowed",
        "this method is not allowed on this route",
    ))
    .into_response();
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let runner = state.runner.clone();
    // Approvals nobody answered in time become rejections, and their runs go on.
    let sweeper = tokio_util::sync::CancellationToken::new();
    runner.spawn_approval_expiry(std::time::Duration::from_secs(30), sweeper.clone());
    // Conversations nobody took in time go back to their agents.
    runner.spawn_wait_expiry(std::time::Duration::from_secs(2), sweeper.clone());
    if let Some(knowledge) = &state.knowledge {
        // One SQLite file has one server: what it left processing was interrupted.
        let single = state.service.store().backend() == "sqlite";
        knowledge.spawn_workers(sweeper.clone(), single).await;
    }
    // One SQLite file has one server: calls it left under way ended with it.
    if state.service.store().backend() == "sqlite" {
        match state
            .service
            .fail_stale_calls(
                frontdesk_core::time::Timestamp::now(),
                "the server stopped during the call",
            )
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                calls = n,
                "calls left under way by the last run were marked failed"
            ),
            Err(error) => tracing::warn!(%error, "calls left under way could not be closed"),
        }
    }
    // No call lasts longer than its agent's limit (4 h at most): one still `active` after
    // that was left by an instance that died (on any backend).
    let sweep = state.service.clone();
    let stop = sweeper.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    let before = frontdesk_core::time::Timestamp::from_millis(
                        frontdesk_core::time::Timestamp::now().as_millis() - (14_400 + 600) * 1000,
                    );
                    if let Err(error) = sweep.fail_stale_calls(before, "the call outlived any call's limit: its instance stopped").await {
                        tracing::warn!(%error, "stale calls could not be closed");
                    }
                }
                () = stop.cancelled() => break,
            }
        }
    });
    let per_address = state.config.limits.max_connections_per_address;
    let voice = state.voice.clone();
    let calls = voice.clone();
    let shutdown = async move {
        shutdown.await;
        // Calls say goodbye and end; their records are stored before the process exits.
        calls.shutdown().cancel();
    };
    listen::serve(listener, router(state), per_address, shutdown).await;
    voice.drain(std::time::Duration::from_secs(15)).await;
    sweeper.cancel();
    // Runs outlive their requests: let the running ones finish and store their answers.
    runner.shutdown().await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
