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
use crate::model::ModelError;
use crate::policy::Approver;
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
    /// The reason a stored name stands for (`None` for a name no version wrote).
    pub fn parse(value: &str) -> Option<Self> {
        [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ToolCalls,
            FinishReason::ContentFilter,
            FinishReason::Error,
            FinishReason::Cancelled,
        ]
        .into_iter()
        .find(|reason| reason.as_str() == value)
    }

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

/// Why a run failed: one closed set, carried from the provider's error (or the loop's own
/// limits) to the `error` event, the stored run and the HTTP status. The wire names are the
/// stable codes clients branch on; [`RunFailure::kind`] groups them for the adapters, which
/// map a failure to their protocol through one function each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunFailure {
    /// The model provider could not be reached.
    ModelUnreachable,
    /// The model provider did not answer (or stopped answering) in time.
    ModelTimeout,
    /// The model provider is rate limiting us.
    ModelRateLimited,
    /// The model provider answered with an error status.
    ModelError,
    /// The model provider's answer did not follow its protocol.
    ModelProtocolError,
    /// The model cannot be called as configured (unknown model, missing key).
    ModelConfigError,
    /// More model calls than the agent's `max_turns`.
    MaxTurnsExceeded,
    /// Longer than `budgets.max_seconds`.
    TimeBudgetExceeded,
    /// More tokens than `budgets.max_tokens`.
    TokenBudgetExceeded,
    /// More tool calls than `budgets.max_tool_calls`.
    ToolCallBudgetExceeded,
    /// The answer did not match the output schema, also when asked once more.
    InvalidStructuredOutput,
    /// The agent's tools could not be set up (an MCP server did not list its tools).
    ToolsUnavailable,
    /// A guardrail stopped the run (the end user got the safe reply).
    GuardrailTripped,
    /// Someone stopped the run.
    Cancelled,
    /// The answer or the run could not be stored.
    StorageFailed,
    /// A run could not go on after its approvals.
    ResumeFailed,
    /// Anything else (also a code this version does not know, read from storage).
    #[serde(other)]
    Internal,
}

/// What kind of failure a [`RunFailure`] is: what adapters decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The model provider failed (HTTP 502 where a protocol answers with a status).
    Upstream,
    /// The model provider is rate limiting us.
    RateLimited,
    /// The model provider took too long.
    Timeout,
    /// The agent's own limits stopped the run (turns, budgets, output schema).
    Limit,
    /// A guardrail stopped it.
    Guardrail,
    /// A tool could not be used.
    Tool,
    /// Someone cancelled it.
    Cancelled,
    /// Our own fault.
    Internal,
}

impl RunFailure {
    /// The failure and its kind, in one table.
    fn entry(self) -> (&'static str, FailureKind) {
        use FailureKind as K;
        match self {
            RunFailure::ModelUnreachable => ("model_unreachable", K::Upstream),
            RunFailure::ModelTimeout => ("model_timeout", K::Timeout),
            RunFailure::ModelRateLimited => ("model_rate_limited", K::RateLimited),
            RunFailure::ModelError => ("model_error", K::Upstream),
            RunFailure::ModelProtocolError => ("model_protocol_error", K::Upstream),
            RunFailure::ModelConfigError => ("model_config_error", K::Upstream),
            RunFailure::MaxTurnsExceeded => ("max_turns_exceeded", K::Limit),
            RunFailure::TimeBudgetExceeded => ("time_budget_exceeded", K::Limit),
            RunFailure::TokenBudgetExceeded => ("token_budget_exceeded", K::Limit),
            RunFailure::ToolCallBudgetExceeded => ("tool_call_budget_exceeded", K::Limit),
            RunFailure::InvalidStructuredOutput => ("invalid_structured_output", K::Limit),
            RunFailure::ToolsUnavailable => ("tools_unavailable", K::Tool),
            RunFailure::GuardrailTripped => ("guardrail_tripped", K::Guardrail),
            RunFailure::Cancelled => ("cancelled", K::Cancelled),
            RunFailure::StorageFailed => ("storage_failed", K::Internal),
            RunFailure::ResumeFailed => ("resume_failed", K::Internal),
            RunFailure::Internal => ("internal", K::Internal),
        }
    }

    /// The stable wire code (`model_timeout`, `max_turns_exceeded`, …).
    pub fn code(self) -> &'static str {
        self.entry().0
    }

    pub fn kind(self) -> FailureKind {
        self.entry().1
    }

    /// Whether the model provider failed (rather than the agent or us).
    pub fn is_upstream(self) -> bool {
        matches!(
            self.kind(),
            FailureKind::Upstream | FailureKind::RateLimited | FailureKind::Timeout
        )
    }

    /// Why a model call failed.
    pub fn from_model(error: &ModelError) -> Self {
        match error {
            ModelError::Connect(_) => RunFailure::ModelUnreachable,
            ModelError::Timeout(_) => RunFailure::ModelTimeout,
            ModelError::RateLimited { .. } => RunFailure::ModelRateLimited,
            ModelError::Upstream { .. } => RunFailure::ModelError,
            ModelError::Protocol(_) => RunFailure::ModelProtocolError,
            ModelError::Config(_) => RunFailure::ModelConfigError,
        }
    }
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Who decided a call that waited for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    EndUser,
    Staff,
    /// Nobody answered in time: a rejection.
    Expired,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::EndUser => "end_user",
            DecidedBy::Staff => "staff",
            DecidedBy::Expired => "expired",
        }
    }
}

