//! Invitations (a user invited by name accepts or declines) and invite links (an
//! unguessable token anyone signed in can join with, until it expires, is used up or is
//! revoked). Both let people into private rooms without the access code, and neither
//! lets a banned user back in.

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use socket_hub_protocol::rest::{
    CreateInviteLink, Invitation, InvitationList, InviteLink, InviteLinkList, InvitePreview,
    InviteUser, Problem, RoomView,
};
use socket_hub_protocol::{NotificationKind, RoomId, User};

use super::policy::{Action, authorize};
use super::store::{Admission, Unusable};
use super::{Rooms, visible_room};
use crate::auth::{Auth, AuthUser, hash_refresh_token, new_refresh_token};
use crate::error::{Error, Result};
use crate::http::{JsonBody, OptionalJson, PathParam, created};
use crate::notifications::NewNotification;
use crate::store::now_millis;

/// Most invitations or links listed at once.
const MAX_LISTED: u32 = 500;
/// Largest `max_uses` of a link.
const MAX_USES: u32 = 10_000;
/// Shortest and longest `expires_in` of a link: a minute to 30 days.
const EXPIRES_IN: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 3600;

/// Routes of invitations and invite links.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new()
        .route("/rooms/{id}/invitations", post(invite))
        .route("/invitations", get(list_invitations))
        .route("/invitations/{id}/accept", post(accept_invitation))
        .route("/invitations/{id}/decline", post(decline_invitation))
        .route("/rooms/{id}/invites", post(create_link).get(list_links))
        .route("/rooms/{id}/invites/{invite_id}", delete(revoke_link))
        .route("/invites/{token}", get(preview_link))
        .route("/invites/{token}/accept", post(accept_link))
}

/// Checks that `user` may do `action` in the room.
async fn authorized(rooms: &Rooms, user: &User, room_id: RoomId, action: Action) -> Result<()> {
    let room = rooms
        .store
        .access(room_id, user.id)
        .await?
        .ok_or(Error::NotFound("room"))?;
    authorize(action, room.view.role, room.view.room.is_private, None)?;
    Ok(())
}

/// The answer to a join by invitation or link.
async fn admitted(rooms: &Rooms, user: &User, admission: Admission) -> Result<Json<RoomView>> {
    match admission {
        Admission::Member { room_id, .. } => {
            Ok(Json(visible_room(rooms, user, room_id).await?.view))
        }
        Admission::Unknown => Err(Error::NotFound("invitation")),
        Admission::Banned => Err(Error::Forbidden("you are banned from this room")),
        Admission::Unusable(why) => Err(unusable(why)),
    }
}

fn unusable(why: Unusable) -> Error {
    Error::Gone(match why {
        Unusable::Revoked => "this invite link was revoked",
        Unusable::Expired => "this invite link has expired",
        Unusable::UsedUp => "this invite link has been used as many times as it allows",
    })
}

/// Invite a user by name; they see it in `GET /invitations` and accept without a code.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/invitations", tag = "invitations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body = InviteUser,
    responses(
        (status = 201, description = "Invited (again: the invitation is renewed)", body = Invitation),
        (status = 403, description = "The caller's role may not invite here, or the user is banned", body = Problem),
        (status = 404, description = "No such room or user", body = Problem),
        (status = 409, description = "Already a member", body = Problem),
    ))]
pub async fn invite(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    JsonBody(body): JsonBody<InviteUser>,
) -> Result<Response> {
    authorized(&rooms, &user, room_id, Action::Invite).await?;
    let invitee = rooms
        .store
        .user_by_name(body.username.trim())
        .await?
        .ok_or(Error::NotFound("user"))?;
    if rooms.store.is_member(room_id, invitee.id).await? {
        return Err(Error::Conflict("already a member of this room"));
    }
    if rooms.store.is_banned(room_id, invitee.id).await? {
        return Err(Error::Forbidden("that user is banned from this room"));
    }
    let invitation = rooms.store.invite(room_id, invitee.id, user.id).await?;
    rooms
        .notifier
        .notify(
            vec![invitee.id],
            NewNotification {
                kind: NotificationKind::Invited,
                room_id: Some(room_id),
                from: Some(user),
                message: Some(invitation.room_name.clone()),
                seq: None,
            },
        )
        .await;
    Ok(created(invitation))
}

/// The caller's pending invitations, newest first.
#[utoipa::path(get, path = "/api/v1/invitations", tag = "invitations",
    security(("bearer" = [])),
    responses((status = 200, description = "Pending invitations (at most 500)", body = InvitationList)))]
pub async fn list_invitations(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
) -> Result<Json<InvitationList>> {
    let invitations = rooms.store.invitations(user.id, MAX_LISTED).await?;
    Ok(Json(InvitationList { invitations }))
}

/// Accept an invitation: a member now, private rooms included, no access code.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/accept", tag = "invitations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "Member of the room", body = RoomView),
        (status = 403, description = "Banned from the room", body = Problem),
        (status = 404, description = "No such invitation of the caller", body = Problem),
    ))]
