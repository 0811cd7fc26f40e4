//! SQLite through `rusqlite`: one writer thread owns the only write connection (SQLite
//! allows one writer at a time, so queueing in-process beats lock contention), and a few
//! reader threads serve queries concurrently (WAL mode lets them read while it writes).
//! Statements are prepared once per connection and cached.
//!
//! The writer commits the transactions waiting in its queue together ([`writer`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use frontdesk_core::store::StoreResult;
use frontdesk_core::time::Timestamp;
use frontdesk_core::StoreError;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::db::{Cell, Commit, Db, Outcome, Row, Stmt, Value};

mod search_index;
mod writer;

use writer::{spawn_writer, Transaction, WriterJob};

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// The SQLite database behind a store.
pub struct SqliteDb {
    writer: Mutex<Option<crossbeam_channel::Sender<WriterJob>>>,
    /// The readers share one queue; a job wakes one waiting reader.
    readers: Mutex<Option<crossbeam_channel::Sender<Job>>>,
    closed: Arc<AtomicBool>,
}

/// Reader threads: enough that a slow query (a search, a usage report) leaves others free
/// for the short lookups every request makes.
const READERS: usize = 4;
/// How often the checkpointer copies the write-ahead log back into the database while
/// writes come in. Copying holds a core for as long as it takes, and under steady load many
/// small checkpoints delay request threads less than few large ones: at 1,000 steady
/// streams, every 50 ms instead of every 500 ms about halved the worst first-token delays.
const CHECKPOINT_BUSY: Duration = Duration::from_millis(50);
/// How often it looks when the last look found nothing new to copy.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(500);
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
    // No memory map of the file: the checkpointer grows it as it copies pages in (every
    // 50 ms under load) and each connection then maps it again, which costs TLB shootdowns
    // across cores (about a tenth of the readers' CPU under steady streaming). The page
    // cache serves repeated reads.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;",
    )?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// The writer's page cache, in KiB (as `cache_size` takes it: negative). Smaller than the
/// readers': it needs the pages that writes touch (the right edges of the tables and their
/// indexes), and SQLite scans the whole cache at every commit that split a page (the split
/// parks a page at a number far past the end, which the commit then drops by walking every
/// slot of the cache's hash table), so each page it holds costs every such commit.
const WRITER_CACHE_KIB: i64 = -8_192;

/// A reader thread: runs queries from the queue the readers share until it closes. Each
/// reader waits on the queue itself (not behind a lock on it), so a query wakes one thread.
fn spawn_reader(
    name: String,
    conn: Connection,
    jobs: crossbeam_channel::Receiver<Job>,
) -> anyhow::Result<()> {
    std::thread::Builder::new().name(name).spawn(move || {
        let mut conn = conn;
        while let Ok(job) = jobs.recv() {
            job(&mut conn);
        }
    })?;
    Ok(())
}

/// Copies committed pages from the write-ahead log into the database file in the
/// background (`PASSIVE`: it never blocks the writer or readers), until the store closes:
/// often while writes come in, seldom while none do.
fn spawn_checkpointer(conn: Connection, closed: Arc<AtomicBool>) -> anyhow::Result<()> {
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let mut every = CHECKPOINT_IDLE;
            // The log's size and how much of it was copied, as the last checkpoint left them.
            let mut last = (-1_i64, -1_i64);
            while !closed.load(Ordering::Acquire) {
                std::thread::park_timeout(every);
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
                }) {
                    Ok(now) => {
                        // A log that restarted and grew back to the same size reads as
                        // idle once: the next look is at most `CHECKPOINT_IDLE` late.
                        every = if now == last {
                            CHECKPOINT_IDLE
                        } else {
                            CHECKPOINT_BUSY
                        };
                        last = now;
                    }
                    Err(error) => tracing::warn!(error = %error, "WAL checkpoint failed"),
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
        let (writer, writer_jobs) = crossbeam_channel::unbounded::<WriterJob>();
        let writer_conn = open(path)?;
        // Checkpoints run on their own thread, so a commit never waits for one.
        writer_conn.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
        writer_conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        spawn_writer(writer_conn, writer_jobs)?;
        let closed = Arc::new(AtomicBool::new(false));
        spawn_checkpointer(open(path)?, closed.clone())?;
        let (readers, reader_jobs) = crossbeam_channel::unbounded::<Job>();
        for idx in 0..READERS {
            spawn_reader(
                format!("sqlite-reader-{idx}"),
                open(path)?,
                reader_jobs.clone(),
            )?;
        }
        Ok(Self {
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Some(readers)),
            closed,
        })
    }

    /// Hands `job` to the threads behind `queue`.
    fn submit<J>(
        &self,
        queue: &Mutex<Option<crossbeam_channel::Sender<J>>>,
        job: J,
    ) -> StoreResult<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let sender = queue.lock().ok().and_then(|guard| guard.clone());
        match sender {
            Some(sender) if sender.send(job).is_ok() => Ok(()),
            _ => Err(closed()),
        }
    }

    /// Runs `work` on a reader's connection, or alone on the writer's, and awaits its result.
    async fn run<T: Send + 'static>(
        &self,
        on: On,
        work: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = done.send(work(conn));
        });
        match on {
            On::Reader => self.submit(&self.readers, job)?,
            On::Writer => self.submit(&self.writer, WriterJob::Alone(job))?,
        }
        result.await.map_err(|_| thread_stopped())?
    }
}

/// A text cell: valid UTF-8 (nearly always) is checked at full speed; only bad bytes are
/// repaired.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Which connection a job runs on.
enum On {
    Reader,
    Writer,
}

fn closed() -> StoreError {
    StoreError::Backend(anyhow::anyhow!("the database is closed"))
}

