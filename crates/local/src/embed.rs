//! The local sentence embedder: all-MiniLM-L6-v2 (a 6-layer BERT, 384 dimensions) on candle,
//! on the CPU, behind `frontdesk_core::embed::Embedder`.
//!
//! A text is tokenized without padding and cut at [`MAX_TOKENS`]; texts are sorted by length
//! and run [`BATCH_SIZE`] at a time, each batch padded only to its own longest text, in a
//! blocking task. The model's output is mean-pooled over the real tokens (the attention mask)
//! and scaled to unit length, so a text's vector does not depend on its batch.
//!
//! The model loads on the first call, once; a missing model is an error that names
//! `frontdesk models fetch`, and a later call tries again (after a fetch, it works).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use frontdesk_core::embed::{EmbedError, Embedder};
use tokenizers::{Encoding, Tokenizer, TruncationParams};
use tokio::sync::OnceCell;

use crate::catalog::{self, KnownModel};
use crate::minilm::Encoder;

/// The length of a MiniLM vector.
pub const DIMENSIONS: usize = 384;
/// Tokens per text, `[CLS]` and `[SEP]` included; the rest of a longer text is ignored.
pub const MAX_TOKENS: usize = 256;
/// Texts per forward pass.
pub const BATCH_SIZE: usize = 32;

/// all-MiniLM-L6-v2 from `<models_dir>/all-minilm-l6-v2/`.
pub struct LocalEmbedder {
    models_dir: PathBuf,
    batch_size: usize,
    loaded: OnceCell<Arc<Loaded>>,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder")
            .field("models_dir", &self.models_dir)
            .field("batch_size", &self.batch_size)
            .field("loaded", &self.loaded.initialized())
            .finish()
    }
}

impl LocalEmbedder {
    /// An embedder reading its files from `models_dir` (nothing is read until the first
    /// call).
    pub fn new(models_dir: impl Into<PathBuf>) -> Self {
        Self {
            models_dir: models_dir.into(),
            batch_size: BATCH_SIZE,
            loaded: OnceCell::new(),
        }
    }

    /// Texts per forward pass (at least 1).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Loads the model now rather than on the first call.
    pub async fn load(&self) -> Result<(), EmbedError> {
        self.loaded().await.map(|_| ())
    }

    async fn loaded(&self) -> Result<Arc<Loaded>, EmbedError> {
        let loaded = self
            .loaded
            .get_or_try_init(|| async {
                let models_dir = self.models_dir.clone();
                tokio::task::spawn_blocking(move || Loaded::open(&models_dir))
                    .await
                    .map_err(|e| EmbedError::Model(format!("the loading task failed: {e}")))?
                    .map(Arc::new)
            })
            .await?;
        Ok(loaded.clone())
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn model(&self) -> &str {
        catalog::DEFAULT_EMBEDDER
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let loaded = self.loaded().await?;
        let owned = texts.to_vec();
        let tokenizer_side = loaded.clone();
        let encodings = tokio::task::spawn_blocking(move || tokenizer_side.tokenize(owned))
            .await
            .map_err(|e| EmbedError::Model(format!("the tokenizing task failed: {e}")))??;

        // Similar lengths together: less padding, and padding never changes a vector.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&text_idx| encodings[text_idx].len());
        let encodings = Arc::new(encodings);
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in order.chunks(self.batch_size) {
            let (model_side, encodings, batch_owned) =
                (loaded.clone(), encodings.clone(), batch.to_vec());
            let batch_vectors = tokio::task::spawn_blocking(move || {
                let batch: Vec<&Encoding> = batch_owned.iter().map(|&i| &encodings[i]).collect();
                model_side.embed_batch(&batch)
            })
            .await
            .map_err(|e| EmbedError::Model(format!("the embedding task failed: {e}")))??;
            for (&text_idx, vector) in batch.iter().zip(batch_vectors) {
                vectors[text_idx] = vector;
            }
        }
        Ok(vectors)
    }
}

/// The model and tokenizer, ready.
struct Loaded {
    model: Encoder,
    tokenizer: Tokenizer,
    pad_id: u32,
    device: Device,
}

impl Loaded {
    /// Reads the three files (whole, not memory-mapped) and builds the model.
    fn open(models_dir: &Path) -> Result<Self, EmbedError> {
        let known = embedder_entry()?;
        let path = |name: &str| -> Result<PathBuf, EmbedError> {
            let file = known
                .files
                .iter()
                .find(|file| file.name == name)
                .ok_or_else(|| EmbedError::Model(format!("the catalog lists no {name}")))?;
            Ok(catalog::file_path(models_dir, known, file))
        };
        let (weights, tokenizer_json, config_json) = (
            path("model.safetensors")?,
            path("tokenizer.json")?,
            path("config.json")?,
        );
        if !catalog::is_present(models_dir, known) {
            return Err(EmbedError::ModelMissing {
                model: known.name.to_owned(),
                dir: models_dir.display().to_string(),
                fetch: format!("frontdesk models fetch {}", known.name),
            });
        }
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| EmbedError::Model(format!("cannot read {}: {e}", path.display())))
        };

