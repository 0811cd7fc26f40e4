//! Migrations, readiness, and operator settings.

use async_trait::async_trait;
use frontdesk_core::store::{BaseStore, StoreResult};
use frontdesk_core::time::Timestamp;
use sqlx::{Acquire, Executor, Row};

use crate::sql::backend;
use crate::{Dialect, SqlStore};

/// One schema change: a version, a name, and its SQL for each dialect.
struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "core",
    sqlite: include_str!("migrations/sqlite_0001_core.sql"),
    postgres: include_str!("migrations/postgres_0001_core.sql"),
}];

/// An arbitrary key for PostgreSQL's advisory lock, so that concurrent starts migrate once.
const MIGRATION_LOCK: i64 = 0x6672_6f6e_7464;

#[async_trait]
impl BaseStore for SqlStore {
    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_lock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await.map_err(backend)?;
        }
        let result = async {
            conn.execute(
                "CREATE TABLE IF NOT EXISTS frontdesk_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await
            .map_err(backend)?;
            let rows = sqlx::query("SELECT version FROM frontdesk_migrations").fetch_all(&mut *conn).await.map_err(backend)?;
            let applied: Vec<i64> = rows.iter().filter_map(|row| row.try_get::<i64, _>("version").ok()).collect();
            for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
                let sql = match self.dialect {
                    Dialect::Sqlite => migration.sqlite,
                    Dialect::Postgres => migration.postgres,
                };
                let mut tx = conn.begin().await.map_err(backend)?;
                tx.execute(sql).await.map_err(backend)?;
                sqlx::query("INSERT INTO frontdesk_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(migration.version)
                    .bind(migration.name)
                    .bind(Timestamp::now().as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                tracing::info!(migration.version = migration.version, migration.name = migration.name, "applied migration");
            }
            Ok(())
        }
        .await;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT pg_advisory_unlock($1)").bind(MIGRATION_LOCK).execute(&mut *conn).await.map_err(backend)?;
        }
        result
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    async fn get_setting(&self, name: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|row| row.try_get::<String, _>("value")).transpose().map_err(backend)
    }

    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
