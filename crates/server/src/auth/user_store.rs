//! Queries on the `users` table (accounts and their password hashes), one text for both
//! backends. Auth owns it: it creates accounts, checks credentials and that a token's
//! account exists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use socket_hub_protocol::{User, UserId};

use super::last_seen::LastSeenWrites;
use crate::store::{Db, StoreError, WriteTx, is_unique_violation, now_millis};

/// An account as stored, with its password hash (never sent to clients).
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            username: row.username,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRecordRow {
    id: i64,
    username: String,
    password_hash: String,
}

/// How precisely "last seen" is kept: five minutes.
pub(crate) const LAST_SEEN_GRANULARITY_MS: i64 = 5 * 60 * 1000;

/// Users whose "last seen" this process read or wrote lately, most kept at once.
const RECENTLY_SEEN_MAX: usize = 65_536;

/// Accounts: names are unique case-insensitively, ids are never reused.
#[derive(Clone)]
pub struct UserStore {
    db: Db,
    recently_seen: Arc<RecentlySeen>,
    last_seen: LastSeenWrites,
}

impl UserStore {
    pub fn new(db: Db) -> Self {
        Self {
            last_seen: LastSeenWrites::new(db.clone()),
            db,
            recently_seen: Arc::default(),
        }
    }

    /// Creates an account; [`StoreError::Conflict`] when the name is taken in any case.
    pub async fn create(&self, username: &str, password_hash: &str) -> Result<User, StoreError> {
        let mut tx = self.db.begin().await?;
        match self.create_in(&mut tx, username, password_hash).await {
            Ok(user) => {
                tx.commit().await?;
                Ok(user)
            }
            Err(StoreError::Conflict(name)) => {
                tx.rollback().await?;
                Err(StoreError::Conflict(name))
            }
            Err(err) => Err(err),
        }
    }

