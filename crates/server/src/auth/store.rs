//! Queries on the `refresh_tokens` table, one text for both backends.

use async_trait::async_trait;
use socket_hub_protocol::UserId;
use sqlx::Row;

use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ChatRow, StoreError, now_millis};

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumed {
    /// Valid and now spent: issue the next token in `family_id`.
    Fresh { user_id: UserId, family_id: String },
    /// Already spent by a refresh: someone replayed it, so the family must die.
    Reused { family_id: String },
    /// Revoked (logout or an earlier reuse).
    Revoked,
    /// Past its expiry.
    Expired,
    /// Never issued.
    Unknown,
}

/// Persistence the auth service needs for refresh-token rotation.
#[async_trait]
pub trait TokenStore {
    /// Stores a new refresh token (by hash) in `family_id`.
    async fn insert_refresh(
        &self,
        user_id: UserId,
        family_id: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Atomically marks the token spent, reporting what it was. Two concurrent
    /// presentations of one token see exactly one `Fresh`.
    async fn consume_refresh(&self, token_hash: &str) -> Result<Consumed, StoreError>;
    /// Revokes every token of a family (reuse detected, or logout).
    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError>;
    /// The family of a token, if it exists.
    async fn refresh_family(&self, token_hash: &str) -> Result<Option<String>, StoreError>;
}

/// Columns `family_id, spent (used), revoked` of a token that could not be consumed.
fn unconsumed(row: Option<&impl ChatRow>) -> Consumed {
    match row {
        None => Consumed::Unknown,
        Some(row) if row.flag(2) => Consumed::Revoked,
        Some(row) if row.flag(1) => Consumed::Reused {
            family_id: row.text(0),
        },
        Some(_) => Consumed::Expired,
    }
}

/// Columns `user_id, family_id` of a token just consumed.
fn fresh(row: &impl ChatRow) -> Consumed {
    Consumed::Fresh {
        user_id: row.int(0),
        family_id: row.text(1),
    }
}

/// The [`TokenStore`] queries, written once in SQL that SQLite and PostgreSQL both accept
/// (`$n` parameters), stamped out for each backend's pools.
macro_rules! impl_token_store {
    ($store:ty, writer: $writer:ident, reader: $reader:ident) => {
        #[async_trait]
        impl TokenStore for $store {
            async fn insert_refresh(
                &self,
                user_id: UserId,
                family_id: &str,
                token_hash: &str,
                expires_at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(token_hash)
                .bind(family_id)
                .bind(user_id)
                .bind(expires_at)
                .bind(now_millis())
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn consume_refresh(&self, token_hash: &str) -> Result<Consumed, StoreError> {
                let now = now_millis();
                let spent = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $2
                     WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
                     RETURNING user_id, family_id",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&self.$writer)
                .await?;
                if let Some(row) = spent {
                    return Ok(fresh(&row));
                }
                let row = sqlx::query(
                    "SELECT family_id, used_at IS NOT NULL, revoked_at IS NOT NULL
                     FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.$writer)
                .await?;
                Ok(unconsumed(row.as_ref()))
            }

            async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
                )
                .bind(family_id)
                .bind(now_millis())
                .execute(&self.$writer)
                .await?;
                Ok(())
            }

            async fn refresh_family(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map(|row| row.get(0)))
            }
        }
    };
}

impl_token_store!(SqliteStore, writer: writer, reader: reader);
impl_token_store!(PgStore, writer: pool, reader: pool);
