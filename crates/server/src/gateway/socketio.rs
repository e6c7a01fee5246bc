//! Socket.IO v5 (Engine.IO v4, WebSocket and HTTP long-polling) at `/socket.io/`, so
//! apps written against the official `socket.io-client` can use Socket-Hub as is
//! (events as in docs/socketio.md).
//!
//! socketioxide speaks the protocol; everything else is Socket-Hub's own: each socket
//! is a relayed session ([`super::relay`]) in this process's hub, so its rooms are our
//! rooms and their messages reach every client of every protocol on every instance,
//! with the same seqs. socketioxide's own rooms and adapter are not used.
//!
//! The namespace `/` only. The handshake's `auth` payload (or `?token=`, or an
//! `Authorization` header) carries the access token; a refused handshake is a
//! `connect_error` whose message says why. Events from one socket are applied in the
//! order they arrive, by one task per socket, under `/ws`'s per-connection rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socket_hub_protocol::{ErrorCode, Message, RoomId, Seq, ServerFrame, User};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::DisconnectReason;
use socketioxide::{SendError, SocketError, SocketIo};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Gateway;
use super::outbound::CloseReason;
use super::relay::{self, Admission, ChatFrame, Refusal, Relay, Requests, Stop, Wire};
use crate::auth::bearer_token;
use crate::error::Error;
use crate::rooms::RoomRef;

/// Event names, as docs/socketio.md lists them.
mod event {
    pub(super) const JOIN_ROOM: &str = "joinRoom";
    pub(super) const LEAVE_ROOM: &str = "leaveRoom";
    pub(super) const CHAT_MESSAGE: &str = "chatMessage";
    pub(super) const TYPING: &str = "typing";
    pub(super) const AUTH: &str = "auth";
    pub(super) const CHAT_HISTORY: &str = "chat-history";
    pub(super) const NOTIFICATION: &str = "notification";
    pub(super) const ROOM_LEFT: &str = "roomLeft";
    pub(super) const ROOM_DELETED: &str = "roomDeleted";
    pub(super) const ERROR: &str = "error";
    pub(super) const CLOSING: &str = "closing";
}

/// Requests of one socket waiting for its reader; more are refused as rate-limited.
const REQUEST_QUEUE: usize = 64;
/// Packets socketioxide buffers per socket before the writer waits (bounded by the
/// write timeout, then the client counts as too slow and is disconnected).
const SOCKET_BUFFER: usize = 256;
/// How long the writer waits between tries when the socket's buffer is full.
const FULL_BACKOFF: Duration = Duration::from_millis(5);

/// The `/socket.io/` layer, serving the namespace `/` over `gateway`.
pub(crate) fn layer(gateway: &Gateway) -> SocketIoLayer {
    let config = &gateway.config;
    let (layer, io) = SocketIo::builder()
        .req_path("/socket.io")
        // Sockets that never connect to a namespace hold nothing of ours, only
        // socketioxide's session: as short-lived as an unauthenticated `/ws`.
        .connect_timeout(config.auth_timeout())
        .max_payload(u64::try_from(config.max_frame_bytes).unwrap_or(u64::MAX))
        .ws_max_message_size(config.max_frame_bytes)
        .ws_max_frame_size(config.max_frame_bytes)
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    let on_connect = {
        let gateway = gateway.clone();
        move |socket: SocketRef, TryData(auth): TryData<HandshakeAuth>| {
            // Here, not in the returned future: socketioxide spawns that future after
            // sending the connect packet, so a client emitting at once could find no
            // handler yet and its event would be dropped. This closure runs before.
            connected(gateway.clone(), socket, auth.unwrap_or_default());
            std::future::ready(())
        }
    };
    let authorize = {
        let gateway = gateway.clone();
        move |socket: SocketRef, TryData(auth): TryData<HandshakeAuth>| {
            let gateway = gateway.clone();
            async move { authorize(gateway, socket, auth.unwrap_or_default()).await }
        }
    };
    io.ns("/", on_connect.with(authorize));
    layer
}

/// The handshake's `auth` payload: `{token, since: {room: seq}}`, both optional.
#[derive(Debug, Default, Deserialize)]
struct HandshakeAuth {
    #[serde(default)]
    token: Option<String>,
    /// Rooms to join again at once, each from the last seq the client saw (keys are
    /// room ids or names).
    #[serde(default)]
    since: Option<HashMap<String, Seq>>,
}

