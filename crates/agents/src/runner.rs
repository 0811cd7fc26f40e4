//! The Runner: a turn runs in its own task, not in the request that asked for it. It
//! persists the user message first, runs the agent loop (`turn.rs`: model calls with retries
//! and fallbacks, tools, handoffs, guardrails, structured output), publishes every step as a
//! `RunEvent`, and persists the answer when the run ends — with the partial text and
//! `finish_reason` `error` or `cancelled` when it did not finish. A client that goes away
//! changes nothing; it can re-attach through the hub. A run that waits for an approval is
//! saved with its state and taken up again by `approvals.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use frontdesk_core::agent::{Agent, AgentRef};
use frontdesk_core::conversation::{
    ContentPart, Conversation, Message, MessageDraft, MessageRole, Parent,
};
use frontdesk_core::id::{ConversationId, MessageId, RunId, TenantId};
use frontdesk_core::model::{ModelMessage, ProviderSecret};
use frontdesk_core::policy::AfterHandoff;
use frontdesk_core::run::{RunEvent, RunStatus};
use frontdesk_core::service::TurnStart;
use frontdesk_core::time::Timestamp;
use frontdesk_core::tool::ToolContext;
use frontdesk_core::{Error, Result, Service};
use frontdesk_models::context;
use frontdesk_models::fallback::{Candidate, RetryPolicy};
use frontdesk_models::registry::{Registry, TenantKeys};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::guardrails;
use crate::history;
use crate::hub::{Follower, Publisher, RunHub};
use crate::recent::RecentPaths;
use crate::tools::{mcp::McpClients, ToolEnv, ToolSet};
use crate::turn::{End, Progress, Work};

/// How many earlier messages a turn sends to the model at most.
const MAX_HISTORY: u32 = 100;

/// A run going on in this process: whose, in which conversation, and how to stop it.
pub(crate) type LiveRun = (TenantId, ConversationId, CancellationToken);

/// Starts runs and keeps track of them until they end.
#[derive(Clone)]
pub struct Runner {
    service: Service,
    registry: Registry,
    hub: RunHub,
    retry: RetryPolicy,
    env: ToolEnv,
    tracker: TaskTracker,
    pub(crate) live: Arc<Mutex<HashMap<RunId, LiveRun>>>,
    /// The branch each recent conversation's last answer ends, for its next turn.
    pub(crate) recent: RecentPaths,
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
    /// Go on after a stored message that is not a question: an answer holding the results of
    /// tools the client ran (protocol adapters whose clients run their own tools).
    Continue { after: MessageId },
    /// A new message right after a given one (a protocol adapter continuing a chain that may
    /// not be the active branch, such as a `previous_response_id`).
    Reply { after: MessageId, text: String },
}

/// What a caller adds to a turn beyond the agent's config (protocol adapters).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct TurnOptions {
    /// Tools the client runs itself: offered to the model beside the agent's; a call of one
    /// ends the run with `finish_reason: tool_calls`, the call left for the client.
    pub client_tools: Vec<frontdesk_core::model::ToolSpec>,
    /// Instructions the client sends, after the agent's own.
    pub instructions: Option<String>,
}

/// Options of the agent runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunnerOptions {
    /// Let webhooks and MCP servers reach private and loopback addresses.
    pub allow_private_urls: bool,
}

/// The model request's history from a branch (and the pending message), fitted to `window`.
fn fitted(
    agent: &Agent,
    branch: &[Message],
    pending: Option<&str>,
    window: u32,
) -> Result<Vec<ModelMessage>> {
    let (request, dropped) = history::model_request(&agent.spec, branch, pending, window)?;
    if dropped > 0 {
        tracing::debug!(agent = %agent.spec.slug, dropped, window, "history trimmed to the context window");
    }
    Ok(request.messages)
}

/// Provider keys in the clear, as the model registry takes them.
fn open_keys(keys: HashMap<String, secrecy::SecretString>) -> TenantKeys {
    keys.into_iter()
        .map(|(provider, key)| (provider, ProviderSecret(key)))
        .collect()
}

fn check_text(text: String) -> Result<String> {
    if text.trim().is_empty() {
        return Err(Error::invalid("content", "must not be empty"));
    }
    Ok(text)
}

