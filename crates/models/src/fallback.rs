//! Retries and fallbacks: try a model, retry it on errors that may pass (connect, timeout,
//! 429, 5xx) with exponential backoff and jitter (or the provider's `Retry-After`), then the
//! next model in the agent's list, as long as nothing has reached the client yet.
//!
//! "Before anything reached the client" means before the first event: `stream()` errors,
//! and an error that the stream yields before any event (a first-token timeout). After the
//! first event an error is the run's to report, with the partial answer kept.

use std::sync::Arc;
use std::time::Duration;

use frontdesk_core::model::{ModelError, ModelProvider, ModelRequest, ModelStream, ProviderSecret};
use futures_util::StreamExt;

/// One model to try: its provider and its name there.
#[derive(Clone)]
pub struct Candidate {
    pub provider: Arc<dyn ModelProvider>,
    /// The full `provider/model` name, for logs and the run's record.
    pub label: String,
    /// The model's name at the provider.
    pub model: String,
    /// The tenant's own key for this provider, when it brought one.
    pub api_key: Option<ProviderSecret>,
}

/// How hard to try one model before moving on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (from 1): the provider's `Retry-After` when it
    /// gave one (capped), otherwise exponential backoff with full jitter.
    pub fn backoff(&self, attempt: u32, error: &ModelError) -> Duration {
        if let ModelError::RateLimited {
            retry_after: Some(wait),
        } = error
        {
            return (*wait).min(self.max_backoff);
        }
        let exponential = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let ceiling = exponential.min(self.max_backoff);
        let mut byte = [0u8; 2];
        frontdesk_core::id::random_bytes(&mut byte);
        let fraction = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
        ceiling.mul_f64(0.5 + fraction / 2.0)
    }
}

/// An attempt that failed before anything reached the client: which model, why, when and
/// for how long (the run's trace shows each one).
#[derive(Debug, Clone)]
pub struct FailedAttempt {
    /// The `provider/model` tried.
    pub label: String,
    pub error: ModelError,
    pub started_at: frontdesk_core::time::Timestamp,
    pub duration: Duration,
}

/// What a successful start gives: the stream, and which candidate produced it.
pub struct Started {
    pub stream: ModelStream,
    pub candidate: usize,
    /// The attempts that failed before it, in order (for the run's record).
    pub failures: Vec<FailedAttempt>,
}

/// Starts the first candidate that answers, retrying and falling back as described above.
/// Fails with the last error when none does.
pub async fn start(
    candidates: &[Candidate],
    request: &ModelRequest,
    policy: RetryPolicy,
) -> Result<Started, (ModelError, Vec<FailedAttempt>)> {
    let mut failures = Vec::new();
    for (idx, candidate) in candidates.iter().enumerate() {
        let mut attempt = 0;
        loop {
            let started_at = frontdesk_core::time::Timestamp::now();
            let clock = std::time::Instant::now();
            let request = ModelRequest {
                model: candidate.model.clone(),
                api_key: candidate.api_key.clone(),
                ..request.clone()
            };
            let error = match candidate.provider.stream(request).await {
                Ok(stream) => match first_event(stream).await {
                    Ok(stream) => {
                        return Ok(Started {
                            stream,
                            candidate: idx,
                            failures,
                        })
                    }
                    Err(error) => error,
                },
                Err(error) => error,
            };
            let retryable = error.is_retryable();
            failures.push(FailedAttempt {
                label: candidate.label.clone(),
                error: error.clone(),
                started_at,
                duration: clock.elapsed(),
            });
            if !retryable {
                // A request this model cannot serve (bad key, bad request): the next model might.
                break;
            }
            attempt += 1;
            if attempt > policy.max_retries {
                break;
            }
            tokio::time::sleep(policy.backoff(attempt, &error)).await;
        }
    }
    let last = failures
        .last()
        .map(|attempt| attempt.error.clone())
        .unwrap_or_else(|| ModelError::Config("the agent names no model".into()));
    Err((last, failures))
}

/// Waits for the stream's first item: an error before any event counts as a failed start;
/// otherwise the item is put back in front of the rest.
async fn first_event(mut stream: ModelStream) -> Result<ModelStream, ModelError> {
    match stream.next().await {
        Some(Err(error)) => Err(error),
        Some(Ok(event)) => Ok(Box::pin(
            futures_util::stream::once(async move { Ok(event) }).chain(stream),
        )),
        None => Err(ModelError::Protocol("the model answered nothing".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        let policy = RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        let connect = ModelError::Connect("x".into());
        for (attempt, low, high) in [(1, 50, 100), (2, 100, 200), (3, 200, 400), (6, 500, 1000)] {
            let wait = policy.backoff(attempt, &connect).as_millis() as u64;
            assert!((low..=high).contains(&wait), "attempt {attempt}: {wait} ms");
        }
        let limited = ModelError::RateLimited {
            retry_after: Some(Duration::from_millis(300)),
        };
        assert_eq!(policy.backoff(1, &limited), Duration::from_millis(300));
        let long = ModelError::RateLimited {
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(policy.backoff(1, &long), Duration::from_secs(1));
    }
}
