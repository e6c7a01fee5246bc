//! WebSocket frames: JSON text frames, each an object with a `type` field.
//!
//! See `docs/protocol.md` for the conversation these frames make up.

use serde::{Deserialize, Serialize};

use crate::model::{Message, Notification, PresenceStatus, RoomId, Seq, User, UserId};

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Authenticates a connection that did not present a token at the handshake, or
    /// refreshes the token of a live one before it expires (same user only).
    Auth { token: String },
    /// Starts receiving a room's messages and presence. With `since_seq`, everything
    /// stored after it is replayed first, then the live stream continues seamlessly.
    JoinRoom {
        room_id: RoomId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since_seq: Option<Seq>,
        /// Needed to become a member of a private room on the fly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_code: Option<String>,
    },
    /// Stops receiving a room on this connection (membership is kept).
    LeaveRoom { room_id: RoomId },
    /// Sends a message. `client_msg_id` makes the send idempotent: resending it returns
    /// the original message instead of storing a duplicate. `attachments` names the
    /// sender's own uploads (`POST /uploads`); with some, `content` may be empty.
    MessageSend {
        room_id: RoomId,
        client_msg_id: String,
        content: String,
        /// The id of a message of the same room this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i64>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<crate::attachments::UploadId>,
    },
    /// Tells the room's other members this user is typing. Never stored.
    Typing { room_id: RoomId },
    /// Marks everything up to `seq` as read, for unread counts on every device.
    Read { room_id: RoomId, seq: Seq },
    /// Application-level keepalive; answered with `pong`.
    Ping,
    /// This connection's presence: `away` (the tab is hidden or the user idle) or
    /// `online` again. The user is away when every connection of theirs is.
    Presence { status: PresenceStatus },
}

