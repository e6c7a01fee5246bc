//! Roles and moderation: room settings, kick, ban, mute, roles, ownership, deletion.
//!
//! Every action is one REST call that runs as one [`RoomChange`]: the room locked, the
//! actor's and target's roles read, [`authorize`] asked, the change made and a room event
//! appended to the room's stream with its own seq, all in one transaction. Only after it
//! commits is the event fanned out (like a chat message, so live members and resuming
//! clients see it in seq order) and, for kicks and bans, the target's live connections
//! evicted from the room.

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use socket_hub_protocol::rest::{
    BanList, BanRequest, KickRequest, MuteRequest, Problem, RoomView, SetRole, TransferOwnership,
    UpdateRoom,
};
use socket_hub_protocol::{
    Message, NotificationKind, Role, RoomEvent, RoomId, ServerFrame, User, UserId,
};

use super::policy::{Action, authorize};
use super::store::{FOREVER_MS, RoomChange, Target};
use super::{Rooms, is_invisible, validate_access_code, validate_room_name, visible_room};
use crate::auth::{Auth, AuthUser};
use crate::broker::Envelope;
use crate::error::{Error, Result};
use crate::http::{JsonBody, OptionalJson, PathParam};
use crate::notifications::NewNotification;
use crate::store::now_millis;

/// Longest timed mute or ban: ten years.
const MAX_DURATION_SECS: u64 = 10 * 365 * 24 * 3600;
/// Longest reason or topic, in characters.
const MAX_TEXT_CHARS: usize = 256;
/// Most bans listed at once.
const MAX_BANS_LISTED: u32 = 500;

/// Routes of the moderation actions, under `/api/v1/rooms/{id}`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new()
        .route("/rooms/{id}/members/{user_id}/kick", post(kick))
        .route(
            "/rooms/{id}/members/{user_id}/mute",
            post(mute).delete(unmute),
        )
        .route("/rooms/{id}/members/{user_id}/role", put(set_role))
        .route("/rooms/{id}/bans", post(ban).get(list_bans))
        .route("/rooms/{id}/bans/{user_id}", delete(unban))
        .route("/rooms/{id}/transfer", post(transfer))
}

/// Opens a change of `room_id` and asks [`authorize`] whether `actor` may do `action`
/// (to `target_id`); a refusal rolls the change back. A non-member of a private room
/// learns nothing, not even whether the target exists.
async fn authorized(
    rooms: &Rooms,
    actor: &User,
    room_id: RoomId,
    action: Action,
    target_id: Option<UserId>,
) -> Result<(RoomChange, Option<Target>)> {
    let mut change = rooms
        .store
        .change(room_id)
        .await?
        .ok_or(Error::NotFound("room"))?;
    let decided = async {
        let private = change.settings.is_private;
        let actor_role = change.role(actor.id).await?;
        if actor_role.is_none() {
            authorize(action, None, private, None)?;
        }
        let target = match target_id {
            Some(id) => Some(change.target(id).await?.ok_or(Error::NotFound("user"))?),
            None => None,
        };
        authorize(
            action,
            actor_role,
            private,
            target.as_ref().and_then(|t| t.role),
        )?;
        Ok::<_, Error>(target)
    }
    .await;
    match decided {
        Ok(target) => Ok((change, target)),
        Err(err) => {
            change.rollback().await?;
            Err(err)
        }
    }
}

/// Commits `change` and fans its events out, in seq order.
async fn finish(rooms: &Rooms, change: RoomChange, events: &[Message]) -> Result<()> {
    change.commit().await?;
    for event in events {
        rooms.broker.publish(Envelope::chat(event));
    }
    Ok(())
}

/// An optional free text (reason, topic): trimmed, at most 256 visible characters;
/// empty means none.
fn optional_text(text: Option<&str>, what: &str) -> Result<Option<String>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_TEXT_CHARS
        || text.chars().any(|c| c.is_control() || is_invisible(c))
    {
        return Err(Error::InvalidInput(format!(
            "{what} must be at most {MAX_TEXT_CHARS} visible characters"
        )));
    }
    Ok(Some(text.to_owned()))
}

