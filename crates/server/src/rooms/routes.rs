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

use super::policy::{Action, authorize};
use super::{
    Rooms, ensure_member, send_message_with, validate_access_code, validate_room_name, visible_room,
};
use crate::auth::{Auth, AuthUser};
use crate::broker::Envelope;
use crate::error::{Error, Result};
use crate::http::{JsonBody, OptionalJson, PathParam, QueryParams, created};
use crate::presence::Presence;

/// Largest history page.
const MAX_PAGE: u32 = 200;
/// History page size when none is asked for.
const DEFAULT_PAGE: u32 = 50;
/// Largest page of a list (rooms, members); a larger `limit` is refused, never cut.
pub const MAX_LIST_PAGE: u32 = 500;
/// List page size when none is asked for.
pub const DEFAULT_LIST_PAGE: u32 = 100;

/// Query of every cursor-paginated list: `GET /rooms`, `GET /rooms/joined`,
/// `GET /rooms/{id}/members`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only entries after this id (the previous page's `next`); from the start when
    /// absent.
    after: Option<i64>,
    /// Page size, 1 to 500 (default 100).
    limit: Option<u32>,
}

impl ListQuery {
    /// The cursor and the validated page size.
    fn page(&self) -> Result<(i64, u32)> {
        let limit = self.limit.unwrap_or(DEFAULT_LIST_PAGE);
        if !(1..=MAX_LIST_PAGE).contains(&limit) {
            return Err(Error::InvalidInput(format!(
                "limit must be 1-{MAX_LIST_PAGE}"
            )));
        }
        Ok((self.after.unwrap_or(0), limit))
    }
}

/// Cuts one-more-than-asked `rows` to `limit`; the cursor of the next page is the last
/// kept entry's id when more followed, so the last page never comes back empty.
fn paginate<T>(mut rows: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<i64>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(id);
        (rows, next)
    } else {
        (rows, None)
    }
}

/// Routes under `/api/v1/rooms`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Rooms: FromRef<S>,
    Auth: FromRef<S>,
    Presence: FromRef<S>,
{
    Router::new()
        .route("/rooms", post(create_room).get(list_rooms))
        .route("/rooms/joined", get(list_joined_rooms))
        .route(
            "/rooms/{id}",
            get(get_room)
                .patch(super::moderation::update_room)
                .delete(super::moderation::delete_room),
        )
        .route("/rooms/{id}/join", post(join_room))
        .route("/rooms/{id}/leave", post(leave_room))
        .route("/rooms/{id}/members", get(list_members))
        .route("/rooms/{id}/messages", get(history).post(post_message))
        .route("/rooms/{id}/read", post(mark_read))
        .merge(super::message_lifecycle::routes())
        .merge(super::moderation::routes())
        .merge(super::invites::routes())
        .merge(super::direct::routes())
        .merge(super::reading::routes())
        .merge(super::search::routes())
}

/// Create a room; the creator is its owner and first member. A private room without
/// an access code is invitation-only.
#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    request_body = CreateRoom,
    responses(
        (status = 201, description = "Room created", body = RoomView),
        (status = 422, description = "Invalid name or access code (8-64 characters), or a code on a public room", body = Problem),
        (status = 429, description = "Room-creation quota used up; see Retry-After", body = Problem),
    ))]
pub async fn create_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<CreateRoom>,
) -> Result<Response> {
    let name = validate_room_name(&body.name)?;
    // Before the access code's argon2 hash: a refused creation costs nothing.
    rooms.guard.quotas.room_creates.check(&user.id)?;
    let code_hash = match (body.is_private, body.access_code) {
        (true, Some(code)) => {
            validate_access_code(&code)?;
            Some(rooms.guard.hasher.hash(code).await?)
        }
        // Invitation-only: members come in by invitation or invite link alone.
        (true, None) => None,
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

/// Public rooms and the caller's rooms, in id order, a page at a time, with read
/// markers for unread counts. The caller's own rooms are also listed alone by
/// `GET /rooms/joined`, so any number of others' rooms cannot push them out of sight.
#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the rooms the caller may see; follow `next`", body = RoomList),
        (status = 422, description = "limit out of 1-500", body = Problem),
    ))]
