//! Conversations' live feed: what their followers (a visitor's widget, staff in the inbox)
//! hear besides the runs they start themselves. Durable events come from the conversation's
//! timeline (stored first, then published here), so a follower that reconnects replays what
//! it missed from the store by sequence number; typing and "a run started" are fleeting and
//! carry none. A tenant's channel says which of its conversations changed, for the inbox
//! list.
//!
//! In-process: followers on another instance hear a conversation's events when they
//! reconnect or, while connected, within [`POLL`] (they re-read the timeline then).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use frontdesk_core::handoff::ConversationEvent;
use frontdesk_core::id::{ConversationId, RunId, TenantId};
use tokio::sync::broadcast;

/// How often a follower re-reads the timeline without being told (another instance's
/// events).
pub const POLL: Duration = Duration::from_secs(5);
/// Items a slow follower may fall behind by before it re-reads the timeline.
const CAPACITY: usize = 64;

/// One thing a conversation's followers hear.
#[derive(Debug, Clone)]
pub enum FeedItem {
    /// A timeline event, stored with its sequence number.
    Event(Arc<ConversationEvent>),
    /// A run started on the conversation (the follower may follow its events);
    /// `unprompted` when nobody's message started it (the agent going on after a wait), so
    /// no client is following it already.
    RunStarted { run_id: RunId, unprompted: bool },
    /// Someone is writing (a staff member, by name).
    Typing { name: String },
}

type Key = (TenantId, ConversationId);

/// The channels of the conversations and tenants someone follows on this instance.
#[derive(Debug, Default)]
pub struct ConversationFeed {
    conversations: Mutex<HashMap<Key, broadcast::Sender<FeedItem>>>,
    tenants: Mutex<HashMap<TenantId, broadcast::Sender<ConversationId>>>,
}

impl ConversationFeed {
    /// Tells the conversation's followers (and its tenant's) about `item`.
    pub fn publish(&self, tenant: &TenantId, conversation: &ConversationId, item: FeedItem) {
        let key = (tenant.clone(), conversation.clone());
        if let Ok(mut channels) = self.conversations.lock() {
            if let Some(sender) = channels.get(&key) {
                if sender.send(item).is_err() {
                    // Nobody follows any more.
                    channels.remove(&key);
                }
            }
        }
        self.changed(tenant, conversation);
    }

    /// Tells the tenant's followers that `conversation` changed (a message, a new state).
    pub fn changed(&self, tenant: &TenantId, conversation: &ConversationId) {
        if let Ok(mut tenants) = self.tenants.lock() {
            if let Some(sender) = tenants.get(tenant) {
                if sender.send(conversation.clone()).is_err() {
                    tenants.remove(tenant);
                }
            }
        }
    }

    /// Follows a conversation from now on.
    pub fn subscribe(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> broadcast::Receiver<FeedItem> {
        let mut channels = self
            .conversations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        channels
            .entry((tenant.clone(), conversation.clone()))
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Drops the conversation's channel when nobody here follows it any more.
    pub fn release(&self, tenant: &TenantId, conversation: &ConversationId) {
        if let Ok(mut channels) = self.conversations.lock() {
            let key = (tenant.clone(), conversation.clone());
            if channels.get(&key).is_some_and(|s| s.receiver_count() == 0) {
                channels.remove(&key);
            }
        }
    }

    /// Follows which of a tenant's conversations change.
    pub fn subscribe_tenant(&self, tenant: &TenantId) -> broadcast::Receiver<ConversationId> {
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tenants
            .entry(tenant.clone())
            .or_insert_with(|| broadcast::channel(256).0)
            .subscribe()
    }

    /// Conversations with a channel now (followed, or not yet noticed to be unfollowed).
    pub fn channels(&self) -> usize {
        self.conversations.lock().map_or(0, |c| c.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_hear_their_conversation_only_and_channels_go_with_them() {
        let feed = ConversationFeed::default();
        let (tenant, a, b) = (
            TenantId::new(),
            ConversationId::new(),
            ConversationId::new(),
        );
        let mut on_a = feed.subscribe(&tenant, &a);
        let mut changes = feed.subscribe_tenant(&tenant);
        feed.publish(&tenant, &b, FeedItem::Typing { name: "B".into() });
        feed.publish(&tenant, &a, FeedItem::Typing { name: "A".into() });
        match on_a.recv().await.unwrap() {
            FeedItem::Typing { name } => assert_eq!(name, "A"),
            other => panic!("{other:?}"),
        }
        assert_eq!(changes.recv().await.unwrap(), b);
        assert_eq!(changes.recv().await.unwrap(), a);
        // Another tenant's follower hears nothing of this one's.
        let mut other = feed.subscribe_tenant(&TenantId::new());
        feed.publish(&tenant, &a, FeedItem::Typing { name: "A".into() });
        assert!(other.try_recv().is_err());
        drop(on_a);
        feed.publish(&tenant, &a, FeedItem::Typing { name: "A".into() });
        assert_eq!(
            feed.channels(),
            0,
            "the channel went with its last follower"
        );
        // A follower that leaves without anything published releases it too.
        let quiet = feed.subscribe(&tenant, &b);
        assert_eq!(feed.channels(), 1);
        feed.release(&tenant, &b);
        assert_eq!(feed.channels(), 1, "still followed");
        drop(quiet);
        feed.release(&tenant, &b);
        assert_eq!(feed.channels(), 0);
    }
}