/// The end of a timed mute or ban, as Unix ms.
fn until(duration_secs: Option<u64>) -> Result<Option<i64>> {
    match duration_secs {
        None => Ok(None),
        Some(secs) if (1..=MAX_DURATION_SECS).contains(&secs) => {
            let millis = i64::try_from(secs * 1000).unwrap_or(i64::MAX);
            Ok(Some(now_millis().saturating_add(millis)))
        }
        Some(_) => Err(Error::InvalidInput(format!(
            "duration_secs must be 1-{MAX_DURATION_SECS}"
        ))),
    }
}

/// Notifies `users` that `actor` did `kind` to them in the room called `room_name`.
async fn notify(
    rooms: &Rooms,
    kind: NotificationKind,
    users: Vec<UserId>,
    room_id: RoomId,
    actor: &User,
    room_name: String,
) {
    rooms
        .notifier
        .notify(
            users,
            NewNotification {
                kind,
                room_id: Some(room_id),
                from: Some(actor.clone()),
                message: Some(room_name),
                seq: None,
            },
        )
        .await;
}

fn with_reason(summary: String, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("{summary}: {reason}"),
        None => summary,
    }
}

/// Change the room's name, topic, access code or visibility; each field present is its
/// own action in the permission table, and all of them one `room_updated` event.
#[utoipa::path(patch, path = "/api/v1/rooms/{id}", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body = UpdateRoom,
    responses(
        (status = 200, description = "The room as changed", body = RoomView),
        (status = 403, description = "The caller's role does not allow a field's change", body = Problem),
        (status = 404, description = "No such room", body = Problem),
        (status = 422, description = "Invalid name, topic or access code, or nothing to change", body = Problem),
    ))]
pub async fn update_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    JsonBody(body): JsonBody<UpdateRoom>,
) -> Result<Json<RoomView>> {
    let mut actions = Vec::new();
    let name = body.name.as_deref().map(validate_room_name).transpose()?;
    name.is_some().then(|| actions.push(Action::Rename));
    let topic = body
        .topic
        .as_deref()
        .map(|t| optional_text(Some(t), "topic"))
        .transpose()?;
    topic.is_some().then(|| actions.push(Action::SetTopic));
    body.is_private
        .is_some()
        .then(|| actions.push(Action::SetVisibility));
    // Hashed before the room is locked: argon2 takes a while.
    let code_hash = match body.access_code.as_deref() {
        None => None,
        Some("") => Some(None),
        Some(code) => {
            validate_access_code(code)?;
            Some(Some(rooms.guard.hasher.hash(code.to_owned()).await?))
        }
    };
    code_hash
        .is_some()
        .then(|| actions.push(Action::ChangeAccessCode));
    if actions.is_empty() {
        return Err(Error::InvalidInput("nothing to change".into()));
    }
    let (mut change, _) = authorized(&rooms, &user, room_id, actions[0], None).await?;
    let private = change.settings.is_private;
    let actor_role = change.role(user.id).await?;
    if let Some(denied) = actions
        .iter()
        .find_map(|action| authorize(*action, actor_role, private, None).err())
    {
        change.rollback().await?;
        return Err(denied.into());
    }
    let mut settings = change.settings.clone();
    if let Some(name) = name {
        settings.name = name.to_owned();
    }
    if let Some(topic) = topic {
        settings.topic = topic;
    }
    if let Some(is_private) = body.is_private {
        settings.is_private = is_private;
    }
    if let Some(hash) = code_hash {
        settings.access_code_hash = hash;
    }
    if !settings.is_private {
        if body.access_code.as_deref().is_some_and(|c| !c.is_empty()) {
            change.rollback().await?;
            return Err(Error::InvalidInput(
                "only private rooms take an access_code".into(),
            ));
        }
        // A public room needs no code; a room made private again needs a new one.
        settings.access_code_hash = None;
    }
    let event = settings.event();
    change.update(settings).await?;
    let message = change
        .append_event(
            &user,
            &format!("{} changed the room settings", user.username),
            event,
        )
        .await?;
    finish(&rooms, change, &[message]).await?;
    Ok(Json(visible_room(&rooms, &user, room_id).await?.view))
}