/// The admission a namespace connection won in the middleware, handed to the connect
/// handler through the socket's extensions (which need `Clone`).
#[derive(Clone)]
struct Admitted(Arc<Mutex<Option<Admission>>>);

/// The middleware: browser origin, token, connection caps. Its error is the
/// `connect_error` message the client sees.
async fn authorize(
    gateway: Gateway,
    socket: SocketRef,
    auth: HandshakeAuth,
) -> Result<(), Refusal> {
    let parts = socket.req_parts();
    crate::browser::check_origin(&parts.headers, &parts.uri, &gateway.config.allowed_origins)?;
    let query_token = query_token(parts);
    let token = auth
        .token
        .or(query_token)
        .or_else(|| bearer_token(&parts.headers).map(str::to_owned));
    let admission = relay::admit(&gateway, token.as_deref()).await?;
    tracing::debug!(user = admission.user().id, sid = %socket.id, "socket.io admitted");
    socket
        .extensions
        .insert(Admitted(Arc::new(Mutex::new(Some(admission)))));
    Ok(())
}

/// `?token=` of the handshake request.
fn query_token(parts: &Parts) -> Option<String> {
    let axum::extract::Query(mut params) =
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&parts.uri).ok()?;
    params.remove("token")
}

/// A socket connected to `/`: start its session, its writer and its reader, and join
/// the rooms its handshake asked to resume.
fn connected(gateway: Gateway, socket: SocketRef, auth: HandshakeAuth) {
    let admission = socket
        .extensions
        .remove::<Admitted>()
        .and_then(|Admitted(slot)| slot.lock().unwrap_or_else(|e| e.into_inner()).take());
    let Some(admission) = admission else {
        // Only reachable if the middleware did not run; refuse rather than serve.
        let _ = socket.disconnect();
        return;
    };
    let (relay, queue) = Relay::start(gateway, admission);
    let (requests, inbox) = mpsc::channel(REQUEST_QUEUE);
    for name in [
        event::JOIN_ROOM,
        event::LEAVE_ROOM,
        event::CHAT_MESSAGE,
        event::TYPING,
        event::AUTH,
    ] {
        let requests = requests.clone();
        socket.on(
            name,
            move |ack: AckSender, TryData(data): TryData<Value>| {
                let requests = requests.clone();
                async move { enqueue(&requests, name, data.unwrap_or(Value::Null), ack) }
            },
        );
    }
    drop(requests);
    {
        let session = relay.session.clone();
        socket.on_disconnect(move |reason: DisconnectReason| {
            let session = session.clone();
            async move {
                tracing::debug!(%reason, "socket.io disconnected");
                session.close(CloseReason::ClientGone);
            }
        });
    }
    if !socket.connected() {
        // Gone before its disconnect handler was in place.
        relay.session.close(CloseReason::ClientGone);
    }
    let mut wire = SocketIoWire {
        socket: socket.clone(),
        relay: relay.clone(),
        write_timeout: relay.gateway.config.write_timeout(),
    };
    let writer_relay = relay.clone();
    tokio::spawn(async move {
        relay::write_loop(&writer_relay, queue, &mut wire, None).await;
    });
    let resume: Vec<(RoomRef, Seq)> = auth
        .since
        .unwrap_or_default()
        .into_iter()
        .map(|(room, seq)| (room_key(&room), seq))
        .collect();
    tokio::spawn(read_loop(relay, socket, inbox, resume));
}

/// One client request waiting for the reader.
struct Request {
    event: &'static str,
    data: Value,
    ack: AckSender,
}

/// Queues a request for the socket's reader; a full queue is refused at once.
fn enqueue(requests: &mpsc::Sender<Request>, event: &'static str, data: Value, ack: AckSender) {
    if let Err(
        mpsc::error::TrySendError::Full(request) | mpsc::error::TrySendError::Closed(request),
    ) = requests.try_send(Request { event, data, ack })
    {
        crate::metrics::rate_limited();
        let err = Error::RateLimited {
            retry_after: Duration::from_secs(1),
        };
        let _ = request.ack.send(&Reply::<()>::Err(ErrorBody::from(&err)));
    }
}

