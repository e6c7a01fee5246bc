//! One WebSocket connection: authenticate, then a reader and a writer that run until
//! either asks to close, then one close frame whose [`CloseReason`] says why.
//!
//! The reader parses client frames and answers through the same bounded queue the
//! rooms feed, so replies and room traffic reach the socket in one order. The writer
//! is the only code touching the socket's sending half: it keeps every joined room's
//! chat stream gap-free (replaying from the store after a join with `since_seq`),
//! pings, enforces the keepalive and token expiry, and gives up on a client whose
//! writes stall.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socket_hub_protocol::{ClientFrame, ErrorCode, PresenceStatus, RoomId, Seq, ServerFrame, User};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::Gateway;
use super::live::{PendingGuard, SessionGuard, UserGuard, close_revoked};
use super::outbound::{AfterClose, CloseReason, Outbound, Queue, SessionHandle};
use super::rate::RateLimit;
use super::seq::{SeqCursor, SeqStep};
use crate::auth::Claims;
use crate::broker::encode;
use crate::error::Error;
use crate::presence::PresenceGuard;
use crate::rooms;

/// Messages read from the store per query when replaying.
const REPLAY_PAGE: u32 = 200;
/// Rejected frames within [`FLOOD_WINDOW`] after which a flooding client is
/// disconnected (1008): a client that keeps pushing past its limit is not just slowed.
const FLOOD_STRIKES: u32 = 100;
const FLOOD_WINDOW: Duration = Duration::from_secs(10);
/// How long, after the server's close frame, the socket stays open for the client to
/// read it and answer. Closing at once would reset the connection while the client
/// still has unread frames in flight, and a reset discards the close frame with them.
const CLOSE_LINGER: Duration = Duration::from_secs(2);
/// Bytes of queued frames handed to the socket before one flush (about 30 chat frames):
/// a burst goes out in one write (the socket's write threshold is as large, see
/// `gateway::WRITE_BUFFER`), and a long backlog still yields to timers and the reader
/// between batches.
const BATCH_BYTES: usize = 8 * 1024;
/// Least time between two typing notices of one connection in one room.
const TYPING_INTERVAL: Duration = Duration::from_millis(1_000);

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) use super::ws::{Sink, Stream};

/// How the connection presented its token at the handshake, if it did.
/// Boxed: it is held in the connection's future, which would otherwise be sized for it.
pub(crate) type HandshakeAuth = Option<Result<Box<Claims>, Error>>;

/// What a connection holds from its upgrade on.
pub(crate) struct Held {
    /// Its connection slot, released when it ends.
    #[allow(dead_code, reason = "held for its Drop")]
    pub(crate) permit: OwnedSemaphorePermit,
    /// The shutdown tracker's token: shutdown waits for it.
    #[allow(dead_code, reason = "held for its Drop")]
    pub(crate) tracked: TaskTrackerToken,
    /// Its claim as an unauthenticated connection (a handshake without a token),
    /// released once it authenticates.
    pub(crate) pending: Option<Box<PendingGuard>>,
}

/// Serves one upgraded connection to the end.
///
/// What it `held` is released when this returns.
pub(crate) async fn serve(
    gateway: Gateway,
    mut sink: Sink,
    mut stream: Stream,
    auth: HandshakeAuth,
    mut held: Held,
) {
    metrics::gauge!("socket_hub_connections").increment(1.0);
    // Boxed, like every rarely taken branch below: an async fn's future is as large as
    // the largest future it awaits, and this one lives as long as the connection.
    let claims = match Box::pin(authenticate(&gateway, &mut stream, auth)).await {
        Ok(claims) => claims,
        Err(err) => {
            // A store that cannot check the account is no reason to log in again.
            let reason = match err.code() {
                ErrorCode::Unavailable | ErrorCode::Internal => CloseReason::StoreUnavailable,
                _ => CloseReason::Unauthorized,
            };
            Box::pin(refuse(&gateway, &mut sink, err.to_frame(None), reason)).await;
            metrics::gauge!("socket_hub_connections").decrement(1.0);
            return;
        }
    };
    // Authenticated: no longer one of its address's unauthenticated connections.
    held.pending = None;
    match admit(gateway, *claims) {
        // The rest of the connection's life in a task of its own: this task's future is
        // sized for the authentication and refusal above and keeps a second copy of
        // every argument; the connection's own future holds only what it needs.
        Ok(admitted) => {
            tokio::spawn(connection(*admitted, sink, stream, held));
        }
        Err(refused) => {
            let Refused(gateway, error, reason) = *refused;
            Box::pin(refuse(&gateway, &mut sink, error, reason)).await;
            metrics::gauge!("socket_hub_connections").decrement(1.0);
        }
    }
}

/// An admitted connection's life, from its session's start to its close frame; what
/// it `held` (and its claims on its user's cap and login session) is released when it
/// ends. Not an async fn: an async block keeps each captured value once, where an
/// async fn's future keeps its arguments twice (as arguments and as locals).
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn's future keeps its arguments twice; this one lives as long as the connection"
)]
fn connection(
    admitted: Admitted,
    sink: Sink,
    stream: Stream,
    held: Held,
) -> impl Future<Output = ()> + Send {
    async move {
        let Admitted(shared, queue, claims) = admitted;
        run(shared, sink, stream, queue).await;
        drop((claims, held));
        metrics::gauge!("socket_hub_connections").decrement(1.0);
    }
}

