//! What the server adds around the local model: a real `frontdesk` server (in this process,
//! SQLite, jemalloc, the HTTP API over loopback) answers chat turns on `local/smollm2-135m`,
//! and every token is timed twice: when the Runner takes it from the model's stream and when
//! the SSE client reads it. The difference is the server's per-token overhead (Runner, run
//! log, SSE framing, HTTP). Also: the time from the request to the model call (auth, agent,
//! history, the user message stored), the time from the model's last event to the end of the
//! stream (the answer stored), and the first token as the client sees it. Same prompts and
//! settings as the `frontdesk-local` chat bench (greedy, at most 128 tokens), a warm-up and 5
//! turns per prompt. Needs the model files (`make models`).
//!
//! `cargo bench -p frontdesk --bench local_turn` (or `make bench-local`)

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // A bench prints its table.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use frontdesk_core::config::Config;
use frontdesk_core::model::{ModelError, ModelEvent, ModelProvider, ModelRequest, ModelStream};
use frontdesk_core::service::NewTenant;
use frontdesk_core::store::BaseStore;
use frontdesk_core::Service;
use frontdesk_local::{catalog, LocalChat, LocalConfig};
use frontdesk_models::registry::Registry;
use frontdesk_server::AppState;
use frontdesk_store::SqlStore;
use futures_util::StreamExt;
use serde_json::json;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// When the Runner saw each of the model's events.
#[derive(Default)]
struct Stamps {
    called: Option<Instant>,
    tokens: Vec<Instant>,
    finished: Option<Instant>,
}

/// The local model, with every event it hands over timed.
struct Stamped {
    inner: LocalChat,
    stamps: Arc<Mutex<Stamps>>,
}

#[async_trait]
impl ModelProvider for Stamped {
    async fn stream(&self, request: ModelRequest) -> Result<ModelStream, ModelError> {
        self.stamps.lock().unwrap().called = Some(Instant::now());
        let stream = self.inner.stream(request).await?;
        let stamps = self.stamps.clone();
        Ok(Box::pin(stream.inspect(move |event| {
            let now = Instant::now();
            let mut stamps = stamps.lock().unwrap();
            match event {
                Ok(ModelEvent::TextDelta(_)) => stamps.tokens.push(now),
                Ok(ModelEvent::Finish(_)) => stamps.finished = Some(now),
                _ => {}
            }
        })))
    }

    fn context_window(&self, model: &str) -> Option<u32> {
        self.inner.context_window(model)
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[rank.min(values.len() - 1)]
}

/// One turn as the client saw it: when it sent, when each delta arrived, when the stream ended.
struct Seen {
    sent: Instant,
    tokens: Vec<Instant>,
    ended: Instant,
}

async fn turn(client: &reqwest::Client, base: &str, key: &str, text: &str) -> Seen {
    let sent = Instant::now();
    let response = client
        .post(format!("{base}/api/v1/messages"))
        .bearer_auth(key)
        .header("accept", "text/event-stream")
        .json(&json!({"agent": "bench", "content": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the turn was refused");
    let mut body = response.bytes_stream();
    let (mut buffer, mut tokens) = (String::new(), Vec::new());
    while let Some(chunk) = body.next().await {
        let now = Instant::now();
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if frame.lines().any(|line| line == "event: message.delta") {
                tokens.push(now);
            }
            assert!(
                !frame.lines().any(|line| line == "event: error"),
                "the turn failed: {frame}"
            );
        }
    }
    Seen {
        sent,
        tokens,
        ended: Instant::now(),
    }
}

#[tokio::main]
async fn main() {
    let models = std::env::var_os("FRONTDESK_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models"));
    assert!(
        catalog::chat_model_path(&models, catalog::DEFAULT_CHAT_MODEL).is_some(),
        "no local model in {}: run `make models`",
        models.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::connect(&format!(
        "sqlite://{}",
        dir.path().join("frontdesk.db").display()
    ))
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let config = Config {
        bootstrap_demo: false,
        ..Config::default()
    };
    let service = Service::new(Arc::new(store.clone()), config.limits.clone());
    let stamps = Arc::new(Mutex::new(Stamps::default()));
    let local = LocalChat::new(LocalConfig {
        models_dir: models,
        context: 2048,
        ..LocalConfig::default()
    });
    local.preload(catalog::DEFAULT_CHAT_MODEL).await.unwrap();
    let mut registry = Registry::default();
    registry.register(
        "local",
        Arc::new(Stamped {
            inner: local,
            stamps: stamps.clone(),
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::with_registry(service.clone(), config, registry);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(frontdesk_server::serve(listener, state, async {
        let _ = stopped.await;
    }));
    let key = service
        .create_tenant(NewTenant {
            name: "Bench".into(),
            owner_email: None,
            monthly_token_quota: None,
        })
        .await
        .unwrap()
        .secret
        .expose()
        .to_owned();
    let client = reqwest::Client::new();
    let agent = json!({
        "slug": "bench", "name": "Bench", "model": format!("local/{}", catalog::DEFAULT_CHAT_MODEL),
        "instructions": "You are a helpful assistant.", "temperature": 0, "max_tokens": 128,
    });
    let created = client
        .post(format!("{base}/api/v1/agents"))
        .bearer_auth(&key)
        .json(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    let short = "Explain in two sentences why the sky is blue, for a curious child of eight.";
    let long = format!(
        "Summarise this support ticket in one sentence.\n{}",
        "The customer ordered a blue kettle on Monday, paid by card, and received a red toaster on Thursday. They want the kettle. ".repeat(18)
    );
    println!("| prompt | first token at the client ms | at the model ms | request to model call ms | per token added p50 / p99 / max ms | last event to stream end ms | tokens/s at the client | tokens |");
    println!("|---|---|---|---|---|---|---|---|");
    for (label, text) in [("short", short.to_owned()), ("long", long)] {
        let (mut first_client, mut first_model, mut before, mut after, mut rate) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut added = Vec::new();
        let mut count = 0;
        for run in 0..6 {
            *stamps.lock().unwrap() = Stamps::default();
            let seen = turn(&client, &base, &key, &text).await;
            let model = std::mem::take(&mut *stamps.lock().unwrap());
            if run == 0 {
                continue; // warm-up
            }
            let called = model.called.expect("the model was called");
            assert_eq!(
                seen.tokens.len(),
                model.tokens.len(),
                "every token reaches the client as one delta"
            );
            count = seen.tokens.len();
            first_client.push(ms(seen.tokens[0] - seen.sent));
            first_model.push(ms(model.tokens[0] - called));
            before.push(ms(called - seen.sent));
            after.push(ms(seen.ended - model.finished.expect("the model finished")));
            rate.push(
                (count - 1) as f64 / (*seen.tokens.last().unwrap() - seen.tokens[0]).as_secs_f64(),
            );
            added.extend(
                seen.tokens
                    .iter()
                    .zip(&model.tokens)
                    .map(|(client, model)| ms(client.saturating_duration_since(*model))),
            );
        }
        println!(
            "| {label} | {:.1} | {:.1} | {:.2} | {:.3} / {:.3} / {:.3} | {:.2} | {:.0} | {count} |",
            percentile(&mut first_client, 0.5),
            percentile(&mut first_model, 0.5),
            percentile(&mut before, 0.5),
            percentile(&mut added, 0.5),
            percentile(&mut added, 0.99),
            percentile(&mut added, 1.0),
            percentile(&mut after, 0.5),
            percentile(&mut rate, 0.5),
        );
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    store.close().await;
}
