//! Finished runs and their events (one JSON array per run).

use async_trait::async_trait;
use frontdesk_core::conversation::Usage;
use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::run::{RunRecord, RunStatus};
use frontdesk_core::store::{RunStore, StoreResult};
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, Stmt};
use crate::sql::{bad_value, col, id_col, json_col, to_json, ts};
use crate::SqlStore;

#[async_trait]
impl RunStore for SqlStore {
    async fn insert_run(&self, run: &RunRecord) -> StoreResult<()> {
        let stmt = Stmt::new(
            "INSERT INTO runs (id, tenant_id, conversation_id, status, model, prompt_tokens, completion_tokens, \
             total_tokens, events, created_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .arg(run.id.as_str())
        .arg(run.tenant_id.as_str())
        .arg(run.conversation_id.as_str())
        .arg(run.status.as_str())
        .arg(run.model.as_str())
        .arg(run.usage.prompt_tokens)
        .arg(run.usage.completion_tokens)
        .arg(run.usage.total_tokens)
        .arg(to_json(&run.events)?)
        .arg(run.created_at.as_millis())
        .arg(run.completed_at.as_millis())
        .unique("run");
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<RunRecord> {
        let stmt = Stmt::new("SELECT * FROM runs WHERE tenant_id = $1 AND id = $2")
            .arg(tenant.as_str())
            .arg(run.as_str());
        let row = query_one(self.db.as_ref(), stmt)
            .await?
            .ok_or(StoreError::NotFound)?;
        let status: String = col(&row, "status")?;
        Ok(RunRecord {
            id: id_col(&row, "id", RunId::parse)?,
            tenant_id: id_col(&row, "tenant_id", TenantId::parse)?,
            conversation_id: id_col(&row, "conversation_id", ConversationId::parse)?,
            status: RunStatus::parse(&status).ok_or_else(|| {
                bad_value(
                    "status",
                    frontdesk_core::Error::invalid("status", "unknown run status"),
                )
            })?,
            model: col(&row, "model")?,
            usage: Usage {
                prompt_tokens: col(&row, "prompt_tokens")?,
                completion_tokens: col(&row, "completion_tokens")?,
                total_tokens: col(&row, "total_tokens")?,
            },
            events: json_col(&row, "events")?,
            created_at: ts(&row, "created_at")?,
            completed_at: ts(&row, "completed_at")?,
        })
    }
}
