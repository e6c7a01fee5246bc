//! Queries on the `refresh_tokens` table, one text for both backends.

use socket_hub_protocol::UserId;

use crate::store::{Db, StoreError, WriteTx, now_millis};

/// What presenting a refresh token for rotation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was valid: it is now spent and its successor stored, in one transaction.
    Rotated { user_id: UserId, family_id: String },
    /// Already spent by a rotation at `used_at` (Unix ms): a second tab racing the first
    /// (inside the grace window) or a replay (after it).
    Spent {
        user_id: UserId,
        family_id: String,
        used_at: i64,
    },
    /// Revoked (logout or an earlier reuse).
    Revoked,
    /// Past its expiry.
    Expired,
    /// Never issued.
    Unknown,
}

#[derive(sqlx::FromRow)]
struct Owner {
    user_id: i64,
    family_id: String,
}

#[derive(sqlx::FromRow)]
struct TokenState {
    user_id: i64,
    family_id: String,
    used_at: Option<i64>,
    /// 1 when revoked (selected as an integer: `Any` reads booleans only from PostgreSQL).
    revoked: i64,
}

/// Refresh tokens, stored only as hashes, grouped in families (one per login).
#[derive(Clone)]
pub struct TokenStore {
    db: Db,
}

impl TokenStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores a new refresh token (by hash) in `family_id`.
    pub async fn insert(
        &self,
        user_id: UserId,
        family_id: &str,
        token_hash: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        self.insert_in(&mut tx, user_id, family_id, token_hash, expires_at)
            .await?;
        tx.commit().await
    }

    /// [`insert`](Self::insert) inside the caller's transaction.
    pub async fn insert_in(
        &self,
        tx: &mut WriteTx,
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
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Spends `token_hash` and stores `successor_hash` (expiring at `expires_at`) in its
    /// family, atomically: two concurrent presentations see exactly one `Rotated`, and
    /// the other sees `Spent` only once the successor is stored.
    pub async fn rotate(
        &self,
        token_hash: &str,
        successor_hash: &str,
        expires_at: i64,
    ) -> Result<Rotation, StoreError> {
        let now = now_millis();
        let mut tx = self.db.begin().await?;
        let spent: Option<Owner> = sqlx::query_as(
            "UPDATE refresh_tokens SET used_at = $2
             WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2
             RETURNING user_id, family_id",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(owner) = spent {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(successor_hash)
            .bind(&owner.family_id)
            .bind(owner.user_id)
            .bind(expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated {
                user_id: owner.user_id,
                family_id: owner.family_id,
            });
        }
        let state: Option<TokenState> = sqlx::query_as(
            "SELECT user_id, family_id, used_at,
                    CASE WHEN revoked_at IS NULL THEN 0 ELSE 1 END AS revoked
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(match state {
            None => Rotation::Unknown,
            Some(state) if state.revoked != 0 => Rotation::Revoked,
            Some(TokenState {
                user_id,
                family_id,
                used_at: Some(used_at),
                ..
            }) => Rotation::Spent {
                user_id,
                family_id,
                used_at,
            },
            Some(_) => Rotation::Expired,
        })
    }

    /// Revokes every login session of `user_id` but `keep` (a password change); returns
    /// the sessions (families) revoked.
    pub async fn revoke_others(
        &self,
        user_id: UserId,
        keep: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        let families: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT family_id FROM refresh_tokens
             WHERE user_id = $1 AND family_id <> $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(keep)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $3
             WHERE user_id = $1 AND family_id <> $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(keep)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(families)
    }

    /// Revokes every token of a family (reuse detected, or logout).
    pub async fn revoke_family(&self, family_id: &str) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family_id)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Families revoked after `since` (Unix ms), with when: how every instance's
    /// in-memory revocation list catches up with the store (at start, then polling).
    pub async fn revoked_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT family_id, MAX(revoked_at) FROM refresh_tokens
             WHERE revoked_at > $1 GROUP BY family_id",
        )
        .bind(since)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// The family of a token, if it exists.
    pub async fn family(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(self.db.reader())
                .await?,
        )
    }

    /// When a token was spent by a rotation (Unix ms), if it was: the start of its grace
    /// window.
    pub async fn spent_at(&self, token_hash: &str) -> Result<Option<i64>, StoreError> {
        let used_at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT used_at FROM refresh_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(self.db.reader())
                .await?;
        Ok(used_at.flatten())
    }
}
