//! The clients: one streamed turn against a target (frontdesk's native API or an OpenAI
//! Chat Completions endpoint), a level of C turns started together, and streams held open.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{Barrier, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::script::{now_nanos, stamps, Script};
use crate::sse::{interpret, short, Item, Protocol, SseDecoder};

/// Something to stream turns through.
#[derive(Debug, Clone)]
pub struct Target {
    /// The name in the report.
    pub name: String,
    pub protocol: Protocol,
    /// `http://host:port`: frontdesk's root, or the root under which
    /// `/chat/completions` lives for OpenAI-style targets.
    pub base_url: String,
    /// A bearer token, when the target wants one.
    pub key: Option<String>,
    /// The agent slug (frontdesk) or model name (OpenAI-style).
    pub model: String,
}

impl Target {
    /// One slot per stream: a new conversation on frontdesk, nothing elsewhere.
    pub async fn prepare(&self, http: &reqwest::Client, n: usize) -> anyhow::Result<Vec<String>> {
        if self.protocol == Protocol::OpenAi {
            return Ok(vec![String::new(); n]);
        }
        let limit = Arc::new(Semaphore::new(16));
        let mut set = JoinSet::new();
        for _ in 0..n {
            let permit = limit.clone().acquire_owned().await?;
            let (http, target) = (http.clone(), self.clone());
            set.spawn(async move {
                let id = target.create_conversation(&http).await;
                drop(permit);
                id
            });
        }
        let mut ids = Vec::with_capacity(n);
        while let Some(id) = set.join_next().await {
            ids.push(id??);
        }
        Ok(ids)
    }

