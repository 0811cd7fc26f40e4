//! Human approvals: a run that waits for people is saved with its state (`turn::Paused`);
//! each decision is recorded, and when every pending call of the run is decided the run goes
//! on — in this process, whichever one paused it — with its events continuing on the same run.
//!
//! Claiming the run in the store (`awaiting_approval` → `running`) serialises decisions: two
//! at once cannot both resume it. Approvals not answered in time are rejections, decided by
//! [`Runner::expire_approvals`], which the server calls periodically.

use std::time::Duration;

use frontdesk_core::agent::AgentRef;
use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::model::ToolCall;
use frontdesk_core::policy::Approver;
use frontdesk_core::run::{
    PendingApproval, RunEvent, RunRecord, RunStatus, RunStep, SequencedEvent, StepKind,
};
use frontdesk_core::time::Timestamp;
use frontdesk_core::tool::{ToolContext, ToolOutput};
use frontdesk_core::{Error, Result};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::hub::Follower;
use crate::runner::{Meta, Runner};
use crate::tools::ToolSet;
use crate::turn::{Decision, Paused, Work};

/// A decision on one pending call.
#[derive(Debug, Clone)]
pub struct ApprovalDecision {
    pub approve: bool,
    pub reason: Option<String>,
    /// Who decides: staff may decide any call; an end user only the calls waiting for them.
    pub by: Approver,
}

/// What a decision did.
#[derive(Debug)]
pub enum Decided {
    /// Other calls of the run still wait; their ids.
    Waiting { pending: Vec<String> },
    /// The run goes on; its events from the one after the pause.
    Resumed {
        conversation_id: ConversationId,
        events: Follower,
    },
}

/// Longest reason kept.
const MAX_REASON_CHARS: usize = 1_000;

impl Runner {
    /// Records a decision on `call_id` of a paused run of `tenant`.
    pub async fn decide(
        &self,
        tenant: &TenantId,
        run: &RunId,
        call_id: &str,
        decision: ApprovalDecision,
    ) -> Result<Decided> {
        if let Some(reason) = &decision.reason {
            frontdesk_core::validate::max_chars("reason", reason, MAX_REASON_CHARS)?;
        }
        self.settle(tenant, run, false, |paused| {
            let call = paused
                .pending
                .iter_mut()
                .find(|p| p.call_id == call_id)
                .ok_or(Error::NotFound {
                    resource: "approval",
                })?;
            if call.decision.is_some() {
                return Err(Error::Conflict {
                    code: "already_decided",
                    message: "this call was already approved or rejected".into(),
                });
            }
            if decision.by == Approver::EndUser && call.approver == Approver::Staff {
                return Err(Error::Forbidden {
                    code: "staff_approval_required",
                    message: "this call waits for the tenant's staff to approve it".into(),
                });
            }
            call.decision = Some(Decision {
                approve: decision.approve,
                reason: decision.reason.clone(),
                by: decision.by.as_str().to_owned(),
            });
            Ok(())
        })
        .await
    }

    /// Cancels a run that waits for approvals: its pending calls are rejected as cancelled
    /// and it ends the way a rejection makes it end.
    pub async fn cancel_paused(&self, tenant: &TenantId, run: &RunId) -> Result<()> {
        self.settle(tenant, run, false, |paused| {
            for call in paused.pending.iter_mut().filter(|p| p.decision.is_none()) {
                call.decision = Some(Decision {
                    approve: false,
                    reason: Some("the run was cancelled".into()),
                    by: "staff".into(),
                });
            }
            Ok(())
        })
        .await
        .map(|_| ())
    }

    /// The calls a paused run waits on (none for a run that is not paused).
    pub fn pending_approvals(record: &RunRecord) -> Vec<PendingApproval> {
        if record.status != RunStatus::AwaitingApproval {
            return Vec::new();
        }
        let Some(paused) = record
            .state
            .clone()
            .and_then(|state| serde_json::from_value::<Paused>(state).ok())
        else {
            return Vec::new();
        };
        paused
            .pending
            .into_iter()
            .map(|p| PendingApproval {
                call_id: p.call_id,
                tool: p.name,
                arguments: p.arguments,
                approver: p.approver.as_str().to_owned(),
                decision: p
                    .decision
                    .map(|d| if d.approve { "approved" } else { "rejected" }.to_owned()),
            })
            .collect()
    }

