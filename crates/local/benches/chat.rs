//! Local chat model throughput through frontdesk's `ModelProvider` (so our overhead is in the
//! numbers): time to first token, prefill and decode tokens/s, for a ~40-token and a
//! ~500-token prompt, greedy, a warm-up and 5 runs each (median). Needs the model files
//! (`make models`). `make bench-local` runs it beside llama.cpp's own figures
//! (`llama_cpp_reference.py`, same GGUF and settings) and the embedding bench.
//!
//! `cargo bench -p frontdesk-local --bench chat`. With `BENCH_CHAT_JSON=FILE` it also writes
//! its figures there as JSON, so the reference can decode as many tokens (the two models'
//! answers differ in length, and decoding slows as the context grows).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // A bench prints its table.

use std::path::PathBuf;
use std::time::Instant;

use frontdesk_core::model::{ModelEvent, ModelMessage, ModelProvider, ModelRequest};
use frontdesk_local::{catalog, LocalChat, LocalConfig};
use futures_util::StreamExt;

/// The system message both this bench and the llama.cpp reference send.
const SYSTEM: &str = "You are a helpful assistant.";

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = std::env::var_os("FRONTDESK_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(
        catalog::chat_model_path(&dir, catalog::DEFAULT_CHAT_MODEL).is_some(),
        "no local model in {}: run `make models`",
        dir.display()
    );
    let model = LocalChat::new(LocalConfig {
        models_dir: dir,
        context: 2048,
        ..LocalConfig::default()
    });
    model.preload(catalog::DEFAULT_CHAT_MODEL).await.unwrap();
    let short = "Explain in two sentences why the sky is blue, for a curious child of eight.";
    let long = format!(
        "Summarise this support ticket in one sentence.\n{}",
        "The customer ordered a blue kettle on Monday, paid by card, and received a red toaster on Thursday. They want the kettle. ".repeat(18)
    );
    println!(
        "| prompt | prompt tokens | TTFT ms | prefill tok/s | decode tok/s | tokens decoded |"
    );
    println!("|---|---|---|---|---|---|");
    let mut figures = serde_json::Map::new();
    for (label, text) in [("short", short.to_owned()), ("long", long)] {
        let (mut ttft, mut prefill, mut decode) = (Vec::new(), Vec::new(), Vec::new());
        let (mut prompt_tokens, mut decoded) = (0, 0);
        // One warm-up run, then five measured (as the llama.cpp reference does).
        for run in 0..6 {
            let request = ModelRequest {
                model: catalog::DEFAULT_CHAT_MODEL.into(),
                messages: vec![
                    ModelMessage::System {
                        text: SYSTEM.into(),
                    },
                    ModelMessage::User { text: text.clone() },
                ],
                temperature: Some(0.0),
                max_tokens: Some(128),
                ..ModelRequest::default()
            };
            let started = Instant::now();
            let mut stream = model.stream(request).await.unwrap();
            let mut first = None;
            while let Some(event) = stream.next().await {
                match event.unwrap() {
                    ModelEvent::TextDelta(_) if first.is_none() => first = Some(started.elapsed()),
                    ModelEvent::Usage(usage) => {
                        prompt_tokens = usage.prompt_tokens;
                        decoded = usage.completion_tokens;
                    }
                    _ => {}
                }
            }
            let total = started.elapsed().as_secs_f64();
            if run == 0 {
                continue;
            }
            let first = first.unwrap().as_secs_f64();
            ttft.push(first * 1000.0);
            prefill.push(prompt_tokens as f64 / first);
            decode.push((decoded - 1).max(1) as f64 / (total - first).max(1e-6));
        }
        let (ttft, prefill, decode) = (median(ttft), median(prefill), median(decode));
        println!(
            "| {label} | {prompt_tokens} | {ttft:.1} | {prefill:.0} | {decode:.0} | {decoded} |"
        );
        figures.insert(
            label.to_owned(),
            serde_json::json!({
                "prompt_tokens": prompt_tokens,
                "ttft_ms": ttft,
                "prefill_tok_s": prefill,
                "decode_tok_s": decode,
                "tokens_decoded": decoded,
            }),
        );
    }
    if let Some(path) = std::env::var_os("BENCH_CHAT_JSON") {
        std::fs::write(&path, serde_json::Value::Object(figures).to_string()).unwrap();
    }
}