    async fn create_conversation(&self, http: &reqwest::Client) -> anyhow::Result<String> {
        let response = self
            .authorized(http.post(format!("{}/api/v1/conversations", self.base_url)))
            .json(&json!({"agent": self.model}))
            .send()
            .await
            .context("POST /api/v1/conversations")?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match body.get("id").and_then(Value::as_str) {
            Some(id) if status.is_success() => Ok(id.to_owned()),
            _ => anyhow::bail!("POST /api/v1/conversations answered {status}: {body}"),
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    fn turn(&self, http: &reqwest::Client, slot: &str, script: Script) -> reqwest::RequestBuilder {
        let request = match self.protocol {
            Protocol::Frontdesk => http
                .post(format!(
                    "{}/api/v1/conversations/{slot}/messages",
                    self.base_url
                ))
                .header(reqwest::header::ACCEPT, "text/event-stream")
                .json(&json!({"content": script.message()})),
            Protocol::OpenAi => http
                .post(format!("{}/chat/completions", self.base_url))
                .json(&json!({
                    "model": self.model,
                    "messages": [{"role": "user", "content": script.message()}],
                    "stream": true,
                })),
        };
        self.authorized(request)
    }
}

/// What one stream measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Client receive time minus upstream send time of the first token, in ns.
    pub first_added: Option<i64>,
    /// Upstream receive time minus client send time, in ns.
    pub request_path: Option<i64>,
    /// Client receive minus upstream send time of every token, in ns.
    pub token_added: Vec<i64>,
    /// `Ok` when the stream reached its end event without an error.
    pub result: Result<(), String>,
}

impl Outcome {
    fn failed(error: String) -> Outcome {
        Outcome {
            first_added: None,
            request_path: None,
            token_added: Vec::new(),
            result: Err(error),
        }
    }
}

/// Counts held streams as they reach their first token (or fail before it).
#[derive(Debug, Default)]
pub struct Progress {
    pub first: AtomicUsize,
    pub failed: AtomicUsize,
}

/// Streams one turn to its end.
pub async fn stream(
    http: &reqwest::Client,
    target: &Target,
    slot: &str,
    script: Script,
    progress: Option<&Progress>,
    mut opening: Option<OwnedSemaphorePermit>,
) -> Outcome {
    let mut outcome = Outcome::failed("the stream ended before its end event".to_owned());
    let sent = now_nanos();
    let response = match target.turn(http, slot, script).send().await {
        Ok(response) => response,
        Err(error) => {
            outcome.result = Err(format!("request failed: {}", error_chain(&error)));
            return failed_early(outcome, progress);
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        outcome.result = Err(format!("HTTP {status}: {}", short(&body)));
        return failed_early(outcome, progress);
    }
    let mut body = response.bytes_stream();
    let mut decoder = SseDecoder::default();
    let mut pending = String::new();
    let mut error = None;
    'read: while let Some(chunk) = body.next().await {
        let arrived = now_nanos();
        let bytes = match chunk {
            Ok(bytes) => bytes,
            Err(e) => {
                error = Some(format!("connection broke: {}", error_chain(&e)));
                break;
            }
        };
        for event in decoder.push(&bytes) {
            match interpret(target.protocol, &event) {
                Item::Text(text) => {
                    pending.push_str(&text);
                    for stamp in stamps(&pending) {
                        outcome.token_added.push(arrived - stamp.sent);
                        if outcome.first_added.is_none() {
                            outcome.first_added = Some(arrived - stamp.sent);
                            outcome.request_path = stamp.received.map(|rx| rx - sent);
                            if let Some(progress) = progress {
                                progress.first.fetch_add(1, Ordering::Relaxed);
                            }
                            opening = None;
                        }
                    }
                    // Keep only what may be the start of a stamp cut in two.
                    match pending.rfind('>') {
                        Some(end) => pending.drain(..=end).count(),
                        None if pending.len() > 4096 => pending.drain(..).count(),
                        None => 0,
                    };
                }
                Item::End(result) => {
                    outcome.result = match (result, error.take()) {
                        (Ok(()), None) => Ok(()),
                        (Ok(()), Some(error)) => Err(error),
                        (Err(end), None) => Err(end),
                        (Err(end), Some(error)) => Err(format!("{error} ({end})")),
                    };
                    break 'read;
                }
                Item::Error(message) => {
                    error.get_or_insert(message);
                }
                Item::Other => {}
            }
        }
    }
    if let Some(error) = error {
        outcome.result = Err(error);
    }
    drop(opening);
    if outcome.first_added.is_none() {
        return failed_early(outcome, progress);
    }
    outcome
}

fn failed_early(outcome: Outcome, progress: Option<&Progress>) -> Outcome {
    if let Some(progress) = progress {
        progress.failed.fetch_add(1, Ordering::Relaxed);
    }
    outcome
}

/// An error with its causes (reqwest hides the interesting part in the source).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The streams of one concurrency level, together.
#[derive(Debug, Clone, Default)]
pub struct LevelResult {
    pub concurrency: usize,
    pub streams: usize,
    pub ok: usize,
    /// Error messages and how often each happened.
    pub errors: BTreeMap<String, usize>,
    pub first_added: Vec<i64>,
    /// First-token added latency plus the request path: what the proxy adds to the time
    /// to first token.
    pub ttft_overhead: Vec<i64>,
    pub token_added: Vec<i64>,
    /// How long the level ran (steady arrivals), in seconds.
    pub seconds: f64,
    /// frontdesk's own timing of one hop during the level (steady arrivals).
    pub event_wait: Option<crate::waits::Histogram>,
}

impl LevelResult {
    /// Adds one stream's outcome.
    pub fn add(&mut self, outcome: Outcome) {
        self.streams += 1;
        match outcome.result {
            Ok(()) => self.ok += 1,
            Err(error) => *self.errors.entry(error).or_default() += 1,
        }
        if let Some(first) = outcome.first_added {
            self.first_added.push(first);
            if let Some(request) = outcome.request_path {
                self.ttft_overhead.push(first + request);
            }
        }
        self.token_added.extend(outcome.token_added);
    }
}

/// Runs `rounds` rounds of `concurrency` turns, each round's turns released together.
pub async fn level(
    http: &reqwest::Client,
    target: &Target,
    concurrency: usize,
    rounds: usize,
    timeout: Duration,
) -> anyhow::Result<LevelResult> {
    let mut result = LevelResult {
        concurrency,
        ..LevelResult::default()
    };
    for _ in 0..rounds {
        let slots = target.prepare(http, concurrency).await?;
        let barrier = Arc::new(Barrier::new(concurrency));
        let mut set = JoinSet::new();
        for slot in slots {
            let (http, target, barrier) = (http.clone(), target.clone(), barrier.clone());
            set.spawn(async move {
                barrier.wait().await;
                let turn = stream(&http, &target, &slot, Script::TURN, None, None);
                match tokio::time::timeout(timeout, turn).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::failed(format!("no end within {}s", timeout.as_secs())),
                }
            });
        }
        while let Some(outcome) = set.join_next().await {
            result.add(outcome?);
        }
    }
    Ok(result)
}