    /// Rejects the pending calls of runs whose approval expired; returns how many runs.
    pub async fn expire_approvals(&self) -> Result<usize> {
        let expired = self.service().expired_approvals(100).await?;
        let mut count = 0;
        for (tenant, run) in expired {
            let outcome = self
                .settle(&tenant, &run, true, |paused| {
                    for call in paused.pending.iter_mut().filter(|p| p.decision.is_none()) {
                        call.decision = Some(Decision {
                            approve: false,
                            reason: Some("nobody answered in time".into()),
                            by: "expired".into(),
                        });
                    }
                    Ok(())
                })
                .await;
            match outcome {
                Ok(_) => count += 1,
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
        let abandoned = self.service().abandoned_claims(100).await?;
        let count = abandoned.len();
        for (tenant, run) in abandoned {
            if self.is_live(&tenant, &run) {
                continue;
            }
            match self.service().get_run(&tenant, &run).await {
                Ok(record) => {
                    let error = Error::Unavailable("the process running it stopped".into());
                    self.fail(record, &error).await;
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

    /// Claims a paused run, applies `change` to its state, and saves it back (some calls
    /// still wait) or resumes it (none do). On any failure the run stays as it was.
    async fn settle(
        &self,
        tenant: &TenantId,
        run: &RunId,
        expired: bool,
        change: impl FnOnce(&mut Paused) -> Result<()>,
    ) -> Result<Decided> {
        self.claim(tenant, run, expired).await?;
        let mut record = match self.service().get_run(tenant, run).await {
            Ok(record) => record,
            Err(error) => {
                // The claim is ours; without the record it cannot be put back as it was.
                tracing::error!(run.id = %run, error = %error, "a claimed run could not be read");
                return Err(error);
            }
        };
        record.status = RunStatus::AwaitingApproval;
        let outcome = match record
            .state
            .clone()
            .and_then(|state| serde_json::from_value::<Paused>(state).ok())
        {
            Some(mut paused) => change(&mut paused).map(|()| paused),
            None => Err(Error::internal(std::io::Error::other(
                "a paused run without its state",
            ))),
        };
        let paused = match outcome {
            Ok(paused) => paused,
            Err(error) => {
                self.restore(&record).await;
                return Err(error);
            }
        };
        let waiting: Vec<String> = paused
            .pending
            .iter()
            .filter(|p| p.decision.is_none())
            .map(|p| p.call_id.clone())
            .collect();
        if !waiting.is_empty() {
            record.state = serde_json::to_value(&paused).ok();
            self.restore(&record).await;
            return Ok(Decided::Waiting { pending: waiting });
        }
        match self.resume(record.clone(), paused).await {
            Ok(events) => Ok(Decided::Resumed {
                conversation_id: record.conversation_id.clone(),
                events,
            }),
            Err(error) => {
                // Every call is decided, yet the run cannot go on (its agent, conversation or
                // model went away): it ends here as failed rather than wait forever.
                self.fail(record, &error).await;
                Err(error)
            }
        }
    }

    /// Claims a paused run; a person's decision that meets a run busy with another decision
    /// tries again for a moment, so deciding several calls at once works.
    async fn claim(&self, tenant: &TenantId, run: &RunId, expired: bool) -> Result<()> {
        let mut tries = 0;
        loop {
            match self.service().claim_paused_run(tenant, run, expired).await {
                Err(Error::Conflict {
                    code: "run_not_awaiting_approval",
                    ..
                }) if !expired && tries < 20 => {
                    let record = self.service().get_run(tenant, run).await?;
                    if record.status != RunStatus::Running || record.state.is_none() {
                        return self.service().claim_paused_run(tenant, run, expired).await;
                    }
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                other => return other,
            }
        }
    }

    /// Ends a run that cannot resume: `error` and `run.completed` (failed) on its log.
    async fn fail(&self, mut record: RunRecord, error: &Error) {
        let last = record.events.last().map_or(0, |e| e.seq);
        let at = Timestamp::now();
        record.events.push(SequencedEvent {
            seq: last + 1,
            at,
            event: RunEvent::Error {
                code: "resume_failed".into(),
                message: format!("the run could not go on after the approval: {error}"),
            },
        });
        record.events.push(SequencedEvent {
            seq: last + 2,
            at,
            event: RunEvent::RunCompleted {
                status: RunStatus::Failed,
                usage: record.usage,
            },
        });
        record.status = RunStatus::Failed;
        record.state = None;
        record.expires_at = None;
        record.completed_at = at;
        self.restore(&record).await;
    }

    async fn restore(&self, record: &RunRecord) {
        if let Err(error) = self.service().record_run(record).await {
            tracing::error!(run.id = %record.id, error = %error, "could not put a paused run back");
        }
    }

    /// Takes a fully decided run up again in a new task.
    async fn resume(&self, record: RunRecord, paused: Paused) -> Result<Follower> {
        let tenant = record.tenant_id.clone();
        let agent = self
            .service()
            .get_agent(&tenant, &AgentRef::Id(paused.agent_id.clone()))
            .await?;
        let user_message = self
            .service()
            .get_message(&tenant, &record.conversation_id, &paused.user_message_id)
            .await?;
        let keys = self.keys(&tenant).await?;
        let candidates = self.candidates(&agent, &keys)?;
        let branch = self
            .service()
            .message_path(
                &tenant,
                &record.conversation_id,
                Some(&user_message.id),
                100,
            )
            .await?;
        let window = crate::runner::window_of(&candidates);
        let (request, _) = crate::history::model_request(&agent.spec, &branch, None, window)?;
        let tools = ToolSet::build(self.tool_env(), &agent).await?;
        let entry_agent = record.agent.clone();
        let last_seq = record.events.len() as u64;
        let publisher = self
            .hub()
            .reopen(&record.id, &tenant, record.events.clone());
        let events = self
            .hub()
            .follow(&record.id, &tenant, last_seq)
            .ok_or_else(|| Error::internal(std::io::Error::other("run log vanished")))?;
        let cancel = self.track(&record.id, &tenant, &record.conversation_id);
        let meta = Meta {
            run_id: record.id.clone(),
            tenant: tenant.clone(),
            conversation: record.conversation_id.clone(),
            user_message,
            entry_agent,
            answer_id: paused.answer_id.clone().unwrap_or_default(),
            created_at: record.created_at,
            // The next turn reads its branch: a resumed run is rare.
            branch: None,
        };
        let mut work = Work {
            context: ToolContext {
                tenant,
                run: record.id.clone(),
                conversation: record.conversation_id.clone(),
                agent: agent.spec.slug.clone(),
                end_user: paused.end_user.clone(),
            },
            agent,
            candidates,
            tools,
            base: request.messages,
            progress: paused.progress.clone(),
            keys,
            options: paused.options.clone(),
        };
        let runner = self.clone();
        self.spawn_tracked(async move {
            for call in &paused.pending {
                let tool_call = ToolCall {
                    id: call.call_id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.to_string(),
                };
                let decision = call.decision.clone().unwrap_or(Decision {
                    approve: false,
                    reason: None,
                    by: "expired".into(),
                });
                work.progress.steps.push(RunStep {
                    kind: StepKind::Approval,
                    name: call.name.clone(),
                    agent: work.agent.spec.slug.clone(),
                    started_at: Timestamp::now(),
                    duration_ms: 0,
                    input: call.arguments.clone(),
                    output: json!({"approved": decision.approve, "by": decision.by, "reason": decision.reason}),
                    usage: None,
                    error: None,
                });
                if decision.approve {
                    runner.run_tools(&mut work, vec![tool_call], &publisher).await;
                } else {
                    let why = decision
                        .reason
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default();
                    let note = if decision.by == "expired" {
                        format!("The call was not run: nobody approved it in time{why}.")
                    } else {
                        format!("The call was not run: it was rejected{why}.")
                    };
                    runner.finish_call(&mut work, &publisher, &tool_call, ToolOutput::error(note), 0);
                }
            }
            let end = runner.drive(&mut work, &publisher, &cancel).await;
            runner.conclude(meta, work, end, &publisher).await;
        });
        Ok(events)
    }
}
