//! The provider-neutral model interface: a [`ModelRequest`] goes in, a stream of
//! [`ModelEvent`]s comes out. OpenAI, Anthropic, any OpenAI-compatible server and the
//! embedded local model implement [`ModelProvider`]; the Runner only sees this.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures_core::Stream;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::conversation::Usage;
use crate::run::FinishReason;

/// A message as a model sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelMessage {
    System {
        text: String,
    },
    User {
        text: String,
    },
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
    },
    Tool {
        call_id: String,
        content: String,
    },
}

/// A complete tool call the model made.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, not yet validated).
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// Everything a provider needs for one model call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelRequest {
    /// The model's name at its provider (`gpt-4.1-mini`, without `openai/`).
    pub model: String,
    pub messages: Vec<ModelMessage>,
    pub tools: Vec<ToolSpec>,
    /// JSON Schema the answer must match, where the provider supports it.
    pub output_schema: Option<Value>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// The tenant's own key for this provider, used instead of the operator's.
    pub api_key: Option<ProviderSecret>,
}

/// A provider API key in a request: never printed, compared only in tests.
#[derive(Clone)]
pub struct ProviderSecret(pub SecretString);

impl ProviderSecret {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderSecret([redacted])")
    }
}

impl PartialEq for ProviderSecret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// What a provider streams.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    /// A piece of the answer's text.
    TextDelta(String),
    /// A piece of a tool call: `index` identifies the call; `id` and `name` come with its
    /// first piece, `arguments` pieces concatenate.
    ToolCallDelta {
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// Token counts (usually last).
    Usage(Usage),
    /// The model stopped.
    Finish(FinishReason),
}

/// Why a model call failed, and whether trying again (or another model) may help.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The provider could not be reached.
    #[error("cannot reach the model provider: {0}")]
    Connect(String),
    /// No first token (or no next chunk) in time.
    #[error("the model provider did not answer in time ({0:?})")]
    Timeout(Duration),
    /// 429: too many requests; retry after the given time when the provider said so.
    #[error("the model provider is rate limiting us")]
    RateLimited { retry_after: Option<Duration> },
    /// The provider answered with an error status.
    #[error("the model provider answered {status}: {message}")]
    Upstream { status: u16, message: String },
    /// The provider's answer did not follow its protocol (a malformed chunk).
    #[error("the model provider sent something malformed: {0}")]
    Protocol(String),
    /// The request cannot work (unknown model, missing key): retrying will not help.
    #[error("{0}")]
    Config(String),
}

impl ModelError {
    /// Connect errors, timeouts, 429 and 5xx may succeed on a retry or another model.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Connect(_) | ModelError::Timeout(_) | ModelError::RateLimited { .. } => {
                true
            }
            ModelError::Upstream { status, .. } => {
                *status >= 500 || *status == 408 || *status == 409
            }
            ModelError::Protocol(_) | ModelError::Config(_) => false,
        }
    }

    /// A stable code for `error` events.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Connect(_) => "model_unreachable",
            ModelError::Timeout(_) => "model_timeout",
            ModelError::RateLimited { .. } => "model_rate_limited",
            ModelError::Upstream { .. } => "model_error",
            ModelError::Protocol(_) => "model_protocol_error",
            ModelError::Config(_) => "model_config_error",
        }
    }
}

/// A stream of model events.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, ModelError>> + Send>>;

/// A model provider.
#[async_trait]
pub trait ModelProvider: Send + Sync + 'static {
    /// Starts a call. Errors before the first event (connect, status) come from here; errors
    /// after it come through the stream.
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError>;

    /// How many tokens `model` takes in, when this provider knows (a local model knows its
    /// own); `None` leaves it to the table of well-known models.
    fn context_window(&self, _model: &str) -> Option<u32> {
        None
    }
}
