//! A SQLite write connection owned by one blocking thread: the message appender's
//! batches run on it in-process, statement after statement, instead of as round trips to
//! sqlx's per-connection worker thread (a channel send, a futex wake and two context
//! switches per statement; most of the store's CPU on the many-rooms path, see
//! BENCHMARKS.md). Same file, same pragmas as the sqlx writer: WAL,
//! `synchronous=FULL`, foreign keys, the busy timeout and the page cap.
//!
//! The write discipline of [`WriteTx`](super::WriteTx) holds here too: every
//! transaction is `BEGIN IMMEDIATE` … `COMMIT`, its result is returned only after the
//! COMMIT succeeded, and after any error the connection is closed (which rolls back
//! whatever was open) and a fresh one is opened for the next transaction.

use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// One dedicated write connection, opened on first use; see the module docs. Not
/// `Clone`: it belongs to the thread that writes with it.
pub struct SqliteWriter {
    path: PathBuf,
    max_pages: Option<u32>,
    busy_timeout_ms: u32,
    conn: Option<Connection>,
}

impl SqliteWriter {
    pub(super) fn new(path: PathBuf, max_pages: Option<u32>, busy_timeout_ms: u32) -> Self {
        Self {
            path,
            max_pages,
            busy_timeout_ms,
            conn: None,
        }
    }

    /// Runs `work` in one write transaction and returns its value once the COMMIT
    /// succeeded. On any error, from `work` or the commit, nothing may be assumed stored
    /// and the connection is discarded.
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = self.connection().and_then(|conn| {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let value = work(conn)?;
            conn.execute_batch("COMMIT")?;
            Ok(value)
        });
        if result.is_err() && self.conn.take().is_some() {
            crate::metrics::writer_discarded();
            tracing::warn!("sqlite write transaction failed; discarding its connection");
        }
        result
    }

    /// The open connection, opening it first if needed.
    fn connection(&mut self) -> Result<&Connection, StoreError> {
        if self.conn.is_none() {
            self.conn = Some(self.open()?);
        }
        self.conn
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("no sqlite write connection".into()))
    }

    fn open(&self) -> Result<Connection, StoreError> {
        // The file exists and is migrated: `Db::open` did both before handing this out.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(std::time::Duration::from_millis(u64::from(
            self.busy_timeout_ms,
        )))?;
        // `journal_mode` answers with a row; the others answer nothing.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        conn.execute_batch(super::sqlite::WAL_AUTOCHECKPOINT)?;
        if let Some(pages) = self.max_pages {
            let _max: i64 =
                conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                    row.get(0)
                })?;
        }
        Ok(conn)
    }
}
