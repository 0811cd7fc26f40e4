//! The small database interface the store is written against, with one implementation per
//! backend: SQLite through `rusqlite` (one writer thread, a few reader threads) and
//! PostgreSQL through `sqlx`. SQL uses `$n` placeholders in both.
//!
//! Values and rows are our own owned types, so the store's SQL and row mapping exist once.

use std::sync::Arc;

use async_trait::async_trait;
use frontdesk_core::store::StoreResult;
use frontdesk_core::StoreError;

/// A bound value. Nulls are typed because PostgreSQL wants to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Some(v))
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Bytes(Some(v.to_vec()))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}
impl From<Option<f64>> for Value {
    fn from(v: Option<f64>) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// One result row: column names (shared by the rows of a result) and cells.
#[derive(Debug, Clone)]
pub struct Row {
    pub columns: Arc<[String]>,
    pub cells: Vec<Cell>,
}

impl Row {
    fn cell(&self, column: &str) -> StoreResult<&Cell> {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|idx| self.cells.get(idx))
            .ok_or_else(|| {
                StoreError::Backend(anyhow::anyhow!("no column `{column}` in the result"))
            })
    }

    /// Reads a column as `T`.
    pub fn get<T: FromCell>(&self, column: &str) -> StoreResult<T> {
        T::from_cell(self.cell(column)?).map_err(|expected| {
            StoreError::Backend(anyhow::anyhow!("column `{column}` is not {expected}"))
        })
    }
}

/// Conversion from a cell; the error names the expected type.
pub trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Result<Self, &'static str>;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Result<Self, &'static str> {
        match cell {
            Cell::Int(v) => Ok(*v),
            _ => Err("an integer"),
        }
    }
}
impl FromCell for f64 {
    fn from_cell(cell: &Cell) -> Result<Self, &'static str> {
        match cell {
            Cell::Float(v) => Ok(*v),
            Cell::Int(v) => Ok(*v as f64),
            _ => Err("a number"),
        }
    }
}
impl FromCell for String {
    fn from_cell(cell: &Cell) -> Result<Self, &'static str> {
        match cell {
            Cell::Text(v) => Ok(v.clone()),
            Cell::Bytes(v) => String::from_utf8(v.clone()).map_err(|_| "text"),
            _ => Err("text"),
        }
    }
}
impl FromCell for Vec<u8> {
    fn from_cell(cell: &Cell) -> Result<Self, &'static str> {
        match cell {
            Cell::Bytes(v) => Ok(v.clone()),
            Cell::Text(v) => Ok(v.clone().into_bytes()),
            _ => Err("bytes"),
        }
    }
}
impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Result<Self, &'static str> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// What a statement's emptiness means inside a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfNone {
    /// Nothing: zero rows is fine.
    Fine,
    /// Zero rows affected or returned aborts the transaction with `NotFound`.
    NotFound,
    /// Zero rows aborts the transaction with `Conflict(what)`.
    Conflict(&'static str),
}

/// One statement with its arguments.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub sql: String,
    pub args: Vec<Value>,
    /// What a unique violation is reported as (`Conflict(unique)`).
    pub unique: &'static str,
    pub if_none: IfNone,
}

impl Stmt {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
            unique: "row",
            if_none: IfNone::Fine,
        }
    }

    /// Adds the next argument (`$1`, `$2`, … in order).
    pub fn arg(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Adds an argument and returns its placeholder, for statements built piece by piece.
    pub fn bind(&mut self, value: impl Into<Value>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    pub fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    /// Names what a unique violation of this statement duplicates.
    pub fn unique(mut self, what: &'static str) -> Self {
        self.unique = what;
        self
    }

    /// Makes zero rows an error.
    pub fn if_none(mut self, if_none: IfNone) -> Self {
        self.if_none = if_none;
        self
    }

    /// Whether the statement returns rows (a query, or a write with `RETURNING`).
    pub fn returns_rows(&self) -> bool {
        let head: String = self
            .sql
            .trim_start()
            .chars()
            .take(6)
            .collect::<String>()
            .to_ascii_uppercase();
        head.starts_with("SELECT")
            || head.starts_with("WITH")
            || self.sql.to_ascii_uppercase().contains("RETURNING")
    }
}

/// The outcome of one statement.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub affected: u64,
}

impl Outcome {
    /// The error `if_none` calls for when nothing was affected.
    pub fn check(self, stmt: &Stmt) -> StoreResult<Self> {
        if self.affected > 0 || !self.rows.is_empty() {
            return Ok(self);
        }
        match stmt.if_none {
            IfNone::Fine => Ok(self),
            IfNone::NotFound => Err(StoreError::NotFound),
            IfNone::Conflict(what) => Err(StoreError::Conflict(what)),
        }
    }
}

/// How soon a transaction must commit. Either way its caller hears back only once it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// At once: something waits on it before going on (a user's message, which the model
    /// call waits for).
    Now,
    /// May wait a moment to share its commit with others while the database is busy (an
    /// answer, a finished run's record): fewer, larger commits cost less than many small ones.
    Soon,
}

/// A database the store can run statements on.
#[async_trait]
pub trait Db: Send + Sync + 'static {
    /// Runs a read-only statement.
    async fn query(&self, stmt: Stmt) -> StoreResult<Vec<Row>>;

    /// Runs read-only statements and returns the rows of each, in order. The default runs
    /// them at once on separate connections; SQLite runs them one after another on one
    /// reader, in one read transaction (one snapshot and one hand-off to its thread).
    async fn query_many(&self, stmts: Vec<Stmt>) -> StoreResult<Vec<Vec<Row>>> {
        futures_util::future::try_join_all(stmts.into_iter().map(|stmt| self.query(stmt))).await
    }

    /// Runs statements in order in one transaction; any error rolls all of them back.
    async fn transaction(&self, stmts: Vec<Stmt>) -> StoreResult<Vec<Outcome>>;

    /// [`Db::transaction`], committed as `commit` says. The default commits at once
    /// (PostgreSQL commits each transaction on its own connection); SQLite's one writer may
    /// hold a [`Commit::Soon`] transaction back a moment to commit it with others.
    async fn transaction_with(
        &self,
        stmts: Vec<Stmt>,
        commit: Commit,
    ) -> StoreResult<Vec<Outcome>> {
        let _ = commit;
        self.transaction(stmts).await
    }

    /// Applies `(version, name, sql)` migrations not yet recorded, each in its own
    /// transaction, guarding against concurrent migrators.
    async fn migrate(&self, migrations: &[(i64, &'static str, &'static str)]) -> StoreResult<()>;

    /// Runs a multi-statement script as it is (bulk loads and maintenance in benchmarks).
    async fn execute_script(&self, sql: &str) -> StoreResult<()>;

    /// Stops accepting work and releases connections.
    async fn close(&self);
}

/// The first row of a query, if any.
pub async fn query_one(db: &dyn Db, stmt: Stmt) -> StoreResult<Option<Row>> {
    Ok(db.query(stmt).await?.into_iter().next())
}

/// Runs one write statement in its own transaction.
pub async fn execute(db: &dyn Db, stmt: Stmt) -> StoreResult<Outcome> {
    execute_with(db, stmt, Commit::Now).await
}

/// Runs one write statement in its own transaction, committed as `commit` says.
pub async fn execute_with(db: &dyn Db, stmt: Stmt, commit: Commit) -> StoreResult<Outcome> {
    Ok(db
        .transaction_with(vec![stmt], commit)
        .await?
        .pop()
        .unwrap_or_default())
}
