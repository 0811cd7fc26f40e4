//! The Runner: the run engine's one way in. [`Runner::start`] takes a [`TurnRequest`] from
//! any channel, prepares it (`start.rs`), and runs it in its own tracked task, not in the
//! request that asked for it: the loop (`turn_loop.rs`) publishes every step as a `RunEvent`
//! to the run log, and the end is stored (`conclude.rs`) — with the partial text and
//! `finish_reason` `error` or `cancelled` when it did not finish. A client that goes away
//! changes nothing; it can re-attach through the log. A run that waits for approvals is saved
//! with its state; deciding its calls (`approvals.rs`) starts it again through the same entry.
//!
//! The Runner owns no engine logic itself: it wires the dependencies (`Deps`) and the ports
//! ([`RunLog`], [`RunControl`]) to the parts, and tracks the tasks.

use std::sync::Arc;
use std::time::Duration;

use frontdesk_core::conversation::MessageRole;
use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::run::{DecidedBy, RunEvent, RunFailure, RunStatus};
use frontdesk_core::{Error, Result, Service};
use frontdesk_models::fallback::RetryPolicy;
use frontdesk_models::registry::Registry;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::approvals::{self, ApprovalDecision, Decided, Settled};
use crate::conclude::Ending;
use crate::deps::Deps;
use crate::guardrails;
use crate::hub::RunHub;
use crate::live::LocalRuns;
use crate::outcome::Outcome;
use crate::ports::{Follower, Publisher, RunControl, RunLog};
use crate::recent::RecentPaths;
use crate::request::{Input, Target, TurnRequest};
use crate::start::{self, Prepared, Stage};
use crate::tools::{mcp::McpClients, ToolEnv};
use crate::turn_loop::{offered_tools, TurnLoop};
use crate::work::End;

/// Starts runs and keeps track of them until they end.
#[derive(Clone)]
pub struct Runner {
    deps: Arc<Deps>,
    log: Arc<dyn RunLog>,
    control: Arc<dyn RunControl>,
    tracker: TaskTracker,
    /// The branch each recent conversation's last answer ends, for its next turn.
    recent: RecentPaths,
}

/// Options of the agent runtime.
#[derive(Clone, Default)]
pub struct RunnerOptions {
    /// Let webhooks and MCP servers reach private and loopback addresses.
    pub allow_private_urls: bool,
    /// The tenants' knowledge (agents with `knowledge` search it); none on a server without
    /// an embedder.
    pub knowledge: Option<Arc<dyn frontdesk_core::knowledge::Retriever>>,
}

impl std::fmt::Debug for RunnerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunnerOptions")
            .field("allow_private_urls", &self.allow_private_urls)
            .field("knowledge", &self.knowledge.is_some())
            .finish()
    }
}

/// A run that has started: its id, the message it answers, and a follower from event 1.
#[derive(Debug)]
pub struct StartedRun {
    pub run_id: RunId,
    pub conversation_id: ConversationId,
    /// The message the run answers: the new one, or the one regenerated for.
    pub user_message: frontdesk_core::conversation::Message,
    pub events: Follower,
}

