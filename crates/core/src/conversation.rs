//! Conversations and their messages.
//!
//! Messages form a tree through `parent_id` (so a regenerated answer keeps the old one as a
//! sibling); `seq` numbers them in order of arrival within their conversation. The
//! conversation keeps counters (`message_count`, `last_message_at`, `preview`) that are
//! updated in the same transaction as the message they count.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::id::{AgentId, ConversationId, MessageId, TenantId};
use crate::time::Timestamp;

/// A conversation between an end user (or visitor) and an agent.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    pub id: ConversationId,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub agent_id: AgentId,
    /// The tenant's id for its signed-in user, or a widget visitor id.
    pub end_user_id: Option<String>,
    pub title: Option<String>,
    /// The start of the latest message's text.
    pub preview: Option<String>,
    pub message_count: i64,
    pub last_message_at: Option<Timestamp>,
    /// The end of the branch the conversation shows: its latest message unless a client
    /// switched branches. The next message goes after it.
    pub active_message_id: Option<MessageId>,
    pub archived: bool,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Who answers: the agent, or people (then no run starts on a message).
    pub handler: crate::handoff::Handler,
    /// Since when it waits for a person to take it; null when it does not wait.
    pub waiting_since: Option<Timestamp>,
    /// The person who holds it.
    pub assignee: Option<crate::handoff::Assignee>,
    /// The sequence number of its latest timeline event (0 for none): where a follower
    /// that has read the conversation starts.
    pub event_seq: i64,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    System,
    User,
    Assistant,
    Tool,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::System => "system",
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
            MessageRole::Tool => "tool",
        }
    }

    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "system" => Ok(MessageRole::System),
            "user" => Ok(MessageRole::User),
            "assistant" => Ok(MessageRole::Assistant),
            "tool" => Ok(MessageRole::Tool),
            other => Err(Error::invalid(
                "role",
                format!("`{other}` is not a message role"),
            )),
        }
    }
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ContentPart {
    Text {
        text: String,
    },
    ImageUrl {
        url: String,
    },
    ToolCall {
        id: String,
        name: String,
        #[schema(value_type = serde_json::Value)]
        arguments: Value,
    },
    ToolResult {
        call_id: String,
        #[schema(value_type = serde_json::Value)]
        output: Value,
        /// The call failed (bad arguments, an error from the tool, a timeout, a rejection).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    /// The agent in charge changed during the answer.
    Handoff {
        from: String,
        to: String,
    },
    /// A source the answer draws on: a link a tool returned (an MCP resource link, say), or
    /// a passage of the tenant's knowledge, shown under the answer. Never sent back to a
    /// model.
    Citation {
        title: String,
        /// The source's link; empty for a document that has none (an uploaded file).
        #[serde(default)]
        url: String,
        /// The knowledge document cited (`doc_…`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        document_id: Option<String>,
        /// The section of the document (its headings, outermost first, joined by ` › `).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        section: Option<String>,
        /// The page of the document (PDF), from 1.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        page: Option<u32>,
    },
}

/// Token counts of one model answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
}

/// A message in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub parent_id: Option<MessageId>,
    /// Position in the conversation in order of arrival, from 1.
    pub seq: i64,
    pub role: MessageRole,
    pub content: Vec<ContentPart>,
    pub model: Option<String>,
    pub finish_reason: Option<crate::run::FinishReason>,
    pub usage: Option<Usage>,
    pub latency_ms: Option<i64>,
    /// The answer as JSON when the agent has an output schema (the text is its rendering).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub structured: Option<Value>,
    pub created_at: Timestamp,
    /// A staff member's reply (stored as the assistant's side) names its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<crate::handoff::Author>,
}

impl Message {
    /// The text parts joined: what search indexes and exports show.
    pub fn text(&self) -> String {
        content_text(&self.content)
    }
}

/// The text parts of some content, joined with blank lines.
pub fn content_text(content: &[ContentPart]) -> String {
    let texts: Vec<&str> = content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    texts.join("\n\n")
}

/// Where a new message goes in the conversation's tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Parent {
    /// After the conversation's active message (the usual next turn).
    #[default]
    Active,
    /// A new root: a sibling of the first message (editing the first user message).
    Root,
    /// After this message of the conversation (a regenerated answer, an edited message).
    Message(MessageId),
}

impl Parent {
    /// `Message(id)` when there is a parent, else `Root`.
    pub fn of(parent: Option<MessageId>) -> Self {
        parent.map_or(Parent::Root, Parent::Message)
    }

    /// The explicit parent message, if any.
    pub fn message(&self) -> Option<&MessageId> {
        match self {
            Parent::Message(id) => Some(id),
            Parent::Active | Parent::Root => None,
        }
    }
}

