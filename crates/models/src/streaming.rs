//! What every streaming provider shares: sending with a first-token deadline, mapping error
//! statuses, and turning an SSE body into model events with idle timeouts and end-of-stream
//! rules. A provider supplies only an [`EventParser`] for its own event shapes.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use frontdesk_core::model::{ModelError, ModelEvent, ModelStream};
use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

use crate::http::Lease;
use crate::sse::{SseDecoder, SseEvent};
use crate::{retry_after, Timeouts};

/// What reading should do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read on.
    Continue,
    /// The provider said the stream is over (`[DONE]`, `message_stop`).
    End,
}

/// Turns one provider's SSE events into model events.
pub trait EventParser: Send + 'static {
    fn parse(&mut self, event: SseEvent, out: &mut Vec<ModelEvent>) -> Result<Flow, ModelError>;
}

/// Sends the request, waiting at most the first-token timeout for the response head, and
/// maps a non-2xx answer to a `ModelError` (`error_message` extracts the provider's text).
pub async fn send(
    call: reqwest::RequestBuilder,
    timeouts: Timeouts,
    error_message: fn(&str) -> String,
) -> Result<reqwest::Response, ModelError> {
    let response = match tokio::time::timeout(timeouts.first_token, call.send()).await {
        Err(_) => return Err(ModelError::Timeout(timeouts.first_token)),
        Ok(Err(error)) => return Err(connect_error(&error)),
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(response);
    }
    let retry = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    Err(if status == 429 {
        ModelError::RateLimited { retry_after: retry }
    } else {
        ModelError::Upstream {
            status,
            message: error_message(&body),
        }
    })
}

/// A transport error with its causes (the OS error says why: refused, too many open files),
/// without the URL (short, and free of query strings).
pub fn connect_error(error: &reqwest::Error) -> ModelError {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    ModelError::Connect(text.trim().to_owned())
}

/// The body of a successful response as model events, holding the stream's `lease` until
/// the body ends. `started` is when the request was
/// sent: the first event must come before `started + first_token`.
pub fn events(
    response: reqwest::Response,
    lease: Lease,
    parser: impl EventParser,
    timeouts: Timeouts,
    started: Instant,
) -> ModelStream {
    let first_deadline = started + timeouts.first_token;
    let state = State {
        body: Box::pin(response.bytes_stream()),
        _lease: lease,
        decoder: SseDecoder::new(),
        parser: Box::new(parser),
        pending: VecDeque::new(),
        waiting_first: true,
        deadline: first_deadline,
        timer: Box::pin(tokio::time::sleep_until(first_deadline)),
        timeouts,
        finished: false,
        done: false,
        drain: false,
    };
    Box::pin(futures_util::stream::unfold(state, next))
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct State {
    body: Body,
    /// The stream's place on its connection, given back with the body.
    _lease: Lease,
    decoder: SseDecoder,
    parser: Box<dyn EventParser>,
    pending: VecDeque<Result<ModelEvent, ModelError>>,
    /// No event yet: the deadline is the first token's.
    waiting_first: bool,
    /// When reading gives up: the first token's deadline, then `idle` after the last chunk.
    deadline: Instant,
    /// Armed for an earlier deadline, or this one: each chunk only moves `deadline`, and the
    /// timer is set again when it fires early (not once per chunk).
    timer: Pin<Box<tokio::time::Sleep>>,
    timeouts: Timeouts,
    /// A finish arrived: the end of the body is the end of the answer.
    finished: bool,
    /// Nothing more will be read.
    done: bool,
    /// The provider said the answer is over: read the body's end before finishing, so the
    /// connection goes back to the pool (HTTP/1.1) or the stream ends cleanly instead of
    /// being reset (HTTP/2, where many resets look like abuse to a server).
    drain: bool,
}

/// How long to wait for the body's end after the provider's last event.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

async fn next(mut state: State) -> Option<(Result<ModelEvent, ModelError>, State)> {
    loop {
        if let Some(item) = state.pending.pop_front() {
            return Some((item, state));
        }
        if state.done {
            if std::mem::take(&mut state.drain) {
                let body = &mut state.body;
                let rest = async { while let Some(Ok(_)) = body.next().await {} };
                let _ = tokio::time::timeout(DRAIN, rest).await;
            }
            return None;
        }
        let limit = if state.waiting_first {
            state.timeouts.first_token
        } else {
            state.timeouts.idle
        };
        match read(&mut state).await {
            Err(TimedOut) => {
                state.done = true;
                return Some((Err(ModelError::Timeout(limit)), state));
            }
            Ok(None) => {
                state.done = true;
                if !state.finished {
                    let error = ModelError::Connect(
                        "the model stream ended before the answer was complete".into(),
                    );
                    return Some((Err(error), state));
                }
            }
            Ok(Some(Err(error))) => {
                state.done = true;
                return Some((Err(connect_error(&error)), state));
            }
            Ok(Some(Ok(bytes))) => {
                if !state.waiting_first {
                    state.deadline = Instant::now() + state.timeouts.idle;
                }
                decode(&mut state, &bytes);
            }
        }
    }
}

/// The reading gave up: nothing came before the deadline.
struct TimedOut;

/// The body's next chunk, or [`TimedOut`] once the deadline passed.
async fn read(state: &mut State) -> Result<Option<reqwest::Result<Bytes>>, TimedOut> {
    loop {
        tokio::select! {
            biased;
            item = state.body.next() => return Ok(item),
            () = &mut state.timer => {
                if Instant::now() >= state.deadline {
                    return Err(TimedOut);
                }
                let deadline = state.deadline;
                state.timer.as_mut().reset(deadline);
            }
        }
    }
}

/// Decodes bytes into pending events; stops at the provider's end or an error.
fn decode(state: &mut State, bytes: &[u8]) {
    let sse_events = match state.decoder.push(bytes) {
        Ok(events) => events,
        Err(_) => {
            state.pending.push_back(Err(ModelError::Protocol(
                "an SSE line longer than 4 MiB".into(),
            )));
            state.done = true;
            return;
        }
    };
    let mut out = Vec::new();
    for sse_event in sse_events {
        let flow = state.parser.parse(sse_event, &mut out);
        for event in out.drain(..) {
            state.finished |= matches!(event, ModelEvent::Finish(_));
            if state.waiting_first {
                state.waiting_first = false;
                state.deadline = Instant::now() + state.timeouts.idle;
                // The idle timeout may be shorter than what was left of the first token's.
                if state.deadline < state.timer.deadline() {
                    let deadline = state.deadline;
                    state.timer.as_mut().reset(deadline);
                }
            }
            state.pending.push_back(Ok(event));
        }
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::End) => {
                state.finished = true;
                state.done = true;
                state.drain = true;
                return;
            }
            Err(error) => {
                state.pending.push_back(Err(error));
                state.done = true;
                return;
            }
        }
    }
}
