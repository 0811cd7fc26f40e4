//! The sections of the configuration: the local models, knowledge and request limits.

use std::path::PathBuf;

use serde::Deserialize;

/// The embedded local models.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Local {
    /// Where the embedded models' files are (`frontdesk models fetch` puts them there).
    pub models_dir: PathBuf,
    /// Requests each local model decodes at once.
    pub parallel: usize,
    /// CPU threads per decode; 0: one per core, up to 8.
    pub threads: u32,
    /// Context window of the local chat model, in tokens.
    pub context: u32,
    /// Load the demo agent's local model at start instead of on its first request.
    pub preload: bool,
}

/// Documents: the embedder their passages are searched with, and ingestion.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Knowledge {
    /// `local/all-minilm-l6-v2` (the embedded model), or `provider/model` of a configured
    /// OpenAI-compatible provider (`openai/text-embedding-3-small`). Documents embedded by
    /// another embedder are searched by full text only until ingested again.
    pub embedder: String,
    /// The vector length of a provider's embedding model (known OpenAI models need none).
    pub dimensions: Option<usize>,
    /// Documents ingested at once by each instance.
    pub workers: usize,
    /// The largest document (file or fetched page), in MiB.
    pub max_document_mb: usize,
}

/// Voice calls.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Voice {
    /// Twilio's REST API (transfers, outbound calls, hanging up).
    pub twilio_api_url: String,
}

impl Default for Voice {
    fn default() -> Self {
        Self {
            twilio_api_url: "https://api.twilio.com".into(),
        }
    }
}

impl Default for Knowledge {
    fn default() -> Self {
        Self {
            embedder: "local/all-minilm-l6-v2".into(),
            dimensions: None,
            workers: 1,
            max_document_mb: 20,
        }
    }
}

impl Default for Local {
    fn default() -> Self {
        Self {
            models_dir: PathBuf::from("./models"),
            parallel: 1,
            threads: 0,
            context: 4096,
            preload: false,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Default requests per minute per API key (a key may set its own).
    pub rate_limit_per_minute: u32,
    /// Largest page a list endpoint returns.
    pub max_page_size: u32,
    /// Widget requests per minute from one client address (all its visitors together).
    pub widget_per_ip_per_minute: u32,
    /// Connections open at once from one client address (0: no bound); behind a proxy every
    /// connection comes from the proxy, so raise it there or set 0.
    pub max_connections_per_address: usize,
    /// Failed authentications (401) per minute from one client address before its requests
    /// with credentials are refused (429 with `Retry-After`) until the budget refills.
    pub auth_failures_per_minute: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (behind a proxy
    /// that sets it); otherwise the connection's peer address.
    pub trust_forwarded_for: bool,
    /// Voice calls one tenant may have under way at once (phone and browser together).
    pub max_calls_per_tenant: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            rate_limit_per_minute: 600,
            max_page_size: 100,
            widget_per_ip_per_minute: 300,
            auth_failures_per_minute: 30,
            max_connections_per_address: 4_096,
            trust_forwarded_for: false,
            max_calls_per_tenant: 50,
        }
    }
}
