//! The full-text index of messages, kept by the writer thread.
//!
//! A new message does not enter the index inside its own transaction: a trigger queues it
//! (`messages_fts_pending`) and the writer indexes the queue just before each commit, in the
//! same transaction. FTS5 writes a segment every time a savepoint is released, and a group
//! commit gives each transaction a savepoint, so indexing inside the appends wrote one small
//! segment per message, with its pages and the index's structure record rewritten each time.
//! Indexed at commit, a group's messages share one segment. Search sees a message as soon as
//! its commit does.
//!
//! Segments are merged between requests, a bounded step at a time, when the writer has
//! nothing else to do ([`merge`]).

use rusqlite::{Connection, OptionalExtension};

/// Whether the database has the queue (a store's schema does; a bare database does not).
pub(super) fn has_queue(conn: &Connection) -> bool {
    conn.query_row(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'messages_fts_pending'",
        [],
        |_| Ok(()),
    )
    .optional()
    .ok()
    .flatten()
    .is_some()
}

/// The queued messages' index rows, by ascending rowid. The joins are CROSS JOINs, which
/// SQLite keeps in the order written: the queue first, then a lookup by key in each table.
/// Left to choose, the planner, going by statistics from when the queue was empty, walked
/// every conversation and its messages instead (tens of milliseconds per commit on a large
/// database).
macro_rules! queued_rows {
    () => {
        "SELECT (c.pk << 20) | m.seq, m.text FROM messages_fts_pending p \
         CROSS JOIN messages m ON m.pk = p.message_pk \
         CROSS JOIN conversations c ON c.id = m.conversation_id ORDER BY 1"
    };
}
/// The same rows, for a test of the plan.
#[cfg(test)]
pub(super) const QUEUED_ROWS: &str = queued_rows!();

/// Indexes every queued message and empties the queue, inside the caller's transaction.
/// With nothing queued it only looks, so a commit without messages writes nothing more.
///
/// The messages go in by ascending rowid: FTS5 holds pending terms in memory only while
/// rowids rise, and writes a segment at every step down (the messages of several
/// conversations, queued as they came, would step down often).
pub(super) fn index_queued(conn: &Connection) -> rusqlite::Result<()> {
    let queued = conn
        .prepare_cached("SELECT 1 FROM messages_fts_pending LIMIT 1")?
        .exists([])?;
    if queued {
        conn.prepare_cached(concat!(
            "INSERT INTO messages_fts (rowid, text) ",
            queued_rows!()
        ))?
        .execute([])?;
        conn.prepare_cached("DELETE FROM messages_fts_pending")?
            .execute([])?;
    }
    Ok(())
}

/// Indexes what was queued outside the writer's transactions (a job run alone, which may
/// have written messages), in a transaction of its own.
pub(super) fn index_queued_alone(conn: &mut Connection) {
    let result = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .and_then(|tx| {
            index_queued(&tx)?;
            tx.commit()
        });
    if let Err(error) = result {
        tracing::warn!(error = %error, "indexing queued messages failed");
    }
}

/// Merges the index's segments one bounded step; `true` while there is more to merge.
///
/// The index's automatic merging is off (see the first migration): left on, it runs inside
/// whichever commit happens to fill a level, and on a large index that commit waits tens of
/// milliseconds. Here the writer does the same work when it has nothing else to do.
pub(super) fn merge(conn: &Connection) -> bool {
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
