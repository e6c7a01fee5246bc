//! Queries on the `refresh_tokens` table: the trait, and one impl per backend.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use socket_hub_protocol::UserId;

use crate::store::{ChatRow, StoreError};

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
