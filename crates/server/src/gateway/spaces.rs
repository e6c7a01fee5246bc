//! The spaces API of the seed's Go hub, over our rooms: `GET /v1/ws/spaces/{space_id}`
//! upgrades to a WebSocket speaking its messages (`join`, `leave`, `chat`, `ping`,
//! `pong`, `error`), and `POST /v1/ws/spaces/{space_id}/broadcast` sends over HTTP.
//! docs/spaces.md has every message.
//!
//! A space is the room named by its `space_id` (created public on first use, exactly
//! as a Socket.IO `joinRoom` by name does), so spaces clients, Socket.IO clients and
//! `/ws` clients of the same room see each other's messages with the same seqs.
//!
//! Unlike the seed, `?user_id=` proves nothing: the connection authenticates like
//! `/ws` (header, `?token=`, subprotocol or a first `auth` message), and a `user_id`
//! that is not the token's user is refused. The broadcast endpoint sends as the
//! bearer token's user, or, with a server API key (`X-API-Key`, `--api-keys`), as
//! the `user_id` the body names: for back-end services and bots.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use socket_hub_protocol::{CloseCode, ErrorCode, Message, RoomId, Seq, ServerFrame, User};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};

use super::live::PendingGuard;
use super::outbound::{AfterClose, CloseReason, Outbound};
use super::relay::{self, Admission, ChatFrame, Refusal, Relay, Requests, Stop, Wire};
use super::ws::{Sink, Socket, Stream};
use super::{AllowedOrigin, Gateway, READ_BUFFER, WRITE_BUFFER, subprotocol_token, ws};
use crate::auth::bearer_token;
use crate::broker::encode;
use crate::client_addr::ClientAddr;
use crate::error::{Error, Result, problem_response};
use crate::http::{JsonBody, PathParam, created};
use crate::rooms::{self, RoomRef};

/// The spaces WebSocket route (served with `/ws`).
pub(crate) fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Gateway: FromRef<S>,
{
    Router::new().route("/v1/ws/spaces/{space_id}", get(upgrade))
}

/// The spaces broadcast route (served with the REST API).
pub(crate) fn broadcast_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Gateway: FromRef<S>,
{
    Router::new().route("/v1/ws/spaces/{space_id}/broadcast", post(broadcast))
}

/// How an upgrade's refusal reads over HTTP.
fn refusal_response(refusal: &Refusal) -> Response {
    let status = match refusal.code {
        ErrorCode::Unauthorized | ErrorCode::TokenExpired => StatusCode::UNAUTHORIZED,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = problem_response(status, refusal.code, refusal.message.clone());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// The refusal of a `user_id` that is not the token's user.
fn user_mismatch() -> Refusal {
    Refusal {
        code: ErrorCode::Forbidden,
        message: "user_id does not match the access token's user".into(),
    }
}

async fn upgrade(
    State(gateway): State<Gateway>,
    ClientAddr(client): ClientAddr,
    _origin: AllowedOrigin,
    headers: HeaderMap,
    PathParam(space_id): PathParam<String>,
    Query(query): Query<HashMap<String, String>>,
    handshake: ws::Handshake,
) -> Response {
    let since = match query.get("since_seq").map(|s| s.parse::<Seq>()) {
        None => None,
        Some(Ok(seq)) if seq >= 0 => Some(seq),
        Some(_) => {
            return Error::InvalidInput("since_seq must be a non-negative integer".into())
                .into_response();
        }
    };
    let user_id = query.get("user_id").cloned();
    let token = bearer_token(&headers)
        .or_else(|| query.get("token").map(String::as_str))
        .or_else(|| subprotocol_token(&headers));
    // With a token, everything is decided before the upgrade; without one, the first
    // message must authenticate, within `--auth-timeout-ms`.
    let (admission, pending) = match token {
        Some(token) => match relay::admit(&gateway, Some(token)).await {
            Ok(admission) if !user_matches(user_id.as_deref(), admission.user()) => {
                return refusal_response(&user_mismatch());
            }
            Ok(admission) => (Some(admission), None),
            Err(refusal) => return refusal_response(&refusal),
        },
        None => {
            let config = &gateway.config;
            match gateway.live.admit_pending(
                client,
                config.max_unauthenticated_per_address,
                config.max_unauthenticated(),
            ) {
                Ok(guard) => (None, Some(guard)),
                Err(_) => {
                    return Error::RateLimited {
                        retry_after: config.auth_timeout(),
                    }
                    .into_response();
                }
            }
        }
    };
    let spaces = &gateway.config;
    let max_message = spaces.spaces_max_message_bytes;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + 2 * gateway.config.max_frame_bytes)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message));
    let connection = Connection {
        gateway,
        space_id,
        since,
        user_id,
        admission,
        pending,
    };
    handshake.accept(config, move |socket| serve(connection, socket))
}

