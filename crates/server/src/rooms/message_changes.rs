//! SQL of a message's life after it is sent: reading messages as they are now (edited,
//! deleted, with reply quotes and reactions) and, inside a [`RoomChange`], editing,
//! erasing and reacting. One text for both backends.

use socket_hub_protocol::attachments::Attachment;
use socket_hub_protocol::lifecycle::{DELETED_EXCERPT, ReactionCount, ReplyQuote};
use socket_hub_protocol::{Message, RoomId, Seq, User, UserId};

use super::message_store::MessageRow;
use super::store::RoomChange;
use crate::store::{StoreError, from_millis, now_millis};

/// The `SELECT … FROM` of a message as it is now, with the message it replies to
/// (`r`); callers add `WHERE` and `ORDER BY` over `m`.
macro_rules! current_select {
    () => {
        "SELECT m.id, m.room_id, m.seq, m.user_id, u.username, m.content,
                m.client_msg_id, m.event, m.attachments, m.created_at, m.edited_at, m.deleted_at,
                r.id AS reply_id, r.seq AS reply_seq, r.user_id AS reply_user_id,
                ru.username AS reply_username, substr(r.content, 1, 100) AS reply_excerpt,
                r.deleted_at AS reply_deleted_at
         FROM messages m JOIN users u ON u.id = m.user_id
         LEFT JOIN messages r ON r.id = m.reply_to
         LEFT JOIN users ru ON ru.id = r.user_id "
    };
}
pub(super) use current_select;

/// A message as it is now; see [`current_select`].
#[derive(sqlx::FromRow)]
pub(super) struct CurrentRow {
    #[sqlx(flatten)]
    base: MessageRow,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
    reply_id: Option<i64>,
    reply_seq: Option<i64>,
    reply_user_id: Option<i64>,
    reply_username: Option<String>,
    reply_excerpt: Option<String>,
    reply_deleted_at: Option<i64>,
}

impl From<CurrentRow> for Message {
    fn from(row: CurrentRow) -> Self {
        let reply_to = match (row.reply_id, row.reply_seq, row.reply_user_id) {
            (Some(id), Some(seq), Some(user_id)) => {
                let deleted = row.reply_deleted_at.is_some();
                Some(ReplyQuote {
                    id,
                    seq,
                    user: User {
                        id: user_id,
                        username: row.reply_username.unwrap_or_default(),
                    },
                    excerpt: if deleted {
                        DELETED_EXCERPT.to_owned()
                    } else {
                        row.reply_excerpt.unwrap_or_default()
                    },
                    deleted,
                })
            }
            _ => None,
        };
        let mut message = Message::from(row.base);
        if message.event.is_none() {
            message.mentions = super::mentioned_names(&message.content);
        }
        message.reply_to = reply_to;
        message.edited_at = row.edited_at.map(from_millis);
        message.deleted = row.deleted_at.is_some();
        message.deleted_at = row.deleted_at.map(from_millis);
        message
    }
}

/// Fills in the reactions of `messages` (chat messages not deleted), as `viewer` sees
/// them: a count per emoji in the order each was first added, and whether `viewer` is
/// one of them. Run inside the transaction that read the messages.
pub(super) async fn add_reactions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    messages: &mut [Message],
    viewer: UserId,
) -> Result<(), StoreError> {
    let ids: Vec<i64> = messages
        .iter()
        .filter(|m| m.event.is_none() && !m.deleted)
        .map(|m| m.id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    // Ids are numbers this server read: inlined, as the list's length varies.
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let rows: Vec<(i64, String, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT message_id, emoji, COUNT(*) AS n,
                CAST(MAX(CASE WHEN user_id = $1 THEN 1 ELSE 0 END) AS BIGINT) AS me,
                MIN(created_at) AS first
         FROM reactions WHERE message_id IN ({list})
         GROUP BY message_id, emoji ORDER BY message_id, first, emoji"
    ))
    .bind(viewer)
    .fetch_all(&mut **tx)
    .await?;
    for (message_id, emoji, count, me, _) in rows {
        if let Some(message) = messages.iter_mut().find(|m| m.id == message_id) {
            message.reactions.push(ReactionCount {
                emoji,
                count,
                me: me != 0,
            });
        }
    }
    Ok(())
}

