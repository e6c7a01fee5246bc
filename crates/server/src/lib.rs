//! Socket-Hub: a self-hosted real-time chat server.
//!
//! Layout, top to bottom; a module uses only modules below it:
//! - [`app`]: wiring; `App::build(config)` then `run_until_stopped()`. Beside it the
//!   process-level routes and helpers: [`ops`] (health, readiness, metrics), [`web`]
//!   (the embedded client), [`openapi`], [`telemetry`].
//! - [`state`]: `AppState`, and `Store`, the services' stores over one database.
//! - [`gateway`]: the WebSocket endpoint and this process's live rooms.
//! - [`rooms`]: rooms, memberships, messages (routes, sending, and their queries).
//! - [`users`], then [`auth`] (credentials, tokens; `users` uses its extractor): routes
//!   and their queries.
//! - [`http`], then [`error`]: the JSON extractor; the one error type, mapped to
//!   problem JSON and to error frames.
//! - [`store`] (the database layer: `Db`, migrations, the write-transaction discipline,
//!   `StoreError`) and [`broker`] (fan-out and presence): they know no service, only
//!   the protocol crate. [`config`] knows nothing of the crate either.
//!
//! The one reference upwards is the handler state: routes and sessions take
//! `state::AppState` as axum's `State` (a type, wired only by `app`). And `rooms` still
//! calls `gateway::encode` until it moves onto the broker's envelope.

pub mod app;
pub mod auth;
pub mod broker;
pub mod config;
pub mod error;
pub mod gateway;
pub mod http;
pub mod openapi;
pub mod ops;
pub mod rooms;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod users;
pub mod web;

pub use app::{App, StartError};
pub use config::Config;
