//! The Runner: a turn runs in its own task, not in the request that asked for it. It
//! persists the user message first, calls the agent's model (with retries and fallbacks),
//! publishes every step as a `RunEvent`, and persists the answer when the run ends — with
//! the partial text and `finish_reason` `error` or `cancelled` when it did not finish. A
//! client that goes away changes nothing; it can re-attach through the hub.
//!
//! This is the chat-turn core. Tools, handoffs, approvals and guardrails (the agent-runtime
//! work) add steps to `run_turn`; the events they need already exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use frontdesk_core::agent::{Agent, AgentRef};
use frontdesk_core::conversation::{ContentPart, Message, MessageDraft, MessageRole, Usage};
use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::model::{ModelEvent, ModelMessage, ModelRequest};
use frontdesk_core::run::{FinishReason, RunEvent, RunStatus};
use frontdesk_core::{Error, Result, Service};
use frontdesk_models::fallback::{self, Candidate, RetryPolicy};
use frontdesk_models::registry::Registry;
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::hub::{Follower, Publisher, RunHub};

/// How many earlier messages a turn sends to the model at most.
const MAX_HISTORY: u32 = 100;

/// Starts runs and keeps track of them until they end.
#[derive(Clone)]
pub struct Runner {
    service: Service,
    registry: Registry,
    hub: RunHub,
    retry: RetryPolicy,
    tracker: TaskTracker,
    live: Arc<Mutex<HashMap<RunId, (TenantId, CancellationToken)>>>,
}

/// A run that has started: its id, the stored user message, and a follower from event 1.
#[derive(Debug)]
pub struct StartedRun {
    pub run_id: RunId,
    pub user_message: Message,
    pub events: Follower,
}

impl Runner {
    pub fn new(service: Service, registry: Registry, hub: RunHub, retry: RetryPolicy) -> Self {
        Self {
            service,
            registry,
            hub,
            retry,
            tracker: TaskTracker::new(),
            live: Arc::default(),
        }
    }

    pub fn hub(&self) -> &RunHub {
        &self.hub
    }

    /// Starts a turn: `text` from the end user to the conversation's agent.
    pub async fn start_turn(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        text: String,
    ) -> Result<StartedRun> {
        let conversation = self.service.get_conversation(tenant, conversation).await?;
        let agent = self
            .service
            .get_agent(tenant, &AgentRef::Id(conversation.agent_id.clone()))
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => Error::Conflict {
                    code: "agent_unavailable",
                    message: "the conversation's agent was deleted; start a new conversation"
                        .to_owned(),
                },
                other => other,
            })?;
        let candidates = self
            .registry
            .candidates(&agent.spec.model, &agent.spec.fallback_models)
            .map_err(|e| Error::Conflict {
                code: "model_unavailable",
                message: e.to_string(),
            })?;
        if text.trim().is_empty() {
            return Err(Error::invalid("content", "must not be empty"));
        }
        self.service.check_quota(tenant).await?;
        let (history, _) = self
            .service
            .list_messages(tenant, &conversation.id, true, Some(MAX_HISTORY), None)
            .await?;
        let user_message = self
            .service
            .append_message(
                tenant,
                &conversation.id,
                MessageDraft::text(MessageRole::User, text),
            )
            .await?;

        let run_id = RunId::new();
        let publisher = self.hub.open(&run_id, tenant);
        let events = self
            .hub
            .follow(&run_id, tenant, 0)
            .ok_or_else(|| Error::internal(std::io::Error::other("run log vanished")))?;
        let cancel = CancellationToken::new();
        if let Ok(mut live) = self.live.lock() {
            live.insert(run_id.clone(), (tenant.clone(), cancel.clone()));
        }
        let turn = Turn {
            run_id: run_id.clone(),
            tenant: tenant.clone(),
            conversation: conversation.id,
            agent,
            history: history.into_iter().rev().collect(),
            user_message: user_message.clone(),
            candidates,
        };
        let runner = self.clone();
        self.tracker.spawn(async move {
            runner.run_turn(turn, publisher, cancel).await;
        });
        Ok(StartedRun {
            run_id,
            user_message,
            events,
        })
    }

    /// Stops a live run of `tenant`; its partial answer is kept. Unknown runs are 404.
    pub fn cancel(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        let live = self
            .live
            .lock()
            .map_err(|_| Error::internal(std::io::Error::other("run table poisoned")))?;
        match live.get(run) {
            Some((owner, token)) if owner == tenant => {
                token.cancel();
                Ok(())
            }
            _ => Err(Error::NotFound { resource: "run" }),
        }
    }

    /// Stops accepting runs and waits for the running ones to finish.
    pub async fn shutdown(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    async fn run_turn(&self, turn: Turn, publisher: Publisher, cancel: CancellationToken) {
        let started = Instant::now();
        let primary = turn
            .candidates
            .first()
            .map(|c| c.label.clone())
            .unwrap_or_default();
        publisher.publish(RunEvent::RunStarted {
            run_id: turn.run_id.clone(),
            conversation_id: turn.conversation.clone(),
            agent: turn.agent.spec.slug.clone(),
            model: primary,
        });
        let outcome = stream_answer(&turn, &publisher, &cancel, self.retry).await;
        let finish = if outcome.cancelled {
            FinishReason::Cancelled
        } else if outcome.error.is_some() {
            FinishReason::Error
        } else {
            outcome.finish.unwrap_or(FinishReason::Stop)
        };
        if let Some((code, message)) = &outcome.error {
            publisher.publish(RunEvent::Error {
                code: code.clone(),
                message: message.clone(),
            });
        }
        let draft = MessageDraft {
            parent_id: Some(turn.user_message.id.clone()),
            role: MessageRole::Assistant,
            content: vec![ContentPart::Text { text: outcome.text }],
            model: Some(outcome.model),
            finish_reason: Some(finish.as_str().to_owned()),
            usage: outcome.usage,
            latency_ms: Some(started.elapsed().as_millis() as i64),
        };
        let mut status = match finish {
            FinishReason::Cancelled => RunStatus::Cancelled,
            FinishReason::Error => RunStatus::Failed,
            _ => RunStatus::Completed,
        };
        match self
            .service
            .append_message(&turn.tenant, &turn.conversation, draft)
            .await
        {
            Ok(message) => {
                publisher.publish(RunEvent::MessageCompleted {
                    message: Box::new(message),
                });
            }
            Err(error) => {
                tracing::error!(run.id = %turn.run_id, error = %error, "could not store the answer");
                publisher.publish(RunEvent::Error {
                    code: "storage_failed".into(),
                    message: "the answer could not be stored".into(),
                });
                status = RunStatus::Failed;
            }
        }
        publisher.publish(RunEvent::RunCompleted {
            status,
            usage: outcome.usage.unwrap_or_default(),
        });
        if let Ok(mut live) = self.live.lock() {
            live.remove(&turn.run_id);
        }
    }
}

