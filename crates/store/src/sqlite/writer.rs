//! The writer thread: the only connection that writes. It commits the transactions waiting
//! in its queue together (group commit), each in a savepoint of its own, so one that fails
//! rolls back alone and the callers hear back only once the whole group is committed. Under
//! load this writes the pages a group shares (a conversation's row, the messages table's
//! last leaf) to the log once per group instead of once per transaction, and pays the
//! commit once. A group of transactions that may commit soon rather than now (an answer, a
//! run's record) waits a moment for others while the writer is busy, so that under load
//! most commits carry several turns.

use std::time::{Duration, Instant};

use frontdesk_core::store::StoreResult;
use rusqlite::{Connection, TransactionBehavior};

use super::search_index;
use super::{run_stmt, to_store_error, Job};
use crate::db::{Commit, Outcome, Stmt};

/// What the writer thread is asked to do.
pub(super) enum WriterJob {
    /// Statements to run in one transaction, which may share its commit with others.
    Transaction(Transaction),
    /// Anything else, run alone.
    Alone(Job),
}

/// Statements for one transaction and where their outcome goes.
pub(super) struct Transaction {
    pub(super) stmts: Vec<Stmt>,
    pub(super) commit: Commit,
    pub(super) done: tokio::sync::oneshot::Sender<StoreResult<Vec<Outcome>>>,
}

/// Most transactions one commit takes.
const MAX_GROUP: usize = 64;
/// The longest a group of [`Commit::Soon`] transactions waits for others to share its
/// commit. It waits only while the writer is busy, and a transaction that must commit now
/// ends the wait.
const SHARE_WINDOW: Duration = Duration::from_millis(3);
/// The writer counts as busy when its last two commits ended within this.
const BUSY_WITHIN: Duration = Duration::from_millis(10);

/// How long the writer's queue must be empty before it merges the search index.
const IDLE_AFTER: Duration = Duration::from_millis(100);

/// The writer thread: commits the transactions that wait together, runs other jobs alone,
/// and merges the search index when the queue has been empty a while.
pub(super) fn spawn_writer(
    conn: Connection,
    jobs: crossbeam_channel::Receiver<WriterJob>,
) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            let mut conn = conn;
            // Whether the database has the store's search index (a bare one has none).
            let mut indexed = search_index::has_queue(&conn);
            // How long to wait for a job before merging; `None`: nothing is left to merge.
            let mut wait = indexed.then_some(IDLE_AFTER);
            let mut commits = RecentCommits::default();
            loop {
                let received = match wait {
                    Some(wait) => jobs.recv_timeout(wait),
                    None => jobs
                        .recv()
                        .map_err(|_| crossbeam_channel::RecvTimeoutError::Disconnected),
                };
                let mut next = match received {
                    Ok(job) => Some(job),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        // Keep going while there is work, checking for jobs between steps.
                        wait = search_index::merge(&conn).then_some(Duration::ZERO);
                        continue;
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                };
                while let Some(job) = next.take() {
                    match job {
                        WriterJob::Alone(job) => {
                            job(&mut conn);
                            // It may have changed the schema (a migration) or written messages.
                            indexed = search_index::has_queue(&conn);
                            if indexed {
                                search_index::index_queued_alone(&mut conn);
                            }
                        }
                        WriterJob::Transaction(first) => {
                            let mut group = vec![first];
                            let now = Instant::now();
                            let until = commits.busy(now).then_some(now + SHARE_WINDOW);
                            next = gather(&jobs, &mut group, until);
                            let alone = until.is_some() && group.len() == 1;
                            commit_group(&mut conn, group, indexed);
                            commits.push(Instant::now(), alone);
                        }
                    }
                }
                wait = indexed.then_some(IDLE_AFTER);
            }
        })?;
    Ok(())
}

/// When the writer's last two commits ended, and whether the last group waited for company
/// and found none.
#[derive(Default)]
struct RecentCommits {
    ended: [Option<Instant>; 2],
    waited_alone: bool,
}

impl RecentCommits {
    fn push(&mut self, at: Instant, waited_alone: bool) {
        self.ended = [self.ended[1], Some(at)];
        self.waited_alone = waited_alone;
    }

    /// Two commits within [`BUSY_WITHIN`]: the writer is busy enough that a transaction
    /// which can wait is likely to find company. One turn's answer and run record, committed
    /// one after the other, are not enough on their own: a quiet database commits at once.
    /// Nor is a wait that found no company: the next group goes at once, so lone
    /// transactions a few milliseconds apart do not each wait for nothing.
    fn busy(&self, now: Instant) -> bool {
        !self.waited_alone
            && self.ended[0].is_some_and(|at| now.saturating_duration_since(at) < BUSY_WITHIN)
    }
}