/// Delete the room and its history; members get `room_deleted` and `room_left`.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only the owner may delete the room", body = Problem),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn delete_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Response> {
    let (mut change, _) = authorized(&rooms, &user, room_id, Action::DeleteRoom, None).await?;
    let mut members = change.member_ids().await?;
    members.retain(|id| *id != user.id);
    let name = change.settings.name.clone();
    change.delete().await?;
    change.commit().await?;
    notify(
        &rooms,
        NotificationKind::RoomDeleted,
        members,
        room_id,
        &user,
        name,
    )
    .await;
    let frame = ServerFrame::RoomDeleted {
        room_id,
        by: user.clone(),
    };
    rooms
        .broker
        .publish(Envelope::ephemeral(room_id, None, &frame));
    rooms.broker.publish(Envelope::evict_all(room_id));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Remove a member (they may join again); their live connections leave the room.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/members/{user_id}/kick", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("user_id" = i64, Path, description = "Member to kick")),
    request_body(content = KickRequest, description = "Optional reason"),
    responses(
        (status = 200, description = "Kicked: the stored `kicked` event", body = Message),
        (status = 403, description = "Not an admin, or the target's role is not below the caller's", body = Problem),
        (status = 404, description = "No such room, or the user is not a member", body = Problem),
    ))]
pub async fn kick(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, target_id)): PathParam<(RoomId, UserId)>,
    OptionalJson(body): OptionalJson<KickRequest>,
) -> Result<Json<Message>> {
    let reason = optional_text(body.reason.as_deref(), "reason")?;
    let (mut change, target) =
        authorized(&rooms, &user, room_id, Action::Kick, Some(target_id)).await?;
    let target = target.ok_or(Error::NotFound("member"))?.user;
    change.remove_member(target.id).await?;
    let content = with_reason(
        format!("{} kicked {}", user.username, target.username),
        reason.as_deref(),
    );
    let event = RoomEvent::Kicked {
        user: target.clone(),
        reason,
    };
    let message = remove(&rooms, change, &user, &target, &content, event).await?;
    Ok(Json(message))
}

/// Ends a kick or ban: appends its event, commits, evicts the target's live connections
/// from the room and notifies them.
async fn remove(
    rooms: &Rooms,
    mut change: RoomChange,
    actor: &User,
    target: &User,
    content: &str,
    event: RoomEvent,
) -> Result<Message> {
    let kind = match event {
        RoomEvent::Banned { .. } => NotificationKind::Banned,
        _ => NotificationKind::Kicked,
    };
    let (room_id, name) = (change.room_id(), change.settings.name.clone());
    let message = change.append_event(actor, content, event).await?;
    finish(rooms, change, std::slice::from_ref(&message)).await?;
    rooms.broker.publish(Envelope::evict(room_id, target.id));
    notify(rooms, kind, vec![target.id], room_id, actor, name).await;
    Ok(message)
}

/// Ban a user (a member, who is removed, or anyone else): they cannot join again, by
/// code, link or invitation, until the ban ends or is lifted.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/bans", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body = BanRequest,
    responses(
        (status = 200, description = "Banned: the stored `banned` event", body = Message),
        (status = 403, description = "Not an admin, or the target's role is not below the caller's", body = Problem),
        (status = 404, description = "No such room or user", body = Problem),
        (status = 422, description = "Reason too long or duration out of range", body = Problem),
    ))]