/// What one turn needs, gathered before its task starts.
struct Turn {
    run_id: RunId,
    tenant: TenantId,
    conversation: ConversationId,
    agent: Agent,
    /// Earlier messages, oldest first (the new user message excluded).
    history: Vec<Message>,
    user_message: Message,
    candidates: Vec<Candidate>,
}

/// How the model part of a turn went.
#[derive(Default)]
struct Outcome {
    text: String,
    model: String,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    /// `(code, message)` of what went wrong.
    error: Option<(String, String)>,
    cancelled: bool,
}

/// The model request of a turn: the agent's instructions, the history, the new message.
fn model_request(turn: &Turn) -> ModelRequest {
    let mut messages = Vec::with_capacity(turn.history.len() + 2);
    if !turn.agent.spec.instructions.trim().is_empty() {
        messages.push(ModelMessage::System {
            text: turn.agent.spec.instructions.clone(),
        });
    }
    for message in turn
        .history
        .iter()
        .chain(std::iter::once(&turn.user_message))
    {
        let text = message.text();
        match message.role {
            MessageRole::User => messages.push(ModelMessage::User { text }),
            MessageRole::Assistant if !text.is_empty() => messages.push(ModelMessage::Assistant {
                text,
                tool_calls: Vec::new(),
            }),
            MessageRole::Assistant | MessageRole::System | MessageRole::Tool => {}
        }
    }
    ModelRequest {
        model: String::new(),
        messages,
        tools: Vec::new(),
        output_schema: turn.agent.spec.output_schema.clone(),
        temperature: turn.agent.spec.temperature,
        top_p: turn.agent.spec.top_p,
        max_tokens: turn.agent.spec.max_tokens,
    }
}

async fn stream_answer(
    turn: &Turn,
    publisher: &Publisher,
    cancel: &CancellationToken,
    retry: RetryPolicy,
) -> Outcome {
    let mut outcome = Outcome {
        model: turn
            .candidates
            .first()
            .map(|c| c.label.clone())
            .unwrap_or_default(),
        ..Outcome::default()
    };
    let request = model_request(turn);
    let attempt = tokio::select! {
        () = cancel.cancelled() => {
            outcome.cancelled = true;
            return outcome;
        }
        attempt = fallback::start(&turn.candidates, &request, retry) => attempt,
    };
    let started = match attempt {
        Ok(started) => started,
        Err((error, _)) => {
            outcome.error = Some((error.code().to_owned(), error.to_string()));
            return outcome;
        }
    };
    if let Some(candidate) = turn.candidates.get(started.candidate) {
        outcome.model = candidate.label.clone();
    }
    let mut stream = started.stream;
    loop {
        let item = tokio::select! {
            () = cancel.cancelled() => {
                outcome.cancelled = true;
                return outcome;
            }
            item = stream.next() => item,
        };
        match item {
            Some(Ok(ModelEvent::TextDelta(text))) => {
                outcome.text.push_str(&text);
                publisher.publish(RunEvent::MessageDelta { text });
            }
            Some(Ok(ModelEvent::Usage(usage))) => outcome.usage = Some(usage),
            Some(Ok(ModelEvent::Finish(reason))) => outcome.finish = Some(reason),
            // No tools are offered yet, so a tool call has nothing to run.
            Some(Ok(ModelEvent::ToolCallDelta { .. })) => {}
            Some(Err(error)) => {
                outcome.error = Some((error.code().to_owned(), error.to_string()));
                return outcome;
            }
            None => return outcome,
        }
    }
}
