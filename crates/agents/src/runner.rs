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
use frontdesk_core::conversation::{
    ContentPart, Message, MessageDraft, MessageRole, Parent, Usage,
};
use frontdesk_core::id::{ConversationId, MessageId, RunId, TenantId};
use frontdesk_core::model::{ModelEvent, ModelRequest, ProviderSecret};
use frontdesk_core::run::{FinishReason, RunEvent, RunRecord, RunStatus};
use frontdesk_core::time::Timestamp;
use frontdesk_core::{Error, Result, Service};
use frontdesk_models::context;
use frontdesk_models::fallback::{self, Candidate, RetryPolicy};
use frontdesk_models::registry::{Registry, TenantKeys};
use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::history;
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

/// What a turn starts from.
#[derive(Debug, Clone)]
pub enum TurnInput {
    /// A new message after the active one.
    Send { text: String },
    /// A new version of an earlier user message (a new branch from its parent).
    Edit { message: MessageId, text: String },
    /// Another answer to a user message (given itself, or one of its answers).
    Regenerate { message: MessageId },
}

/// The model request from a branch (and the pending message), fitted to `window`.
fn fitted(
    agent: &Agent,
    branch: &[Message],
    pending: Option<&str>,
    window: u32,
) -> Result<ModelRequest> {
    let (request, dropped) = history::model_request(&agent.spec, branch, pending, window)?;
    if dropped > 0 {
        tracing::debug!(agent = %agent.spec.slug, dropped, window, "history trimmed to the context window");
    }
    Ok(request)
}

fn check_text(text: String) -> Result<String> {
    if text.trim().is_empty() {
        return Err(Error::invalid("content", "must not be empty"));
    }
    Ok(text)
}

/// A run that has started: its id, the stored user message, and a follower from event 1.
#[derive(Debug)]
pub struct StartedRun {
    pub run_id: RunId,
    pub conversation_id: ConversationId,
    /// The message the run answers: the new one, or the one regenerated for.
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