/// Whether the `user_id` the client named, if any, is the authenticated user.
fn user_matches(user_id: Option<&str>, user: &User) -> bool {
    user_id.is_none_or(|id| id.trim() == user.id.to_string())
}

/// An upgraded spaces connection before its session starts.
struct Connection {
    gateway: Gateway,
    space_id: String,
    since: Option<Seq>,
    user_id: Option<String>,
    admission: Option<Admission>,
    /// Its claim as an unauthenticated connection, until it authenticates.
    pending: Option<PendingGuard>,
}

/// Serves one spaces connection to the end.
async fn serve(connection: Connection, socket: Socket) {
    let Connection {
        gateway,
        space_id,
        since,
        user_id,
        admission,
        pending,
    } = connection;
    let (mut sink, mut stream) = ws::split(socket);
    let admission = match admission {
        Some(admission) => admission,
        None => match first_message_auth(&gateway, &mut stream).await {
            Ok(admission) if user_matches(user_id.as_deref(), admission.user()) => admission,
            Ok(_) => {
                refuse(&gateway, &mut sink, &space_id, &user_mismatch()).await;
                linger(&mut stream).await;
                return;
            }
            Err(refusal) => {
                refuse(&gateway, &mut sink, &space_id, &refusal).await;
                linger(&mut stream).await;
                return;
            }
        },
    };
    drop(pending);
    let (relay, queue) = Relay::start(gateway, admission);
    let mut requests = Requests::new(&relay.gateway);
    let room_id = match requests
        .join(&relay, &RoomRef::Name(space_id.clone()), since, None)
        .await
    {
        Ok(room_id) => room_id,
        Err(err) => {
            let refusal = Refusal::from(err);
            refuse(&relay.gateway, &mut sink, &space_id, &refusal).await;
            relay.session.close(CloseReason::ClientGone);
            linger(&mut stream).await;
            return;
        }
    };
    let config = &relay.gateway.config;
    let mut wire = SpacesWire {
        sink: &mut sink,
        space_id: &space_id,
        user: relay.user().clone(),
        write_wait: Duration::from_secs(config.spaces_write_wait_secs),
        relay: &relay,
    };
    let ping = Some(Duration::from_secs(config.spaces_ping_period_secs));
    tokio::join!(
        read_loop(&relay, &mut requests, &mut stream, room_id),
        relay::write_loop(&relay, queue, &mut wire, ping),
    );
    relay.leave_all().await;
    let reason = relay
        .session
        .close_reason()
        .unwrap_or(CloseReason::ServiceRestart);
    drop(relay);
    match reason.after_close() {
        AfterClose::Done => {}
        AfterClose::Linger => linger(&mut stream).await,
        // The stream cannot be read past the offending message.
        AfterClose::Wait => tokio::time::sleep(CLOSE_LINGER).await,
    }
}

/// How long the socket stays open after the server's close frame, so the client reads
/// it before the connection goes (closing with unread data would reset it, and the
/// reset discards the close frame).
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Reads (and discards) until the client answers the close frame or goes away, bounded
/// by [`CLOSE_LINGER`].
async fn linger(stream: &mut Stream) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, tungstenite::Message::Close(_)) {
                return;
            }
        }
    })
    .await;
}

