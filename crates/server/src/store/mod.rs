//! The database layer, and nothing above it: the handle ([`Db`]), opening and
//! migrating, the write-transaction discipline ([`WriteTx`]), [`StoreError`] and the
//! time helpers. It knows no service: each service keeps its own queries in its
//! `store.rs`, written once in SQL both backends accept (`$n` parameters) and run
//! through `sqlx::Any`, with rows decoded by column name.
//!
//! Two backends, picked by URL: the embedded SQLite file (one writer connection, WAL,
//! `synchronous=FULL`) and a shared PostgreSQL (one pool, several instances).
//!
//! Every write goes through [`Db::begin`]: a connection is reused only after its COMMIT
//! or ROLLBACK succeeded (see [`tx`]), so a failed commit can never leave the writer
//! inside a transaction that later acknowledges writes it never stores.
//!
//! `Any` decodes booleans only from real booleans (PostgreSQL `BOOLEAN`, not SQLite's
//! `INTEGER`), so queries select flags as integers (`CASE WHEN … THEN 1 ELSE 0 END`) and
//! convert them.

mod error;
mod postgres;
mod sqlite;
mod sqlite_reads;
mod sqlite_writer;
mod tx;

use std::sync::Arc;

use rand::RngCore;
use sqlx::AnyPool;

pub use error::{StoreError, is_unique_violation};
pub use sqlite_writer::SqliteWriter;
pub use tx::WriteTx;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded file: one writer connection, a few readers.
    Sqlite,
    /// A shared server: one pool for reads and writes.
    Postgres,
}

impl Backend {
    /// Short name for logs and readiness (`sqlite`, `postgres`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Settings of the database beyond its URL.
#[derive(Debug, Clone, Default)]
pub struct DbOptions {
    /// SQLite only: caps the file at this many pages (`PRAGMA max_page_count`, applied to
    /// every writer connection), to model a full disk or enforce a quota.
    pub sqlite_max_pages: Option<u32>,
}

/// The database handle every service store holds; cloning is a reference-count bump.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    /// Every write transaction (one connection on SQLite).
    writer: AnyPool,
    /// Reads; the same pool as `writer` on PostgreSQL.
    reader: AnyPool,
    /// SQLite on a file: where it is and its page cap, for [`Db::sqlite_writer`].
    sqlite_file: Option<(std::path::PathBuf, Option<u32>)>,
    /// SQLite on a file: the inline point reads of [`Db::row_inline`].
    sqlite_reads: Option<sqlite_reads::SqliteReads>,
}

/// Bytes written by the readiness probe: more than the largest message (4000
/// characters of up to 4 bytes) with its index entries, so "ready" means a message of any
/// size can be stored now, not just that some small write still fits in a half-full page
/// or in the journal space a failed transaction left allocated.
const PROBE_BYTES: usize = 32 * 1024;

impl Db {
    /// Opens (creating and migrating) the database named by `url`.
    pub async fn open(url: &str, options: &DbOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let mut sqlite_file = None;
        let (backend, writer, reader) = if url.starts_with("sqlite:") {
            let (writer, reader, path) = sqlite::open(url, options).await?;
            sqlite_file = path.map(|path| (path, options.sqlite_max_pages));
            (Backend::Sqlite, writer, reader)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = postgres::open(url).await?;
            (Backend::Postgres, pool.clone(), pool)
        } else {
            return Err(StoreError::Open(format!(
                "unsupported database URL: {}",
                redact(url)
            )));
        };
        let sqlite_reads = sqlite_file
            .as_ref()
            .map(|(path, _)| sqlite_reads::SqliteReads::new(path));
        Ok(Self {
            inner: Arc::new(Inner {
                backend,
                writer,
                reader,
                sqlite_file,
                sqlite_reads,
            }),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The pool for read-only queries.
    pub fn reader(&self) -> &AnyPool {
        &self.inner.reader
    }

    /// SQLite on a file: runs a short point read (a primary-key probe of a hot row) on
    /// the calling thread instead of a round trip to an sqlx worker thread, and maps its
    /// first row, if any. `None` for PostgreSQL, in memory, or when no inline connection
    /// is free right now: the caller then runs the same query through [`Db::reader`].
    /// SQL with `$1`… parameters works on both paths. See `sqlite_reads`.
    pub fn row_inline<T, P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Result<Option<T>, StoreError>> {
        use rusqlite::OptionalExtension as _;
        self.inner
            .sqlite_reads
            .as_ref()?
            .try_read(|conn| conn.prepare_cached(sql)?.query_row(params, map).optional())
    }

    /// Starts a write transaction: the one way to write. See [`WriteTx`].
    pub async fn begin(&self) -> Result<WriteTx, StoreError> {
        let conn = self.inner.writer.acquire().await?;
        WriteTx::begin(conn, self.inner.backend).await
    }

    /// SQLite on a file: a write connection of its own for a dedicated blocking thread
    /// (the message appender's), opened on first use. `None` for PostgreSQL and for an
    /// in-memory SQLite database, which a second connection would not see.
    pub fn sqlite_writer(&self) -> Option<SqliteWriter> {
        let (path, max_pages) = self.inner.sqlite_file.clone()?;
        Some(SqliteWriter::new(path, max_pages, sqlite::BUSY_TIMEOUT_MS))
    }

    /// Succeeds when a read answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    /// Proves the writer can write now: a transaction through the same writer path as
    /// every other write that stores more than a page and commits. Backs `/readyz`.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let mut pad = vec![0u8; PROBE_BYTES];
        rand::rng().fill_bytes(&mut pad);
        let mut tx = self.begin().await?;
        let id: i64 =
            sqlx::query_scalar("INSERT INTO store_probe (at, pad) VALUES ($1, $2) RETURNING id")
                .bind(now_millis())
                .bind(pad)
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("DELETE FROM store_probe WHERE id < $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Closes every connection (tests reopening the same file, orderly shutdown).
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.reader.close().await;
    }
}

/// For messages and logs: `url` with its password (in the user info or a `password=` parameter) replaced.
pub fn redact(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_info = &url[scheme + 3..at];
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{}{user}{hidden}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    };
    if let Some(query_start) = out.find('?') {
        let (base, query) = out.split_at(query_start + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{query}");
    }
    out
}

/// Current time as Unix milliseconds, the unit every stored timestamp uses.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Converts a stored Unix-millisecond timestamp back to a date.
pub fn from_millis(millis: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://app:secret@db:5432/chat"),
            "postgres://app:***@db:5432/chat"
        );
        assert_eq!(
            super::redact("postgres://app@db/chat?sslmode=require&password=secret"),
            "postgres://app@db/chat?sslmode=require&password=***"
        );
        assert_eq!(super::redact("postgres:///chat"), "postgres:///chat");
        assert_eq!(
            super::redact("sqlite://./data/x.db"),
            "sqlite://./data/x.db"
        );
    }

    #[tokio::test]
    async fn both_sqlite_writers_checkpoint_the_wal_at_8000_pages() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("x.db").display());
        let db = super::Db::open(&url, &super::DbOptions::default())
            .await
            .expect("open");
        let mut appender = db.sqlite_writer().expect("a file has an append connection");
        let pages: i64 = appender
            .transaction(|conn| Ok(conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?))
            .expect("append connection answers");
        assert_eq!(pages, 8000);
        let mut tx = db.begin().await.expect("write transaction");
        let pages: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
            .fetch_one(&mut *tx)
            .await
            .expect("writer answers");
        assert_eq!(pages, 8000);
    }
}
