//! Rooms and messages service: rooms, who belongs to them, and their durable history.
//!
//! Sending lives here too ([`send_message`]), shared by the REST route and the
//! WebSocket gateway so a message is validated, stored and fanned out the same way
//! whichever door it came in by.

pub mod appender;
mod attachments;
pub mod direct;
pub mod invites;
mod message_changes;
pub mod message_lifecycle;
mod message_store;
pub mod moderation;
pub mod policy;
pub mod reading;
pub mod routes;
pub mod search;
mod search_index;
mod snippet;
mod store;

use std::sync::Arc;

use socket_hub_protocol::rest::RoomView;
use socket_hub_protocol::{Message, RoomId, ServerFrame, User};

pub use appender::{AppendOptions, Linger};
pub use message_store::{Appended, MessageStore, NewMessage};
pub use routes::routes;
pub use store::{
    Admission, DirectOpened, RoomAccess, RoomChange, RoomSettings, RoomStore, Target, Unusable,
};

use crate::auth::Guard;
use crate::broker::{Broker, Envelope};
use crate::error::{Error, Result};
use crate::notifications::{NewNotification, Notifier};

/// What the rooms routes and sending (from REST or the gateway) need: the service's own
/// slice of the app state, so rooms depends on nothing above it. Cloning bumps a few
/// reference counts.
#[derive(Clone)]
pub struct Rooms {
    /// Rooms and memberships.
    pub store: RoomStore,
    /// Durable history.
    pub messages: MessageStore,
    /// Fan-out of stored messages, typing notices and evictions.
    pub broker: Arc<dyn Broker>,
    /// Longest message content, in characters (`--max-content-chars`).
    pub max_content_chars: usize,
    /// How long after sending a message may be edited, in seconds; 0: for ever
    /// (`--edit-window-secs`).
    pub edit_window_secs: u64,
    /// The argon2 queue and the wrong-access-code counters.
    pub guard: Arc<Guard>,
    /// Invitations, mentions, new DMs and moderation notify the people concerned.
    pub notifier: Notifier,
    /// Uploads a message attaches are claimed for its room here.
    pub uploads: crate::uploads::UploadStore,
    /// Where the uploads' bytes are, so deleting a message erases its files too.
    pub blobs: Arc<dyn crate::uploads::BlobStore>,
}

/// A room the user may see (public, or private and a member); private rooms of others
/// are reported as not found, never as forbidden, so their existence does not leak.
pub(crate) async fn visible_room(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
) -> Result<RoomAccess> {
    let access = rooms
        .store
        .access(room_id, user.id)
        .await?
        .ok_or(Error::NotFound("room"))?;
    if access.view.room.is_private && !access.view.room.is_member {
        return Err(Error::NotFound("room"));
    }
    Ok(access)
}

/// How a client of a name-addressed protocol (Socket.IO, the spaces API) names a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRef {
    /// By id.
    Id(RoomId),
    /// By name: created as a public room when no room has it.
    Name(String),
}

/// The room `room` names for `user`: by id as is; by name the room clients mean by it
/// ([`RoomStore::find_named`]), or a new public room owned by `user` (counted against
/// the room-creation quota), created once however many instances race to. Whether
/// `user` may join it is [`ensure_member`]'s decision.
pub(crate) async fn resolve_room(rooms: &Rooms, user: &User, room: &RoomRef) -> Result<RoomId> {
    let name = match room {
        RoomRef::Id(id) => return Ok(*id),
        RoomRef::Name(name) => validate_room_name(name)?,
    };
    if let Some(room_id) = rooms.store.find_named(name).await? {
        return Ok(room_id);
    }
    rooms.guard.quotas.room_creates.check(&user.id)?;
    let (room_id, _created) = rooms.store.create_named(user.id, name).await?;
    Ok(room_id)
}

/// As [`ensure_member`] for a door that does not answer with the room (the WebSocket
/// joins): a member passes on one primary-key probe, without the room view's member and
/// unread counts, which cost a scan of the room's members and of up to 1000 messages on
/// every reconnect.
pub(crate) async fn ensure_joinable(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
    access_code: Option<String>,
) -> Result<()> {
    if rooms.store.is_member(room_id, user.id).await? {
        return Ok(());
    }
    ensure_member(rooms, user, room_id, access_code)
        .await
        .map(drop)
}

