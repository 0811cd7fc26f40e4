//! frontdesk-store: the `Store` of frontdesk-core on SQLite (the embedded default) and on
//! PostgreSQL, written once against the small [`db::Db`] interface.
//!
//! Invariants:
//! - Every statement that touches tenant data has the tenant id in its `WHERE`.
//! - The SQL is shared between the two backends; the few differences (DDL, full-text
//!   search) are chosen by [`Dialect`]. Placeholders are `$n` in both.
//! - Timestamps are stored as milliseconds since the epoch (`BIGINT`), JSON as `TEXT`,
//!   booleans as `0`/`1`, so every column means the same in both databases.
//! - Writes that belong together run in one transaction (`Db::transaction`).
//! - The store stores what it is given; ids and timestamps come from the domain.
//!
//! It deliberately does not validate input (the domain does) or cache rows.

mod agents;
mod base;
mod branches;
mod calls;
mod conversations;
mod credentials;
pub mod db;
mod handoff;
mod keys;
mod knowledge;
mod passages;
mod postgres;
mod runs;
mod search;
mod sessions;
mod sql;
mod sqlite;
mod tenants;
mod turns;

use std::sync::Arc;

use anyhow::Context;

use crate::db::Db;
use crate::postgres::PgDb;
use crate::sqlite::SqliteDb;

/// The SQL dialect of the database behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The store over SQLite or PostgreSQL.
#[derive(Clone)]
pub struct SqlStore {
    db: Arc<dyn Db>,
    dialect: Dialect,
    postgres: Option<Arc<PgDb>>,
    /// From how many matching messages a search looks in a window first (see `search.rs`).
    window_from: i64,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect)
            .finish()
    }
}

impl SqlStore {
    /// Connects to `sqlite://path` (creating the file and its directory) or `postgres://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            anyhow::ensure!(
                !path.is_empty() && path != ":memory:",
                "an SQLite database needs a file path (sqlite://./data/frontdesk.db)"
            );
            let db = SqliteDb::open(std::path::Path::new(path))
                .context("opening the SQLite database")?;
            return Ok(Self {
                db: Arc::new(db),
                dialect: Dialect::Sqlite,
                window_from: search::WINDOW_FROM,
                postgres: None,
            });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::postgres(url, None).await;
        }
        anyhow::bail!("unsupported database URL: it must start with sqlite:// or postgres://")
    }

    /// Connects to PostgreSQL with every connection's `search_path` set to `schema`, which is
    /// created when missing. Tests use this for one fresh schema per test.
    pub async fn connect_postgres_schema(url: &str, schema: &str) -> anyhow::Result<Self> {
        Self::postgres(url, Some(schema.to_owned())).await
    }

    async fn postgres(url: &str, schema: Option<String>) -> anyhow::Result<Self> {
        let db = Arc::new(PgDb::connect(url, schema).await?);
        Ok(Self {
            db: db.clone(),
            dialect: Dialect::Postgres,
            window_from: search::WINDOW_FROM,
            postgres: Some(db),
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The database interface, for benchmarks that seed in bulk.
    #[doc(hidden)]
    pub fn db(&self) -> &dyn Db {
        self.db.as_ref()
    }

    /// Stops using the database; later calls fail.
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// Drops a PostgreSQL schema made by `connect_postgres_schema` (test cleanup).
    pub async fn drop_postgres_schema(&self, schema: &str) -> anyhow::Result<()> {
        match &self.postgres {
            Some(pg) => pg.drop_schema(schema).await,
            None => anyhow::bail!("not a PostgreSQL store"),
        }
    }
}
