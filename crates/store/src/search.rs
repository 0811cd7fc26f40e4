//! How a conversation search runs on SQLite. The set of every match, sorted, is quick when few
//! messages match; for a common word it holds most of the tenant. Then a window of the newest
//! conversations is searched instead, its messages found by rowid range, which the index
//! seeks quickly for whole words only: the window asks for the words a prefix stands for (from
//! the index's vocabulary) rather than the prefix itself. A window that holds a whole page
//! answers exactly; else the set does.

use crate::db::Stmt;
use crate::sql::col;
use crate::SqlStore;
use frontdesk_core::store::StoreResult;

/// How many of the newest conversations a window holds.
pub(crate) const SEARCH_WINDOW: i64 = 600;
/// From how many matching messages (of the rarest word) a window is worth it: below, the set
/// is small enough to sort.
pub(crate) const WINDOW_FROM: i64 = 20_000;
/// The most words a prefix may stand for in a window.
const MAX_EXPANSION: usize = 64;

/// How a search finds its conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// The set of every conversation that matches, then the newest of it.
    Set,
    /// The newest conversations, at most `SEARCH_WINDOW`, and their messages matching
    /// `messages` (whole words only); exact whenever it finds a page.
    Window { messages: String },
}

impl SqlStore {
    /// The same store, taking a window from `messages` matching messages on (tests take one
    /// over a few rows this way; the default is 20,000).
    pub fn with_search_window_from(mut self, messages: i64) -> Self {
        self.window_from = messages;
        self
    }

    /// The strategy for a search's words (SQLite): a window when every word is in many
    /// messages and the last one, a prefix, stands for few enough words.
    pub(crate) async fn search_strategy(&self, terms: &[String]) -> StoreResult<Strategy> {
        let Some(last) = terms.len().checked_sub(1) else {
            return Ok(Strategy::Set);
        };
        let mut parts = Vec::with_capacity(terms.len());
        let mut rarest = i64::MAX;
        for (idx, term) in terms.iter().enumerate() {
            let prefix = idx == last && term.chars().count() >= 3;
            let stmt = if prefix {
                Stmt::new("SELECT term, doc FROM messages_fts_vocab WHERE term >= $1 AND term < $2 LIMIT $3")
                    .arg(term.as_str())
                    .arg(format!("{term}\u{10FFFF}"))
                    .arg((MAX_EXPANSION + 1) as i64)
            } else {
                Stmt::new("SELECT term, doc FROM messages_fts_vocab WHERE term = $1")
                    .arg(term.as_str())
            };
            let rows = self.db.query(stmt).await?;
            if rows.is_empty() || rows.len() > MAX_EXPANSION {
                return Ok(Strategy::Set);
            }
            let mut words = Vec::with_capacity(rows.len());
            let mut docs = 0i64;
            for row in &rows {
                let word: String = col(row, "term")?;
                if !word.chars().all(char::is_alphanumeric) {
                    return Ok(Strategy::Set);
                }
                docs += col::<i64>(row, "doc")?;
                words.push(format!("\"{word}\""));
            }
            rarest = rarest.min(docs);
            parts.push(match words.len() {
                1 => words.remove(0),
                _ => format!("({})", words.join(" OR ")),
            });
        }
        if rarest < self.window_from {
            return Ok(Strategy::Set);
        }
        Ok(Strategy::Window {
            messages: parts.join(" AND "),
        })
    }
}
