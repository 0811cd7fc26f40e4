//! Text embeddings: the `Embedder` trait that the knowledge base calls, whatever computes
//! the vectors (the local MiniLM model, or a provider's embeddings API), its error type, and
//! the cosine similarity used to compare vectors.

use async_trait::async_trait;

use crate::model::ModelError;

/// Turns texts into vectors of a fixed length.
///
/// `embed` returns one vector per text, in the order given, each `dimensions()` long.
/// An empty slice gives an empty answer without any work.
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// The length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// The model's name, as stored next to the vectors (vectors of different models are not
    /// comparable).
    fn model(&self) -> &str;

    /// The texts' vectors, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The input is more than the embedder takes (too many texts, or a text too long for the
    /// model); split it and try again.
    #[error("the input is too large to embed: {0}")]
    InputTooLarge(String),
    /// The local model's files are not there; `fetch` is the command that puts them in place.
    #[error("the embedding model `{model}` is not installed in {dir}: run `{fetch}`")]
    ModelMissing {
        model: String,
        dir: String,
        fetch: String,
    },
    /// The local model could not be loaded or run.
    #[error("the embedding model failed: {0}")]
    Model(String),
    /// A remote embeddings API failed: connect, timeout, rate limit, error status, or a
    /// malformed answer.
    #[error(transparent)]
    Provider(#[from] ModelError),
}

impl EmbedError {
    /// Whether the same call may succeed later (a remote hiccup); a missing model, a broken
    /// model or an input too large will not.
    pub fn is_retryable(&self) -> bool {
        match self {
            EmbedError::Provider(error) => error.is_retryable(),
            EmbedError::InputTooLarge(_)
            | EmbedError::ModelMissing { .. }
            | EmbedError::Model(_) => false,
        }
    }
}

/// The cosine of the angle between two vectors, in [-1, 1]; 0 when either is all zeros or
/// their lengths differ. Accumulates in `f64`.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut norm_a, mut norm_b) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if norm_a == 0.0 || norm_b == 0.0 {
        return 0.0;
    }
    (dot / (norm_a.sqrt() * norm_b.sqrt())).clamp(-1.0, 1.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &[f32], b: &[f32], expect: f32) {
        let got = cosine(a, b);
        assert!(
            (got - expect).abs() < 1e-6,
            "cosine({a:?}, {b:?}) = {got}, expected {expect}"
        );
    }

    #[test]
    fn cosine_of_known_pairs() {
        check(&[1.0, 0.0], &[1.0, 0.0], 1.0);
        check(&[1.0, 0.0], &[0.0, 1.0], 0.0);
        check(&[1.0, 2.0, 3.0], &[-1.0, -2.0, -3.0], -1.0);
        // Length does not matter, only direction.
        check(&[3.0, 4.0], &[30.0, 40.0], 1.0);
        check(&[1.0, 1.0], &[1.0, 0.0], std::f32::consts::FRAC_1_SQRT_2);
        check(
            &[1.0, 2.0, 3.0],
            &[4.0, 5.0, 6.0],
            32.0 / (14f32.sqrt() * 77f32.sqrt()),
        );
        // Degenerate inputs are 0, never NaN.
        check(&[0.0, 0.0], &[1.0, 2.0], 0.0);
        check(&[], &[], 0.0);
        check(&[1.0, 2.0], &[1.0, 2.0, 3.0], 0.0);
    }

    #[test]
    fn only_remote_hiccups_are_retryable() {
        assert!(EmbedError::Provider(ModelError::RateLimited { retry_after: None }).is_retryable());
        assert!(!EmbedError::Provider(ModelError::Upstream {
            status: 401,
            message: "bad key".into()
        })
        .is_retryable());
        let missing = EmbedError::ModelMissing {
            model: "all-minilm-l6-v2".into(),
            dir: "./models".into(),
            fetch: "frontdesk models fetch all-minilm-l6-v2".into(),
        };
        assert!(!missing.is_retryable());
        assert!(missing
            .to_string()
            .contains("frontdesk models fetch all-minilm-l6-v2"));
    }
}
