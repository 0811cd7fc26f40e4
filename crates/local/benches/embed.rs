//! Local embedding throughput on the CPU: sentences per second for 20-word sentences in
//! batches of 32, and chunks per second for 256-token chunks (the knowledge base's size).
//! Run with `cargo bench -p frontdesk-local --bench embed`; the model files must be in
//! `FRONTDESK_MODELS_DIR` (else `<repo>/models`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // A bench binary: it reports on stdout and fails loudly.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use frontdesk_core::embed::Embedder;
use frontdesk_local::embed::{LocalEmbedder, MAX_TOKENS};

const WORDS: &[&str] = &[
    "customer",
    "invoice",
    "delivery",
    "refund",
    "account",
    "password",
    "weekend",
    "support",
    "order",
    "package",
    "warranty",
    "schedule",
    "meeting",
    "holiday",
    "address",
    "payment",
    "subscription",
    "discount",
    "question",
    "answer",
    "team",
    "office",
    "printer",
    "network",
    "the",
    "a",
    "my",
    "our",
    "is",
    "was",
    "will",
    "can",
    "not",
    "arrived",
    "broken",
    "late",
    "please",
    "thanks",
    "today",
    "tomorrow",
    "because",
    "and",
    "but",
    "with",
    "for",
    "about",
];

/// `n_words` words, different for each `seed`.
fn text(n_words: usize, seed: usize) -> String {
    (0..n_words)
        .map(|i| WORDS[(seed * 31 + i * 17 + i * i * 7 + seed * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn models_dir() -> PathBuf {
    std::env::var_os("FRONTDESK_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// Token counts (special tokens included, before the cut at `MAX_TOKENS`).
fn token_counts(texts: &[String]) -> (usize, usize) {
    let path = models_dir().join("all-minilm-l6-v2/tokenizer.json");
    let mut tokenizer = tokenizers::Tokenizer::from_file(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    let counts: Vec<usize> = texts
        .iter()
        .map(|t| tokenizer.encode(t.as_str(), true).unwrap().len())
        .collect();
    (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    )
}

/// The best of `rounds` timings of embedding all `texts`.
async fn best_of(embedder: &LocalEmbedder, texts: &[String], rounds: usize) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let started = Instant::now();
        let vectors = embedder.embed(texts).await.unwrap();
        best = best.min(started.elapsed());
        assert_eq!(vectors.len(), texts.len());
    }
    best
}

#[tokio::main]
async fn main() {
    let embedder = LocalEmbedder::new(models_dir()).with_batch_size(32);
    let started = Instant::now();
    embedder.load().await.unwrap_or_else(|e| panic!("{e}"));
    println!(
        "model loaded in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "threads: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    let sentences: Vec<String> = (0..320).map(|seed| text(20, seed)).collect();
    let (min, max) = token_counts(&sentences);
    embedder.embed(&sentences[..32]).await.unwrap(); // Warm up.
    let took = best_of(&embedder, &sentences, 3).await;
    println!(
        "sentences: {} of 20 words ({min}-{max} tokens), batches of 32: {:.1} sentences/s ({:.0} ms)",
        sentences.len(),
        sentences.len() as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e3
    );

    let chunks: Vec<String> = (0..64).map(|seed| text(300, seed)).collect();
    let (min, _) = token_counts(&chunks);
    assert!(
        min >= MAX_TOKENS,
        "a chunk of {min} tokens: make them longer"
    );
    let took = best_of(&embedder, &chunks, 2).await;
    println!(
        "chunks: {} of {MAX_TOKENS} tokens, batches of 32: {:.1} chunks/s ({:.0} ms)",
        chunks.len(),
        chunks.len() as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e3
    );
}
