//! Socket-Hub: a self-hosted real-time chat server.
//!
//! Layout (dependencies point downwards):
//! - [`app`]: wiring; `App::build(config)` then `run_until_stopped()`.
//! - services, each owning its routes, its store queries and its tests:
//!   [`auth`] (accounts' credentials, tokens), [`users`], [`rooms`] (rooms,
//!   memberships, messages), [`gateway`] (the WebSocket endpoint and live rooms).
//! - [`store`]: the `Store` trait and the embedded SQLite backend.
//! - [`broker`]: the `Broker` trait (fan-out, presence) and the in-process broker.
//! - [`error`]: the one error type, mapped to problem JSON and to error frames.
//! - [`config`], [`telemetry`], [`ops`], [`openapi`], [`web`]: running it.

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
