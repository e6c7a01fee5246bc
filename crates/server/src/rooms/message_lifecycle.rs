//! Editing, deleting and reacting to messages: REST calls that each run as one
//! [`RoomChange`] (like moderation): the room locked, the actor's role and the message
//! read, [`authorize`] asked, the message changed in place and a room event
//! (`message_updated`, `message_deleted`, `reaction`) appended with the room's next seq,
//! in one transaction. The event is fanned out once committed, so live members see the
//! change and a client resuming with `since_seq` replays it.
//!
//! Retries are idempotent: deleting a deleted message, adding a reaction that is there,
//! removing one that is not, or editing to the same content changes nothing and appends
//! no event.

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, put};
use axum::{Json, Router};
use socket_hub_protocol::lifecycle::{EditMessage, MAX_DISTINCT_REACTIONS, MAX_EMOJI_BYTES};
use socket_hub_protocol::rest::Problem;
use socket_hub_protocol::{Message, RoomEvent, RoomId, User};

use super::message_changes::Original;
use super::policy::{Action, authorize};
use super::store::RoomChange;
use super::{Rooms, mentioned_names, validate_content};
use crate::auth::{Auth, AuthUser};
use crate::broker::Envelope;
use crate::error::{Error, Result};
use crate::http::{JsonBody, PathParam};
use crate::store::{from_millis, now_millis};

/// Routes under `/api/v1/rooms/{id}/messages/{message_id}`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new()
        .route(
            "/rooms/{id}/messages/{message_id}",
            patch(edit_message).delete(delete_message),
        )
        .route(
            "/rooms/{id}/messages/{message_id}/reactions/{emoji}",
            put(add_reaction).delete(remove_reaction),
        )
}

/// Opens a change of `room_id` for `actor`, a member, and reads the chat message
/// `message_id`; any refusal rolls the change back. A non-member of a private room
/// learns nothing (`not_found` for the room).
async fn open(
    rooms: &Rooms,
    actor: &User,
    room_id: RoomId,
    message_id: i64,
) -> Result<(RoomChange, Original)> {
    let mut change = rooms
        .store
        .change(room_id)
        .await?
        .ok_or(Error::NotFound("room"))?;
    let found = async {
        let role = change.role(actor.id).await?;
        // Every action here needs membership; which one is decided by the caller.
        authorize(Action::React, role, change.settings.is_private, None)?;
        change
            .original(message_id)
            .await?
            .ok_or(Error::NotFound("message"))
    }
    .await;
    match found {
        Ok(original) => Ok((change, original)),
        Err(err) => {
            change.rollback().await?;
            Err(err)
        }
    }
}

/// Runs `decide` on an open change; a refusal rolls it back.
async fn check(change: RoomChange, decided: Result<()>) -> Result<RoomChange> {
    match decided {
        Ok(()) => Ok(change),
        Err(err) => {
            change.rollback().await?;
            Err(err)
        }
    }
}

/// Appends `event` about message `target`, commits and fans it out.
async fn finish(
    rooms: &Rooms,
    mut change: RoomChange,
    actor: &User,
    summary: &str,
    target: i64,
    event: RoomEvent,
) -> Result<Message> {
    let message = change.append_event(actor, summary, event).await?;
    change.set_target(message.id, target).await?;
    change.commit().await?;
    rooms.broker.publish(Envelope::chat(&message));
    Ok(message)
}

/// The message as the caller sees it now.
async fn current(rooms: &Rooms, user: &User, room_id: RoomId, id: i64) -> Result<Json<Message>> {
    let message = rooms
        .messages
        .current(room_id, id, user.id)
        .await?
        .ok_or(Error::NotFound("message"))?;
    Ok(Json(message))
}

