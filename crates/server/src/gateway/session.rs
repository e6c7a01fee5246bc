//! One WebSocket connection: authenticate, then a reader and a writer that run until
//! either asks to close, then one close frame with a code that says why.
//!
//! The reader parses client frames and answers through the same bounded queue the
//! rooms feed, so replies and room traffic reach the socket in one order. The writer
//! is the only code touching the socket's sending half: it keeps every joined room's
//! chat stream gap-free (replaying from the store after a join with `since_seq`),
//! pings, enforces the keepalive and token expiry, and gives up on a client whose
//! writes stall.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use socket_hub_protocol::{ClientFrame, CloseCode, ErrorCode, RoomId, Seq, ServerFrame, User};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use super::hub::encode;
use super::outbound::{Outbound, SessionHandle};
use super::rate::RateLimit;
use crate::auth::Claims;
use crate::error::Error;
use crate::rooms;
use crate::state::AppState;

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
/// Fewest milliseconds between two typing notices of one connection in one room.
const TYPING_INTERVAL_MS: u64 = 1_000;

static NEXT_SESSION_ID: AtomicU64 = AtomicU64::new(1);

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// How the connection presented its token at the handshake, if it did.
pub(crate) type HandshakeAuth = Option<Result<Claims, Error>>;

/// Serves one upgraded connection to the end.
pub(crate) async fn serve(
    state: AppState,
    socket: WebSocket,
    auth: HandshakeAuth,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    metrics::gauge!("socket_hub_connections").increment(1.0);
    let (mut sink, mut stream) = socket.split();
    let claims = match authenticate(&state, &mut stream, auth).await {
        Ok(claims) => claims,
        Err(err) => {
            let frame = encode(&err.to_frame(None));
            let _ = tokio::time::timeout(state.config.write_timeout(), async {
                sink.send(Message::Text(frame)).await?;
                sink.send(close_message(CloseCode::UNAUTHORIZED, "unauthorized"))
                    .await
            })
            .await;
            metrics::gauge!("socket_hub_connections").decrement(1.0);
            return;
        }
    };
    match claims.user() {
        Ok(user) => run(state, sink, stream, user, claims.exp).await,
        Err(_) => {
            let _ = sink
                .send(close_message(CloseCode::UNAUTHORIZED, "unauthorized"))
                .await;
        }
    }
    metrics::gauge!("socket_hub_connections").decrement(1.0);
}

