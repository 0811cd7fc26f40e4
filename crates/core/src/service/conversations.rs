//! Conversations: create, list and search, read with messages, update, delete, export.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Service;
use crate::agent::AgentRef;
use crate::conversation::{
    content_text, Conversation, ConversationPatch, ConversationQuery, Cursor, Message,
    MessageQuery, NewMessage, Page,
};
use crate::error::{Error, Result};
use crate::id::{ConversationId, MessageId, TenantId};
use crate::time::Timestamp;
use crate::validate;

const MAX_END_USER_ID: usize = 256;
const MAX_SEARCH_CHARS: usize = 200;
/// The most characters one message may carry.
pub const MAX_MESSAGE_CHARS: usize = 100_000;

/// A conversation to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// The agent's slug or id.
    pub agent: String,
    #[serde(default)]
    pub end_user_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Changes to a conversation (a field left out stays as it is; `title: null` clears it).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub title: Option<Option<String>>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// Switch branches: the newest message at or below this one becomes the active message.
    #[serde(default)]
    pub active_message_id: Option<String>,
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Filters and paging for a conversation list, as the API receives them.
#[derive(Debug, Clone, Default)]
pub struct ListConversations {
    pub agent: Option<String>,
    pub archived: Option<bool>,
    pub end_user_id: Option<String>,
    pub q: Option<String>,
    pub status: Option<crate::conversation::ConversationStatus>,
    pub active_from: Option<Timestamp>,
    pub active_to: Option<Timestamp>,
    /// Only those waiting for a person, the longest waiting first.
    pub waiting: bool,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A whole conversation for export.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConversationExport {
    pub conversation: Conversation,
    pub agent_slug: String,
    pub messages: Vec<Message>,
    /// The timeline: asked for a person, taken, replies, internal notes, handed back.
    pub events: Vec<crate::handoff::ConversationEvent>,
    pub exported_at: Timestamp,
}

impl Service {
    pub async fn create_conversation(
        &self,
        tenant: &TenantId,
        input: NewConversation,
    ) -> Result<Conversation> {
        let agent = self
            .get_agent(tenant, &AgentRef::parse(&input.agent)?)
            .await?;
        if let Some(end_user) = &input.end_user_id {
            validate::non_empty("end_user_id", end_user, MAX_END_USER_ID)?;
        }
        let title = match input.title {
            Some(title) => Some(check_title(title)?),
            None => None,
        };
        check_metadata(&input.metadata)?;
        let now = Timestamp::now();
        let conversation = Conversation {
            id: ConversationId::new(),
            tenant_id: tenant.clone(),
            agent_id: agent.id,
            end_user_id: input.end_user_id,
            title,
            preview: None,
            message_count: 0,
            last_message_at: None,
            active_message_id: None,
            archived: false,
            metadata: input.metadata,
            created_at: now,
            updated_at: now,
            handler: crate::handoff::Handler::Agent,
            waiting_since: None,
            assignee: None,
            event_seq: 0,
        };
        self.store
            .insert_conversation(&conversation)
            .await
            .map_err(|e| Error::from_store("conversation", e))?;
        Ok(conversation)
    }

    pub async fn list_conversations(
        &self,
        tenant: &TenantId,
        params: ListConversations,
    ) -> Result<Page<Conversation>> {
        let agent_id = match params.agent {
            Some(agent) => match self.get_agent(tenant, &AgentRef::parse(&agent)?).await {
                Ok(agent) => Some(agent.id),
                // An unknown agent filter matches nothing, like any other filter.
                Err(Error::NotFound { .. }) => {
                    return Ok(Page {
                        items: Vec::new(),
                        next: None,
                    })
                }
                Err(e) => return Err(e),
            },
            None => None,
        };
        let search = match params
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty())
        {
            Some(q) => {
                validate::max_chars("q", &q, MAX_SEARCH_CHARS)?;
                Some(q)
            }
            None => None,
        };
        if let Some(end_user) = &params.end_user_id {
            validate::max_chars("end_user_id", end_user, MAX_END_USER_ID)?;
        }
        let query = ConversationQuery {
            agent_id,
            archived: params.archived,
            end_user_id: params.end_user_id,
            search,
            status: params.status,
            active_from: params.active_from,
            active_to: params.active_to,
            waiting: params.waiting,
            limit: self.page_size(params.limit)?,
            after: params.cursor.as_deref().map(Cursor::decode).transpose()?,
        };
        self.store
            .list_conversations(tenant, &query)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    pub async fn get_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Conversation> {
        self.store
            .get_conversation(tenant, conversation)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    /// A page of a conversation's messages and whether more follow.
    pub async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        newest_first: bool,
        limit: Option<u32>,
        after_seq: Option<i64>,
    ) -> Result<(Vec<Message>, bool)> {
        let query = MessageQuery {
            newest_first,
            limit: self.page_size(limit)?,
            after_seq,
        };
        self.store
            .list_messages(tenant, conversation, &query)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    pub async fn update_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        input: UpdateConversation,
    ) -> Result<Conversation> {
        let title = match input.title {
            Some(Some(title)) => Some(Some(check_title(title)?)),
            other => other,
        };
        if let Some(metadata) = &input.metadata {
            check_metadata(metadata)?;
        }
        let active = input
            .active_message_id
            .as_deref()
            .map(|id| {
                MessageId::parse(id)
                    .map_err(|_| Error::invalid("active_message_id", "is not a message id"))
            })
            .transpose()?;
        let patch = ConversationPatch {
            title,
            archived: input.archived,
            metadata: input.metadata,
        };
        let updated = self
            .store
            .update_conversation(tenant, conversation, &patch, Timestamp::now())
            .await
            .map_err(|e| Error::from_store("conversation", e))?;
        match active {
            Some(message) => {
                self.set_active_message(tenant, conversation, &message)
                    .await
            }
            None => Ok(updated),
        }
    }

