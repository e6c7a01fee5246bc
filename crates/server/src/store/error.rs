//! [`StoreError`]: what went wrong with the database, in the few kinds callers treat
//! differently, classified once here from the driver's error.

use sqlx::error::DatabaseError;

/// A storage failure, in the few kinds callers treat differently. `Clone` so one failed
/// batch can answer each of its requests.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (the name says which).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database cannot take the request right now (disk full, I/O error, locked,
    /// connection lost, shutting down): nothing was stored and the request may be retried.
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
        if is_transient(&err) {
            Self::Unavailable(err.to_string())
        } else {
            Self::Database(err.to_string())
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        let transient = match &err {
            rusqlite::Error::SqliteFailure(failure, _) => {
                sqlite_code_is_transient(Some(i64::from(failure.extended_code)))
            }
            _ => false,
        };
        if transient {
            Self::Unavailable(err.to_string())
        } else {
            Self::Database(err.to_string())
        }
    }
}

/// Whether `err` is a unique-constraint violation, which callers map to a conflict.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// Whether `err` says the database cannot take writes (or answer) right now, as opposed
/// to a bug: retrying later can succeed, so clients are told `unavailable`.
fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(sqlite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                sqlite_code_is_transient(sqlite.code().and_then(|c| c.parse().ok()))
            } else if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                sqlstate_is_transient(pg.code())
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLite result codes (extended codes keep the primary code in the low byte) that mean
/// the disk or the file cannot take the write now: BUSY (5), LOCKED (6), NOMEM (7),
/// READONLY (8, e.g. the file was remounted read-only), IOERR (10), FULL (13),
/// CANTOPEN (14).
fn sqlite_code_is_transient(code: Option<i64>) -> bool {
    code.is_some_and(|code| matches!(code & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14))
}

/// PostgreSQL SQLSTATEs that mean "not now" rather than "wrong": connection exceptions
/// (08xxx), serialization failure and deadlock (40001, 40P01), insufficient resources
/// such as `disk_full` (53xxx), operator intervention such as `admin_shutdown` (57Pxx),
/// and system errors such as `io_error` (58xxx).
fn sqlstate_is_transient(code: &str) -> bool {
    ["08", "53", "57P", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_and_io_errors_are_transient_in_sqlite() {
        // SQLITE_FULL, SQLITE_IOERR_WRITE (10 | 3 << 8), SQLITE_BUSY.
        for code in [13, 778, 5] {
            assert!(sqlite_code_is_transient(Some(code)), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_ERROR.
        for code in [2067, 1] {
            assert!(!sqlite_code_is_transient(Some(code)), "{code}");
        }
        assert!(!sqlite_code_is_transient(None));
    }

    #[test]
    fn disk_full_and_lost_connections_are_transient_in_postgres() {
        for code in ["53100", "57P01", "08006", "40001", "58030"] {
            assert!(sqlstate_is_transient(code), "{code}");
        }
        for code in ["23505", "42P01", "22012"] {
            assert!(!sqlstate_is_transient(code), "{code}");
        }
    }
}
