//! Conversations and messages, with keyset pagination and full-text search.

use crate::db::{execute, query_one, Commit, IfNone, Row, Stmt};
use crate::search::{Strategy, SEARCH_WINDOW};
use crate::sql::{bad_value, col, id_col, id_col_opt, json_col, json_col_opt, to_json, ts, ts_opt};
use crate::{Dialect, SqlStore};
use async_trait::async_trait;
use frontdesk_core::conversation::{
    excerpt, Conversation, ConversationPatch, ConversationQuery, ConversationStatus, Cursor,
    Message, MessageQuery, MessageRole, NewMessage, Page, Parent, Usage, PREVIEW_CHARS,
    TITLE_CHARS,
};
use frontdesk_core::handoff::Handler;
use frontdesk_core::id::{AgentId, ConversationId, MessageId, TenantId};
use frontdesk_core::run::FinishReason;
use frontdesk_core::store::{ConversationStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::usage::{UsageGroup, UsageRow};
use frontdesk_core::StoreError;

pub(crate) const COLUMNS: &str = "c.id, c.tenant_id, c.agent_id, c.end_user_id, c.title, c.preview, c.message_count, c.last_message_at, \
    c.last_message_id, c.activity_at, c.archived, c.metadata, c.created_at, c.updated_at, c.handler, c.waiting_since, \
    c.assignee, c.event_seq";

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, conversation_id, parent_id, seq, role, content, model, finish_reason, prompt_tokens, \
    completion_tokens, total_tokens, latency_ms, structured, created_at, author";

pub(crate) fn conversation_row(row: &Row) -> StoreResult<Conversation> {
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
        active_message_id: id_col_opt(row, "last_message_id", MessageId::parse)?,
        archived: archived != 0,
        metadata: json_col(row, "metadata")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        handler: Handler::parse(&col::<String>(row, "handler")?),
        waiting_since: ts_opt(row, "waiting_since")?,
        assignee: json_col_opt(row, "assignee")?,
        event_seq: col(row, "event_seq")?,
    })
}

