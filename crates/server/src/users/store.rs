//! Queries on the `users` table.

use async_trait::async_trait;
use socket_hub_protocol::{User, UserId};
use sqlx::Row;

use crate::store::sqlite::SqliteStore;
use crate::store::{StoreError, is_unique_violation, now_millis};

/// An account as stored, with its password hash (never sent to clients).
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

/// Persistence the users and auth services need.
#[async_trait]
pub trait UserStore {
    /// Creates an account; [`StoreError::Conflict`] when the name is taken in any case.
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError>;
    /// Looks an account up by name, case-insensitively.
    async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Looks an account up by id.
    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError>;
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User, StoreError> {
        let result = sqlx::query(
            "INSERT INTO users (username, username_key, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
        )
        .bind(username)
        .bind(username.to_lowercase())
        .bind(password_hash)
        .bind(now_millis())
        .fetch_one(&self.writer)
        .await;
        match result {
            Ok(row) => Ok(User {
                id: row.get(0),
                username: username.to_owned(),
            }),
            Err(err) if is_unique_violation(&err) => Err(StoreError::Conflict("username")),
            Err(err) => Err(err.into()),
        }
    }

    async fn find_user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row =
            sqlx::query("SELECT id, username, password_hash FROM users WHERE username_key = ?1")
                .bind(username.to_lowercase())
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.map(|row| UserRecord {
            user: User {
                id: row.get(0),
                username: row.get(1),
            },
            password_hash: row.get(2),
        }))
    }

    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id, username FROM users WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.map(|row| User {
            id: row.get(0),
            username: row.get(1),
        }))
    }
}
