//! A scripted OpenAI Chat Completions upstream: a real HTTP server that answers each request
//! with the next scripted reply (text or tool calls), streamed or not as asked, and records
//! the request bodies. Also a webhook receiver that records what it gets.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    Text(String),
    /// Tool calls: `(id, name, arguments)`.
    Calls(Vec<(String, String, Value)>),
    /// The upstream answers this HTTP status with an OpenAI-style error body.
    Fail(u16),
}

pub fn text(t: &str) -> Reply {
    Reply::Text(t.to_owned())
}

pub fn call(id: &str, name: &str, arguments: Value) -> Reply {
    Reply::Calls(vec![(id.to_owned(), name.to_owned(), arguments)])
}

#[derive(Clone)]
pub struct Scripted {
    /// `http://127.0.0.1:PORT/v1`
    pub base: String,
    replies: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Scripted {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, q) = (replies.clone(), requests.clone());
        let app = Router::new().route(
            "/v1/chat/completions",
            post(move |body: Bytes| {
                let (r, q) = (r.clone(), q.clone());
                async move {
                    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let stream = request["stream"].as_bool().unwrap_or(false);
                    q.lock().unwrap().push(request);
                    let reply = r
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or_else(|| text("(no more scripted replies)"));
                    answer(reply, stream)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Scripted {
            base,
            replies,
            requests,
        }
    }

    /// Every request body so far.
    pub fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }

    pub fn push(&self, reply: Reply) {
        self.replies.lock().unwrap().push_back(reply);
    }

    /// The provider that talks to it.
    pub fn provider(&self) -> Arc<dyn frontdesk_core::model::ModelProvider> {
        Arc::new(
            frontdesk_models::openai_chat::OpenAiChat::new(
                &self.base,
                None,
                frontdesk_models::Timeouts::default(),
            )
            .unwrap(),
        )
    }
}

const USAGE: &str = r#"{"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}"#;

fn answer(reply: Reply, stream: bool) -> Response {
    let usage: Value = serde_json::from_str(USAGE).unwrap();
    if let Reply::Fail(status) = reply {
        let body =
            json!({"error": {"message": "scripted failure", "type": "invalid_request_error"}});
        return Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
    }
    if !stream {
        let (message, finish) = match reply {
            Reply::Text(t) => (json!({"role": "assistant", "content": t}), "stop"),
            Reply::Calls(calls) => (
                json!({"role": "assistant", "content": null, "tool_calls": calls.iter().map(|(id, name, args)| json!({
                    "id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}
                })).collect::<Vec<_>>()}),
                "tool_calls",
            ),
            Reply::Fail(_) => unreachable!("answered above"),
        };
        let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "scripted",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
    }
    let chunk = |delta: Value, finish: Option<&str>| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "scripted",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let mut out = String::new();
    let finish = match reply {
        Reply::Text(t) => {
            // Two pieces, so streaming is visible.
            let mid = t
                .char_indices()
                .nth(t.chars().count() / 2)
                .map_or(0, |(i, _)| i);
            out.push_str(&chunk(
                json!({"role": "assistant", "content": &t[..mid]}),
                None,
            ));
            out.push_str(&chunk(json!({"content": &t[mid..]}), None));
            "stop"
        }
        Reply::Calls(calls) => {
            for (index, (id, name, args)) in calls.iter().enumerate() {
                let args = args.to_string();
                let half = args.len() / 2;
                out.push_str(&chunk(
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                    "function": {"name": name, "arguments": &args[..half]}}]}),
                    None,
                ));
                out.push_str(&chunk(
                    json!({"tool_calls": [{"index": index,
                    "function": {"arguments": &args[half..]}}]}),
                    None,
                ));
            }
            "tool_calls"
        }
        Reply::Fail(_) => unreachable!("answered above"),
    };
    out.push_str(&chunk(json!({}), Some(finish)));
    out.push_str(&format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "scripted", "choices": [], "usage": usage})
    ));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(out))
        .unwrap()
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A webhook receiver: answers `status` with `body` (after `delay_ms`) and records requests.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(status: u16, body: &'static str, delay_ms: u64) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let r = received.clone();
        let app = Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: HeaderMap,
                  bytes: Bytes| {
                let r = r.clone();
                async move {
                    r.lock().unwrap().push(Received {
                        method: method.to_string(),
                        uri: uri.to_string(),
                        headers,
                        body: bytes.to_vec(),
                    });
                    tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                    Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Body::from(body))
                        .unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// A receiver that answers only once `other` has received a request (so two calls that
    /// both reach it ran at the same time), or after `patience` with 504 when it never did.
    pub async fn answering_after(other: &Receiver, body: &'static str, patience_ms: u64) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let r = received.clone();
        let other = other.received.clone();
        let app = Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: HeaderMap,
                  bytes: Bytes| {
                let (r, other) = (r.clone(), other.clone());
                async move {
                    r.lock().unwrap().push(Received {
                        method: method.to_string(),
                        uri: uri.to_string(),
                        headers,
                        body: bytes.to_vec(),
                    });
                    let deadline =
                        std::time::Instant::now() + std::time::Duration::from_millis(patience_ms);
                    let mut status = 504;
                    while std::time::Instant::now() < deadline {
                        if !other.lock().unwrap().is_empty() {
                            status = 200;
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                    Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Body::from(body))
                        .unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, received }
    }
}

/// What a receiver does to check `X-Frontdesk-Signature`: recompute the HMAC-SHA256 of
/// `"<t>.<body>"` with the signing secret (written here from the documented scheme, not with
/// frontdesk's own code) and compare.
pub fn verify_signature(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::Mac;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_owned()),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let Ok(signature) = hex::decode(v1) else {
        return false;
    };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}