impl Runner {
    /// A runner with the in-process ports (the hub as the run log, this process's live runs
    /// as the run control).
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
        Self::with_ports(
            service,
            registry,
            retry,
            options,
            Arc::new(hub),
            Arc::new(LocalRuns::default()),
        )
    }

    /// A runner over the given ports (the binary picks them where it wires the app).
    pub fn with_ports(
        service: Service,
        registry: Registry,
        retry: RetryPolicy,
        options: RunnerOptions,
        log: Arc<dyn RunLog>,
        control: Arc<dyn RunControl>,
    ) -> Self {
        let tools = ToolEnv {
            service: service.clone(),
            allow_private: options.allow_private_urls,
            mcp: McpClients::default(),
            webhooks: Arc::default(),
            knowledge: options.knowledge.clone(),
            feed: Arc::default(),
        };
        Self {
            deps: Arc::new(Deps {
                service,
                registry,
                retry,
                tools,
            }),
            log,
            control,
            tracker: TaskTracker::new(),
            recent: RecentPaths::default(),
        }
    }

    pub(crate) fn deps(&self) -> &Deps {
        &self.deps
    }

    /// Stops the conversation's live runs (people took it over).
    pub(crate) async fn cancel_conversation_runs(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) {
        let stopped = self.control.cancel_conversation(tenant, conversation);
        if stopped > 0 {
            tracing::info!(conversation = %conversation, stopped, "staff took the conversation: its runs were stopped");
        }
    }

    /// The run log this runner writes to.
    pub fn log(&self) -> &dyn RunLog {
        self.log.as_ref()
    }

    /// Forgets the cached tool lists of the MCP servers of `tenant` (they are listed again).
    pub fn refresh_mcp_tools(&self, tenant: &TenantId) {
        self.deps.tools.mcp.forget(tenant);
    }

    /// Sends a webhook tool (saved or being edited) once for `agent`: the editor's "send
    /// test request".
    pub async fn try_webhook(
        &self,
        agent: &frontdesk_core::agent::Agent,
        tool: &frontdesk_core::agent::ToolEntry,
        arguments: &serde_json::Value,
    ) -> Result<frontdesk_core::tool::WebhookTrial> {
        crate::tools::trial::webhook(&self.deps.tools, agent, tool, arguments).await
    }

    /// The tools `agent`'s MCP servers offer now, each server asked afresh.
    pub async fn mcp_tools(
        &self,
        agent: &frontdesk_core::agent::Agent,
    ) -> Result<Vec<frontdesk_core::tool::McpServerTools>> {
        crate::tools::trial::mcp_tools(&self.deps.tools, agent).await
    }

    /// Whether tenants may store their own key for this provider.
    pub fn accepts_tenant_key(&self, provider: &str) -> bool {
        self.deps.registry.accepts_tenant_key(provider)
    }

    /// Starts a turn: the one way in for every channel. Checks come first (nothing is stored
    /// when one fails); then the run goes on in its own task and the caller follows it.
    pub async fn start(&self, request: TurnRequest) -> Result<StartedRun> {
        let unprompted = matches!(request.input, Input::Continue);
        let Prepared { meta, work, stage } =
            start::prepare(&self.deps, &self.recent, request).await?;
        let (publisher, last_seq) = match &stage {
            Stage::Fresh => (self.log.open(&meta.run_id, &meta.tenant), 0),
            Stage::Resumed { events, .. } => (
                self.log.reopen(&meta.run_id, &meta.tenant, events.clone()),
                events.len() as u64,
            ),
        };
        let events = self
            .log
            .follow(&meta.run_id, &meta.tenant, last_seq)
            .ok_or_else(|| Error::internal(std::io::Error::other("run log vanished")))?;
        let cancel = self
            .control
            .track(&meta.run_id, &meta.tenant, &meta.conversation);
        self.deps.tools.feed.publish(
            &meta.tenant,
            &meta.conversation,
            crate::feed::FeedItem::RunStarted {
                run_id: meta.run_id.clone(),
                unprompted,
            },
        );
        let started = StartedRun {
            run_id: meta.run_id.clone(),
            conversation_id: meta.conversation.clone(),
            user_message: meta.user_message.clone(),
            events,
        };
        let runner = self.clone();
        self.tracker.spawn(async move {
            runner
                .run(Prepared { meta, work, stage }, publisher, cancel)
                .await;
        });
        Ok(started)
    }

    /// Runs a turn to its end with nobody following it, and says how it went (evals, and
    /// any caller that wants only the result). A pause for approvals ends it too.
    pub async fn run_to_end(&self, request: TurnRequest) -> Result<Outcome> {
        let started = self.start(request).await?;
        Ok(Outcome::collect(started.run_id, started.conversation_id, started.events).await)
    }

    /// A run's task: its tools, the input guardrails (a new run) or the decided calls (a
    /// resumed one), the loop, and its end.
    async fn run(self, prepared: Prepared, publisher: Publisher, cancel: CancellationToken) {
        let Prepared {
            meta,
            mut work,
            stage,
        } = prepared;
        if matches!(stage, Stage::Fresh) {
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
        }
        let turn_loop = TurnLoop {
            deps: &self.deps,
            publisher: &publisher,
            cancel: &cancel,
        };
        // People may have taken the conversation since the run's checks (a takeover in the
        // same instant, or while the run waited for approvals): the agent does not answer.
        // The run is tracked by now, so a takeover from here on cancels it.
        let taken = matches!(
            self.deps.service.get_conversation(&meta.tenant, &meta.conversation).await,
            Ok(conversation) if conversation.handler == frontdesk_core::handoff::Handler::Human
        );
        // The rarely long parts are boxed: a run's task then holds only what streaming needs
        // (a held stream's memory; see the stream bench).
        let end = if taken {
            End::Cancelled {
                partial: String::new(),
            }
        } else {
            match Box::pin(offered_tools(&self.deps, &work.agent, &work.options)).await {
                Err(error) => End::failed(RunFailure::ToolsUnavailable, error.to_string()),
                Ok(tools) => {
                    for warning in &tools.warnings {
                        tracing::warn!(run.id = %meta.run_id, agent = %work.agent.spec.slug, "{warning}");
                    }
                    work.tools = tools;
                    match stage {
                        Stage::Resumed { pending, .. } => {
                            Box::pin(turn_loop.resume(&mut work, pending)).await
                        }
                        // Only new words from the end user go through the input guardrails.
                        Stage::Fresh if meta.user_message.role == MessageRole::User => {
                            let question = meta.user_message.text();
                            match Box::pin(guardrails::screen_input(
                                &self.deps, &mut work, &question,
                            ))
                            .await
                            {
                                Some(trip) => End::Tripped(trip),
                                None => turn_loop.drive(&mut work).await,
                            }
                        }
                        Stage::Fresh => turn_loop.drive(&mut work).await,
                    }
                }
            }
        };
        let ending = Ending {
            deps: &self.deps,
            control: self.control.as_ref(),
            recent: &self.recent,
        };
        Box::pin(ending.conclude(meta, work, end, &publisher)).await;
    }

    /// A run's events after `last_seq`: live from the log, or stored once it is gone from it.
    pub async fn follow(&self, tenant: &TenantId, run: &RunId, last_seq: u64) -> Result<Follower> {
        if let Some(follower) = self.log.follow(run, tenant, last_seq) {
            // A pause seen here may have been decided on another instance: the store knows.
            if !self.log.paused(run) {
                return Ok(follower);
            }
            match self.deps.service.get_run(tenant, run).await {
                Ok(record) if record.status != RunStatus::AwaitingApproval => {
                    return Ok(Follower::finished(record.events, last_seq))
                }
                _ => return Ok(follower),
            }
        }
        let record = self.deps.service.get_run(tenant, run).await?;
        Ok(Follower::finished(record.events, last_seq))
    }

    /// Stops a live run of `tenant`; its partial answer is kept. Unknown runs are 404.
    pub fn cancel(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        self.control.cancel(tenant, run)
    }

    /// The conversation a run of `tenant` belongs to (live here, or stored); 404 otherwise.
    pub async fn run_conversation(&self, tenant: &TenantId, run: &RunId) -> Result<ConversationId> {
        match self.control.live_conversation(tenant, run) {
            Some(conversation) => Ok(conversation),
            None => Ok(self
                .deps
                .service
                .get_run(tenant, run)
                .await?
                .conversation_id),
        }
    }

    /// Whether a run of `tenant` is running.
    pub fn is_live(&self, tenant: &TenantId, run: &RunId) -> bool {
        self.control.is_live(tenant, run)
    }

    /// Stops accepting runs and waits for the running ones to finish.
    pub async fn shutdown(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Records a decision on `call_id` of a paused run of `tenant`; the last one starts the
    /// run again.
    pub async fn decide(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
        decision: ApprovalDecision,
    ) -> Result<Decided> {
        let change = approvals::decide(call_id, &decision)?;
        let settled = approvals::settle(&self.deps, tenant, run, false, change).await?;
        self.go_on(settled).await
    }

    /// Cancels a run that waits for approvals (`by` whom: staff, or the end user from the
    /// widget): its pending calls are rejected as cancelled and it ends the way a rejection
    /// makes it end.
    pub async fn cancel_paused(&self, tenant: &TenantId, run: &RunId, by: DecidedBy) -> Result<()> {
        let change = approvals::reject_all(by, "the run was cancelled");
        let settled = approvals::settle(&self.deps, tenant, run, false, change).await?;
        self.go_on(settled).await.map(|_| ())
    }

    /// A settled run: still waiting, or started again with the same request options it had.
    async fn go_on(&self, settled: Settled) -> Result<Decided> {
        let resumption = match settled {
            Settled::Waiting(pending) => return Ok(Decided::Waiting { pending }),
            Settled::Ready(resumption) => resumption,
        };
        let record = resumption.record.clone();
        let request = TurnRequest {
            tenant: record.tenant_id.clone(),
            target: Target::Conversation {
                id: record.conversation_id.clone(),
                agent: None,
            },
            options: resumption.paused.options.clone(),
            input: Input::Resume(resumption),
        };
        match self.start(request).await {
            Ok(started) => Ok(Decided::Resumed {
                conversation_id: started.conversation_id,
                events: started.events,
            }),
            Err(error) => {
                // Every call is decided, yet the run cannot go on (its agent, conversation or
                // model went away): it ends here as failed rather than wait forever.
                approvals::fail(&self.deps, record, &error).await;
                Err(error)
            }
        }
    }

    /// Rejects the pending calls of runs whose approval expired; returns how many runs.
    pub async fn expire_approvals(&self) -> Result<usize> {
        let expired = self.deps.service.expired_approvals(100).await?;
        let mut count = 0;
        for (tenant, run) in expired {
            let change = approvals::reject_all(DecidedBy::Expired, "nobody answered in time");
            let outcome = match approvals::settle(&self.deps, &tenant, &run, true, change).await {
                Ok(settled) => self.go_on(settled).await.map(|_| ()),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) => count += 1,
                // Someone decided it in the meantime.
                Err(Error::Conflict { .. }) => {}
                Err(error) => {
                    tracing::warn!(run.id = %run, error = %error, "could not expire an approval");
                }
            }
        }
        Ok(count)
    }

    /// Ends runs whose resuming process died: they fail instead of staying `running`.
    pub async fn fail_abandoned(&self) -> Result<usize> {
        let abandoned = self.deps.service.abandoned_claims(100).await?;
        let count = abandoned.len();
        for (tenant, run) in abandoned {
            if self.is_live(&tenant, &run) {
                continue;
            }
            match self.deps.service.get_run(&tenant, &run).await {
                Ok(record) => {
                    let error = Error::Unavailable("the process running it stopped".into());
                    approvals::fail(&self.deps, record, &error).await;
                }
                Err(error) => {
                    tracing::warn!(run.id = %run, error = %error, "could not end an abandoned run")
                }
            }
        }
        Ok(count)
    }

    /// Rejects expired approvals every `every` until `stop` is cancelled.
    pub fn spawn_approval_expiry(&self, every: Duration, stop: CancellationToken) {
        let runner = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(error) = runner.expire_approvals().await {
                    tracing::warn!(error = %error, "the approval expiry sweep failed");
                }
                if let Err(error) = runner.fail_abandoned().await {
                    tracing::warn!(error = %error, "the abandoned-run sweep failed");
                }
            }
        });
    }
}
