//! Runs that ended or paused: steps and events as JSON arrays, and a paused run's state.

use async_trait::async_trait;
use frontdesk_core::conversation::Usage;
use frontdesk_core::id::{ConversationId, RunId, TenantId};
use frontdesk_core::run::{RunRecord, RunStatus};
use frontdesk_core::store::{RunStore, StoreResult};
use frontdesk_core::time::Timestamp;
use frontdesk_core::usage::{Activity, DailyRow, RunSample, RUN_SAMPLE};
use frontdesk_core::StoreError;

use crate::db::{execute, execute_with, query_one, Commit, Stmt};
use crate::sql::{bad_value, col, id_col, json_col, json_col_opt, to_json, ts, ts_opt};
use crate::SqlStore;

/// The run of a conversation that waits for an approval (the partial index
/// `runs_paused_conversation` answers it).
pub(crate) const PAUSED_RUN_OF: &str = "SELECT id FROM runs WHERE tenant_id = $1 AND conversation_id = $2 AND status = 'awaiting_approval' LIMIT 1";

/// How long a claim on a paused run holds: the longest run (its time budget) and then some.
const CLAIM_SECS: u64 = 3_600 + 600;

/// The columns a list of runs reads: all but the events.
const LISTED_COLUMNS: &str =
    "id, tenant_id, conversation_id, status, agent, model, prompt_tokens, \
    completion_tokens, total_tokens, steps, state, expires_at, created_at, completed_at";

