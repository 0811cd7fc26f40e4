//! Voice calls: a row per call, its transcript, tool calls and usage as JSON, rewritten as
//! the call goes on.

use async_trait::async_trait;
use frontdesk_core::agent::Agent;
use frontdesk_core::conversation::{ContentPart, Cursor, Page};
use frontdesk_core::id::{AgentId, CallId, ConversationId, MessageId, TenantId};
use frontdesk_core::store::{CallStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::voice::{Call, CallChannel, CallDirection, CallQuery, CallStatus};
use frontdesk_core::StoreError;

use crate::db::{execute, query_one, IfNone, Row, Stmt};
use crate::sql::{bad_value, col, id_col, id_col_opt, json_col, to_json, ts, ts_opt};
use crate::SqlStore;

const COLUMNS: &str =
    "tenant_id, id, agent_id, conversation_id, channel, direction, mode, from_number, \
    to_number, provider_call_id, status, started_at, ended_at, duration_ms, transcript, summary, \
    tool_calls, usage, error, transferred_to";

fn enum_col<T>(row: &Row, column: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let text: String = col(row, column)?;
    parse(&text).ok_or_else(|| {
        bad_value(
            column,
            frontdesk_core::Error::invalid(column, format!("unknown value `{text}`")),
        )
    })
}

fn call_row(row: &Row) -> StoreResult<Call> {
    Ok(Call {
        id: id_col(row, "id", CallId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        agent_id: id_col(row, "agent_id", AgentId::parse)?,
        conversation_id: id_col_opt(row, "conversation_id", ConversationId::parse)?,
        channel: enum_col(row, "channel", CallChannel::parse)?,
        direction: enum_col(row, "direction", CallDirection::parse)?,
        mode: col(row, "mode")?,
        from: col(row, "from_number")?,
        to: col(row, "to_number")?,
        provider_call_id: col(row, "provider_call_id")?,
        status: enum_col(row, "status", CallStatus::parse)?,
        started_at: ts(row, "started_at")?,
        ended_at: ts_opt(row, "ended_at")?,
        duration_ms: col(row, "duration_ms")?,
        transcript: json_col(row, "transcript")?,
        summary: col(row, "summary")?,
        tool_calls: json_col(row, "tool_calls")?,
        usage: json_col(row, "usage")?,
        error: col(row, "error")?,
        transferred_to: col(row, "transferred_to")?,
    })
}

#[async_trait]
impl CallStore for SqlStore {
    async fn insert_call(&self, call: &Call) -> StoreResult<()> {
        let stmt = Stmt::new(format!(
            "INSERT INTO calls ({COLUMNS}, search) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
        ))
        .arg(call.tenant_id.as_str())
        .arg(call.id.as_str())
        .arg(call.agent_id.as_str())
        .arg(call.conversation_id.as_ref().map(|c| c.as_str()))
        .arg(call.channel.as_str())
        .arg(call.direction.as_str())
        .arg(call.mode.as_str())
        .arg(call.from.clone())
        .arg(call.to.clone())
        .arg(call.provider_call_id.clone())
        .arg(call.status.as_str())
        .arg(call.started_at.as_millis())
        .arg(call.ended_at.map(Timestamp::as_millis))
        .arg(call.duration_ms)
        .arg(to_json(&call.transcript)?)
        .arg(call.summary.clone())
        .arg(to_json(&call.tool_calls)?)
        .arg(to_json(&call.usage)?)
        .arg(call.error.clone())
        .arg(call.transferred_to.clone())
        .arg(call.search_text())
        .unique("call");
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn update_call(&self, call: &Call) -> StoreResult<()> {
        let stmt = Stmt::new(
            "UPDATE calls SET conversation_id = $3, status = $4, ended_at = $5, duration_ms = $6, \
             transcript = $7, summary = $8, tool_calls = $9, usage = $10, error = $11, transferred_to = $12, \
             search = $13, provider_call_id = $14, to_number = $15 \
             WHERE tenant_id = $1 AND id = $2",
        )
        .arg(call.tenant_id.as_str())
        .arg(call.id.as_str())
        .arg(call.conversation_id.as_ref().map(|c| c.as_str()))
        .arg(call.status.as_str())
        .arg(call.ended_at.map(Timestamp::as_millis))
        .arg(call.duration_ms)
        .arg(to_json(&call.transcript)?)
        .arg(call.summary.clone())
        .arg(to_json(&call.tool_calls)?)
        .arg(to_json(&call.usage)?)
        .arg(call.error.clone())
        .arg(call.transferred_to.clone())
        .arg(call.search_text())
        .arg(call.provider_call_id.clone())
        .arg(call.to.clone())
        .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn get_call(&self, tenant: &TenantId, id: &CallId) -> StoreResult<Call> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM calls WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant.as_str())
        .arg(id.as_str());
        call_row(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn list_calls(&self, tenant: &TenantId, query: &CallQuery) -> StoreResult<Page<Call>> {
        let mut sql = Stmt::new(format!("SELECT {COLUMNS} FROM calls WHERE tenant_id = "));
        let tenant_arg = sql.bind(tenant.as_str());
        sql.push(&tenant_arg);
        if let Some(agent) = &query.agent_id {
            let arg = sql.bind(agent.as_str());
            sql.push(&format!(" AND agent_id = {arg}"));
        }
        if let Some(status) = query.status {
            let arg = sql.bind(status.as_str());
            sql.push(&format!(" AND status = {arg}"));
        }
        if let Some(channel) = query.channel {
            let arg = sql.bind(channel.as_str());
            sql.push(&format!(" AND channel = {arg}"));
        }
        if let Some(search) = &query.search {
            // A plain substring test (no pattern characters to escape).
            let arg = sql.bind(search.as_str());
            sql.push(&match self.dialect {
                crate::Dialect::Sqlite => format!(" AND instr(search, {arg}) > 0"),
                crate::Dialect::Postgres => format!(" AND strpos(search, {arg}) > 0"),
            });
        }
        if let Some(after) = &query.after {
            let sort = sql.bind(after.sort);
            let id = sql.bind(after.id.as_str());
            sql.push(&format!(" AND (started_at, id) < ({sort}, {id})"));
        }
        let limit = query.limit + 1;
        sql.push(&format!(" ORDER BY started_at DESC, id DESC LIMIT {limit}"));
        let rows = self.db.query(sql).await?;
        let mut items = rows.iter().map(call_row).collect::<StoreResult<Vec<_>>>()?;
        let next = if items.len() > query.limit as usize {
            items.truncate(query.limit as usize);
            items.last().map(|call| Cursor {
                sort: call.started_at.as_millis(),
                id: call.id.to_string(),
            })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn active_calls(&self, tenant: &TenantId) -> StoreResult<u32> {
        let stmt =
            Stmt::new("SELECT COUNT(*) AS n FROM calls WHERE tenant_id = $1 AND status = 'active'")
                .arg(tenant.as_str());
        let row = query_one(self.db.as_ref(), stmt).await?;
        let n: i64 = row.map(|r| col(&r, "n")).transpose()?.unwrap_or(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn fail_stale_calls(&self, before: Timestamp, reason: &str) -> StoreResult<u64> {
        let stmt = Stmt::new(
            "UPDATE calls SET status = 'failed', error = $1 WHERE status = 'active' AND started_at < $2",
        )
        .arg(reason)
        .arg(before.as_millis());
        Ok(execute(self.db.as_ref(), stmt).await?.affected)
    }

    async fn set_provider_call_id(
        &self,
        tenant: &TenantId,
        id: &CallId,
        provider_call_id: &str,
    ) -> StoreResult<()> {
        let stmt = Stmt::new(
            "UPDATE calls SET provider_call_id = $3 WHERE tenant_id = $1 AND id = $2 AND provider_call_id IS NULL",
        )
        .arg(tenant.as_str())
        .arg(id.as_str())
        .arg(provider_call_id);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn phone_agent(&self, agent: &AgentId) -> StoreResult<Agent> {
        let stmt = Stmt::new(format!(
            "SELECT {} FROM agents WHERE id = $1 AND deleted_at IS NULL",
            crate::agents::COLUMNS
        ))
        .arg(agent.as_str());
        crate::agents::agent_row(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn truncate_answer(
        &self,
        tenant: &TenantId,
        message: &MessageId,
        content: &[ContentPart],
        text: &str,
    ) -> StoreResult<()> {
        let stmt = Stmt::new(
            "UPDATE messages SET content = $3, text = $4 WHERE tenant_id = $1 AND id = $2 AND role = 'assistant'",
        )
        .arg(tenant.as_str())
        .arg(message.as_str())
        .arg(to_json(&content)?)
        .arg(text)
        .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }
}