pub(crate) fn message_row(row: &Row) -> StoreResult<Message> {
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
        finish_reason: col::<Option<String>>(row, "finish_reason")?
            .as_deref()
            .and_then(FinishReason::parse),
        usage,
        latency_ms: col(row, "latency_ms")?,
        structured: json_col_opt(row, "structured")?,
        created_at: ts(row, "created_at")?,
        author: json_col_opt(row, "author")?,
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

/// All words must match; the last one, from three characters on, may be a prefix (search as
/// you type). Shorter prefixes would match most of the index and are taken as whole words.
fn match_expression(dialect: Dialect, terms: &[String]) -> String {
    let last = terms.len().saturating_sub(1);
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(
            |(idx, term)| match (dialect, idx == last && term.chars().count() >= 3) {
                (Dialect::Sqlite, false) => format!("\"{term}\""),
                (Dialect::Sqlite, true) => format!("\"{term}\"*"),
                (Dialect::Postgres, false) => term.clone(),
                (Dialect::Postgres, true) => format!("{term}:*"),
            },
        )
        .collect();
    match dialect {
        Dialect::Sqlite => parts.join(" "),
        Dialect::Postgres => parts.join(" & "),
    }
}

/// Appends a message: bump the conversation's counters, then insert the message with the
/// new count as its `seq` and, without an explicit parent, the previous message as parent.
/// `$1` id, `$2` tenant, `$3` conversation, `$4` parent, `$5` time, `$6` preview,
/// `$7` title candidate, `$8` … `$16` the message's other columns, `$19` 1 for a new root.
/// An explicit parent must be a message of the same conversation. A conversation holds at most 1,000,000 messages
/// (SQLite's search index keeps `seq` in 20 bits of its rowids).
const BUMP_COUNTERS: &str = "UPDATE conversations SET message_count = message_count + 1, \
    last_message_at = $5, activity_at = $5, updated_at = $5, preview = COALESCE(NULLIF($6, ''), preview), \
    title = COALESCE(title, $7), previous_message_id = last_message_id, last_message_id = $1 \
    WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL AND message_count < 1000000 \
    AND ($4 IS NULL OR EXISTS (SELECT 1 FROM messages p WHERE p.id = $4 AND p.conversation_id = $3))";
const INSERT_MESSAGE: &str = "INSERT INTO messages (id, tenant_id, conversation_id, seq, parent_id, role, content, \
    text, model, finish_reason, prompt_tokens, completion_tokens, total_tokens, latency_ms, structured, created_at, author) \
    SELECT $1, $2, $3, c.message_count, CASE WHEN $19 = 1 THEN NULL ELSE COALESCE($4, c.previous_message_id) END, \
    $8, $9, $10, $11, $12, $13, $14, $15, $16, $20, $5, $22 FROM";
/// Adds an answer's tokens to its tenant's month (`$17`, `$18`); nothing without usage.
const COUNT_USAGE: &str =
    "INSERT INTO usage_counters (tenant_id, period, total_tokens) SELECT $2, $17, $18";
const COUNT_USAGE_CONFLICT: &str = "ON CONFLICT (tenant_id, period) \
    DO UPDATE SET total_tokens = usage_counters.total_tokens + excluded.total_tokens";
/// Counts the message (and an answer's tokens) in the dashboard's daily rollup, under its
/// day (`$21`), the conversation's agent and the model (`$11`, empty for none).
const COUNT_DAY: &str = "INSERT INTO daily_activity (tenant_id, day, agent_id, model, messages, answers, \
    guardrail_answers, prompt_tokens, completion_tokens, total_tokens) SELECT $2, $21, c.agent_id, COALESCE($11, ''), 1, \
    CASE WHEN $12 IS NULL THEN 0 ELSE 1 END, CASE WHEN $12 = 'content_filter' THEN 1 ELSE 0 END, \
    COALESCE($13, 0), COALESCE($14, 0), COALESCE($15, 0) FROM";
const COUNT_DAY_CONFLICT: &str = "ON CONFLICT (tenant_id, day, agent_id, model) DO UPDATE SET \
    messages = daily_activity.messages + 1, answers = daily_activity.answers + excluded.answers, \
    guardrail_answers = daily_activity.guardrail_answers + excluded.guardrail_answers, \
    prompt_tokens = daily_activity.prompt_tokens + excluded.prompt_tokens, \
    completion_tokens = daily_activity.completion_tokens + excluded.completion_tokens, \
    total_tokens = daily_activity.total_tokens + excluded.total_tokens";

/// The UTC day of a timestamp, `YYYY-MM-DD`, as the rollup keys it.
pub(crate) fn day_key(at: Timestamp) -> String {
    at.to_rfc3339().chars().take(10).collect()
}

/// The query of a conversation list: the filters, keyset paging and a search (the
/// conversations whose title or messages match, found as `strategy` says).
fn list_sql(
    dialect: Dialect,
    tenant: &TenantId,
    query: &ConversationQuery,
    search: Option<&[String]>,
    strategy: Strategy,
) -> Stmt {
    let mut sql = Stmt::new("");
    let tenant_arg = sql.bind(tenant.as_str());
    let mut filters = format!("c.tenant_id = {tenant_arg} AND c.deleted_at IS NULL");
    if let Some(agent) = &query.agent_id {
        let arg = sql.bind(agent.as_str());
        filters.push_str(&format!(" AND c.agent_id = {arg}"));
    }
    if let Some(archived) = query.archived {
        let arg = sql.bind(archived);
        filters.push_str(&format!(" AND c.archived = {arg}"));
    }
    if let Some(end_user) = &query.end_user_id {
        let arg = sql.bind(end_user.as_str());
        filters.push_str(&format!(" AND c.end_user_id = {arg}"));
    }
    if let Some(from) = query.active_from {
        let arg = sql.bind(from.as_millis());
        filters.push_str(&format!(" AND c.activity_at >= {arg}"));
    }
    if let Some(to) = query.active_to {
        let arg = sql.bind(to.as_millis());
        filters.push_str(&format!(" AND c.activity_at < {arg}"));
    }
    // Each from a partial index of its own (runs failed or paused, answers stopped).
    match query.status {
        Some(ConversationStatus::Failed) => filters.push_str(&format!(
            " AND c.id IN (SELECT r.conversation_id FROM runs r WHERE r.tenant_id = {tenant_arg} AND r.status = 'failed')"
        )),
        Some(ConversationStatus::AwaitingApproval) => filters.push_str(&format!(
            " AND c.id IN (SELECT r.conversation_id FROM runs r WHERE r.tenant_id = {tenant_arg} AND r.status = 'awaiting_approval')"
        )),
        Some(ConversationStatus::GuardrailTripped) => filters.push_str(&format!(
            " AND c.id IN (SELECT m.conversation_id FROM messages m WHERE m.tenant_id = {tenant_arg} AND m.finish_reason = 'content_filter')"
        )),
        None => {}
    }
    if query.waiting {
        filters.push_str(" AND c.waiting_since IS NOT NULL");
    }
    if let Some(after) = &query.after {
        let sort = sql.bind(after.sort);
        let id = sql.bind(after.id.as_str());
        filters.push_str(&if query.waiting {
            format!(" AND (c.waiting_since, c.id) > ({sort}, {id})")
        } else {
            format!(" AND (c.activity_at, c.id) < ({sort}, {id})")
        });
    }
    // Waiting: the longest waiting first.
    let order = if query.waiting {
        "ORDER BY c.waiting_since ASC, c.id ASC"
    } else {
        "ORDER BY c.activity_at DESC, c.id DESC"
    };
    let limit = sql.bind(i64::from(query.limit) + 1);
    let Some(terms) = search else {
        sql.push(&format!(
            "SELECT {COLUMNS} FROM conversations c WHERE {filters} {order} LIMIT {limit}"
        ));
        return sql;
    };
    let arg = sql.bind(match_expression(dialect, terms));
    match (dialect, strategy) {
        // The window: the newest conversations, and of the messages only those in their
        // range of rowids (conversations active lately were mostly made lately: a narrow
        // range), each word sought there in its own list.
        (Dialect::Sqlite, Strategy::Window { messages }) => {
            let window = sql.bind(SEARCH_WINDOW);
            let messages = sql.bind(messages);
            sql.push(&format!(
                "WITH w AS (SELECT c.* FROM conversations c WHERE {filters} {order} LIMIT {window}) \
                 SELECT {COLUMNS} FROM w c \
                 WHERE c.pk IN (SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH {arg}) \
                 OR c.pk IN (SELECT rowid >> 20 FROM messages_fts WHERE messages_fts MATCH {messages} \
                 AND rowid BETWEEN (SELECT min(pk) FROM w) << 20 AND ((SELECT max(pk) FROM w) << 20) + 1048575) \
                 {order} LIMIT {limit}"
            ))
        }
        (Dialect::Sqlite, _) => sql.push(&format!(
            "SELECT {COLUMNS} FROM conversations c WHERE {filters} \
             AND (c.pk IN (SELECT rowid FROM conversations_fts WHERE conversations_fts MATCH {arg}) \
             OR c.pk IN (SELECT rowid >> 20 FROM messages_fts WHERE messages_fts MATCH {arg})) {order} LIMIT {limit}"
        )),
        (Dialect::Postgres, _) => sql.push(&format!(
            "SELECT {COLUMNS} FROM conversations c WHERE {filters} \
             AND (c.id IN (SELECT t.id FROM conversations t WHERE t.tenant_id = {tenant_arg} \
             AND to_tsvector('simple', coalesce(t.title, '')) @@ to_tsquery('simple', {arg})) \
             OR c.id IN (SELECT m.conversation_id FROM messages m WHERE m.tenant_id = {tenant_arg} \
             AND to_tsvector('simple', m.text) @@ to_tsquery('simple', {arg}))) {order} LIMIT {limit}"
        )),
    }
    sql
}

/// A page from list rows (one more than `limit` when more follow) and its next cursor.
fn list_page(rows: &[Row], limit: u32, waiting: bool) -> StoreResult<Page<Conversation>> {
    let mut items = Vec::with_capacity(rows.len());
    let mut sorts = Vec::with_capacity(rows.len());
    let sort = if waiting {
        "waiting_since"
    } else {
        "activity_at"
    };
    for row in rows {
        items.push(conversation_row(row)?);
        sorts.push(col::<i64>(row, sort)?);
    }
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        let last = items
            .last()
            .map(|c| c.id.as_str().to_owned())
            .unwrap_or_default();
        Some(Cursor {
            sort: sorts[limit as usize - 1],
            id: last,
        })
    } else {
        None
    };
    Ok(Page { items, next })
}