/// An admitted connection: its session, started, and its claims on its user's cap and
/// under its login session.
struct Admitted(
    Arc<Shared>,
    Queue,
    Box<(UserGuard, SessionGuard, PresenceGuard)>,
);

/// A refused connection: the error and close reason to send.
struct Refused(Gateway, ServerFrame, CloseReason);

/// Claims one of the user's connections and starts the session. Not async: only the
/// user, the expiry and the session outlive it, not the claims' other strings.
/// Both outcomes boxed: one pointer each in the connection's long-lived future.
fn admit(gateway: Gateway, claims: Claims) -> Result<Box<Admitted>, Box<Refused>> {
    let Ok(user) = claims.user() else {
        let error = Error::Unauthorized.to_frame(None);
        return Err(Box::new(Refused(gateway, error, CloseReason::Unauthorized)));
    };
    let cap = gateway.config.max_connections_per_user;
    let Some(user_slot) = gateway.live.admit_user(user.id, cap) else {
        let error = ServerFrame::error(
            ErrorCode::RateLimited,
            format!(
                "too many connections for this user (at most {cap}); close another tab or device"
            ),
            None,
        );
        return Err(Box::new(Refused(
            gateway,
            error,
            CloseReason::TooManyConnections,
        )));
    };
    let (shared, queue) = start(gateway, user, claims.exp);
    let listed = list(&shared, claims.sid.map(Arc::from));
    // Listed first: a notification stored from here on also comes live.
    after_ready(&shared, shared.session.user().id);
    let online = shared
        .gateway
        .presence
        .connect(shared.session.user().id, shared.session.id());
    Ok(Box::new(Admitted(
        shared,
        queue,
        Box::new((user_slot, listed, online)),
    )))
}

/// Lists the connection under its user (frames for users) and its login session, so
/// a logout closes it.
fn list(shared: &Shared, sid: Option<Arc<str>>) -> SessionGuard {
    let session = &shared.session;
    let revoked = sid
        .as_deref()
        .is_some_and(|sid| shared.gateway.auth.revocations.is_revoked(sid));
    let listed = shared.gateway.live.register(sid, session.clone());
    // Revoked between the token check and the listing: no notice will come for it.
    if revoked {
        close_revoked(session);
    }
    listed
}

/// Sends `error` and closes with `reason`, bounded by the write timeout: a connection
/// refused before its session starts.
async fn refuse(gateway: &Gateway, sink: &mut Sink, error: ServerFrame, reason: CloseReason) {
    crate::metrics::reply_sent(&error);
    crate::metrics::connection_closed(reason.code());
    let frame = encode(&error);
    let refuse = tokio::time::timeout(gateway.config.write_timeout(), async {
        sink.send(Message::Text(frame)).await?;
        sink.send(close_message(reason)).await
    });
    let _ = refuse.await;
}

/// Takes the handshake token, or waits (bounded) for an `auth` frame.
async fn authenticate(
    gateway: &Gateway,
    stream: &mut Stream,
    auth: HandshakeAuth,
) -> Result<Box<Claims>, Error> {
    if let Some(result) = auth {
        return result;
    }
    let first = tokio::time::timeout(gateway.config.auth_timeout(), async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message {
                return Some(text);
            }
        }
        None
    })
    .await
    .map_err(|_| Error::Unauthorized)?
    .ok_or(Error::Unauthorized)?;
    match serde_json::from_str::<ClientFrame>(first.as_str()) {
        Ok(ClientFrame::Auth { token }) => crate::auth::authenticate(&gateway.auth, &token)
            .await
            .map(Box::new),
        _ => Err(Error::Unauthorized),
    }
}

/// What the reader and writer share.
struct Shared {
    gateway: Gateway,
    session: SessionHandle,
    /// When the connection started, on tokio's clock; `last_seen_ms` counts from here.
    started: Instant,
    /// Milliseconds after `started` of the last frame from the client (keepalive).
    last_seen_ms: AtomicU64,
    /// Access token expiry (Unix seconds); refreshed by `auth` frames.
    expires_at: AtomicI64,
    /// Tells the writer that `expires_at` changed (a permit is kept if it is busy).
    /// Inline here rather than a watch channel: one allocation less per connection.
    expiry_changed: Notify,
}

/// The session's shared state and the writer's queue, with `ready` queued. Not async:
/// what it consumes is not kept a second time in the connection's future.
fn start(gateway: Gateway, user: User, exp: i64) -> (Arc<Shared>, Queue) {
    let close = gateway.shutdown.child_token();
    let id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
    let (session, queue) =
        SessionHandle::new(id, user.clone(), gateway.config.outbound_queue, close);
    let shared = Arc::new(Shared {
        gateway,
        session,
        started: Instant::now(),
        last_seen_ms: AtomicU64::new(0),
        expires_at: AtomicI64::new(exp),
        expiry_changed: Notify::new(),
    });
    shared.reply(&ServerFrame::Ready { user });
    tracing::debug!(session = id, "connection ready");
    (shared, queue)
}

