//! Queries on the `users` table, one text for both backends.

use async_trait::async_trait;
use socket_hub_protocol::{User, UserId};
use sqlx::Row;

use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ChatRow, StoreError, now_millis};

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

/// Columns `id, username`.
fn user(row: &impl ChatRow) -> User {
    User {
        id: row.int(0),
        username: row.text(1),
    }
}

/// Columns `id, username, password_hash`.
fn user_record(row: &impl ChatRow) -> UserRecord {
    UserRecord {
        user: user(row),
        password_hash: row.text(2),
    }
}

/// Maps the insert's outcome: a unique violation means the name is taken.
fn created(result: Result<i64, sqlx::Error>, username: &str) -> Result<User, StoreError> {
    match result {
        Ok(id) => Ok(User {
            id,
            username: username.to_owned(),
        }),
        Err(err) if crate::store::is_unique_violation(&err) => {
            Err(StoreError::Conflict("username"))
        }
        Err(err) => Err(err.into()),
    }
}

/// The [`UserStore`] queries, written once in SQL that SQLite and PostgreSQL both accept
/// (`$n` parameters), stamped out for each backend's pools.
macro_rules! impl_user_store {
    ($store:ty, writer: $writer:ident, reader: $reader:ident) => {
        #[async_trait]
        impl UserStore for $store {
            async fn create_user(
                &self,
                username: &str,
                password_hash: &str,
            ) -> Result<User, StoreError> {
                let result = sqlx::query(
                    "INSERT INTO users (username, username_key, password_hash, created_at)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(username)
                .bind(username.to_lowercase())
                .bind(password_hash)
                .bind(now_millis())
                .fetch_one(&self.$writer)
                .await
                .map(|row| row.get(0));
                created(result, username)
            }

            async fn find_user_by_name(
                &self,
                username: &str,
            ) -> Result<Option<UserRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT id, username, password_hash FROM users WHERE username_key = $1",
                )
                .bind(username.to_lowercase())
                .fetch_optional(&self.$reader)
                .await?;
                Ok(row.as_ref().map(user_record))
            }

            async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
                let row = sqlx::query("SELECT id, username FROM users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.as_ref().map(user))
            }
        }
    };
}

impl_user_store!(SqliteStore, writer: writer, reader: reader);
impl_user_store!(PgStore, writer: pool, reader: pool);
