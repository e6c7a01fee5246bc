//! Gateway service: the WebSocket endpoint `/ws`.
//!
//! Refuses handshakes from foreign browser origins (403, see `crate::browser`),
//! authenticates the handshake (header, query, subprotocol) or the first frame, then
//! hands the connection to [`session`], which joins rooms through this process's
//! [`Hub`].
//!
//! Slots (`--max-connections`) are shared so no one holder takes them all (`live`): a
//! handshake without a token counts against its client address and against the share
//! of slots unauthenticated connections may hold, until its `auth` frame arrives
//! (`--auth-timeout-ms`); an authenticated connection counts against its user's cap and
//! is listed under its login session, which a logout on any instance closes (4401).
//!
//! Two adapters speak other protocols over the same hub ([`relay`]): Socket.IO at
//! `/socket.io/` ([`socketio`]) and the seed's spaces API ([`spaces`]).

#[doc(hidden)]
pub mod bench_support;
mod early;
mod halves;
mod hub;
mod live;
mod notices;
mod outbound;
mod rate;
mod relay;
mod seq;
mod session;
pub mod socketio;
pub mod spaces;
mod split;
mod ws;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use socket_hub_protocol::{BEARER_SUBPROTOCOL_PREFIX, ErrorCode};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use hub::Hub;

use crate::auth::{Auth, bearer_token};
use crate::browser::check_origin;
use crate::client_addr::ClientAddr;
use crate::config::Config;
use crate::error::{Error, problem_response};
use crate::presence::Presence;
use crate::rooms::Rooms;

/// What `/ws` and its sessions need: the gateway's own slice of the app state (the
/// services it calls into included), so the gateway depends on nothing above it.
/// One pointer: every connection's session keeps a clone for its whole life, so a
/// clone is one reference count, not a copy of every service handle (−192 B of heap
/// per connection; BENCHMARKS.md, "Memory per connection, turn 4").
#[derive(Clone)]
pub struct Gateway(Arc<GatewayState>);

impl std::ops::Deref for Gateway {
    type Target = GatewayState;

    fn deref(&self) -> &GatewayState {
        &self.0
    }
}

/// The state behind a [`Gateway`].
pub struct GatewayState {
    /// This process's WebSocket rooms and their local members.
    pub hub: Arc<Hub>,
    /// Checks the handshake token, the first `auth` frame and re-auth.
    pub auth: Auth,
    /// Joining, sending, typing and read markers; its store replays history.
    pub rooms: Rooms,
    /// Timeouts, limits and queue sizes of a connection.
    pub config: Arc<Config>,
    /// Cancelled on SIGTERM/Ctrl-C: every connection closes with 1012.
    pub shutdown: CancellationToken,
    /// Tracks live WebSocket connections so shutdown can wait for them to drain.
    pub connections: TaskTracker,
    /// Caps concurrent WebSocket connections.
    pub connection_slots: Arc<Semaphore>,
    /// Who holds the slots: unauthenticated ones per address, per user, per session.
    pub(crate) live: Arc<live::Live>,
    /// Counts each connection in global presence; `presence` frames set it.
    pub presence: Presence,
}

impl Gateway {
    /// The gateway's own state over `hub`, `auth` and `rooms`, sized by `config`.
    pub fn new(
        hub: Arc<Hub>,
        auth: Auth,
        rooms: Rooms,
        presence: Presence,
        config: Arc<Config>,
    ) -> Self {
        Self(Arc::new(GatewayState {
            hub,
            auth,
            rooms,
            presence,
            connection_slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            live: Arc::default(),
        }))
    }
}

