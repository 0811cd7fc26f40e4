//! What a run works on and how it stands: plain data the loop, guardrails, concluding and
//! approvals share. [`Progress`] and [`Paused`] are saved with a run that waits for an
//! approval, so it goes on later in any process (a versioned, serde-stable shape).

use std::sync::Arc;

use frontdesk_core::agent::{Agent, AgentSpec};
use frontdesk_core::context::RunContext;
use frontdesk_core::conversation::{ContentPart, Message, Usage};
use frontdesk_core::id::{AgentId, ConversationId, MessageId, RunId, TenantId};
use frontdesk_core::model::ModelMessage;
use frontdesk_core::policy::Approver;
use frontdesk_core::run::{DecidedBy, FinishReason, RunFailure, RunStep};
use frontdesk_core::time::Timestamp;
use frontdesk_core::tool::ToolContext;
use frontdesk_models::fallback::Candidate;
use frontdesk_models::registry::TenantKeys;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::options::TurnOptions;
use crate::tools::ToolSet;

/// Longest text kept in a trace step's input or output.
pub(crate) const TRACE_CHARS: usize = 2_000;

/// Where a run stands: what the answer holds so far and what it has used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Progress {
    /// The answer's parts so far: text, tool calls and results, handoffs.
    pub parts: Vec<ContentPart>,
    pub usage: Usage,
    pub model_calls: u32,
    pub tool_calls: u32,
    /// Wall time spent running (not waiting for approvals), in ms.
    pub active_ms: u64,
    pub steps: Vec<RunStep>,
    /// The `provider/model` that answered last.
    pub model: String,
    /// What the agent's knowledge gave the model (context mode), found once per run and
    /// agent.
    #[serde(default)]
    pub knowledge: Option<crate::knowledge::Found>,
    /// Text of the model call in flight that clients have already seen (kept if the run is
    /// stopped in the middle of it).
    #[serde(skip)]
    pub streaming: String,
    /// The answer a tool ended the run with (`transfer_to_human`).
    #[serde(skip)]
    pub end_turn: Option<String>,
}

impl Progress {
    pub fn add_usage(&mut self, usage: &Usage) {
        self.usage.prompt_tokens += usage.prompt_tokens;
        self.usage.completion_tokens += usage.completion_tokens;
        self.usage.total_tokens += usage.total_tokens;
    }
}

/// A tool call waiting for a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub call_id: String,
    pub name: String,
    pub arguments: Value,
    pub approver: Approver,
    pub decision: Option<Decision>,
}

/// A person's answer to a pending call (or the sweep's, when nobody answered in time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Decision {
    pub approve: bool,
    pub reason: Option<String>,
    pub by: DecidedBy,
}

/// What a paused run saves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Paused {
    /// The id announced for the answer.
    #[serde(default)]
    pub answer_id: Option<MessageId>,
    pub agent_id: AgentId,
    pub user_message_id: MessageId,
    pub end_user: Option<String>,
    pub progress: Progress,
    pub pending: Vec<Pending>,
    /// What the caller added to the turn (client tools, instructions), kept for the rest.
    #[serde(default)]
    pub options: TurnOptions,
}

/// How the loop ended.
pub(crate) enum End {
    /// The final answer: its text (already published) and JSON when structured.
    Answer {
        text: String,
        structured: Option<Value>,
        finish: FinishReason,
    },
    Failed {
        failure: RunFailure,
        message: String,
        partial: String,
    },
    Cancelled {
        partial: String,
    },
    Paused(Vec<Pending>),
    Tripped(Trip),
}

impl End {
    /// A failure with nothing of the answer to keep.
    pub fn failed(failure: RunFailure, message: impl Into<String>) -> Self {
        End::Failed {
            failure,
            message: message.into(),
            partial: String::new(),
        }
    }
}

/// Why a guardrail tripped: its name and a message for the run's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    pub guardrail: &'static str,
    pub message: String,
}

/// What the loop works on.
pub(crate) struct Work {
    pub agent: Agent,
    pub candidates: Vec<Candidate>,
    pub tools: ToolSet,
    /// System instructions and history, the user's message last.
    pub base: Vec<ModelMessage>,
    pub progress: Progress,
    pub context: ToolContext,
    pub keys: TenantKeys,
    pub options: TurnOptions,
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
    /// The branch up to the user message's parent (its last `MAX_HISTORY` messages), when
    /// the answer's branch is to be kept for the next turn.
    pub branch: Option<Arc<[Message]>>,
}

pub(crate) fn clip(text: &str, max: usize) -> String {
    frontdesk_core::validate::truncate(text, max)
}

/// The system instructions of a model call: the agent's own, with the run's context in its
/// `{{context.NAME}}` placeholders, then what the caller added (as it is).
pub(crate) fn instructions(
    spec: &AgentSpec,
    options: &TurnOptions,
    context: &RunContext,
) -> String {
    let own = if context.is_empty() || !spec.instructions.contains("{{") {
        spec.instructions.clone()
    } else {
        context.render(&spec.instructions)
    };
    match &options.instructions {
        Some(extra) if !extra.trim().is_empty() => format!("{}\n\n{extra}", own.trim()),
        _ => own,
    }
}

/// Replaces (or adds, or removes) the system message at the start of `messages`.
pub(crate) fn set_instructions(messages: &mut Vec<ModelMessage>, instructions: &str) {
    if matches!(messages.first(), Some(ModelMessage::System { .. })) {
        messages.remove(0);
    }
    if !instructions.trim().is_empty() {
        messages.insert(
            0,
            ModelMessage::System {
                text: instructions.to_owned(),
            },
        );
    }
}