pub async fn ban(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    JsonBody(body): JsonBody<BanRequest>,
) -> Result<Json<Message>> {
    let reason = optional_text(body.reason.as_deref(), "reason")?;
    let until = until(body.duration_secs)?;
    let (mut change, target) =
        authorized(&rooms, &user, room_id, Action::Ban, Some(body.user_id)).await?;
    let target = target.ok_or(Error::NotFound("user"))?.user;
    change.remove_member(target.id).await?;
    change
        .ban(target.id, user.id, reason.as_deref(), until)
        .await?;
    let content = with_reason(
        format!("{} banned {}", user.username, target.username),
        reason.as_deref(),
    );
    let event = RoomEvent::Banned {
        user: target.clone(),
        reason,
        until: until.map(crate::store::from_millis),
    };
    let message = remove(&rooms, change, &user, &target, &content, event).await?;
    Ok(Json(message))
}

/// Lift a ban.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/bans/{user_id}", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("user_id" = i64, Path, description = "Banned user")),
    responses(
        (status = 200, description = "Lifted: the stored `unbanned` event", body = Message),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such room, or no active ban", body = Problem),
    ))]
pub async fn unban(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, target_id)): PathParam<(RoomId, UserId)>,
) -> Result<Json<Message>> {
    let (mut change, target) =
        authorized(&rooms, &user, room_id, Action::Unban, Some(target_id)).await?;
    let target = target.ok_or(Error::NotFound("user"))?.user;
    if !change.unban(target.id).await? {
        change.rollback().await?;
        return Err(Error::NotFound("ban"));
    }
    let content = format!("{} lifted the ban on {}", user.username, target.username);
    let event = RoomEvent::Unbanned { user: target };
    let message = change.append_event(&user, &content, event).await?;
    finish(&rooms, change, std::slice::from_ref(&message)).await?;
    Ok(Json(message))
}

/// The room's active bans (admins and the owner).
#[utoipa::path(get, path = "/api/v1/rooms/{id}/bans", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 200, description = "Active bans, newest first (at most 500)", body = BanList),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn list_bans(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Json<BanList>> {
    let room = rooms
        .store
        .access(room_id, user.id)
        .await?
        .ok_or(Error::NotFound("room"))?;
    let role = rooms.store.role(room_id, user.id).await?;
    authorize(Action::ManageLinks, role, room.view.room.is_private, None)?;
    let bans = rooms.store.bans(room_id, MAX_BANS_LISTED).await?;
    Ok(Json(BanList { bans }))
}

/// Mute a member: they stay in the room but cannot send, for `duration_secs` or until
/// unmuted.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/members/{user_id}/mute", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("user_id" = i64, Path, description = "Member to mute")),
    request_body(content = MuteRequest, description = "Optional duration"),
    responses(
        (status = 200, description = "Muted: the stored `member_updated` event", body = Message),
        (status = 403, description = "Not an admin, or the target's role is not below the caller's", body = Problem),
        (status = 404, description = "No such room, or the user is not a member", body = Problem),
    ))]
pub async fn mute(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, target_id)): PathParam<(RoomId, UserId)>,
    OptionalJson(body): OptionalJson<MuteRequest>,
) -> Result<Json<Message>> {
    let until = until(body.duration_secs)?.unwrap_or(FOREVER_MS);
    set_mute(&rooms, &user, room_id, target_id, Some(until)).await
}

/// Lift a member's mute.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/members/{user_id}/mute", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("user_id" = i64, Path, description = "Muted member")),
    responses(
        (status = 200, description = "Unmuted: the stored `member_updated` event", body = Message),
        (status = 403, description = "Not an admin, or the target's role is not below the caller's", body = Problem),
        (status = 404, description = "No such room, or the user is not a member", body = Problem),
    ))]
pub async fn unmute(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, target_id)): PathParam<(RoomId, UserId)>,
) -> Result<Json<Message>> {
    set_mute(&rooms, &user, room_id, target_id, None).await
}