/// Adds the transactions waiting behind `group`'s first to it, up to [`MAX_GROUP`], and
/// returns a job that is not a transaction, to run after the group commits. While only
/// [`Commit::Soon`] transactions are in the group, it waits for more `until` then (none:
/// it takes only what is queued); one that must commit now ends the wait.
fn gather(
    jobs: &crossbeam_channel::Receiver<WriterJob>,
    group: &mut Vec<Transaction>,
    until: Option<Instant>,
) -> Option<WriterJob> {
    while group.len() < MAX_GROUP {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(_) => {
                let can_wait = group.iter().all(|tx| tx.commit == Commit::Soon);
                match until.filter(|_| can_wait) {
                    Some(until) => match jobs.recv_deadline(until) {
                        Ok(job) => job,
                        Err(_) => return None,
                    },
                    None => return None,
                }
            }
        };
        match job {
            WriterJob::Transaction(tx) => group.push(tx),
            other => return Some(other),
        }
    }
    None
}

fn run_all(conn: &Connection, stmts: &[Stmt]) -> StoreResult<Vec<Outcome>> {
    stmts.iter().map(|stmt| run_stmt(conn, stmt)).collect()
}

/// Runs `stmts` in a transaction of their own; any error rolls all of them back. With
/// `indexed`, the messages it queued for the search index are indexed before it commits.
fn run_transaction(
    conn: &mut Connection,
    stmts: &[Stmt],
    indexed: bool,
) -> StoreResult<Vec<Outcome>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| to_store_error(e, "row"))?;
    // On error the transaction is dropped, which rolls it back.
    let outcomes = run_all(&tx, stmts)?;
    if indexed {
        search_index::index_queued(&tx).map_err(|e| to_store_error(e, "row"))?;
    }
    tx.commit().map_err(|e| to_store_error(e, "row"))?;
    Ok(outcomes)
}

/// Commits `group` with one commit, each transaction in a savepoint of its own. Should the
/// group fail as a whole (it rolls back entirely), each transaction runs again on its own,
/// so every caller hears about its own statements only. With `indexed`, the messages the
/// group queued for the search index are indexed before it commits.
fn commit_group(conn: &mut Connection, group: Vec<Transaction>, indexed: bool) {
    if group.len() > 1 {
        match run_group(conn, &group, indexed) {
            Ok(results) => {
                for (tx, result) in group.into_iter().zip(results) {
                    let _ = tx.done.send(result);
                }
                return;
            }
            Err(error) => tracing::warn!(
                error = %error,
                transactions = group.len(),
                "a group commit failed; committing its transactions one at a time"
            ),
        }
    }
    for tx in group {
        let _ = tx.done.send(run_transaction(conn, &tx.stmts, indexed));
    }
}

