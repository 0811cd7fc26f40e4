//! The branches this process answered last, kept so that the next turn on a conversation does
//! not read its history again.
//!
//! A path from the root to a message never changes: messages are immutable, and anything new
//! (an answer, an edit, a regenerated answer) is a new message and so a new leaf. A kept path
//! is therefore right exactly when the conversation's active message is still the leaf it
//! ends at, which the turn's one read tells (in the same snapshot on SQLite). Another
//! instance's answer, a branch switch or a deleted conversation only make the kept path unused.
//!
//! Bounded by an estimate of the bytes kept; the entries kept longest go first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use frontdesk_core::conversation::{ContentPart, Message};
use frontdesk_core::id::{ConversationId, MessageId, TenantId};
use serde_json::Value;

/// About how much the kept paths may hold at once.
const MAX_BYTES: usize = 16 * 1024 * 1024;
/// What a message costs beyond its content (ids, fields, the allocations).
const MESSAGE_OVERHEAD: usize = 256;

type Key = (TenantId, ConversationId);

/// One conversation's kept path.
struct Entry {
    leaf: MessageId,
    path: Arc<[Message]>,
    bytes: usize,
    /// When it was kept: the order of eviction.
    generation: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Keys in the order they were kept; a key kept again leaves a stale element behind
    /// (its generation no longer matches), dropped on the way.
    order: VecDeque<(Key, u64)>,
    bytes: usize,
    generation: u64,
}

/// The last answered branch of recent conversations.
#[derive(Clone, Default)]
pub(crate) struct RecentPaths {
    inner: Arc<Mutex<Inner>>,
}

impl RecentPaths {
    /// The kept path of a conversation of `tenant`, with the leaf it ends at.
    pub fn get(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Option<(MessageId, Arc<[Message]>)> {
        let inner = self.inner.lock().ok()?;
        let entry = inner.entries.get(&(tenant.clone(), conversation.clone()))?;
        Some((entry.leaf.clone(), entry.path.clone()))
    }

    /// Keeps `path` (oldest first, its last message the leaf) for the conversation.
    pub fn put(&self, tenant: &TenantId, conversation: &ConversationId, path: Vec<Message>) {
        let Some(leaf) = path.last().map(|m| m.id.clone()) else {
            return;
        };
        let bytes: usize = path.iter().map(weight).sum();
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let key = (tenant.clone(), conversation.clone());
        if bytes > MAX_BYTES {
            if let Some(old) = inner.entries.remove(&key) {
                inner.bytes -= old.bytes;
            }
            return;
        }
        inner.generation += 1;
        let generation = inner.generation;
        let entry = Entry {
            leaf,
            path: path.into(),
            bytes,
            generation,
        };
        if let Some(old) = inner.entries.insert(key.clone(), entry) {
            inner.bytes -= old.bytes;
        }
        inner.bytes += bytes;
        inner.order.push_back((key, generation));
        inner.evict();
    }
}

impl Inner {
    /// Drops the entries kept longest until the rest fit, and stale order elements.
    fn evict(&mut self) {
        while self.bytes > MAX_BYTES || self.order.len() > 2 * self.entries.len() + 64 {
            let Some((key, generation)) = self.order.pop_front() else {
                break;
            };
            let current = self
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation);
            if current && self.bytes > MAX_BYTES {
                if let Some(old) = self.entries.remove(&key) {
                    self.bytes -= old.bytes;
                }
            } else if current {
                // Still wanted: it goes to the back, as if kept now.
                self.order.push_back((key, generation));
            }
        }
    }
}

/// About how many bytes a message holds.
fn weight(message: &Message) -> usize {
    let parts: usize = message
        .content
        .iter()
        .map(|part| match part {
            ContentPart::Text { text } => text.len(),
            ContentPart::ImageUrl { url } => url.len(),
            ContentPart::ToolCall {
                id,
                name,
                arguments,
            } => id.len() + name.len() + json_len(arguments),
            ContentPart::ToolResult {
                call_id, output, ..
            } => call_id.len() + json_len(output),
            ContentPart::Handoff { from, to } => from.len() + to.len(),
            ContentPart::Citation { title, url } => title.len() + url.len(),
        })
        .sum();
    MESSAGE_OVERHEAD + parts + message.structured.as_ref().map_or(0, json_len)
}

fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(0, |bytes| bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use frontdesk_core::conversation::MessageRole;
    use frontdesk_core::time::Timestamp;

    fn message(conversation: &ConversationId, text: &str) -> Message {
        Message {
            id: MessageId::new(),
            conversation_id: conversation.clone(),
            parent_id: None,
            seq: 1,
            role: MessageRole::User,
            content: vec![ContentPart::Text { text: text.into() }],
            model: None,
            finish_reason: None,
            usage: None,
            latency_ms: None,
            structured: None,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn a_path_is_kept_per_tenant_and_conversation_with_its_leaf() {
        let recent = RecentPaths::default();
        let (a, b, conversation) = (TenantId::new(), TenantId::new(), ConversationId::new());
        let first = message(&conversation, "hi");
        let second = message(&conversation, "hello");
        recent.put(&a, &conversation, vec![first.clone(), second.clone()]);
        let (leaf, path) = recent
            .get(&a, &conversation)
            .unwrap_or_else(|| unreachable!());
        assert_eq!(leaf, second.id);
        assert_eq!(path.len(), 2);
        // Another tenant's view of the same id holds nothing.
        assert!(recent.get(&b, &conversation).is_none());
        // Kept again, the newer path replaces the older.
        let third = message(&conversation, "more");
        recent.put(&a, &conversation, vec![first, second, third.clone()]);
        assert_eq!(
            recent.get(&a, &conversation).map(|(l, _)| l),
            Some(third.id)
        );
        // An empty path keeps nothing.
        let other = ConversationId::new();
        recent.put(&a, &other, Vec::new());
        assert!(recent.get(&a, &other).is_none());
    }

    #[test]
    fn what_is_kept_stays_within_its_bytes_the_oldest_going_first() {
        let recent = RecentPaths::default();
        let tenant = TenantId::new();
        let big = "x".repeat(1024 * 1024);
        let conversations: Vec<ConversationId> = (0..20).map(|_| ConversationId::new()).collect();
        for conversation in &conversations {
            recent.put(&tenant, conversation, vec![message(conversation, &big)]);
            // The same one kept again and again leaves no stale order behind.
            recent.put(
                &tenant,
                &conversations[0],
                vec![message(&conversations[0], "x")],
            );
        }
        let inner = recent.inner.lock().unwrap_or_else(|_| unreachable!());
        assert!(inner.bytes <= MAX_BYTES, "{} bytes kept", inner.bytes);
        assert!(inner.order.len() <= 2 * inner.entries.len() + 64);
        drop(inner);
        // The newest big ones stay, the oldest went; the small one kept last stays.
        assert!(recent.get(&tenant, &conversations[19]).is_some());
        assert!(recent.get(&tenant, &conversations[1]).is_none());
        assert!(recent.get(&tenant, &conversations[0]).is_some());
        // A path bigger than everything is not kept (and drops what was kept for it).
        let huge = "y".repeat(MAX_BYTES + 1);
        recent.put(
            &tenant,
            &conversations[19],
            vec![message(&conversations[19], &huge)],
        );
        assert!(recent.get(&tenant, &conversations[19]).is_none());
    }
}