/// Records the user as last seen now and queues their unread notifications after
/// `ready`, in a task of its own so the connection never waits on the store for them.
/// Usually there is neither to do (a reconnect within the "last seen" granularity, or
/// another connection of the user updating it; no unread notifications: an inline probe),
/// and then no task is started.
fn after_ready(shared: &Arc<Shared>, user_id: socket_hub_protocol::UserId) {
    let notifier = &shared.gateway.rooms.notifier;
    let users = &shared.gateway.auth.users;
    let touch = users.claim_touch(user_id);
    // The caller listed the session for live notifications first: one stored after this
    // probe comes live.
    let backlog = notifier.store.may_have_unread(user_id);
    if !touch && !backlog {
        return;
    }
    let notifier = notifier.clone();
    let users = users.clone();
    let session = shared.session.clone();
    tokio::spawn(async move {
        if touch && let Err(err) = users.touch_claimed(user_id).await {
            tracing::warn!(error = %err, "cannot record last seen");
        }
        if !backlog {
            return;
        }
        match notifier.backlog(user_id).await {
            Ok(unread) => {
                for notification in unread {
                    let frame = encode(&ServerFrame::Notification { notification });
                    session.push(Outbound::Frame(frame));
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot read unread notifications"),
        }
    });
}

/// Runs the reader and the writer to the end, then closes. An async block for the
/// reason given at [`connection`].
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn's future keeps its arguments twice; this one lives as long as the connection"
)]
fn run(
    shared: Arc<Shared>,
    mut sink: Sink,
    mut stream: Stream,
    queue: Queue,
) -> impl Future<Output = ()> + Send {
    async move {
        let id = shared.session.id();
        // The reader watches the close token and, however it ends, marks the session
        // closing, which ends the writer's queue; the writer's own ends (expiry,
        // keepalive, a failed write) close the session: whichever ends first ends the other.
        // The writer borrows the sink: kept here once, not again in each future below.
        // Each polled only when woken (see `halves`): a frame queued for the writer
        // does not poll the reader, nor a client frame the writer.
        let ((), (writer, queue)) = super::halves::join(
            read_loop(&shared, &mut stream),
            write_loop(&shared, &mut sink, queue),
        )
        .await;
        // The reader is done, so every reply it will queue is queued (an `ack` for a
        // message stored while the server began shutting down included): flush, then close.
        let reason = shared
            .session
            .close_reason()
            .unwrap_or(CloseReason::ServiceRestart);
        crate::metrics::connection_closed(reason.code());
        // Once per connection, at its end: boxed, so the connection's future is not sized
        // for it all its life.
        Box::pin(async {
            writer.close(reason, queue).await;
            match reason.after_close() {
                AfterClose::Done => {}
                AfterClose::Linger => linger(&mut stream).await,
                AfterClose::Wait => tokio::time::sleep(CLOSE_LINGER).await,
            }
        })
        .await;
        tracing::debug!(session = id, ?reason, "connection closed");
    }
}

impl Shared {
    fn reply(&self, frame: &ServerFrame) {
        crate::metrics::reply_sent(frame);
        self.session.reply(Outbound::Frame(encode(frame)));
    }

    fn reply_error(&self, err: &Error, reference: Option<String>) {
        self.reply(&err.to_frame(reference));
    }

    /// Notes activity from the client.
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_seen_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the client has been silent.
    fn idle(&self) -> Duration {
        let seen = Duration::from_millis(self.last_seen_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(seen)
    }
}

// ---------------------------------------------------------------- reader

/// Per-connection state only the reader touches. The rooms it has joined live on the
/// session handle, since the room task changes them too (an eviction).
struct Reader {
    rate: RateLimit,
    /// Rejected frames since `strikes_since`.
    strikes: u32,
    strikes_since: Instant,
    /// When this connection last passed a typing notice on, per room; only entries
    /// younger than [`TYPING_INTERVAL`] are kept.
    last_typing: HashMap<RoomId, Instant>,
}

/// Reads (and discards) until the client answers our close frame or goes away, bounded
/// by [`CLOSE_LINGER`].
async fn linger(stream: &mut Stream) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(_))) | None => return,
                Some(Ok(_)) => {}
                Some(Err(_)) => return,
            }
        }
    })
    .await;
}

