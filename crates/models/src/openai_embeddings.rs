//! OpenAI embeddings behind `frontdesk_core::embed::Embedder`: `POST {base_url}/embeddings`
//! with a Bearer key, for OpenAI itself and the OpenAI-compatible servers (Ollama, vLLM, …).
//!
//! Texts go [`MAX_INPUTS`] per request, in order. Statuses map as in `streaming`: 429 is
//! `RateLimited` (with the provider's wait), other non-2xx `Upstream`; a 400 or 413 saying the
//! input is too long is `EmbedError::InputTooLarge`. An answer with the wrong number of
//! vectors, or vectors of the wrong length, is `Protocol`.

use async_trait::async_trait;
use frontdesk_core::embed::{EmbedError, Embedder};
use frontdesk_core::model::ModelError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Connections, HttpSettings};
use crate::streaming::connect_error;
use crate::{retry_after, Timeouts};

/// Inputs per request: OpenAI takes at most 2048.
pub const MAX_INPUTS: usize = 2048;

/// The vector length of OpenAI's embedding models, when known.
pub fn native_dimensions(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

/// An embeddings endpoint and one of its models.
pub struct OpenAiEmbeddings {
    http: Connections,
    base_url: String,
    api_key: Option<SecretString>,
    model: String,
    dimensions: usize,
    /// Whether to ask for `dimensions` (a shortened `text-embedding-3` vector).
    request_dimensions: bool,
    max_inputs: usize,
    timeouts: Timeouts,
}

impl std::fmt::Debug for OpenAiEmbeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbeddings")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbeddings {
    /// `base_url` is the API root (`https://api.openai.com/v1`); `dimensions` is the length
    /// of the vectors `model` returns. For a known OpenAI model with a different native
    /// length, the request asks for `dimensions` (only `text-embedding-3-*` can shorten).
    pub fn new(
        base_url: &str,
        api_key: Option<SecretString>,
        model: &str,
        dimensions: usize,
        http: impl Into<HttpSettings>,
    ) -> Result<Self, ModelError> {
        let http: HttpSettings = http.into();
        let base_url = base_url.trim_end_matches('/');
        if dimensions == 0 {
            return Err(ModelError::Config(format!(
                "the embedding model `{model}` needs a vector length above 0"
            )));
        }
        let request_dimensions = native_dimensions(model).is_some_and(|n| n != dimensions);
        Ok(Self {
            http: Connections::new(base_url, http)?,
            base_url: base_url.to_owned(),
            api_key,
            model: model.to_owned(),
            dimensions,
            request_dimensions,
            max_inputs: MAX_INPUTS,
            timeouts: http.timeouts,
        })
    }

    /// Inputs per request (at least 1, at most [`MAX_INPUTS`]), for servers that take fewer.
    pub fn with_max_inputs(mut self, max_inputs: usize) -> Self {
        self.max_inputs = max_inputs.clamp(1, MAX_INPUTS);
        self
    }

    async fn embed_chunk(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = RequestBody {
            model: &self.model,
            input: texts,
            encoding_format: "float",
            dimensions: self.request_dimensions.then_some(self.dimensions),
        };
        // The place on the connection is held until the body has been read.
        let (client, _lease) = self.http.lease()?;
        let mut call = client
            .post(format!("{}/embeddings", self.base_url))
            .json(&body);
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key.expose_secret());
        }
        let response = match tokio::time::timeout(self.timeouts.first_token, call.send()).await {
            Err(_) => return Err(ModelError::Timeout(self.timeouts.first_token).into()),
            Ok(Err(error)) => return Err(connect_error(&error).into()),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let retry = retry_after(response.headers());
        let body = match tokio::time::timeout(self.timeouts.idle, response.bytes()).await {
            Err(_) => return Err(ModelError::Timeout(self.timeouts.idle).into()),
            Ok(Err(error)) => return Err(connect_error(&error).into()),
            Ok(Ok(body)) => body,
        };
        if !(200..300).contains(&status) {
            return Err(status_error(status, retry, &String::from_utf8_lossy(&body)));
        }
        let answer: ResponseBody = serde_json::from_slice(&body).map_err(|e| {
            ModelError::Protocol(format!("the embeddings answer is not as documented: {e}"))
        })?;
        self.in_order(answer, texts.len())
    }

    /// The answer's vectors in input order, checked for count and length.
    fn in_order(&self, answer: ResponseBody, n_texts: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let protocol = |message: String| EmbedError::Provider(ModelError::Protocol(message));
        if answer.data.len() != n_texts {
            return Err(protocol(format!(
                "{} vectors for {n_texts} inputs",
                answer.data.len()
            )));
        }
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; n_texts];
        for item in answer.data {
            if item.embedding.len() != self.dimensions {
                return Err(protocol(format!(
                    "a vector of {} numbers from `{}`, expected {}",
                    item.embedding.len(),
                    self.model,
                    self.dimensions
                )));
            }
            match vectors.get_mut(item.index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                _ => {
                    return Err(protocol(format!(
                        "a vector with index {} for {n_texts} inputs, or twice",
                        item.index
                    )))
                }
            }
        }
        // Every slot is filled: as many distinct indices as inputs, each below the count.
        Ok(vectors.into_iter().flatten().collect())
    }
}

