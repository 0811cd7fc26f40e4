//! PostgreSQL through `sqlx`'s connection pool.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use frontdesk_core::store::StoreResult;
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Column, ConnectOptions, Executor, PgPool, Postgres, Row as _, TypeInfo};

use crate::db::{Cell, Db, Outcome, Row, Stmt, Value};

/// An arbitrary key for the advisory lock that makes concurrent starts migrate once.
const MIGRATION_LOCK: i64 = 0x6672_6f6e_7464;

/// The PostgreSQL database behind a store.
pub struct PgDb {
    pool: PgPool,
}

/// Checks a schema name before it is spliced into SQL.
pub fn check_schema(schema: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !schema.is_empty()
            && schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "schema names are limited to a-z, 0-9 and _"
    );
    Ok(())
}

impl PgDb {
    /// Connects; with `schema`, every connection uses it (created when missing).
    pub async fn connect(url: &str, schema: Option<String>) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .context("invalid PostgreSQL URL")?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        if let Some(schema) = &schema {
            check_schema(schema)?;
            let mut conn = options
                .connect()
                .await
                .context("connecting to PostgreSQL")?;
            conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
                .await?;
        }
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    if let Some(schema) = schema {
                        conn.execute(format!("SET search_path TO {schema}").as_str())
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Self { pool })
    }

    /// Drops a schema (test cleanup).
    pub async fn drop_schema(&self, schema: &str) -> anyhow::Result<()> {
        check_schema(schema)?;
        self.pool
            .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE").as_str())
            .await?;
        Ok(())
    }
}

fn to_store_error(error: sqlx::Error, unique: &'static str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(unique),
        _ => StoreError::Backend(anyhow::Error::new(error)),
    }
}

fn bound<'q>(stmt: &'q Stmt) -> Query<'q, Postgres, PgArguments> {
    let mut query = sqlx::query(&stmt.sql);
    for arg in &stmt.args {
        query = match arg {
            Value::Int(v) => query.bind(*v),
            Value::Float(v) => query.bind(*v),
            Value::Text(v) => query.bind(v.as_deref()),
            Value::Bytes(v) => query.bind(v.as_deref()),
        };
    }
    query
}

fn to_rows(rows: Vec<PgRow>) -> StoreResult<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Arc<[String]> = first
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let kinds: Vec<String> = first
        .columns()
        .iter()
        .map(|c| c.type_info().name().to_owned())
        .collect();
    let decode = |e: sqlx::Error| StoreError::Backend(anyhow::Error::new(e));
    rows.iter()
        .map(|row| {
            let mut cells = Vec::with_capacity(kinds.len());
            for (idx, kind) in kinds.iter().enumerate() {
                let cell = match kind.as_str() {
                    "INT8" => row
                        .try_get::<Option<i64>, _>(idx)
                        .map_err(decode)?
                        .map(Cell::Int),
                    "INT4" => row
                        .try_get::<Option<i32>, _>(idx)
                        .map_err(decode)?
                        .map(|v| Cell::Int(v.into())),
                    "INT2" => row
                        .try_get::<Option<i16>, _>(idx)
                        .map_err(decode)?
                        .map(|v| Cell::Int(v.into())),
                    "BOOL" => row
                        .try_get::<Option<bool>, _>(idx)
                        .map_err(decode)?
                        .map(|v| Cell::Int(v.into())),
                    "FLOAT8" => row
                        .try_get::<Option<f64>, _>(idx)
                        .map_err(decode)?
                        .map(Cell::Float),
                    "FLOAT4" => row
                        .try_get::<Option<f32>, _>(idx)
                        .map_err(decode)?
                        .map(|v| Cell::Float(v.into())),
                    "BYTEA" => row
                        .try_get::<Option<Vec<u8>>, _>(idx)
                        .map_err(decode)?
                        .map(Cell::Bytes),
                    _ => row
                        .try_get::<Option<String>, _>(idx)
                        .map_err(decode)?
                        .map(Cell::Text),
                };
                cells.push(cell.unwrap_or(Cell::Null));
            }
            Ok(Row {
                columns: columns.clone(),
                cells,
            })
        })
        .collect()
}

async fn run_stmt<'c, E>(executor: E, stmt: &Stmt) -> StoreResult<Outcome>
where
    E: Executor<'c, Database = Postgres>,
{
    let outcome = if stmt.returns_rows() {
        let rows = to_rows(
            bound(stmt)
                .fetch_all(executor)
                .await
                .map_err(|e| to_store_error(e, stmt.unique))?,
        )?;
        Outcome {
            affected: rows.len() as u64,
            rows,
        }
    } else {
        let done = bound(stmt)
            .execute(executor)
            .await
            .map_err(|e| to_store_error(e, stmt.unique))?;
        Outcome {
            rows: Vec::new(),
            affected: done.rows_affected(),
        }
    };
    outcome.check(stmt)
}

#[async_trait]
impl Db for PgDb {
    async fn query(&self, stmt: Stmt) -> StoreResult<Vec<Row>> {
        run_stmt(&self.pool, &stmt)
            .await
            .map(|outcome| outcome.rows)
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> StoreResult<Vec<Outcome>> {
        if let [stmt] = stmts.as_slice() {
            // One statement is atomic on its own: save the BEGIN/COMMIT round trips.
            return Ok(vec![run_stmt(&self.pool, stmt).await?]);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| to_store_error(e, "row"))?;
        let mut outcomes = Vec::with_capacity(stmts.len());
        for stmt in &stmts {
            outcomes.push(run_stmt(&mut *tx, stmt).await?);
        }
        tx.commit().await.map_err(|e| to_store_error(e, "row"))?;
        Ok(outcomes)
    }

    async fn migrate(&self, migrations: &[(i64, &'static str, &'static str)]) -> StoreResult<()> {
        let backend = |e: sqlx::Error| StoreError::Backend(anyhow::Error::new(e));
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        let result: StoreResult<()> = async {
            conn.execute(
                "CREATE TABLE IF NOT EXISTS frontdesk_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .await
            .map_err(backend)?;
            for (version, name, sql) in migrations {
                let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM frontdesk_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(backend)?;
                if applied > 0 {
                    continue;
                }
                let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(backend)?;
                tx.execute(*sql).await.with_context(|| format!("migration {version} ({name})")).map_err(StoreError::Backend)?;
                sqlx::query("INSERT INTO frontdesk_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                    .bind(version)
                    .bind(name)
                    .bind(Timestamp::now().as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                tracing::info!(migration.version = version, migration.name = name, "applied migration");
            }
            Ok(())
        }
        .await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        result
    }

    async fn execute_script(&self, sql: &str) -> StoreResult<()> {
        self.pool
            .execute(sql)
            .await
            .map_err(|e| to_store_error(e, "row"))
            .map(|_| ())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
