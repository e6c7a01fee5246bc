//! The WebSocket handshake and socket type of `/ws`, done here rather than through
//! axum's `WebSocketUpgrade` because what a connection keeps for its whole life is
//! paid per connection (BENCHMARKS.md, "Memory per connection"):
//!
//! - the session future is spawned as its own task, so the task cell holds that future
//!   alone (axum's upgrade wrapper kept its own copies of the handshake state beside it);
//! - the session writes large frames past tungstenite's write buffer ([`split`]), so one
//!   large frame (a `room_joined` listing a big room's online members) does not leave
//!   that buffer at the frame's capacity for the rest of the connection; axum's socket
//!   does not give its stream out.
//!
//! The handshake is RFC 6455 over HTTP/1.1 `Upgrade`, with the same checks and statuses
//! as axum's extractor.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use socket_hub_protocol::SUBPROTOCOL;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// An upgraded `/ws` connection.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;
pub(crate) use super::split::{Sink, Stream, split};

/// Text messages longer than this bypass tungstenite's write buffer
/// ([`Sink::send_text_unbuffered`]). With the 4-byte header of such a frame, what the
/// buffer ever holds for a connection that only gets its `ready` and a `room_joined`
/// stays in the 512 B size class (chat frames are smaller).
pub(crate) const UNBUFFERED_ABOVE: usize = 508;

/// A valid WebSocket upgrade request to `/ws`, not yet answered.
pub(crate) struct Handshake {
    accept: HeaderValue,
    /// [`SUBPROTOCOL`] when the client offered it.
    protocol: Option<HeaderValue>,
    on_upgrade: OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        if parts.method != Method::GET {
            return Err(reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "request method must be `GET`",
            ));
        }
        let headers = &parts.headers;
        if !header_has_token(headers, header::CONNECTION, "upgrade") {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ));
        }
        if !header_has_token(headers, header::UPGRADE, "websocket") {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ));
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ));
        }
        let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ));
        };
        let accept = HeaderValue::try_from(derive_accept_key(key.as_bytes()))
            .map_err(|_| reject(StatusCode::BAD_REQUEST, "invalid `Sec-WebSocket-Key`"))?;
        let protocol = headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .any(|offered| offered.trim() == SUBPROTOCOL)
            .then(|| HeaderValue::from_static(SUBPROTOCOL));
        let Some(on_upgrade) = parts.extensions.remove::<OnUpgrade>() else {
            return Err(reject(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ));
        };
        Ok(Self {
            accept,
            protocol,
            on_upgrade,
        })
    }
}

impl Handshake {
    /// Answers 101 and, once hyper hands over the connection, spawns `serve(socket)` as
    /// a task of its own: the task lives as long as the connection, so it holds only
    /// `serve`'s future, not this upgrade's.
    pub(crate) fn accept<F, Fut>(self, config: WebSocketConfig, serve: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Self {
            accept,
            protocol,
            on_upgrade,
        } = self;
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                tracing::debug!("websocket upgrade failed");
                return;
            };
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            tokio::spawn(serve(socket));
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        if let Some(protocol) = protocol {
            headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocol);
        }
        response
    }
}

fn reject(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// Whether a comma-separated header lists `token` (case-insensitive).
fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|entry| entry.trim().eq_ignore_ascii_case(token))
}
