//! The Socket-Hub wire protocol.
//!
//! Every WebSocket frame and every REST body is defined here once, so the server, the
//! Rust SDK and the load generator cannot drift apart. This crate knows nothing of the
//! server's HTTP stack or its storage; with the `openapi` feature it also derives the
//! schemas the server publishes at `/api/openapi.json`.
//!
//! Layout:
//! - [`frames`]: WebSocket frames, client to server ([`ClientFrame`]) and back
//!   ([`ServerFrame`]), plus close codes and error codes.
//! - [`rest`]: request and response bodies of the REST API under `/api/v1`.
//! - [`model`]: the chat domain shared by both: users, rooms, messages.
//! - [`lifecycle`]: edits, deletions, replies and reactions, and the [`lifecycle::fold`]
//!   that applies their events to what a client shows.
//! - [`attachments`]: files attached to messages, uploads and their download links.

pub mod attachments;
pub mod frames;
pub mod lifecycle;
pub mod model;
pub mod rest;
#[cfg(any(test, feature = "ts"))]
pub mod ts;

pub use attachments::{Attachment, Upload, UploadId, UploadLink};
pub use frames::{ClientFrame, CloseCode, ErrorCode, ServerFrame};
pub use model::{
    Member, Message, Notification, NotificationKind, PresenceStatus, Role, Room, RoomEvent, RoomId,
    Seq, User, UserId,
};

/// The WebSocket subprotocol the server speaks; browsers must offer it alongside a
/// `bearer.<token>` entry when they authenticate by subprotocol.
pub const SUBPROTOCOL: &str = "socket-hub.v1";

/// Prefix of the subprotocol entry that carries an access token, since browsers cannot
/// set an `Authorization` header on a WebSocket.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "bearer.";