        let config: Config = serde_json::from_slice(&read(&config_json)?)
            .map_err(|e| EmbedError::Model(format!("{}: {e}", config_json.display())))?;
        if config.hidden_size != DIMENSIONS {
            return Err(EmbedError::Model(format!(
                "{} says hidden_size {}, expected {DIMENSIONS}",
                config_json.display(),
                config.hidden_size
            )));
        }

        let mut tokenizer = Tokenizer::from_bytes(read(&tokenizer_json)?)
            .map_err(|e| EmbedError::Model(format!("{}: {e}", tokenizer_json.display())))?;
        // The shipped file pads everything to 128 and cuts there; we pad per batch instead.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Model(format!("cannot set the truncation: {e}")))?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);

        let device = Device::Cpu;
        let weights_bytes = read(&weights)?;
        let builder = VarBuilder::from_buffered_safetensors(weights_bytes, DType::F32, &device)
            .map_err(|e| EmbedError::Model(format!("{}: {e}", weights.display())))?;
        let model = Encoder::load(builder, &config)
            .map_err(|e| EmbedError::Model(format!("{}: {e}", weights.display())))?;
        tracing::info!(model = known.name, models_dir = %models_dir.display(), "embedding model loaded");
        Ok(Self {
            model,
            tokenizer,
            pad_id,
            device,
        })
    }

    fn tokenize(&self, texts: Vec<String>) -> Result<Vec<Encoding>, EmbedError> {
        self.tokenizer
            .encode_batch(texts, true)
            .map_err(|e| EmbedError::Model(format!("cannot tokenize: {e}")))
    }

    /// One forward pass: the unit-length mean-pooled vector of each encoding.
    fn embed_batch(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.forward(batch)
            .map_err(|e| EmbedError::Model(format!("the forward pass failed: {e}")))
    }

    fn forward(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let n_texts = batch.len();
        let n_tokens = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = vec![self.pad_id; n_texts * n_tokens];
        let mut mask = vec![0f32; n_texts * n_tokens];
        for (row, encoding) in batch.iter().enumerate() {
            let start = row * n_tokens;
            let text_ids = encoding.get_ids();
            ids[start..start + text_ids.len()].copy_from_slice(text_ids);
            mask[start..start + text_ids.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, (n_texts, n_tokens), &self.device)?;
        let mask = Tensor::from_vec(mask, (n_texts, n_tokens), &self.device)?;
        // (texts, tokens, 384)
        let hidden = self.model.forward(&ids, &mask)?;

        // Mean over the real tokens: padding contributes exact zeros to the sum.
        let weights = mask.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&weights)?.sum(1)?;
        let counts = weights.sum(1)?.clamp(1f32, f32::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norms)?.to_vec2::<f32>()
    }
}

fn embedder_entry() -> Result<&'static KnownModel, EmbedError> {
    catalog::KNOWN
        .iter()
        .find(|model| model.name == catalog::DEFAULT_EMBEDDER)
        .ok_or_else(|| EmbedError::Model("the catalog has no embedding model".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_model_names_the_fetch_command_and_nothing_is_cached() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let embedder = LocalEmbedder::new(dir.path());
        for _ in 0..2 {
            match embedder.embed(&["hello".to_owned()]).await {
                Err(error @ EmbedError::ModelMissing { .. }) => {
                    let message = error.to_string();
                    assert!(
                        message.contains("frontdesk models fetch all-minilm-l6-v2"),
                        "{message}"
                    );
                }
                other => unreachable!("expected ModelMissing, got {other:?}"),
            }
        }
        assert!(!embedder.loaded.initialized());
    }

    #[tokio::test]
    async fn no_texts_need_no_model() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let embedder = LocalEmbedder::new(dir.path());
        let vectors = embedder.embed(&[]).await;
        assert!(matches!(vectors.as_deref(), Ok([])));
        assert_eq!(embedder.dimensions(), 384);
        assert_eq!(embedder.model(), "all-minilm-l6-v2");
    }
}