/// A message to append; the store assigns `seq` and updates the conversation's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub parent: Parent,
    pub role: MessageRole,
    pub content: Vec<ContentPart>,
    /// Plain text of `content`, indexed for search.
    pub text: String,
    pub model: Option<String>,
    pub finish_reason: Option<crate::run::FinishReason>,
    pub usage: Option<Usage>,
    pub latency_ms: Option<i64>,
    pub structured: Option<Value>,
    pub created_at: Timestamp,
    pub author: Option<crate::handoff::Author>,
}

/// A message as its author makes it, before it has an id, a place and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDraft {
    /// The id to give it, when the author announced it before storing (a run's answer);
    /// a new one otherwise.
    pub id: Option<MessageId>,
    pub parent: Parent,
    pub role: MessageRole,
    pub content: Vec<ContentPart>,
    pub model: Option<String>,
    pub finish_reason: Option<crate::run::FinishReason>,
    pub usage: Option<Usage>,
    pub latency_ms: Option<i64>,
    pub structured: Option<Value>,
    pub author: Option<crate::handoff::Author>,
}

impl MessageDraft {
    /// A plain text message.
    pub fn text(role: MessageRole, text: impl Into<String>) -> Self {
        Self {
            id: None,
            parent: Parent::Active,
            role,
            content: vec![ContentPart::Text { text: text.into() }],
            model: None,
            finish_reason: None,
            usage: None,
            latency_ms: None,
            structured: None,
            author: None,
        }
    }
}

/// Which conversations to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationQuery {
    pub agent_id: Option<AgentId>,
    /// `Some(true)`: only archived; `Some(false)`: only active; `None`: both.
    pub archived: Option<bool>,
    pub end_user_id: Option<String>,
    /// Full-text search over titles and message text.
    pub search: Option<String>,
    /// Only conversations in this state.
    pub status: Option<ConversationStatus>,
    /// Only conversations last active in `[from, to)`.
    pub active_from: Option<Timestamp>,
    pub active_to: Option<Timestamp>,
    /// Only those waiting for a person, the longest waiting first (the cursor's sort key is
    /// then `waiting_since`).
    pub waiting: bool,
    pub limit: u32,
    pub after: Option<Cursor>,
}

/// What a conversation went through, for staff to find: a run that failed, an answer a
/// guardrail stopped, or a run waiting for an approval now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationStatus {
    Failed,
    GuardrailTripped,
    AwaitingApproval,
}

impl ConversationStatus {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "failed" => Some(Self::Failed),
            "guardrail_tripped" => Some(Self::GuardrailTripped),
            "awaiting_approval" => Some(Self::AwaitingApproval),
            _ => None,
        }
    }
}

/// Messages of one conversation, in which order and from where.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageQuery {
    pub newest_first: bool,
    pub limit: u32,
    /// Continue after this `seq` (exclusive) in the chosen order.
    pub after_seq: Option<i64>,
}

/// Changes to a conversation; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationPatch {
    pub title: Option<Option<String>>,
    pub archived: Option<bool>,
    pub metadata: Option<Map<String, Value>>,
}

/// A message on a conversation's active branch, with its siblings (itself included, in
/// order of arrival) when it has any: the other answers to the same message, or the other
/// versions of an edited message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BranchMessage {
    #[serde(flatten)]
    pub message: Message,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sibling_ids: Vec<MessageId>,
}

/// A page of results and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// A position in a keyset-paginated list: the sort value and the id of the last row seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort: i64,
    pub id: String,
}

impl Cursor {
    /// The opaque form clients pass back.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}:{}", self.sort, self.id))
    }

    /// Parses what `encode` made; anything else is a 400 `invalid_cursor`.
    pub fn decode(value: &str) -> Result<Self> {
        let bad =
            || Error::bad_request("invalid_cursor", "the cursor is not one this API returned");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(value)
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (sort, id) = text.split_once(':').ok_or_else(bad)?;
        let sort = sort.parse().map_err(|_| bad())?;
        if id.is_empty()
            || id.len() > 64
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(bad());
        }
        Ok(Self {
            sort,
            id: id.to_owned(),
        })
    }
}

/// How many characters of the latest message a conversation shows as its preview.
pub const PREVIEW_CHARS: usize = 140;
/// How many characters of the first user message become the title.
pub const TITLE_CHARS: usize = 100;

/// The first `max` characters of `text` on one line, with an ellipsis when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            sort: 1_795_000_000_123,
            id: "conv_01jd8x5k7m3q4r5s6t7v8w9x0y".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        for bad in [
            "",
            "!!!",
            "bm9jb2xvbg",
            "MTIzOg",
            "YWJjOmNvbnY",
            "MTI6Y29udl8nOy0t",
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn excerpts() {
        assert_eq!(excerpt("  hello\n  world ", 20), "hello world");
        assert_eq!(excerpt("abcdef", 4), "abc…");
    }
}
