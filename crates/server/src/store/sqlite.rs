//! Opening the embedded SQLite file: one file, WAL journal, zero setup.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one
//! connection (queued in-process instead of spinning on `SQLITE_BUSY`) while reads use
//! a small pool of their own. `synchronous=FULL` makes a commit durable before the
//! server acknowledges a message. The SQLite URL parser knows only
//! mode/cache/immutable/vfs, so the pragmas are set on each new connection.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use super::{DbOptions, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Milliseconds a statement waits for a lock held by another connection.
const BUSY_TIMEOUT_MS: u32 = 5_000;

/// Opens (creating) the file named by `url`, migrates it, and returns the writer and
/// reader pools.
pub(super) async fn open(url: &str, options: &DbOptions) -> Result<(AnyPool, AnyPool), StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or(rest);
    if let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Open(format!("{}: {e}", dir.display())))?;
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
    Ok((writer, reader))
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
