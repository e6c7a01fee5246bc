//! Socket-Hub: a self-hosted real-time chat server.
//!
//! Layout, top to bottom; a module uses only modules below it, so there is no cycle:
//! - [`app`]: wiring; `App::build(config)` then `run_until_stopped()`.
//! - Under it, the process-level routes and helpers: [`ops`] (health, readiness,
//!   metrics, and the [`openapi`] document), [`web`] (the embedded client),
//!   [`telemetry`].
//! - [`state`]: `AppState`, the router's state, which holds each service's context and
//!   hands it to that service's handlers (`FromRef`); and `Store`, the services'
//!   stores over one database.
//! - [`gateway`]: the WebSocket endpoint and this process's live rooms (`Gateway`).
//! - [`uploads`]: attachments: the blob store, upload and download routes, thumbnails
//!   (`Uploads`). Its `store` (the `uploads` table) sits below [`rooms`], which claims
//!   uploads when a message attaches them.
//! - [`rooms`]: rooms, memberships, messages: routes, sending, and their queries
//!   (`Rooms`).
//! - [`presence`]: who is online, away or offline, told to people who share a room
//!   (`Presence`); used by the gateway, rooms and users.
//! - [`users`], then [`auth`] (accounts, credentials, tokens, the `AuthUser`
//!   extractor; `Auth`): routes and their queries.
//! - [`http`], [`client_addr`], [`browser`] (security headers, the origin check) and
//!   [`quota`] (per-user and per-address token buckets), then [`error`]: the JSON
//!   extractors; the one error type, mapped to problem JSON and to error frames.
//! - [`store`] (the database layer: `Db`, migrations, the write-transaction discipline,
//!   `StoreError`) and [`broker`] (fan-out and presence): they know no service, only
//!   the protocol crate. [`config`] knows nothing of the crate either, nor does
//!   [`metrics`] (every exported metric, called from any layer), nor [`files`] (the
//!   owner-only modes of the data directory, database and secret).
//!
//! Each service takes its own context as axum's `State` (routes are generic over any
//! state that provides it), so none of them names `state`.

pub mod app;
pub mod auth;
pub mod broker;
pub mod browser;
pub mod client_addr;
pub mod config;
pub mod error;
pub mod files;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod notifications;
pub mod openapi;
pub mod ops;
pub mod presence;
pub mod quota;
pub mod rooms;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod uploads;
pub mod users;
pub mod web;

pub use app::{App, StartError};
pub use config::Config;
