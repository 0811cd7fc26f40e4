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

    /// Keeps the branch an answer ends: `branch` (the question's parent last; its last `max`
    /// messages), the question and the answer. Only when the question was stored under
    /// `branch`'s last message: the store picks a new message's parent when it writes, so a
    /// turn that raced another one hangs elsewhere than the branch it read, and what is kept
    /// for the conversation is dropped instead.
    pub fn put_answer(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        (branch, max): (&[Message], usize),
        question: &Message,
        answer: &Message,
    ) {
        let hangs = question.parent_id.as_ref() == branch.last().map(|m| &m.id)
            && answer.parent_id.as_ref() == Some(&question.id);
        if !hangs {
            self.forget(tenant, conversation);
            return;
        }
        let skip = (branch.len() + 2).saturating_sub(max);
        let path = branch
            .iter()
            .chain([question, answer])
            .skip(skip)
            .cloned()
            .collect();
        self.put(tenant, conversation, path);
    }

    fn forget(&self, tenant: &TenantId, conversation: &ConversationId) {
        if let Ok(mut inner) = self.inner.lock() {
            if let Some(old) = inner
                .entries
                .remove(&(tenant.clone(), conversation.clone()))
            {
                inner.bytes -= old.bytes;
            }
        }
    }

    /// Keeps `path` (oldest first, its last message the leaf) for the conversation.
    fn put(&self, tenant: &TenantId, conversation: &ConversationId, path: Vec<Message>) {
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
    /// Drops stale order elements once they pile up, and the entries kept longest until the
    /// rest fit.
    fn evict(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|(key, generation)| {
                entries
                    .get(key)
                    .is_some_and(|e| e.generation == *generation)
            });
        }
        while self.bytes > MAX_BYTES {
            let Some((key, generation)) = self.order.pop_front() else {
                break;
            };
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                if let Some(old) = self.entries.remove(&key) {
                    self.bytes -= old.bytes;
                }
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
            ContentPart::Citation {
                title,
                url,
                section,
                ..
            } => title.len() + url.len() + section.as_ref().map_or(0, String::len),
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

    fn message(conversation: &ConversationId, text: &str) -> Message {
        Message {
            conversation_id: conversation.clone(),
            ..crate::history::tests::message(MessageRole::User, text)
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

    fn under(parent: Option<&Message>, mut message: Message) -> Message {
        message.parent_id = parent.map(|p| p.id.clone());
        message
    }

    #[test]
    fn an_answer_is_kept_only_on_the_branch_its_question_hangs_from() {
        let recent = RecentPaths::default();
        let (tenant, conversation) = (TenantId::new(), ConversationId::new());
        let root = under(None, message(&conversation, "u1"));
        let reply = under(Some(&root), message(&conversation, "a1"));
        let question = under(Some(&reply), message(&conversation, "u2"));
        let answer = under(Some(&question), message(&conversation, "a2"));
        let branch = [root.clone(), reply.clone()];
        recent.put_answer(&tenant, &conversation, (&branch, 100), &question, &answer);
        let (leaf, path) = recent
            .get(&tenant, &conversation)
            .unwrap_or_else(|| unreachable!());
        assert_eq!(leaf, answer.id);
        let ids: Vec<_> = path.iter().map(|m| m.id.clone()).collect();
        assert_eq!(
            ids,
            [
                root.id.clone(),
                reply.id.clone(),
                question.id.clone(),
                answer.id.clone()
            ]
        );
        // Only the last `max` messages are kept.
        recent.put_answer(&tenant, &conversation, (&branch, 3), &question, &answer);
        let (_, path) = recent
            .get(&tenant, &conversation)
            .unwrap_or_else(|| unreachable!());
        assert_eq!(path.len(), 3);
        assert_eq!(path[0].id, reply.id);
        // A question stored under another message than the branch read (a turn that raced
        // another one) keeps nothing, and drops what was kept.
        let raced = under(Some(&root), message(&conversation, "u2 elsewhere"));
        let its_answer = under(Some(&raced), message(&conversation, "a2 elsewhere"));
        recent.put_answer(&tenant, &conversation, (&branch, 100), &raced, &its_answer);
        assert!(recent.get(&tenant, &conversation).is_none());
        // A first question has no parent and an empty branch.
        let first_answer = under(Some(&root), message(&conversation, "a1"));
        recent.put_answer(&tenant, &conversation, (&[], 100), &root, &first_answer);
        assert_eq!(
            recent.get(&tenant, &conversation).map(|(leaf, _)| leaf),
            Some(first_answer.id)
        );
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