impl From<Approver> for DecidedBy {
    fn from(approver: Approver) -> Self {
        match approver {
            Approver::EndUser => DecidedBy::EndUser,
            Approver::Staff => DecidedBy::Staff,
        }
    }
}

/// What was decided on a call that waited for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    Approved,
    Rejected,
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
        #[schema(value_type = serde_json::Value)]
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
        #[schema(value_type = serde_json::Value)]
        arguments: Value,
        approver: Approver,
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
    Error { code: RunFailure, message: String },
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

impl RunRecord {
    /// Milliseconds from the run's start to its first streamed text; `None` when it did not
    /// complete, wrote none, waited for a person before it did (that wait is not the
    /// model's), or a guardrail's reply came first (not the model's text).
    pub fn first_token_ms(&self) -> Option<i64> {
        if self.status != RunStatus::Completed {
            return None;
        }
        let start = self.events.first()?.at;
        for event in &self.events {
            match &event.event {
                RunEvent::ApprovalRequired { .. } | RunEvent::GuardrailTripped { .. } => {
                    return None
                }
                RunEvent::MessageDelta { text } if !text.is_empty() => {
                    return Some((event.at.as_millis() - start.as_millis()).max(0));
                }
                _ => {}
            }
        }
        None
    }
}

/// A tool call of a paused run, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingApproval {
    pub call_id: String,
    pub tool: String,
    #[schema(value_type = serde_json::Value)]
    pub arguments: Value,
    pub approver: Approver,
    /// Set once someone decided; the run goes on when all are decided.
    pub decision: Option<ApprovalOutcome>,
}

/// What kind of work a step was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Model,
    /// An attempt at a model call that failed before anything reached the client (a retry
    /// or a fallback followed it): its model, error and timing.
    ModelAttempt,
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
    #[schema(value_type = serde_json::Value)]
    pub input: Value,
    /// What came out (text and tool calls, the tool's result).
    #[schema(value_type = serde_json::Value)]
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
    fn first_token_time_is_the_models_own() {
        let start = Timestamp::from_millis(1_000_000);
        let at = |ms: i64| Timestamp::from_millis(start.as_millis() + ms);
        let record = |status: RunStatus, events: Vec<(i64, RunEvent)>| RunRecord {
            id: RunId::new(),
            tenant_id: TenantId::new(),
            conversation_id: ConversationId::new(),
            status,
            agent: "a".into(),
            model: "m".into(),
            usage: Usage::default(),
            steps: Vec::new(),
            events: events
                .into_iter()
                .enumerate()
                .map(|(seq, (ms, event))| SequencedEvent {
                    seq: seq as u64,
                    at: at(ms),
                    event,
                })
                .collect(),
            state: None,
            expires_at: None,
            created_at: start,
            completed_at: at(1_000),
        };
        let delta = |text: &str| RunEvent::MessageDelta { text: text.into() };
        let tripped = RunEvent::GuardrailTripped {
            guardrail: "g".into(),
            message: "m".into(),
        };
        let empty_first = vec![(0, delta("")), (250, delta("Hi"))];
        assert_eq!(
            record(RunStatus::Completed, empty_first.clone()).first_token_ms(),
            Some(250)
        );
        assert_eq!(
            record(RunStatus::Failed, empty_first).first_token_ms(),
            None
        );
        let guarded = vec![(0, delta("")), (5, tripped), (6, delta("Sorry."))];
        assert_eq!(record(RunStatus::Completed, guarded).first_token_ms(), None);
        assert_eq!(
            record(RunStatus::Completed, vec![(0, delta(""))]).first_token_ms(),
            None
        );
    }

    #[test]
    fn events_carry_their_wire_names() {
        let cases = [
            (
                RunEvent::MessageDelta { text: "Hi".into() },
                "message.delta",
            ),
            (
                RunEvent::Error {
                    code: RunFailure::ModelError,
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

    #[test]
    fn failures_keep_their_wire_codes_and_unknown_ones_read_as_internal() {
        for failure in [
            RunFailure::ModelTimeout,
            RunFailure::MaxTurnsExceeded,
            RunFailure::ToolsUnavailable,
            RunFailure::ResumeFailed,
        ] {
            let json = serde_json::to_value(failure).unwrap_or_default();
            assert_eq!(json, failure.code());
            let back: RunFailure = serde_json::from_value(json).unwrap_or(RunFailure::Internal);
            assert_eq!(back, failure);
        }
        let unknown: RunFailure = serde_json::from_value(serde_json::json!("from_the_future"))
            .unwrap_or(RunFailure::ModelError);
        assert_eq!(unknown, RunFailure::Internal);
        assert!(
            RunFailure::from_model(&ModelError::Timeout(std::time::Duration::from_secs(1)))
                .is_upstream()
        );
        assert!(!RunFailure::MaxTurnsExceeded.is_upstream());
        assert_eq!(
            FinishReason::parse("tool_calls"),
            Some(FinishReason::ToolCalls)
        );
        assert_eq!(FinishReason::parse("nope"), None);
    }
}