/// The quote of message `id` for a reply in `room_id`; `None` when it is not a chat
/// message of that room.
pub(super) async fn quote(
    db: &crate::store::Db,
    room_id: RoomId,
    id: i64,
) -> Result<Option<ReplyQuote>, StoreError> {
    let row: Option<(i64, Seq, i64, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT m.id, m.seq, m.user_id, u.username, substr(m.content, 1, 100), m.deleted_at
         FROM messages m JOIN users u ON u.id = m.user_id
         WHERE m.id = $1 AND m.room_id = $2 AND m.event IS NULL",
    )
    .bind(id)
    .bind(room_id)
    .fetch_optional(db.reader())
    .await?;
    Ok(
        row.map(|(id, seq, user_id, username, excerpt, deleted_at)| {
            let deleted = deleted_at.is_some();
            ReplyQuote {
                id,
                seq,
                user: User {
                    id: user_id,
                    username,
                },
                excerpt: if deleted {
                    DELETED_EXCERPT.to_owned()
                } else {
                    excerpt
                },
                deleted,
            }
        }),
    )
}

/// A chat message as an edit, deletion or reaction needs it.
#[derive(Debug, Clone)]
pub(super) struct Original {
    pub(super) user_id: UserId,
    pub(super) content: String,
    pub(super) created_at: i64,
    pub(super) deleted: bool,
}

