//! Opening PostgreSQL, for several Socket-Hub processes sharing one database.
//!
//! Per-room sequence numbers come from `UPDATE rooms SET last_seq = last_seq + 1`, whose
//! row lock serialises concurrent writers of one room across every process until the
//! message is committed: seqs stay unique and gap-free. Migrations take sqlx's advisory
//! lock, so instances starting together migrate once.

use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use super::{StoreError, redact};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Connects to `url` and applies pending migrations.
pub(super) async fn open(url: &str) -> Result<AnyPool, StoreError> {
    let pool = AnyPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| StoreError::Open(format!("{}: {e}", redact(url))))?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| StoreError::Open(format!("migration failed: {e}")))?;
    Ok(pool)
}