#[async_trait]
impl ConversationStore for SqlStore {
    async fn insert_conversation(&self, conversation: &Conversation) -> StoreResult<()> {
        let stmt = Stmt::new(
            "INSERT INTO conversations (id, tenant_id, agent_id, end_user_id, title, preview, message_count, last_message_at, \
             activity_at, archived, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .arg(conversation.id.as_str())
        .arg(conversation.tenant_id.as_str())
        .arg(conversation.agent_id.as_str())
        .arg(conversation.end_user_id.as_deref())
        .arg(conversation.title.as_deref())
        .arg(conversation.preview.as_deref())
        .arg(conversation.message_count)
        .arg(conversation.last_message_at.map(Timestamp::as_millis))
        .arg(conversation.last_message_at.unwrap_or(conversation.created_at).as_millis())
        .arg(conversation.archived)
        .arg(to_json(&conversation.metadata)?)
        .arg(conversation.created_at.as_millis())
        .arg(conversation.updated_at.as_millis())
        .unique("id");
        let count = Stmt::new(
            "INSERT INTO daily_activity (tenant_id, day, agent_id, model, conversations) VALUES ($1, $2, $3, '', 1) \
             ON CONFLICT (tenant_id, day, agent_id, model) DO UPDATE SET conversations = daily_activity.conversations + 1",
        )
        .arg(conversation.tenant_id.as_str())
        .arg(day_key(conversation.created_at))
        .arg(conversation.agent_id.as_str());
        self.db.transaction(vec![stmt, count]).await.map(|_| ())
    }

    async fn get_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> StoreResult<Conversation> {
        let stmt = Stmt::new(format!("SELECT {COLUMNS} FROM conversations c WHERE c.tenant_id = $1 AND c.id = $2 AND c.deleted_at IS NULL"))
            .arg(tenant.as_str())
            .arg(conversation.as_str());
        conversation_row(
            &query_one(self.db.as_ref(), stmt)
                .await?
                .ok_or(StoreError::NotFound)?,
        )
    }

    async fn list_conversations(
        &self,
        tenant: &TenantId,
        query: &ConversationQuery,
    ) -> StoreResult<Page<Conversation>> {
        let terms = query.search.as_deref().map(search_terms);
        if terms.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let search = terms.as_deref();
        // A search on SQLite for common words looks in a window of the newest conversations
        // first; when that finds no whole page, the set of matches answers.
        if let (Some(terms), Dialect::Sqlite) = (search, self.dialect) {
            let strategy = self.search_strategy(terms).await?;
            if strategy != Strategy::Set {
                let rows = self
                    .db
                    .query(list_sql(self.dialect, tenant, query, search, strategy))
                    .await?;
                if rows.len() > query.limit as usize {
                    return list_page(&rows, query.limit, query.waiting);
                }
            }
        }
        let rows = self
            .db
            .query(list_sql(self.dialect, tenant, query, search, Strategy::Set))
            .await?;
        list_page(&rows, query.limit, query.waiting)
    }

    async fn update_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        patch: &ConversationPatch,
        at: Timestamp,
    ) -> StoreResult<Conversation> {
        let mut sql = Stmt::new("UPDATE conversations SET updated_at = ");
        let at_arg = sql.bind(at.as_millis());
        sql.push(&at_arg);
        if let Some(title) = &patch.title {
            let arg = sql.bind(title.clone());
            sql.push(&format!(", title = {arg}"));
        }
        if let Some(archived) = patch.archived {
            let arg = sql.bind(archived);
            sql.push(&format!(", archived = {arg}"));
        }
        if let Some(metadata) = &patch.metadata {
            let arg = sql.bind(to_json(metadata)?);
            sql.push(&format!(", metadata = {arg}"));
        }
        let tenant_arg = sql.bind(tenant.as_str());
        let id_arg = sql.bind(conversation.as_str());
        let returning = COLUMNS.replace("c.", "");
        sql.push(&format!(" WHERE tenant_id = {tenant_arg} AND id = {id_arg} AND deleted_at IS NULL RETURNING {returning}"));
        let outcome = execute(self.db.as_ref(), sql).await?;
        conversation_row(outcome.rows.first().ok_or(StoreError::NotFound)?)
    }

