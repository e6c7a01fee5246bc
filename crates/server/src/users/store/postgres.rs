//! `UserStore` on PostgreSQL.

use async_trait::async_trait;
use socket_hub_protocol::{User, UserId};
use sqlx::Row;

use super::{UserRecord, UserStore, created, user, user_record};
use crate::store::postgres::PgStore;
use crate::store::{StoreError, now_millis};

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError> {
        let result = sqlx::query(
            "INSERT INTO users (username, username_key, password_hash, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(username.to_lowercase())
        .bind(password_hash)
        .bind(now_millis())
        .fetch_one(&self.pool)
        .await
        .map(|row| row.get(0));
        created(result, username)
    }

    async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row =
            sqlx::query("SELECT id, username, password_hash FROM users WHERE username_key = $1")
                .bind(username.to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(user_record))
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id, username FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user))
    }
}
