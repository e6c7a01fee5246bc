//! Opening the embedded SQLite file: one file, WAL journal, zero setup.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one
//! connection (queued in-process instead of spinning on `SQLITE_BUSY`) while reads use
//! a small pool of their own. Message appends, the bulk of the writes, have a second
//! write connection of their own on the appender's thread ([`super::SqliteWriter`]);
//! the two take turns on SQLite's write lock (`BEGIN IMMEDIATE` and the busy timeout). `synchronous=FULL` makes a commit durable before the
//! server acknowledges a message. The SQLite URL parser knows only
//! mode/cache/immutable/vfs, so the pragmas are set on each new connection.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use super::{DbOptions, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Milliseconds a statement waits for a lock held by another connection.
pub(super) const BUSY_TIMEOUT_MS: u32 = 5_000;
/// Checkpoint the WAL once it holds 8,000 pages (32 MiB at 4 KiB) instead of SQLite's
/// 1,000, on every write connection. A checkpoint runs inside the commit that crosses
/// the mark and holds up the appends queued behind it; with 1,000 rooms written at
/// 10 k messages/s, 1,000 pages filled every ~0.1 s. Fewer, larger checkpoints write
/// each hot index page back once for many commits: at 10 k/s ack p99 fell from
/// 64–91 ms to 26–59 ms and p50 from 6–12 ms to 3–5 ms (BENCHMARKS.md). The WAL file
/// keeps that size on disk between checkpoints.
pub(super) const WAL_AUTOCHECKPOINT: &str = "PRAGMA wal_autocheckpoint = 8000";

/// Opens (creating) the file named by `url`, migrates it, and returns the writer and
/// reader pools, and the file's path (`None` in memory).
pub(super) async fn open(
    url: &str,
    options: &DbOptions,
) -> Result<(AnyPool, AnyPool, Option<PathBuf>), StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or(rest);
    let file = (!is_in_memory(url, path)).then(|| PathBuf::from(path));
    if let Some(file) = &file {
        make_private(file)?;
    }
    let max_pages = options.sqlite_max_pages;
    let writer = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // sqlx pings every connection it hands out by default: on SQLite a round trip
        // to the connection's worker thread per acquire, i.e. per append batch, for a
        // file that cannot have hung up. A failing statement still discards the
        // connection (see `WriteTx`).
        .test_before_acquire(false)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                for pragma in [
                    "PRAGMA journal_mode = WAL",
                    "PRAGMA synchronous = FULL",
                    "PRAGMA foreign_keys = ON",
                    WAL_AUTOCHECKPOINT,
                ] {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                sqlx::query(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
                    .execute(&mut *conn)
                    .await?;
                if let Some(pages) = max_pages {
                    sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            })
        })
        .connect(&with_mode(url, "rwc"))
        .await
        .map_err(|e| StoreError::Open(e.to_string()))?;
    MIGRATOR
        .run(&writer)
        .await
        .map_err(|e| StoreError::Open(format!("migration failed: {e}")))?;
    let reader = AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(10))
        // As for the writer: no ping per acquire of a local file.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::query("PRAGMA query_only = ON")
                    .execute(&mut *conn)
                    .await?;
                sqlx::query(&format!("PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            })
        })
        .connect(&with_mode(url, "rw"))
        .await
        .map_err(|e| StoreError::Open(e.to_string()))?;
    Ok((writer, reader, file))
}

/// Creates the database file 0600 (and its directory 0700) before SQLite opens it:
/// SQLite gives the `-wal` and `-shm` files the database file's mode, so none of the
/// three is readable by other users. Files left looser by an older version are
/// tightened (see `crate::files`).
fn make_private(path: &std::path::Path) -> Result<(), StoreError> {
    let fail =
        |p: &std::path::Path, e: std::io::Error| StoreError::Open(format!("{}: {e}", p.display()));
    if let Some(dir) = path.parent() {
        crate::files::create_private_dir(dir).map_err(|e| fail(dir, e))?;
    }
    crate::files::ensure_private_file(path).map_err(|e| fail(path, e))?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        crate::files::restrict(&side).map_err(|e| fail(&side, e))?;
    }
    Ok(())
}

/// An in-memory database has no file to protect.
fn is_in_memory(url: &str, path: &str) -> bool {
    path.is_empty() || path.starts_with(":memory:") || url.contains("mode=memory")
}

/// `url` with `mode=<mode>` unless it already names a mode.
fn with_mode(url: &str, mode: &str) -> String {
    if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode={mode}")
    } else {
        format!("{url}?mode={mode}")
    }
}