/// The list of a tenant's runs, by state. The paused ones are named in the SQL, so their
/// partial index serves the list; another state is `$3`.
fn list_runs_sql(status: Option<RunStatus>) -> String {
    let filter = match status {
        None => "",
        Some(RunStatus::AwaitingApproval) => "AND status = 'awaiting_approval'",
        Some(_) => "AND status = $3",
    };
    format!(
        "SELECT {LISTED_COLUMNS} FROM runs WHERE tenant_id = $1 {filter} \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    )
}

/// A run from its row; without `events` when the row has none (a list).
fn run_row(row: &crate::db::Row, with_events: bool) -> StoreResult<RunRecord> {
    let status: String = col(row, "status")?;
    Ok(RunRecord {
        id: id_col(row, "id", RunId::parse)?,
        tenant_id: id_col(row, "tenant_id", TenantId::parse)?,
        conversation_id: id_col(row, "conversation_id", ConversationId::parse)?,
        status: RunStatus::parse(&status).ok_or_else(|| {
            bad_value(
                "status",
                frontdesk_core::Error::invalid("status", "unknown run status"),
            )
        })?,
        agent: col(row, "agent")?,
        model: col(row, "model")?,
        usage: Usage {
            prompt_tokens: col(row, "prompt_tokens")?,
            completion_tokens: col(row, "completion_tokens")?,
            total_tokens: col(row, "total_tokens")?,
        },
        steps: json_col(row, "steps")?,
        events: if with_events {
            json_col(row, "events")?
        } else {
            Vec::new()
        },
        state: json_col_opt(row, "state")?,
        expires_at: ts_opt(row, "expires_at")?,
        created_at: ts(row, "created_at")?,
        completed_at: ts(row, "completed_at")?,
    })
}

#[async_trait]
impl RunStore for SqlStore {
    async fn save_run(&self, run: &RunRecord) -> StoreResult<()> {
        let stmt = Stmt::new(
            "INSERT INTO runs (id, tenant_id, conversation_id, status, model, prompt_tokens, completion_tokens, \
             total_tokens, events, created_at, completed_at, agent, steps, state, expires_at, first_token_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, model = excluded.model, \
             prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, \
             total_tokens = excluded.total_tokens, events = excluded.events, completed_at = excluded.completed_at, \
             steps = excluded.steps, state = excluded.state, expires_at = excluded.expires_at, \
             first_token_ms = excluded.first_token_ms, claimed_until = NULL \
             WHERE runs.tenant_id = excluded.tenant_id",
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
        .arg(run.agent.as_str())
        .arg(to_json(&run.steps)?)
        .arg(run.state.as_ref().map(to_json).transpose()?)
        .arg(run.expires_at.map(|t| t.as_millis()))
        .arg(run.first_token_ms())
        .unique("run");
        // A run id of another tenant's run changes nothing (the upsert's WHERE): say so.
        // Nothing waits on a run's record but the end of its stream: it may share a commit.
        match execute_with(self.db.as_ref(), stmt, Commit::Soon)
            .await?
            .affected
        {
            0 => Err(StoreError::Conflict("run")),
            _ => Ok(()),
        }
    }

    async fn get_run(&self, tenant: &TenantId, run: &RunId) -> StoreResult<RunRecord> {
        let stmt = Stmt::new("SELECT * FROM runs WHERE tenant_id = $1 AND id = $2")
            .arg(tenant.as_str())
            .arg(run.as_str());
        let row = query_one(self.db.as_ref(), stmt)
            .await?
            .ok_or(StoreError::NotFound)?;
        run_row(&row, true)
    }

    async fn list_runs(
        &self,
        tenant: &TenantId,
        status: Option<RunStatus>,
        limit: u32,
    ) -> StoreResult<Vec<RunRecord>> {
        let stmt = Stmt::new(list_runs_sql(status))
            .arg(tenant.as_str())
            .arg(i64::from(limit));
        let stmt = match status {
            Some(status) if status != RunStatus::AwaitingApproval => stmt.arg(status.as_str()),
            _ => stmt,
        };
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| run_row(row, false))
            .collect()
    }

    async fn activity(
        &self,
        tenant: &TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> StoreResult<Activity> {
        let rows = Stmt::new(
            "SELECT day, agent_id, model, conversations, messages, answers, guardrail_answers, prompt_tokens, \
             completion_tokens, total_tokens FROM daily_activity \
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY day, agent_id, model",
        )
        .arg(tenant.as_str())
        .arg(crate::conversations::day_key(from))
        // The day of the range's last millisecond (`to` is exclusive).
        .arg(crate::conversations::day_key(Timestamp::from_millis(
            to.as_millis() - 1,
        )));
        let runs = Stmt::new(
            "SELECT status, completed_at - created_at AS ms, first_token_ms FROM runs \
             WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
             ORDER BY created_at DESC LIMIT $4",
        )
        .arg(tenant.as_str())
        .arg(from.as_millis())
        .arg(to.as_millis())
        .arg(i64::from(RUN_SAMPLE));
        let rows = self
            .db
            .query(rows)
            .await?
            .iter()
            .map(|row| {
                Ok(DailyRow {
                    day: col(row, "day")?,
                    agent_id: col(row, "agent_id")?,
                    model: col(row, "model")?,
                    conversations: col(row, "conversations")?,
                    messages: col(row, "messages")?,
                    answers: col(row, "answers")?,
                    guardrail_answers: col(row, "guardrail_answers")?,
                    prompt_tokens: col(row, "prompt_tokens")?,
                    completion_tokens: col(row, "completion_tokens")?,
                    total_tokens: col(row, "total_tokens")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let mut sample = RunSample::default();
        for row in self.db.query(runs).await? {
            let status: String = col(&row, "status")?;
            sample.runs += 1;
            match status.as_str() {
                "failed" => sample.failed += 1,
                "completed" => sample.durations_ms.push(col::<i64>(&row, "ms")?.max(0)),
                _ => {}
            }
            if let Some(ms) = col::<Option<i64>>(&row, "first_token_ms")? {
                sample.first_token_ms.push(ms);
            }
        }
        Ok(Activity { rows, runs: sample })
    }

    async fn conversation_runs(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<RunRecord>> {
        let stmt = Stmt::new(format!(
            "SELECT {LISTED_COLUMNS} FROM runs WHERE tenant_id = $1 AND conversation_id = $2 \
             ORDER BY created_at, id LIMIT $3"
        ))
        .arg(tenant.as_str())
        .arg(conversation.as_str())
        .arg(i64::from(limit));
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| run_row(row, false))
            .collect()
    }

    async fn claim_paused_run(
        &self,
        tenant: &TenantId,
        run: &RunId,
        now: Timestamp,
        expired: bool,
    ) -> StoreResult<bool> {
        let when = if expired {
            "expires_at < $3"
        } else {
            "(expires_at IS NULL OR expires_at >= $3)"
        };
        let stmt = Stmt::new(format!(
            "UPDATE runs SET status = 'running', claimed_until = $4 WHERE tenant_id = $1 AND id = $2 \
             AND status = 'awaiting_approval' AND {when}"
        ))
        .arg(tenant.as_str())
        .arg(run.as_str())
        .arg(now.as_millis())
        .arg(now.plus_secs(CLAIM_SECS).as_millis());
        Ok(execute(self.db.as_ref(), stmt).await?.affected == 1)
    }

    async fn paused_run_of(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
    ) -> StoreResult<Option<RunId>> {
        let stmt = Stmt::new(PAUSED_RUN_OF)
            .arg(tenant.as_str())
            .arg(conversation.as_str());
        match query_one(self.db.as_ref(), stmt).await? {
            Some(row) => Ok(Some(id_col(&row, "id", RunId::parse)?)),
            None => Ok(None),
        }
    }

    async fn abandoned_claims(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, RunId)>> {
        let stmt = Stmt::new(
            "SELECT tenant_id, id FROM runs WHERE status = 'running' AND claimed_until < $1 \
             ORDER BY claimed_until LIMIT $2",
        )
        .arg(now.as_millis())
        .arg(i64::from(limit));
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    id_col(row, "tenant_id", TenantId::parse)?,
                    id_col(row, "id", RunId::parse)?,
                ))
            })
            .collect()
    }

    async fn expired_approvals(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, RunId)>> {
        let stmt = Stmt::new(
            "SELECT tenant_id, id FROM runs WHERE status = 'awaiting_approval' AND expires_at < $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .arg(now.as_millis())
        .arg(i64::from(limit));
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    id_col(row, "tenant_id", TenantId::parse)?,
                    id_col(row, "id", RunId::parse)?,
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use frontdesk_core::store::BaseStore;

    /// Asking for a conversation's paused run reads the index of paused runs only, not
    /// every run the conversation had.
    #[tokio::test]
    async fn the_paused_run_of_a_conversation_is_found_through_its_index() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("plan.db").display());
        let store = SqlStore::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let plan_uses = |stmt: Stmt, index: &'static str| {
            let store = &store;
            async move {
                let plan = store.db().query(stmt).await.unwrap();
                let details: Vec<String> =
                    plan.iter().map(|row| col(row, "detail").unwrap()).collect();
                assert!(
                    details
                        .iter()
                        .any(|d| d.contains(&format!("USING INDEX {index}"))),
                    "{details:?}"
                );
            }
        };
        plan_uses(
            Stmt::new(format!("EXPLAIN QUERY PLAN {PAUSED_RUN_OF}"))
                .arg("t")
                .arg("c"),
            "runs_paused_conversation",
        )
        .await;
        // The tenant's paused runs, newest first, come from their own index, in its order.
        let paused = list_runs_sql(Some(RunStatus::AwaitingApproval));
        plan_uses(
            Stmt::new(format!("EXPLAIN QUERY PLAN {paused}"))
                .arg("t")
                .arg(10),
            "runs_paused_tenant",
        )
        .await;
        store.close().await;
    }
}
