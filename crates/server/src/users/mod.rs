//! Users service: who the caller is, and people's profiles (display name, status, the
//! generated initials avatar, last seen) and finding them by name. Accounts themselves
//! (creation, credentials) are auth's, below this.

mod store;

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use socket_hub_protocol::rest::{
    AccountExport, ChangePassword, DeleteAccount, Problem, Profile, UpdateProfile, UserPage,
};
use socket_hub_protocol::{User, UserId};

pub use store::ProfileStore;

use crate::auth::{Auth, AuthUser, Guard, authenticate, bearer_token, validate_password};
use crate::error::{Error, Result};
use crate::http::{JsonBody, PathParam, QueryParams};
use crate::notifications::Notifier;
use crate::presence::Presence;
use crate::rooms::Rooms;

/// Most messages, and most of anything else, an export lists.
const EXPORT_MESSAGES: u32 = 100_000;
const EXPORT_LIST: u32 = 10_000;

/// Longest display name and status, in characters.
const MAX_DISPLAY_NAME: usize = 64;
const MAX_STATUS: usize = 140;
/// Largest page of `GET /users?query=`.
const MAX_PAGE: u32 = 100;

/// The users service's slice of the app state.
#[derive(Clone)]
pub struct People {
    pub profiles: ProfileStore,
    /// The per-user search quota (`--user-search-*`).
    pub guard: Arc<Guard>,
}

/// Routes under `/api/v1/users`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Auth: FromRef<S>,
    People: FromRef<S>,
    Rooms: FromRef<S>,
    Notifier: FromRef<S>,
    Presence: FromRef<S>,
{
    Router::new()
        .route("/users/me", get(me).patch(update_me).delete(delete_me))
        .route("/users/me/password", post(change_password))
        .route("/users/me/export", get(export))
        .route("/users/{id}", get(profile))
        .route("/users", get(search))
}

/// The signed-in user.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "No valid token", body = Problem),
    ))]
pub async fn me(AuthUser(user): AuthUser) -> Json<User> {
    // `AuthUser` has already checked that the account exists.
    Json(user)
}

/// Change the caller's password: every other login session is revoked at once (their
/// sockets closed with 4401 on every instance); this one stays signed in.
#[utoipa::path(post, path = "/api/v1/users/me/password", tag = "users",
    security(("bearer" = [])),
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; other sessions revoked"),
        (status = 401, description = "Wrong current password", body = Problem),
        (status = 422, description = "New password not 8-256 characters", body = Problem),
        (status = 429, description = "Password queue full; see Retry-After", body = Problem),
    ))]
pub async fn change_password(
    State(auth): State<Auth>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<ChangePassword>,
) -> Result<Response> {
    let token = bearer_token(&headers).ok_or(Error::Unauthorized)?;
    let claims = authenticate(&auth, token).await?;
    let user = claims.user()?;
    validate_password(&body.new_password)?;
    check_password(&auth, &user, body.current_password).await?;
    let hash = auth.guard.hasher.hash(body.new_password).await?;
    auth.users.set_password(user.id, &hash).await?;
    let keep = claims.sid.as_deref().unwrap_or_default();
    for family in auth.tokens.revoke_others(user.id, keep).await? {
        auth.revocations.revoke(&family);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Delete the caller's account. Messages they sent stay, shown as from "deleted user";
/// memberships, invitations, notifications and blocks go; every session is revoked.
/// Refused while they own a room (transfer or delete it first).
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    request_body = DeleteAccount,
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Wrong password", body = Problem),
        (status = 409, description = "Owns a room", body = Problem),
    ))]
