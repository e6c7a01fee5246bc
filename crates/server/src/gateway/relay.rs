//! Sessions of the other wire protocols (Socket.IO at `/socket.io/`, the spaces API at
//! `/v1/ws/spaces/{space_id}`): each is a [`SessionHandle`] in this process's [`Hub`],
//! exactly like a `/ws` connection, so it receives every room's gap-free stream, and
//! it joins, sends and leaves through the same paths (`session::join_room`,
//! `rooms::send_message`). Only the last step differs: a [`Wire`] turns what the hub
//! queues into the protocol's own events.
//!
//! Admission is `/ws`'s too: a connection slot (`--max-connections`), one of the
//! user's connections (`--max-connections-per-user`), listed under its login session
//! so a logout anywhere closes it, closed when its access token expires.
//!
//! Costs beyond `/ws`: a relayed session decodes each non-chat frame it forwards, and
//! the wire encodes every frame for its own protocol (Socket.IO's encoder allocates per
//! socket). Chat frames reach a Socket.IO wire as the shared JSON bytes.
//!
//! [`Hub`]: super::Hub

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket_hub_protocol::{ErrorCode, Message, RoomId, Seq, ServerFrame, User};
use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::Gateway;
use super::live::{SessionGuard, UserGuard, close_revoked};
use super::outbound::{CloseReason, Outbound, Queue, SessionHandle};
use super::rate::RateLimit;
use super::seq::{SeqCursor, SeqStep};
use super::session::{ReplayEnd, replay_page};
use crate::auth::Claims;
use crate::broker::encode;
use crate::error::Error;
use crate::rooms::{self, RoomRef};

/// Messages in the history page a join without a `since` seq gets.
pub(crate) const HISTORY_PAGE: u32 = 50;
/// Least time between two typing notices of one session in one room.
const TYPING_INTERVAL: Duration = Duration::from_millis(1_000);

static NEXT_RELAY_ID: AtomicU64 = AtomicU64::new(1);

/// A relayed connection refused before its session starts, with the reason its
/// protocol reports (`connect_error` message, problem detail).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl From<Error> for Refusal {
    fn from(err: Error) -> Self {
        let code = err.code();
        let message = match err.to_frame(None) {
            ServerFrame::Error { message, .. } => message,
            _ => err.to_string(),
        };
        Self { code, message }
    }
}

/// What an admitted connection holds until it ends: its slot, the shutdown tracker's
/// token and its place among the user's connections.
pub(crate) struct Admission {
    claims: Claims,
    user: User,
    #[allow(dead_code, reason = "held for its Drop")]
    permit: OwnedSemaphorePermit,
    #[allow(dead_code, reason = "held for its Drop")]
    tracked: TaskTrackerToken,
    #[allow(dead_code, reason = "held for its Drop")]
    user_slot: UserGuard,
}

impl Admission {
    /// The authenticated user.
    pub(crate) fn user(&self) -> &User {
        &self.user
    }
}

/// Checks `token` and claims a connection for its user, with `/ws`'s rules.
pub(crate) async fn admit(gateway: &Gateway, token: Option<&str>) -> Result<Admission, Refusal> {
    if gateway.shutdown.is_cancelled() {
        return Err(Refusal {
            code: ErrorCode::Unavailable,
            message: "server is shutting down; connect to another instance".into(),
        });
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(Refusal {
            code: ErrorCode::Unauthorized,
            message: "missing access token".into(),
        });
    };
    let claims = crate::auth::authenticate(&gateway.auth, token).await?;
    let user = claims.user()?;
    let Ok(permit) = gateway.connection_slots.clone().try_acquire_owned() else {
        return Err(Refusal {
            code: ErrorCode::Unavailable,
            message: "connection limit reached; retry later".into(),
        });
    };
    let cap = gateway.config.max_connections_per_user;
    let Some(user_slot) = gateway.live.admit_user(user.id, cap) else {
        return Err(Refusal {
            code: ErrorCode::RateLimited,
            message: format!(
                "too many connections for this user (at most {cap}); close another tab or device"
            ),
        });
    };
    Ok(Admission {
        claims,
        user,
        permit,
        tracked: gateway.connections.token(),
        user_slot,
    })
}

/// A relayed session's state, shared by its reader (events from the client) and its
/// writer ([`write_loop`]).
pub(crate) struct Relay {
    pub(crate) gateway: Gateway,
    pub(crate) session: SessionHandle,
    /// Access token expiry (Unix seconds); moved by a re-authentication.
    expires_at: AtomicI64,
    expiry_changed: Notify,
    /// Rooms whose next acceptance answers with the latest history page rather than a
    /// replay (a join without a `since` seq).
    // std Mutex: set operations only, never held across an `.await`.
    history: Mutex<HashSet<RoomId>>,
    /// Its admission and login-session listing, released when the relay drops.
    #[allow(dead_code, reason = "held for its Drop")]
    held: (Admission, Option<SessionGuard>),
}