/// Edit your own message (within `--edit-window-secs` of sending; 0: for ever). Members
/// get a `message_updated` event; history shows the new content with `edited_at`.
#[utoipa::path(patch, path = "/api/v1/rooms/{id}/messages/{message_id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("message_id" = i64, Path, description = "Message id")),
    request_body = EditMessage,
    responses(
        (status = 200, description = "The message as edited (the same content again changes nothing)", body = Message),
        (status = 403, description = "Not its author, not a member, or the edit window has passed", body = Problem),
        (status = 404, description = "No such room or message", body = Problem),
        (status = 410, description = "The message was deleted", body = Problem),
        (status = 422, description = "Empty or too long", body = Problem),
    ))]
pub async fn edit_message(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, message_id)): PathParam<(RoomId, i64)>,
    JsonBody(body): JsonBody<EditMessage>,
) -> Result<Json<Message>> {
    validate_content(&body.content, rooms.max_content_chars)?;
    let (mut change, original) = open(&rooms, &user, room_id, message_id).await?;
    let window_ms = i64::try_from(rooms.edit_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let decided = async {
        if original.user_id != user.id {
            return Err(Error::Forbidden("only its author may edit a message"));
        }
        if change.muted(user.id).await? {
            return Err(Error::Forbidden("you are muted in this room"));
        }
        if original.deleted {
            return Err(Error::Gone("the message was deleted"));
        }
        if window_ms > 0 && now_millis().saturating_sub(original.created_at) > window_ms {
            return Err(Error::Forbidden(
                "the edit window of this message has passed",
            ));
        }
        Ok(())
    }
    .await;
    let mut change = check(change, decided).await?;
    if original.content == body.content {
        change.rollback().await?;
        return current(&rooms, &user, room_id, message_id).await;
    }
    let edited_at = change.edit(message_id, &body.content).await?;
    let mentions = mentioned_names(&body.content);
    let before = mentioned_names(&original.content);
    let event = RoomEvent::MessageUpdated {
        message_id,
        content: body.content.clone(),
        edited_at: from_millis(edited_at),
        mentions: mentions.clone(),
    };
    let summary = format!("{} edited a message", user.username);
    let event_message = finish(&rooms, change, &user, &summary, message_id, event).await?;
    // Only the names the edit added are notified: the others were told at sending.
    let added: Vec<String> = mentions
        .into_iter()
        .filter(|name| !before.contains(name))
        .collect();
    if !added.is_empty() {
        super::notify_mentions(
            &rooms,
            &Message {
                content: body.content,
                mentions: added,
                ..event_message
            },
        );
    }
    current(&rooms, &user, room_id, message_id).await
}

/// Delete a message: your own, or as an admin or the owner one whose author has a
/// lower role (or left). Its content is erased from storage and its reactions removed;
/// members get a `message_deleted` event and history shows a tombstone.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{message_id}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("message_id" = i64, Path, description = "Message id")),
    responses(
        (status = 204, description = "Deleted (also when it already was)"),
        (status = 403, description = "Not its author and not allowed to moderate it, or not a member", body = Problem),
        (status = 404, description = "No such room or message", body = Problem),
    ))]
