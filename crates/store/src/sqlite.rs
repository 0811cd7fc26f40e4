//! SQLite through `rusqlite`: one writer thread owns the only write connection (SQLite
//! allows one writer at a time, so queueing in-process beats lock contention), and a few
//! reader threads serve queries concurrently (WAL mode lets them read while it writes).
//! Statements are prepared once per connection and cached.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use frontdesk_core::store::StoreResult;
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::db::{Cell, Db, Outcome, Row, Stmt, Value};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The SQLite database behind a store.
pub struct SqliteDb {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Option<mpsc::Sender<Job>>>,
    closed: Arc<AtomicBool>,
}

const READERS: usize = 4;
/// How often the checkpointer copies the write-ahead log back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// A safety net: the writer checkpoints itself only if the log grows past this many pages
/// (about 64 MiB), which happens only when the checkpointer cannot keep up.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_384;

fn open(path: &Path) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -32768; PRAGMA mmap_size = 268435456; PRAGMA temp_store = MEMORY;",
    )?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// Work a thread does when its queue has been empty for a while; `true` means it did some
/// and would like to be called again.
type IdleWork = fn(&Connection) -> bool;

/// How long a worker's queue must be empty before it does idle work.
const IDLE_AFTER: Duration = Duration::from_millis(100);

fn spawn_worker(
    name: String,
    conn: Connection,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    idle_work: Option<IdleWork>,
) -> anyhow::Result<()> {
    std::thread::Builder::new().name(name).spawn(move || {
        let mut conn = conn;
        // How long to wait for a job before doing idle work; `None`: no idle work left.
        let mut wait = idle_work.map(|_| IDLE_AFTER);
        loop {
            let job = match (jobs.lock(), wait) {
                (Ok(receiver), Some(wait)) => receiver.recv_timeout(wait),
                (Ok(receiver), None) => receiver
                    .recv()
                    .map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                (Err(_), _) => return,
            };
            match job {
                Ok(job) => {
                    job(&mut conn);
                    wait = idle_work.map(|_| IDLE_AFTER);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Keep going while there is work, checking for jobs between steps.
                    let more = idle_work.is_some_and(|work| work(&conn));
                    wait = more.then_some(Duration::ZERO);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    })?;
    Ok(())
}

/// Merges the full-text index's segments a bounded step at a time, between requests.
///
/// The index's automatic merging is off (see the migration): left on, it runs inside
/// whichever append happens to fill a level, and on a large index that append waits tens
/// of milliseconds. Here the writer does the same work when it has nothing else to do.
fn merge_search_index(conn: &Connection) -> bool {
    let before = conn.total_changes();
    match conn.execute(
        "INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', 64)",
        [],
    ) {
        // Fewer than two changes: nothing was left to merge.
        Ok(_) => conn.total_changes() - before >= 2,
        Err(error) => {
            tracing::warn!(error = %error, "merging the search index failed");
            false
        }
    }
}

/// Copies committed pages from the write-ahead log into the database file in the
/// background (`PASSIVE`: it never blocks the writer or readers), until the store closes.
fn spawn_checkpointer(conn: Connection, closed: Arc<AtomicBool>) -> anyhow::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while !closed.load(Ordering::Acquire) {
                std::thread::park_timeout(CHECKPOINT_EVERY);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(error = %error, "WAL checkpoint failed");
                }
            }
        })?;
    Ok(())
}

impl SqliteDb {
    /// Opens (creating) the database file and starts the writer and reader threads.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let (writer, writer_jobs) = mpsc::channel::<Job>();
        let writer_conn = open(path)?;
        // Checkpoints run on their own thread, so a commit never waits for one.
        writer_conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
        spawn_worker(
            "sqlite-writer".into(),
            writer_conn,
            Arc::new(Mutex::new(writer_jobs)),
            Some(merge_search_index),
        )?;
        let closed = Arc::new(AtomicBool::new(false));
        spawn_checkpointer(open(path)?, closed.clone())?;
        let (readers, reader_jobs) = mpsc::channel::<Job>();
        let reader_jobs = Arc::new(Mutex::new(reader_jobs));
        for idx in 0..READERS {
            spawn_worker(
                format!("sqlite-reader-{idx}"),
                open(path)?,
                reader_jobs.clone(),
                None,
            )?;
        }
        Ok(Self {
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Some(readers)),
            closed,
        })
    }

    /// Runs `work` on a connection of `queue` and awaits its result.
    async fn run<T: Send + 'static>(
        &self,
        queue: &Mutex<Option<mpsc::Sender<Job>>>,
        work: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Backend(anyhow::anyhow!(
                "the database is closed"
            )));
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = done.send(work(conn));
        });
        let sender = queue.lock().ok().and_then(|guard| guard.clone());
        match sender {
            Some(sender) if sender.send(job).is_ok() => {}
            _ => {
                return Err(StoreError::Backend(anyhow::anyhow!(
                    "the database is closed"
                )))
            }
        }
        result
            .await
            .map_err(|_| StoreError::Backend(anyhow::anyhow!("the database thread stopped")))?
    }
}