/// Reads client frames until the connection ends, then takes it out of its rooms.
async fn read_loop(shared: &Shared, stream: &mut Stream) {
    let config = &shared.gateway.config;
    let mut reader = Reader {
        rate: RateLimit::new(config.rate_per_sec, config.rate_burst),
        strikes: 0,
        strikes_since: Instant::now(),
        last_typing: HashMap::new(),
    };
    let closing = shared.session.closing().clone();
    // Created once: re-polled on each of the reader's wakeups, not registered anew.
    let cancelled = closing.cancelled();
    tokio::pin!(cancelled);
    loop {
        let next = tokio::select! {
            () = &mut cancelled => break,
            next = stream.next() => next,
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(err)) if is_too_big(&err) => {
                shared.reply(&ServerFrame::error(
                    ErrorCode::FrameTooLarge,
                    format!("frames are limited to {} bytes", config.max_frame_bytes),
                    None,
                ));
                shared.session.close(CloseReason::TooBig);
                break;
            }
            Some(Err(err)) if is_invalid_utf8(&err) => {
                shared.session.close(CloseReason::InvalidUtf8);
                break;
            }
            // The client vanished (reset, protocol error): nobody to tell.
            Some(Err(_)) => break,
            None => break,
        };
        shared.touch();
        let is_data = matches!(message, Message::Text(_) | Message::Binary(_));
        if is_data && !reader.admit(shared, &message) {
            continue;
        }
        match message {
            // Boxed: the parse and dispatch state of a frame is not kept in the
            // connection's future between frames.
            Message::Text(text) => Box::pin(reader.on_text(shared, &text)).await,
            Message::Binary(_) => {
                crate::metrics::frame_in_invalid();
                shared.reply(&ServerFrame::error(
                    ErrorCode::MalformedJson,
                    "binary frames are not supported; send JSON text frames",
                    None,
                ));
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    if !closing.is_cancelled() {
        // The client ended it (close frame, EOF, reset). Otherwise the server asked
        // (kick, expiry, shutdown) and the reason is set, or it is a shutdown.
        shared.session.close(CloseReason::ClientGone);
    }
    // Whatever ended the reader (a shutdown too) ends the writer: it does not watch the
    // close token itself.
    shared.session.closing_seen();
    // Settle every room this connection was in, whatever ended it.
    for room_id in shared.session.take_rooms() {
        Box::pin(shared.gateway.hub.leave(room_id, shared.session.id())).await;
    }
}

pub(super) fn is_too_big(err: &tungstenite::Error) -> bool {
    let text = err.to_string();
    text.contains("too long") || text.contains("too big") || text.contains("Space limit")
}

/// tungstenite's `Error::Utf8` (axum does not expose the type).
fn is_invalid_utf8(err: &tungstenite::Error) -> bool {
    err.to_string().contains("UTF-8")
}

/// What a client frame's errors name in `ref`: the `client_msg_id` of a send, the room
/// id of a room request; `None` for frames without one (or that do not parse).
fn frame_reference(text: &str) -> Option<String> {
    match serde_json::from_str::<ClientFrame>(text).ok()? {
        ClientFrame::MessageSend { client_msg_id, .. } => Some(client_msg_id),
        ClientFrame::JoinRoom { room_id, .. }
        | ClientFrame::LeaveRoom { room_id }
        | ClientFrame::Typing { room_id }
        | ClientFrame::Read { room_id, .. } => Some(room_id.to_string()),
        ClientFrame::Auth { .. } | ClientFrame::Ping | ClientFrame::Presence { .. } => None,
    }
}

impl Reader {
    /// Applies the rate limit. Every refused frame that names something (a send, a room
    /// request) is answered with `rate_limited`, its `ref` and when to retry, so the
    /// client knows exactly what to resend; refused frames without a `ref` get one
    /// notice per streak and then every tenth. A client that keeps flooding is
    /// disconnected.
    fn admit(&mut self, shared: &Shared, message: &Message) -> bool {
        let now = Instant::now();
        let retry_after = match self.rate.take(now) {
            Ok(()) => return true,
            Err(wait) => wait,
        };
        if now.duration_since(self.strikes_since) > FLOOD_WINDOW {
            self.strikes = 0;
            self.strikes_since = now;
        }
        self.strikes += 1;
        crate::metrics::rate_limited();
        if self.strikes >= FLOOD_STRIKES {
            shared.session.close(CloseReason::Flooding);
            return false;
        }
        let reference = match message {
            Message::Text(text) => frame_reference(text.as_str()),
            _ => None,
        };
        if reference.is_some() || self.strikes == 1 || self.strikes.is_multiple_of(10) {
            shared.reply(&Error::RateLimited { retry_after }.to_frame(reference));
        }
        false
    }

    async fn on_text(&mut self, shared: &Shared, text: &Utf8Bytes) {
        let frame = match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(frame) => frame,
            Err(err) => {
                crate::metrics::frame_in_invalid();
                shared.reply(&parse_error(&err));
                return;
            }
        };
        crate::metrics::frame_in(&frame);
        match frame {
            ClientFrame::Auth { token } => Box::pin(self.reauth(shared, &token)).await,
            ClientFrame::Ping => shared.reply(&ServerFrame::Pong),
            ClientFrame::JoinRoom {
                room_id,
                since_seq,
                access_code,
            } => {
                let join = self.join(shared, room_id, since_seq, access_code);
                if let Err(err) = Box::pin(join).await {
                    shared.reply_error(&err, Some(room_id.to_string()));
                }
            }
            ClientFrame::LeaveRoom { room_id } => {
                if shared.session.exit_room(room_id) {
                    self.last_typing.remove(&room_id);
                    Box::pin(shared.gateway.hub.leave(room_id, shared.session.id())).await;
                    // Through the writer, which then drops any chat of the room in flight.
                    shared.session.reply(Outbound::Left {
                        room_id,
                        frame: encode(&ServerFrame::RoomLeft { room_id }),
                    });
                } else {
                    shared.reply_error(&Error::NotJoined, Some(room_id.to_string()));
                }
            }
            ClientFrame::MessageSend {
                room_id,
                client_msg_id,
                content,
                reply_to,
                attachments,
            } => {
                let user = shared.session.user();
                let send = rooms::send_message_with(
                    &shared.gateway.rooms,
                    user,
                    room_id,
                    Some(&client_msg_id),
                    &content,
                    reply_to,
                    &attachments,
                );
                match Box::pin(send).await {
                    Ok(message) => shared.reply(&ServerFrame::Ack {
                        client_msg_id,
                        message,
                    }),
                    Err(err) => shared.reply_error(&err, Some(client_msg_id)),
                }
            }
            ClientFrame::Typing { room_id } => self.typing(shared, room_id),
            ClientFrame::Read { room_id, seq } => {
                let user = shared.session.user();
                let mark = rooms::reading::mark_read(&shared.gateway.rooms, user, room_id, seq);
                if let Err(err) = Box::pin(mark).await {
                    shared.reply_error(&err, Some(room_id.to_string()));
                }
            }
            ClientFrame::Presence { status } => self.presence(shared, status),
        }
    }

    async fn reauth(&self, shared: &Shared, token: &str) {
        let user = shared.session.user();
        match crate::auth::authenticate(&shared.gateway.auth, token)
            .await
            .and_then(|c| Ok((c.user()?, c.exp)))
        {
            Ok((token_user, exp)) if token_user.id == user.id => {
                shared.expires_at.store(exp, Ordering::Relaxed);
                shared.expiry_changed.notify_one();
                shared.reply(&ServerFrame::Ready { user: user.clone() });
            }
            Ok(_) => shared.reply_error(&Error::Forbidden("a connection cannot change user"), None),
            Err(err) => shared.reply_error(&err, None),
        }
    }

    async fn join(
        &mut self,
        shared: &Shared,
        room_id: RoomId,
        since: Option<Seq>,
        access_code: Option<String>,
    ) -> Result<(), Error> {
        join_room(
            &shared.gateway,
            &shared.session,
            room_id,
            since,
            access_code,
        )
        .await
    }

    fn presence(&self, shared: &Shared, status: PresenceStatus) {
        if status == PresenceStatus::Offline {
            let refused = Error::InvalidInput(
                "presence status must be online or away (offline is when you disconnect)".into(),
            );
            shared.reply_error(&refused, None);
            return;
        }
        let session = &shared.session;
        // A client that shows its own presence shows others' too: from now on this
        // connection gets its contacts' `presence` frames.
        shared.gateway.live.watch(session);
        shared
            .gateway
            .presence
            .set(session.user().id, session.id(), status);
    }

    fn typing(&mut self, shared: &Shared, room_id: RoomId) {
        if !shared.session.in_room(room_id) {
            shared.reply_error(&Error::NotJoined, Some(room_id.to_string()));
            return;
        }
        let now = Instant::now();
        self.last_typing
            .retain(|_, at| now.duration_since(*at) < TYPING_INTERVAL);
        if self.last_typing.contains_key(&room_id) {
            return;
        }
        self.last_typing.insert(room_id, now);
        rooms::publish_typing(&shared.gateway.rooms, shared.session.user(), room_id);
    }
}

/// Makes `session` a member of `room_id` (access code for a private room) and hands it
/// to the room's task, which replays from `since`: the one join path of `/ws` and of
/// the adapters over it (`relay`).
pub(super) async fn join_room(
    gateway: &Gateway,
    session: &SessionHandle,
    room_id: RoomId,
    since: Option<Seq>,
    access_code: Option<String>,
) -> Result<(), Error> {
    if session.exit_room(room_id) {
        // Joining again (e.g. to resume from another seq, or after losing
        // membership, which the room settles on its own) starts from a clean slate.
        gateway.hub.leave(room_id, session.id()).await;
    }
    let cap = gateway.config.max_rooms_per_connection;
    if session.room_count() >= cap {
        return Err(Error::TooManyRooms(cap));
    }
    rooms::ensure_joinable(&gateway.rooms, session.user(), room_id, access_code).await?;
    // The room task records the room on the session when it accepts it.
    gateway.hub.join(room_id, session.clone(), since).await
}

/// Why a replay has no next page.
pub(super) enum ReplayEnd {
    /// Everything up to the target seq is written.
    Done,
    /// The connection is closing, or the store failed (the session is then closed with
    /// `StoreUnavailable`): the client resumes the rest by seq.
    Stopped,
}

/// The next page of a room's replay: stored messages after `after`, none past `upto`.
/// Shared by `/ws`'s writer and the relayed sessions' (`relay`).
pub(super) async fn replay_page(
    gateway: &Gateway,
    session: &SessionHandle,
    room_id: RoomId,
    after: Seq,
    upto: Seq,
) -> Result<Vec<socket_hub_protocol::Message>, ReplayEnd> {
    if after >= upto {
        return Err(ReplayEnd::Done);
    }
    if session.closing().is_cancelled() {
        return Err(ReplayEnd::Stopped);
    }
    match gateway
        .rooms
        .messages
        .after(room_id, after, REPLAY_PAGE)
        .await
    {
        Ok(mut page) => {
            page.retain(|message| message.seq <= upto);
            if page.is_empty() {
                Err(ReplayEnd::Done)
            } else {
                Ok(page)
            }
        }
        Err(err) => {
            // Without the store the stream cannot be made whole: make the client resume
            // later instead of showing it a hole.
            tracing::warn!(room_id, error = %err, "replay failed");
            session.close(CloseReason::StoreUnavailable);
            Err(ReplayEnd::Stopped)
        }
    }
}

/// Tells a client what was wrong with a frame it sent.
fn parse_error(err: &serde_json::Error) -> ServerFrame {
    use serde_json::error::Category;
    match err.classify() {
        Category::Data if err.to_string().starts_with("unknown variant") => ServerFrame::error(
            ErrorCode::UnknownType,
            format!("unknown frame type: {err}"),
            None,
        ),
        Category::Data => ServerFrame::error(
            ErrorCode::InvalidInput,
            format!("invalid frame: {err}"),
            None,
        ),
        Category::Syntax | Category::Eof | Category::Io => ServerFrame::error(
            ErrorCode::MalformedJson,
            format!("malformed JSON: {err}"),
            None,
        ),
    }
}

// ---------------------------------------------------------------- writer

/// Per-connection state only the writer touches.
struct Writer<'a> {
    shared: &'a Shared,
    sink: &'a mut Sink,
    /// Per joined room, the last seq written to the socket.
    delivered: HashMap<RoomId, SeqCursor>,
    /// When the socket writes of the current batch time out: set once per batch (and per
    /// replay page), so a frame costs no clock read and no timer of its own.
    deadline: Instant,
    /// Frames written since the last flush, for the metrics.
    tally: crate::metrics::WriteTally,
    /// Waits out the write spacing; made by the first connection that needs it.
    spacing: Option<Pin<Box<Sleep>>>,
}