/// Makes `user` a member if they are not yet: free for public rooms, with the right
/// access code for private ones. Shared by the REST join and the WebSocket `join_room`,
/// so both doors count wrong codes together and refuse a locked guesser before any
/// argon2 work.
pub(crate) async fn ensure_member(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
    access_code: Option<String>,
) -> Result<RoomView> {
    let access = rooms
        .store
        .access(room_id, user.id)
        .await?
        .ok_or(Error::NotFound("room"))?;
    let mut view = access.view;
    if view.room.is_member {
        return Ok(view);
    }
    if rooms.store.is_banned(room_id, user.id).await? {
        // Without a code a private room stays invisible, banned or not.
        return Err(if view.room.is_private && access_code.is_none() {
            Error::NotFound("room")
        } else {
            Error::Forbidden("you are banned from this room")
        });
    }
    if view.room.is_private {
        // Without a code a private room is invisible; with one, it answers.
        let code = access_code.ok_or(Error::NotFound("room"))?;
        let member_key = format!("code:member:{room_id}:{}", user.id);
        let room_key = format!("code:room:{room_id}");
        rooms.guard.lockout.check(&[&member_key, &room_key]).await?;
        let hash = access.access_code_hash.ok_or(Error::WrongAccessCode)?;
        if !rooms.guard.hasher.verify(code, hash).await? {
            let limits = &rooms.guard.access_code;
            rooms
                .guard
                .lockout
                .fail(&[(&member_key, &limits.member), (&room_key, &limits.room)])
                .await?;
            return Err(Error::WrongAccessCode);
        }
        rooms.guard.lockout.reset(&[&member_key]).await?;
    }
    if rooms.store.add_member(room_id, user.id, "member").await? {
        view.room.member_count += 1;
    } else if !rooms.store.is_member(room_id, user.id).await? {
        // Banned between the check above and the insert.
        return Err(Error::Forbidden("you are banned from this room"));
    }
    view.room.is_member = true;
    view.role = Some(socket_hub_protocol::Role::Member);
    Ok(view)
}

/// Validates, stores (durably) and fans out a message; an already-used
/// `client_msg_id` returns the original message and sends nothing again. Returns once
/// the message is stored: fan-out is handed to the broker without waiting on it.
pub(crate) async fn send_message(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
    client_msg_id: Option<&str>,
    content: &str,
) -> Result<Message> {
    send_message_with(rooms, user, room_id, client_msg_id, content, None, &[]).await
}

/// [`send_message`], answering the message `reply_to` of the same room when given (the
/// stored message then carries its quote), with attachments: the ids of the sender's own
/// uploads, attached to this room (see [`attachments::claim`]); with some, `content` may
/// be empty.
pub(crate) async fn send_message_with(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
    client_msg_id: Option<&str>,
    content: &str,
    reply_to: Option<i64>,
    upload_ids: &[String],
) -> Result<Message> {
    if upload_ids.is_empty() || !content.is_empty() {
        validate_content(content, rooms.max_content_chars)?;
    }
    if client_msg_id.is_some_and(|id| id.is_empty() || id.len() > 64 || id.contains('\0')) {
        return Err(Error::InvalidInput(
            "client_msg_id must be 1-64 bytes, without NUL".into(),
        ));
    }
    // One bucket per user whichever door the message came in by, so REST cannot be
    // used to get around the WebSocket's limit, nor many connections to multiply it.
    rooms.guard.quotas.sends.check(&user.id)?;
    let quote = match reply_to {
        Some(id) => Some(rooms.messages.quote(room_id, id).await?.ok_or_else(|| {
            Error::InvalidInput("reply_to must name a message of the same room".into())
        })?),
        None => None,
    };
    let attached = attachments::claim(rooms, user, room_id, upload_ids).await?;
    let appended = rooms
        .messages
        .append(NewMessage {
            room_id,
            user,
            client_msg_id,
            content,
            reply_to,
            attachments: attached.as_ref().map(|(_, json)| json.as_str()),
        })
        .await?;
    match appended {
        Appended::Stored(mut message) => {
            message.reply_to = quote;
            message.mentions = mentioned_names(&message.content);
            if let Some((attachments, _)) = attached {
                message.attachments = attachments;
            }
            crate::metrics::messages_stored(1);
            // Stored is what counts: if fan-out drops it, receivers refill from the store.
            rooms.broker.publish(Envelope::chat(&message));
            if !message.mentions.is_empty() {
                notify_mentions(rooms, &message);
            }
            Ok(message)
        }
        Appended::Duplicate(mut message) => {
            message.reply_to = quote;
            message.mentions = mentioned_names(&message.content);
            Ok(message)
        }
        Appended::NotMember => {
            if visible_room(rooms, user, room_id)
                .await?
                .view
                .room
                .is_member
            {
                return Err(Error::Forbidden("you are muted in this room"));
            }
            Err(Error::Forbidden("join the room before sending to it"))
        }
    }
}

/// Most `@username` mentions of one message that notify.
const MAX_MENTIONS: usize = 10;
/// Characters of the message a `mentioned` notification quotes.
const MENTION_QUOTE_CHARS: usize = 200;

