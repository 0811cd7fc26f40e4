//! What starting a turn reads, in one call: the statements of several stores' reads, run
//! together by [`Db::query_many`](crate::db::Db::query_many) (on SQLite one hand-off to a
//! reader thread and one snapshot, instead of one hand-off per row).

use async_trait::async_trait;
use frontdesk_core::id::{ConversationId, MessageId, RunId, TenantId};
use frontdesk_core::store::{StoreResult, TurnContext, TurnStore};
use frontdesk_core::StoreError;

use crate::agents::{agent_row, COLUMNS as AGENT_COLUMNS};
use crate::branches::active_path_unless;
use crate::conversations::{conversation_row, message_row, COLUMNS as CONVERSATION_COLUMNS};
use crate::credentials::{sealed_rows, sealed_stmt};
use crate::db::Stmt;
use crate::runs::PAUSED_RUN_OF;
use crate::sql::{col, id_col};
use crate::tenants::tenant_row;
use crate::SqlStore;

#[async_trait]
impl TurnStore for SqlStore {
    async fn turn_context(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        period: &str,
        history: Option<u32>,
        known: Option<&MessageId>,
    ) -> StoreResult<TurnContext> {
        let both = |sql: String| {
            Stmt::new(sql)
                .arg(tenant.as_str())
                .arg(conversation.as_str())
        };
        let mut stmts = vec![
            both(format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations c \
                 WHERE c.tenant_id = $1 AND c.id = $2 AND c.deleted_at IS NULL"
            )),
            Stmt::new(
                "SELECT t.id, t.name, t.monthly_token_quota, t.created_at, \
                 (SELECT u.total_tokens FROM usage_counters u WHERE u.tenant_id = t.id AND u.period = $2) AS tokens_used \
                 FROM tenants t WHERE t.id = $1",
            )
            .arg(tenant.as_str())
            .arg(period),
            sealed_stmt(tenant),
            both(PAUSED_RUN_OF.to_owned()),
            both(format!(
                "SELECT {AGENT_COLUMNS} FROM agents WHERE tenant_id = $1 AND deleted_at IS NULL \
                 AND id = (SELECT c.agent_id FROM conversations c WHERE c.tenant_id = $1 AND c.id = $2)"
            )),
        ];
        if let Some(max) = history {
            stmts.push(active_path_unless(tenant, conversation, max, known));
        }
        let mut results = self.db.query_many(stmts).await?.into_iter();
        let mut next = || results.next().unwrap_or_default();
        let conversation = conversation_row(next().first().ok_or(StoreError::NotFound)?)?;
        let tenant_rows = next();
        let row = tenant_rows.first().ok_or(StoreError::NotFound)?;
        let tenant = tenant_row(row)?;
        let tokens_used: Option<i64> = col(row, "tokens_used")?;
        let sealed_credentials = sealed_rows(&next())?;
        let paused_run = next()
            .first()
            .map(|row| id_col(row, "id", RunId::parse))
            .transpose()?;
        let agent = next().first().map(agent_row).transpose()?;
        let active_path = match history {
            Some(_) => Some(next().iter().map(message_row).collect::<StoreResult<_>>()?),
            None => None,
        };
        Ok(TurnContext {
            conversation,
            tenant,
            tokens_used: tokens_used.unwrap_or(0),
            sealed_credentials,
            paused_run,
            agent,
            active_path,
        })
    }
}
