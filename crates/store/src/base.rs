//! Migrations, readiness, and operator settings.

use async_trait::async_trait;
use frontdesk_core::store::{BaseStore, StoreResult};

use crate::db::{execute, query_one, Stmt};
use crate::{Dialect, SqlStore};

/// `(version, name, SQLite SQL, PostgreSQL SQL)` of every schema change, in order.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "core",
        include_str!("migrations/sqlite_0001_core.sql"),
        include_str!("migrations/postgres_0001_core.sql"),
    ),
    (
        2,
        "branches_runs_credentials",
        include_str!("migrations/sqlite_0002_branches_runs_credentials.sql"),
        include_str!("migrations/postgres_0002_branches_runs_credentials.sql"),
    ),
    (
        3,
        "agent_runtime",
        include_str!("migrations/sqlite_0003_agent_runtime.sql"),
        include_str!("migrations/postgres_0003_agent_runtime.sql"),
    ),
    (
        4,
        "run_claims",
        include_str!("migrations/sqlite_0004_run_claims.sql"),
        include_str!("migrations/postgres_0004_run_claims.sql"),
    ),
    (
        5,
        "paused_run_lookup",
        include_str!("migrations/sqlite_0005_paused_run_lookup.sql"),
        include_str!("migrations/postgres_0005_paused_run_lookup.sql"),
    ),
    (
        6,
        "search_index_at_commit",
        include_str!("migrations/sqlite_0006_search_index_at_commit.sql"),
        include_str!("migrations/postgres_0006_search_index_at_commit.sql"),
    ),
    (
        7,
        "runs_by_status",
        include_str!("migrations/sqlite_0007_runs_by_status.sql"),
        include_str!("migrations/postgres_0007_runs_by_status.sql"),
    ),
    (
        8,
        "dashboard_sessions",
        include_str!("migrations/sqlite_0008_dashboard_sessions.sql"),
        include_str!("migrations/postgres_0008_dashboard_sessions.sql"),
    ),
    (
        9,
        "daily_activity",
        include_str!("migrations/sqlite_0009_daily_activity.sql"),
        include_str!("migrations/postgres_0009_daily_activity.sql"),
    ),
    (
        10,
        "first_token",
        include_str!("migrations/sqlite_0010_first_token.sql"),
        include_str!("migrations/postgres_0010_first_token.sql"),
    ),
    (
        11,
        "search_vocabulary",
        include_str!("migrations/sqlite_0011_search_vocabulary.sql"),
        include_str!("migrations/postgres_0011_search_vocabulary.sql"),
    ),
    (
        12,
        "knowledge_bases",
        include_str!("migrations/sqlite_0012_knowledge_bases.sql"),
        include_str!("migrations/postgres_0012_knowledge_bases.sql"),
    ),
    (
        13,
        "knowledge_documents",
        include_str!("migrations/sqlite_0013_knowledge_documents.sql"),
        include_str!("migrations/postgres_0013_knowledge_documents.sql"),
    ),
    (
        14,
        "human_handoff",
        include_str!("migrations/sqlite_0014_human_handoff.sql"),
        include_str!("migrations/postgres_0014_human_handoff.sql"),
    ),
    (
        15,
        "calls",
        include_str!("migrations/sqlite_0015_calls.sql"),
        include_str!("migrations/postgres_0015_calls.sql"),
    ),
];

impl SqlStore {
    /// Refills the dashboard's daily rollup from the conversations and messages (after rows
    /// were written around the store, as a bulk import or a benchmark's seed does).
    pub async fn rebuild_daily_activity(&self) -> StoreResult<()> {
        let sql = match self.dialect {
            Dialect::Sqlite => include_str!("migrations/sqlite_0009_daily_activity.sql"),
            Dialect::Postgres => include_str!("migrations/postgres_0009_daily_activity.sql"),
        };
        self.db
            .execute_script(&format!("BEGIN; {sql} COMMIT;"))
            .await
    }
}

#[async_trait]
impl BaseStore for SqlStore {
    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn migrate(&self) -> StoreResult<()> {
        let migrations: Vec<(i64, &'static str, &'static str)> = MIGRATIONS
            .iter()
            .map(|(version, name, sqlite, postgres)| match self.dialect {
                Dialect::Sqlite => (*version, *name, *sqlite),
                Dialect::Postgres => (*version, *name, *postgres),
            })
            .collect();
        self.db.migrate(&migrations).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db
            .query(Stmt::new("SELECT 1 AS one"))
            .await
            .map(|_| ())
    }

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row = query_one(
            self.db.as_ref(),
            Stmt::new("SELECT value FROM settings WHERE name = $1").arg(name),
        )
        .await?;
        row.map(|row| row.get("value")).transpose()
    }

    async fn swap_setting(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool> {
        let stmt = match expected {
            None => Stmt::new(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .arg(name)
            .arg(value),
            Some(expected) => {
                Stmt::new("UPDATE settings SET value = $2 WHERE name = $1 AND value = $3")
                    .arg(name)
                    .arg(value)
                    .arg(expected)
            }
        };
        Ok(execute(self.db.as_ref(), stmt).await?.affected > 0)
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        let stmt = Stmt::new("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .arg(name)
            .arg(value);
        execute(self.db.as_ref(), stmt).await.map(|_| ())
    }
}