/// The first message of a connection whose handshake carried no token:
/// `{"type":"auth","token":"…"}`, within `--auth-timeout-ms`.
async fn first_message_auth(
    gateway: &Gateway,
    stream: &mut Stream,
) -> std::result::Result<Admission, Refusal> {
    let missing = || Refusal {
        code: ErrorCode::Unauthorized,
        message: "missing access token: authenticate in the handshake or with a first \
                  {\"type\":\"auth\",\"token\":\"…\"} message"
            .into(),
    };
    let first = tokio::time::timeout(gateway.config.auth_timeout(), async {
        while let Some(Ok(message)) = stream.next().await {
            if let tungstenite::Message::Text(text) = message {
                return Some(text);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(missing)?;
    match serde_json::from_str::<SpaceIn>(first.as_str()) {
        Ok(SpaceIn::Auth { token }) => relay::admit(gateway, Some(&token)).await,
        _ => Err(missing()),
    }
}

/// Sends an `error` message and closes (4401 for authentication, 1013 when the store
/// could not answer, 1008 otherwise),
/// bounded by the write wait.
async fn refuse(gateway: &Gateway, sink: &mut Sink, space_id: &str, refusal: &Refusal) {
    let error = json!({
        "type": "error",
        "space_id": space_id,
        "code": refusal.code,
        "message": refusal.message,
    });
    let code = match refusal.code {
        ErrorCode::Unauthorized | ErrorCode::TokenExpired => CloseCode::UNAUTHORIZED,
        ErrorCode::Unavailable | ErrorCode::Internal => CloseCode::TRY_AGAIN_LATER,
        _ => CloseCode::POLICY_VIOLATION,
    };
    crate::metrics::connection_closed(code);
    let wait = Duration::from_secs(gateway.config.spaces_write_wait_secs);
    let _ = tokio::time::timeout(wait, async {
        sink.send(tungstenite::Message::Text(error.to_string().into()))
            .await?;
        sink.send(close_message(code, "refused")).await
    })
    .await;
}

fn close_message(code: u16, reason: &'static str) -> tungstenite::Message {
    tungstenite::Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// A message from a spaces client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SpaceIn {
    /// Send a chat message to the space.
    Chat {
        #[serde(alias = "content")]
        message: String,
        #[serde(default)]
        client_msg_id: Option<String>,
    },
    /// Application-level keepalive; answered with `pong`.
    Ping,
    /// Answer to a server `ping` message (the server pings with WebSocket pings).
    Pong,
    /// Leave the space: the server closes the connection (1000).
    Leave,
    /// The user is typing.
    Typing,
    /// Authenticate (first message), or replace the token of a live connection.
    Auth { token: String },
}

/// Reads client messages until the connection ends; a client silent for the pong wait
/// (no pong, no message) is closed.
async fn read_loop(relay: &Relay, requests: &mut Requests, stream: &mut Stream, room_id: RoomId) {
    let config = &relay.gateway.config;
    let pong_wait = Duration::from_secs(config.spaces_pong_wait_secs);
    let max_message = config.spaces_max_message_bytes;
    let closing = relay.session.closing().clone();
    loop {
        let next = tokio::select! {
            () = closing.cancelled() => break,
            next = tokio::time::timeout(pong_wait, stream.next()) => next,
        };
        let message = match next {
            Err(_) => {
                relay.session.close(CloseReason::KeepaliveTimeout);
                break;
            }
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(err))) if super::session::is_too_big(&err) => {
                reply(
                    relay,
                    &ServerFrame::error(
                        ErrorCode::FrameTooLarge,
                        format!("messages are limited to {max_message} bytes"),
                        None,
                    ),
                );
                relay.session.close(CloseReason::TooBig);
                break;
            }
            Ok(Some(Err(_)) | None) => break,
        };
        match message {
            tungstenite::Message::Text(text) => {
                if let Err(err) = requests.admit() {
                    reply(relay, &err.to_frame(None));
                    continue;
                }
                if !on_text(relay, requests, room_id, text.as_str()).await {
                    break;
                }
            }
            tungstenite::Message::Binary(_) => reply(
                relay,
                &ServerFrame::error(
                    ErrorCode::MalformedJson,
                    "binary messages are not supported; send JSON text",
                    None,
                ),
            ),
            tungstenite::Message::Close(_) => break,
            _ => {}
        }
    }
    // The client ended it, or asked to leave; otherwise the reason is set already.
    relay.session.close(CloseReason::ClientGone);
}

fn reply(relay: &Relay, frame: &ServerFrame) {
    relay.session.reply(Outbound::Frame(encode(frame)));
}

/// Applies one client message; `false` when the client asked to leave.
async fn on_text(relay: &Relay, requests: &mut Requests, room_id: RoomId, text: &str) -> bool {
    let request = match serde_json::from_str::<SpaceIn>(text) {
        Ok(request) => request,
        Err(err) => {
            let code = if err.is_data() {
                ErrorCode::UnknownType
            } else {
                ErrorCode::MalformedJson
            };
            reply(
                relay,
                &ServerFrame::error(code, format!("invalid message: {err}"), None),
            );
            return true;
        }
    };
    match request {
        SpaceIn::Chat {
            message,
            client_msg_id,
        } => {
            // The stored message comes back to every member, the sender included, as
            // its `chat` echo; only a refusal is answered here.
            let sent = requests
                .send(relay, room_id, client_msg_id.as_deref(), &message)
                .await;
            if let Err(err) = sent {
                reply(relay, &err.to_frame(client_msg_id));
            }
        }
        SpaceIn::Ping => reply(relay, &ServerFrame::Pong),
        SpaceIn::Pong => {}
        SpaceIn::Leave => return false,
        SpaceIn::Typing => {
            if let Err(err) = requests.typing(relay, room_id) {
                reply(relay, &err.to_frame(None));
            }
        }
        SpaceIn::Auth { token } => {
            if let Err(err) = relay.reauth(&token).await {
                reply(relay, &err.to_frame(None));
            }
        }
    }
    true
}

/// Writes a relayed session as the seed's space messages.
struct SpacesWire<'a> {
    sink: &'a mut Sink,
    space_id: &'a str,
    user: User,
    write_wait: Duration,
    relay: &'a Relay,
}

/// A `chat` message as spaces clients read it.
#[derive(Serialize)]
struct SpaceChat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    space_id: &'a str,
    user_id: String,
    username: &'a str,
    message: &'a str,
    id: i64,
    room_id: RoomId,
    seq: Seq,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<&'a str>,
    timestamp: chrono::DateTime<chrono::Utc>,
}

