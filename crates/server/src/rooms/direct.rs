//! Direct messages: a one-to-one conversation is a private room of exactly two members
//! (no owner, admins, code, invitations or links), so history, seq, ack, resume and
//! read markers work as in any room. Blocking keeps a DM from being opened and turns an
//! existing one read-only (both members muted while a block stands), at no cost on the
//! send path.

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use socket_hub_protocol::rest::{DirectList, DirectView, OpenDirect, Problem};
use socket_hub_protocol::{NotificationKind, UserId};

use super::Rooms;
use super::store::DirectOpened;
use crate::auth::{Auth, AuthUser};
use crate::error::{Error, Result};
use crate::http::{JsonBody, PathParam, created};
use crate::notifications::NewNotification;

/// Most conversations listed at once.
const MAX_LISTED: u32 = 500;

/// Routes of DMs and blocking.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new()
        .route("/dms", post(open_direct).get(list_directs))
        .route("/users/{id}/block", post(block).delete(unblock))
}

/// Open the conversation with a user, or return the existing one.
#[utoipa::path(post, path = "/api/v1/dms", tag = "direct messages",
    security(("bearer" = [])),
    request_body = OpenDirect,
    responses(
        (status = 200, description = "The existing conversation", body = DirectView),
        (status = 201, description = "A new conversation", body = DirectView),
        (status = 403, description = "One of you blocked the other", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 422, description = "Yourself", body = Problem),
    ))]
pub async fn open_direct(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<OpenDirect>,
) -> Result<Response> {
    let peer = rooms
        .store
        .user_by_name(body.username.trim())
        .await?
        .ok_or(Error::NotFound("user"))?;
    if peer.id == user.id {
        return Err(Error::InvalidInput(
            "a direct conversation needs someone else".into(),
        ));
    }
    let (room_id, new) = match rooms.store.open_direct(&user, &peer).await? {
        DirectOpened::Blocked => {
            return Err(Error::Forbidden(
                "you cannot message this user: one of you blocked the other",
            ));
        }
        DirectOpened::Room { room_id, created } => (room_id, created),
    };
    let room = rooms
        .store
        .access(room_id, user.id)
        .await?
        .ok_or(Error::NotFound("room"))?
        .view;
    if new {
        rooms
            .notifier
            .notify(
                vec![peer.id],
                NewNotification {
                    kind: NotificationKind::DirectMessage,
                    room_id: Some(room_id),
                    from: Some(user),
                    message: None,
                    seq: None,
                },
            )
            .await;
    }
    let view = DirectView { room, peer };
    Ok(if new {
        created(view)
    } else {
        Json(view).into_response()
    })
}

/// The caller's conversations, newest first; rooms lists leave them out.
#[utoipa::path(get, path = "/api/v1/dms", tag = "direct messages",
    security(("bearer" = [])),
    responses((status = 200, description = "Conversations (at most 500)", body = DirectList)))]
pub async fn list_directs(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
) -> Result<Json<DirectList>> {
    let dms = rooms.store.directs(user.id, MAX_LISTED).await?;
    Ok(Json(DirectList { dms }))
}

/// Block a user: no DM can be opened between you, and an existing one turns read-only.
#[utoipa::path(post, path = "/api/v1/users/{id}/block", tag = "direct messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User to block")),
    responses(
        (status = 204, description = "Blocked (or already)"),
        (status = 404, description = "No such user", body = Problem),
        (status = 422, description = "Yourself", body = Problem),
    ))]
pub async fn block(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(target): PathParam<UserId>,
) -> Result<Response> {
    if target == user.id {
        return Err(Error::InvalidInput("you cannot block yourself".into()));
    }
    if !rooms.store.user_exists(target).await? {
        return Err(Error::NotFound("user"));
    }
    rooms.store.block(user.id, target).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Lift a block.
#[utoipa::path(delete, path = "/api/v1/users/{id}/block", tag = "direct messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Blocked user")),
    responses(
        (status = 204, description = "No longer blocked"),
        (status = 404, description = "No such block", body = Problem),
    ))]
pub async fn unblock(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(target): PathParam<UserId>,
) -> Result<Response> {
    if !rooms.store.unblock(user.id, target).await? {
        return Err(Error::NotFound("block"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
