//! The message tree of a conversation: the active branch with its siblings, paths for the
//! model's history, and switching branches.

use std::collections::HashMap;

use super::Service;
use crate::conversation::{BranchMessage, Conversation, Message};
use crate::error::{Error, Result};
use crate::id::{ConversationId, MessageId, TenantId};
use crate::time::Timestamp;

/// The deepest branch read at once; longer conversations show their latest part.
pub const MAX_BRANCH_DEPTH: u32 = 10_000;

impl Service {
    pub async fn get_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: &MessageId,
    ) -> Result<Message> {
        self.store
            .get_message(tenant, conversation, message)
            .await
            .map_err(|e| Error::from_store("message", e))
    }

    /// The path from the root to `leaf` (the active message when `None`), oldest first, at
    /// most the last `max` messages.
    pub async fn message_path(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        leaf: Option<&MessageId>,
        max: u32,
    ) -> Result<Vec<Message>> {
        self.store
            .message_path(tenant, conversation, leaf, max)
            .await
            .map_err(|e| Error::from_store("conversation", e))
    }

    /// The active branch, oldest first, each message with its siblings when it has some.
    pub async fn active_branch(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> Result<Vec<BranchMessage>> {
        let path = self
            .message_path(tenant, conversation, None, MAX_BRANCH_DEPTH)
            .await?;
        if path.is_empty() {
            return Ok(Vec::new());
        }
        let family = self
            .store
            .path_siblings(tenant, conversation, None, MAX_BRANCH_DEPTH)
            .await
            .map_err(|e| Error::from_store("conversation", e))?;
        let mut children: HashMap<Option<MessageId>, Vec<MessageId>> = HashMap::new();
        for (id, parent) in family {
            children.entry(parent).or_default().push(id);
        }
        Ok(path
            .into_iter()
            .map(|message| {
                let sibling_ids = children
                    .get(&message.parent_id)
                    .filter(|ids| ids.len() > 1)
                    .cloned()
                    .unwrap_or_default();
                BranchMessage {
                    message,
                    sibling_ids,
                }
            })
            .collect())
    }

    /// A page of the active branch: oldest first (or newest first), after a `seq`.
    pub async fn branch_page(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        newest_first: bool,
        limit: Option<u32>,
        after_seq: Option<i64>,
    ) -> Result<(Vec<BranchMessage>, bool)> {
        let limit = self.page_size(limit)? as usize;
        let mut branch = self.active_branch(tenant, conversation).await?;
        if newest_first {
            branch.reverse();
        }
        let mut page: Vec<BranchMessage> = branch
            .into_iter()
            .filter(|m| match after_seq {
                None => true,
                Some(after) if newest_first => m.message.seq < after,
                Some(after) => m.message.seq > after,
            })
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        Ok((page, more))
    }

    /// Shows the branch through `message`: its newest message at or below it becomes the
    /// conversation's active message.
    pub async fn set_active_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: &MessageId,
    ) -> Result<Conversation> {
        self.store
            .set_active_message(tenant, conversation, message, Timestamp::now())
            .await
            .map_err(|e| match e {
                crate::StoreError::NotFound => Error::NotFound {
                    resource: "message",
                },
                other => Error::from_store("conversation", other),
            })
    }
}