pub async fn accept_invitation(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(id): PathParam<i64>,
) -> Result<Json<RoomView>> {
    let admission = rooms.store.accept(id, user.id).await?;
    admitted(&rooms, &user, admission).await
}

/// Decline an invitation: it is removed.
#[utoipa::path(post, path = "/api/v1/invitations/{id}/decline", tag = "invitations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such invitation of the caller", body = Problem),
    ))]
pub async fn decline_invitation(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(id): PathParam<i64>,
) -> Result<Response> {
    if !rooms.store.decline(id, user.id).await? {
        return Err(Error::NotFound("invitation"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Create an invite link; its token and URL are shown only in this answer.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/invites", tag = "invitations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body(content = CreateInviteLink, description = "Optional limits"),
    responses(
        (status = 201, description = "The link, with `token` and `url`", body = InviteLink),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such room", body = Problem),
        (status = 422, description = "max_uses or expires_in out of range", body = Problem),
    ))]
pub async fn create_link(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    OptionalJson(body): OptionalJson<CreateInviteLink>,
) -> Result<Response> {
    if body.max_uses.is_some_and(|m| !(1..=MAX_USES).contains(&m)) {
        return Err(Error::InvalidInput(format!(
            "max_uses must be 1-{MAX_USES}"
        )));
    }
    if body.expires_in.is_some_and(|s| !EXPIRES_IN.contains(&s)) {
        return Err(Error::InvalidInput(format!(
            "expires_in must be {}-{} seconds",
            EXPIRES_IN.start(),
            EXPIRES_IN.end()
        )));
    }
    authorized(&rooms, &user, room_id, Action::CreateLink).await?;
    // The same 256 random bits, stored hashed, as a refresh token.
    let (token, hash) = new_refresh_token();
    let expires_at = body
        .expires_in
        .map(|secs| now_millis().saturating_add(i64::try_from(secs * 1000).unwrap_or(i64::MAX)));
    let mut link = rooms
        .store
        .create_link(room_id, user.id, &hash, body.max_uses, expires_at)
        .await?;
    link.url = Some(format!("/invite/{token}"));
    link.token = Some(token);
    Ok(created(link))
}

/// The room's invite links (without tokens), newest first.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/invites", tag = "invitations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 200, description = "Links (at most 500)", body = InviteLinkList),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn list_links(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Json<InviteLinkList>> {
    authorized(&rooms, &user, room_id, Action::ManageLinks).await?;
    let links = rooms.store.links(room_id, MAX_LISTED).await?;
    Ok(Json(InviteLinkList { links }))
}

/// Revoke an invite link: joining with it answers 410 from now on.
#[utoipa::path(delete, path = "/api/v1/rooms/{id}/invites/{invite_id}", tag = "invitations",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ("invite_id" = i64, Path, description = "Link id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such room or link", body = Problem),
    ))]
pub async fn revoke_link(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam((room_id, invite_id)): PathParam<(RoomId, i64)>,
) -> Result<Response> {
    authorized(&rooms, &user, room_id, Action::ManageLinks).await?;
    if !rooms.store.revoke_link(room_id, invite_id).await? {
        return Err(Error::NotFound("invite link"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Where a link leads (the landing page shows it before joining).
#[utoipa::path(get, path = "/api/v1/invites/{token}", tag = "invitations",
    security(("bearer" = [])),
    params(("token" = String, Path, description = "Link token")),
    responses(
        (status = 200, description = "The room the link joins", body = InvitePreview),
        (status = 404, description = "No such link", body = Problem),
        (status = 410, description = "Expired, used up or revoked", body = Problem),
    ))]
pub async fn preview_link(
    State(rooms): State<Rooms>,
    AuthUser(_user): AuthUser,
    PathParam(token): PathParam<String>,
) -> Result<Json<InvitePreview>> {
    match rooms
        .store
        .preview_link(&hash_refresh_token(&token))
        .await?
    {
        Ok(preview) => Ok(Json(preview)),
        Err(Admission::Unusable(why)) => Err(unusable(why)),
        Err(_) => Err(Error::NotFound("invite link")),
    }
}

/// Join the room a link leads to (private rooms included, no access code).
#[utoipa::path(post, path = "/api/v1/invites/{token}/accept", tag = "invitations",
    security(("bearer" = [])),
    params(("token" = String, Path, description = "Link token")),
    responses(
        (status = 200, description = "Member of the room (or already one: no use counted)", body = RoomView),
        (status = 403, description = "Banned from the room", body = Problem),
        (status = 404, description = "No such link", body = Problem),
        (status = 410, description = "Expired, used up or revoked", body = Problem),
    ))]
pub async fn accept_link(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(token): PathParam<String>,
) -> Result<Json<RoomView>> {
    let admission = rooms
        .store
        .join_by_link(&hash_refresh_token(&token), user.id)
        .await?;
    match admission {
        Admission::Unknown => Err(Error::NotFound("invite link")),
        other => admitted(&rooms, &user, other).await,
    }
}