pub async fn delete_message(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, message_id)): PathParam<(RoomId, i64)>,
) -> Result<Response> {
    let (mut change, original) = open(&rooms, &user, room_id, message_id).await?;
    let decided = async {
        if original.user_id == user.id {
            return Ok(());
        }
        let private = change.settings.is_private;
        let role = change.role(user.id).await?;
        let author = change.role(original.user_id).await?;
        authorize(Action::DeleteMessage, role, private, author)?;
        Ok::<(), Error>(())
    }
    .await;
    let mut change = check(change, decided).await?;
    if original.deleted {
        change.rollback().await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let (deleted_at, blob_keys) = change.erase(message_id).await?;
    let event = RoomEvent::MessageDeleted {
        message_id,
        deleted_at: from_millis(deleted_at),
    };
    let summary = format!("{} deleted a message", user.username);
    finish(&rooms, change, &user, &summary, message_id, event).await?;
    // The uploads' rows went with the message, so nobody can fetch the files any more;
    // a blob left behind by a failure here is unreachable, only disk to reclaim.
    for key in blob_keys {
        if let Err(err) = rooms.blobs.delete(&key).await {
            tracing::warn!(error = %err, "cannot remove a deleted message's attachment");
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A reaction: a short emoji (1 to 32 bytes, no spaces or control characters, at least
/// one character outside ASCII, so words are refused).
fn validate_emoji(emoji: &str) -> Result<()> {
    let ok = !emoji.is_empty()
        && emoji.len() <= MAX_EMOJI_BYTES
        && !emoji.chars().any(|c| c.is_whitespace() || c.is_control())
        && !emoji.is_ascii();
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "a reaction is one emoji: 1-{MAX_EMOJI_BYTES} bytes, no spaces"
        )))
    }
}

/// React to a message with an emoji (at most 20 distinct emojis per message). Members
/// get a `reaction` event (`added: true`); adding one that is there changes nothing.
#[utoipa::path(put, path = "/api/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("message_id" = i64, Path, description = "Message id"),
        ("emoji" = String, Path, description = "The emoji, percent-encoded")),
    responses(
        (status = 204, description = "Added (also when it already was)"),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such room or message", body = Problem),
        (status = 409, description = "The message already has 20 distinct emojis", body = Problem),
        (status = 410, description = "The message was deleted", body = Problem),
        (status = 422, description = "Not an emoji", body = Problem),
    ))]
pub async fn add_reaction(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, message_id, emoji)): PathParam<(RoomId, i64, String)>,
) -> Result<Response> {
    react(&rooms, &user, room_id, message_id, &emoji, true).await
}

/// Take back your reaction. Members get a `reaction` event (`added: false`); removing
/// one that is not there changes nothing.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/messages/{message_id}/reactions/{emoji}", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("message_id" = i64, Path, description = "Message id"),
        ("emoji" = String, Path, description = "The emoji, percent-encoded")),
    responses(
        (status = 204, description = "Removed (also when it was not there)"),
        (status = 403, description = "Not a member", body = Problem),
        (status = 404, description = "No such room or message", body = Problem),
        (status = 422, description = "Not an emoji", body = Problem),
    ))]
pub async fn remove_reaction(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, message_id, emoji)): PathParam<(RoomId, i64, String)>,
) -> Result<Response> {
    react(&rooms, &user, room_id, message_id, &emoji, false).await
}

async fn react(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
    message_id: i64,
    emoji: &str,
    added: bool,
) -> Result<Response> {
    validate_emoji(emoji)?;
    let (mut change, original) = open(rooms, user, room_id, message_id).await?;
    let decided = async {
        if original.deleted {
            return Err(Error::Gone("the message was deleted"));
        }
        if added {
            if change.muted(user.id).await? {
                return Err(Error::Forbidden("you are muted in this room"));
            }
            let (distinct, present) = change.emojis(message_id, emoji).await?;
            if !present && distinct >= MAX_DISTINCT_REACTIONS as i64 {
                return Err(Error::Conflict(
                    "a message has at most 20 distinct reactions",
                ));
            }
        }
        Ok(())
    }
    .await;
    let mut change = check(change, decided).await?;
    let changed = if added {
        change.add_reaction(message_id, user.id, emoji).await?
    } else {
        change.remove_reaction(message_id, user.id, emoji).await?
    };
    if !changed {
        change.rollback().await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let event = RoomEvent::Reaction {
        message_id,
        emoji: emoji.to_owned(),
        added,
    };
    let summary = if added {
        format!("{} reacted {emoji}", user.username)
    } else {
        format!("{} took back {emoji}", user.username)
    };
    finish(rooms, change, user, &summary, message_id, event).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_are_short_emojis() {
        for good in ["👍", "❤️", "👨‍👩‍👧", "🇫🇷", "1️⃣"] {
            assert!(validate_emoji(good).is_ok(), "{good}");
        }
        for bad in ["", "lol", "👍 👍", "a\u{7}", &"👍".repeat(9)] {
            assert!(validate_emoji(bad).is_err(), "{bad:?}");
        }
    }
}
