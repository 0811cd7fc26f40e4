//! The local MiniLM embedder with the real model: agreement with an independent numpy
//! reference (fixtures/minilm_reference.py), unit length, meaning, and vectors that do not
//! depend on batching, padding or what follows the 256th token.
//!
//! The model files must be there (`FRONTDESK_MODELS_DIR`, else `<repo>/models`): without
//! them these tests fail, they do not skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // Test code: a failure should fail loudly.

use std::path::PathBuf;
use std::sync::LazyLock;

use frontdesk_core::embed::{cosine, Embedder};
use frontdesk_local::embed::{LocalEmbedder, DIMENSIONS};

fn models_dir() -> PathBuf {
    std::env::var_os("FRONTDESK_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"))
}

/// One embedder for all tests (the model loads once); it fails loudly without the files.
static EMBEDDER: LazyLock<LocalEmbedder> = LazyLock::new(|| {
    let dir = models_dir();
    for file in ["model.safetensors", "tokenizer.json", "config.json"] {
        let path = dir.join("all-minilm-l6-v2").join(file);
        assert!(
            path.is_file(),
            "{} is missing: run `cargo run --bin frontdesk -- models fetch all-minilm-l6-v2` \
             (or set FRONTDESK_MODELS_DIR)",
            path.display()
        );
    }
    LocalEmbedder::new(dir)
});

async fn embed(texts: &[&str]) -> Vec<Vec<f32>> {
    let texts: Vec<String> = texts.iter().map(|s| (*s).to_owned()).collect();
    let vectors = EMBEDDER.embed(&texts).await.unwrap();
    assert_eq!(vectors.len(), texts.len());
    for vector in &vectors {
        assert_eq!(vector.len(), DIMENSIONS);
    }
    vectors
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// About `n_words` words of plain prose (each word one token or two).
fn prose(n_words: usize, seed: usize) -> String {
    const WORDS: &[&str] = &[
        "the", "customer", "asked", "about", "an", "invoice", "that", "arrived", "late", "and",
        "our", "team", "answered", "within", "two", "hours", "with", "a", "refund", "because",
        "shipping", "failed", "twice", "during", "winter", "storms", "in", "northern", "regions",
    ];
    (0..n_words)
        .map(|i| WORDS[(i * 7 + seed * 3 + i / WORDS.len()) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The reference sentences and their vectors.
fn reference() -> Vec<(String, Vec<f32>)> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    let document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(document["dimensions"], DIMENSIONS);
    let sentences = document["sentences"].as_array().unwrap();
    sentences
        .iter()
        .map(|sentence| {
            let text = sentence["text"].as_str().unwrap().to_owned();
            let embedding = sentence["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            (text, embedding)
        })
        .collect()
}

#[tokio::test]
async fn vectors_match_the_numpy_reference() {
    let reference = reference();
    assert!(reference.len() >= 6);

    // All in one batch (padded to the longest), and each alone (no padding).
    let texts: Vec<&str> = reference.iter().map(|(text, _)| text.as_str()).collect();
    let together = embed(&texts).await;
    for ((text, expected), vector) in reference.iter().zip(&together) {
        assert_eq!(expected.len(), DIMENSIONS);
        let alone = &embed(&[text]).await[0];
        for (how, got) in [("in a batch", vector), ("alone", alone)] {
            let difference = max_difference(got, expected);
            assert!(
                difference < 1e-4,
                "{text:?} {how}: differs from the reference by up to {difference}"
            );
        }
    }
}

#[tokio::test]
async fn vectors_have_unit_length() {
    let long = prose(600, 1);
    let texts = [
        "Hello",
        "",
        "   ",
        "What are your opening hours on public holidays?",
        long.as_str(),
        "🙂 ümlaut ñ 中文 текст",
    ];
    for (text, vector) in texts.iter().zip(embed(&texts).await) {
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
        assert!(vector.iter().all(|x| x.is_finite()), "{text:?}");
    }
}

#[tokio::test]
async fn paraphrases_are_closer_than_unrelated_sentences() {
    // (sentence, paraphrase, unrelated)
    let cases = [
        (
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The weather in Lisbon is sunny today.",
        ),
        (
            "The cat sits on the mat.",
            "A kitten is resting on a rug.",
            "Quarterly revenue grew by 12 percent.",
        ),
        (
            "When does the store open on Saturdays?",
            "What are your weekend opening hours?",
            "Photosynthesis converts light into chemical energy.",
        ),
        (
            "I would like a refund for my broken headphones.",
            "My headphones arrived damaged, can I get my money back?",
            "The train to Berlin leaves at nine.",
        ),
    ];
    for (sentence, paraphrase, unrelated) in cases {
        let vectors = embed(&[sentence, paraphrase, unrelated]).await;
        let close = cosine(&vectors[0], &vectors[1]);
        let far = cosine(&vectors[0], &vectors[2]);
        assert!(
            close > far + 0.2 && close > 0.5,
            "{sentence:?}: paraphrase {close}, unrelated {far}"
        );
    }
}

#[tokio::test]
async fn a_vector_does_not_depend_on_its_batch() {
    let sentence = "Can I change the delivery address of my order?";
    let long = prose(180, 2);
    let alone = embed(&[sentence]).await.remove(0);
    let batched = embed(&[long.as_str(), sentence, "Hi", long.as_str()]).await;
    let difference = max_difference(&alone, &batched[1]);
    assert!(difference < 1e-5, "padded in a batch: {difference}");
    assert!(max_difference(&batched[0], &batched[3]) < 1e-5);

    // More texts than one forward pass takes: still each text's own vector, in order.
    let many: Vec<String> = (0..70)
        .map(|i| format!("{} {i}", prose(5 + i % 30, i)))
        .collect();
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let all = embed(&many_refs).await;
    for idx in [0, 31, 32, 33, 69] {
        let own = embed(&[many_refs[idx]]).await.remove(0);
        let difference = max_difference(&own, &all[idx]);
        assert!(difference < 1e-5, "text {idx}: {difference}");
    }
}

#[tokio::test]
async fn only_the_first_256_tokens_count() {
    let head = prose(400, 3);
    let vectors = embed(&[
        &format!("{head} and then something entirely different happened"),
        &format!("{head} but the quarterly tax report is overdue"),
        &prose(20, 3),
    ])
    .await;
    assert!(max_difference(&vectors[0], &vectors[1]) < 1e-6);
    assert!(max_difference(&vectors[0], &vectors[2]) > 1e-3);
}

#[tokio::test]
async fn the_embedder_says_what_it_is() {
    assert_eq!(EMBEDDER.dimensions(), 384);
    assert_eq!(EMBEDDER.model(), "all-minilm-l6-v2");
}
