//! REST routes of the rooms and messages service.

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use socket_hub_protocol::rest::{
    CreateRoom, JoinRoom, MarkRead, MemberList, MessagePage, Problem, RoomList, RoomView,
    SendMessage,
};
use socket_hub_protocol::{Message, RoomId, Seq};

use super::{
    Rooms, ensure_member, send_message, validate_access_code, validate_room_name, visible_room,
};
use crate::auth::{Auth, AuthUser, password};
use crate::broker::Envelope;
use crate::error::{Error, Result};
use crate::http::{JsonBody, OptionalJson, PathParam, QueryParams, created};

/// Largest history page.
const MAX_PAGE: u32 = 200;
/// History page size when none is asked for.
const DEFAULT_PAGE: u32 = 50;

/// Routes under `/api/v1/rooms`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new()
        .route("/rooms", post(create_room).get(list_rooms))
        .route("/rooms/{id}", get(get_room))
        .route("/rooms/{id}/join", post(join_room))
        .route("/rooms/{id}/leave", post(leave_room))
        .route("/rooms/{id}/members", get(list_members))
        .route("/rooms/{id}/messages", get(history).post(post_message))
        .route("/rooms/{id}/read", post(mark_read))
}

/// Create a room; the creator is its owner and first member.
#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    request_body = CreateRoom,
    responses(
        (status = 201, description = "Room created", body = RoomView),
        (status = 422, description = "Invalid name or access code", body = Problem),
        (status = 429, description = "Room-creation quota used up; see Retry-After", body = Problem),
    ))]
pub async fn create_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<CreateRoom>,
) -> Result<Response> {
    let name = validate_room_name(&body.name)?;
    // Before the access code's argon2 hash: a refused creation costs nothing.
    rooms.quotas.room_creates.check(&user.id)?;
    let code_hash = match (body.is_private, body.access_code) {
        (true, Some(code)) => {
            validate_access_code(&code)?;
            Some(password::hash(code).await?)
        }
        (true, None) => {
            return Err(Error::InvalidInput(
                "a private room needs an access_code".into(),
            ));
        }
        (false, Some(_)) => {
            return Err(Error::InvalidInput(
                "only private rooms take an access_code".into(),
            ));
        }
        (false, None) => None,
    };
    let room = rooms
        .store
        .create(user.id, name, body.is_private, code_hash.as_deref())
        .await?;
    Ok(created(room))
}

/// Public rooms and the caller's rooms, with read markers for unread counts.
#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    responses((status = 200, description = "Rooms the caller may see", body = RoomList)))]
pub async fn list_rooms(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
) -> Result<Json<RoomList>> {
    let rooms = rooms.store.list(user.id).await?;
    Ok(Json(RoomList { rooms }))
}

/// One room; private rooms are 404 to non-members.
#[utoipa::path(get, path = "/api/v1/rooms/{id}", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 404, description = "No such room, or a private room of others", body = Problem),
    ))]
pub async fn get_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Json<RoomView>> {
    Ok(Json(visible_room(&rooms, &user, room_id).await?.view))
}

/// Become a member: free for public rooms, with the access code for private ones.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/join", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body(content = JoinRoom, description = "Access code, for private rooms"),
    responses(
        (status = 200, description = "Member now (or already)", body = RoomView),
        (status = 403, description = "Wrong access code", body = Problem),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn join_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    OptionalJson(body): OptionalJson<JoinRoom>,
) -> Result<Json<RoomView>> {
    Ok(Json(
        ensure_member(&rooms, &user, room_id, body.access_code).await?,
    ))
}

/// Stop being a member; live connections of the caller stop receiving the room.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/leave", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 204, description = "Not a member any more"),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn leave_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Response> {
    visible_room(&rooms, &user, room_id).await?;
    if rooms.store.remove_member(room_id, user.id).await? {
        rooms.broker.publish(Envelope::evict(room_id, user.id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The room's members.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/members", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 200, description = "Members, oldest first", body = MemberList),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn list_members(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Json<MemberList>> {
    visible_room(&rooms, &user, room_id).await?;
    let members = rooms.store.members(room_id).await?;
    Ok(Json(MemberList { members }))
}

/// Query of `GET /rooms/{id}/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    /// Only messages older than this seq (the previous page's `next_before_seq`).
    before_seq: Option<Seq>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
}

/// A page of history, newest first, with the cursor of the next (older) page.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/messages", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), HistoryQuery),
    responses(
        (status = 200, description = "Newest-first page", body = MessagePage),
        (status = 403, description = "Not a member of this public room", body = Problem),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn history(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<MessagePage>> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::InvalidInput(format!("limit must be 1-{MAX_PAGE}")));
    }
    let room = visible_room(&rooms, &user, room_id).await?;
    if !room.view.room.is_member {
        return Err(Error::Forbidden("join the room to read its history"));
    }
    let messages = rooms
        .messages
        .history(room_id, query.before_seq, limit)
        .await?;
    let next_before_seq = match messages.last() {
        Some(oldest) if messages.len() == limit as usize && oldest.seq > 1 => Some(oldest.seq),
        _ => None,
    };
    Ok(Json(MessagePage {
        messages,
        next_before_seq,
    }))
}

/// Send a message; delivered live to WebSocket members exactly like a WebSocket send.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/messages", tag = "messages",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body = SendMessage,
    responses(
        (status = 201, description = "Stored (or, for a repeated client_msg_id, the original)", body = Message),
        (status = 403, description = "Not a member", body = Problem),
        (status = 422, description = "Empty or too long", body = Problem),
        (status = 429, description = "Send quota (shared with the WebSocket) used up; see Retry-After", body = Problem),
    ))]
pub async fn post_message(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    JsonBody(body): JsonBody<SendMessage>,
) -> Result<Response> {
    let message = send_message(
        &rooms,
        &user,
        room_id,
        body.client_msg_id.as_deref(),
        &body.content,
    )
    .await?;
    Ok(created(message))
}

/// Move the caller's read marker forward (it never moves back).
#[utoipa::path(post, path = "/api/v1/rooms/{id}/read", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    request_body = MarkRead,
    responses((status = 204, description = "Marker stored")))]
pub async fn mark_read(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    JsonBody(body): JsonBody<MarkRead>,
) -> Result<Response> {
    visible_room(&rooms, &user, room_id).await?;
    rooms.store.mark_read(room_id, user.id, body.seq).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