/// The smallest context window among the candidates.
pub(crate) fn window_of(candidates: &[Candidate]) -> u32 {
    candidates
        .iter()
        .map(|c| {
            c.provider
                .context_window(&c.model)
                .unwrap_or_else(|| context::known_window(&c.model))
        })
        .min()
        .unwrap_or(context::DEFAULT_CONTEXT_WINDOW)
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

/// Who a run is, beside what it works on.
#[derive(Clone)]
pub(crate) struct Meta {
    pub run_id: RunId,
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub user_message: Message,
    /// The slug of the agent the run started with.
    pub entry_agent: String,
    /// The id the answer gets (announced in `run.started`).
    pub answer_id: MessageId,
    pub created_at: Timestamp,
    /// The branch up to the user message's parent (its last [`MAX_HISTORY`] messages), when
    /// the answer's branch is to be kept for the next turn.
    pub branch: Option<Arc<[Message]>>,
}

impl Runner {
    pub fn new(service: Service, registry: Registry, hub: RunHub, retry: RetryPolicy) -> Self {
        Self::with_options(service, registry, hub, retry, RunnerOptions::default())
    }

    pub fn with_options(
        service: Service,
        registry: Registry,
        hub: RunHub,
        retry: RetryPolicy,
        options: RunnerOptions,
    ) -> Self {
        let env = ToolEnv {
            service: service.clone(),
            allow_private: options.allow_private_urls,
            mcp: McpClients::default(),
            webhooks: Arc::default(),
        };
        Self {
            service,
            registry,
            hub,
            retry,
            env,
            tracker: TaskTracker::new(),
            live: Arc::default(),
            recent: RecentPaths::default(),
        }
    }

    pub fn hub(&self) -> &RunHub {
        &self.hub
    }

    pub(crate) fn service(&self) -> &Service {
        &self.service
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn retry(&self) -> RetryPolicy {
        self.retry
    }

    pub(crate) fn tool_env(&self) -> &ToolEnv {
        &self.env
    }

    /// Forgets the cached tool lists of the MCP servers of `tenant` (they are listed again).
    pub fn refresh_mcp_tools(&self, tenant: &TenantId) {
        self.env.mcp.forget(tenant);
    }

    /// The tenant's provider keys, opened for one run.
    pub(crate) async fn keys(&self, tenant: &TenantId) -> Result<TenantKeys> {
        Ok(open_keys(self.service.open_provider_keys(tenant).await?))
    }

    pub(crate) fn candidates(&self, agent: &Agent, keys: &TenantKeys) -> Result<Vec<Candidate>> {
        self.registry
            .candidates(&agent.spec.model, &agent.spec.fallback_models, keys)
            .map_err(|e| Error::Conflict {
                code: "model_unavailable",
                message: e.to_string(),
            })
    }

    /// The agent in charge on a branch: the conversation's own, or the one a handoff on the
    /// branch left in charge (when the conversation's agent keeps handoffs in place).
    async fn agent_in_charge(&self, entry: Agent, branch: &[Message]) -> Result<Agent> {
        if entry.spec.after_handoff == AfterHandoff::Return || entry.spec.handoffs.is_empty() {
            return Ok(entry);
        }
        let last = branch.iter().rev().find_map(|m| {
            m.content.iter().rev().find_map(|part| match part {
                ContentPart::Handoff { to, .. } => Some(to.clone()),
                _ => None,
            })
        });
        let Some(slug) = last else {
            return Ok(entry);
        };
        if slug == entry.spec.slug {
            return Ok(entry);
        }
        match self
            .service
            .get_agent(&entry.tenant_id, &AgentRef::Slug(slug))
            .await
        {
            Ok(agent) => Ok(agent),
            Err(Error::NotFound { .. }) => Ok(entry),
            Err(other) => Err(other),
        }
    }

    /// The conversation's active branch: the one kept from this process's last answer when
    /// the conversation still ends there, else the one read with the turn.
    async fn active_branch(
        &self,
        tenant: &TenantId,
        conversation: &Conversation,
        read: Vec<Message>,
        known: Option<(MessageId, Arc<[Message]>)>,
    ) -> Result<Arc<[Message]>> {
        match (known, &conversation.active_message_id) {
            (Some((leaf, path)), Some(active)) if leaf == *active => Ok(path),
            // Left out for a leaf that is no longer active (PostgreSQL reads the conversation
            // and the branch at slightly different moments): read it now.
            (Some(_), Some(_)) if read.is_empty() => Ok(self
                .service
                .message_path(tenant, &conversation.id, None, MAX_HISTORY)
                .await?
                .into()),
            _ => Ok(read.into()),
        }
    }

    /// Keeps the branch an answer ends, for the next turn on its conversation.
    pub(crate) fn keep_branch(&self, meta: &Meta, answer: &Message) {
        let Some(branch) = &meta.branch else {
            return;
        };
        self.recent.put_answer(
            &meta.tenant,
            &meta.conversation,
            (branch, MAX_HISTORY as usize),
            &meta.user_message,
            answer,
        );
    }

    /// Starts a turn on a conversation: a new message, an edited one, or another answer.
    pub async fn start(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        input: TurnInput,
    ) -> Result<StartedRun> {
        self.start_with(tenant, conversation, input, TurnOptions::default())
            .await
    }

    /// [`Runner::start`] with what a protocol adapter adds (client tools, instructions).
    pub async fn start_with(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        input: TurnInput,
        options: TurnOptions,
    ) -> Result<StartedRun> {
        // What the turn starts from is read in one call; its parts are checked in the order
        // a turn's checks go (a missing conversation comes first). A new message goes after
        // the active one: its branch is read with the rest.
        let sends = matches!(input, TurnInput::Send { .. });
        let known = sends
            .then(|| self.recent.get(tenant, conversation))
            .flatten();
        let TurnStart {
            conversation,
            agent: entry,
            active_path: active_branch,
            paused_run: paused,
            keys,
            quota,
        } = self
            .service
            .turn_start(
                tenant,
                conversation,
                sends.then_some(MAX_HISTORY),
                known.as_ref().map(|(leaf, _)| leaf),
            )
            .await?;
        let keys = keys.map(open_keys);
        // One thing at a time: a run waiting for approvals is decided (or cancelled) first,
        // or its answer would land on a branch the conversation has left.
        if let Some(paused) = paused {
            return Err(Error::Conflict {
                code: "approval_pending",
                message: format!(
                    "run {paused} waits for a tool call to be approved: decide it (POST /api/v1/runs/{paused}/approvals/{{call_id}}) or cancel it (POST /api/v1/runs/{paused}/cancel) first"
                ),
            });
        }
        let entry = entry.map_err(|e| match e {
            Error::NotFound { .. } => Error::Conflict {
                code: "agent_unavailable",
                message: "the conversation's agent was deleted; start a new conversation"
                    .to_owned(),
            },
            other => other,
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
            TurnInput::Reply { after, text } => {
                // The message must be this conversation's.
                self.service
                    .get_message(tenant, &conversation.id, &after)
                    .await?;
                (Some((check_text(text)?, Parent::Message(after))), None)
            }
            TurnInput::Continue { after } => {
                let stored = self
                    .service
                    .get_message(tenant, &conversation.id, &after)
                    .await?;
                (None, Some(stored))
            }
        };
        let branch: Arc<[Message]> = match (&new_message, &anchor, active_branch) {
            (Some((_, Parent::Active)), _, Some(read)) => {
                self.active_branch(tenant, &conversation, read, known)
                    .await?
            }
            (Some((_, Parent::Root)), _, _) => Arc::new([]),
            (Some((_, parent)), _, _) => self
                .service
                .message_path(tenant, &conversation.id, parent.message(), MAX_HISTORY)
                .await?
                .into(),
            (None, Some(anchor), _) => {
                let mut path = self
                    .service
                    .message_path(tenant, &conversation.id, Some(&anchor.id), MAX_HISTORY)
                    .await?;
                // The anchor itself is the last message; who answers is decided by what came
                // before it (an answer being continued is on the path to its own handoffs).
                if anchor.role == MessageRole::User {
                    path.pop();
                }
                path.into()
            }
            (None, None, _) => return Err(Error::invalid("content", "nothing to answer")),
        };
        let agent = self.agent_in_charge(entry.clone(), &branch).await?;
        let keys = keys?;
        let candidates = self.candidates(&agent, &keys)?;
        let window = window_of(&candidates);
        quota?;
        // The branch the question hangs from, kept with the answer for the next turn (not for
        // an answer being continued: its branch holds the answer already).
        let keeps =
            new_message.is_some() || anchor.as_ref().is_some_and(|a| a.role == MessageRole::User);
        // The history is built before the new message is stored, so that one that cannot
        // fit the model is refused with nothing written.
        let (base, user_message) = match (new_message, anchor) {
            (Some((text, parent)), _) => {
                let text = if agent.spec.guardrails.input.redact_pii {
                    guardrails::redact_pii(&text)
                } else {
                    text
                };
                let base = fitted(&agent, &branch, Some(&text), window)?;
                let draft = MessageDraft {
                    parent,
                    ..MessageDraft::text(MessageRole::User, text)
                };
                let stored = self
                    .service
                    .append_message(tenant, &conversation.id, draft)
                    .await?;
                (base, stored)
            }
            (None, Some(anchor)) => {
                let mut path = branch.to_vec();
                if anchor.role == MessageRole::User {
                    path.push(anchor.clone());
                }
                (fitted(&agent, &path, None, window)?, anchor)
            }
            (None, None) => return Err(Error::invalid("content", "nothing to answer")),
        };
        let run_id = RunId::new();
        let publisher = self.hub.open(&run_id, tenant);
        let events = self
            .hub
            .follow(&run_id, tenant, 0)
            .ok_or_else(|| Error::internal(std::io::Error::other("run log vanished")))?;
        let cancel = self.track(&run_id, tenant, &conversation.id);
        let meta = Meta {
            run_id: run_id.clone(),
            tenant: tenant.clone(),
            conversation: conversation.id.clone(),
            user_message: user_message.clone(),
            entry_agent: entry.spec.slug.clone(),
            answer_id: MessageId::new(),
            created_at: Timestamp::now(),
            branch: keeps.then_some(branch),
        };
        let work = Work {
            context: ToolContext {
                tenant: tenant.clone(),
                run: run_id.clone(),
                conversation: conversation.id.clone(),
                agent: agent.spec.slug.clone(),
                end_user: conversation.end_user_id.clone(),
            },
            agent,
            candidates,
            // Gathered in the run's task: listing MCP servers' tools may take a while.
            tools: ToolSet::default(),
            base,
            progress: Progress::default(),
            keys,
            options,
        };
        let runner = self.clone();
        self.tracker.spawn(async move {
            runner.run_turn(meta, work, publisher, cancel).await;
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
            // A pause seen here may have been decided on another instance: the store knows.
            if !self.hub.paused(run) {
                return Ok(follower);
            }
            match self.service.get_run(tenant, run).await {
                Ok(record) if record.status != RunStatus::AwaitingApproval => {
                    return Ok(Follower::finished(tenant, record.events, last_seq))
                }
                _ => return Ok(follower),
            }
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
            Some((owner, _, token)) if owner == tenant => {
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

    /// Registers a live run and returns its cancel token.
    pub(crate) fn track(
        &self,
        run: &RunId,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> CancellationToken {
        let cancel = CancellationToken::new();
        if let Ok(mut live) = self.live.lock() {
            live.insert(
                run.clone(),
                (tenant.clone(), conversation.clone(), cancel.clone()),
            );
        }
        cancel
    }

    pub(crate) fn spawn_tracked(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.tracker.spawn(task);
    }

    /// A new run: input guardrails, then the loop, then its end.
    async fn run_turn(
        &self,
        meta: Meta,
        mut work: Work,
        publisher: Publisher,
        cancel: CancellationToken,
    ) {
        publisher.publish(RunEvent::RunStarted {
            run_id: meta.run_id.clone(),
            conversation_id: meta.conversation.clone(),
            message_id: meta.answer_id.clone(),
            agent: work.agent.spec.slug.clone(),
            model: work
                .candidates
                .first()
                .map(|c| c.label.clone())
                .unwrap_or_default(),
        });
        let question = meta.user_message.text();
        // The rarely long parts are boxed: a run's task then holds only what streaming needs
        // (a held stream's memory; see the stream bench).
        let end = match Box::pin(ToolSet::build(&self.env, &work.agent)).await {
            Err(error) => End::Failed {
                code: "tools_unavailable".into(),
                message: error.to_string(),
                partial: String::new(),
            },
            Ok(tools) => {
                for warning in &tools.warnings {
                    tracing::warn!(run.id = %meta.run_id, agent = %work.agent.spec.slug, "{warning}");
                }
                work.tools = tools;
                work.tools.add_client_tools(&work.options.client_tools);
                // Only new words from the end user go through the input guardrails.
                let trip = if meta.user_message.role == MessageRole::User {
                    Box::pin(self.check_input(&mut work, &question)).await
                } else {
                    None
                };
                match trip {
                    Some(trip) => End::Tripped(trip),
                    None => self.drive(&mut work, &publisher, &cancel).await,
                }
            }
        };
        Box::pin(self.conclude(meta, work, end, &publisher)).await;
    }

    /// The conversation a run of `tenant` belongs to (live here, or stored); 404 otherwise.
    pub async fn run_conversation(&self, tenant: &TenantId, run: &RunId) -> Result<ConversationId> {
        let live = self.live.lock().ok().and_then(|live| {
            live.get(run)
                .filter(|(owner, _, _)| owner == tenant)
                .map(|(_, c, _)| c.clone())
        });
        match live {
            Some(conversation) => Ok(conversation),
            None => Ok(self.service.get_run(tenant, run).await?.conversation_id),
        }
    }

    /// Whether a run of `tenant` is running in this process.
    pub fn is_live(&self, tenant: &TenantId, run: &RunId) -> bool {
        self.live
            .lock()
            .map(|live| live.get(run).is_some_and(|(owner, _, _)| owner == tenant))
            .unwrap_or(false)
    }

    pub(crate) fn untrack(&self, run: &RunId) {
        if let Ok(mut live) = self.live.lock() {
            live.remove(run);
        }
    }
}