impl<'a> SpaceChat<'a> {
    fn new(space_id: &'a str, message: &'a Message) -> Self {
        Self {
            kind: "chat",
            space_id,
            user_id: message.user.id.to_string(),
            username: &message.user.username,
            message: &message.content,
            id: message.id,
            room_id: message.room_id,
            seq: message.seq,
            client_msg_id: message.client_msg_id.as_deref(),
            timestamp: message.created_at,
        }
    }
}

impl SpacesWire<'_> {
    async fn send(&mut self, message: tungstenite::Message) -> std::result::Result<(), Stop> {
        match tokio::time::timeout(self.write_wait, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop),
            Err(_) => {
                crate::metrics::slow_consumer(crate::metrics::SlowCause::WriteTimeout);
                self.relay.session.close(CloseReason::TooSlow);
                Err(Stop)
            }
        }
    }

    async fn send_json<T: Serialize>(&mut self, value: &T) -> std::result::Result<(), Stop> {
        match serde_json::to_string(value) {
            Ok(text) => self.send(tungstenite::Message::Text(text.into())).await,
            Err(_) => Ok(()),
        }
    }

    /// `join` / `leave` of `user`.
    async fn presence(&mut self, kind: &'static str, user: &User) -> std::result::Result<(), Stop> {
        let event = json!({
            "type": kind,
            "space_id": self.space_id,
            "user_id": user.id.to_string(),
            "username": user.username,
            "timestamp": chrono::Utc::now(),
        });
        self.send_json(&event).await
    }
}

