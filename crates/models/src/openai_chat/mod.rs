//! OpenAI Chat Completions, streaming: OpenAI itself and every OpenAI-compatible server
//! (Ollama, vLLM, OpenRouter, LM Studio) through `base_url`.

pub mod wire;

use async_trait::async_trait;
use frontdesk_core::model::{
    ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream, ProviderSecret,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::http::{Connections, HttpSettings};
use crate::sse::SseEvent;
use crate::streaming::{self, EventParser, Flow};
use crate::Timeouts;

/// A Chat Completions endpoint.
pub struct OpenAiChat {
    http: Connections,
    base_url: String,
    api_key: Option<SecretString>,
    timeouts: Timeouts,
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl OpenAiChat {
    /// `base_url` is the API root (`https://api.openai.com/v1`).
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        http: impl Into<HttpSettings>,
    ) -> Result<Self, ModelError> {
        let http: HttpSettings = http.into();
        let base_url = base_url.trim_end_matches('/');
        Ok(Self {
            http: Connections::new(base_url, http)?,
            base_url: base_url.to_owned(),
            api_key,
            timeouts: http.timeouts,
        })
    }
}

#[async_trait]
impl ModelProvider for OpenAiChat {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError> {
        let started = Instant::now();
        let (client, lease) = self.http.lease()?;
        let mut call = client
            .post(format!("{}/chat/completions", self.base_url))
            .json(&wire::request_body(&request));
        let key = request.api_key.as_ref().map(ProviderSecret::expose);
        if let Some(key) = key.or(self.api_key.as_ref().map(ExposeSecret::expose_secret)) {
            call = call.bearer_auth(key);
        }
        let response = streaming::send(call, self.timeouts, wire::error_message).await?;
        Ok(streaming::events(
            response,
            lease,
            ChunkParser,
            self.timeouts,
            started,
        ))
    }
}

/// An `error` object sent in the stream instead of a chunk.
fn stream_error(error: &serde_json::Value) -> ModelError {
    let message = error
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("the stream reported an error");
    ModelError::Upstream {
        status: 500,
        message: message.to_owned(),
    }
}

/// `data:` lines of `chat.completion.chunk` JSON, ended by `data: [DONE]`.
struct ChunkParser;

impl EventParser for ChunkParser {
    fn parse(&mut self, event: SseEvent, out: &mut Vec<ModelEvent>) -> Result<Flow, ModelError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(Flow::End);
        }
        // One parse for the usual chunk; the reason is looked for only when it fails.
        let mut chunk: wire::Chunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                return Err(match serde_json::from_str::<serde_json::Value>(data) {
                    Err(e) => ModelError::Protocol(format!("a chunk is not JSON: {e}")),
                    Ok(value) => match value.get("error") {
                        Some(error) => stream_error(error),
                        None => ModelError::Protocol(format!("an unexpected chunk: {e}")),
                    },
                })
            }
        };
        if let Some(error) = chunk.error.take() {
            return Err(stream_error(&error));
        }
        out.extend(wire::chunk_events(chunk));
        Ok(Flow::Continue)
    }
}