impl Relay {
    /// Starts the session of an admitted connection: its handle in the hub and the
    /// writer's queue.
    pub(crate) fn start(gateway: Gateway, admission: Admission) -> (Arc<Self>, Queue) {
        let id = NEXT_RELAY_ID.fetch_add(1, Ordering::Relaxed) | (1 << 62);
        let (session, queue) = SessionHandle::new(
            id,
            admission.user.clone(),
            gateway.config.outbound_queue,
            gateway.shutdown.child_token(),
        );
        let listed = admission.claims.sid.as_deref().map(|sid| {
            let guard = gateway.live.register(Some(Arc::from(sid)), session.clone());
            if gateway.auth.revocations.is_revoked(sid) {
                close_revoked(&session);
            }
            guard
        });
        metrics::gauge!("socket_hub_connections").increment(1.0);
        let relay = Arc::new(Self {
            expires_at: AtomicI64::new(admission.claims.exp),
            expiry_changed: Notify::new(),
            history: Mutex::new(HashSet::new()),
            gateway,
            session,
            held: (admission, listed),
        });
        (relay, queue)
    }

    /// The session's user.
    pub(crate) fn user(&self) -> &User {
        self.session.user()
    }

    /// Replaces the access token of a live session (same user only).
    pub(crate) async fn reauth(&self, token: &str) -> Result<(), Error> {
        let claims = crate::auth::authenticate(&self.gateway.auth, token).await?;
        if claims.user()?.id != self.user().id {
            return Err(Error::Forbidden("a connection cannot change user"));
        }
        self.expires_at.store(claims.exp, Ordering::Relaxed);
        self.expiry_changed.notify_one();
        Ok(())
    }

    /// Leaves every room; call once the client is gone.
    pub(crate) async fn leave_all(&self) {
        for room_id in self.session.take_rooms() {
            self.gateway.hub.leave(room_id, self.session.id()).await;
        }
    }

    fn wants_history(&self, room_id: RoomId, wants: bool) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if wants {
            history.insert(room_id);
        } else {
            history.remove(&room_id);
        }
    }

    fn take_history(&self, room_id: RoomId) -> bool {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&room_id)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        metrics::gauge!("socket_hub_connections").decrement(1.0);
    }
}

/// What a client asks of its relayed session, applied in order by one reader, with
/// `/ws`'s per-connection rate limit and typing throttle.
pub(crate) struct Requests {
    rate: RateLimit,
    last_typing: HashMap<RoomId, Instant>,
}

impl Requests {
    pub(crate) fn new(gateway: &Gateway) -> Self {
        Self {
            rate: RateLimit::new(gateway.config.rate_per_sec, gateway.config.rate_burst),
            last_typing: HashMap::new(),
        }
    }

    /// Counts one request against the connection's rate limit.
    pub(crate) fn admit(&mut self) -> Result<(), Error> {
        self.rate.take(Instant::now()).map_err(|retry_after| {
            crate::metrics::rate_limited();
            Error::RateLimited { retry_after }
        })
    }

    /// Joins the room `room` names (created public on first use by name). With `since`
    /// the writer replays every message after it, else it sends the latest page of
    /// history; live messages follow either way, gap-free.
    pub(crate) async fn join(
        &mut self,
        relay: &Relay,
        room: &RoomRef,
        since: Option<Seq>,
        access_code: Option<String>,
    ) -> Result<RoomId, Error> {
        let gateway = &relay.gateway;
        let room_id = rooms::resolve_room(&gateway.rooms, relay.user(), room).await?;
        relay.wants_history(room_id, since.is_none());
        let joined =
            super::session::join_room(gateway, &relay.session, room_id, since, access_code).await;
        if joined.is_err() {
            relay.wants_history(room_id, false);
        }
        joined.map(|()| room_id)
    }

    /// Stops receiving `room_id`.
    pub(crate) async fn leave(&mut self, relay: &Relay, room_id: RoomId) -> Result<(), Error> {
        if !relay.session.exit_room(room_id) {
            return Err(Error::NotJoined);
        }
        self.last_typing.remove(&room_id);
        relay.gateway.hub.leave(room_id, relay.session.id()).await;
        relay.session.reply(Outbound::Left {
            room_id,
            frame: encode(&ServerFrame::RoomLeft { room_id }),
        });
        Ok(())
    }

    /// Stores and fans out a message; returns it once durable.
    pub(crate) async fn send(
        &mut self,
        relay: &Relay,
        room_id: RoomId,
        client_msg_id: Option<&str>,
        content: &str,
    ) -> Result<Message, Error> {
        rooms::send_message(
            &relay.gateway.rooms,
            relay.user(),
            room_id,
            client_msg_id,
            content,
        )
        .await
    }

