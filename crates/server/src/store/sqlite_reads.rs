//! Point reads on the caller's thread: a few read-only SQLite connections of our own for
//! the primary-key probes every WebSocket connection makes (the account behind its token,
//! whether it has unread notifications, its membership of the room it joins).
//!
//! Through sqlx each of those is a round trip to the pooled connection's worker thread:
//! a channel send, a futex wake, the statement, a wake back, and the pool's return with
//! its own hop. In a connect storm those hops were about a third of the server's CPU
//! (BENCHMARKS.md, stop 21), for statements that take a few microseconds. Here the
//! statement runs inline, under a mutex of its own, on a connection that keeps its
//! prepared statements.
//!
//! Only for short reads of hot rows: a read that has to go to the disk blocks the calling
//! worker thread meanwhile. Never waits: when every connection is in use, or SQLite
//! answers `BUSY` (a WAL reader rarely does), the caller gets `None` and reads through
//! sqlx as before, so the answer is the same either way and only the path differs.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, TryLockError};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::StoreError;

/// Connections: one per worker thread of a laptop-sized runtime, and a spare.
const CONNECTIONS: usize = 4;

/// The inline readers of one SQLite file; see the module docs.
pub(super) struct SqliteReads {
    path: PathBuf,
    /// Opened on first use; emptied after an error, so a broken connection is not reused.
    slots: [Mutex<Option<Connection>>; CONNECTIONS],
}

impl SqliteReads {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            slots: std::array::from_fn(|_| Mutex::new(None)),
        }
    }

    /// Runs `read` on a free connection; `None` when none is free or SQLite is busy.
    pub(super) fn try_read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<Result<T, StoreError>> {
        let mut slot = self.slots.iter().find_map(|slot| match slot.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        })?;
        if slot.is_none() {
            match self.open() {
                Ok(conn) => *slot = Some(conn),
                Err(err) => return Some(Err(err.into())),
            }
        }
        let result = read(slot.as_ref()?);
        match result {
            Ok(value) => Some(Ok(value)),
            Err(err) if is_busy(&err) => None,
            Err(err) => {
                // Whatever went wrong, the next read starts on a fresh connection.
                *slot = None;
                Some(Err(err.into()))
            }
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // The file exists and is migrated: `Db::open` did both before this is used.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        // No busy wait: a caller that would wait reads through sqlx instead.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        Ok(conn)
    }

    /// Holds every connection, as if all were in use (tests).
    #[cfg(test)]
    fn hold_all(&self) -> Vec<std::sync::MutexGuard<'_, Option<Connection>>> {
        self.slots
            .iter()
            .map(|slot| {
                slot.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            })
            .collect()
    }
}

/// Whether SQLite declined for now rather than failed.
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with_a_row() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("reads.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO t VALUES (1, 'one');",
        )
        .expect("schema");
        (dir, path)
    }

    fn value(conn: &Connection, id: i64) -> rusqlite::Result<Option<String>> {
        use rusqlite::OptionalExtension as _;
        conn.prepare_cached("SELECT v FROM t WHERE id = $1")?
            .query_row([id], |row| row.get(0))
            .optional()
    }

    #[test]
    fn reads_see_every_commit_made_before_them() {
        let (_dir, path) = file_with_a_row();
        let reads = SqliteReads::new(&path);
        let read = |id| {
            reads
                .try_read(|conn| value(conn, id))
                .expect("a free connection")
        };
        assert_eq!(read(1).expect("read").as_deref(), Some("one"));
        assert_eq!(read(2).expect("read"), None);
        // A cached statement must not pin the old snapshot.
        Connection::open(&path)
            .expect("writer")
            .execute("INSERT INTO t VALUES (2, 'two')", [])
            .expect("insert");
        assert_eq!(read(2).expect("read").as_deref(), Some("two"));
    }

    #[test]
    fn with_every_connection_in_use_the_caller_reads_elsewhere() {
        let (_dir, path) = file_with_a_row();
        let reads = SqliteReads::new(&path);
        let held = reads.hold_all();
        assert!(reads.try_read(|conn| value(conn, 1)).is_none());
        drop(held);
        assert!(reads.try_read(|conn| value(conn, 1)).is_some());
    }

    #[test]
    fn an_error_is_reported_and_the_connection_replaced() {
        let (_dir, path) = file_with_a_row();
        let reads = SqliteReads::new(&path);
        let failed = reads.try_read(|conn| conn.query_row("SELECT nope FROM t", [], |_| Ok(())));
        assert!(
            matches!(failed, Some(Err(StoreError::Database(_)))),
            "{failed:?}"
        );
        let again = reads.try_read(|conn| value(conn, 1));
        assert!(matches!(again, Some(Ok(Some(_)))), "{again:?}");
    }
}