    /// Soft-deletes a conversation, or with `purge` removes it and its messages for good.
    pub async fn delete_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        purge: bool,
    ) -> Result<()> {
        let result = if purge {
            self.store.purge_conversation(tenant, conversation).await
        } else {
            self.store
                .soft_delete_conversation(tenant, conversation, Timestamp::now())
                .await
        };
        result.map_err(|e| Error::from_store("conversation", e))
    }

    /// Appends a message to a conversation (the chat runner's and importers' entry point).
    pub async fn append_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: crate::conversation::MessageDraft,
    ) -> Result<Message> {
        let text = content_text(&message.content);
        validate::max_chars("content", &text, MAX_MESSAGE_CHARS)?;
        let new = NewMessage {
            id: message.id.unwrap_or_default(),
            conversation_id: conversation.clone(),
            parent: message.parent,
            role: message.role,
            content: message.content,
            text,
            model: message.model,
            finish_reason: message.finish_reason,
            usage: message.usage,
            latency_ms: message.latency_ms,
            structured: message.structured,
            created_at: Timestamp::now(),
            author: message.author,
        };
        self.store
            .append_message(tenant, &new)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    /// Everything in a conversation, oldest message first.
    pub async fn export_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<ConversationExport> {
        let conversation = self.get_conversation(tenant, conversation).await?;
        let agent = self
            .store
            .get_agent_any(tenant, &conversation.agent_id)
            .await
            .map_err(|e| Error::from_store("agent", e))?;
        let mut messages = Vec::new();
        let mut after_seq = None;
        loop {
            let query = MessageQuery {
                newest_first: false,
                limit: 500,
                after_seq,
            };
            let (page, more) = self
                .store
                .list_messages(tenant, &conversation.id, &query)
                .await
                .map_err(|e| Error::from_store("conversation", e))?;
            after_seq = page.last().map(|m| m.seq);
            messages.extend(page);
            if !more {
                break;
            }
        }
        let mut events = Vec::new();
        loop {
            let after = events
                .last()
                .map_or(0, |e: &crate::handoff::ConversationEvent| e.seq);
            let page = self
                .store
                .events_after(tenant, &conversation.id, after, 1_000)
                .await
                .map_err(|e| Error::from_store("conversation", e))?;
            let full = page.len() == 1_000;
            events.extend(page);
            if !full {
                break;
            }
        }
        Ok(ConversationExport {
            conversation,
            agent_slug: agent.spec.slug,
            messages,
            events,
            exported_at: Timestamp::now(),
        })
    }
}

impl Service {
    /// Tokens and cost over `[from, to)` (default: this month so far), grouped.
    pub async fn usage(
        &self,
        tenant: &TenantId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        group: crate::usage::UsageGroup,
        prices: &std::collections::BTreeMap<String, crate::usage::Price>,
    ) -> Result<crate::usage::UsageReport> {
        // `to` is exclusive: by default just after now, so what happened this millisecond counts.
        let to = to.unwrap_or_else(|| Timestamp::from_millis(Timestamp::now().as_millis() + 1));
        let from = from.unwrap_or_else(|| to.month_start());
        if from >= to {
            return Err(Error::invalid("from", "must be before `to`"));
        }
        if to.as_millis() - from.as_millis() > 400 * 24 * 3600 * 1000 {
            return Err(Error::invalid("from", "a report covers at most 400 days"));
        }
        let rows = self
            .store
            .usage(tenant, from, to, group)
            .await
            .map_err(|e| Error::from_store("usage", e))?;
        Ok(crate::usage::report(rows, prices, from, to, group))
    }
}

fn check_title(title: String) -> Result<String> {
    let title = title.trim().to_owned();
    validate::non_empty("title", &title, 200)?;
    Ok(title)
}

fn check_metadata(metadata: &Map<String, Value>) -> Result<()> {
    crate::context::check("metadata", metadata)
}