/// Closes this process's sockets of every login session revoked anywhere, until
/// shutdown. Spawned once per process.
pub async fn close_revoked_sessions(gateway: Gateway) {
    let revocations = gateway.auth.revocations.clone();
    let mut revoked = revocations.watch();
    loop {
        let next = tokio::select! {
            () = gateway.shutdown.cancelled() => return,
            next = revoked.recv() => next,
        };
        match next {
            Ok(sid) => {
                let closed = gateway.live.close_session(&sid);
                if closed > 0 {
                    tracing::debug!(closed, "closed the sockets of a revoked session");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => gateway
                .live
                .close_sessions_where(|sid| revocations.is_revoked(sid)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Hands frames published for users (notifications, presence changes) on any instance
/// to this process's sockets of those users, until shutdown: a lookup per recipient in
/// the per-user index, never a scan of every socket. Spawned once per process. A frame missed
/// (lag) reaches the user from the store on their next connect.
pub async fn deliver_user_frames(gateway: Gateway) {
    let mut frames = gateway.rooms.broker.user_frames();
    loop {
        let next = tokio::select! {
            () = gateway.shutdown.cancelled() => return,
            next = frames.recv() => next,
        };
        match next {
            Ok((users, frame)) => {
                // Sockets collected under the lock, pushed after it is released.
                for session in gateway.live.sockets_of(&users) {
                    session.push(outbound::Outbound::Frame(frame.clone()));
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "user frames dropped; delivered on next connect");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// A reusable timer that fires at `until`: resets the one in `slot`, or makes it the
/// first time (so a room or connection that never waits never allocates one).
fn set_timer(
    slot: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    until: tokio::time::Instant,
) {
    match slot {
        Some(timer) => timer.as_mut().reset(until),
        None => *slot = Some(Box::pin(tokio::time::sleep_until(until))),
    }
}

/// Bytes read from the socket at a time. Client frames (join, send, typing) mostly fit;
/// larger ones grow the buffer as needed. Measured per idle connection (BENCHMARKS.md):
/// 4 KiB cost 3 KB more than 1 KiB, and 512 B saves 380 B of RSS over 1 KiB.
const READ_BUFFER: usize = 512;
/// Bytes of outgoing frames buffered before tungstenite writes to the socket on its own.
/// The writer flushes after each batch (`session::BATCH_BYTES`, as large) anyway; a
/// threshold below a batch's size would turn that one write into one `sendto` per KiB.
/// The buffer starts empty and grows only as far as a burst fills it (and keeps that
/// capacity), so an idle connection does not pay for it and a busy one keeps at most
/// this much: measured at 64 KiB, 1000 busy connections kept ~55 MB.
const WRITE_BUFFER: usize = 8 * 1024;

/// The `/ws` route.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Gateway: FromRef<S>,
{
    Router::new()
        .route("/ws", get(upgrade))
        .merge(spaces::routes())
}

async fn upgrade(
    State(gateway): State<Gateway>,
    ClientAddr(client): ClientAddr,
    _origin: AllowedOrigin,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    handshake: ws::Handshake,
) -> Response {
    if gateway.shutdown.is_cancelled() {
        return problem_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "server is shutting down; connect to another instance".into(),
        );
    }
    let Ok(permit) = gateway.connection_slots.clone().try_acquire_owned() else {
        return problem_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "connection limit reached; retry later".into(),
        );
    };
    let token = bearer_token(&headers)
        .or_else(|| query.get("token").map(String::as_str))
        .or_else(|| subprotocol_token(&headers));
    let auth = match token {
        Some(token) => Some(
            crate::auth::authenticate(&gateway.auth, token)
                .await
                .map(Box::new),
        ),
        None => None,
    };
    // No token yet: a slot held for nobody, capped per address and in total.
    let pending = if auth.is_none() {
        let config = &gateway.config;
        match gateway.live.admit_pending(
            client,
            config.max_unauthenticated_per_address,
            config.max_unauthenticated(),
        ) {
            Ok(guard) => Some(Box::new(guard)),
            Err(refused) => {
                tracing::debug!(%client, ?refused, "unauthenticated upgrade refused");
                return Error::RateLimited {
                    retry_after: config.auth_timeout(),
                }
                .into_response();
            }
        }
    } else {
        None
    };
    // Counted from the upgrade response on, so a shutdown waits for this connection
    // even before its session starts.
    let tracked = gateway.connections.token();
    let config = &gateway.config;
    let max_frame = config.max_frame_bytes;
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        // Bounded: a frame larger than this cannot be queued at all.
        .max_write_buffer_size(WRITE_BUFFER + 2 * max_frame)
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame));
    // No `async move` wrapper and the socket split right here: every future that takes
    // the socket by value keeps its own copy for the connection's whole life, and this
    // one runs as long as the connection.
    handshake.accept(config, move |socket| {
        let (sink, stream) = ws::split(socket);
        session::serve(
            gateway,
            sink,
            stream,
            auth,
            session::Held {
                permit,
                tracked,
                pending,
            },
        )
    })
}

/// Proof that the handshake's `Origin` is allowed (see [`check_origin`]): extracted
/// before the upgrade, so a page of another site gets 403 and never a socket carrying
/// the user's credentials. SDKs send no `Origin` and pass.
struct AllowedOrigin;

impl<S> FromRequestParts<S> for AllowedOrigin
where
    S: Send + Sync,
    Gateway: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let gateway = Gateway::from_ref(state);
        check_origin(&parts.headers, &parts.uri, &gateway.config.allowed_origins)
            .map(|()| Self)
            .map_err(IntoResponse::into_response)
    }
}

/// The token in a `Sec-WebSocket-Protocol: socket-hub.v1, bearer.<token>` offer.
fn subprotocol_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|entry| entry.trim().strip_prefix(BEARER_SUBPROTOCOL_PREFIX))
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn token_is_found_among_offered_subprotocols() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("socket-hub.v1, bearer.abc.def.ghi"),
        );
        assert_eq!(subprotocol_token(&headers), Some("abc.def.ghi"));
    }
}