/// Why the writer stopped early.
struct Stop;

/// Writes queued frames, pings and watches the token until the connection is asked to
/// close; returns the writer and its queue for the final flush.
async fn write_loop<'a>(
    shared: &'a Shared,
    sink: &'a mut Sink,
    mut queue: Queue,
) -> (Writer<'a>, Queue) {
    let config = &shared.gateway.config;
    let mut writer = Writer {
        shared,
        sink,
        delivered: HashMap::new(),
        deadline: Instant::now(),
        tally: crate::metrics::WriteTally::default(),
        spacing: None,
    };
    let mut ping = tokio::time::interval(config.ping_interval());
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let keepalive = config.keepalive_timeout();
    // Boxed (like `Interval`'s own `Sleep`): with it inline the connection's task
    // would not fit the next smaller allocation class.
    let mut token_expiry = Box::pin(tokio::time::sleep(expiry_delay(
        shared.expires_at.load(Ordering::Relaxed),
    )));
    // Long-lived futures, created once: a wakeup re-polls them instead of registering
    // and deregistering a waiter (a lock each) on every pass of the loop. No future on
    // the close token here (polling it takes its mutex on every wakeup): `queue.recv()`
    // ends once the session is closing, whoever closed it.
    let expiry_changed = shared.expiry_changed.notified();
    tokio::pin!(expiry_changed);
    loop {
        // Timers come before the queue so that steady traffic cannot starve them.
        tokio::select! {
            biased;
            () = &mut token_expiry => {
                // Queued before the close: the final flush writes it last.
                shared.reply_error(&Error::TokenExpired, None);
                shared.session.close(CloseReason::TokenExpired);
                break;
            }
            () = &mut expiry_changed => {
                expiry_changed.set(shared.expiry_changed.notified());
                let delay = expiry_delay(shared.expires_at.load(Ordering::Relaxed));
                token_expiry.as_mut().reset(Instant::now() + delay);
            }
            _ = ping.tick() => {
                if shared.idle() > keepalive {
                    shared.session.close(CloseReason::KeepaliveTimeout);
                    break;
                }
                writer.arm();
                if writer.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            item = queue.recv() => match item {
                Some(item) => {
                    if writer.write_batch(item, &mut queue).await.is_err() {
                        break;
                    }
                    writer.tally.flushed();
                }
                None => break,
            },
        }
    }
    (writer, queue)
}

/// Time until just after the second the token expires in (`exp` is wall-clock time).
fn expiry_delay(expires_at_secs: i64) -> Duration {
    let now_secs = chrono::Utc::now().timestamp();
    let secs = u64::try_from(expires_at_secs - now_secs).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_millis(50)
}

impl Writer<'_> {
    /// Starts the write timeout of a batch.
    fn arm(&mut self) {
        self.arm_at(Instant::now());
    }

    /// Starts the write timeout of a batch that begins at `now`.
    fn arm_at(&mut self, now: Instant) {
        self.deadline = now + self.shared.gateway.config.write_timeout();
    }

    /// Writes `first` and whatever else is queued by now (up to [`BATCH_BYTES`]), then
    /// flushes once: one socket write for a burst instead of one per frame.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn's future keeps its arguments twice; this one is part of the connection's"
    )]
    fn write_batch(
        &mut self,
        first: Outbound,
        queue: &mut Queue,
    ) -> impl Future<Output = Result<(), Stop>> {
        async move {
            let now = self.space_out().await;
            self.arm_at(now);
            if queue.is_empty() {
                // A room queues a message for every member before it lets any writer run,
                // and busy rooms queue several: yielding once here lets the rest of a burst
                // arrive, so it goes out in one write instead of one write per frame. An
                // idle connection pays one trip through the scheduler.
                tokio::task::yield_now().await;
            }
            // The rest of the burst, taken under one lock; what this batch does not
            // write goes back to the front of the queue.
            let mut rest = queue.take_all();
            let mut bytes = first.frame_len();
            let mut written = self.write_item(first).await;
            while written.is_ok() && bytes < BATCH_BYTES {
                let Some(item) = rest.pop_front() else { break };
                bytes += item.frame_len();
                written = self.write_item(item).await;
            }
            queue.put_back(rest);
            written?;
            self.flush().await
        }
    }

    /// Waits until `--write-spacing-us` after the last write began, if that is ahead,
    /// and returns when this write begins (one clock read for the spacing and the
    /// write timeout). The last write began when it was armed: one write timeout
    /// before its deadline.
    async fn space_out(&mut self) -> Instant {
        let now = Instant::now();
        let config = &self.shared.gateway.config;
        let spacing = config.write_spacing();
        let Some(wrote_at) = self.deadline.checked_sub(config.write_timeout()) else {
            return now;
        };
        let until = wrote_at + spacing;
        if spacing.is_zero() || until <= now {
            return now;
        }
        super::set_timer(&mut self.spacing, until);
        if let Some(sleep) = &mut self.spacing {
            sleep.as_mut().await;
        }
        until
    }

    /// Hands one queued item to the socket (unflushed).
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn's future keeps its arguments twice; this one is part of the connection's"
    )]
    fn write_item(&mut self, item: Outbound) -> impl Future<Output = Result<(), Stop>> {
        async move {
            match item {
                Outbound::Frame(frame) => self.feed(Message::Text(frame)).await,
                Outbound::Chat {
                    room_id,
                    seq,
                    frame,
                } => {
                    let Some(cursor) = self.delivered.get(&room_id).copied() else {
                        return Ok(()); // left the room; a straggler
                    };
                    match cursor.classify(seq) {
                        SeqStep::Stale => return Ok(()),
                        SeqStep::Next => {}
                        SeqStep::Gap => Box::pin(self.replay(room_id, seq - 1)).await?,
                    }
                    self.tally.live_chat(frame.as_str());
                    self.feed(Message::Text(frame)).await?;
                    self.advance(room_id, seq);
                    Ok(())
                }
                Outbound::Joined {
                    room_id,
                    since,
                    last_seq,
                    frame,
                } => {
                    self.feed(Message::Text(frame)).await?;
                    self.delivered.insert(room_id, SeqCursor::at(since));
                    Box::pin(self.replay(room_id, last_seq)).await
                }
                Outbound::Left { room_id, frame } => {
                    self.delivered.remove(&room_id);
                    self.feed(Message::Text(frame)).await
                }
                Outbound::Notices { burst, position } => {
                    let user_id = self.shared.session.user().id;
                    for frame in burst.frames_for(user_id, position) {
                        self.feed(Message::Text(frame.clone())).await?;
                    }
                    Ok(())
                }
            }
        }
    }

    fn advance(&mut self, room_id: RoomId, seq: Seq) {
        if let Some(cursor) = self.delivered.get_mut(&room_id) {
            cursor.advance(seq);
        }
    }

    /// Writes the stored messages after what this connection has seen, up to `upto`.
    async fn replay(&mut self, room_id: RoomId, upto: Seq) -> Result<(), Stop> {
        loop {
            let after = self.delivered.get(&room_id).map_or(upto, |c| c.last());
            let shared = self.shared;
            let page =
                match replay_page(&shared.gateway, &shared.session, room_id, after, upto).await {
                    Ok(page) => page,
                    Err(ReplayEnd::Done) => return Ok(()),
                    Err(ReplayEnd::Stopped) => return Err(Stop),
                };
            // The store's time is not the client's: each page gets its own timeout.
            self.arm();
            for message in page {
                let seq = message.seq;
                let frame = socket_hub_protocol::frames::encode_stored(&message);
                self.feed(Message::Text(frame.into())).await?;
                self.advance(room_id, seq);
            }
        }
    }

    /// Ends the connection: writes what is queued when the reason allows (bounded by
    /// the write timeout), then the close frame.
    async fn close(mut self, reason: CloseReason, mut queue: Queue) {
        let timeout = self.shared.gateway.config.write_timeout();
        if reason.flush_first() {
            let flush = async {
                while let Ok(item) = queue.try_recv() {
                    if self.write_closing(item).await.is_err() {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(timeout, flush).await;
        }
        // Best effort: the client may already be gone, or too slow to take even this.
        let _ = tokio::time::timeout(timeout, self.sink.send(close_message(reason))).await;
    }

    /// Writes a queued item while closing: replies, and chats that continue a room's
    /// stream without a replay (the client resumes the rest by seq).
    async fn write_closing(&mut self, item: Outbound) -> Result<(), Stop> {
        let frame = match item {
            Outbound::Frame(frame) => frame,
            Outbound::Chat {
                room_id,
                seq,
                frame,
            } => {
                let next = self
                    .delivered
                    .get(&room_id)
                    .is_some_and(|c| c.classify(seq) == SeqStep::Next);
                if !next {
                    return Ok(());
                }
                self.advance(room_id, seq);
                frame
            }
            // Its replay is not for now: the client joins again when it reconnects.
            Outbound::Joined { .. } => return Ok(()),
            Outbound::Left { room_id, frame } => {
                self.delivered.remove(&room_id);
                frame
            }
            Outbound::Notices { burst, position } => {
                let user_id = self.shared.session.user().id;
                for frame in burst.frames_for(user_id, position) {
                    self.sink
                        .feed(Message::Text(frame.clone()))
                        .await
                        .map_err(|_| Stop)?;
                }
                return Ok(());
            }
        };
        self.sink.feed(Message::Text(frame)).await.map_err(|_| Stop)
    }

    /// One frame written and flushed.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn's future keeps its arguments twice; this one is part of the connection's"
    )]
    fn send(&mut self, message: Message) -> impl Future<Output = Result<(), Stop>> {
        async move {
            self.feed(message).await?;
            self.flush().await
        }
    }

    /// One frame handed to the socket, which writes once its buffer fills; bounded by
    /// the batch's deadline (see [`Writer::arm`]).
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn's future keeps its arguments twice; this one is part of the connection's"
    )]
    fn feed(&mut self, message: Message) -> impl Future<Output = Result<(), Stop>> {
        async move {
            if let Message::Text(text) = &message {
                self.tally.frame(text.as_str());
                if text.len() > super::ws::UNBUFFERED_ABOVE {
                    // Rare (a `room_joined` of a big room, a long message): boxed, so the
                    // connection's future is not sized for it.
                    return Box::pin(self.send_unbuffered(message)).await;
                }
            }
            let result = tokio::time::timeout_at(self.deadline, self.sink.feed(message)).await;
            self.outcome(result)
        }
    }

    /// Writes a large text message after what is buffered, past tungstenite's write
    /// buffer, which would otherwise keep that message's capacity for the connection's
    /// life (`gateway::split`).
    async fn send_unbuffered(&mut self, message: Message) -> Result<(), Stop> {
        let bytes = message.into_data();
        let result =
            tokio::time::timeout_at(self.deadline, self.sink.send_text_unbuffered(&bytes)).await;
        self.outcome(result)
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        let result = tokio::time::timeout_at(self.deadline, self.sink.flush()).await;
        self.outcome(result)
    }

    /// A socket write's result, bounded by the write timeout. Writes are not abandoned
    /// when the connection is asked to close: a frame half handed over would be lost.
    fn outcome(
        &self,
        result: Result<Result<(), tungstenite::Error>, tokio::time::error::Elapsed>,
    ) -> Result<(), Stop> {
        let session = &self.shared.session;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => {
                session.close(CloseReason::ClientGone);
                Err(Stop)
            }
            Err(_) => {
                crate::metrics::slow_consumer(crate::metrics::SlowCause::WriteTimeout);
                session.close(CloseReason::TooSlow);
                Err(Stop)
            }
        }
    }
}

