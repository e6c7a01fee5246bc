//! Queries on `rooms`, `memberships` and `messages`: the traits, the row mappers both
//! backends share, and one impl per backend.

mod postgres;
mod sqlite;

use async_trait::async_trait;
use socket_hub_protocol::rest::RoomView;
use socket_hub_protocol::{Member, Message, Room, RoomId, Seq, User, UserId};

use crate::store::{ChatRow, StoreError, from_millis};

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
