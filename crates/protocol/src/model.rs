//! The chat domain as clients see it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::lifecycle::{ReactionCount, ReplyQuote};

/// A user's stable numeric id.
pub type UserId = i64;
/// A room's stable numeric id.
pub type RoomId = i64;
/// A message's position in its room: 1, 2, 3, … with no gaps, so a client can tell
/// exactly what it missed.
pub type Seq = i64;

/// The public face of an account: what other members see.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// What the room is about; set by its owner or admins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// A one-to-one conversation (`POST /dms`): private, exactly two members, listed
    /// by `GET /dms` rather than with rooms.
    #[serde(default)]
    pub is_direct: bool,
    /// Whether a private room can be joined with an access code (without one, only an
    /// invitation or invite link lets people in).
    #[serde(default)]
    pub has_access_code: bool,
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
    /// `owner` (one per room: the creator until ownership is transferred), `admin` or
    /// `member`; see the permission table in `docs/protocol.md`.
    pub role: String,
    /// Until when the member may not send (absent: not muted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<DateTime<Utc>>,
    pub joined_at: DateTime<Utc>,
    /// The member's global presence; only for a caller who is a member too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<PresenceStatus>,
}

/// Whether a person is reachable now, as seen by people who share a room or DM with
/// them (see `docs/protocol.md`, presence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatus {
    /// At least one connection, and not every one of them said `away`.
    Online,
    /// Connected, but every connection said `away` (hidden tab, idle).
    Away,
    /// No connection anywhere; see `last_seen_at`.
    Offline,
}

/// A room's per-member roles, highest first. Stored and sent as snake_case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// Parses a stored or wire name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

/// What a moderation or settings change did, stored in the room's stream as a message
/// with its own `seq` (see `Message::event`), so members see it live and a client that
/// resumes with `since_seq` replays it like any message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomEvent {
    /// The room's settings after a rename, topic, access-code or visibility change.
    RoomUpdated {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        is_private: bool,
        has_access_code: bool,
    },
    /// A member's role or mute changed (promote, demote, transfer, mute, unmute).
    MemberUpdated {
        user: User,
        role: Role,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        muted_until: Option<DateTime<Utc>>,
    },
    /// `user` was removed from the room; they may join again.
    Kicked {
        user: User,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `user` was removed and may not come back (until `until`, when given).
    Banned {
        user: User,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
    },
    /// `user`'s ban was lifted.
    Unbanned { user: User },
    /// The message `message_id` was edited by its author (the event's `user`): its
    /// content is now `content`.
    MessageUpdated {
        message_id: i64,
        content: String,
        edited_at: DateTime<Utc>,
        /// The `@username`s the new content names (see [`Message::mentions`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<String>,
    },
    /// The message `message_id` was deleted (by its author or a room admin): its
    /// content is erased and its reactions removed; it stays as a tombstone.
    MessageDeleted {
        message_id: i64,
        deleted_at: DateTime<Utc>,
    },
    /// The event's `user` added (`added: true`) or removed their `emoji` reaction to
    /// `message_id`.
    Reaction {
        message_id: i64,
        emoji: String,
        added: bool,
    },
}

impl RoomEvent {
    /// The `type` of the frame that carries this event.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RoomUpdated { .. } => "room_updated",
            Self::MemberUpdated { .. } => "member_updated",
            Self::Kicked { .. } => "kicked",
            Self::Banned { .. } => "banned",
            Self::Unbanned { .. } => "unbanned",
            Self::MessageUpdated { .. } => "message_updated",
            Self::MessageDeleted { .. } => "message_deleted",
            Self::Reaction { .. } => "reaction",
        }
    }
}

/// A stored chat message; `seq` orders them. Its author may edit it and it may be
/// deleted (see `RoomEvent::MessageUpdated`/`MessageDeleted`): history returns the
/// current state, the stream carries each change as an event of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Set on room events (moderation, settings): `user` is who acted and `content` a
    /// readable summary, for clients that show the stream as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<RoomEvent>,
    /// Files attached by the sender (`attachments` of `message_send`), in their order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::attachments::Attachment>,
    pub created_at: DateTime<Utc>,
    /// The message this one answers, quoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<ReplyQuote>,
    /// The `@username`s the content names (lower-cased, each once), parsed by the server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<String>,
    /// When the content was last edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<DateTime<Utc>>,
    /// A tombstone: the message was deleted and its content erased.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// When it was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Reactions, aggregated per emoji in the order they were first added (history
    /// only; live and replayed messages get them through `reaction` events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionCount>,
}

/// Why a user is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Invited to a room (`GET /invitations`).
    Invited,
    /// Named as `@username` in a message of a room you belong to.
    Mentioned,
    /// Someone opened a direct conversation with you.
    DirectMessage,
    /// Removed from a room.
    Kicked,
    /// Banned from a room.
    Banned,
    /// A room you belonged to was deleted.
    RoomDeleted,
}

/// One entry of a user's persisted notification stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Notification {
    /// Increasing per server: the cursor of `GET /notifications?after=` and of
    /// `POST /notifications/read`.
    pub id: i64,
    pub kind: NotificationKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    /// Who caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<User>,
    /// A short text: the room's name, or the message that mentioned you.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `mentioned`: the mentioning message's seq. Moving your read marker of the
    /// room to it or past it marks the notification read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}
