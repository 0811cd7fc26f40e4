//! Runs and their events: every turn produces one ordered stream of [`RunEvent`]s, and
//! everything else (the SSE API, the protocol adapters, persistence, tracing) consumes or
//! translates it.
//!
//! The wire names (`run.started`, `message.delta`, …) are the contract of the shared
//! architecture. The enum is closed on purpose: a new kind of event is a decision for every
//! consumer, and the compiler lists them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conversation::{Message, Usage};
use crate::id::{ConversationId, MessageId, RunId, TenantId};
use crate::time::Timestamp;

/// How a run ended (or where it stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    AwaitingApproval,
}

/// Why a model stopped producing the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Error,
    Cancelled,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Error => "error",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// One event of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum RunEvent {
    /// The run began; carries its id.
    #[serde(rename = "run.started")]
    RunStarted {
        run_id: RunId,
        conversation_id: ConversationId,
        /// The id the answer will have once stored.
        message_id: MessageId,
        agent: String,
        model: String,
    },
    /// A piece of the answer's text.
    #[serde(rename = "message.delta")]
    MessageDelta { text: String },
    /// A tool call began.
    #[serde(rename = "tool.started")]
    ToolStarted {
        call_id: String,
        name: String,
        #[schema(value_type = Object)]
        arguments: Value,
    },
    /// A tool call ended; `result` is a summary of what the model sees.
    #[serde(rename = "tool.completed")]
    ToolCompleted {
        call_id: String,
        name: String,
        result: String,
        is_error: bool,
        duration_ms: u64,
    },
    /// Another agent took over.
    #[serde(rename = "handoff")]
    Handoff { from: String, to: String },
    /// A tool call waits for a person to approve it
    /// (`POST /api/v1/runs/{run_id}/approvals/{call_id}`).
    #[serde(rename = "approval.required")]
    ApprovalRequired {
        run_id: RunId,
        call_id: String,
        tool: String,
        #[schema(value_type = Object)]
        arguments: Value,
        /// `end_user` or `staff`.
        approver: String,
        /// When an unanswered approval counts as a rejection.
        expires_at: Timestamp,
    },
    /// A guardrail stopped the run.
    #[serde(rename = "guardrail.tripped")]
    GuardrailTripped { guardrail: String, message: String },
    /// The final message, with usage and finish reason.
    #[serde(rename = "message.completed")]
    MessageCompleted { message: Box<Message> },
    /// Something went wrong; the run ends with `run.completed` after it.
    #[serde(rename = "error")]
    Error { code: String, message: String },
    /// Always the last event, whatever the outcome.
    #[serde(rename = "run.completed")]
    RunCompleted { status: RunStatus, usage: Usage },
}

impl RunEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "run.started",
            RunEvent::MessageDelta { .. } => "message.delta",
            RunEvent::ToolStarted { .. } => "tool.started",
            RunEvent::ToolCompleted { .. } => "tool.completed",
            RunEvent::Handoff { .. } => "handoff",
            RunEvent::ApprovalRequired { .. } => "approval.required",
            RunEvent::GuardrailTripped { .. } => "guardrail.tripped",
            RunEvent::MessageCompleted { .. } => "message.completed",
            RunEvent::Error { .. } => "error",
            RunEvent::RunCompleted { .. } => "run.completed",
        }
    }

    /// Whether this is the last event of a run.
    pub fn is_terminal(&self) -> bool {
        matches!(self, RunEvent::RunCompleted { .. })
    }
}

/// An event in its place: the run's sequence number (from 1) and when it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SequencedEvent {
    pub seq: u64,
    pub at: Timestamp,
    #[serde(flatten)]
    pub event: RunEvent,
}

/// A run as it is kept once it ended or paused: what it was, how it stands, every step
/// (its trace) and every event it published.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub tenant_id: TenantId,
    pub conversation_id: ConversationId,
    pub status: RunStatus,
    /// The slug of the agent that started the run.
    pub agent: String,
    /// The `provider/model` that answered (or was tried first).
    pub model: String,
    pub usage: Usage,
    pub steps: Vec<RunStep>,
    pub events: Vec<SequencedEvent>,
    /// What a run paused for an approval needs to go on (the Runner's, opaque to the store).
    pub state: Option<Value>,
    /// When a pending approval counts as rejected.
    pub expires_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub completed_at: Timestamp,
}

/// A tool call of a paused run, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingApproval {
    pub call_id: String,
    pub tool: String,
    #[schema(value_type = Object)]
    pub arguments: Value,
    /// `end_user` or `staff`.
    pub approver: String,
    /// `approved` or `rejected` once someone decided; the run goes on when all are decided.
    pub decision: Option<String>,
}

/// What kind of work a step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Model,
    Tool,
    Handoff,
    Guardrail,
    Approval,
}

/// One step of a run: a model call, a tool call, a handoff, a guardrail check, an approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunStep {
    pub kind: StepKind,
    /// The model (`provider/model`), the tool, the agent handed to, the guardrail.
    pub name: String,
    /// The agent in charge.
    pub agent: String,
    pub started_at: Timestamp,
    pub duration_ms: u64,
    /// What went in (tool arguments; for a model call, how many messages and tools).
    #[schema(value_type = Object)]
    pub input: Value,
    /// What came out (text and tool calls, the tool's result).
    #[schema(value_type = Object)]
    pub output: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::AwaitingApproval => "awaiting_approval",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            RunStatus::Running,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
            RunStatus::AwaitingApproval,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_wire_names() {
        let cases = [
            (
                RunEvent::MessageDelta { text: "Hi".into() },
                "message.delta",
            ),
            (
                RunEvent::Error {
                    code: "upstream".into(),
                    message: "x".into(),
                },
                "error",
            ),
            (
                RunEvent::RunCompleted {
                    status: RunStatus::Completed,
                    usage: Usage::default(),
                },
                "run.completed",
            ),
            (
                RunEvent::Handoff {
                    from: "a".into(),
                    to: "b".into(),
                },
                "handoff",
            ),
        ];
        for (event, name) in cases {
            let json = serde_json::to_value(&event).unwrap_or_default();
            assert_eq!(json["type"], name);
            assert_eq!(event.name(), name);
            let back: RunEvent =
                serde_json::from_value(json).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(back, event);
        }
        assert!(RunEvent::RunCompleted {
            status: RunStatus::Failed,
            usage: Usage::default()
        }
        .is_terminal());
    }
}