impl Wire for SpacesWire<'_> {
    async fn chat(&mut self, frame: &str) -> std::result::Result<(), Stop> {
        // Room events (kicks, renames, …) have no form in the seed's protocol.
        let Some(message) = ChatFrame::parse(frame)
            .and_then(|chat| serde_json::from_str::<Message>(chat.message.get()).ok())
            .filter(|message| message.event.is_none())
        else {
            return Ok(());
        };
        let chat = SpaceChat::new(self.space_id, &message);
        self.send_json(&chat).await
    }

    async fn frame(&mut self, frame: ServerFrame) -> std::result::Result<(), Stop> {
        match frame {
            ServerFrame::Join { user, .. } => self.presence("join", &user).await,
            ServerFrame::Leave { user, .. } => self.presence("leave", &user).await,
            ServerFrame::Typing { user, .. } => {
                let event = json!({
                    "type": "typing",
                    "space_id": self.space_id,
                    "user_id": user.id.to_string(),
                    "username": user.username,
                });
                self.send_json(&event).await
            }
            ServerFrame::Pong => self.send_json(&json!({ "type": "pong" })).await,
            ServerFrame::Error {
                code,
                message,
                reference,
                retry_after_ms,
            } => {
                let mut event = json!({
                    "type": "error",
                    "space_id": self.space_id,
                    "code": code,
                    "message": message,
                });
                if let Some(reference) = reference {
                    event["ref"] = reference.into();
                }
                if let Some(wait) = retry_after_ms {
                    event["retry_after_ms"] = wait.into();
                }
                self.send_json(&event).await
            }
            ServerFrame::Chat { message } => {
                let chat = SpaceChat::new(self.space_id, &message);
                self.send_json(&chat).await
            }
            ServerFrame::RoomLeft { .. } => {
                // Removed from the space's room (membership lost): nothing more comes.
                let user = self.user.clone();
                self.presence("leave", &user).await?;
                self.relay.session.close(CloseReason::ClientGone);
                Ok(())
            }
            // No form in the seed's protocol; a kick, ban or deletion also evicts the
            // session (`RoomLeft` above).
            ServerFrame::Ready { .. }
            | ServerFrame::RoomJoined { .. }
            | ServerFrame::Ack { .. }
            | ServerFrame::RoomUpdated { .. }
            | ServerFrame::MemberUpdated { .. }
            | ServerFrame::Kicked { .. }
            | ServerFrame::Banned { .. }
            | ServerFrame::Unbanned { .. }
            | ServerFrame::MessageUpdated { .. }
            | ServerFrame::MessageDeleted { .. }
            | ServerFrame::Reaction { .. }
            | ServerFrame::RoomDeleted { .. }
            | ServerFrame::ReadMarker { .. }
            | ServerFrame::Notification { .. }
            | ServerFrame::Presence { .. } => Ok(()),
        }
    }

    async fn joined(
        &mut self,
        room_id: RoomId,
        members: Vec<User>,
        last_seq: Seq,
        history: Option<Vec<Message>>,
    ) -> std::result::Result<(), Stop> {
        let history: Vec<SpaceChat<'_>> = history
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|message| SpaceChat::new(self.space_id, message))
            .collect();
        let event = json!({
            "type": "join",
            "space_id": self.space_id,
            "user_id": self.user.id.to_string(),
            "username": self.user.username,
            "room_id": room_id,
            "last_seq": last_seq,
            "members": members,
            "history": history,
            "timestamp": chrono::Utc::now(),
        });
        self.send_json(&event).await
    }

    async fn ping(&mut self) -> std::result::Result<(), Stop> {
        self.send(tungstenite::Message::Ping(Default::default()))
            .await
    }

    async fn close(&mut self, reason: CloseReason) {
        let _ = tokio::time::timeout(
            self.write_wait,
            self.sink.send(close_message(reason.code(), reason.text())),
        )
        .await;
    }
}

/// `POST /v1/ws/spaces/{space_id}/broadcast`: the seed's body, `user_id` as a number
/// or a decimal string.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SpaceBroadcast {
    /// The message text.
    pub message: String,
    /// The sender. With an API key: required, the user to send as. With a bearer
    /// token: optional, and refused unless it is the token's user.
    #[serde(default, deserialize_with = "id_string")]
    pub user_id: Option<String>,
    /// The sender's username; when given it must be `user_id`'s.
    #[serde(default)]
    pub username: Option<String>,
    /// Idempotency key: a repeat returns the original message and sends nothing.
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

/// A user id given as a JSON number or string.
fn id_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    Ok(Option::<Id>::deserialize(deserializer)?.map(|id| match id {
        Id::Number(n) => n.to_string(),
        Id::Text(s) => s,
    }))
}

/// Send a message to a space over HTTP, as the bearer token's user or, with a server
/// API key (`X-API-Key`), as the user the body names. The space is created (a public
/// room named `space_id`) if it does not exist, and the sender joins it.
#[utoipa::path(post, path = "/v1/ws/spaces/{space_id}/broadcast", tag = "spaces",
    security(("bearer" = []), ("api_key" = [])),
    params(("space_id" = String, Path, description = "Space id: the name of its room")),
    request_body = SpaceBroadcast,
    responses(
        (status = 201, description = "Stored and delivered to the space", body = Message),
        (status = 401, description = "No valid bearer token or API key", body = socket_hub_protocol::rest::Problem),
        (status = 403, description = "user_id is not the token's user, or the space is a private room", body = socket_hub_protocol::rest::Problem),
        (status = 404, description = "No user with that user_id (API key)", body = socket_hub_protocol::rest::Problem),
        (status = 422, description = "Empty or too long message, or missing user_id with an API key", body = socket_hub_protocol::rest::Problem),
        (status = 429, description = "Send quota used up; see Retry-After", body = socket_hub_protocol::rest::Problem),
    ))]
