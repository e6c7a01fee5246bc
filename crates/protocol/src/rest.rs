//! Request and response bodies of the REST API under `/api/v1`.
//!
//! Errors are `application/problem+json` ([`Problem`]).

use serde::{Deserialize, Serialize};

use crate::frames::ErrorCode;
use chrono::{DateTime, Utc};

use crate::model::{Message, Notification, Role, Room, RoomId, Seq, User, UserId};

/// `POST /auth/register` and `POST /auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// A fresh token pair, returned by register, login and refresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Session {
    pub user: User,
    /// Short-lived HS256 JWT for REST (`Authorization: Bearer`) and WebSocket auth.
    pub access_token: String,
    /// Seconds until `access_token` expires; refresh before then.
    pub expires_in: i64,
    /// Single-use: each refresh returns a new one, and reusing an old one revokes the
    /// whole chain.
    pub refresh_token: String,
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `POST /rooms`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct CreateRoom {
    pub name: String,
    #[serde(default)]
    pub is_private: bool,
    /// Required for a private room: what others must present to join it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_code: Option<String>,
}

/// `POST /rooms/{id}/join`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct JoinRoom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_code: Option<String>,
}

/// `GET /rooms` and `GET /rooms/joined`: one page of rooms in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct RoomList {
    pub rooms: Vec<RoomView>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<RoomId>,
}

/// A room plus the asking user's read marker, for unread counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct RoomView {
    #[serde(flatten)]
    pub room: Room,
    /// Highest seq the user marked read (0 when not a member or nothing read).
    pub last_read_seq: Seq,
    /// The asking user's role (absent when not a member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Chat messages of others after `last_read_seq` (room events and erased messages
    /// do not count), computed by the server; at most 1000 (`MAX_UNREAD`; read it as "that
    /// many or more"). 0 when not a member. Live changes: `chat` frames of others add
    /// one, `read_marker` frames of your own say the new count.
    #[serde(default)]
    pub unread: u32,
}

/// The most an unread count says: counting stops there, so listing rooms with huge
/// backlogs stays cheap.
pub const MAX_UNREAD: u32 = 1000;

/// `PATCH /rooms/{id}`: the settings to change; absent fields stay as they are. Each
/// field is its own action in the permission table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct UpdateRoom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Up to 256 characters; an empty string clears the topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_private: Option<bool>,
    /// A new access code (8-64 characters, private rooms only); an empty string clears
    /// it, leaving invitations and invite links as the only ways in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_code: Option<String>,
}

/// `POST /rooms/{id}/members/{user_id}/kick`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct KickRequest {
    /// Shown to the room (up to 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /rooms/{id}/bans`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct BanRequest {
    pub user_id: UserId,
    /// Shown to the room (up to 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long the ban lasts; forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
}

/// One active ban, as listed by `GET /rooms/{id}/bans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Ban {
    pub user: User,
    pub banned_by: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the ban ends; absent for a permanent ban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// `GET /rooms/{id}/bans`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct BanList {
    pub bans: Vec<Ban>,
}

/// `POST /rooms/{id}/members/{user_id}/mute`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct MuteRequest {
    /// How long the mute lasts; until unmuted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_secs: Option<u64>,
}

/// `PUT /rooms/{id}/members/{user_id}/role`: promote to `admin` or demote to `member`
/// (ownership moves only by `POST /rooms/{id}/transfer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct SetRole {
    pub role: Role,
}

/// `POST /rooms/{id}/transfer`: make another member the owner; the caller becomes an
/// admin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct TransferOwnership {
    pub user_id: UserId,
}

/// `GET /rooms/{id}/members`: one page of members in user-id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct MemberList {
    pub members: Vec<crate::model::Member>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<UserId>,
}

/// `POST /rooms/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct SendMessage {
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// The id of a message of the same room this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// Ids of the sender's own uploads to attach; with some, `content` may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<crate::attachments::UploadId>,
}

/// `POST /rooms/{id}/read`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct MarkRead {
    pub seq: Seq,
}

/// `GET /rooms/{id}/messages`: one page, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// Pass as `before_seq` to get the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before_seq: Option<Seq>,
    /// The room's newest seq when the page was read: the page shows its messages as
    /// they were then (edits, deletions, reactions up to this seq applied). Resume with
    /// `since_seq` = this, and fold only later events into these messages.
    #[serde(default)]
    pub last_seq: Seq,
}

/// An RFC 9457 problem document, the body of every REST error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Problem {
    /// A URI naming the problem type (`urn:socket-hub:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The same machine-readable code used in WebSocket `error` frames.
    pub code: ErrorCode,
}

/// `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Readiness {
    pub ready: bool,
    pub store: String,
    pub broker: String,
}

/// `POST /rooms/{id}/invitations`: invite a user by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct InviteUser {
    pub username: String,
}

/// A pending invitation to a room, as its invitee sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Invitation {
    pub id: i64,
    pub room_id: RoomId,
    pub room_name: String,
    /// Who is invited.
    pub user: User,
    pub invited_by: User,
    pub created_at: DateTime<Utc>,
}

