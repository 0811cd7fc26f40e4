//! Who handles a conversation, and its timeline: each change of handling is one
//! compare-and-set on the conversation's row, in the transaction that appends its event, so
//! two staff members taking the same conversation cannot both win.

use async_trait::async_trait;
use frontdesk_core::conversation::Conversation;
use frontdesk_core::handoff::{ConversationEvent, EventKind, Expect, Handling, NewEvent};
use frontdesk_core::id::{ConversationId, TenantId, UserId};
use frontdesk_core::store::{HandoffStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;

use crate::conversations::{conversation_row, COLUMNS};
use crate::db::{execute, IfNone, Row, Stmt};
use crate::sql::{bad_value, col, id_col, json_col, json_col_opt, to_json, ts};
use crate::SqlStore;

const EVENT_COLUMNS: &str = "conversation_id, seq, kind, actor, data, created_at";

/// Appends the event with the sequence number the statement before it took.
fn insert_event(
    tenant: &TenantId,
    conversation: &ConversationId,
    event: &NewEvent,
) -> StoreResult<Stmt> {
    Ok(Stmt::new(format!(
        "INSERT INTO conversation_events (tenant_id, conversation_id, seq, kind, actor, data, created_at) \
         SELECT $1, $2, event_seq, $3, $4, $5, $6 FROM conversations WHERE tenant_id = $1 AND id = $2 \
         RETURNING {EVENT_COLUMNS}"
    ))
    .arg(tenant.as_str())
    .arg(conversation.as_str())
    .arg(event.kind.as_str())
    .arg(event.actor.as_ref().map(to_json).transpose()?)
    .arg(to_json(&event.data)?)
    .arg(event.at.as_millis())
    .if_none(IfNone::NotFound))
}

fn event_row(row: &Row) -> StoreResult<ConversationEvent> {
    let kind: String = col(row, "kind")?;
    Ok(ConversationEvent {
        conversation_id: id_col(row, "conversation_id", ConversationId::parse)?,
        seq: col(row, "seq")?,
        kind: EventKind::parse(&kind).ok_or_else(|| {
            bad_value(
                "kind",
                frontdesk_core::Error::invalid("kind", format!("unknown event `{kind}`")),
            )
        })?,
        actor: json_col_opt(row, "actor")?,
        data: json_col(row, "data")?,
        created_at: ts(row, "created_at")?,
    })
}

fn first(outcome: Option<&crate::db::Outcome>) -> StoreResult<&Row> {
    outcome
        .and_then(|o| o.rows.first())
        .ok_or(StoreError::NotFound)
}

#[async_trait]
impl HandoffStore for SqlStore {
    async fn set_handling(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        handling: &Handling,
        expect: &Expect,
        event: &NewEvent,
    ) -> StoreResult<Option<(Conversation, ConversationEvent)>> {
        let mut update = Stmt::new("UPDATE conversations SET handler = ");
        let handler = update.bind(handling.handler.as_str());
        let waiting = update.bind(handling.waiting_since.map(Timestamp::as_millis));
        let until = update.bind(handling.wait_until.map(Timestamp::as_millis));
        let assignee_id = update.bind(handling.assignee.as_ref().map(|a| a.id.clone()));
        let assignee = update.bind(handling.assignee.as_ref().map(to_json).transpose()?);
        let at = update.bind(event.at.as_millis());
        let tenant_arg = update.bind(tenant.as_str());
        let id_arg = update.bind(conversation.as_str());
        let condition = match expect {
            Expect::Agent => "handler = 'agent'".to_owned(),
            Expect::Free { id } => {
                let id = update.bind(id.clone());
                format!("(assignee_id IS NULL OR assignee_id = {id})")
            }
            Expect::WaitingSince(since) => {
                let since = update.bind(since.as_millis());
                format!("waiting_since = {since} AND assignee_id IS NULL")
            }
        };
        let returning = COLUMNS.replace("c.", "");
        update.push(&format!(
            "{handler}, waiting_since = {waiting}, wait_until = {until}, assignee_id = {assignee_id}, assignee = {assignee}, \
             event_seq = event_seq + 1, updated_at = {at} \
             WHERE tenant_id = {tenant_arg} AND id = {id_arg} AND deleted_at IS NULL AND {condition} \
             RETURNING {returning}"
        ));
        let update = update.if_none(IfNone::Conflict("handling"));
        let outcomes = match self
            .db
            .transaction(vec![update, insert_event(tenant, conversation, event)?])
            .await
        {
            Ok(outcomes) => outcomes,
            Err(StoreError::Conflict("handling")) => return Ok(None),
            Err(e) => return Err(e),
        };
        let conversation = conversation_row(first(outcomes.first())?)?;
        let event = event_row(first(outcomes.get(1))?)?;
        Ok(Some((conversation, event)))
    }

    async fn append_event(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        event: &NewEvent,
    ) -> StoreResult<ConversationEvent> {
        let bump = Stmt::new(
            "UPDATE conversations SET event_seq = event_seq + 1 \
             WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .arg(tenant.as_str())
        .arg(conversation.as_str())
        .if_none(IfNone::NotFound);
        let outcomes = self
            .db
            .transaction(vec![bump, insert_event(tenant, conversation, event)?])
            .await?;
        event_row(first(outcomes.get(1))?)
    }

    async fn events_after(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<ConversationEvent>> {
        let stmt = Stmt::new(format!(
            "SELECT {EVENT_COLUMNS} FROM conversation_events \
             WHERE tenant_id = $1 AND conversation_id = $2 AND seq > $3 ORDER BY seq LIMIT $4"
        ))
        .arg(tenant.as_str())
        .arg(conversation.as_str())
        .arg(after)
        .arg(i64::from(limit));
        self.db.query(stmt).await?.iter().map(event_row).collect()
    }

    async fn waits_due(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<Conversation>> {
        let stmt = Stmt::new(format!(
            "SELECT {COLUMNS} FROM conversations c WHERE c.wait_until IS NOT NULL \
             AND c.wait_until <= $1 AND c.deleted_at IS NULL ORDER BY c.wait_until LIMIT $2"
        ))
        .arg(now.as_millis())
        .arg(i64::from(limit));
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(conversation_row)
            .collect()
    }

    async fn set_user_profile(
        &self,
        user: &UserId,
        name: &str,
        avatar_url: Option<&str>,
    ) -> StoreResult<()> {
        let stmt = Stmt::new("UPDATE users SET name = $2, avatar_url = $3 WHERE id = $1")
            .arg(user.as_str())
            .arg(name)
            .arg(avatar_url)
            .if_none(IfNone::NotFound);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }
}
