//! Queries on `messages`: the durable, ordered history of each room, one text for both
//! backends. Appends are batched by the [`appender`](super::appender).

use socket_hub_protocol::{Message, RoomId, Seq, User, UserId};

use super::appender::{AppendOptions, Appender};
use super::message_changes::{CurrentRow, current_select};
use crate::store::{Backend, Db, StoreError, from_millis};

/// A message to store; the store assigns `id` and `seq`.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub room_id: RoomId,
    pub user: &'a User,
    pub client_msg_id: Option<&'a str>,
    pub content: &'a str,
    /// The message of the same room this one answers (checked by the caller).
    pub reply_to: Option<i64>,
    /// The attachments' metadata as JSON (see `rooms::attachments`), stored as is.
    pub attachments: Option<&'a str>,
}

/// What storing a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now with the next seq: deliver it.
    Stored(Message),
    /// The same sender already stored this `client_msg_id`: this is the original.
    Duplicate(Message),
    /// The sender is not a member (or the room does not exist), or is muted.
    NotMember,
}

/// A message `m` joined with its sender `u`.
#[derive(sqlx::FromRow)]
pub(super) struct MessageRow {
    pub(super) id: i64,
    pub(super) room_id: i64,
    pub(super) seq: i64,
    pub(super) user_id: i64,
    pub(super) username: String,
    pub(super) content: String,
    pub(super) client_msg_id: Option<String>,
    /// A room event as JSON; `None` for chat messages.
    pub(super) event: Option<String>,
    /// The attachments' metadata as JSON; `None` for a message without.
    pub(super) attachments: Option<String>,
    pub(super) created_at: i64,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Message {
            id: row.id,
            room_id: row.room_id,
            seq: row.seq,
            user: User {
                id: row.user_id,
                username: row.username,
            },
            content: row.content,
            client_msg_id: row.client_msg_id,
            // Written by this server from the same type; an unreadable one (a newer
            // server's event kind) still shows as its text.
            event: row.event.and_then(|json| serde_json::from_str(&json).ok()),
            // Written by this server from the same type.
            attachments: row
                .attachments
                .and_then(|json| serde_json::from_str(&json).ok())
                .unwrap_or_default(),
            created_at: from_millis(row.created_at),
            ..Message::default()
        }
    }
}

/// The messages of every room, each with a per-room, gap-free `seq`.
#[derive(Clone)]
pub struct MessageStore {
    db: Db,
    appender: Appender,
}

impl MessageStore {
    /// A store whose appends batch with the default [`AppendOptions`].
    pub fn new(db: Db) -> Self {
        Self::with_options(db, AppendOptions::default())
    }

    /// A store whose appends batch as `options` say.
    pub fn with_options(db: Db, options: AppendOptions) -> Self {
        Self {
            appender: Appender::new(db.clone(), options),
            db,
        }
    }

    /// Stores a message with the room's next seq, atomically with the membership
    /// check and the idempotency check, and durably before returning. Concurrent appends
    /// (from every room) share one transaction: see [`appender`](super::appender).
    pub async fn append(&self, new: NewMessage<'_>) -> Result<Appended, StoreError> {
        self.appender.append(new).await
    }

    /// Up to `limit` messages with `seq < before` (or the newest), newest first, as
    /// `viewer` sees them now: current content, tombstones, reply quotes and reactions.
    /// The events that changed them (edits, deletions, reactions) are left out: the
    /// page already shows what they did. One snapshot, so a client that then resumes
    /// after the page's newest seq counts no reaction twice.
    pub async fn history(
        &self,
        room_id: RoomId,
        before: Option<Seq>,
        limit: u32,
        viewer: UserId,
    ) -> Result<Vec<Message>, StoreError> {
        Ok(self.history_page(room_id, before, limit, viewer).await?.0)
    }

    /// [`Self::history`] with the room's newest seq in the same snapshot: the point up
    /// to which the page reflects every edit, deletion and reaction.
    pub async fn history_page(
        &self,
        room_id: RoomId,
        before: Option<Seq>,
        limit: u32,
        viewer: UserId,
    ) -> Result<(Vec<Message>, Seq), StoreError> {
        let mut tx = self.db.reader().begin().await?;
        if self.db.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let rows: Vec<CurrentRow> = sqlx::query_as(concat!(
            current_select!(),
            "WHERE m.room_id = $1 AND m.seq < $2 AND m.target_id IS NULL
             ORDER BY m.seq DESC LIMIT $3"
        ))
        .bind(room_id)
        .bind(before.unwrap_or(Seq::MAX))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut messages: Vec<Message> = rows.into_iter().map(Message::from).collect();
        super::message_changes::add_reactions(&mut tx, &mut messages, viewer).await?;
        let last_seq: Option<Seq> = sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1")
            .bind(room_id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((messages, last_seq.unwrap_or(0)))
    }

    /// Up to `limit` messages with `seq > after`, oldest first: replay and gap filling.
    pub async fn after(
        &self,
        room_id: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        // Chat messages as they are now (edited, deleted), without reactions: the
        // replay carries every `reaction` event after them.
        let rows: Vec<CurrentRow> = sqlx::query_as(concat!(
            current_select!(),
            "WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3"
        ))
        .bind(room_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(Message::from).collect())
    }

    /// Up to `limit` messages `user_id` sent (room events they caused included), oldest
    /// first: their data export.
    pub async fn sent_by(&self, user_id: i64, limit: u32) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT m.id, m.room_id, m.seq, m.user_id, u.username, m.content,
                    m.client_msg_id, m.event, m.attachments, m.created_at
             FROM messages m JOIN users u ON u.id = m.user_id
             WHERE m.user_id = $1 ORDER BY m.id LIMIT $2",
        )
        .bind(user_id)
        .bind(i64::from(limit))
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(Message::from).collect())
    }

    /// Message `id` of `room_id` as `viewer` sees it now (see [`Self::history`]).
    pub async fn current(
        &self,
        room_id: RoomId,
        id: i64,
        viewer: UserId,
    ) -> Result<Option<Message>, StoreError> {
        let mut tx = self.db.reader().begin().await?;
        let row: Option<CurrentRow> = sqlx::query_as(concat!(
            current_select!(),
            "WHERE m.id = $1 AND m.room_id = $2"
        ))
        .bind(id)
        .bind(room_id)
        .fetch_optional(&mut *tx)
        .await?;
        let mut messages: Vec<Message> = row.into_iter().map(Message::from).collect();
        super::message_changes::add_reactions(&mut tx, &mut messages, viewer).await?;
        tx.commit().await?;
        Ok(messages.pop())
    }

    /// The quote a reply in `room_id` to message `id` carries; `None` when `id` is not
    /// a chat message of that room.
    pub async fn quote(
        &self,
        room_id: RoomId,
        id: i64,
    ) -> Result<Option<socket_hub_protocol::lifecycle::ReplyQuote>, StoreError> {
        super::message_changes::quote(&self.db, room_id, id).await
    }

    /// The room's newest seq (0 when empty or unknown).
    pub async fn last_seq(&self, room_id: RoomId) -> Result<Seq, StoreError> {
        let seq: Option<Seq> = sqlx::query_scalar("SELECT last_seq FROM rooms WHERE id = $1")
            .bind(room_id)
            .fetch_optional(self.db.reader())
            .await?;
        Ok(seq.unwrap_or(0))
    }
}
