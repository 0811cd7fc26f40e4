//! One way to stream a run: a protocol's [`Encoder`] (a state machine over `RunEvent`) says
//! which frames each event becomes; [`stream`] does the rest for every protocol — follows the
//! run, writes each event's frames as soon as they exist (unbuffered), keeps an idle stream
//! alive with SSE comments (which every SSE parser skips), and ends the body after the
//! encoder's last frames.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use frontdesk_agents::Follower;
use frontdesk_core::run::SequencedEvent;
use serde_json::Value;

/// How long a stream may stay silent before a keep-alive comment (proxies close idle ones).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The frames of one write, in SSE framing.
#[derive(Debug, Default)]
pub(crate) struct Frames(String);

impl Frames {
    /// `data: <json>`.
    pub fn data(&mut self, data: &Value) {
        self.0.push_str("data: ");
        self.0.push_str(&data.to_string());
        self.0.push_str("\n\n");
    }

    /// `event: <name>` and `data: <json>`.
    pub fn named(&mut self, name: &str, data: &Value) {
        self.0.push_str("event: ");
        self.0.push_str(name);
        self.0.push('\n');
        self.data(data);
    }

    /// A frame written as it is (`data: [DONE]`, a frame with an `id:`).
    pub fn raw(&mut self, frame: &str) {
        self.0.push_str(frame);
    }

    fn take(&mut self) -> String {
        std::mem::take(&mut self.0)
    }
}

/// A protocol's mapping of a run's events to its frames.
pub(crate) trait Encoder: Send + 'static {
    /// What goes out before the first event.
    fn open(&mut self, _out: &mut Frames) {}

    /// The frames of one event (none is fine: the event is not the protocol's).
    fn event(&mut self, event: SequencedEvent, out: &mut Frames);

    /// What goes out after the last event (the run ended, or paused for an approval).
    fn close(&mut self, _out: &mut Frames) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Where a stream stands.
enum Phase {
    Open,
    Events,
    Closed,
}

/// A run's events as a streamed response in the encoder's framing.
pub(crate) fn stream<E: Encoder>(follower: Follower, encoder: E) -> Response {
    let start = (follower, encoder, Phase::Open);
    let body =
        futures_util::stream::unfold(start, |(mut follower, mut encoder, phase)| async move {
            let mut out = Frames::default();
            let phase = match phase {
                Phase::Closed => return None,
                Phase::Open => {
                    encoder.open(&mut out);
                    Phase::Events
                }
                Phase::Events => Phase::Events,
            };
            loop {
                if !out.0.is_empty() {
                    return Some((Ok::<_, Infallible>(out.take()), (follower, encoder, phase)));
                }
                match tokio::time::timeout(KEEP_ALIVE, follower.next()).await {
                    Ok(Some(event)) => encoder.event(event, &mut out),
                    Ok(None) => {
                        encoder.close(&mut out).await;
                        let last = out.take();
                        if last.is_empty() {
                            return None;
                        }
                        return Some((Ok(last), (follower, encoder, Phase::Closed)));
                    }
                    Err(_) => out.raw(": keep-alive\n\n"),
                }
            }
        });
    event_stream(body)
}

/// A body of pre-framed server-sent events, unbuffered.
pub(crate) fn event_stream<S>(body: S) -> Response
where
    S: futures_util::Stream<Item = Result<String, Infallible>> + Send + 'static,
{
    let mut response = Response::new(axum::body::Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