fn close_message(reason: CloseReason) -> Message {
    Message::Close(Some(CloseFrame {
        code: reason.code().into(),
        reason: Utf8Bytes::from_static(reason.text()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future a four-argument fn returns, without calling it.
    fn future_size4<A, B, C, D, F: Future>(_: fn(A, B, C, D) -> F) -> usize {
        size_of::<F>()
    }

    /// The size of the future a five-argument fn returns, without calling it.
    fn future_size5<A, B, C, D, E, F: Future>(_: fn(A, B, C, D, E) -> F) -> usize {
        size_of::<F>()
    }

    /// Every connection's task holds `connection`'s future for its whole life, so its
    /// size is paid per connection (BENCHMARKS.md, "Memory per connection, turn 4"):
    /// with tokio's task header it must fit jemalloc's 2,048-byte class. A branch that
    /// awaits something large inline (a store query, the broker) grows it for every
    /// connection: box such branches, and take large values by reference or in an
    /// async block (an async fn's future holds each argument twice). The bounds are
    /// for this test's (debug) build: 1,792 bytes today, and a 2,048-byte task cell in
    /// release (measured; 2,560 with 256 bytes more in debug). `serve`, the
    /// authentication phase, is short-lived.
    #[test]
    fn the_connection_future_stays_small() {
        let size = future_size4(connection);
        eprintln!("connection future: {size} bytes");
        assert!(size <= 1856, "connection future is {size} bytes");
        let size = future_size5(serve);
        eprintln!("serve future: {size} bytes");
        assert!(size <= 1024, "serve future is {size} bytes");
    }

    #[test]
    fn refused_frames_are_named_by_their_ref() {
        let send = r#"{"type":"message_send","room_id":3,"client_msg_id":"c-1","content":"hi"}"#;
        assert_eq!(frame_reference(send).as_deref(), Some("c-1"));
        let typing = r#"{"type":"typing","room_id":3}"#;
        assert_eq!(frame_reference(typing).as_deref(), Some("3"));
        assert_eq!(frame_reference(r#"{"type":"ping"}"#), None);
        assert_eq!(frame_reference("{not json"), None);
    }
}