/// The lower-cased names `@mentioned` in `content`, each once, at most [`MAX_MENTIONS`].
fn mentioned_names(content: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if !content.contains('@') {
        return names;
    }
    for (at, _) in content.match_indices('@') {
        let name: String = content[at + 1..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            .collect::<String>()
            .trim_end_matches('.')
            .to_lowercase();
        if !name.is_empty() && !names.contains(&name) {
            names.push(name);
            if names.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    names
}

/// Notifies the members `message` mentions (never its sender), in a task of its own:
/// the sender's ack does not wait for it.
fn notify_mentions(rooms: &Rooms, message: &Message) {
    let names = message.mentions.clone();
    if names.is_empty() {
        return;
    }
    let rooms = rooms.clone();
    let (room_id, seq, from) = (message.room_id, message.seq, message.user.clone());
    let quote: String = message.content.chars().take(MENTION_QUOTE_CHARS).collect();
    tokio::spawn(async move {
        match rooms.store.members_named(room_id, &names).await {
            Ok(mut users) => {
                users.retain(|id| *id != from.id);
                rooms
                    .notifier
                    .notify(
                        users,
                        NewNotification {
                            kind: socket_hub_protocol::NotificationKind::Mentioned,
                            room_id: Some(room_id),
                            from: Some(from),
                            message: Some(quote),
                            seq: Some(seq),
                        },
                    )
                    .await;
            }
            Err(err) => tracing::warn!(error = %err, "cannot resolve mentions"),
        }
    });
}

/// Tells the room's other members that `user` is typing. Ephemeral: never stored.
pub(crate) fn publish_typing(rooms: &Rooms, user: &User, room_id: RoomId) {
    let frame = ServerFrame::Typing {
        room_id,
        user: user.clone(),
    };
    rooms
        .broker
        .publish(Envelope::ephemeral(room_id, Some(user.id), &frame));
}

fn validate_content(content: &str, max_chars: usize) -> Result<()> {
    if content.trim().is_empty() {
        return Err(Error::InvalidInput("message content is empty".into()));
    }
    if content.chars().count() > max_chars {
        return Err(Error::ContentTooLong(max_chars));
    }
    // PostgreSQL text cannot hold NUL; refusing it here keeps both backends alike and
    // keeps such a message out of a shared append batch.
    if content.contains('\0') {
        return Err(Error::InvalidInput("message content contains NUL".into()));
    }
    Ok(())
}

/// Room names: 1 to 64 characters after trimming, none of them control or invisible
/// characters (see [`is_invisible`]): a name is what people trust a room by, so it must
/// read as what it is.
fn validate_room_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > 64
        || name.chars().any(|c| c.is_control() || is_invisible(c))
    {
        return Err(Error::InvalidInput(
            "room name must be 1-64 visible characters, without control, format (bidi, zero-width) or blank characters".into(),
        ));
    }
    Ok(name)
}

/// Characters that change how text around them reads, or show as nothing: every
/// character of Unicode general category Cf (format: bidi embeddings, overrides and
/// isolates, zero-width space/joiners, word joiner, invisible operators, BOM, soft
/// hyphen, interlinear annotation, tags, …, as of Unicode 16), the line and paragraph
/// separators (Zl, Zp), and the blank letters and marks that render as nothing
/// (Hangul fillers, combining grapheme joiner, Mongolian variation selectors, braille
/// blank). An explicit table so a dependency update cannot change what is allowed.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        // Cf
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            // Zl, Zp
            | 0x2028..=0x2029
            // Blank but not Cf: combining grapheme joiner, Hangul fillers, Mongolian
            // free variation selectors, braille pattern blank, Khmer inherent vowels.
            | 0x034F
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180D
            | 0x180F
            | 0x2800
            | 0x3164
            | 0xFFA0
    )
}

/// Access codes: 8 to 64 characters, so guessing one within the lockout limits is
/// hopeless (a 4-digit code fell in about a second before there were any).
fn validate_access_code(code: &str) -> Result<()> {
    if !(8..=64).contains(&code.chars().count()) {
        return Err(Error::InvalidInput(
            "access code must be 8-64 characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_names_after_at_each_once() {
        assert_eq!(
            mentioned_names("hi @Bob and @carol.x, @bob again; mail a@b. @ alone @dave."),
            ["bob", "carol.x", "b", "dave"]
        );
        assert!(mentioned_names("no mentions").is_empty());
    }

    #[test]
    fn content_limits_count_characters_not_bytes() {
        assert!(validate_content("héllo", 5).is_ok());
        assert!(matches!(
            validate_content("héllo!", 5),
            Err(Error::ContentTooLong(5))
        ));
        assert!(validate_content("   ", 5).is_err());
        assert!(validate_content("a\0b", 5).is_err());
    }

    #[test]
    fn room_names_are_trimmed_and_bounded() {
        assert_eq!(validate_room_name("  general ").ok(), Some("general"));
        assert!(validate_room_name("").is_err());
        assert!(validate_room_name("a\u{7}b").is_err());
    }

    #[test]
    fn room_names_refuse_invisible_characters() {
        for bad in [
            "admin\u{202E}txt.exe",
            "a\u{2066}b\u{2069}",
            "zero\u{200B}width",
            "joi\u{200D}ner",
            "\u{FEFF}bom",
            "tag\u{E0041}",
            "soft\u{AD}hyphen",
            "\u{3164}",
            "line\u{2028}sep",
        ] {
            assert!(validate_room_name(bad).is_err(), "{bad:?}");
        }
        for good in [
            "général",
            "日本語の部屋",
            "emoji 🎉",
            "café ☕\u{FE0F}",
            "עברית",
            "العربية",
        ] {
            assert_eq!(validate_room_name(good).ok(), Some(good), "{good:?}");
        }
    }
}