#[async_trait]
impl Embedder for OpenAiEmbeddings {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.max_inputs) {
            vectors.extend(self.embed_chunk(chunk).await?);
        }
        Ok(vectors)
    }
}

#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct ResponseBody {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

/// A non-2xx answer as an error: 429 may be retried after the provider's wait; an input
/// too long for the model is the caller's to split; the rest keep their status.
fn status_error(status: u16, retry: Option<std::time::Duration>, body: &str) -> EmbedError {
    if status == 429 {
        return ModelError::RateLimited { retry_after: retry }.into();
    }
    let error = serde_json::from_str::<Value>(body).ok();
    let field = |name: &str| {
        error
            .as_ref()
            .and_then(|v| v.pointer(&format!("/error/{name}")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let message = field("message").unwrap_or_else(|| body.chars().take(300).collect());
    let too_long = status == 413
        || (status == 400
            && (field("code").as_deref() == Some("context_length_exceeded")
                || message.contains("maximum context length")
                || message.contains("maximum input length")));
    if too_long {
        EmbedError::InputTooLarge(message)
    } else {
        ModelError::Upstream { status, message }.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errors() {
        let too_large = |status: u16, body: &str| {
            matches!(
                status_error(status, None, body),
                EmbedError::InputTooLarge(_)
            )
        };
        assert!(too_large(413, "too big"));
        assert!(too_large(
            400,
            r#"{"error":{"message":"x","code":"context_length_exceeded"}}"#
        ));
        assert!(too_large(
            400,
            r#"{"error":{"message":"This model's maximum context length is 8192 tokens"}}"#
        ));
        assert!(!too_large(
            400,
            r#"{"error":{"message":"'$.input' is invalid"}}"#
        ));

        let wait = Some(std::time::Duration::from_secs(2));
        assert!(matches!(
            status_error(429, wait, "{}"),
            EmbedError::Provider(ModelError::RateLimited { retry_after }) if retry_after == wait
        ));
        assert!(matches!(
            status_error(401, None, r#"{"error":{"message":"bad key"}}"#),
            EmbedError::Provider(ModelError::Upstream { status: 401, message }) if message == "bad key"
        ));
        assert!(matches!(
            status_error(502, None, "<html>bad gateway</html>"),
            EmbedError::Provider(ModelError::Upstream { status: 502, message })
                if message == "<html>bad gateway</html>"
        ));
    }

    #[test]
    fn only_a_shorter_known_model_asks_for_dimensions() {
        let make = |model: &str, dimensions: usize| {
            OpenAiEmbeddings::new("http://x/v1", None, model, dimensions, Timeouts::default())
                .map(|e| e.request_dimensions)
                .ok()
        };
        assert_eq!(make("text-embedding-3-small", 1536), Some(false));
        assert_eq!(make("text-embedding-3-small", 256), Some(true));
        assert_eq!(make("nomic-embed-text", 768), Some(false));
        assert_eq!(make("nomic-embed-text", 0), None);
    }
}
