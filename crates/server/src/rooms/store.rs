//! Queries on `rooms`, `memberships` and `messages`: the traits, the row mappers and
//! one query text for both backends.

use async_trait::async_trait;
use socket_hub_protocol::rest::RoomView;
use socket_hub_protocol::{Member, Message, Room, RoomId, Seq, User, UserId};
use sqlx::Row;

use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ChatRow, StoreError, from_millis, now_millis};

/// A room as seen by one user, plus the hash needed to check its access code.
#[derive(Debug, Clone)]
pub struct RoomAccess {
    pub view: RoomView,
    pub access_code_hash: Option<String>,
}

/// A message to store; the store assigns `id` and `seq`.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub room_id: RoomId,
    pub user: &'a User,
    pub client_msg_id: Option<&'a str>,
    pub content: &'a str,
}

/// What storing a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now with the next seq: deliver it.
    Stored(Message),
    /// The same sender already stored this `client_msg_id`: this is the original.
    Duplicate(Message),
    /// The sender is not a member (or the room does not exist).
    NotMember,
}

/// Persistence of rooms and memberships.
#[async_trait]
pub trait RoomStore {
    /// Creates a room with `owner_id` as its first member.
    async fn create_room(
        &self,
        owner_id: UserId,
        name: &str,
        is_private: bool,
        access_code_hash: Option<&str>,
    ) -> Result<RoomView, StoreError>;
    /// A room as `user_id` would see it (membership flags filled in), whether or not
    /// they may; visibility is the caller's decision.
    async fn room_access(
        &self,
        room_id: RoomId,
        user_id: UserId,
    ) -> Result<Option<RoomAccess>, StoreError>;
    /// Public rooms and every room `user_id` belongs to.
    async fn list_rooms(&self, user_id: UserId) -> Result<Vec<RoomView>, StoreError>;
    /// Adds a member; `false` when already one.
    async fn add_member(
        &self,
        room_id: RoomId,
        user_id: UserId,
        role: &str,
    ) -> Result<bool, StoreError>;
    /// Removes a member; `false` when not one.
    async fn remove_member(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError>;
    /// Whether `user_id` belongs to `room_id`.
    async fn is_member(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError>;
    /// Every member, oldest first.
    async fn members(&self, room_id: RoomId) -> Result<Vec<Member>, StoreError>;
    /// Raises the member's read marker to `seq` (never lowers it).
    async fn mark_read(&self, room_id: RoomId, user_id: UserId, seq: Seq)
    -> Result<(), StoreError>;
}

/// Persistence of messages: the durable, ordered history of each room.
#[async_trait]
pub trait MessageStore {
    /// Stores a message with the room's next seq, atomically with the membership
    /// check and the idempotency check, and durably before returning.
    async fn append(&self, message: NewMessage<'_>) -> Result<Appended, StoreError>;
    /// Up to `limit` messages with `seq < before` (or the newest), newest first.
    async fn history(
        &self,
        room_id: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Up to `limit` messages with `seq > after`, oldest first: replay and gap filling.
    async fn messages_after(
        &self,
        room_id: RoomId,
        after: Seq,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// The room's newest seq (0 when empty or unknown).
    async fn last_seq(&self, room_id: RoomId) -> Result<Seq, StoreError>;
}

/// Columns of a room seen by the user bound in the `LEFT JOIN memberships m`.
const ROOM_COLUMNS: &str = "r.id, r.name, r.is_private, r.owner_id, r.last_seq, r.created_at,
    (SELECT COUNT(*) FROM memberships c WHERE c.room_id = r.id),
    m.user_id IS NOT NULL, COALESCE(m.last_read_seq, 0), r.access_code_hash";

fn room_access(row: &impl ChatRow) -> RoomAccess {
    RoomAccess {
        view: RoomView {
            room: Room {
                id: row.int(0),
                name: row.text(1),
                is_private: row.flag(2),
                owner_id: row.int(3),
                last_seq: row.int(4),
                created_at: from_millis(row.int(5)),
                member_count: row.int(6),
                is_member: row.flag(7),
            },
            last_read_seq: row.int(8),
        },
        access_code_hash: row.opt_text(9),
    }
}

/// Columns of a message `m` joined with its sender `u`.
const MESSAGE_COLUMNS: &str =
    "m.id, m.room_id, m.seq, m.user_id, u.username, m.content, m.client_msg_id, m.created_at";

fn message(row: &impl ChatRow) -> Message {
    Message {
        id: row.int(0),
        room_id: row.int(1),
        seq: row.int(2),
        user: User {
            id: row.int(3),
            username: row.text(4),
        },
        content: row.text(5),
        client_msg_id: row.opt_text(6),
        created_at: from_millis(row.int(7)),
    }
}

/// Columns `user id, username, role, joined_at`.
fn member(row: &impl ChatRow) -> Member {
    Member {
        user: User {
            id: row.int(0),
            username: row.text(1),
        },
        role: row.text(2),
        joined_at: from_millis(row.int(3)),
    }
}

/// The [`RoomStore`] queries, written once in SQL that SQLite and PostgreSQL both accept
/// (`$n` parameters), stamped out for each backend's pools.
macro_rules! impl_room_store {
    ($store:ty, writer: $writer:ident, reader: $reader:ident) => {
        #[async_trait]
        impl RoomStore for $store {
            async fn create_room(
                &self,
                owner_id: UserId,
                name: &str,
                is_private: bool,
                access_code_hash: Option<&str>,
            ) -> Result<RoomView, StoreError> {
                let now = now_millis();
                let mut tx = self.$writer.begin().await?;
                let room_id: RoomId = sqlx::query(
                    "INSERT INTO rooms (name, is_private, access_code_hash, owner_id, created_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(name)
                .bind(is_private)
                .bind(access_code_hash)
                .bind(owner_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                sqlx::query(
                    "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES ($1, $2, 'owner', $3)",
                )
                .bind(room_id)
                .bind(owner_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(RoomView {
                    room: Room {
                        id: room_id,
                        name: name.to_owned(),
                        is_private,
                        owner_id,
                        last_seq: 0,
                        member_count: 1,
                        is_member: true,
                        created_at: from_millis(now),
                    },
                    last_read_seq: 0,
                })
            }

            async fn room_access(
                &self,
                room_id: RoomId,
                user_id: UserId,
            ) -> Result<Option<RoomAccess>, StoreError> {
                let sql = format!(
                    "SELECT {ROOM_COLUMNS} FROM rooms r
                     LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $2
                     WHERE r.id = $1"
                );
                let row = sqlx::query(&sql)
                    .bind(room_id)
                    .bind(user_id)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.as_ref().map(room_access))
            }

            async fn list_rooms(&self, user_id: UserId) -> Result<Vec<RoomView>, StoreError> {
                let sql = format!(
                    "SELECT {ROOM_COLUMNS} FROM rooms r
                     LEFT JOIN memberships m ON m.room_id = r.id AND m.user_id = $1
                     WHERE NOT r.is_private OR m.user_id IS NOT NULL
                     ORDER BY r.id LIMIT 1000"
                );
                let rows = sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_all(&self.$reader)
                    .await?;
                Ok(rows.iter().map(|row| room_access(row).view).collect())
            }

            async fn add_member(
                &self,
                room_id: RoomId,
                user_id: UserId,
                role: &str,
            ) -> Result<bool, StoreError> {
                let result = sqlx::query(
                    "INSERT INTO memberships (room_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (room_id, user_id) DO NOTHING",
                )
                .bind(room_id)
                .bind(user_id)
                .bind(role)
                .bind(now_millis())
                .execute(&self.$writer)
                .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn remove_member(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError> {
                let result = sqlx::query("DELETE FROM memberships WHERE room_id = $1 AND user_id = $2")
                    .bind(room_id)
                    .bind(user_id)
                    .execute(&self.$writer)
                    .await?;
                Ok(result.rows_affected() == 1)
            }

            async fn is_member(&self, room_id: RoomId, user_id: UserId) -> Result<bool, StoreError> {
                let row = sqlx::query("SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2")
                    .bind(room_id)
                    .bind(user_id)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.is_some())
            }

            async fn members(&self, room_id: RoomId) -> Result<Vec<Member>, StoreError> {
                let rows = sqlx::query(
                    "SELECT u.id, u.username, m.role, m.joined_at FROM memberships m
                     JOIN users u ON u.id = m.user_id WHERE m.room_id = $1
                     ORDER BY m.joined_at, u.id LIMIT 10000",
                )
                .bind(room_id)
                .fetch_all(&self.$reader)
                .await?;
                Ok(rows.iter().map(member).collect())
            }

            async fn mark_read(
                &self,
                room_id: RoomId,
                user_id: UserId,
                seq: Seq,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE memberships
                     SET last_read_seq = (SELECT CASE WHEN $3 < r.last_seq THEN $3 ELSE r.last_seq END
                                          FROM rooms r WHERE r.id = $1)
                     WHERE room_id = $1 AND user_id = $2 AND last_read_seq < $3",
                )
                .bind(room_id)
                .bind(user_id)
                .bind(seq)
                .execute(&self.$writer)
                .await?;
                Ok(())
            }
        }
    };
}

impl_room_store!(SqliteStore, writer: writer, reader: reader);
impl_room_store!(PgStore, writer: pool, reader: pool);

/// The [`MessageStore`] queries, written once in SQL that SQLite and PostgreSQL both accept
/// (`$n` parameters), stamped out for each backend's pools.
macro_rules! impl_message_store {
    ($store:ty, writer: $writer:ident, reader: $reader:ident) => {
        #[async_trait]
        impl MessageStore for $store {
            async fn append(&self, new: NewMessage<'_>) -> Result<Appended, StoreError> {
                let mut tx = self.$writer.begin().await?;
                // Taking the seq first makes this a write transaction from its first statement,
                // so it never has to upgrade a read lock.
                let seq: Option<Seq> = sqlx::query(
                    "UPDATE rooms SET last_seq = last_seq + 1
                     WHERE id = $1 AND EXISTS (SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $2)
                     RETURNING last_seq",
                )
                .bind(new.room_id)
                .bind(new.user.id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.get(0));
                let Some(seq) = seq else {
                    return Ok(Appended::NotMember);
                };
                if let Some(client_msg_id) = new.client_msg_id {
                    let sql = format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id
                         WHERE m.room_id = $1 AND m.user_id = $2 AND m.client_msg_id = $3"
                    );
                    let existing = sqlx::query(&sql)
                        .bind(new.room_id)
                        .bind(new.user.id)
                        .bind(client_msg_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(row) = existing {
                        // Dropping the transaction rolls the seq increment back.
                        return Ok(Appended::Duplicate(message(&row)));
                    }
                }
                let now = now_millis();
                let id: i64 = sqlx::query(
                    "INSERT INTO messages (room_id, seq, user_id, client_msg_id, content, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(new.room_id)
                .bind(seq)
                .bind(new.user.id)
                .bind(new.client_msg_id)
                .bind(new.content)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .get(0);
                tx.commit().await?;
                Ok(Appended::Stored(Message {
                    id,
                    room_id: new.room_id,
                    seq,
                    user: new.user.clone(),
                    content: new.content.to_owned(),
                    client_msg_id: new.client_msg_id.map(str::to_owned),
                    created_at: from_millis(now),
                }))
            }

            async fn history(
                &self,
                room_id: RoomId,
                before: Option<Seq>,
                limit: u32,
            ) -> Result<Vec<Message>, StoreError> {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id
                     WHERE m.room_id = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3"
                );
                let rows = sqlx::query(&sql)
                    .bind(room_id)
                    .bind(before.unwrap_or(Seq::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.$reader)
                    .await?;
                Ok(rows.iter().map(message).collect())
            }

            async fn messages_after(
                &self,
                room_id: RoomId,
                after: Seq,
                limit: u32,
            ) -> Result<Vec<Message>, StoreError> {
                let sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.user_id
                     WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3"
                );
                let rows = sqlx::query(&sql)
                    .bind(room_id)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$reader)
                    .await?;
                Ok(rows.iter().map(message).collect())
            }

            async fn last_seq(&self, room_id: RoomId) -> Result<Seq, StoreError> {
                let row = sqlx::query("SELECT last_seq FROM rooms WHERE id = $1")
                    .bind(room_id)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map_or(0, |row| row.get(0)))
            }
        }
    };
}

impl_message_store!(SqliteStore, writer: writer, reader: reader);
impl_message_store!(PgStore, writer: pool, reader: pool);
