//! `TokenStore` on SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::{Consumed, TokenStore, fresh, unconsumed};
use crate::store::sqlite::SqliteStore;
use crate::store::{StoreError, now_millis};
use socket_hub_protocol::UserId;

#[async_trait]
impl TokenStore for SqliteStore {
    async fn insert_refresh(
        &self,
        user_id: UserId,
        family_id: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(token_hash)
        .bind(family_id)
        .bind(user_id)
        .bind(expires_at)
        .bind(now_millis())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn consume_refresh(&self, token_hash: &str) -> Result<Consumed, StoreError> {
        let now = now_millis();
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = ?2
             WHERE token_hash = ?1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?2
             RETURNING user_id, family_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = spent {
            return Ok(fresh(&row));
        }
        let row = sqlx::query(
            "SELECT family_id, used_at IS NOT NULL, revoked_at IS NOT NULL
             FROM refresh_tokens WHERE token_hash = ?1",
        )
        .bind(token_hash)
        .fetch_optional(&self.writer)
        .await?;
        Ok(unconsumed(row.as_ref()))
    }

    async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(now_millis())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn refresh_family(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT family_id FROM refresh_tokens WHERE token_hash = ?1")
            .bind(token_hash)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|row| row.get(0)))
    }
}