/// Keeps `concurrency` turns of `script` going for `duration`: slot `i` starts `i /
/// concurrency` of a turn's length after the first and starts its next turn as soon as one
/// ends, so turns arrive at a steady rate (about `concurrency / length` a second) rather
/// than all together.
pub async fn steady(
    http: &reqwest::Client,
    target: &Target,
    concurrency: usize,
    script: Script,
    duration: Duration,
    timeout: Duration,
) -> anyhow::Result<LevelResult> {
    let slots = target.prepare(http, concurrency).await?;
    let length = script.length();
    let start = tokio::time::Instant::now();
    let end = start + duration;
    let mut set = JoinSet::new();
    for (i, slot) in slots.into_iter().enumerate() {
        let offset = length.mul_f64(i as f64 / concurrency as f64);
        let (http, target) = (http.clone(), target.clone());
        set.spawn(async move {
            tokio::time::sleep_until(start + offset).await;
            let mut outcomes = Vec::new();
            while tokio::time::Instant::now() < end {
                let turn = stream(&http, &target, &slot, script, None, None);
                outcomes.push(match tokio::time::timeout(timeout, turn).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::failed(format!("no end within {}s", timeout.as_secs())),
                });
            }
            outcomes
        });
    }
    let mut result = LevelResult {
        concurrency,
        ..LevelResult::default()
    };
    while let Some(outcomes) = set.join_next().await {
        for outcome in outcomes? {
            result.add(outcome);
        }
    }
    result.seconds = start.elapsed().as_secs_f64();
    Ok(result)
}

/// Streams held open on a target, opened in steps.
pub struct Held {
    pub progress: Arc<Progress>,
    pub tasks: JoinSet<Outcome>,
    opening: Arc<Semaphore>,
}

impl Held {
    /// At most `opening` streams are between their request and their first token at once,
    /// so a step is a steady ramp rather than a connection storm.
    pub fn new(opening: usize) -> Held {
        Held {
            progress: Arc::new(Progress::default()),
            tasks: JoinSet::new(),
            opening: Arc::new(Semaphore::new(opening)),
        }
    }

    /// Opens one more held stream per slot and returns how many it started: all of them,
    /// unless no opening stream got its first token for `stall`.
    pub async fn open(
        &mut self,
        http: &reqwest::Client,
        target: &Target,
        slots: Vec<String>,
        stall: Duration,
    ) -> anyhow::Result<usize> {
        let mut started = 0;
        for slot in slots {
            let acquire = self.opening.clone().acquire_owned();
            let Ok(permit) = tokio::time::timeout(stall, acquire).await else {
                return Ok(started);
            };
            let permit = permit?;
            started += 1;
            let (http, target, progress) = (http.clone(), target.clone(), self.progress.clone());
            self.tasks.spawn(async move {
                stream(
                    &http,
                    &target,
                    &slot,
                    Script::HOLD,
                    Some(&progress),
                    Some(permit),
                )
                .await
            });
        }
        Ok(started)
    }

    /// Streams that have their first token, and those that failed before it.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.progress.first.load(Ordering::Relaxed),
            self.progress.failed.load(Ordering::Relaxed),
        )
    }
}