    async fn soft_delete_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        at: Timestamp,
    ) -> StoreResult<()> {
        let stmt = Stmt::new("UPDATE conversations SET deleted_at = $3, updated_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .arg(tenant.as_str())
            .arg(conversation.as_str())
            .arg(at.as_millis())
            .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }

    async fn purge_conversation(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> StoreResult<()> {
        let messages =
            Stmt::new("DELETE FROM messages WHERE tenant_id = $1 AND conversation_id = $2")
                .arg(tenant.as_str())
                .arg(conversation.as_str());
        let events = Stmt::new(
            "DELETE FROM conversation_events WHERE tenant_id = $1 AND conversation_id = $2",
        )
        .arg(tenant.as_str())
        .arg(conversation.as_str());
        let row = Stmt::new("DELETE FROM conversations WHERE tenant_id = $1 AND id = $2")
            .arg(tenant.as_str())
            .arg(conversation.as_str())
            .if_none(IfNone::NotFound);
        self.db
            .transaction(vec![messages, events, row])
            .await
            .map(|_| ())
    }

    async fn append_message(
        &self,
        tenant: &TenantId,
        message: &NewMessage,
    ) -> StoreResult<Message> {
        let preview = excerpt(&message.text, PREVIEW_CHARS);
        let title = (message.role == MessageRole::User && !message.text.trim().is_empty())
            .then(|| excerpt(&message.text, TITLE_CHARS));
        let usage = message.usage.as_ref();
        let args = Stmt::new("")
            .arg(message.id.as_str())
            .arg(tenant.as_str())
            .arg(message.conversation_id.as_str())
            .arg(message.parent.message().map(MessageId::as_str))
            .arg(message.created_at.as_millis())
            .arg(preview)
            .arg(title)
            .arg(message.role.as_str())
            .arg(to_json(&message.content)?)
            .arg(message.text.as_str())
            .arg(message.model.as_deref())
            .arg(message.finish_reason.map(FinishReason::as_str))
            .arg(usage.map(|u| u.prompt_tokens))
            .arg(usage.map(|u| u.completion_tokens))
            .arg(usage.map(|u| u.total_tokens))
            .arg(message.latency_ms)
            .arg(message.created_at.month_key())
            .arg(usage.map(|u| u.total_tokens))
            .arg(i64::from(message.parent == Parent::Root))
            .arg(message.structured.as_ref().map(to_json).transpose()?)
            .arg(day_key(message.created_at))
            .arg(message.author.as_ref().map(to_json).transpose()?)
            .args;
        let with = |sql: String| Stmt {
            sql,
            args: args.clone(),
            unique: "id",
            if_none: IfNone::NotFound,
        };
        let statements = match self.dialect {
            // SQLite runs them on its writer thread: more statements cost no extra round trip.
            Dialect::Sqlite => vec![
                with(BUMP_COUNTERS.to_owned()),
                Stmt {
                    if_none: IfNone::Fine,
                    ..with(format!("{COUNT_USAGE} WHERE $18 IS NOT NULL {COUNT_USAGE_CONFLICT}"))
                },
                Stmt {
                    if_none: IfNone::Fine,
                    ..with(format!("{COUNT_DAY} conversations c WHERE c.tenant_id = $2 AND c.id = $3 {COUNT_DAY_CONFLICT}"))
                },
                with(format!("{INSERT_MESSAGE} conversations c WHERE c.tenant_id = $2 AND c.id = $3 RETURNING seq, parent_id")),
            ],
            // PostgreSQL does it in one statement: one round trip, atomic on its own.
            Dialect::Postgres => vec![with(format!(
                "WITH c AS ({BUMP_COUNTERS} RETURNING message_count, previous_message_id, agent_id), \
                 u AS ({COUNT_USAGE} FROM c WHERE $18 IS NOT NULL {COUNT_USAGE_CONFLICT}), \
                 d AS ({COUNT_DAY} c {COUNT_DAY_CONFLICT}) \
                 {INSERT_MESSAGE} c RETURNING seq, parent_id"
            ))],
        };
        // A run's answer (it carries the run's finish reason) may share a commit with others:
        // its stream only has its end left to send. Anything else (a user's message, a
        // history given with a request) commits at once: a model call waits for it.
        let commit = match message.finish_reason {
            Some(_) => Commit::Soon,
            None => Commit::Now,
        };
        let outcomes = self.db.transaction_with(statements, commit).await?;
        let row = outcomes
            .last()
            .and_then(|o| o.rows.first())
            .ok_or(StoreError::NotFound)?;
        Ok(Message {
            id: message.id.clone(),
            conversation_id: message.conversation_id.clone(),
            parent_id: id_col_opt(row, "parent_id", MessageId::parse)?,
            seq: col(row, "seq")?,
            role: message.role,
            content: message.content.clone(),
            model: message.model.clone(),
            finish_reason: message.finish_reason,
            usage: message.usage,
            latency_ms: message.latency_ms,
            structured: message.structured.clone(),
            created_at: message.created_at,
            author: message.author.clone(),
        })
    }

    async fn usage(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
        group: UsageGroup,
    ) -> StoreResult<Vec<UsageRow>> {
        let key = match (group, self.dialect) {
            (UsageGroup::Day, Dialect::Sqlite) => {
                "strftime('%Y-%m-%d', m.created_at / 1000, 'unixepoch')"
            }
            (UsageGroup::Day, Dialect::Postgres) => {
                "to_char(to_timestamp(m.created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            }
            (UsageGroup::Agent, _) => "c.agent_id",
            (UsageGroup::Model, _) => "COALESCE(m.model, '')",
        };
        let stmt = Stmt::new(format!(
            "SELECT {key} AS key, COALESCE(m.model, '') AS model, \
             CAST(SUM(COALESCE(m.prompt_tokens, 0)) AS BIGINT) AS prompt_tokens, \
             CAST(SUM(COALESCE(m.completion_tokens, 0)) AS BIGINT) AS completion_tokens, \
             CAST(SUM(m.total_tokens) AS BIGINT) AS total_tokens, COUNT(*) AS messages \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.tenant_id = $1 AND m.created_at >= $2 AND m.created_at < $3 AND m.total_tokens IS NOT NULL \
             GROUP BY 1, 2 ORDER BY 1, 2"
        ))
        .arg(tenant.as_str())
        .arg(from.as_millis())
        .arg(to.as_millis());
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok(UsageRow {
                    key: col(row, "key")?,
                    model: col(row, "model")?,
                    prompt_tokens: col(row, "prompt_tokens")?,
                    completion_tokens: col(row, "completion_tokens")?,
                    total_tokens: col(row, "total_tokens")?,
                    messages: col(row, "messages")?,
                })
            })
            .collect()
    }

    async fn tokens_used(&self, tenant: &TenantId, period: &str) -> StoreResult<i64> {
        let stmt = Stmt::new(
            "SELECT total_tokens FROM usage_counters WHERE tenant_id = $1 AND period = $2",
        )
        .arg(tenant.as_str())
        .arg(period);
        match query_one(self.db.as_ref(), stmt).await? {
            Some(row) => col(&row, "total_tokens"),
            None => Ok(0),
        }
    }

    async fn list_messages(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        query: &MessageQuery,
    ) -> StoreResult<(Vec<Message>, bool)> {
        let exists = Stmt::new("SELECT 1 AS one FROM conversations WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL")
            .arg(tenant.as_str())
            .arg(conversation.as_str());
        if query_one(self.db.as_ref(), exists).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let (order, compare) = if query.newest_first {
            ("DESC", "<")
        } else {
            ("ASC", ">")
        };
        let mut sql = Stmt::new(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = "
        ));
        let tenant_arg = sql.bind(tenant.as_str());
        let conversation_arg = sql.bind(conversation.as_str());
        sql.push(&format!(
            "{tenant_arg} AND conversation_id = {conversation_arg}"
        ));
        if let Some(after) = query.after_seq {
            let arg = sql.bind(after);
            sql.push(&format!(" AND seq {compare} {arg}"));
        }
        let limit = sql.bind(i64::from(query.limit) + 1);
        sql.push(&format!(" ORDER BY seq {order} LIMIT {limit}"));
        let mut messages = self
            .db
            .query(sql)
            .await?
            .iter()
            .map(message_row)
            .collect::<StoreResult<Vec<_>>>()?;
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
            (
                "refund policy",
                "\"refund\" \"policy\"*",
                "refund & policy:*",
            ),
            (
                "NEAR(\"a\" b) OR c*",
                "\"near\" \"a\" \"b\" \"or\" \"c\"",
                "near & a & b & or & c",
            ),
            ("l'été", "\"l\" \"été\"*", "l & été:*"),
            ("to be", "\"to\" \"be\"", "to & be"),
        ];
        for (input, sqlite, postgres) in cases {
            let terms = search_terms(input);
            assert_eq!(match_expression(Dialect::Sqlite, &terms), sqlite);
            assert_eq!(match_expression(Dialect::Postgres, &terms), postgres);
        }
        assert!(search_terms("!!! ---").is_empty());
    }
}
