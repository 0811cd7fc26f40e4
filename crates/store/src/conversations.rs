//! Conversations and messages, with keyset pagination and full-text search.

use async_trait::async_trait;
use frontdesk_core::conversation::{
    excerpt, Conversation, ConversationPatch, ConversationQuery, Cursor, Message, MessageQuery, MessageRole, NewMessage,
    Page, Usage, PREVIEW_CHARS, TITLE_CHARS,
};
use frontdesk_core::id::{AgentId, ConversationId, MessageId, TenantId};
use frontdesk_core::store::{ConversationStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::sql::{backend, bad_value, col, db_error, id_col, id_col_opt, json_col, to_json, ts, ts_opt, Bind, Statement};
use crate::{Dialect, SqlStore};

const COLUMNS: &str = "c.id, c.tenant_id, c.agent_id, c.end_user_id, c.title, c.preview, c.message_count, c.last_message_at, \
    c.activity_at, c.archived, c.metadata, c.created_at, c.updated_at";

const MESSAGE_COLUMNS: &str = "id, conversation_id, parent_id, seq, role, content, model, finish_reason, prompt_tokens, \
    completion_tokens, total_tokens, latency_ms, created_at";

fn conversation_row(row: &AnyRow) -> StoreResult<Conversation> {
    let archived: i64 = col(row, "archived")?;
    Ok(Conversation {
        id: id_col(row, "id", ConversationId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        agent_id: id_col(row, "agent_id", AgentId::parse)?,
        end_user_id: col(row, "end_user_id")?,
        title: col(row, "title")?,
        preview: col(row, "preview")?,
        message_count: col(row, "message_count")?,
        last_message_at: ts_opt(row, "last_message_at")?,
        archived: archived != 0,
        metadata: json_col(row, "metadata")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn message_row(row: &AnyRow) -> StoreResult<Message> {
    let role: String = col(row, "role")?;
    let prompt: Option<i64> = col(row, "prompt_tokens")?;
    let completion: Option<i64> = col(row, "completion_tokens")?;
    let total: Option<i64> = col(row, "total_tokens")?;
    let usage = match (prompt, completion, total) {
        (None, None, None) => None,
        (p, c, t) => Some(Usage {
            prompt_tokens: p.unwrap_or(0),
            completion_tokens: c.unwrap_or(0),
            total_tokens: t.unwrap_or(p.unwrap_or(0) + c.unwrap_or(0)),
        }),
    };
    Ok(Message {
        id: id_col(row, "id", MessageId::parse)?,
        conversation_id: id_col(row, "conversation_id", ConversationId::parse)?,
        parent_id: id_col_opt(row, "parent_id", MessageId::parse)?,
        seq: col(row, "seq")?,
        role: MessageRole::parse(&role).map_err(|e| bad_value("role", e))?,
        content: json_col(row, "content")?,
        model: col(row, "model")?,
        finish_reason: col(row, "finish_reason")?,
        usage,
        latency_ms: col(row, "latency_ms")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Words of a search, lowercased, split on anything that is not a letter or digit, so that
/// no operator syntax of FTS5 or `to_tsquery` can be injected.
fn search_terms(search: &str) -> Vec<String> {
    search
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(16)
        .map(str::to_lowercase)
        .collect()
}

/// All words must match; the last one may be a prefix (search as you type).
fn match_expression(dialect: Dialect, terms: &[String]) -> String {
    let last = terms.len().saturating_sub(1);
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(idx, term)| match (dialect, idx == last) {
            (Dialect::Sqlite, false) => format!("\"{term}\""),
            (Dialect::Sqlite, true) => format!("\"{term}\"*"),
            (Dialect::Postgres, false) => term.clone(),
            (Dialect::Postgres, true) => format!("{term}:*"),
        })
        .collect();
    match dialect {
        Dialect::Sqlite => parts.join(" "),
        Dialect::Postgres => parts.join(" & "),
    }
}

#[async_trait]
impl ConversationStore for SqlStore {
    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO conversations (id, tenant_id, agent_id, end_user_id, title, preview, message_count, last_message_at, \
             activity_at, archived, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(conversation.id.as_str())
        .bind(conversation.tenant_id.as_str())
        .bind(conversation.agent_id.as_str())
        .bind(conversation.end_user_id.as_deref())
        .bind(conversation.title.as_deref())
        .bind(conversation.preview.as_deref())
        .bind(conversation.message_count)
        .bind(conversation.last_message_at.map(Timestamp::as_millis))
        .bind(conversation.last_message_at.unwrap_or(conversation.created_at).as_millis())
        .bind(i64::from(conversation.archived))
        .bind(to_json(&conversation.metadata)?)
        .bind(conversation.created_at.as_millis())
        .bind(conversation.updated_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(|e| db_error(e, "id"))?;
        Ok(())
    }

    async fn get_conversation(&self, tenant: &TenantId, conversation: &ConversationId) -> StoreResult<Conversation> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM conversations c WHERE c.tenant_id = $1 AND c.id = $2 AND c.deleted_at IS NULL"
        ))
        .bind(tenant.as_str())
        .bind(conversation.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
        conversation_row(&row)
    }

    async fn list_conversations(&self, tenant: &TenantId, query: &ConversationQuery) -> StoreResult<Page<Conversation>> {
        let mut sql = Statement::new(&format!("SELECT {COLUMNS} FROM conversations c WHERE c.tenant_id = "));
        let tenant_arg = sql.arg(Bind::Text(Some(tenant.as_str().to_owned())));
        sql.push(&tenant_arg);
        sql.push(" AND c.deleted_at IS NULL");
        if let Some(agent) = &query.agent_id {
            let arg = sql.arg(Bind::Text(Some(agent.as_str().to_owned())));
            sql.push(&format!(" AND c.agent_id = {arg}"));
        }
        if let Some(archived) = query.archived {
            let arg = sql.arg(Bind::Int(Some(i64::from(archived))));
            sql.push(&format!(" AND c.archived = {arg}"));
        }
        if let Some(end_user) = &query.end_user_id {
            let arg = sql.arg(Bind::Text(Some(end_user.clone())));
            sql.push(&format!(" AND c.end_user_id = {arg}"));
        }
        if let Some(search) = &query.search {
            let terms = search_terms(search);
            if terms.is_empty() {
                return Ok(Page { items: Vec::new(), next: None });
            }
            let arg = sql.arg(Bind::Text(Some(match_expression(self.dialect, &terms))));
            match self.dialect {
                Dialect::Sqlite => sql.push(&format!(
                    " AND (c.pk IN (SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH {arg}) \
                     OR c.id IN (SELECT m.conversation_id FROM messages_fts f JOIN messages m ON m.pk = f.rowid \
                     WHERE messages_fts MATCH {arg} AND m.tenant_id = {tenant_arg}))"
                )),
                Dialect::Postgres => sql.push(&format!(
                    " AND (to_tsvector('simple', coalesce(c.title, '')) @@ to_tsquery('simple', {arg}) \
                     OR c.id IN (SELECT m.conversation_id FROM messages m WHERE m.tenant_id = {tenant_arg} \
                     AND to_tsvector('simple', m.text) @@ to_tsquery('simple', {arg})))"
                )),
            }
        }
        if let Some(after) = &query.after {
            let sort = sql.arg(Bind::Int(Some(after.sort)));
            let id = sql.arg(Bind::Text(Some(after.id.clone())));
            sql.push(&format!(" AND (c.activity_at < {sort} OR (c.activity_at = {sort} AND c.id < {id}))"));
        }
        let limit = sql.arg(Bind::Int(Some(i64::from(query.limit) + 1)));
        sql.push(&format!(" ORDER BY c.activity_at DESC, c.id DESC LIMIT {limit}"));
        let rows = sql.query().fetch_all(&self.pool).await.map_err(backend)?;
        let mut items = Vec::with_capacity(rows.len());
        let mut sorts = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(conversation_row(row)?);
            sorts.push(col::<i64>(row, "activity_at")?);
        }
        let next = if items.len() > query.limit as usize {
            items.truncate(query.limit as usize);
            let last = items.last().map(|c| c.id.as_str().to_owned()).unwrap_or_default();
            Some(Cursor { sort: sorts[query.limit as usize - 1], id: last })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn update_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        patch: &ConversationPatch,
        at: Timestamp,
    ) -> StoreResult<Conversation> {
        let mut sql = Statement::new("UPDATE conversations SET updated_at = ");
        let at_arg = sql.arg(Bind::Int(Some(at.as_millis())));
        sql.push(&at_arg);
        if let Some(title) = &patch.title {
            let arg = sql.arg(Bind::Text(title.clone()));
            sql.push(&format!(", title = {arg}"));
        }
        if let Some(archived) = patch.archived {
            let arg = sql.arg(Bind::Int(Some(i64::from(archived))));
            sql.push(&format!(", archived = {arg}"));
        }
        if let Some(metadata) = &patch.metadata {
            let arg = sql.arg(Bind::Text(Some(to_json(metadata)?)));
            sql.push(&format!(", metadata = {arg}"));
        }
        let tenant_arg = sql.arg(Bind::Text(Some(tenant.as_str().to_owned())));
        let id_arg = sql.arg(Bind::Text(Some(conversation.as_str().to_owned())));
        sql.push(&format!(" WHERE tenant_id = {tenant_arg} AND id = {id_arg} AND deleted_at IS NULL"));
        let done = sql.query().execute(&self.pool).await.map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_conversation(tenant, conversation).await
    }

    async fn soft_delete_conversation(&self, tenant: &TenantId, conversation: &ConversationId, at: Timestamp) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE conversations SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(tenant.as_str())
        .bind(conversation.as_str())
        .bind(at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn purge_conversation(&self, tenant: &TenantId, conversation: &ConversationId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM messages WHERE tenant_id = $1 AND conversation_id = $2")
            .bind(tenant.as_str())
            .bind(conversation.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let done = sqlx::query("DELETE FROM conversations WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(conversation.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await.map_err(backend)
    }

    async fn append_message(&self, tenant: &TenantId, message: &NewMessage) -> StoreResult<Message> {
        let preview = excerpt(&message.text, PREVIEW_CHARS);
        let title = (message.role == MessageRole::User && !message.text.trim().is_empty())
            .then(|| excerpt(&message.text, TITLE_CHARS));
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let row = sqlx::query(
            "UPDATE conversations SET message_count = message_count + 1, last_message_at = $3, activity_at = $3, \
             updated_at = $3, preview = $4, title = COALESCE(title, $5) \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING message_count",
        )
        .bind(tenant.as_str())
        .bind(message.conversation_id.as_str())
        .bind(message.created_at.as_millis())
        .bind(preview)
        .bind(title)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?
        .ok_or(StoreError::NotFound)?;
        let seq: i64 = row.try_get("message_count").map_err(backend)?;
        let usage = message.usage.as_ref();
        // Without an explicit parent, a message continues from the latest one.
        let row = sqlx::query(
            "INSERT INTO messages (id, tenant_id, conversation_id, seq, parent_id, role, content, text, model, finish_reason, \
             prompt_tokens, completion_tokens, total_tokens, latency_ms, created_at) \
             VALUES ($1, $2, $3, $4, COALESCE($5, (SELECT p.id FROM messages p WHERE p.conversation_id = $3 AND p.seq = $4 - 1)), \
             $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING parent_id",
        )
        .bind(message.id.as_str())
        .bind(tenant.as_str())
        .bind(message.conversation_id.as_str())
        .bind(seq)
        .bind(message.parent_id.as_ref().map(MessageId::as_str))
        .bind(message.role.as_str())
        .bind(to_json(&message.content)?)
        .bind(message.text.as_str())
        .bind(message.model.as_deref())
        .bind(message.finish_reason.as_deref())
        .bind(usage.map(|u| u.prompt_tokens))
        .bind(usage.map(|u| u.completion_tokens))
        .bind(usage.map(|u| u.total_tokens))
        .bind(message.latency_ms)
        .bind(message.created_at.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error(e, "id"))?;
        let parent_id = id_col_opt(&row, "parent_id", MessageId::parse)?;
        tx.commit().await.map_err(backend)?;
        Ok(Message {
            id: message.id.clone(),
            conversation_id: message.conversation_id.clone(),
            parent_id,
            seq,
            role: message.role,
            content: message.content.clone(),
            model: message.model.clone(),
            finish_reason: message.finish_reason.clone(),
            usage: message.usage,
            latency_ms: message.latency_ms,
            created_at: message.created_at,
        })
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        query: &MessageQuery,
    ) -> StoreResult<(Vec<Message>, bool)> {
        let exists = sqlx::query("SELECT 1 AS one FROM conversations WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .bind(tenant.as_str())
            .bind(conversation.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let (order, compare) = if query.newest_first { ("DESC", "<") } else { ("ASC", ">") };
        let mut sql = Statement::new(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = "));
        let tenant_arg = sql.arg(Bind::Text(Some(tenant.as_str().to_owned())));
        let conversation_arg = sql.arg(Bind::Text(Some(conversation.as_str().to_owned())));
        sql.push(&format!("{tenant_arg} AND conversation_id = {conversation_arg}"));
        if let Some(after) = query.after_seq {
            let arg = sql.arg(Bind::Int(Some(after)));
            sql.push(&format!(" AND seq {compare} {arg}"));
        }
        let limit = sql.arg(Bind::Int(Some(i64::from(query.limit) + 1)));
        sql.push(&format!(" ORDER BY seq {order} LIMIT {limit}"));
        let rows = sql.query().fetch_all(&self.pool).await.map_err(backend)?;
        let mut messages = rows.iter().map(message_row).collect::<StoreResult<Vec<_>>>()?;
        let more = messages.len() > query.limit as usize;
        messages.truncate(query.limit as usize);
        Ok((messages, more))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_input_cannot_inject_operators() {
        let cases = [
            ("refund policy", "\"refund\" \"policy\"*", "refund & policy:*"),
            ("NEAR(\"a\" b) OR c*", "\"near\" \"a\" \"b\" \"or\" \"c\"*", "near & a & b & or & c:*"),
            ("l'été", "\"l\" \"été\"*", "l & été:*"),
        ];
        for (input, sqlite, postgres) in cases {
            let terms = search_terms(input);
            assert_eq!(match_expression(Dialect::Sqlite, &terms), sqlite);
            assert_eq!(match_expression(Dialect::Postgres, &terms), postgres);
        }
        assert!(search_terms("!!! ---").is_empty());
    }
}
