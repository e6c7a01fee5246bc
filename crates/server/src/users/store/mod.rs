//! Queries on the `users` table: the trait, and one impl per backend.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use socket_hub_protocol::{User, UserId};

use crate::store::{ChatRow, StoreError};

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