    /// [`create`](Self::create) inside the caller's transaction, so an account and what
    /// comes with it (its first session) are stored together or not at all. On
    /// [`StoreError::Conflict`] the transaction must be rolled back.
    pub async fn create_in(
        &self,
        tx: &mut WriteTx,
        username: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let inserted: Result<i64, sqlx::Error> = sqlx::query_scalar(
            "INSERT INTO users (username, username_key, password_hash, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(username)
        .bind(username.to_lowercase())
        .bind(password_hash)
        .bind(now_millis())
        .fetch_one(&mut **tx)
        .await;
        match inserted {
            Ok(id) => Ok(User {
                id,
                username: username.to_owned(),
            }),
            Err(err) if is_unique_violation(&err) => Err(StoreError::Conflict("username")),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes the account of `user_id`: refused (`Ok(None)`) while they own a room;
    /// otherwise their memberships, invitations, notifications, blocks and bans go, every
    /// login session is revoked (returned, to close their sockets) and the row is kept
    /// anonymised as "deleted user", so the messages they sent keep an author.
    pub async fn delete(&self, user_id: UserId) -> Result<Option<Vec<String>>, StoreError> {
        let mut tx = self.db.begin().await?;
        let owned: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND role = 'owner'",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        if owned > 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        for sql in [
            "DELETE FROM memberships WHERE user_id = $1",
            "DELETE FROM invitations WHERE user_id = $1",
            "DELETE FROM notifications WHERE user_id = $1",
            "DELETE FROM blocks WHERE user_id = $1 OR blocked_id = $1",
            "DELETE FROM room_bans WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        let families: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT family_id FROM refresh_tokens
             WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        let now = now_millis();
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // A key no valid username can equal (it has a space), so the name is free again.
        sqlx::query(
            "UPDATE users SET username = 'deleted user', username_key = $2, password_hash = '!',
                 display_name = NULL, status_text = NULL, deleted_at = $3
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(format!("deleted user #{user_id}"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(families))
    }

    /// Replaces the user's password hash.
    pub async fn set_password(
        &self,
        user_id: UserId,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Records that the user connected now (their profile's "last seen"), to within
    /// [`LAST_SEEN_GRANULARITY_MS`]: a reconnect sooner than that costs a read, not a
    /// write, so a reconnect storm does not queue a write per socket; and no read either
    /// when this process read or wrote a time that recent itself (stored times only move
    /// forward, so the database holds at least that), or is writing one now.
    pub async fn touch(&self, user_id: UserId) -> Result<(), StoreError> {
        if !self.claim_touch(user_id) {
            return Ok(());
        }
        self.touch_claimed(user_id).await
    }

    /// The writer of "last seen" times, for the other store that writes them (presence,
    /// going offline): one batching writer for the column.
    pub(crate) fn last_seen_writes(&self) -> LastSeenWrites {
        self.last_seen.clone()
    }

    /// Claims the "last seen" update of `user_id` for the caller, who must then call
    /// [`touch_claimed`](Self::touch_claimed): `false` when there is nothing to do (a
    /// time within the granularity is known, or another connection's update is under
    /// way), so the user's other connections opening at the same moment skip it.
    pub fn claim_touch(&self, user_id: UserId) -> bool {
        self.recently_seen
            .claim(user_id, crate::store::now_millis())
    }

    /// The update [`claim_touch`](Self::claim_touch) granted. On failure the claim is
    /// dropped, so a later connection tries again.
    pub async fn touch_claimed(&self, user_id: UserId) -> Result<(), StoreError> {
        let result = self.touch_unless_recent(user_id).await;
        if result.is_err() {
            self.recently_seen.forget(user_id);
        }
        result
    }

    async fn touch_unless_recent(&self, user_id: UserId) -> Result<(), StoreError> {
        const LAST_SEEN: &str = "SELECT last_seen_at FROM users WHERE id = $1";
        let now = crate::store::now_millis();
        let inline = self.db.row_inline(LAST_SEEN, [user_id], |row| row.get(0));
        let last: Option<Option<i64>> = match inline {
            Some(read) => read?,
            None => {
                sqlx::query_scalar(LAST_SEEN)
                    .bind(user_id)
                    .fetch_optional(self.db.reader())
                    .await?
            }
        };
        if let Some(at) = last
            .flatten()
            .filter(|at| now - at < LAST_SEEN_GRANULARITY_MS)
        {
            // In place of the claim, which said `now`: the next update is due a
            // granularity after what is stored.
            self.recently_seen.settle(user_id, at);
            return Ok(());
        }
        let at = crate::store::now_millis();
        self.last_seen.write(user_id, at).await?;
        self.recently_seen.record(user_id, at);
        Ok(())
    }

    /// Looks an account up by name, case-insensitively.
    pub async fn find_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row: Option<UserRecordRow> = sqlx::query_as(
            "SELECT id, username, password_hash FROM users
                 WHERE username_key = $1 AND deleted_at IS NULL",
        )
        .bind(username.to_lowercase())
        .fetch_optional(self.db.reader())
        .await?;
        Ok(row.map(|row| UserRecord {
            user: User {
                id: row.id,
                username: row.username,
            },
            password_hash: row.password_hash,
        }))
    }

    /// Looks an account up by id (a deleted one is gone).
    pub async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        const FIND: &str = "SELECT id, username FROM users WHERE id = $1 AND deleted_at IS NULL";
        // Every WebSocket connection and authenticated request asks: inline where it can.
        let inline = self.db.row_inline(FIND, [id], |row| {
            Ok(User {
                id: row.get(0)?,
                username: row.get(1)?,
            })
        });
        if let Some(found) = inline {
            return found;
        }
        let row: Option<UserRow> = sqlx::query_as(FIND)
            .bind(id)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(row.map(User::from))
    }
}

/// The "last seen" times this process read or wrote lately, so a reconnect within
/// [`LAST_SEEN_GRANULARITY_MS`] costs no database round trip at all. Bounded: when full,
/// times too old to matter go first, and everything if that is not enough.
#[derive(Default)]
struct RecentlySeen(Mutex<HashMap<UserId, i64>>);

impl RecentlySeen {
    /// Whether a time known for `user_id` is within the granularity of `now`.
    #[cfg(test)]
    fn covers(&self, user_id: UserId, now: i64) -> bool {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Self::covered(&seen, user_id, now)
    }

    fn covered(seen: &HashMap<UserId, i64>, user_id: UserId, now: i64) -> bool {
        seen.get(&user_id)
            .is_some_and(|at| now - at < LAST_SEEN_GRANULARITY_MS)
    }

    /// Claims the update of `user_id` at `now`: `false` when a time known (or being
    /// written) covers `now`; otherwise remembers `now` as being written and `true`.
    fn claim(&self, user_id: UserId, now: i64) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if Self::covered(&seen, user_id, now) {
            return false;
        }
        Self::insert(&mut seen, user_id, now);
        true
    }

    /// Replaces what is known for `user_id` (a claim) with what the database holds.
    fn settle(&self, user_id: UserId, at: i64) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.remove(&user_id);
        Self::insert(&mut seen, user_id, at);
    }

    /// Drops what is known for `user_id` (a claimed update failed).
    fn forget(&self, user_id: UserId) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.remove(&user_id);
    }

    /// Remembers that the database holds `at` (or later) for `user_id`.
    fn record(&self, user_id: UserId, at: i64) {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Self::insert(&mut seen, user_id, at);
    }

    fn insert(seen: &mut HashMap<UserId, i64>, user_id: UserId, at: i64) {
        if seen.len() >= RECENTLY_SEEN_MAX && !seen.contains_key(&user_id) {
            seen.retain(|_, known| at - *known < LAST_SEEN_GRANULARITY_MS);
            if seen.len() >= RECENTLY_SEEN_MAX {
                seen.clear();
            }
        }
        let known = seen.entry(user_id).or_insert(at);
        *known = (*known).max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_connection_of_a_user_claims_the_update_until_it_fails() {
        let seen = RecentlySeen::default();
        let at = 1_000_000_000;
        assert!(seen.claim(7, at), "the first connection updates");
        assert!(
            !seen.claim(7, at + 1),
            "the others opening meanwhile skip it"
        );
        assert!(seen.claim(8, at + 1), "per user");
        seen.settle(8, at - LAST_SEEN_GRANULARITY_MS / 2);
        assert!(
            seen.claim(8, at + LAST_SEEN_GRANULARITY_MS / 2),
            "due a granularity after the stored time, not after the claim"
        );
        seen.forget(7);
        assert!(seen.claim(7, at + 2), "after a failure the next one tries");
        assert!(
            seen.claim(7, at + 2 + LAST_SEEN_GRANULARITY_MS),
            "and again later"
        );
    }

    #[test]
    fn recently_seen_covers_the_granularity_and_stays_bounded() {
        let seen = RecentlySeen::default();
        let at = 1_000_000_000;
        assert!(!seen.covers(1, at), "nothing known yet");
        seen.record(1, at);
        assert!(seen.covers(1, at + LAST_SEEN_GRANULARITY_MS - 1));
        assert!(!seen.covers(1, at + LAST_SEEN_GRANULARITY_MS));
        seen.record(1, at - 10);
        assert!(
            seen.covers(1, at + LAST_SEEN_GRANULARITY_MS - 1),
            "never moves back"
        );
        for user in 2..=i64::try_from(RECENTLY_SEEN_MAX).expect("fits") {
            seen.record(user, at);
        }
        let later = at + LAST_SEEN_GRANULARITY_MS;
        seen.record(0, later);
        assert!(seen.covers(0, later), "the newest is kept");
        assert!(!seen.covers(2, later), "outdated times made room");
        let len = seen.0.lock().expect("lock").len();
        assert!(len <= RECENTLY_SEEN_MAX, "{len} kept");
    }
}
