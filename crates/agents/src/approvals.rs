//! Human approvals: a run that waits for people is saved with its state (`work::Paused`);
//! each decision is recorded, and when every pending call of the run is decided the run is
//! ready to go on — the Runner starts it again through its one entry point, with its events
//! continuing on the same run, in whichever process decided.
//!
//! Claiming the run in the store (`awaiting_approval` → `running`) serialises decisions: two
//! at once cannot both resume it. Approvals not answered in time are rejections, decided by
//! the Runner's expiry sweep with [`expire`].

use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::policy::Approver;
use frontdesk_core::run::{
    ApprovalOutcome, DecidedBy, PendingApproval, RunEvent, RunFailure, RunRecord, RunStatus,
    SequencedEvent,
};
use frontdesk_core::time::Timestamp;
use frontdesk_core::{Error, Result};

use crate::deps::Deps;
use crate::ports::Follower;
use crate::request::Resumption;
use crate::work::{Decision, Paused};

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

/// Where a paused run stands after a change.
pub(crate) enum Settled {
    /// Other calls still wait; their ids.
    Waiting(Vec<String>),
    /// Every call is decided: the run may go on.
    Ready(Box<Resumption>),
}

/// The change a person's decision on `call_id` makes.
pub(crate) fn decide<'a>(
    call_id: &'a str,
    decision: &'a ApprovalDecision,
) -> Result<impl FnOnce(&mut Paused) -> Result<()> + 'a> {
    if let Some(reason) = &decision.reason {
        frontdesk_core::validate::max_chars("reason", reason, MAX_REASON_CHARS)?;
    }
    Ok(move |paused: &mut Paused| {
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
            by: decision.by.into(),
        });
        Ok(())
    })
}

/// The change that rejects every call still waiting, `by` someone, for `reason`.
pub(crate) fn reject_all(
    by: DecidedBy,
    reason: &'static str,
) -> impl FnOnce(&mut Paused) -> Result<()> {
    move |paused: &mut Paused| {
        for call in paused.pending.iter_mut().filter(|p| p.decision.is_none()) {
            call.decision = Some(Decision {
                approve: false,
                reason: Some(reason.into()),
                by,
            });
        }
        Ok(())
    }
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
            approver: p.approver,
            decision: p.decision.map(|d| {
                if d.approve {
                    ApprovalOutcome::Approved
                } else {
                    ApprovalOutcome::Rejected
                }
            }),
        })
        .collect()
}

/// Claims a paused run, applies `change` to its state, and saves it back (some calls still
/// wait) or hands it over to go on (none do). On any failure the run stays as it was.
pub(crate) async fn settle(
    deps: &Deps,
    tenant: &TenantId,
    run: &RunId,
    expired: bool,
    change: impl FnOnce(&mut Paused) -> Result<()>,
) -> Result<Settled> {
    claim(deps, tenant, run, expired).await?;
    let mut record = match deps.service.get_run(tenant, run).await {
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
            restore(deps, &record).await;
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
        restore(deps, &record).await;
        return Ok(Settled::Waiting(waiting));
    }
    Ok(Settled::Ready(Box::new(Resumption { record, paused })))
}

/// Claims a paused run; a person's decision that meets a run busy with another decision
/// tries again for a moment, so deciding several calls at once works.
async fn claim(deps: &Deps, tenant: &TenantId, run: &RunId, expired: bool) -> Result<()> {
    let mut tries = 0;
    loop {
        match deps.service.claim_paused_run(tenant, run, expired).await {
            Err(Error::Conflict {
                code: "run_not_awaiting_approval",
                ..
            }) if !expired && tries < 20 => {
                let record = deps.service.get_run(tenant, run).await?;
                if record.status != RunStatus::Running || record.state.is_none() {
                    return deps.service.claim_paused_run(tenant, run, expired).await;
                }
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}

/// Ends a run that cannot resume: `error` and `run.completed` (failed) on its log.
pub(crate) async fn fail(deps: &Deps, mut record: RunRecord, error: &Error) {
    let last = record.events.last().map_or(0, |e| e.seq);
    let at = Timestamp::now();
    record.events.push(SequencedEvent {
        seq: last + 1,
        at,
        event: RunEvent::Error {
            code: RunFailure::ResumeFailed,
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
    restore(deps, &record).await;
}

async fn restore(deps: &Deps, record: &RunRecord) {
    if let Err(error) = deps.service.record_run(record).await {
        tracing::error!(run.id = %record.id, error = %error, "could not put a paused run back");
    }
}
