//! The SQLite search indexer: puts committed chat messages into the FTS5 index after
//! their ack, in large chunks, instead of one trigger call per message inside the
//! appender's transaction (which cost the appender 1.6 to 6 times its throughput: FTS5
//! writes a new index segment per transaction, see BENCHMARKS.md).
//!
//! The watermark `search_progress.indexed_upto` (migration `0016_search_deferred.sql`)
//! splits the messages: at or below it every chat message is indexed (the delete and
//! update triggers keep those in step), above it none is. A chunk indexes the next
//! messages above the watermark as they are now, so an edit or erasure made before the
//! indexer got there needs no work, and moves the watermark, in one write transaction:
//! two indexers (the appender's thread and a search) can never index a row twice.
//!
//! Who runs it: the appender's thread once [`INDEX_BACKLOG`] messages wait or after it
//! has been idle for a moment ([`INDEX_IDLE`] unless configured), and every search first ([`catch_up`]), so a search
//! finds every message acknowledged before it. PostgreSQL needs none of this: its GIN
//! index buffers new entries in a pending list of its own.

use std::time::Duration;

use crate::store::{Backend, Db, StoreError};

/// Messages indexed per transaction by the appender's thread: large enough that FTS5
/// writes few, large segments; small enough that appends queued behind a chunk wait
/// only milliseconds.
pub(super) const INDEX_CHUNK: i64 = 2048;
/// Appended messages after which the appender's thread indexes even while busy, so the
/// backlog (and the work a search may have to do first) stays bounded under sustained
/// load.
pub(super) const INDEX_BACKLOG: usize = 2048;
/// Default idle time after which the appender's thread indexes what is left.
pub(super) const INDEX_IDLE: Duration = Duration::from_millis(200);

/// The watermark, how many rows the next chunk of at most `$1` holds, and the id it
/// reaches (NULL when nothing waits).
const NEXT_CHUNK: &str = "SELECT (SELECT indexed_upto FROM search_progress) AS done,
        COUNT(*) AS rows, MAX(id) AS upto
     FROM (SELECT id FROM messages
           WHERE id > (SELECT indexed_upto FROM search_progress)
           ORDER BY id LIMIT $1)";
/// Indexes the chat messages with `$1 < id <= $2` (events and erased messages never).
const INDEX_RANGE: &str = "INSERT INTO messages_fts (rowid, content)
     SELECT id, content FROM messages
     WHERE id > $1 AND id <= $2 AND event IS NULL AND content <> ''";
/// Moves the watermark to `$1`.
const ADVANCE: &str = "UPDATE search_progress SET indexed_upto = $1";
/// 1 when messages wait to be indexed.
const BEHIND: &str = "SELECT CASE WHEN (SELECT indexed_upto FROM search_progress)
                                 < COALESCE((SELECT MAX(id) FROM messages), 0)
                            THEN 1 ELSE 0 END";

/// One chunk on a rusqlite connection inside the caller's write transaction: indexes up
/// to `most` rows above the watermark (events count, though they are not indexed) and
/// returns how many it passed (0 when the index is current).
pub(super) fn index_chunk(conn: &rusqlite::Connection, most: i64) -> Result<i64, StoreError> {
    let (done, rows, upto): (i64, i64, Option<i64>) = conn
        .prepare_cached(NEXT_CHUNK)?
        .query_row([most], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let Some(upto) = upto else { return Ok(0) };
    conn.prepare_cached(INDEX_RANGE)?.execute([done, upto])?;
    conn.prepare_cached(ADVANCE)?.execute([upto])?;
    Ok(rows)
}

/// Brings the index up to date with every committed message, so the search that calls
/// it sees all of them. A read first: nothing is written when the index is current
/// (the appender's thread keeps it so between bursts). SQLite only; a no-op otherwise.
pub(super) async fn catch_up(db: &Db) -> Result<(), StoreError> {
    if db.backend() != Backend::Sqlite {
        return Ok(());
    }
    let behind: i64 = sqlx::query_scalar(BEHIND).fetch_one(db.reader()).await?;
    if behind == 0 {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    let (done, _rows, upto): (i64, i64, Option<i64>) = sqlx::query_as(NEXT_CHUNK)
        .bind(i64::MAX)
        .fetch_one(&mut *tx)
        .await?;
    if let Some(upto) = upto {
        sqlx::query(INDEX_RANGE)
            .bind(done)
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        sqlx::query(ADVANCE).bind(upto).execute(&mut *tx).await?;
    }
    tx.commit().await
}