/// `GET /invitations`: the caller's pending invitations, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct InvitationList {
    pub invitations: Vec<Invitation>,
}

/// `POST /rooms/{id}/invites`: a new invite link.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct CreateInviteLink {
    /// How many people may join with it (1-10000); unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// Seconds until it expires (60 to 30 days); never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

/// An invite link. `token` and `url` are returned once, at creation: the server keeps
/// only a hash of the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct InviteLink {
    pub id: i64,
    pub room_id: RoomId,
    /// The unguessable token (256 random bits, base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Path of the web client's landing page: `/invite/<token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub created_by: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    pub uses: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
}

/// `GET /rooms/{id}/invites`: the room's links, newest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct InviteLinkList {
    pub links: Vec<InviteLink>,
}

/// `GET /invites/{token}`: what a usable link leads to, for the landing page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct InvitePreview {
    pub room_id: RoomId,
    pub room_name: String,
    pub is_private: bool,
    pub member_count: i64,
}

/// `POST /dms`: open (or find) the one-to-one conversation with a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct OpenDirect {
    pub username: String,
}

/// A one-to-one conversation: its room (with the caller's read marker) and the other
/// person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct DirectView {
    pub room: RoomView,
    pub peer: User,
}

/// `GET /dms`: the caller's conversations, newest activity first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct DirectList {
    pub dms: Vec<DirectView>,
}

/// `GET /notifications`: a page of the caller's notifications, oldest first, and how
/// many are unread in all.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct NotificationList {
    pub notifications: Vec<Notification>,
    pub unread: i64,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// `POST /notifications/read`: marks every notification up to this id as read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct MarkNotificationsRead {
    pub up_to: i64,
}

/// `GET /notifications/unread`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct UnreadCount {
    pub unread: i64,
}

/// A person as others see them: `GET /users/{id}`, `GET /users?query=`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct Profile {
    pub id: UserId,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A short status text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The generated avatar: up to two letters of the display name (or username) ...
    pub initials: String,
    /// ... on this background colour (`#rrggbb`, fixed per user id).
    pub avatar_color: String,
    /// When the user last connected over the WebSocket, or went offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Online, away or offline: only for yourself and for people who share a room or
    /// DM with you (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<crate::model::PresenceStatus>,
}

/// One person's presence, as `GET /users/presence` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct UserPresence {
    pub user_id: UserId,
    pub status: crate::model::PresenceStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// `GET /users/presence?ids=`: the presence of those of the people asked about who
/// share a room or DM with the caller (the others are left out).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct PresenceList {
    pub users: Vec<UserPresence>,
}

/// `POST /users/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct ChangePassword {
    pub current_password: String,
    /// 8-256 characters.
    pub new_password: String,
}

/// `PATCH /users/me`: absent fields stay; an empty string clears one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct UpdateProfile {
    /// Up to 64 visible characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Up to 140 visible characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `GET /users?query=`: users whose name starts with the query, in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct UserPage {
    pub users: Vec<Profile>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<UserId>,
}

/// `DELETE /users/me`: the password again, so a stolen access token alone cannot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct DeleteAccount {
    pub password: String,
}

/// `GET /users/me/export`: everything the server keeps that is the caller's own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct AccountExport {
    pub exported_at: DateTime<Utc>,
    pub profile: Profile,
    /// Rooms the caller belongs to (DMs apart, below).
    pub rooms: Vec<RoomView>,
    pub direct_messages: Vec<DirectView>,
    /// Messages the caller sent, oldest first (at most 100000).
    pub messages: Vec<Message>,
    pub notifications: Vec<Notification>,
    pub invitations: Vec<Invitation>,
}

/// `GET /search`: one page of hits, best first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    /// Pass as `before` to get the next (less relevant) page; absent on the last page.
    /// Opaque: a rank and a message id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A message that matched a search, with the matching part of its text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct SearchHit {
    pub message: Message,
    /// An excerpt of the message around the matches, as plain-text pieces in order;
    /// `hit` pieces are the matched words. Render each piece as text (never as HTML).
    pub snippet: Vec<SnippetPart>,
}

/// One piece of a search snippet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct SnippetPart {
    pub text: String,
    /// Whether this piece is a matched word (to highlight).
    #[serde(default)]
    pub hit: bool,
}

/// How far one member has read a room: `GET /rooms/{id}/receipts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct ReadReceipt {
    pub user: User,
    /// The member's read marker: every message up to this seq is read.
    pub last_read_seq: Seq,
}

/// `GET /rooms/{id}/receipts`: every member's read marker, for "seen by" in rooms of at
/// most [`MAX_RECEIPT_MEMBERS`] members (larger rooms are refused).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
pub struct ReadReceipts {
    pub receipts: Vec<ReadReceipt>,
}

/// Largest room whose read markers are shared with its members ("seen by").
pub const MAX_RECEIPT_MEMBERS: i64 = 50;
