//! The message tree: the path from the root to a message, the siblings along it, and
//! switching the active branch. Recursive CTEs walk the tree in one statement on both
//! backends; the walk up follows `parent_id` by the unique message id, the walk down uses
//! the `messages_parent` index.

use async_trait::async_trait;
use frontdesk_core::conversation::{Conversation, Message};
use frontdesk_core::id::{ConversationId, MessageId, TenantId};
use frontdesk_core::store::{BranchStore, ConversationStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;

use crate::conversations::{message_row, MESSAGE_COLUMNS};
use crate::db::{execute, query_one, IfNone, Stmt};
use crate::sql::{id_col, id_col_opt};
use crate::SqlStore;

/// The path up from `$3` (or the active message when `$3` is NULL), at most `$4` messages;
/// `$1` tenant, `$2` conversation. `seed` adds a condition to its first message.
fn path_cte(seed: &str) -> String {
    format!(
        "WITH RECURSIVE path(id, parent_id, depth) AS ( \
         SELECT id, parent_id, CAST(1 AS BIGINT) FROM messages WHERE tenant_id = $1 AND conversation_id = $2 \
           AND id = COALESCE($3, (SELECT last_message_id FROM conversations \
                                  WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL)){seed} \
         UNION ALL \
         SELECT m.id, m.parent_id, p.depth + 1 FROM messages m JOIN path p ON m.id = p.parent_id \
         WHERE m.tenant_id = $1 AND p.depth < $4)"
    )
}

fn path_stmt(
    sql: String,
    tenant: &TenantId,
    conversation: &ConversationId,
    leaf: Option<&MessageId>,
    max: u32,
) -> Stmt {
    Stmt::new(sql)
        .arg(tenant.as_str())
        .arg(conversation.as_str())
        .arg(leaf.map(MessageId::as_str))
        .arg(i64::from(max.max(1)))
}

fn path_messages_sql(seed: &str) -> String {
    format!(
        "{} SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND id IN (SELECT id FROM path) ORDER BY seq",
        path_cte(seed)
    )
}

/// The messages of the path up from `leaf` (see [`path_cte`]), oldest first.
pub(crate) fn path_messages(
    tenant: &TenantId,
    conversation: &ConversationId,
    leaf: Option<&MessageId>,
    max: u32,
) -> Stmt {
    path_stmt(path_messages_sql(""), tenant, conversation, leaf, max)
}

/// The active path's messages, oldest first, or none when the active message is `known`
/// (`$5`): the caller has that path already.
pub(crate) fn active_path_unless(
    tenant: &TenantId,
    conversation: &ConversationId,
    max: u32,
    known: Option<&MessageId>,
) -> Stmt {
    let unless = " AND NOT EXISTS (SELECT 1 FROM conversations k \
                  WHERE k.tenant_id = $1 AND k.id = $2 AND k.last_message_id = $5)";
    path_stmt(path_messages_sql(unless), tenant, conversation, None, max)
        .arg(known.map(MessageId::as_str))
}

#[async_trait]
impl BranchStore for SqlStore {
    async fn get_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: &MessageId,
    ) -> StoreResult<Message> {
        let stmt = Stmt::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3 \
             AND EXISTS (SELECT 1 FROM conversations c WHERE c.tenant_id = $1 AND c.id = $2 AND c.deleted_at IS NULL)"
        ))
        .arg(tenant.as_str())
        .arg(conversation.as_str())
        .arg(message.as_str());
        message_row(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn message_path(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        leaf: Option<&MessageId>,
        max: u32,
    ) -> StoreResult<Vec<Message>> {
        self.db
            .query(path_messages(tenant, conversation, leaf, max))
            .await?
            .iter()
            .map(message_row)
            .collect()
    }

    async fn path_siblings(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        leaf: Option<&MessageId>,
        max: u32,
    ) -> StoreResult<Vec<(MessageId, Option<MessageId>)>> {
        let sql = format!(
            "{} SELECT s.id, s.parent_id FROM messages s \
             WHERE s.tenant_id = $1 AND s.conversation_id = $2 \
             AND (s.parent_id IN (SELECT parent_id FROM path WHERE parent_id IS NOT NULL) \
                  OR (s.parent_id IS NULL AND EXISTS (SELECT 1 FROM path WHERE parent_id IS NULL))) \
             ORDER BY s.seq",
            path_cte("")
        );
        self.db
            .query(path_stmt(sql, tenant, conversation, leaf, max))
            .await?
            .iter()
            .map(|row| {
                Ok((
                    id_col(row, "id", MessageId::parse)?,
                    id_col_opt(row, "parent_id", MessageId::parse)?,
                ))
            })
            .collect()
    }

    async fn set_active_message(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        message: &MessageId,
        at: Timestamp,
    ) -> StoreResult<Conversation> {
        let stmt = Stmt::new(
            "UPDATE conversations SET updated_at = $4, last_message_id = ( \
               WITH RECURSIVE below(id, seq) AS ( \
                 SELECT id, seq FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3 \
                 UNION ALL \
                 SELECT m.id, m.seq FROM messages m JOIN below b ON m.parent_id = b.id WHERE m.tenant_id = $1) \
               SELECT id FROM below ORDER BY seq DESC LIMIT 1) \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL \
             AND EXISTS (SELECT 1 FROM messages WHERE tenant_id = $1 AND conversation_id = $2 AND id = $3)",
        )
        .arg(tenant.as_str())
        .arg(conversation.as_str())
        .arg(message.as_str())
        .arg(at.as_millis())
        .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await?;
        self.get_conversation(tenant, conversation).await
    }
}