/// A frame sent by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The connection is authenticated (sent again after a token refresh).
    Ready { user: User },
    /// The connection now receives `room_id`. `members` are the users online in it;
    /// `last_seq` is the newest message at the moment of joining.
    RoomJoined {
        room_id: RoomId,
        members: Vec<User>,
        last_seq: Seq,
    },
    /// The connection no longer receives `room_id` (it asked, or lost membership).
    RoomLeft { room_id: RoomId },
    /// A message in a room this connection has joined, in `seq` order.
    Chat { message: Message },
    /// A user came online in a room (their first connection joined it).
    Join { room_id: RoomId, user: User },
    /// A user went offline in a room (their last connection left it).
    Leave { room_id: RoomId, user: User },
    /// The message with this `client_msg_id` is durably stored.
    Ack {
        client_msg_id: String,
        message: Message,
    },
    /// Another member is typing.
    Typing { room_id: RoomId, user: User },
    /// A request failed; `ref` names what it was about (a `client_msg_id` or room id).
    Error {
        code: ErrorCode,
        message: String,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// With `rate_limited`: milliseconds until the connection may send again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// Answer to `ping`.
    Pong,
    /// A room event (`message.event`) in the room's stream, ordered by `message.seq`
    /// with its chat messages: the settings changed.
    RoomUpdated { message: Message },
    /// A room event: a member's role or mute changed.
    MemberUpdated { message: Message },
    /// A room event: a member was kicked. Their connections then get `room_left`.
    Kicked { message: Message },
    /// A room event: a user was banned. Their connections then get `room_left`.
    Banned { message: Message },
    /// A room event: a ban was lifted.
    Unbanned { message: Message },
    /// A room event: a message was edited (`message.event` says which, and its new
    /// content).
    MessageUpdated { message: Message },
    /// A room event: a message was deleted; show it as a tombstone.
    MessageDeleted { message: Message },
    /// A room event: a reaction was added to or removed from a message.
    Reaction { message: Message },
    /// The room and its history are gone (deleted by its owner); `room_left` follows.
    /// Not part of the seq stream: a client resuming the room gets `not_found`.
    RoomDeleted { room_id: RoomId, by: User },
    /// A read marker moved. To every connection of `user`, with `unread`: their unread
    /// count of the room, counted up to `last_seq` (the room's newest seq then; a later
    /// `chat` of others adds one). And, in rooms of at most 50 members, to the room's
    /// other members, without those two, for "seen by".
    ReadMarker {
        room_id: RoomId,
        user: User,
        seq: Seq,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unread: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seq: Option<Seq>,
    },
    /// An entry of your notification stream: live to every connection of yours, and
    /// your unread ones again after each `ready`. Deduplicate by `notification.id`.
    Notification { notification: Notification },
    /// A person who shares a room or DM with you went online, away or offline
    /// (`last_seen_at` with `offline`). Sent once per change to each connection.
    Presence {
        user_id: UserId,
        status: PresenceStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// Machine-readable reasons in `error` frames and REST problem responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(any(test, feature = "ts"), derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame or body is not valid JSON of the expected shape.
    MalformedJson,
    /// The frame's `type` is not one this server knows.
    UnknownType,
    /// A field failed validation (length, characters, range).
    InvalidInput,
    /// The message content is longer than the server allows.
    ContentTooLong,
    /// The frame is larger than the server allows.
    FrameTooLarge,
    /// Too many frames or requests; slow down.
    RateLimited,
    /// No token, or a token that is not valid.
    Unauthorized,
    /// The access token has expired; refresh it.
    TokenExpired,
    /// A refresh token was presented twice; its whole family is revoked.
    RefreshReused,
    /// Wrong username or password.
    InvalidCredentials,
    /// The room's access code is wrong.
    WrongAccessCode,
    /// Authenticated, but not allowed (e.g. not a member of the room).
    Forbidden,
    /// No such thing, or one you may not see.
    NotFound,
    /// The name is taken.
    Conflict,
    /// The connection is not in that room; join it first.
    NotJoined,
    /// The connection has joined as many rooms as the server allows; leave one first.
    TooManyRooms,
    /// Something broke on the server; the request may be retried.
    Internal,
    /// A dependency (database) is unavailable; retry later.
    Unavailable,
    /// It existed but cannot be used any more: an expired, used-up or revoked invite
    /// link.
    Gone,
    /// An upload is larger than the server's per-file limit.
    FileTooLarge,
    /// An upload would take the user past their storage quota.
    QuotaExceeded,
}

impl ErrorCode {
    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::UnknownType => "unknown_type",
            Self::InvalidInput => "invalid_input",
            Self::ContentTooLong => "content_too_long",
            Self::FrameTooLarge => "frame_too_large",
            Self::RateLimited => "rate_limited",
            Self::Unauthorized => "unauthorized",
            Self::TokenExpired => "token_expired",
            Self::RefreshReused => "refresh_reused",
            Self::InvalidCredentials => "invalid_credentials",
            Self::WrongAccessCode => "wrong_access_code",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::NotJoined => "not_joined",
            Self::TooManyRooms => "too_many_rooms",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::Gone => "gone",
            Self::FileTooLarge => "file_too_large",
            Self::QuotaExceeded => "quota_exceeded",
        }
    }
}

/// WebSocket close codes the server uses, so clients can decide whether to reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCode;

impl CloseCode {
    /// Server is shutting down; reconnect (possibly to another instance).
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame violated the protocol (e.g. binary frame) or the client flooded.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A frame exceeded the size limit.
    pub const TOO_BIG: u16 = 1009;
    /// Server restarting: reconnect elsewhere and resume with `since_seq`.
    pub const SERVICE_RESTART: u16 = 1012;
    /// The client could not keep up (outbound queue full or writes timing out);
    /// reconnect and resume with `since_seq`.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// No valid token in time, or the token expired: refresh it and reconnect.
    pub const UNAUTHORIZED: u16 = 4401;
    /// No pong or frame within the keepalive timeout.
    pub const KEEPALIVE_TIMEOUT: u16 = 4408;
}

impl ServerFrame {
    /// Builds an `error` frame.
    pub fn error(code: ErrorCode, message: impl Into<String>, reference: Option<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            reference,
            retry_after_ms: None,
        }
    }

    /// Encodes the frame as the JSON text sent on the wire.
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail: no maps with non-string keys,
        // no custom serializers that error.
        serde_json::to_string(self).unwrap_or_else(|_| String::from(r#"{"type":"error"}"#))
    }
}