    /// Tells the room's other members the user is typing (at most once a second).
    pub(crate) fn typing(&mut self, relay: &Relay, room_id: RoomId) -> Result<(), Error> {
        if !relay.session.in_room(room_id) {
            return Err(Error::NotJoined);
        }
        let now = Instant::now();
        self.last_typing
            .retain(|_, at| now.duration_since(*at) < TYPING_INTERVAL);
        if let Entry::Vacant(entry) = self.last_typing.entry(room_id) {
            entry.insert(now);
            rooms::publish_typing(&relay.gateway.rooms, relay.user(), room_id);
        }
        Ok(())
    }
}

/// The client could not take a write (gone, or too slow): the session ends.
#[derive(Debug)]
pub(crate) struct Stop;

/// One protocol's way of writing the session's stream to its client.
pub(crate) trait Wire: Send {
    /// A chat message: the native `chat` frame's shared bytes
    /// (`{"type":"chat","message":{…}}`).
    fn chat(&mut self, frame: &str) -> impl Future<Output = Result<(), Stop>> + Send;

    /// Any other frame for the client (replies, presence, typing, errors).
    fn frame(&mut self, frame: ServerFrame) -> impl Future<Output = Result<(), Stop>> + Send;

    /// The room accepted the session. `history` (oldest first) when the join asked for
    /// the latest page; without it the missed messages follow as chats.
    fn joined(
        &mut self,
        room_id: RoomId,
        members: Vec<User>,
        last_seq: Seq,
        history: Option<Vec<Message>>,
    ) -> impl Future<Output = Result<(), Stop>> + Send;

    /// A keepalive probe, for wires whose protocol has none of its own.
    fn ping(&mut self) -> impl Future<Output = Result<(), Stop>> + Send {
        async { Ok(()) }
    }

    /// Ends the connection, telling the client why when its protocol can.
    fn close(&mut self, reason: CloseReason) -> impl Future<Output = ()> + Send;
}

