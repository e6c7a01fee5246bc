//! Integration tests: the real app on port 0, driven through the SDK over real sockets.
//! One test binary; each test starts its own app with its own database.
#![allow(unreachable_pub)]

mod attachments;
mod auth;
mod browser;
mod brute_force;
mod chat;
mod direct;
mod files;
mod helpers;
mod hygiene;
mod invitations;
mod lifecycle;
mod limits;
mod messages;
mod metrics;
mod moderation;
mod notifications;
mod origin;
mod pagination;
mod people;
mod presence;
mod quotas;
mod reading;
mod rooms;
mod search;
mod secrets;
mod sessions;
mod slots;
mod spaces;
mod storage;
#[path = "../support/mod.rs"]
mod support;