    /// Starts a turn on a conversation: a new message, an edited one, or another answer.
    pub async fn start(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        input: TurnInput,
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
        let keys: TenantKeys = self
            .service
            .open_provider_keys(tenant)
            .await?
            .into_iter()
            .map(|(provider, key)| (provider, ProviderSecret(key)))
            .collect();
        let candidates = self
            .registry
            .candidates(&agent.spec.model, &agent.spec.fallback_models, &keys)
            .map_err(|e| Error::Conflict {
                code: "model_unavailable",
                message: e.to_string(),
            })?;
        // What the new message is, and where it goes; or, to regenerate, which one to answer.
        let (new_message, anchor) = match input {
            TurnInput::Send { text } => (Some((check_text(text)?, Parent::Active)), None),
            TurnInput::Edit { message, text } => {
                let original = self
                    .service
                    .get_message(tenant, &conversation.id, &message)
                    .await?;
                if original.role != MessageRole::User {
                    return Err(Error::invalid(
                        "message_id",
                        "only a user message can be edited",
                    ));
                }
                let parent = Parent::of(original.parent_id);
                (Some((check_text(text)?, parent)), None)
            }
            TurnInput::Regenerate { message } => {
                let chosen = self
                    .service
                    .get_message(tenant, &conversation.id, &message)
                    .await?;
                let question = match (chosen.role, &chosen.parent_id) {
                    (MessageRole::User, _) => chosen,
                    (MessageRole::Assistant, Some(parent)) => {
                        self.service
                            .get_message(tenant, &conversation.id, parent)
                            .await?
                    }
                    _ => {
                        return Err(Error::invalid(
                            "message_id",
                            "only an answer (or the message it answers) can be regenerated",
                        ))
                    }
                };
                if question.role != MessageRole::User {
                    return Err(Error::invalid(
                        "message_id",
                        "only an answer to a user message can be regenerated",
                    ));
                }
                (None, Some(question))
            }
        };
        let window = candidates
            .iter()
            .map(|c| {
                c.provider
                    .context_window(&c.model)
                    .unwrap_or_else(|| context::known_window(&c.model))
            })
            .min()
            .unwrap_or(context::DEFAULT_CONTEXT_WINDOW);
        self.service.check_quota(tenant).await?;
        // The request is built before the new message is stored, so that one that cannot
        // fit the model is refused with nothing written.
        let (request, user_message) = match (new_message, anchor) {
            (Some((text, parent)), _) => {
                let branch = if parent == Parent::Root {
                    Vec::new()
                } else {
                    self.service
                        .message_path(tenant, &conversation.id, parent.message(), MAX_HISTORY)
                        .await?
                };
                let request = fitted(&agent, &branch, Some(&text), window)?;
                let draft = MessageDraft {
                    parent,
                    ..MessageDraft::text(MessageRole::User, text)
                };
                let stored = self
                    .service
                    .append_message(tenant, &conversation.id, draft)
                    .await?;
                (request, stored)
            }
            (None, Some(question)) => {
                let branch = self
                    .service
                    .message_path(tenant, &conversation.id, Some(&question.id), MAX_HISTORY)
                    .await?;
                (fitted(&agent, &branch, None, window)?, question)
            }
            (None, None) => return Err(Error::invalid("content", "nothing to answer")),
        };

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
            conversation: conversation.id.clone(),
            agent,
            request,
            user_message: user_message.clone(),
            candidates,
            created_at: Timestamp::now(),
        };
        let runner = self.clone();
        self.tracker.spawn(async move {
            runner.run_turn(turn, publisher, cancel).await;
        });
        Ok(StartedRun {
            run_id,
            conversation_id: conversation.id,
            user_message,
            events,
        })
    }

    /// Starts a turn: `text` from the end user to the conversation's agent.
    pub async fn start_turn(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        text: String,
    ) -> Result<StartedRun> {
        self.start(tenant, conversation, TurnInput::Send { text })
            .await
    }

    /// Whether tenants may store their own key for this provider.
    pub fn accepts_tenant_key(&self, provider: &str) -> bool {
        self.registry.accepts_tenant_key(provider)
    }

    /// A run's events after `last_seq`: live from the hub, or stored once it is gone from it.
    pub async fn follow(&self, tenant: &TenantId, run: &RunId, last_seq: u64) -> Result<Follower> {
        if let Some(follower) = self.hub.follow(run, tenant, last_seq) {
            return Ok(follower);
        }
        let record = self.service.get_run(tenant, run).await?;
        Ok(Follower::finished(tenant, record.events, last_seq))
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
            tracing::warn!(run.id = %turn.run_id, model = %outcome.model, code = %code, error = %message, "the model call failed");
            publisher.publish(RunEvent::Error {
                code: code.clone(),
                message: message.clone(),
            });
        }
        let draft = MessageDraft {
            parent: Parent::Message(turn.user_message.id.clone()),
            role: MessageRole::Assistant,
            content: vec![ContentPart::Text { text: outcome.text }],
            model: Some(outcome.model.clone()),
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
        let usage = outcome.usage.unwrap_or_default();
        publisher.publish(RunEvent::RunCompleted { status, usage });
        if let Ok(mut live) = self.live.lock() {
            live.remove(&turn.run_id);
        }
        let record = RunRecord {
            id: turn.run_id.clone(),
            tenant_id: turn.tenant.clone(),
            conversation_id: turn.conversation.clone(),
            status,
            model: outcome.model,
            usage,
            events: publisher.events(),
            created_at: turn.created_at,
            completed_at: Timestamp::now(),
        };
        if let Err(error) = self.service.record_run(&record).await {
            tracing::error!(run.id = %turn.run_id, error = %error, "could not store the run's events");
        }
    }
}

/// What one turn needs, gathered before its task starts.
struct Turn {
    run_id: RunId,
    tenant: TenantId,
    conversation: ConversationId,
    agent: Agent,
    /// The model request, history fitted to the context window.
    request: ModelRequest,
    user_message: Message,
    candidates: Vec<Candidate>,
    created_at: Timestamp,
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
    let request = &turn.request;
    let attempt = tokio::select! {
        () = cancel.cancelled() => {
            outcome.cancelled = true;
            return outcome;
        }
        attempt = fallback::start(&turn.candidates, request, retry) => attempt,
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