/// Writes the session's queue to `wire` until the session closes, keeping each room's
/// stream gap-free (replaying from the store after a join with `since` or a hole),
/// closing it when the access token expires, and pinging every `ping` if given; then
/// flushes what is queued (when the reason allows) and closes the wire.
pub(crate) async fn write_loop<W: Wire>(
    relay: &Relay,
    mut queue: Queue,
    wire: &mut W,
    ping: Option<Duration>,
) {
    let closing = relay.session.closing().clone();
    let mut writer = Writer {
        relay,
        wire,
        delivered: HashMap::new(),
    };
    let mut pings = ping.map(|period| {
        let mut interval = tokio::time::interval_at(Instant::now() + period, period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let token_expiry = tokio::time::sleep(expiry_delay(relay.expires_at.load(Ordering::Relaxed)));
    tokio::pin!(token_expiry);
    loop {
        let ping_tick = async {
            match pings.as_mut() {
                Some(interval) => {
                    interval.tick().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            biased;
            () = closing.cancelled() => break,
            () = &mut token_expiry => {
                relay.session.reply(Outbound::Frame(encode(&Error::TokenExpired.to_frame(None))));
                relay.session.close(CloseReason::TokenExpired);
                break;
            }
            () = relay.expiry_changed.notified() => {
                let delay = expiry_delay(relay.expires_at.load(Ordering::Relaxed));
                token_expiry.as_mut().reset(Instant::now() + delay);
            }
            () = ping_tick => {
                if writer.wire.ping().await.is_err() {
                    relay.session.close(CloseReason::ClientGone);
                    break;
                }
            }
            item = queue.recv() => match item {
                Some(item) => {
                    if writer.write(item).await.is_err() {
                        relay.session.close(CloseReason::ClientGone);
                        break;
                    }
                }
                None => break,
            },
        }
    }
    let reason = relay
        .session
        .close_reason()
        .unwrap_or(CloseReason::ServiceRestart);
    crate::metrics::connection_closed(reason.code());
    if reason.flush_first() {
        let flush = async {
            while let Ok(item) = queue.try_recv() {
                if writer.write_closing(item).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(relay.gateway.config.write_timeout(), flush).await;
    }
    drop(queue);
    writer.wire.close(reason).await;
}

/// Time until just after the second the token expires in (`exp` is wall-clock time).
fn expiry_delay(expires_at_secs: i64) -> Duration {
    let now_secs = chrono::Utc::now().timestamp();
    let secs = u64::try_from(expires_at_secs - now_secs).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_millis(50)
}

struct Writer<'a, W> {
    relay: &'a Relay,
    wire: &'a mut W,
    /// Per joined room, the last seq written to the client.
    delivered: HashMap<RoomId, SeqCursor>,
}

impl<W: Wire> Writer<'_, W> {
    async fn write(&mut self, item: Outbound) -> Result<(), Stop> {
        match item {
            Outbound::Frame(frame) => match decode(&frame) {
                Some(frame) => self.wire.frame(frame).await,
                None => Ok(()),
            },
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
                self.wire.chat(frame.as_str()).await?;
                self.advance(room_id, seq);
                Ok(())
            }
            Outbound::Joined {
                room_id,
                since,
                last_seq,
                frame,
            } => {
                let members = match decode(&frame) {
                    Some(ServerFrame::RoomJoined { members, .. }) => members,
                    _ => Vec::new(),
                };
                if self.relay.take_history(room_id) {
                    let history = self.history(room_id, last_seq).await?;
                    self.wire
                        .joined(room_id, members, last_seq, Some(history))
                        .await?;
                    self.delivered.insert(room_id, SeqCursor::at(last_seq));
                    Ok(())
                } else {
                    self.wire.joined(room_id, members, last_seq, None).await?;
                    self.delivered.insert(room_id, SeqCursor::at(since));
                    Box::pin(self.replay(room_id, last_seq)).await
                }
            }
            Outbound::Left { room_id, frame } => {
                self.delivered.remove(&room_id);
                match decode(&frame) {
                    Some(frame) => self.wire.frame(frame).await,
                    None => Ok(()),
                }
            }
            Outbound::Notices { burst, position } => {
                let user_id = self.relay.session.user().id;
                for frame in burst.frames_for(user_id, position) {
                    if let Some(frame) = decode(frame) {
                        self.wire.frame(frame).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// While closing: replies, and chats that continue a room's stream without a
    /// replay (the client resumes the rest by seq).
    async fn write_closing(&mut self, item: Outbound) -> Result<(), Stop> {
        match item {
            Outbound::Chat { room_id, seq, .. }
                if !self
                    .delivered
                    .get(&room_id)
                    .is_some_and(|c| c.classify(seq) == SeqStep::Next) =>
            {
                Ok(())
            }
            Outbound::Joined { .. } => Ok(()),
            item => self.write(item).await,
        }
    }

    fn advance(&mut self, room_id: RoomId, seq: Seq) {
        if let Some(cursor) = self.delivered.get_mut(&room_id) {
            cursor.advance(seq);
        }
    }

    /// The latest page of the room up to `last_seq`, oldest first.
    async fn history(&mut self, room_id: RoomId, last_seq: Seq) -> Result<Vec<Message>, Stop> {
        let messages = &self.relay.gateway.rooms.messages;
        let viewer = self.relay.user().id;
        match messages
            .history(room_id, Some(last_seq + 1), HISTORY_PAGE, viewer)
            .await
        {
            Ok(mut page) => {
                page.reverse();
                Ok(page)
            }
            Err(err) => {
                tracing::warn!(room_id, error = %err, "history failed");
                self.relay.session.close(CloseReason::StoreUnavailable);
                Err(Stop)
            }
        }
    }

    /// Writes the stored messages after what this client has seen, up to `upto`.
    async fn replay(&mut self, room_id: RoomId, upto: Seq) -> Result<(), Stop> {
        loop {
            let after = self.delivered.get(&room_id).map_or(upto, |c| c.last());
            let (gateway, session) = (&self.relay.gateway, &self.relay.session);
            let page = match replay_page(gateway, session, room_id, after, upto).await {
                Ok(page) => page,
                Err(ReplayEnd::Done) => return Ok(()),
                Err(ReplayEnd::Stopped) => return Err(Stop),
            };
            for message in page {
                let seq = message.seq;
                let frame = encode(&ServerFrame::Chat { message });
                self.wire.chat(frame.as_str()).await?;
                self.advance(room_id, seq);
            }
        }
    }
}

/// A queued frame back as the value it was encoded from.
fn decode(frame: &str) -> Option<ServerFrame> {
    match serde_json::from_str(frame) {
        Ok(frame) => Some(frame),
        Err(err) => {
            tracing::warn!(error = %err, "undecodable frame for a relayed session");
            None
        }
    }
}

/// The stored message inside a native `chat` frame, borrowed as raw JSON: relayed
/// without decoding it into a [`Message`].
#[derive(serde::Deserialize)]
pub(crate) struct ChatFrame<'a> {
    #[serde(borrow)]
    pub(crate) message: &'a serde_json::value::RawValue,
}

impl<'a> ChatFrame<'a> {
    /// The `message` of a `chat` frame's bytes.
    pub(crate) fn parse(frame: &'a str) -> Option<Self> {
        serde_json::from_str(frame).ok()
    }
}
