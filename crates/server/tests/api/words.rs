//! A small embedder for tests: each word (lowercased, a plural `s` dropped) adds to one of
//! 256 dimensions picked by its hash, so texts that share words are near. It can be told to
//! stall after a number of calls (a worker that is stuck when the server stops).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_core::embed::{EmbedError, Embedder};

pub const DIMENSIONS: usize = 256;

#[derive(Debug, Default)]
pub struct Words {
    calls: AtomicUsize,
    /// Calls after which every call waits forever (0: never).
    stall_after: AtomicUsize,
    stalled: AtomicBool,
}

impl Words {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// From the `n`th call on, calls never return.
    pub fn stall_after(&self, n: usize) {
        self.stall_after.store(n, Ordering::SeqCst);
    }

    pub fn unstall(&self) {
        self.stall_after.store(0, Ordering::SeqCst);
    }

    /// Whether a call is stalled now.
    pub fn stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    pub fn vector(text: &str) -> Vec<f32> {
        let mut v = vec![0f32; DIMENSIONS];
        for word in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 1)
        {
            let word = word.to_lowercase();
            let word = word
                .strip_suffix('s')
                .filter(|w| w.len() > 2)
                .unwrap_or(&word);
            let hash = word.bytes().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
            });
            v[(hash % DIMENSIONS as u64) as usize] += 1.0;
        }
        v
    }
}

#[async_trait]
impl Embedder for Words {
    fn dimensions(&self) -> usize {
        DIMENSIONS
    }

    fn model(&self) -> &str {
        "test-words"
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let stall = self.stall_after.load(Ordering::SeqCst);
        if stall > 0 && n >= stall {
            self.stalled.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(texts.iter().map(|t| Self::vector(t)).collect())
    }
}
