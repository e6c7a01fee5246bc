//! Queries on `notifications`, one text for both backends.

use socket_hub_protocol::{Notification, NotificationKind, RoomId, Seq, User, UserId};

use crate::store::{Db, StoreError, from_millis, now_millis};

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: i64,
    kind: String,
    room_id: Option<i64>,
    from_id: Option<i64>,
    from_name: Option<String>,
    message: Option<String>,
    seq: Option<i64>,
    read_at: Option<i64>,
    created_at: i64,
}

impl NotificationRow {
    fn into_notification(self) -> Option<Notification> {
        Some(Notification {
            id: self.id,
            kind: kind_from(&self.kind)?,
            room_id: self.room_id,
            from: match (self.from_id, self.from_name) {
                (Some(id), Some(username)) => Some(User { id, username }),
                _ => None,
            },
            message: self.message,
            seq: self.seq,
            read: self.read_at.is_some(),
            created_at: from_millis(self.created_at),
        })
    }
}

const COLUMNS: &str = "SELECT n.id, n.kind, n.room_id, n.from_user_id AS from_id,
        u.username AS from_name, n.message, n.seq, n.read_at, n.created_at
     FROM notifications n LEFT JOIN users u ON u.id = n.from_user_id";

/// The stored name of a kind.
pub(crate) fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Invited => "invited",
        NotificationKind::Mentioned => "mentioned",
        NotificationKind::DirectMessage => "direct_message",
        NotificationKind::Kicked => "kicked",
        NotificationKind::Banned => "banned",
        NotificationKind::RoomDeleted => "room_deleted",
    }
}

fn kind_from(name: &str) -> Option<NotificationKind> {
    [
        NotificationKind::Invited,
        NotificationKind::Mentioned,
        NotificationKind::DirectMessage,
        NotificationKind::Kicked,
        NotificationKind::Banned,
        NotificationKind::RoomDeleted,
    ]
    .into_iter()
    .find(|kind| kind_name(*kind) == name)
}

/// What a new notification says, for every user it goes to.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub kind: NotificationKind,
    pub room_id: Option<RoomId>,
    pub from: Option<User>,
    pub message: Option<String>,
    /// For a mention, the mentioning message's seq (read markers mark it read).
    pub seq: Option<Seq>,
}

/// Every user's notification stream.
#[derive(Clone)]
pub struct NotificationStore {
    db: Db,
}

impl NotificationStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Stores `new` for each of `users` (one transaction); returns them in `users` order.
    pub async fn create(
        &self,
        users: &[UserId],
        new: &NewNotification,
    ) -> Result<Vec<(UserId, Notification)>, StoreError> {
        let now = now_millis();
        let mut tx = self.db.begin().await?;
        let mut out = Vec::with_capacity(users.len());
        for user_id in users {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO notifications (user_id, kind, room_id, from_user_id, message,
                                            seq, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(*user_id)
            .bind(kind_name(new.kind))
            .bind(new.room_id)
            .bind(new.from.as_ref().map(|u| u.id))
            .bind(new.message.as_deref())
            .bind(new.seq)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            out.push((
                *user_id,
                Notification {
                    id,
                    kind: new.kind,
                    room_id: new.room_id,
                    from: new.from.clone(),
                    message: new.message.clone(),
                    seq: new.seq,
                    read: false,
                    created_at: from_millis(now),
                },
            ));
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Up to `limit` of `user_id`'s notifications with ids above `after`, oldest first;
    /// `unread_only` leaves the read ones out.
    pub async fn list(
        &self,
        user_id: UserId,
        after: i64,
        limit: u32,
        unread_only: bool,
    ) -> Result<Vec<Notification>, StoreError> {
        let unread = if unread_only {
            " AND n.read_at IS NULL"
        } else {
            ""
        };
        let rows: Vec<NotificationRow> = sqlx::query_as(&format!(
            "{COLUMNS} WHERE n.user_id = $1 AND n.id > $2{unread} ORDER BY n.id LIMIT $3"
        ))
        .bind(user_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(NotificationRow::into_notification)
            .collect())
    }

    /// Whether `user_id` may have unread notifications: `false` only when an inline probe
    /// (see [`Db::row_inline`]) found none, so a new connection can skip its backlog
    /// read. Found, not probed or failed: `true`, and the backlog read answers (or logs).
    pub fn may_have_unread(&self, user_id: UserId) -> bool {
        const PROBE: &str =
            "SELECT 1 FROM notifications WHERE user_id = $1 AND read_at IS NULL LIMIT 1";
        let probed = self.db.row_inline(PROBE, [user_id], |_| Ok(()));
        !matches!(probed, Some(Ok(None)))
    }

    /// How many of `user_id`'s notifications are unread.
    pub async fn unread(&self, user_id: UserId) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.db.reader())
        .await?;
        Ok(count)
    }

    /// Marks `user_id`'s notifications up to id `up_to` read.
    pub async fn mark_read(&self, user_id: UserId, up_to: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        sqlx::query(
            "UPDATE notifications SET read_at = $3
             WHERE user_id = $1 AND id <= $2 AND read_at IS NULL",
        )
        .bind(user_id)
        .bind(up_to)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Marks `user_id`'s unread mentions in `room_id` at or before `seq` read (the read
    /// marker moved there); returns how many.
    pub async fn mark_mentions_read(
        &self,
        user_id: UserId,
        room_id: RoomId,
        seq: Seq,
    ) -> Result<u64, StoreError> {
        // Read markers move often and mentions are rare: a read on the partial index of
        // unread notifications first, so most markers cost no write transaction.
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM notifications
             WHERE user_id = $1 AND room_id = $2 AND read_at IS NULL
               AND kind = 'mentioned' AND seq <= $3 LIMIT 1",
        )
        .bind(user_id)
        .bind(room_id)
        .bind(seq)
        .fetch_optional(self.db.reader())
        .await?;
        if pending.is_none() {
            return Ok(0);
        }
        let mut tx = self.db.begin().await?;
        let done = sqlx::query(
            "UPDATE notifications SET read_at = $4
             WHERE user_id = $1 AND room_id = $2 AND read_at IS NULL
               AND kind = 'mentioned' AND seq <= $3",
        )
        .bind(user_id)
        .bind(room_id)
        .bind(seq)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}
