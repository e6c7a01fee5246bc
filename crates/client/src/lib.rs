//! Rust client SDK for Socket-Hub.
//!
//! [`Client`] speaks the REST API; [`Connection`] is one WebSocket speaking the wire
//! protocol of [`socket_hub_protocol`]. The server's integration tests and the load
//! generator use this crate as a real client over real sockets.
//!
//! ```no_run
//! # async fn demo() -> Result<(), socket_hub_client::ClientError> {
//! use socket_hub_client::{Auth, Client, Connection};
//! use socket_hub_protocol::ClientFrame;
//!
//! let mut client = Client::new("http://127.0.0.1:8080");
//! let session = client.register("ada", "correct horse").await?;
//! let room = client.create_room("general", false, None).await?;
//! let mut ws = Connection::connect(client.base_url(), Auth::Header(session.access_token)).await?;
//! ws.send(&ClientFrame::JoinRoom { room_id: room.room.id, since_seq: None, access_code: None }).await?;
//! # Ok(()) }
//! ```

mod connection;
mod messages;
mod rest;

pub use connection::{Auth, ConnectOptions, Connection, Event, RawEvent, RawText};
pub use rest::Client;
/// The WebSocket settings [`Connection::connect_socket`] takes, re-exported so callers
/// need not match this crate's tungstenite version.
pub use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use socket_hub_protocol::rest::Problem;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error status; `problem` is its problem document.
    #[error("HTTP {status}: {}", problem.as_ref().map_or("", |p| p.detail.as_str()))]
    Http {
        status: u16,
        problem: Option<Problem>,
    },
    /// The request or connection failed below HTTP.
    #[error("transport: {0}")]
    Transport(String),
    /// The server sent something this SDK cannot decode.
    #[error("decode: {0}")]
    Decode(String),
    /// Nothing arrived in time.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The WebSocket was closed.
    #[error("connection closed (code {code:?})")]
    Closed { code: Option<u16> },
}

impl ClientError {
    /// The HTTP status, for `Http` errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The problem code (e.g. `"refresh_reused"`), for `Http` errors with a body.
    pub fn code(&self) -> Option<socket_hub_protocol::ErrorCode> {
        match self {
            Self::Http {
                problem: Some(p), ..
            } => Some(p.code),
            _ => None,
        }
    }
}
