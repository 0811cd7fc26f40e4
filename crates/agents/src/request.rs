//! The one way into the engine: a [`TurnRequest`] says where the turn goes (an existing
//! conversation, or a new one for an agent with an imported history), what it answers (a new
//! message, an edit, another answer, a reply to an earlier answer with the client's tool
//! results, or a run going on after its approvals) and what the caller adds (tools it runs
//! itself, instructions). Every channel builds one: the native API, the widget, ChatKit, the
//! OpenAI-compatible and AI SDK adapters, approvals, and later voice and evals.

use frontdesk_core::id::{AgentId, ConversationId, MessageId, TenantId};
use frontdesk_core::run::RunRecord;
use frontdesk_core::{Error, Result};
use serde_json::{Map, Value};

pub use crate::options::TurnOptions;
use crate::work::Paused;

/// A turn to run.
#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub tenant: TenantId,
    pub target: Target,
    pub input: Input,
    pub options: TurnOptions,
}

/// Where a turn goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A conversation that exists.
    Conversation {
        id: ConversationId,
        /// The agent the caller addresses, when it names one: a conversation of another agent
        /// is refused (400 on this field).
        agent: Option<AgentMatch>,
    },
    /// A new conversation of an agent, holding the history the caller brings (stateless
    /// protocols send the whole of it each time).
    New(NewConversationTurn),
}

/// The agent a caller addresses, and the request field that named it (for the error).
#[derive(Debug, Clone)]
pub struct AgentMatch {
    pub agent: AgentId,
    pub field: &'static str,
}

/// A new conversation for a turn.
#[derive(Debug, Clone, Default)]
pub struct NewConversationTurn {
    /// The agent's slug or id.
    pub agent: String,
    pub end_user_id: Option<String>,
    pub title: Option<String>,
    /// The conversation's metadata; `source` (where it came from: `openai.chat_completions`,
    /// `chatkit`, …) is added when set.
    pub metadata: Map<String, Value>,
    pub source: Option<&'static str>,
    /// Earlier messages, oldest first, stored before the turn.
    pub history: Vec<Imported>,
}

/// One message of a client's history, protocol-neutral.
#[derive(Debug, Clone, PartialEq)]
pub enum Imported {
    User(String),
    /// An answer: its text and the tool calls it made (`id`, `name`, arguments as JSON text).
    Assistant {
        text: String,
        tool_calls: Vec<(String, String, String)>,
    },
    /// The result of a tool call the client ran.
    ToolResult {
        call_id: String,
        content: String,
    },
}

/// What a turn answers.
#[derive(Debug, Clone)]
pub enum Input {
    /// A new message after the active one.
    Send { text: String },
    /// A new version of an earlier user message (a new branch from its parent).
    Edit { message: MessageId, text: String },
    /// Another answer to a user message (given itself, or one of its answers).
    Regenerate { message: MessageId },
    /// Goes on from an earlier answer (the active message when `after` is `None`): the
    /// results of the calls it asked the client to make, then a new message when there is
    /// one (OpenAI Responses' `previous_response_id`, a chained AI SDK chat).
    Reply {
        after: Option<MessageId>,
        tool_results: Vec<(String, String)>,
        text: Option<String>,
    },
    /// Answers the last message of a new conversation's imported history: a user message
    /// as a new turn, tool results as the continuation of the answer that asked for them.
    History,
    /// A run paused for approvals goes on, every call decided (made by the approvals flow).
    Resume(Box<Resumption>),
    /// Answers again from the conversation's active message, storing nothing new: the agent
    /// goes on by itself (nobody took a conversation that waited for a person).
    Continue,
}

/// A paused run whose calls are all decided, claimed to go on.
#[derive(Debug, Clone)]
pub struct Resumption {
    pub(crate) record: RunRecord,
    pub(crate) paused: Paused,
}

impl TurnRequest {
    /// A turn on an existing conversation with no additions.
    pub fn on(tenant: &TenantId, conversation: &ConversationId, input: Input) -> Self {
        Self {
            tenant: tenant.clone(),
            target: Target::Conversation {
                id: conversation.clone(),
                agent: None,
            },
            input,
            options: TurnOptions::default(),
        }
    }

    pub fn with_options(mut self, options: TurnOptions) -> Self {
        self.options = options;
        self
    }
}

/// What a turn answers once its conversation is known.
pub(crate) enum Resolved {
    Send(String),
    Edit { message: MessageId, text: String },
    Regenerate(MessageId),
    Reply { after: MessageId, text: String },
    Continue(MessageId),
}

/// A new message's text, which must say something.
pub(crate) fn check_text(text: String) -> Result<String> {
    if text.trim().is_empty() {
        return Err(Error::invalid("content", "must not be empty"));
    }
    Ok(text)
}
