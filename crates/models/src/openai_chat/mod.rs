//! OpenAI Chat Completions, streaming: OpenAI itself and every OpenAI-compatible server
//! (Ollama, vLLM, OpenRouter, LM Studio) through `base_url`.

pub mod wire;

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use frontdesk_core::model::{ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream};
use futures_util::{Stream, StreamExt};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::sse::SseDecoder;
use crate::{retry_after, Timeouts};

/// A Chat Completions endpoint.
pub struct OpenAiChat {
    client: reqwest::Client,
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
        timeouts: Timeouts,
    ) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .build()
            .map_err(|e| ModelError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            timeouts,
        })
    }
}

fn connect_error(error: &reqwest::Error) -> ModelError {
    // The URL is ours to log, but keep the message short and free of query strings.
    ModelError::Connect(error.without_url_string())
}

trait WithoutUrl {
    fn without_url_string(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_string(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), "");
        }
        text.trim().to_owned()
    }
}

#[async_trait]
impl ModelProvider for OpenAiChat {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError> {
        let started = Instant::now();
        let mut call = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(&wire::request_body(&request));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key.expose_secret());
        }
        let response = match tokio::time::timeout(self.timeouts.first_token, call.send()).await {
            Err(_) => return Err(ModelError::Timeout(self.timeouts.first_token)),
            Ok(Err(error)) => return Err(connect_error(&error)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let retry = retry_after(response.headers());
            let body = response.text().await.unwrap_or_default();
            return Err(if status.as_u16() == 429 {
                ModelError::RateLimited { retry_after: retry }
            } else {
                ModelError::Upstream {
                    status: status.as_u16(),
                    message: wire::error_message(&body),
                }
            });
        }
        let state = StreamState {
            body: Box::pin(response.bytes_stream()),
            decoder: SseDecoder::new(),
            pending: VecDeque::new(),
            first_deadline: Some(started + self.timeouts.first_token),
            first_token: self.timeouts.first_token,
            idle: self.timeouts.idle,
            finished: false,
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(state, next_event)))
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct StreamState {
    body: Body,
    decoder: SseDecoder,
    pending: VecDeque<Result<ModelEvent, ModelError>>,
    /// Until the first event: when to give up waiting for it.
    first_deadline: Option<Instant>,
    first_token: Duration,
    idle: Duration,
    /// A `finish_reason` or `[DONE]` arrived: the end of the body is the end of the answer.
    finished: bool,
    /// Nothing more will be read.
    done: bool,
}

async fn next_event(
    mut state: StreamState,
) -> Option<(Result<ModelEvent, ModelError>, StreamState)> {
    loop {
        if let Some(item) = state.pending.pop_front() {
            return Some((item, state));
        }
        if state.done {
            return None;
        }
        let (wait, timeout_error) = match state.first_deadline {
            Some(deadline) => (
                deadline.saturating_duration_since(Instant::now()),
                ModelError::Timeout(state.first_token),
            ),
            None => (state.idle, ModelError::Timeout(state.idle)),
        };
        match tokio::time::timeout(wait, state.body.next()).await {
            Err(_) => {
                state.done = true;
                return Some((Err(timeout_error), state));
            }
            Ok(None) => {
                state.done = true;
                if !state.finished {
                    let error = ModelError::Connect(
                        "the model stream ended before the answer was complete".into(),
                    );
                    return Some((Err(error), state));
                }
            }
            Ok(Some(Err(error))) => {
                state.done = true;
                return Some((Err(connect_error(&error)), state));
            }
            Ok(Some(Ok(bytes))) => read_chunk(&mut state, &bytes),
        }
    }
}

/// Decodes bytes into pending events; stops at `[DONE]` or an error.
fn read_chunk(state: &mut StreamState, bytes: &[u8]) {
    let events = match state.decoder.push(bytes) {
        Ok(events) => events,
        Err(_) => {
            state.pending.push_back(Err(ModelError::Protocol(
                "an SSE line longer than 4 MiB".into(),
            )));
            state.done = true;
            return;
        }
    };
    for event in events {
        let data = event.data.trim();
        if data == "[DONE]" {
            state.finished = true;
            state.done = true;
            return;
        }
        let value: serde_json::Value = match serde_json::from_str(data) {
            Ok(value) => value,
            Err(error) => {
                state.pending.push_back(Err(ModelError::Protocol(format!(
                    "a chunk is not JSON: {error}"
                ))));
                state.done = true;
                return;
            }
        };
        if let Some(error) = value.get("error") {
            let message = error
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("the stream reported an error");
            state.pending.push_back(Err(ModelError::Upstream {
                status: 500,
                message: message.to_owned(),
            }));
            state.done = true;
            return;
        }
        let chunk: wire::Chunk = match serde_json::from_value(value) {
            Ok(chunk) => chunk,
            Err(error) => {
                state.pending.push_back(Err(ModelError::Protocol(format!(
                    "an unexpected chunk: {error}"
                ))));
                state.done = true;
                return;
            }
        };
        for model_event in wire::chunk_events(chunk) {
            if matches!(model_event, ModelEvent::Finish(_)) {
                state.finished = true;
            }
            state.first_deadline = None;
            state.pending.push_back(Ok(model_event));
        }
    }
}
