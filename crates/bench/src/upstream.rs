//! The scripted model upstream: `POST /v1/chat/completions` answers an OpenAI Chat
//! Completions stream (`data: {chat.completion.chunk}` … `data: [DONE]`) on the timing the
//! user message asks for (see `script`), each content chunk stamped with the upstream's
//! clock. `POST /release` ends every held stream. It runs in its own process so its CPU is
//! not counted against the proxy under test.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::script::{now_nanos, Script, Stamp};

/// Serves the upstream on 127.0.0.1:`port` (0 picks one) and prints
/// `listening on ADDR` once it accepts connections.
pub async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    let (release, _) = watch::channel(0_u64);
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/release", post(release_all))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Arc::new(release));
    // Each chunk leaves at once, as a model server's would, not batched by Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

type Release = Arc<watch::Sender<u64>>;

async fn release_all(State(release): State<Release>) -> Json<Value> {
    release.send_modify(|generation| *generation += 1);
    Json(json!({"released": release.receiver_count()}))
}

async fn completions(State(release): State<Release>, body: Bytes) -> Response {
    let received = now_nanos();
    let start = Instant::now();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let play = Play {
        script: Script::parse(&last_user_text(&request)),
        start,
        received,
        chunk_idx: 0,
        phase: Phase::Content,
        release: release.subscribe(),
        model: request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("bench-model")
            .to_owned(),
        include_usage: request.pointer("/stream_options/include_usage") == Some(&json!(true)),
    };
    let stream = futures_util::stream::unfold(play, |mut play| async move {
        let frame = play.next_frame().await?;
        Some((Ok::<_, Infallible>(frame), play))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

/// The text of the last user message (a string, or the text parts of a list).
fn last_user_text(request: &Value) -> String {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(message) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Content,
    Finish,
    Usage,
    Done,
    Ended,
}

/// One response being played.
struct Play {
    script: Script,
    start: Instant,
    received: i64,
    chunk_idx: u32,
    phase: Phase,
    release: watch::Receiver<u64>,
    model: String,
    include_usage: bool,
}

impl Play {
    /// The next SSE frame, after waiting for its time; `None` at the end.
    async fn next_frame(&mut self) -> Option<String> {
        loop {
            match self.phase {
                Phase::Content => {
                    if let Some(frame) = self.next_content().await {
                        return Some(frame);
                    }
                    self.phase = Phase::Finish;
                }
                Phase::Finish => {
                    self.phase = Phase::Usage;
                    let chunk =
                        self.chunk(json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]));
                    return Some(frame(&chunk));
                }
                Phase::Usage => {
                    self.phase = Phase::Done;
                    if self.include_usage {
                        let mut chunk = self.chunk(json!([]));
                        chunk["usage"] = json!({"prompt_tokens": 10, "completion_tokens": self.chunk_idx, "total_tokens": 10 + self.chunk_idx});
                        return Some(frame(&chunk));
                    }
                }
                Phase::Done => {
                    self.phase = Phase::Ended;
                    return Some("data: [DONE]\n\n".to_owned());
                }
                Phase::Ended => return None,
            }
        }
    }

    /// The next content chunk, or `None` when the content is over.
    async fn next_content(&mut self) -> Option<String> {
        match self.script {
            Script::Stream { first, chunks, gap } => {
                if self.chunk_idx >= chunks {
                    return None;
                }
                tokio::time::sleep_until(self.start + first + gap * self.chunk_idx).await;
            }
            Script::Hold { first, gap } => {
                if self.chunk_idx == 0 {
                    tokio::time::sleep_until(self.start + first).await;
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(gap) => {}
                        _ = self.release.changed() => return None,
                    }
                }
            }
        }
        let stamp = Stamp {
            received: (self.chunk_idx == 0).then_some(self.received),
            sent: now_nanos(),
        };
        let delta = if self.chunk_idx == 0 {
            json!({"role": "assistant", "content": stamp.text()})
        } else {
            json!({"content": stamp.text()})
        };
        self.chunk_idx += 1;
        let chunk = self.chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}]));
        Some(frame(&chunk))
    }

    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": self.received / 1_000_000_000,
            "model": self.model,
            "choices": choices,
        })
    }
}

fn frame(chunk: &Value) -> String {
    format!("data: {chunk}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_user_message_selects_the_script() {
        let request = json!({"messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "old"},
            {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "bench hold"}]},
        ]});
        assert_eq!(last_user_text(&request), "bench hold");
        assert_eq!(last_user_text(&json!({})), "");
    }
}
