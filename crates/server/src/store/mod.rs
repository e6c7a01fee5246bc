//! Durable storage behind one small trait.
//!
//! Each service owns the queries for its tables as a trait of its own
//! ([`crate::users::UserStore`], [`crate::auth::TokenStore`], [`crate::rooms::RoomStore`],
//! [`crate::rooms::MessageStore`]), written once in SQL both backends accept and
//! implemented for each; [`Store`] is their sum plus health. The embedded
//! SQLite backend lives in [`sqlite`], the shared PostgreSQL one in [`postgres`]; a backend is picked from the database URL by
//! [`connect`], and nothing outside this module names a concrete backend.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::TokenStore;
use crate::rooms::{MessageStore, RoomStore};
use crate::users::UserStore;

/// Everything the server persists. Implemented once per shipped database.
#[async_trait]
pub trait Store: UserStore + TokenStore + RoomStore + MessageStore + Send + Sync + 'static {
    /// Succeeds when the database answers a trivial query; backs `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
    /// Short backend name for logs and readiness (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str;
}

/// A storage failure, in the few kinds callers treat differently.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (the name says which).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database cannot be reached right now; the request may be retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database error: a bug or corruption, logged and reported as internal.
    #[error("database error: {0}")]
    Database(String),
    /// Opening or migrating the database failed at start.
    #[error("cannot open database: {0}")]
    Open(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Self::Unavailable(err.to_string())
            }
            other => Self::Database(other.to_string()),
        }
    }
}

/// Whether `err` is a unique-constraint violation, which callers map to a conflict.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// Opens (creating and migrating) the database named by `url`.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::open(url).await?))
    } else {
        Err(StoreError::Open(format!("unsupported database URL: {url}")))
    }
}

/// Current time as Unix milliseconds, the unit every stored timestamp uses.
pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Converts a stored Unix-millisecond timestamp back to a date.
pub(crate) fn from_millis(millis: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

/// A result row of either backend, read by each service's row mappers. The schemas match, so a type mismatch is a bug worth a panic.
pub(crate) trait ChatRow {
    fn int(&self, index: usize) -> i64;
    fn text(&self, index: usize) -> String;
    fn opt_text(&self, index: usize) -> Option<String>;
    fn flag(&self, index: usize) -> bool;
}

macro_rules! chat_row {
    ($row:ty) => {
        impl ChatRow for $row {
            fn int(&self, index: usize) -> i64 {
                sqlx::Row::get(self, index)
            }
            fn text(&self, index: usize) -> String {
                sqlx::Row::get(self, index)
            }
            fn opt_text(&self, index: usize) -> Option<String> {
                sqlx::Row::get(self, index)
            }
            fn flag(&self, index: usize) -> bool {
                sqlx::Row::get(self, index)
            }
        }
    };
}

chat_row!(sqlx::sqlite::SqliteRow);
chat_row!(sqlx::postgres::PgRow);
