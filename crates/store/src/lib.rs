//! frontdesk-store: the `Store` of frontdesk-core on SQLite (the embedded default) and on
//! PostgreSQL, through one implementation over `sqlx`'s `Any` driver.
//!
//! Invariants:
//! - Every statement that touches tenant data has `tenant_id = $1` in its `WHERE`.
//! - The SQL is shared between the two backends; the few differences (DDL, full-text
//!   search) are chosen by [`Dialect`]. Placeholders are `$n`, which both understand.
//! - Timestamps are stored as milliseconds since the epoch (`BIGINT`), JSON as `TEXT`,
//!   booleans as `0`/`1`, so every column maps to a type both drivers share.
//! - The store stores what it is given; ids and timestamps come from the domain.
//!
//! It deliberately does not validate input (the domain does) or cache anything.

mod agents;
mod base;
mod conversations;
mod keys;
mod sql;
mod tenants;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

/// The SQL dialect of the database behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The store over a connection pool.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore").field("dialect", &self.dialect).finish()
    }
}

impl SqlStore {
    /// Connects to `sqlite://path` (creating the file and its directory) or `postgres://…`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_inner(url, None).await
    }

    /// Connects to PostgreSQL with every connection's `search_path` set to `schema`, which is
    /// created when missing. Tests use this for one fresh schema per test.
    pub async fn connect_postgres_schema(url: &str, schema: &str) -> anyhow::Result<Self> {
        anyhow::ensure!(
            schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "schema names are limited to a-z, 0-9 and _"
        );
        Self::connect_inner(url, Some(schema.to_owned())).await
    }

    async fn connect_inner(url: &str, schema: Option<String>) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            anyhow::bail!("unsupported database URL: it must start with sqlite:// or postgres://");
        };
        let url = match dialect {
            Dialect::Sqlite => sqlite_url(url)?,
            Dialect::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .context("invalid database URL")?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        if let Some(schema) = &schema {
            let mut conn = options.connect().await.context("connecting to PostgreSQL")?;
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str()).await?;
        }
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 8,
                Dialect::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    match dialect {
                        Dialect::Sqlite => {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                            )
                            .await?;
                        }
                        Dialect::Postgres => {
                            if let Some(schema) = schema {
                                conn.execute(format!("SET search_path TO {schema}").as_str()).await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| match dialect {
                Dialect::Sqlite => "opening the SQLite database".to_owned(),
                Dialect::Postgres => "connecting to PostgreSQL".to_owned(),
            })?;
        Ok(Self { pool, dialect })
    }

    /// The connection pool, for benchmarks that seed data in bulk.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Drops a PostgreSQL schema made by `connect_postgres_schema` (test cleanup).
    pub async fn drop_postgres_schema(&self, schema: &str) -> anyhow::Result<()> {
        anyhow::ensure!(schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'), "bad schema name");
        self.pool.execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str()).await?;
        Ok(())
    }
}

/// Makes the SQLite URL create the file (`mode=rwc`) and its parent directory.
fn sqlite_url(url: &str) -> anyhow::Result<String> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("an SQLite database needs a file path (sqlite://./data/frontdesk.db)");
    }
    if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") })
}