/// Applies the socket's requests in order until it disconnects, then leaves its rooms.
async fn read_loop(
    relay: Arc<Relay>,
    socket: SocketRef,
    mut inbox: mpsc::Receiver<Request>,
    resume: Vec<(RoomRef, Seq)>,
) {
    let mut requests = Requests::new(&relay.gateway);
    let mut joined: HashMap<String, RoomId> = HashMap::new();
    for (room, since) in resume {
        match requests.join(&relay, &room, Some(since), None).await {
            Ok(room_id) => remember(&mut joined, &room, room_id),
            Err(err) => {
                let frame = crate::broker::encode(&err.to_frame(Some(room_label(&room))));
                relay.session.reply(super::outbound::Outbound::Frame(frame));
            }
        }
    }
    let closing = relay.session.closing().clone();
    loop {
        let request = tokio::select! {
            () = closing.cancelled() => break,
            request = inbox.recv() => match request {
                Some(request) => request,
                None => break,
            },
        };
        let Request { event, data, ack } = request;
        if let Err(err) = requests.admit() {
            let _ = ack.send(&Reply::<()>::Err(ErrorBody::from(&err)));
            continue;
        }
        let reply = handle(&relay, &mut requests, &mut joined, event, data).await;
        let _ = ack.send(&reply);
    }
    relay.session.close(CloseReason::ClientGone);
    relay.leave_all().await;
    drop(socket);
}

/// What an acknowledgement carries: `{ok: true, …}` or `{ok: false, error}`.
#[derive(Serialize)]
#[serde(untagged)]
enum Reply<T> {
    Ok(Done<T>),
    Err(ErrorBody),
}

#[derive(Serialize)]
struct Done<T> {
    ok: bool,
    #[serde(flatten)]
    body: T,
}

impl<T> Reply<T> {
    fn ok(body: T) -> Self {
        Self::Ok(Done { ok: true, body })
    }
}

/// `{ok: false, error: {code, message, retry_after_ms?}}`.
#[derive(Serialize)]
struct ErrorBody {
    ok: bool,
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: ErrorCode,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after_ms: Option<u64>,
}

impl From<&Error> for ErrorBody {
    fn from(err: &Error) -> Self {
        let detail = match err.to_frame(None) {
            ServerFrame::Error {
                code,
                message,
                retry_after_ms,
                ..
            } => ErrorDetail {
                code,
                message,
                retry_after_ms,
            },
            _ => ErrorDetail {
                code: err.code(),
                message: err.to_string(),
                retry_after_ms: None,
            },
        };
        Self {
            ok: false,
            error: detail,
        }
    }
}

/// Applies one request; returns its acknowledgement, serialized so one type fits
/// every event.
async fn handle(
    relay: &Relay,
    requests: &mut Requests,
    joined: &mut HashMap<String, RoomId>,
    event: &str,
    data: Value,
) -> Value {
    let result = match event {
        event::JOIN_ROOM => join(relay, requests, joined, data).await,
        event::LEAVE_ROOM => match room_of(relay, joined, &data).await {
            Ok(room_id) => requests
                .leave(relay, room_id)
                .await
                .map(|()| serde_json::json!({ "room_id": room_id })),
            Err(err) => Err(err),
        },
        event::CHAT_MESSAGE => send(relay, requests, joined, data).await,
        event::TYPING => match room_of(relay, joined, &data).await {
            Ok(room_id) => requests
                .typing(relay, room_id)
                .map(|()| serde_json::json!({ "room_id": room_id })),
            Err(err) => Err(err),
        },
        event::AUTH => match data.get("token").and_then(Value::as_str) {
            Some(token) => relay
                .reauth(token)
                .await
                .map(|()| serde_json::json!({ "user": relay.user() })),
            None => Err(Error::InvalidInput("auth needs {token}".into())),
        },
        _ => Err(Error::InvalidInput(format!("unknown event {event}"))),
    };
    let reply = match result {
        Ok(body) => serde_json::to_value(Reply::ok(body)),
        Err(err) => serde_json::to_value(Reply::<()>::Err(ErrorBody::from(&err))),
    };
    reply.unwrap_or(Value::Null)
}