impl RoomChange {
    /// Whether `user_id` is muted here now: a muted member may not edit or react, as
    /// they may not send (taking things back, deleting or removing a reaction, is fine).
    pub(super) async fn muted(&mut self, user_id: UserId) -> Result<bool, StoreError> {
        let room_id = self.room_id();
        let until: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT muted_until FROM memberships WHERE room_id = $1 AND user_id = $2",
        )
        .bind(room_id)
        .bind(user_id)
        .fetch_optional(&mut **self.tx()?)
        .await?;
        Ok(until.flatten().is_some_and(|until| until > now_millis()))
    }

    /// The chat message `id` of this room; `None` when there is none (room events
    /// included: they cannot be edited, deleted or reacted to).
    pub(super) async fn original(&mut self, id: i64) -> Result<Option<Original>, StoreError> {
        let room_id = self.room_id();
        let row: Option<(i64, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT user_id, content, created_at, deleted_at FROM messages
             WHERE id = $1 AND room_id = $2 AND event IS NULL",
        )
        .bind(id)
        .bind(room_id)
        .fetch_optional(&mut **self.tx()?)
        .await?;
        Ok(
            row.map(|(user_id, content, created_at, deleted_at)| Original {
                user_id,
                content,
                created_at,
                deleted: deleted_at.is_some(),
            }),
        )
    }

    /// Replaces the content of message `id`; returns when (Unix ms).
    pub(super) async fn edit(&mut self, id: i64, content: &str) -> Result<i64, StoreError> {
        let now = now_millis();
        sqlx::query("UPDATE messages SET content = $2, edited_at = $3 WHERE id = $1")
            .bind(id)
            .bind(content)
            .bind(now)
            .execute(&mut **self.tx()?)
            .await?;
        Ok(now)
    }

    /// Erases message `id` (its content, its attachments, its reactions, the content its
    /// earlier `message_updated` events carry and the quotes of the `mentioned`
    /// notifications it caused), leaving a tombstone. Returns when (Unix ms) and the blob
    /// keys of its attachments, which the caller removes once this change commits.
    pub(super) async fn erase(&mut self, id: i64) -> Result<(i64, Vec<String>), StoreError> {
        let now = now_millis();
        let room_id = self.room_id();
        let attached: Option<String> =
            sqlx::query_scalar("SELECT attachments FROM messages WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **self.tx()?)
                .await?
                .flatten();
        let mut blob_keys = Vec::new();
        let attachments: Vec<Attachment> = attached
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        for attachment in attachments {
            let keys: Option<(String, Option<String>)> = sqlx::query_as(
                "DELETE FROM uploads WHERE id = $1 AND room_id = $2
                 RETURNING blob_key, thumbnail_key",
            )
            .bind(&attachment.id)
            .bind(room_id)
            .fetch_optional(&mut **self.tx()?)
            .await?;
            if let Some((blob, thumbnail)) = keys {
                blob_keys.push(blob);
                blob_keys.extend(thumbnail);
            }
        }
        sqlx::query(
            "UPDATE notifications SET message = NULL
             WHERE kind = 'mentioned' AND room_id = $2
               AND seq IN (SELECT seq FROM messages
                           WHERE room_id = $2 AND (id = $1 OR target_id = $1))",
        )
        .bind(id)
        .bind(room_id)
        .execute(&mut **self.tx()?)
        .await?;
        sqlx::query(
            "UPDATE messages SET content = '', attachments = NULL, edited_at = NULL, deleted_at = $2 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut **self.tx()?)
        .await?;
        sqlx::query("DELETE FROM reactions WHERE message_id = $1")
            .bind(id)
            .execute(&mut **self.tx()?)
            .await?;
        let edits: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, event FROM messages WHERE target_id = $1 AND event LIKE $2")
                .bind(id)
                .bind("{\"type\":\"message_updated\"%")
                .fetch_all(&mut **self.tx()?)
                .await?;
        for (event_id, json) in edits {
            let Ok(mut event) = serde_json::from_str(&json) else {
                continue;
            };
            if let socket_hub_protocol::RoomEvent::MessageUpdated {
                content, mentions, ..
            } = &mut event
            {
                content.clear();
                mentions.clear();
            }
            let json = serde_json::to_string(&event)
                .map_err(|e| StoreError::Database(format!("event does not encode: {e}")))?;
            sqlx::query("UPDATE messages SET event = $2 WHERE id = $1")
                .bind(event_id)
                .bind(json)
                .execute(&mut **self.tx()?)
                .await?;
        }
        Ok((now, blob_keys))
    }

    /// Marks the room event `event_id` as being about message `target`.
    pub(super) async fn set_target(
        &mut self,
        event_id: i64,
        target: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE messages SET target_id = $2 WHERE id = $1")
            .bind(event_id)
            .bind(target)
            .execute(&mut **self.tx()?)
            .await?;
        Ok(())
    }

    /// The distinct emojis message `id` carries, and whether `emoji` is one of them.
    pub(super) async fn emojis(&mut self, id: i64, emoji: &str) -> Result<(i64, bool), StoreError> {
        let (distinct, this): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(DISTINCT emoji),
                    CAST(COALESCE(MAX(CASE WHEN emoji = $2 THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM reactions WHERE message_id = $1",
        )
        .bind(id)
        .bind(emoji)
        .fetch_one(&mut **self.tx()?)
        .await?;
        Ok((distinct, this != 0))
    }

    /// Adds `user_id`'s `emoji` to message `id`; `false` when it was there already.
    pub(super) async fn add_reaction(
        &mut self,
        id: i64,
        user_id: UserId,
        emoji: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(user_id)
        .bind(emoji)
        .bind(now_millis())
        .execute(&mut **self.tx()?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Removes `user_id`'s `emoji` from message `id`; `false` when it was not there.
    pub(super) async fn remove_reaction(
        &mut self,
        id: i64,
        user_id: UserId,
        emoji: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3",
        )
        .bind(id)
        .bind(user_id)
        .bind(emoji)
        .execute(&mut **self.tx()?)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