async fn set_mute(
    rooms: &Rooms,
    user: &User,
    room_id: RoomId,
    target_id: UserId,
    until: Option<i64>,
) -> Result<Json<Message>> {
    let (mut change, target) =
        authorized(rooms, user, room_id, Action::Mute, Some(target_id)).await?;
    let Some(Target {
        user: target,
        role: Some(role),
    }) = target
    else {
        change.rollback().await?;
        return Err(Error::NotFound("member"));
    };
    change.set_muted(target.id, until).await?;
    let verb = if until.is_some() { "muted" } else { "unmuted" };
    let content = format!("{} {verb} {}", user.username, target.username);
    let event = RoomEvent::MemberUpdated {
        user: target,
        role,
        muted_until: until.map(crate::store::from_millis),
    };
    let message = change.append_event(user, &content, event).await?;
    finish(rooms, change, std::slice::from_ref(&message)).await?;
    Ok(Json(message))
}

/// Promote a member to admin, or demote an admin to member (the owner only).
#[utoipa::path(put, path = "/api/v1/rooms/{id}/members/{user_id}/role", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("user_id" = i64, Path, description = "Member")),
    request_body = SetRole,
    responses(
        (status = 200, description = "Changed: the stored `member_updated` event", body = Message),
        (status = 403, description = "Not the owner, or the member already has another role", body = Problem),
        (status = 404, description = "No such room, or the user is not a member", body = Problem),
        (status = 422, description = "`owner` is given by transfer only", body = Problem),
    ))]
pub async fn set_role(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, target_id)): PathParam<(RoomId, UserId)>,
    JsonBody(body): JsonBody<SetRole>,
) -> Result<Json<Message>> {
    let action = match body.role {
        Role::Admin => Action::Promote,
        Role::Member => Action::Demote,
        Role::Owner => {
            return Err(Error::InvalidInput(
                "ownership moves by POST /rooms/{id}/transfer".into(),
            ));
        }
    };
    let (mut change, target) = authorized(&rooms, &user, room_id, action, Some(target_id)).await?;
    let target = target.ok_or(Error::NotFound("member"))?.user;
    change.set_role(target.id, body.role).await?;
    let content = format!(
        "{} made {} {}",
        user.username,
        target.username,
        body.role.as_str()
    );
    let event = RoomEvent::MemberUpdated {
        user: target,
        role: body.role,
        muted_until: None,
    };
    let message = change.append_event(&user, &content, event).await?;
    finish(&rooms, change, std::slice::from_ref(&message)).await?;
    Ok(Json(message))
}

/// Make another member the owner; the caller becomes an admin. Two `member_updated`
/// events, in one transaction.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/transfer", tag = "moderation",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body = TransferOwnership,
    responses(
        (status = 200, description = "Transferred: the new owner's `member_updated` event", body = Message),
        (status = 403, description = "Not the owner", body = Problem),
        (status = 404, description = "No such room, or the user is not a member", body = Problem),
    ))]
pub async fn transfer(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    JsonBody(body): JsonBody<TransferOwnership>,
) -> Result<Json<Message>> {
    let (mut change, target) = authorized(
        &rooms,
        &user,
        room_id,
        Action::TransferOwnership,
        Some(body.user_id),
    )
    .await?;
    let target = target.ok_or(Error::NotFound("member"))?.user;
    change.set_role(user.id, Role::Admin).await?;
    change.set_role(target.id, Role::Owner).await?;
    let content = format!("{} made {} the owner", user.username, target.username);
    let new_owner = change
        .append_event(
            &user,
            &content,
            RoomEvent::MemberUpdated {
                user: target,
                role: Role::Owner,
                muted_until: None,
            },
        )
        .await?;
    let content = format!("{} is an admin now", user.username);
    let old_owner = change
        .append_event(
            &user,
            &content,
            RoomEvent::MemberUpdated {
                user: user.clone(),
                role: Role::Admin,
                muted_until: None,
            },
        )
        .await?;
    finish(&rooms, change, &[new_owner.clone(), old_owner]).await?;
    Ok(Json(new_owner))
}