/// Takes the handshake token, or waits (bounded) for an `auth` frame.
async fn authenticate(
    state: &AppState,
    stream: &mut Stream,
    auth: HandshakeAuth,
) -> Result<Claims, Error> {
    if let Some(result) = auth {
        return result;
    }
    let first = tokio::time::timeout(state.config.auth_timeout(), async {
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
        Ok(ClientFrame::Auth { token }) => crate::auth::authenticate(state, &token).await,
        _ => Err(Error::Unauthorized),
    }
}

/// What the reader and writer share.
struct Shared {
    state: AppState,
    session: SessionHandle,
    /// Unix ms of the last frame from the client (keepalive).
    last_seen: AtomicI64,
    /// Access token expiry (Unix seconds); refreshed by `auth` frames.
    expires_at: watch::Sender<i64>,
}

async fn run(state: AppState, sink: Sink, mut stream: Stream, user: User, exp: i64) {
    let close = state.shutdown.child_token();
    let id = NEXT_SESSION_ID.fetch_add(1, Ordering::Relaxed);
    let (session, queue) = SessionHandle::new(id, user.clone(), state.config.outbound_queue, close);
    let (expires_at, expiry) = watch::channel(exp);
    let shared = Arc::new(Shared {
        state,
        session,
        last_seen: AtomicI64::new(now_ms()),
        expires_at,
    });
    shared.reply(&ServerFrame::Ready { user });
    tracing::debug!(session = id, "connection ready");
    // Both halves watch the same close token, so whichever ends first ends the other,
    // and the writer still gets to send the close frame.
    let (broken, ()) = tokio::join!(
        read_loop(&shared, &mut stream),
        write_loop(&shared, sink, queue, expiry)
    );
    if broken {
        tokio::time::sleep(CLOSE_LINGER).await;
    } else if shared.session.close_code() != Some(1000) {
        linger(&mut stream).await;
    }
    tracing::debug!(session = id, code = ?shared.session.close_code(), "connection closed");
}

impl Shared {
    fn reply(&self, frame: &ServerFrame) {
        self.session.push(Outbound::Frame(encode(frame)));
    }

    fn reply_error(&self, err: &Error, reference: Option<String>) {
        self.reply(&err.to_frame(reference));
    }
}

// ---------------------------------------------------------------- reader

/// Per-connection state only the reader touches.
struct Reader {
    rate: RateLimit,
    /// Rejected frames since `strikes_since`.
    strikes: u32,
    strikes_since: Instant,
    joined: HashSet<RoomId>,
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

/// Reads client frames until the connection ends; `true` when the stream was left
/// unreadable (an oversized frame).
async fn read_loop(shared: &Shared, stream: &mut Stream) -> bool {
    let config = &shared.state.config;
    let mut reader = Reader {
        rate: RateLimit::new(config.rate_per_sec, config.rate_burst),
        strikes: 0,
        strikes_since: Instant::now(),
        joined: HashSet::new(),
        last_typing: HashMap::new(),
    };
    let closing = shared.session.closing().clone();
    let mut broken = false;
    loop {
        let next = tokio::select! {
            _ = closing.cancelled() => break,
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
                shared.session.close(CloseCode::TOO_BIG);
                // The rest of the oversized frame cannot be read past; keep the socket
                // open a moment so the error and close frame arrive before the reset.
                broken = true;
                break;
            }
            // The client vanished (reset, protocol error): nobody to tell.
            Some(Err(_)) => break,
            None => break,
        };
        shared.last_seen.store(now_ms(), Ordering::Relaxed);
        let is_data = matches!(message, Message::Text(_) | Message::Binary(_));
        if is_data && !reader.admit(shared) {
            continue;
        }
        match message {
            Message::Text(text) => reader.on_text(shared, &text).await,
            Message::Binary(_) => {
                shared.reply(&ServerFrame::error(
                    ErrorCode::MalformedJson,
                    "binary frames are not supported; send JSON text frames",
                    None,
                ));
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    if !closing.is_cancelled() {
        // The client ended it (close frame, EOF, reset): a normal close. Otherwise the
        // server asked (kick, expiry, shutdown) and the writer knows the code.
        shared.session.close(1000);
    }
    // Settle every room this connection was in, whatever ended it.
    for room_id in reader.joined.drain() {
        shared.state.hub.leave(room_id, shared.session.id()).await;
    }
    broken
}

fn is_too_big(err: &axum::Error) -> bool {
    let text = err.to_string();
    text.contains("too long") || text.contains("too big") || text.contains("Space limit")
}

impl Reader {
    /// Applies the rate limit; a client that keeps flooding is disconnected.
    fn admit(&mut self, shared: &Shared) -> bool {
        let now = Instant::now();
        if self.rate.allow(now) {
            return true;
        }
        if now.duration_since(self.strikes_since) > FLOOD_WINDOW {
            self.strikes = 0;
            self.strikes_since = now;
        }
        self.strikes += 1;
        metrics::counter!("socket_hub_rate_limited_total").increment(1);
        if self.strikes >= FLOOD_STRIKES {
            shared.session.close(CloseCode::POLICY_VIOLATION);
        } else if self.strikes == 1 || self.strikes.is_multiple_of(10) {
            // One notice per burst of rejections, not one per frame.
            shared.reply_error(&Error::RateLimited, None);
        }
        false
    }

    async fn on_text(&mut self, shared: &Shared, text: &Utf8Bytes) {
        let frame = match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(frame) => frame,
            Err(err) => {
                shared.reply(&parse_error(&err));
                return;
            }
        };
        match frame {
            ClientFrame::Auth { token } => self.reauth(shared, &token).await,
            ClientFrame::Ping => shared.reply(&ServerFrame::Pong),
            ClientFrame::JoinRoom {
                room_id,
                since_seq,
                access_code,
            } => {
                if let Err(err) = self.join(shared, room_id, since_seq, access_code).await {
                    shared.reply_error(&err, Some(room_id.to_string()));
                }
            }
            ClientFrame::LeaveRoom { room_id } => {
                if self.joined.remove(&room_id) {
                    shared.state.hub.leave(room_id, shared.session.id()).await;
                    // Through the writer, which then drops any chat of the room in flight.
                    shared.session.push(Outbound::Left {
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
            } => {
                let user = shared.session.user();
                match rooms::send_message(
                    &shared.state,
                    user,
                    room_id,
                    Some(&client_msg_id),
                    &content,
                )
                .await
                {
                    Ok(message) => shared.reply(&ServerFrame::Ack {
                        client_msg_id,
                        message,
                    }),
                    Err(err) => shared.reply_error(&err, Some(client_msg_id)),
                }
            }
            ClientFrame::Typing { room_id } => self.typing(shared, room_id).await,
            ClientFrame::Read { room_id, seq } => {
                let user_id = shared.session.user().id;
                if let Err(err) = shared
                    .state
                    .store
                    .rooms
                    .mark_read(room_id, user_id, seq)
                    .await
                {
                    shared.reply_error(&err.into(), Some(room_id.to_string()));
                }
            }
        }
    }

    async fn reauth(&self, shared: &Shared, token: &str) {
        let user = shared.session.user();
        match crate::auth::authenticate(&shared.state, token)
            .await
            .and_then(|c| Ok((c.user()?, c.exp)))
        {
            Ok((token_user, exp)) if token_user.id == user.id => {
                shared.expires_at.send_replace(exp);
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
        if self.joined.remove(&room_id) {
            // Joining again (e.g. to resume from another seq, or after losing
            // membership, which the room settles on its own) starts from a clean slate.
            shared.state.hub.leave(room_id, shared.session.id()).await;
        }
        let user = shared.session.user();
        rooms::ensure_member(&shared.state, user, room_id, access_code).await?;
        shared
            .state
            .hub
            .join(room_id, shared.session.clone(), since)
            .await?;
        self.joined.insert(room_id);
        Ok(())
    }

    async fn typing(&mut self, shared: &Shared, room_id: RoomId) {
        if !self.joined.contains(&room_id) {
            shared.reply_error(&Error::NotJoined, Some(room_id.to_string()));
            return;
        }
        let now = Instant::now();
        let recent = self
            .last_typing
            .get(&room_id)
            .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(TYPING_INTERVAL_MS));
        if recent {
            return;
        }
        self.last_typing.insert(room_id, now);
        rooms::publish_typing(&shared.state, shared.session.user(), room_id).await;
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
    sink: Sink,
    /// Per joined room, the highest seq written to the socket.
    delivered: HashMap<RoomId, Seq>,
}

/// Why the writer stopped early.
struct Stop;

async fn write_loop(
    shared: &Shared,
    sink: Sink,
    mut queue: mpsc::Receiver<Outbound>,
    mut expiry: watch::Receiver<i64>,
) {
    let config = &shared.state.config;
    let closing = shared.session.closing().clone();
    let mut writer = Writer {
        shared,
        sink,
        delivered: HashMap::new(),
    };
    let mut ping = tokio::time::interval(config.ping_interval());
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let keepalive_ms = i64::try_from(config.keepalive_timeout().as_millis()).unwrap_or(i64::MAX);
    let token_expiry = tokio::time::sleep(expiry_delay(*expiry.borrow_and_update()));
    tokio::pin!(token_expiry);
    loop {
        // Timers come before the queue so that steady traffic cannot starve them.
        tokio::select! {
            biased;
            _ = closing.cancelled() => break,
            _ = &mut token_expiry => {
                shared.reply_error(&Error::TokenExpired, None);
                // Flush what is queued (ending with the error) before closing.
                while let Ok(item) = queue.try_recv() {
                    if writer.write_item(item).await.is_err() {
                        break;
                    }
                }
                shared.session.close(CloseCode::UNAUTHORIZED);
                break;
            }
            Ok(()) = expiry.changed() => {
                let delay = expiry_delay(*expiry.borrow_and_update());
                token_expiry.as_mut().reset(tokio::time::Instant::now() + delay);
            }
            _ = ping.tick() => {
                if now_ms() - shared.last_seen.load(Ordering::Relaxed) > keepalive_ms {
                    shared.session.close(CloseCode::KEEPALIVE_TIMEOUT);
                    break;
                }
                if writer.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            item = queue.recv() => match item {
                Some(item) => {
                    if writer.write_item(item).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    let code = shared
        .session
        .close_code()
        .unwrap_or(CloseCode::SERVICE_RESTART);
    if code != CloseCode::TRY_AGAIN_LATER {
        // Say why before closing: queued errors (frame too large, flooding) go first.
        // A client too slow to read gets no such courtesy.
        let flush = async {
            while let Ok(item) = queue.try_recv() {
                if writer.write_item_unchecked(item).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(config.write_timeout(), flush).await;
    }
    let reason = close_reason(code);
    // Best effort: the client may already be gone, or too slow to take even this.
    let _ = tokio::time::timeout(
        config.write_timeout(),
        writer.sink.send(close_message(code, reason)),
    )
    .await;
}

fn expiry_delay(expires_at_secs: i64) -> Duration {
    let now_secs = now_ms() / 1000;
    let secs = u64::try_from(expires_at_secs - now_secs).unwrap_or(0);
    // Wake just after the second the token expires in.
    Duration::from_secs(secs) + Duration::from_millis(50)
}

impl Writer<'_> {
    async fn write_item(&mut self, item: Outbound) -> Result<(), Stop> {
        match item {
            Outbound::Frame(frame) => self.send(Message::Text(frame)).await,
            Outbound::Chat {
                room_id,
                seq,
                frame,
            } => {
                let Some(&delivered) = self.delivered.get(&room_id) else {
                    return Ok(()); // left the room; a straggler
                };
                if seq <= delivered {
                    return Ok(());
                }
                if seq > delivered + 1 {
                    self.replay(room_id, seq - 1).await?;
                }
                self.send(Message::Text(frame)).await?;
                self.delivered.insert(room_id, seq);
                Ok(())
            }
            Outbound::Joined {
                room_id,
                since,
                last_seq,
                frame,
            } => {
                self.send(Message::Text(frame)).await?;
                self.delivered.insert(room_id, since);
                self.replay(room_id, last_seq).await
            }
            Outbound::Left { room_id, frame } => {
                self.delivered.remove(&room_id);
                self.send(Message::Text(frame)).await
            }
        }
    }

    /// Writes the stored messages after what this connection has seen, up to `upto`.
    async fn replay(&mut self, room_id: RoomId, upto: Seq) -> Result<(), Stop> {
        let store = &self.shared.state.store;
        loop {
            let after = self.delivered.get(&room_id).copied().unwrap_or(upto);
            if after >= upto {
                return Ok(());
            }
            let page = match store.messages.after(room_id, after, REPLAY_PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    // Without the store the stream cannot be made whole: make the client
                    // resume later instead of showing it a hole.
                    tracing::warn!(room_id, error = %err, "replay failed");
                    self.shared.session.close(CloseCode::TRY_AGAIN_LATER);
                    return Err(Stop);
                }
            };
            if page.is_empty() {
                return Ok(());
            }
            for message in page {
                if message.seq > upto {
                    return Ok(());
                }
                let seq = message.seq;
                self.send(Message::Text(encode(&ServerFrame::Chat { message })))
                    .await?;
                self.delivered.insert(room_id, seq);
            }
        }
    }

    /// Writes a queued reply while closing: only plain frames, since rooms are over.
    async fn write_item_unchecked(&mut self, item: Outbound) -> Result<(), Stop> {
        match item {
            Outbound::Frame(frame) => self.sink.send(Message::Text(frame)).await.map_err(|_| Stop),
            Outbound::Chat { .. } | Outbound::Joined { .. } | Outbound::Left { .. } => Ok(()),
        }
    }

    /// One socket write, bounded by the write timeout and abandoned on close.
    async fn send(&mut self, message: Message) -> Result<(), Stop> {
        let session = &self.shared.session;
        let timeout = self.shared.state.config.write_timeout();
        tokio::select! {
            result = self.sink.send(message) => result.map_err(|_| {
                session.close(1000);
                Stop
            }),
            _ = tokio::time::sleep(timeout) => {
                metrics::counter!("socket_hub_slow_consumers_total").increment(1);
                session.close(CloseCode::TRY_AGAIN_LATER);
                Err(Stop)
            }
            _ = session.closing().cancelled() => Err(Stop),
        }
    }
}

fn close_reason(code: u16) -> &'static str {
    match code {
        CloseCode::GOING_AWAY | CloseCode::SERVICE_RESTART => {
            "server restarting; reconnect and resume"
        }
        CloseCode::POLICY_VIOLATION => "policy violation (flooding)",
        CloseCode::TOO_BIG => "frame too large",
        CloseCode::TRY_AGAIN_LATER => "too slow to keep up; reconnect and resume",
        CloseCode::UNAUTHORIZED => "unauthorized",
        CloseCode::KEEPALIVE_TIMEOUT => "keepalive timeout",
        _ => "",
    }
}

fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
