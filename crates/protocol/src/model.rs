//! The chat domain as clients see it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user's stable numeric id.
pub type UserId = i64;
/// A room's stable numeric id.
pub type RoomId = i64;
/// A message's position in its room: 1, 2, 3, … with no gaps, so a client can tell
/// exactly what it missed.
pub type Seq = i64;

/// The public face of an account: what other members see.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct User {
    pub id: UserId,
    pub username: String,
}

/// A room as listed to a user who may see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub is_private: bool,
    pub owner_id: UserId,
    /// Sequence number of the newest message (0 for an empty room); lets a client
    /// compute unread counts without fetching history.
    pub last_seq: Seq,
    pub member_count: i64,
    /// Whether the asking user is a member.
    pub is_member: bool,
    pub created_at: DateTime<Utc>,
}

/// A room membership, as listed by `GET /rooms/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Member {
    pub user: User,
    /// `owner` for the room's creator, `member` otherwise.
    pub role: String,
    pub joined_at: DateTime<Utc>,
}

/// A stored chat message. Messages are immutable once stored; `seq` orders them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Message {
    pub id: i64,
    pub room_id: RoomId,
    pub seq: Seq,
    pub user: User,
    pub content: String,
    /// The sender's idempotency key, echoed so its other tabs can match pending sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    pub created_at: DateTime<Utc>,
}
