//! Notifications service: each user's persisted stream (invited, mentioned, new DM,
//! kicked, banned, room deleted), delivered live as `notification` frames to every
//! connection of the user on every instance (through the [`Broker`]'s user channel),
//! again after each `ready` while unread, and listed over REST.
//!
//! Notifying never fails what caused it: [`Notifier::notify`] stores (so the
//! notification is listed once the causing request answers) and publishes, and a
//! failure is logged, not returned.

mod store;

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use socket_hub_protocol::rest::{MarkNotificationsRead, NotificationList, Problem, UnreadCount};
use socket_hub_protocol::{Notification, ServerFrame, UserId};

pub use store::{NewNotification, NotificationStore};

use crate::auth::{Auth, AuthUser};
use crate::broker::{Broker, encode};
use crate::error::{Error, Result};
use crate::http::{JsonBody, QueryParams};

/// Largest page of `GET /notifications`.
const MAX_PAGE: u32 = 200;
/// Unread notifications sent after each `ready`, oldest first.
pub const BACKLOG: u32 = 100;

/// Stores and delivers notifications; cloning bumps two reference counts.
#[derive(Clone)]
pub struct Notifier {
    pub store: NotificationStore,
    pub broker: Arc<dyn Broker>,
}

impl Notifier {
    /// Stores `new` for each of `users`, then sends it to their live connections.
    pub async fn notify(&self, users: Vec<UserId>, new: NewNotification) {
        if users.is_empty() {
            return;
        }
        match self.store.create(&users, &new).await {
            Ok(stored) => {
                for (user_id, notification) in stored {
                    let frame = encode(&ServerFrame::Notification { notification });
                    self.broker.publish_to_user(user_id, frame);
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot store a notification"),
        }
    }

    /// The unread notifications a new connection of `user_id` is sent after `ready`.
    pub async fn backlog(&self, user_id: UserId) -> Result<Vec<Notification>> {
        Ok(self.store.list(user_id, 0, BACKLOG, true).await?)
    }
}

/// Routes under `/api/v1/notifications`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Notifier: FromRef<S>,
    Auth: FromRef<S>,
{
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/unread", get(unread))
        .route("/notifications/read", post(mark_read))
}

/// Query of `GET /notifications`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NotificationQuery {
    /// Only notifications with ids above this (the previous page's `next`).
    after: Option<i64>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u32>,
}

/// The caller's notifications, oldest first, a page at a time, with the unread count.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    security(("bearer" = [])),
    params(NotificationQuery),
    responses(
        (status = 200, description = "A page; follow `next`", body = NotificationList),
        (status = 422, description = "limit out of 1-200", body = Problem),
    ))]
pub async fn list(
    State(notifier): State<Notifier>,
    AuthUser(user): AuthUser,
    QueryParams(query): QueryParams<NotificationQuery>,
) -> Result<Json<NotificationList>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::InvalidInput(format!("limit must be 1-{MAX_PAGE}")));
    }
    let mut notifications = notifier
        .store
        .list(user.id, query.after.unwrap_or(0), limit + 1, false)
        .await?;
    let next = if notifications.len() > limit as usize {
        notifications.truncate(limit as usize);
        notifications.last().map(|n| n.id)
    } else {
        None
    };
    let unread = notifier.store.unread(user.id).await?;
    Ok(Json(NotificationList {
        notifications,
        unread,
        next,
    }))
}

/// How many of the caller's notifications are unread.
#[utoipa::path(get, path = "/api/v1/notifications/unread", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, description = "The unread count", body = UnreadCount)))]
pub async fn unread(
    State(notifier): State<Notifier>,
    AuthUser(user): AuthUser,
) -> Result<Json<UnreadCount>> {
    Ok(Json(UnreadCount {
        unread: notifier.store.unread(user.id).await?,
    }))
}

/// Mark every notification up to `up_to` read.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "notifications",
    security(("bearer" = [])),
    request_body = MarkNotificationsRead,
    responses((status = 204, description = "Marked")))]
pub async fn mark_read(
    State(notifier): State<Notifier>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<MarkNotificationsRead>,
) -> Result<Response> {
    notifier.store.mark_read(user.id, body.up_to).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