pub async fn delete_me(
    State(auth): State<Auth>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<DeleteAccount>,
) -> Result<Response> {
    check_password(&auth, &user, body.password).await?;
    let families = auth.users.delete(user.id).await?.ok_or(Error::Conflict(
        "you own rooms: transfer or delete them before deleting your account",
    ))?;
    for family in families {
        auth.revocations.revoke(&family);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Fails with `invalid_credentials` unless `password` is `user`'s.
async fn check_password(auth: &Auth, user: &User, password: String) -> Result<()> {
    let record = auth
        .users
        .find_by_name(&user.username)
        .await?
        .ok_or(Error::Unauthorized)?;
    if auth
        .guard
        .hasher
        .verify(password, record.password_hash)
        .await?
    {
        Ok(())
    } else {
        Err(Error::InvalidCredentials)
    }
}

/// Everything the server keeps that is the caller's own, as one JSON document.
#[utoipa::path(get, path = "/api/v1/users/me/export", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's data", body = AccountExport)))]
pub async fn export(
    State(people): State<People>,
    State(rooms): State<Rooms>,
    State(notifier): State<Notifier>,
    AuthUser(user): AuthUser,
) -> Result<Json<AccountExport>> {
    let Json(profile) = profile_of(&people, user.id).await?;
    Ok(Json(AccountExport {
        exported_at: chrono::Utc::now(),
        profile,
        rooms: rooms.store.list(user.id, true, 0, EXPORT_LIST).await?,
        direct_messages: rooms.store.directs(user.id, EXPORT_LIST).await?,
        messages: rooms.messages.sent_by(user.id, EXPORT_MESSAGES).await?,
        notifications: notifier.store.list(user.id, 0, EXPORT_LIST, false).await?,
        invitations: rooms.store.invitations(user.id, EXPORT_LIST).await?,
    }))
}

/// A profile text: trimmed, at most `max` visible characters; empty clears it.
fn profile_text(text: &str, max: usize, what: &str) -> Result<Option<String>> {
    let text = text.trim();
    if text.chars().count() > max
        || text
            .chars()
            .any(|c| c.is_control() || crate::rooms::is_invisible(c))
    {
        return Err(Error::InvalidInput(format!(
            "{what} must be at most {max} visible characters"
        )));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Change the caller's display name or status.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    request_body = UpdateProfile,
    responses(
        (status = 200, description = "The caller's profile as changed", body = Profile),
        (status = 422, description = "Too long, or invisible characters", body = Problem),
    ))]
pub async fn update_me(
    State(people): State<People>,
    AuthUser(user): AuthUser,
    JsonBody(body): JsonBody<UpdateProfile>,
) -> Result<Json<Profile>> {
    let display_name = body
        .display_name
        .as_deref()
        .map(|t| profile_text(t, MAX_DISPLAY_NAME, "display_name"))
        .transpose()?;
    let status = body
        .status
        .as_deref()
        .map(|t| profile_text(t, MAX_STATUS, "status"))
        .transpose()?;
    people
        .profiles
        .update(
            user.id,
            display_name.as_ref().map(Option::as_deref),
            status.as_ref().map(Option::as_deref),
        )
        .await?;
    profile_of(&people, user.id).await
}

async fn profile_of(people: &People, user_id: UserId) -> Result<Json<Profile>> {
    Ok(Json(
        people
            .profiles
            .profile(user_id)
            .await?
            .ok_or(Error::NotFound("user"))?,
    ))
}

/// A user's profile. Presence and last seen only when the caller shares a room or DM
/// with them (or is them); to anyone else they are left out.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "No such user", body = Problem),
    ))]
pub async fn profile(
    State(people): State<People>,
    State(presence): State<Presence>,
    AuthUser(user): AuthUser,
    PathParam(user_id): PathParam<UserId>,
) -> Result<Json<Profile>> {
    let Json(profile) = profile_of(&people, user_id).await?;
    let mut profiles = [profile];
    with_presence(&presence, user.id, &mut profiles).await?;
    let [profile] = profiles;
    Ok(Json(profile))
}

/// Fills in the presence of the people `viewer` may see (sharing a room or DM) and
/// takes last seen away from the others: both say when someone is around.
async fn with_presence(
    presence: &Presence,
    viewer: UserId,
    profiles: &mut [Profile],
) -> Result<()> {
    let ids: Vec<UserId> = profiles.iter().map(|p| p.id).collect();
    let visible = presence.visible(viewer, &ids).await?;
    for profile in profiles {
        match visible.iter().find(|seen| seen.user_id == profile.id) {
            Some(seen) => profile.presence = Some(seen.status),
            None => profile.last_seen_at = None,
        }
    }
    Ok(())
}

/// Query of `GET /users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SearchQuery {
    /// The start of a username, 1 to 64 characters (any case).
    query: String,
    /// Only users with ids above this (the previous page's `next`).
    after: Option<UserId>,
    /// Page size, 1 to 100 (default 20).
    limit: Option<u32>,
}

/// Find people by the start of their username, a page at a time (rate-limited per user).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of matches in id order; follow `next`", body = UserPage),
        (status = 422, description = "query not 1-64 characters, or limit out of 1-100", body = Problem),
        (status = 429, description = "Search quota used up; see Retry-After", body = Problem),
    ))]
pub async fn search(
    State(people): State<People>,
    State(presence): State<Presence>,
    AuthUser(user): AuthUser,
    QueryParams(query): QueryParams<SearchQuery>,
) -> Result<Json<UserPage>> {
    let prefix = query.query.trim().to_lowercase();
    if !(1..=64).contains(&prefix.chars().count()) {
        return Err(Error::InvalidInput("query must be 1-64 characters".into()));
    }
    let limit = query.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::InvalidInput(format!("limit must be 1-{MAX_PAGE}")));
    }
    people.guard.quotas.searches.check(&user.id)?;
    let mut users = people
        .profiles
        .search(&prefix, query.after.unwrap_or(0), limit + 1)
        .await?;
    let next = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users.last().map(|u| u.id)
    } else {
        None
    };
    with_presence(&presence, user.id, &mut users).await?;
    Ok(Json(UserPage { users, next }))
}