pub async fn list_rooms(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<RoomList>> {
    room_page(&rooms, &user, false, &query).await
}

/// The rooms the caller is a member of, in id order, a page at a time.
#[utoipa::path(get, path = "/api/v1/rooms/joined", tag = "rooms",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the caller's rooms; follow `next`", body = RoomList),
        (status = 422, description = "limit out of 1-500", body = Problem),
    ))]
pub async fn list_joined_rooms(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<RoomList>> {
    room_page(&rooms, &user, true, &query).await
}

async fn room_page(
    rooms: &Rooms,
    user: &socket_hub_protocol::User,
    joined_only: bool,
    query: &ListQuery,
) -> Result<Json<RoomList>> {
    let (after, limit) = query.page()?;
    let rows = rooms
        .store
        .list(user.id, joined_only, after, limit + 1)
        .await?;
    let (rooms, next) = paginate(rows, limit, |view| view.room.id);
    Ok(Json(RoomList { rooms, next }))
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
        (status = 429, description = "Too many wrong access codes; see Retry-After", body = Problem),
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

/// Stop being a member; live connections of the caller stop receiving the room. The
/// owner must transfer ownership first.
#[utoipa::path(post, path = "/api/v1/rooms/{id}/leave", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 204, description = "Not a member any more"),
        (status = 403, description = "The owner must transfer ownership before leaving", body = Problem),
        (status = 404, description = "No such room", body = Problem),
    ))]
pub async fn leave_room(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
) -> Result<Response> {
    let room = visible_room(&rooms, &user, room_id).await?;
    if let Some(role) = room.view.role {
        authorize(Action::Leave, Some(role), room.view.room.is_private, None)?;
    }
    if rooms.store.remove_member(room_id, user.id).await? {
        rooms.broker.publish(Envelope::evict(room_id, user.id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The room's members, in user-id order, a page at a time.
#[utoipa::path(get, path = "/api/v1/rooms/{id}/members", tag = "rooms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Room id"), ListQuery),
    responses(
        (status = 200, description = "A page of members (with presence when the caller is one); follow `next`", body = MemberList),
        (status = 404, description = "No such room", body = Problem),
        (status = 422, description = "limit out of 1-500", body = Problem),
    ))]
pub async fn list_members(
    State(rooms): State<Rooms>,
    State(presence): State<Presence>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<MemberList>> {
    let (after, limit) = query.page()?;
    let room = visible_room(&rooms, &user, room_id).await?;
    let rows = rooms.store.members(room_id, after, limit + 1).await?;
    let (mut members, next) = paginate(rows, limit, |member| member.user.id);
    // Fellow members share this room, so each other's presence is theirs to see.
    if room.view.room.is_member {
        let ids: Vec<_> = members.iter().map(|m| m.user.id).collect();
        let statuses = presence.statuses(&ids).await;
        for (member, status) in members.iter_mut().zip(statuses) {
            member.presence = Some(status);
        }
    }
    Ok(Json(MemberList { members, next }))
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
    let (messages, last_seq) = rooms
        .messages
        .history_page(room_id, query.before_seq, limit, user.id)
        .await?;
    let next_before_seq = match messages.last() {
        Some(oldest) if messages.len() == limit as usize && oldest.seq > 1 => Some(oldest.seq),
        _ => None,
    };
    Ok(Json(MessagePage {
        messages,
        next_before_seq,
        last_seq,
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
        (status = 404, description = "An attachment is not an upload of yours", body = Problem),
        (status = 409, description = "An attachment is attached in another room", body = Problem),
        (status = 422, description = "Empty (without attachments) or too long, or `reply_to` not a message of this room", body = Problem),
        (status = 429, description = "Send quota (shared with the WebSocket) used up; see Retry-After", body = Problem),
    ))]
pub async fn post_message(
    State(rooms): State<Rooms>,
    AuthUser(user): AuthUser,
    PathParam(room_id): PathParam<RoomId>,
    JsonBody(body): JsonBody<SendMessage>,
) -> Result<Response> {
    let message = send_message_with(
        &rooms,
        &user,
        room_id,
        body.client_msg_id.as_deref(),
        &body.content,
        body.reply_to,
        &body.attachments,
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
    super::reading::mark_read(&rooms, &user, room_id, body.seq).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
