//! One model call of a run: start it with retries and fallbacks, stream its text (published
//! as it comes unless the answer is held back for checks), gather tool-call pieces by index,
//! and report what came out.

use frontdesk_core::conversation::Usage;
use frontdesk_core::model::{ModelEvent, ModelRequest, ToolCall};
use frontdesk_core::run::{FinishReason, RunEvent, RunFailure};
use frontdesk_models::fallback::{self, Candidate, FailedAttempt, RetryPolicy};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::ports::Publisher;

/// One model call's outcome.
#[derive(Default)]
pub(crate) struct StepResult {
    pub text: String,
    pub calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    pub finish: Option<FinishReason>,
    pub model: String,
    pub error: Option<(RunFailure, String)>,
    pub cancelled: bool,
    /// Attempts that failed before this call started (retries, fallbacks).
    pub failed_attempts: Vec<FailedAttempt>,
}

/// One model call, streamed; text is published as it comes unless `buffer`.
pub(crate) async fn model_step(
    retry: RetryPolicy,
    candidates: &[Candidate],
    request: &ModelRequest,
    publisher: &Publisher,
    buffer: bool,
    cancel: &CancellationToken,
    shown: &mut String,
) -> StepResult {
    let mut result = StepResult {
        model: candidates
            .first()
            .map(|c| c.label.clone())
            .unwrap_or_default(),
        ..StepResult::default()
    };
    let attempt = tokio::select! {
        () = cancel.cancelled() => {
            result.cancelled = true;
            return result;
        }
        attempt = Box::pin(fallback::start(candidates, request, retry)) => attempt,
    };
    let started = match attempt {
        Ok(started) => started,
        Err((error, failed)) => {
            result.error = Some((RunFailure::from_model(&error), error.to_string()));
            result.failed_attempts = failed;
            return result;
        }
    };
    result.failed_attempts = started.failures;
    if let Some(candidate) = candidates.get(started.candidate) {
        result.model = candidate.label.clone();
    }
    // Tool calls by stream index: id, name, arguments so far.
    let mut calls: Vec<(u32, String, String, String)> = Vec::new();
    let mut stream = started.stream;
    // One wait for the whole stream, not a new one (and its registration) per event.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let item = tokio::select! {
            () = &mut cancelled => {
                result.cancelled = true;
                break;
            }
            item = stream.next() => item,
        };
        match item {
            Some(Ok(ModelEvent::TextDelta(text))) => {
                result.text.push_str(&text);
                if !buffer {
                    shown.push_str(&text);
                    publisher.publish(RunEvent::MessageDelta { text });
                }
            }
            Some(Ok(ModelEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            })) => {
                let at = match calls.iter().position(|c| c.0 == index) {
                    Some(at) => at,
                    None => {
                        calls.push((index, String::new(), String::new(), String::new()));
                        calls.len() - 1
                    }
                };
                if let Some(entry) = calls.get_mut(at) {
                    if let Some(id) = id {
                        entry.1 = id;
                    }
                    // The name comes whole with the first piece (some servers repeat it).
                    if let Some(name) = name.filter(|_| entry.2.is_empty()) {
                        entry.2 = name;
                    }
                    entry.3.push_str(&arguments);
                }
            }
            Some(Ok(ModelEvent::Usage(usage))) => result.usage = Some(usage),
            Some(Ok(ModelEvent::Finish(reason))) => result.finish = Some(reason),
            Some(Err(error)) => {
                result.error = Some((RunFailure::from_model(&error), error.to_string()));
                break;
            }
            None => break,
        }
    }
    if !result.cancelled && result.error.is_none() {
        result.calls = calls
            .into_iter()
            .map(|(index, id, name, arguments)| ToolCall {
                id: if id.is_empty() {
                    format!("call_{}_{index}", frontdesk_core::id::RunId::new().as_str())
                } else {
                    id
                },
                name,
                arguments,
            })
            .collect();
    }
    result
}