/// `joinRoom`: `"name"`, a room id, or `{room, since_seq?, access_code?}`.
async fn join(
    relay: &Relay,
    requests: &mut Requests,
    joined: &mut HashMap<String, RoomId>,
    data: Value,
) -> Result<Value, Error> {
    #[derive(Deserialize)]
    struct JoinRoom {
        #[serde(alias = "room_id", alias = "roomId")]
        room: Value,
        #[serde(default, alias = "sinceSeq")]
        since_seq: Option<Seq>,
        #[serde(default, alias = "accessCode")]
        access_code: Option<String>,
    }
    let request = match data {
        Value::Object(_) => serde_json::from_value::<JoinRoom>(data)
            .map_err(|err| Error::InvalidInput(format!("joinRoom: {err}")))?,
        room => JoinRoom {
            room,
            since_seq: None,
            access_code: None,
        },
    };
    let room = parse_room(&request.room)?;
    let room_id = requests
        .join(relay, &room, request.since_seq, request.access_code)
        .await?;
    remember(joined, &room, room_id);
    Ok(serde_json::json!({ "room_id": room_id }))
}

/// `chatMessage`: `{room, message, client_msg_id?}` (`content` for `message` too).
async fn send(
    relay: &Relay,
    requests: &mut Requests,
    joined: &HashMap<String, RoomId>,
    data: Value,
) -> Result<Value, Error> {
    #[derive(Deserialize)]
    struct ChatMessage {
        #[serde(alias = "content")]
        message: String,
        #[serde(default, alias = "clientMsgId")]
        client_msg_id: Option<String>,
    }
    let room_id = room_of(relay, joined, &data).await?;
    let request: ChatMessage = serde_json::from_value(data)
        .map_err(|err| Error::InvalidInput(format!("chatMessage: {err}")))?;
    let message: Message = requests
        .send(
            relay,
            room_id,
            request.client_msg_id.as_deref(),
            &request.message,
        )
        .await?;
    Ok(serde_json::json!({ "message": message }))
}

/// The room a request names in `room` (or `room_id`): a room joined by that name on
/// this socket, a room id, or a room found by name.
async fn room_of(
    relay: &Relay,
    joined: &HashMap<String, RoomId>,
    data: &Value,
) -> Result<RoomId, Error> {
    let room = match data {
        Value::Object(map) => map
            .get("room")
            .or_else(|| map.get("room_id"))
            .or_else(|| map.get("roomId"))
            .ok_or_else(|| Error::InvalidInput("name the room: {room: id or name}".into()))?,
        other => other,
    };
    match parse_room(room)? {
        RoomRef::Id(id) => Ok(id),
        RoomRef::Name(name) => match joined.get(&name) {
            Some(id) => Ok(*id),
            None => relay
                .gateway
                .rooms
                .store
                .find_named(&name)
                .await?
                .ok_or(Error::NotFound("room")),
        },
    }
}

/// A room given as a JSON number (id) or string (name).
fn parse_room(room: &Value) -> Result<RoomRef, Error> {
    match room {
        Value::Number(n) => n
            .as_i64()
            .map(RoomRef::Id)
            .ok_or_else(|| Error::InvalidInput("room id must be an integer".into())),
        Value::String(name) => Ok(RoomRef::Name(name.clone())),
        _ => Err(Error::InvalidInput(
            "room must be a room id (number) or a room name (string)".into(),
        )),
    }
}

/// A key of the handshake's `since` map: digits are a room id, anything else a name.
fn room_key(key: &str) -> RoomRef {
    match key.parse::<RoomId>() {
        Ok(id) => RoomRef::Id(id),
        Err(_) => RoomRef::Name(key.to_owned()),
    }
}

fn room_label(room: &RoomRef) -> String {
    match room {
        RoomRef::Id(id) => id.to_string(),
        RoomRef::Name(name) => name.clone(),
    }
}

fn remember(joined: &mut HashMap<String, RoomId>, room: &RoomRef, room_id: RoomId) {
    if let RoomRef::Name(name) = room {
        joined.insert(name.clone(), room_id);
    }
}

/// Writes a relayed session as Socket.IO events.
struct SocketIoWire {
    socket: SocketRef,
    relay: Arc<Relay>,
    write_timeout: Duration,
}

/// `notification`: someone came online in, or left, a room.
#[derive(Serialize)]
struct Notification<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room_id: RoomId,
    user: &'a User,
    text: String,
}