/// Renders an export as Markdown: a heading, a few facts, then each message.
pub fn render_markdown(export: &ConversationExport) -> String {
    let conversation = &export.conversation;
    let title = conversation
        .title
        .as_deref()
        .unwrap_or("Untitled conversation");
    let mut out = format!("# {}\n\n", title.replace('\n', " "));
    out.push_str(&format!(
        "- Conversation: `{}`\n- Agent: `{}`\n",
        conversation.id, export.agent_slug
    ));
    if let Some(end_user) = &conversation.end_user_id {
        out.push_str(&format!("- End user: `{}`\n", end_user.replace('`', "'")));
    }
    out.push_str(&format!(
        "- Started: {}\n- Messages: {}\n",
        conversation.created_at,
        export.messages.len()
    ));
    for message in &export.messages {
        let who = match (message.role, &message.author) {
            (crate::conversation::MessageRole::Assistant, Some(author)) => {
                format!("{} (staff)", author.name.replace('\n', " "))
            }
            (crate::conversation::MessageRole::System, _) => "System".to_owned(),
            (crate::conversation::MessageRole::User, _) => "User".to_owned(),
            (crate::conversation::MessageRole::Assistant, _) => "Assistant".to_owned(),
            (crate::conversation::MessageRole::Tool, _) => "Tool".to_owned(),
        };
        out.push_str(&format!("\n## {who} · {}\n\n", message.created_at));
        for part in &message.content {
            match part {
                crate::conversation::ContentPart::Text { text } => out.push_str(text),
                crate::conversation::ContentPart::ImageUrl { url } => {
                    out.push_str(&format!("![image]({url})"))
                }
                crate::conversation::ContentPart::ToolCall {
                    name, arguments, ..
                } => out.push_str(&format!(
                    "Called `{name}` with:\n\n```json\n{arguments}\n```"
                )),
                crate::conversation::ContentPart::ToolResult { output, .. } => {
                    out.push_str(&format!("Result:\n\n```json\n{output}\n```"))
                }
                crate::conversation::ContentPart::Handoff { from, to } => {
                    out.push_str(&format!("_Handed off from {from} to {to}._"))
                }
                crate::conversation::ContentPart::Citation {
                    title,
                    url,
                    section,
                    page,
                    ..
                } => out.push_str(&citation_markdown(title, url, section.as_deref(), *page)),
            }
            out.push('\n');
        }
    }
    if !export.events.is_empty() {
        out.push_str("\n## Timeline\n\n");
        for event in &export.events {
            if let Some(line) = timeline_line(event) {
                out.push_str(&format!("- {} · {line}\n", event.created_at));
            }
        }
    }
    out
}

/// A timeline event as one line of the export (`None` for a message: it is above).
fn timeline_line(event: &crate::handoff::ConversationEvent) -> Option<String> {
    use crate::handoff::EventKind;
    let actor = event
        .actor
        .as_ref()
        .map_or_else(|| "Someone".to_owned(), |a| a.name.replace('\n', " "));
    let text = |key: &str| {
        event
            .data
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(|t| t.replace('\n', " "))
    };
    Some(match event.kind {
        EventKind::Message => return None,
        EventKind::Requested => format!(
            "The {} asked for a person{}",
            text("by").unwrap_or_else(|| "agent".to_owned()),
            text("reason").map(|r| format!(": {r}")).unwrap_or_default()
        ),
        EventKind::Taken => format!("{actor} took the conversation"),
        EventKind::Note => format!(
            "Internal note by {actor}: {}",
            text("content").unwrap_or_default()
        ),
        EventKind::Returned => format!("{actor} handed it back to the agent"),
        EventKind::TimedOut => "Nobody took it in time; the agent went on".to_owned(),
    })
}

/// A cited source as a Markdown link. Stored titles and URLs came from tools: they must not
/// form other Markdown.
fn citation_markdown(title: &str, url: &str, section: Option<&str>, page: Option<u32>) -> String {
    let escape = |text: &str| -> String {
        text.chars()
            .flat_map(|c| match c {
                '[' | ']' | '\\' | '*' | '_' | '`' | '<' | '>' => vec!['\\', c],
                c => vec![c],
            })
            .collect()
    };
    let mut place = String::new();
    if let Some(section) = section {
        place.push_str(&format!(", {}", escape(section)));
    }
    if let Some(page) = page {
        place.push_str(&format!(", page {page}"));
    }
    let title = escape(title);
    if url.is_empty() {
        return format!("Source: {title}{place}");
    }
    let url = url
        .replace('(', "%28")
        .replace(')', "%29")
        .replace(' ', "%20")
        .replace('<', "%3C")
        .replace('>', "%3E");
    format!("Source: [{title}](<{url}>){place}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cited_sources_cannot_spell_other_markdown() {
        assert_eq!(
            citation_markdown(
                "Policy](javascript:x) *new*",
                "https://a.example/p(1)?q=<b>",
                None,
                None
            ),
            "Source: [Policy\\](javascript:x) \\*new\\*](<https://a.example/p%281%29?q=%3Cb%3E>)"
        );
        assert_eq!(
            citation_markdown("Returns [EU]", "", Some("Policy › *Jackets*"), Some(3)),
            "Source: Returns \\[EU\\], Policy › \\*Jackets\\*, page 3"
        );
    }
}