/// Encodes `{"type":"chat","message":…}` from a borrowed message, so the sender can
/// keep its message for the `ack` without cloning it for the broadcast.
pub fn encode_chat(message: &Message) -> String {
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "chat")]
    struct Chat<'a> {
        message: &'a Message,
    }
    serde_json::to_string(&Chat { message }).unwrap_or_else(|_| String::from(r#"{"type":"error"}"#))
}

/// Encodes a stored message as the frame that carries it: `chat`, or for a room event
/// the frame named by the event (`kicked`, `member_updated`, …).
pub fn encode_stored(message: &Message) -> String {
    let Some(event) = &message.event else {
        return encode_chat(message);
    };
    #[derive(Serialize)]
    struct Stored<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        message: &'a Message,
    }
    serde_json::to_string(&Stored {
        kind: event.kind(),
        message,
    })
    .unwrap_or_else(|_| String::from(r#"{"type":"error"}"#))
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_use_snake_case_type_tags() {
        let frame: ClientFrame =
            serde_json::from_str(r#"{"type":"join_room","room_id":7,"since_seq":3}"#)
                .expect("valid frame");
        assert_eq!(
            frame,
            ClientFrame::JoinRoom {
                room_id: 7,
                since_seq: Some(3),
                access_code: None
            }
        );
        let ping: ClientFrame = serde_json::from_str(r#"{"type":"ping"}"#).expect("ping");
        assert_eq!(ping, ClientFrame::Ping);
    }

    #[test]
    fn error_frame_names_its_reference_ref() {
        let json =
            ServerFrame::error(ErrorCode::RateLimited, "slow down", Some("m1".into())).to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"rate_limited","message":"slow down","ref":"m1"}"#
        );
    }

    #[test]
    fn retry_after_ms_is_sent_only_when_known() {
        let frame = ServerFrame::Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
            reference: Some("m1".into()),
            retry_after_ms: Some(50),
        };
        assert_eq!(
            frame.to_json(),
            r#"{"type":"error","code":"rate_limited","message":"slow down","ref":"m1","retry_after_ms":50}"#
        );
    }

    #[test]
    fn encode_chat_matches_the_chat_frame() {
        let message = Message {
            id: 1,
            room_id: 2,
            seq: 3,
            user: crate::User {
                id: 4,
                username: "ada".into(),
            },
            content: "hi".into(),
            client_msg_id: None,
            event: None,
            created_at: chrono::DateTime::from_timestamp_millis(0).expect("epoch"),
            ..Default::default()
        };
        let borrowed = encode_chat(&message);
        assert_eq!(borrowed, encode_stored(&message));
        assert_eq!(borrowed, ServerFrame::Chat { message }.to_json());
    }

    #[test]
    fn room_events_are_sent_as_their_own_frame_types() {
        let user = crate::User {
            id: 4,
            username: "ada".into(),
        };
        let message = Message {
            id: 1,
            room_id: 2,
            seq: 3,
            user: user.clone(),
            content: "ada kicked bob".into(),
            client_msg_id: None,
            event: Some(crate::RoomEvent::Kicked {
                user: crate::User {
                    id: 5,
                    username: "bob".into(),
                },
                reason: None,
            }),
            created_at: chrono::DateTime::from_timestamp_millis(0).expect("epoch"),
            ..Default::default()
        };
        let json = encode_stored(&message);
        let frame: ServerFrame = serde_json::from_str(&json).expect("decodes");
        assert_eq!(frame, ServerFrame::Kicked { message });
        assert!(
            json.contains(r#""event":{"type":"kicked","user":{"id":5"#),
            "{json}"
        );
    }

    #[test]
    fn error_code_names_match_serde() {
        for code in [
            ErrorCode::MalformedJson,
            ErrorCode::NotJoined,
            ErrorCode::TokenExpired,
            ErrorCode::TooManyRooms,
        ] {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
