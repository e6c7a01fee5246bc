//! The PostgreSQL backend, for several Socket-Hub processes sharing one database.
//!
//! Per-room sequence numbers come from `UPDATE rooms SET last_seq = last_seq + 1`, whose
//! row lock serialises concurrent writers of one room across every process until the
//! message is committed: seqs stay unique and gap-free. Migrations take sqlx's advisory
//! lock, so instances starting together migrate once.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{Store, StoreError};

/// PostgreSQL-backed [`Store`]; the per-service query impls live beside each service.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    /// Connects to `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| StoreError::Open(format!("{}: {e}", redact(url))))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| StoreError::Open(format!("migration failed: {e}")))?;
        Ok(Self { pool })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://app:secret@db:5432/chat"),
            "postgres://…@db:5432/chat"
        );
        assert_eq!(super::redact("postgres:///chat"), "postgres:///chat");
    }
}
