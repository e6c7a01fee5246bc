//! Queries presence needs: who may see whom (people who share a room or DM) and the
//! last-seen time. One text for both backends.

use std::collections::HashMap;

use socket_hub_protocol::UserId;

use crate::auth::last_seen::LastSeenWrites;
use crate::store::{Db, StoreError, now_millis};

/// Who shares rooms with whom, and when people were last seen.
#[derive(Clone)]
pub struct PresenceStore {
    db: Db,
    last_seen: LastSeenWrites,
}

/// `$2, $3, …` for `n` values bound after the first parameter.
fn placeholders(n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", i + 2))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PresenceStore {
    /// Over `db`, storing "went offline" times through `last_seen` (the users store's
    /// writer, see [`UserStore::last_seen_writes`](crate::auth::UserStore)).
    pub(crate) fn new(db: Db, last_seen: LastSeenWrites) -> Self {
        Self { db, last_seen }
    }

    /// Everyone who shares a room or DM with `user_id` (not the user): the people a
    /// change of their presence is sent to. One join over the membership indexes,
    /// answered as one comma-separated row: sqlx hands a SQLite result over row by row,
    /// a channel message each, which for everyone in a crowded room cost more than the
    /// join (a connect storm into one room of N people makes N such lists).
    pub async fn contacts(&self, user_id: UserId) -> Result<Vec<UserId>, StoreError> {
        let ids: Option<String> = sqlx::query_scalar(
            "SELECT string_agg(CAST(c.user_id AS TEXT), ',') FROM (
               SELECT DISTINCT o.user_id FROM memberships m
                 JOIN memberships o ON o.room_id = m.room_id
               WHERE m.user_id = $1 AND o.user_id <> $1) AS c",
        )
        .bind(user_id)
        .fetch_one(self.db.reader())
        .await?;
        ids.as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|id| !id.is_empty())
            .map(|id| {
                id.parse()
                    .map_err(|_| StoreError::Database(format!("not a user id: {id:?}")))
            })
            .collect()
    }

    /// Those of `users` who share a room or DM with `viewer` (the viewer included when
    /// asked about), each with when they were last seen.
    pub async fn visible_to(
        &self,
        viewer: UserId,
        users: &[UserId],
    ) -> Result<HashMap<UserId, Option<i64>>, StoreError> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT u.id, u.last_seen_at FROM users u
             WHERE u.id IN ({}) AND u.deleted_at IS NULL AND (u.id = $1 OR EXISTS (
               SELECT 1 FROM memberships m JOIN memberships o ON o.room_id = m.room_id
               WHERE m.user_id = $1 AND o.user_id = u.id))",
            placeholders(users.len())
        );
        let mut query = sqlx::query_as::<_, (i64, Option<i64>)>(&sql).bind(viewer);
        for user_id in users {
            query = query.bind(*user_id);
        }
        Ok(query
            .fetch_all(self.db.reader())
            .await?
            .into_iter()
            .collect())
    }

    /// Records that `user_id` went offline now (batched with others, see
    /// `auth::last_seen`); returns the time stored.
    pub async fn went_offline(&self, user_id: UserId) -> Result<i64, StoreError> {
        let now = now_millis();
        self.last_seen.write(user_id, now).await?;
        Ok(now)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_follow_the_first_parameter() {
        assert_eq!(super::placeholders(3), "$2, $3, $4");
        assert_eq!(super::placeholders(0), "");
    }
}