fn thread_stopped() -> StoreError {
    StoreError::Backend(anyhow::anyhow!("the database thread stopped"))
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
            Value::Bytes(v) => statement.raw_bind_parameter(idx, v)?,
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
                ValueRef::Text(v) => Cell::Text(text(v)),
                ValueRef::Blob(v) => Cell::Bytes(v.to_vec()),
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
        self.run(On::Reader, move |conn| {
            run_stmt(conn, &stmt).map(|outcome| outcome.rows)
        })
        .await
    }

    async fn query_many(&self, stmts: Vec<Stmt>) -> StoreResult<Vec<Vec<Row>>> {
        self.run(On::Reader, move |conn| {
            let backend = |e: rusqlite::Error| StoreError::Backend(anyhow::Error::new(e));
            // One snapshot for all of them; dropped unfinished, it rolls back (reads nothing
            // more to undo).
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(backend)?;
            let rows = stmts
                .iter()
                .map(|stmt| run_stmt(&tx, stmt).map(|outcome| outcome.rows))
                .collect::<StoreResult<Vec<_>>>()?;
            tx.commit().map_err(backend)?;
            Ok(rows)
        })
        .await
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> StoreResult<Vec<Outcome>> {
        self.transaction_with(stmts, Commit::Now).await
    }

    async fn transaction_with(
        &self,
        stmts: Vec<Stmt>,
        commit: Commit,
    ) -> StoreResult<Vec<Outcome>> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.submit(
            &self.writer,
            WriterJob::Transaction(Transaction {
                stmts,
                commit,
                done,
            }),
        )?;
        result.await.map_err(|_| thread_stopped())?
    }

    async fn migrate(&self, migrations: &[(i64, &'static str, &'static str)]) -> StoreResult<()> {
        let migrations = migrations.to_vec();
        self.run(On::Writer, move |conn| {
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
        self.run(On::Writer, move |conn| {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    pub(super) fn insert(id: i64, name: &str) -> Stmt {
        Stmt::new("INSERT INTO items (id, name) VALUES ($1, $2)")
            .arg(id)
            .arg(name)
            .unique("item")
    }

    /// Transactions queued behind a busy writer commit as one group; the one that fails
    /// leaves nothing behind and the others keep everything they wrote.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_transaction_in_a_group_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(SqliteDb::open(&dir.path().join("group.db")).unwrap());
        db.execute_script("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .await
            .unwrap();
        db.transaction(vec![insert(1, "there before")])
            .await
            .unwrap();
        // Hold the writer until every transaction below is queued behind it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, writer_busy) = tokio::sync::oneshot::channel();
        let blocker = {
            let db = db.clone();
            tokio::spawn(async move {
                db.run(On::Writer, move |_| {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok(())
                })
                .await
            })
        };
        writer_busy.await.unwrap();
        let tasks: Vec<_> = (0..10_i64)
            .map(|n| {
                let db = db.clone();
                // Transaction 4 writes its own row, then one that is already there.
                let stmts = if n == 4 {
                    vec![insert(104, "four"), insert(1, "duplicate")]
                } else {
                    vec![insert(100 + n, "first"), insert(200 + n, "second")]
                };
                tokio::spawn(async move { db.transaction(stmts).await })
            })
            .collect();
        // Let every transaction reach the queue, then free the writer.
        tokio::time::sleep(Duration::from_millis(200)).await;
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        for (n, task) in tasks.into_iter().enumerate() {
            let result = task.await.unwrap();
            if n == 4 {
                assert!(
                    matches!(result, Err(StoreError::Conflict("item"))),
                    "{result:?}"
                );
            } else {
                assert_eq!(result.unwrap().len(), 2);
            }
        }
        let rows = db
            .query(Stmt::new("SELECT id FROM items ORDER BY id"))
            .await
            .unwrap();
        let ids: Vec<i64> = rows
            .iter()
            .map(|row| match row.cells[0] {
                Cell::Int(id) => id,
                ref other => panic!("{other:?}"),
            })
            .collect();
        let mut expected: Vec<i64> = (0..10)
            .filter(|n| *n != 4)
            .flat_map(|n| [100 + n, 200 + n])
            .chain([1])
            .collect();
        expected.sort_unstable();
        assert_eq!(
            ids, expected,
            "row 104 was rolled back with its transaction"
        );
        db.close().await;
    }

    /// A transaction that may commit soon is still committed, and readable, once its
    /// caller hears back, however the writer groups it with others.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_may_wait_is_committed_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(SqliteDb::open(&dir.path().join("soon.db")).unwrap());
        db.execute_script("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            .await
            .unwrap();
        let tasks: Vec<_> = (0..40_i64)
            .map(|n| {
                let db = db.clone();
                tokio::spawn(async move {
                    let commit = if n % 4 == 0 {
                        Commit::Now
                    } else {
                        Commit::Soon
                    };
                    db.transaction_with(vec![insert(n, "row")], commit)
                        .await
                        .unwrap();
                    let found = db
                        .query(Stmt::new("SELECT id FROM items WHERE id = $1").arg(n))
                        .await
                        .unwrap();
                    assert_eq!(found.len(), 1, "row {n} was not readable after its commit");
                    // A conflict in a transaction that may wait is reported to its caller.
                    let again = db.transaction_with(vec![insert(n, "again")], commit).await;
                    assert!(matches!(again, Err(StoreError::Conflict("item"))));
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let rows = db
            .query(Stmt::new("SELECT count(*) AS n FROM items"))
            .await
            .unwrap();
        assert_eq!(rows[0].get::<i64>("n").unwrap(), 40);
        db.close().await;
    }
}
