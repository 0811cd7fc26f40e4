//! How a run (or the part of it up to a pause) went, gathered from its events: what the
//! protocols that answer once (JSON, not a stream) and headless callers (evals) read.

use frontdesk_core::conversation::{Message, Usage};
use frontdesk_core::id::{ConversationId, RunId};
use frontdesk_core::run::{PendingApproval, RunEvent, RunFailure, RunStatus};

use crate::ports::Follower;

/// A run's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub run_id: RunId,
    pub conversation_id: ConversationId,
    /// The stored answer (`message.completed`).
    pub message: Option<Message>,
    /// Why it failed and how (its `error` event).
    pub failure: Option<(RunFailure, String)>,
    pub status: RunStatus,
    pub usage: Usage,
    /// The calls it waits on when `status` is `awaiting_approval`.
    pub approvals: Vec<PendingApproval>,
    /// Whether a guardrail stopped it (the answer is the safe reply).
    pub guardrail_tripped: bool,
}

impl Outcome {
    /// Reads a run's events to its end (or pause).
    pub async fn collect(
        run_id: RunId,
        conversation_id: ConversationId,
        mut events: Follower,
    ) -> Self {
        let mut outcome = Outcome {
            run_id,
            conversation_id,
            message: None,
            failure: None,
            status: RunStatus::Failed,
            usage: Usage::default(),
            approvals: Vec::new(),
            guardrail_tripped: false,
        };
        while let Some(event) = events.next().await {
            match event.event {
                RunEvent::MessageCompleted { message } => outcome.message = Some(*message),
                RunEvent::Error { code, message } => outcome.failure = Some((code, message)),
                RunEvent::RunCompleted { status, usage } => {
                    outcome.status = status;
                    outcome.usage = usage;
                }
                RunEvent::ApprovalRequired {
                    call_id,
                    tool,
                    arguments,
                    approver,
                    ..
                } => outcome.approvals.push(PendingApproval {
                    call_id,
                    tool,
                    arguments,
                    approver,
                    decision: None,
                }),
                RunEvent::GuardrailTripped { .. } => outcome.guardrail_tripped = true,
                RunEvent::RunStarted { .. }
                | RunEvent::MessageDelta { .. }
                | RunEvent::ToolStarted { .. }
                | RunEvent::ToolCompleted { .. }
                | RunEvent::Handoff { .. } => {}
            }
        }
        outcome
    }
}
