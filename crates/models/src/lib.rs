//! frontdesk-models: model providers behind `frontdesk_core::model::ModelProvider`.
//!
//! Each provider is split into wire types, conversion, and streaming, so that no file grows
//! into a protocol encyclopaedia. Shared pieces: the SSE decoder and the timeouts.
//!
//! Invariants:
//! - A provider never panics on what a server sends: malformed input is a
//!   `ModelError::Protocol`, a dropped connection a `ModelError::Connect`.
//! - Errors before the first event come from `stream()`; later ones through the stream, so
//!   the Runner knows whether anything reached the client (and may fall back) or not.
//! - API keys are `SecretString`s and never appear in errors or logs.

pub mod anthropic;
pub mod context;
pub mod fallback;
pub mod http;
pub mod openai_chat;
pub mod openai_embeddings;
pub mod openai_responses;
pub mod registry;
pub mod sse;
pub mod streaming;

use std::time::Duration;

/// How long a provider waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection.
    pub connect: Duration,
    /// From the request to the first event.
    pub first_token: Duration,
    /// Between two chunks once streaming.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_token: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

impl From<Timeouts> for http::HttpSettings {
    fn from(timeouts: Timeouts) -> Self {
        http::HttpSettings::new(timeouts)
    }
}

/// How long the provider asked us to wait: OpenAI's `retry-after-ms`, else `Retry-After` in
/// seconds (model APIs do not send the HTTP-date form).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some(Duration::from_millis(ms.max(0.0) as u64));
    }
    header("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .map(|s| Duration::from_millis((s.max(0.0) * 1000.0) as u64))
}
