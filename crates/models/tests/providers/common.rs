//! A scripted upstream: a real HTTP server on a random port that answers each request with
//! the next step of a script (a status and body, or SSE chunks with pauses and a clean end or
//! a broken connection).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, Version};
use axum::response::Response;
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use futures_util::StreamExt;

/// What the upstream does with the next request.
#[derive(Clone)]
pub enum Script {
    /// A status and a JSON body, with headers.
    Status(u16, Vec<(&'static str, &'static str)>, &'static str),
    /// SSE chunks, each after a pause; then the body ends, or the connection breaks.
    Stream {
        chunks: Vec<(u64, String)>,
        break_at_end: bool,
    },
}

pub struct Upstream {
    pub base_url: String,
    pub requests: Arc<Mutex<Vec<(HeaderMap, serde_json::Value)>>>,
    /// The HTTP version of each request.
    pub versions: Arc<Mutex<Vec<Version>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

pub async fn upstream(script: Script) -> Upstream {
    upstream_sequence(vec![script]).await
}

/// An upstream that answers the n-th request with the n-th script (the last one repeats).
pub async fn upstream_sequence(scripts: Vec<Script>) -> Upstream {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let versions = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    let seen_versions = versions.clone();
    let app = Router::new().fallback(post(
        move |version: Version, headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            let scripts = scripts.clone();
            seen_versions.lock().unwrap().push(version);
            async move {
                let script = {
                    let mut seen = seen.lock().unwrap();
                    seen.push((headers, serde_json::from_slice(&body).unwrap()));
                    scripts[(seen.len() - 1).min(scripts.len() - 1)].clone()
                };
                match script {
                    Script::Status(status, headers, body) => {
                        let mut response = Response::builder()
                            .status(status)
                            .header("content-type", "application/json");
                        for (name, value) in headers {
                            response = response.header(name, value);
                        }
                        response.body(Body::from(body)).unwrap()
                    }
                    Script::Stream {
                        chunks,
                        break_at_end,
                    } => {
                        let stream = futures_util::stream::iter(
                            chunks.into_iter().map(Some).chain(std::iter::once(None)),
                        )
                        .then(move |item| async move {
                            match item {
                                Some((pause_ms, chunk)) => {
                                    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                                    Ok::<_, std::io::Error>(Bytes::from(chunk))
                                }
                                None if break_at_end => Err(std::io::Error::other("upstream died")),
                                None => Ok(Bytes::new()),
                            }
                        });
                        Response::builder()
                            .status(StatusCode::OK)
                            .header("content-type", "text/event-stream")
                            .body(Body::from_stream(stream))
                            .unwrap()
                    }
                }
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let accepted = connections.clone();
    // HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same port.
    let listener = listener.tap_io(move |_| {
        accepted.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Upstream {
        base_url,
        requests,
        versions,
        connections,
    }
}

/// Runs a provider's stream to its end: the events, and the error that ended it, if any.
pub async fn collect(
    provider: &dyn frontdesk_core::model::ModelProvider,
    request: frontdesk_core::model::ModelRequest,
) -> (
    Vec<frontdesk_core::model::ModelEvent>,
    Option<frontdesk_core::model::ModelError>,
) {
    let mut stream = provider.stream(request).await.unwrap();
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(error) => return (events, Some(error)),
        }
    }
    (events, None)
}