pub async fn broadcast(
    State(gateway): State<Gateway>,
    headers: HeaderMap,
    PathParam(space_id): PathParam<String>,
    JsonBody(body): JsonBody<SpaceBroadcast>,
) -> Result<Response> {
    let user = match headers.get(API_KEY_HEADER) {
        Some(key) => {
            if !api_key_matches(&gateway.config.api_keys, key.as_bytes()) {
                return Ok(problem_response(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "invalid API key".into(),
                ));
            }
            user_named(&gateway, &body).await?
        }
        None => {
            let token = bearer_token(&headers).ok_or(Error::Unauthorized)?;
            let user = crate::auth::authenticate(&gateway.auth, token)
                .await?
                .user()?;
            if !user_matches(body.user_id.as_deref(), &user) {
                return Err(Error::Forbidden(
                    "user_id does not match the access token's user",
                ));
            }
            user
        }
    };
    let rooms = &gateway.rooms;
    let room_id = rooms::resolve_room(rooms, &user, &RoomRef::Name(space_id)).await?;
    rooms::ensure_joinable(rooms, &user, room_id, None).await?;
    let message = rooms::send_message(
        rooms,
        &user,
        room_id,
        body.client_msg_id.as_deref(),
        &body.message,
    )
    .await?;
    Ok(created(message))
}

/// The header carrying a server API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The user an API-key request sends as: `user_id` (required), whose `username` must
/// match when given.
async fn user_named(gateway: &Gateway, body: &SpaceBroadcast) -> Result<User> {
    let id = body
        .user_id
        .as_deref()
        .ok_or_else(|| Error::InvalidInput("user_id is required with an API key".into()))?
        .trim()
        .parse()
        .map_err(|_| Error::InvalidInput("user_id must be a user id (integer)".into()))?;
    let user = gateway
        .auth
        .users
        .find(id)
        .await?
        .ok_or(Error::NotFound("user"))?;
    if body
        .username
        .as_deref()
        .is_some_and(|name| !name.eq_ignore_ascii_case(&user.username))
    {
        return Err(Error::InvalidInput(
            "username does not match user_id".into(),
        ));
    }
    Ok(user)
}

/// Whether `presented` is one of the configured keys. Keys are compared as SHA-256
/// digests, every key and every byte each time, so the time taken says nothing about
/// how much of a key was right.
fn api_key_matches(keys: &[String], presented: &[u8]) -> bool {
    let presented = Sha256::digest(presented);
    keys.iter().fold(false, |found, key| {
        let key = Sha256::digest(key.as_bytes());
        let diff = key
            .iter()
            .zip(presented.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found | (diff == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_match_exactly() {
        let keys = vec![
            "k1-0123456789abcdef".to_owned(),
            "k2-0123456789abcdef".to_owned(),
        ];
        assert!(api_key_matches(&keys, b"k2-0123456789abcdef"));
        assert!(!api_key_matches(&keys, b"k2-0123456789abcde"));
        assert!(!api_key_matches(&keys, b""));
        assert!(!api_key_matches(&[], b"k1-0123456789abcdef"));
    }

    #[test]
    fn space_messages_parse_by_type() {
        let chat: SpaceIn =
            serde_json::from_str(r#"{"type":"chat","message":"hi"}"#).expect("chat parses");
        assert!(matches!(chat, SpaceIn::Chat { message, .. } if message == "hi"));
        assert!(matches!(
            serde_json::from_str::<SpaceIn>(r#"{"type":"ping"}"#),
            Ok(SpaceIn::Ping)
        ));
        assert!(serde_json::from_str::<SpaceIn>(r#"{"type":"shout"}"#).is_err());
    }

    #[test]
    fn user_id_must_be_the_tokens_user() {
        let user = User {
            id: 7,
            username: "ada".into(),
        };
        assert!(user_matches(None, &user));
        assert!(user_matches(Some("7"), &user));
        assert!(!user_matches(Some("8"), &user));
        assert!(!user_matches(Some("ada"), &user));
    }
}