impl SocketIoWire {
    /// Emits one event, waiting (up to the write timeout) while the socket's buffer is
    /// full; past it the client is too slow and is disconnected (it resumes by seq).
    async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), Stop> {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            match self.socket.emit(event, data) {
                Ok(()) => return Ok(()),
                Err(SendError::Socket(SocketError::InternalChannelFull))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(FULL_BACKOFF).await;
                }
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    crate::metrics::slow_consumer(crate::metrics::SlowCause::WriteTimeout);
                    self.relay.session.close(CloseReason::TooSlow);
                    return Err(Stop);
                }
                Err(SendError::Serialize(err)) => {
                    tracing::warn!(error = %err, event, "cannot encode a socket.io event");
                    return Ok(());
                }
                Err(SendError::Socket(_)) => return Err(Stop),
            }
        }
    }
}

impl Wire for SocketIoWire {
    async fn chat(&mut self, frame: &str) -> Result<(), Stop> {
        match ChatFrame::parse(frame) {
            Some(chat) => self.emit(event::CHAT_MESSAGE, chat.message).await,
            None => Ok(()),
        }
    }

    async fn frame(&mut self, frame: ServerFrame) -> Result<(), Stop> {
        match frame {
            ServerFrame::Join { room_id, user } => {
                let text = format!("{} joined the room", user.username);
                let note = Notification {
                    kind: "join",
                    room_id,
                    user: &user,
                    text,
                };
                self.emit(event::NOTIFICATION, &note).await
            }
            ServerFrame::Leave { room_id, user } => {
                let text = format!("{} left the room", user.username);
                let note = Notification {
                    kind: "leave",
                    room_id,
                    user: &user,
                    text,
                };
                self.emit(event::NOTIFICATION, &note).await
            }
            ServerFrame::Typing { room_id, user } => {
                let typing = serde_json::json!({ "room_id": room_id, "user": user });
                self.emit(event::TYPING, &typing).await
            }
            ServerFrame::RoomLeft { room_id } => {
                let left = serde_json::json!({ "room_id": room_id });
                self.emit(event::ROOM_LEFT, &left).await
            }
            // Room events take the room's seqs like messages (their `event` field says
            // which), so a Socket.IO client resumes through them the same way.
            ServerFrame::Chat { message }
            | ServerFrame::RoomUpdated { message }
            | ServerFrame::MemberUpdated { message }
            | ServerFrame::Kicked { message }
            | ServerFrame::Banned { message }
            | ServerFrame::Unbanned { message }
            | ServerFrame::MessageUpdated { message }
            | ServerFrame::MessageDeleted { message }
            | ServerFrame::Reaction { message } => self.emit(event::CHAT_MESSAGE, &message).await,
            ServerFrame::RoomDeleted { room_id, by } => {
                let deleted = serde_json::json!({ "room_id": room_id, "by": by });
                self.emit(event::ROOM_DELETED, &deleted).await
            }
            // The user's own notifications (invited, mentioned, …), told apart from the
            // room's join/leave notices by their `kind`.
            ServerFrame::Notification { notification } => {
                self.emit(event::NOTIFICATION, &notification).await
            }
            error @ ServerFrame::Error { .. } => self.emit(event::ERROR, &error).await,
            // Answered by acknowledgements instead, or with no Socket.IO meaning.
            ServerFrame::Ready { .. }
            | ServerFrame::RoomJoined { .. }
            | ServerFrame::Ack { .. }
            | ServerFrame::Presence { .. }
            | ServerFrame::ReadMarker { .. }
            | ServerFrame::Pong => Ok(()),
        }
    }

    async fn joined(
        &mut self,
        room_id: RoomId,
        members: Vec<User>,
        last_seq: Seq,
        history: Option<Vec<Message>>,
    ) -> Result<(), Stop> {
        let resumed = history.is_none();
        let payload = serde_json::json!({
            "room_id": room_id,
            "messages": history.unwrap_or_default(),
            "last_seq": last_seq,
            "members": members,
            "resumed": resumed,
        });
        self.emit(event::CHAT_HISTORY, &payload).await
    }

    async fn close(&mut self, reason: CloseReason) {
        if reason != CloseReason::ClientGone {
            let closing = serde_json::json!({
                "code": reason.code(),
                "reason": reason.text(),
            });
            let _ = self.socket.emit(event::CLOSING, &closing);
            let _ = self.socket.clone().disconnect();
        }
    }
}