/// Each transaction's outcome, once all of them are committed; `Err` when the group could
/// not commit (nothing of it was kept).
fn run_group(
    conn: &mut Connection,
    group: &[Transaction],
    indexed: bool,
) -> rusqlite::Result<Vec<StoreResult<Vec<Outcome>>>> {
    let mut outer = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(group.len());
    for tx in group {
        let savepoint = outer.savepoint()?;
        let result = run_all(&savepoint, &tx.stmts);
        if result.is_ok() {
            savepoint.commit()?;
        } else {
            // Dropping rolls back to the savepoint and releases it. `finish` reports when
            // that fails (an error that already rolled back the whole transaction).
            savepoint.finish()?;
        }
        results.push(result);
    }
    if indexed {
        search_index::index_queued(&outer)?;
    }
    outer.commit()?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::sqlite::tests::insert;
    use frontdesk_core::StoreError;

    fn transaction(commit: Commit) -> Transaction {
        Transaction {
            stmts: Vec::new(),
            commit,
            done: tokio::sync::oneshot::channel().0,
        }
    }

    fn commits(group: &[Transaction]) -> Vec<Commit> {
        group.iter().map(|tx| tx.commit).collect()
    }

    /// Far enough that a gather which waited for it fails the test (see [`returned_early`]).
    fn never() -> Option<Instant> {
        Some(Instant::now() + Duration::from_secs(10))
    }

    fn returned_early(started: Instant) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "gather waited for its deadline"
        );
    }

    /// The group itself commits (not the one-at-a-time fallback, which would give the same
    /// rows): each transaction gets its own outcome from one commit.
    #[test]
    fn a_group_commits_once_with_an_outcome_per_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = super::super::open(&dir.path().join("direct.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL); \
             INSERT INTO items VALUES (1, 'there before');",
        )
        .unwrap();
        let (group, _receivers): (Vec<_>, Vec<_>) = [
            vec![insert(10, "a"), insert(11, "b")],
            vec![insert(12, "c"), insert(1, "duplicate")],
            vec![insert(13, "d")],
        ]
        .into_iter()
        .map(|stmts| {
            let (done, receiver) = tokio::sync::oneshot::channel();
            (
                Transaction {
                    stmts,
                    commit: Commit::Now,
                    done,
                },
                receiver,
            )
        })
        .unzip();
        let results = run_group(&mut conn, &group, false).unwrap();
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().map(Vec::len).ok(), Some(2));
        assert!(matches!(results[1], Err(StoreError::Conflict("item"))));
        assert_eq!(results[2].as_ref().map(Vec::len).ok(), Some(1));
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM items ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, vec![1, 10, 11, 13]);
    }

    /// A migrated store's database, opened as the writer opens it, with one conversation
    /// (pk 1, id `c`) to hang messages on.
    async fn store_database(dir: &std::path::Path) -> Connection {
        let path = dir.join("search.db");
        let store = crate::SqlStore::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        frontdesk_core::store::BaseStore::migrate(&store)
            .await
            .unwrap();
        store.close().await;
        let conn = super::super::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF; \
             INSERT INTO conversations (pk, id, tenant_id, agent_id, activity_at, metadata, created_at, updated_at) \
             VALUES (1, 'c', 't', 'a', 0, '{}', 0, 0);",
        )
        .unwrap();
        conn
    }

    fn message(seq: i64, text: &str) -> Stmt {
        Stmt::new(
            "INSERT INTO messages (id, tenant_id, conversation_id, seq, role, content, text, created_at) \
             VALUES ($1, 't', 'c', $2, 'user', '[]', $3, 0)",
        )
        .arg(format!("m{seq}"))
        .arg(seq)
        .arg(text)
        .unique("message")
    }

    fn found(conn: &Connection, word: &str) -> Vec<i64> {
        conn.prepare("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 ORDER BY rowid")
            .unwrap()
            .query_map([word], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |row| row.get(0)).unwrap()
    }

    /// The messages of a group commit enter the search index together at its commit: one
    /// segment, not one per message (every savepoint release flushes FTS5). A transaction
    /// that fails takes its queued message with it, and a message deleted while it waits
    /// leaves nothing behind.
    #[tokio::test]
    async fn a_group_indexes_its_messages_once_at_its_commit() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = store_database(dir.path()).await;
        let pages = |conn: &Connection| count(conn, "SELECT count(*) FROM messages_fts_data");
        let before = pages(&conn);
        let mut stmts: Vec<Vec<Stmt>> = (1..=20)
            .map(|seq| vec![message(seq, &format!("word{seq} shared"))])
            .collect();
        // Fails on its second statement: its first message must not be indexed.
        stmts.push(vec![message(21, "word21 shared"), message(1, "again")]);
        // Written and taken back before the commit.
        stmts.push(vec![
            message(22, "word22 shared"),
            Stmt::new("DELETE FROM messages WHERE id = 'm22'"),
        ]);
        let (group, _receivers): (Vec<_>, Vec<_>) = stmts
            .into_iter()
            .map(|stmts| {
                let (done, receiver) = tokio::sync::oneshot::channel();
                let commit = Commit::Now;
                (
                    Transaction {
                        stmts,
                        commit,
                        done,
                    },
                    receiver,
                )
            })
            .unzip();
        let results = run_group(&mut conn, &group, true).unwrap();
        assert!(matches!(results[20], Err(StoreError::Conflict("message"))));
        assert!(results[21].is_ok());
        // A new segment is a leaf page or two, and the structure record is rewritten in
        // place; a segment per message would add twenty.
        let added = pages(&conn) - before;
        assert!((1..=3).contains(&added), "{added} rows added to the index");
        for seq in 1..=20_i64 {
            assert_eq!(found(&conn, &format!("word{seq}")), [(1 << 20) | seq]);
        }
        assert_eq!(found(&conn, "shared").len(), 20);
        assert!(found(&conn, "word21").is_empty() && found(&conn, "word22").is_empty());
        assert_eq!(count(&conn, "SELECT count(*) FROM messages_fts_pending"), 0);

        // Deleting an indexed message takes it out of the index; a lone transaction indexes too.
        run_transaction(
            &mut conn,
            &[
                Stmt::new("DELETE FROM messages WHERE id = 'm3'"),
                message(23, "word23"),
            ],
            true,
        )
        .unwrap();
        assert!(found(&conn, "word3").is_empty());
        assert_eq!(found(&conn, "word23"), [(1 << 20) | 23]);
        assert_eq!(found(&conn, "shared").len(), 19);
        conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 0)",
            [],
        )
        .unwrap();
    }

    /// Indexing the queue looks up each queued message by key, even when the statistics
    /// (taken while the queue was empty, as `ANALYZE` after a bulk load takes them) would
    /// lead the planner to walk every conversation and message instead.
    #[tokio::test]
    async fn the_queue_is_indexed_by_key_lookups() {
        let dir = tempfile::tempdir().unwrap();
        let conn = store_database(dir.path()).await;
        // Statistics of a database with 2,400 conversations and 288,000 messages.
        conn.execute_batch(
            "ANALYZE; DELETE FROM sqlite_stat1; \
             INSERT INTO sqlite_stat1 VALUES \
               ('messages', 'messages_conversation_seq', '288000 120 1'), \
               ('messages', 'sqlite_autoindex_messages_1', '288000 1'), \
               ('conversations', 'sqlite_autoindex_conversations_1', '2400 1'); \
             ANALYZE sqlite_schema;",
        )
        .unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", search_index::QUEUED_ROWS))
            .unwrap()
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(plan.first().map(String::as_str), Some("SCAN p"), "{plan:?}");
        assert!(
            plan.iter()
                .any(|step| step == "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)"),
            "{plan:?}"
        );
        assert!(
            plan.iter()
                .any(|step| step.starts_with("SEARCH c USING") && step.ends_with("(id=?)")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_group_that_may_wait_takes_what_comes_until_one_must_commit_now() {
        let (send, jobs) = crossbeam_channel::unbounded();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            send.send(WriterJob::Transaction(transaction(Commit::Soon)))
                .unwrap();
            std::thread::sleep(Duration::from_millis(20));
            send.send(WriterJob::Transaction(transaction(Commit::Now)))
                .unwrap();
            send
        });
        let mut group = vec![transaction(Commit::Soon)];
        let started = Instant::now();
        assert!(gather(&jobs, &mut group, never()).is_none());
        // The `Now` ended the wait, long before the deadline.
        returned_early(started);
        assert_eq!(commits(&group), [Commit::Soon, Commit::Soon, Commit::Now]);
        drop(sender.join().unwrap());
    }

    #[test]
    fn a_group_that_must_commit_now_takes_only_what_is_queued() {
        let (send, jobs) = crossbeam_channel::unbounded();
        send.send(WriterJob::Transaction(transaction(Commit::Soon)))
            .unwrap();
        let mut group = vec![transaction(Commit::Now)];
        let started = Instant::now();
        assert!(gather(&jobs, &mut group, never()).is_none());
        returned_early(started);
        assert_eq!(commits(&group), [Commit::Now, Commit::Soon]);
        // A quiet writer (no deadline) does not wait for a group that may wait.
        let mut group = vec![transaction(Commit::Soon)];
        assert!(gather(&jobs, &mut group, None).is_none());
        assert_eq!(group.len(), 1);
        drop(send);
    }

    #[test]
    fn a_job_that_is_not_a_transaction_ends_the_group_and_comes_back() {
        let (send, jobs) = crossbeam_channel::unbounded();
        send.send(WriterJob::Transaction(transaction(Commit::Soon)))
            .unwrap();
        send.send(WriterJob::Alone(Box::new(|_| {}))).unwrap();
        send.send(WriterJob::Transaction(transaction(Commit::Soon)))
            .unwrap();
        let mut group = vec![transaction(Commit::Soon)];
        let next = gather(&jobs, &mut group, never());
        assert!(matches!(next, Some(WriterJob::Alone(_))));
        assert_eq!(group.len(), 2);
        assert_eq!(jobs.len(), 1);
    }

    #[test]
    fn a_group_stops_growing_at_its_limit() {
        let (send, jobs) = crossbeam_channel::unbounded();
        for _ in 0..MAX_GROUP + 5 {
            send.send(WriterJob::Transaction(transaction(Commit::Soon)))
                .unwrap();
        }
        let mut group = vec![transaction(Commit::Soon)];
        assert!(gather(&jobs, &mut group, never()).is_none());
        assert_eq!(group.len(), MAX_GROUP);
        assert_eq!(jobs.len(), 6);
    }

    #[test]
    fn the_writer_is_busy_only_after_two_commits_close_together() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut recent = RecentCommits::default();
        assert!(!recent.busy(start));
        // One turn's answer and run record on a quiet database: one commit is not enough.
        recent.push(start, false);
        assert!(!recent.busy(ms(1)));
        recent.push(ms(1), false);
        assert!(recent.busy(ms(2)));
        assert!(!recent.busy(start + BUSY_WITHIN + Duration::from_millis(1)));
        // A wait that found no company: the next group does not wait.
        recent.push(ms(5), true);
        assert!(!recent.busy(ms(6)));
        recent.push(ms(6), false);
        assert!(recent.busy(ms(7)));
    }
}