impl Drop for SqliteDb {
    /// Stops the checkpointer; the worker threads end when their queues close with `self`.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
    }
}

fn to_store_error(error: rusqlite::Error, unique: &'static str) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, _) = &error {
        if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        {
            return StoreError::Conflict(unique);
        }
    }
    StoreError::Backend(anyhow::Error::new(error))
}

/// Binds `$n` parameters by their number, so a placeholder may appear more than once.
fn bind(statement: &mut rusqlite::CachedStatement<'_>, args: &[Value]) -> rusqlite::Result<()> {
    for idx in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(idx)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(idx);
        let value = args
            .get(number - 1)
            .ok_or(rusqlite::Error::InvalidParameterCount(number, args.len()))?;
        match value {
            Value::Int(v) => statement.raw_bind_parameter(idx, v)?,
            Value::Float(v) => statement.raw_bind_parameter(idx, v)?,
            Value::Text(v) => statement.raw_bind_parameter(idx, v)?,
        }
    }
    Ok(())
}

fn run_stmt(conn: &Connection, stmt: &Stmt) -> StoreResult<Outcome> {
    let error = |e| to_store_error(e, stmt.unique);
    let mut statement = conn.prepare_cached(&stmt.sql).map_err(error)?;
    bind(&mut statement, &stmt.args).map_err(error)?;
    if statement.column_count() == 0 {
        let affected = statement.raw_execute().map_err(error)? as u64;
        return Outcome {
            rows: Vec::new(),
            affected,
        }
        .check(stmt);
    }
    let columns: Arc<[String]> = statement
        .column_names()
        .iter()
        .map(|c| (*c).to_owned())
        .collect();
    let n_columns = columns.len();
    let mut rows = Vec::new();
    let mut raw = statement.raw_query();
    while let Some(row) = raw.next().map_err(error)? {
        let mut cells = Vec::with_capacity(n_columns);
        for idx in 0..n_columns {
            cells.push(match row.get_ref(idx).map_err(error)? {
                ValueRef::Null => Cell::Null,
                ValueRef::Integer(v) => Cell::Int(v),
                ValueRef::Real(v) => Cell::Float(v),
                ValueRef::Text(v) => Cell::Text(String::from_utf8_lossy(v).into_owned()),
                ValueRef::Blob(v) => Cell::Text(String::from_utf8_lossy(v).into_owned()),
            });
        }
        rows.push(Row {
            columns: columns.clone(),
            cells,
        });
    }
    let affected = rows.len() as u64;
    Outcome { rows, affected }.check(stmt)
}

#[async_trait]
impl Db for SqliteDb {
    async fn query(&self, stmt: Stmt) -> StoreResult<Vec<Row>> {
        self.run(&self.readers, move |conn| {
            run_stmt(conn, &stmt).map(|outcome| outcome.rows)
        })
        .await
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> StoreResult<Vec<Outcome>> {
        self.run(&self.writer, move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| to_store_error(e, "row"))?;
            let mut outcomes = Vec::with_capacity(stmts.len());
            for stmt in &stmts {
                // On error the transaction is dropped, which rolls it back.
                outcomes.push(run_stmt(&tx, stmt)?);
            }
            tx.commit().map_err(|e| to_store_error(e, "row"))?;
            Ok(outcomes)
        })
        .await
    }

    async fn migrate(&self, migrations: &[(i64, &'static str, &'static str)]) -> StoreResult<()> {
        let migrations = migrations.to_vec();
        self.run(&self.writer, move |conn| {
            let backend = |e: rusqlite::Error| StoreError::Backend(anyhow::Error::new(e));
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS frontdesk_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .map_err(backend)?;
            for (version, name, sql) in migrations {
                // IMMEDIATE takes the write lock first, so a concurrent migrator waits and
                // then sees the version recorded.
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
                let applied: i64 = tx
                    .query_row("SELECT count(*) FROM frontdesk_migrations WHERE version = ?1", [version], |row| row.get(0))
                    .map_err(backend)?;
                if applied == 0 {
                    tx.execute_batch(sql).with_context(|| format!("migration {version} ({name})")).map_err(StoreError::Backend)?;
                    tx.execute(
                        "INSERT INTO frontdesk_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                        rusqlite::params![version, name, Timestamp::now().as_millis()],
                    )
                    .map_err(backend)?;
                    tracing::info!(migration.version = version, migration.name = name, "applied migration");
                }
                tx.commit().map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn execute_script(&self, sql: &str) -> StoreResult<()> {
        let sql = sql.to_owned();
        self.run(&self.writer, move |conn| {
            conn.execute_batch(&sql)
                .map_err(|e| to_store_error(e, "row"))
        })
        .await
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Dropping the senders ends the threads once their queues drain.
        if let Ok(mut writer) = self.writer.lock() {
            writer.take();
        }
        if let Ok(mut readers) = self.readers.lock() {
            readers.take();
        }
    }
}
