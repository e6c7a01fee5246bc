//! Auth service: accounts' credentials and the token pair that proves them.
//!
//! Register and login issue a short-lived access token plus a single-use refresh
//! token; refresh rotates the pair, and presenting an already-rotated refresh token
//! revokes its whole family (the tell-tale of a stolen token).

mod extract;
pub mod password;
mod store;
mod tokens;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use socket_hub_protocol::User;
use socket_hub_protocol::rest::{Credentials, Problem, RefreshRequest, Session};

pub use extract::{AuthUser, bearer_token};
pub use store::{Consumed, TokenStore};
pub use tokens::{Claims, TokenKeys, hash_refresh_token, load_or_create_secret, new_refresh_token};

use crate::error::{Error, Result};
use crate::http::{JsonBody, created};
use crate::state::AppState;
use crate::store::StoreError;

/// Routes under `/api/v1/auth`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "Account created", body = Session),
        (status = 409, description = "Username taken", body = Problem),
        (status = 422, description = "Invalid username or password", body = Problem),
    ))]
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response> {
    validate_username(&body.username)?;
    validate_password(&body.password)?;
    let hash = password::hash(body.password).await?;
    let user = state
        .store
        .create_user(&body.username, &hash)
        .await
        .map_err(|err| match err {
            StoreError::Conflict(_) => Error::Conflict("username is taken"),
            other => other.into(),
        })?;
    let family = new_family_id();
    Ok(created(issue_session(&state, user, &family).await?))
}

/// Sign in with username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Wrong username or password", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<Session>> {
    let record = state.store.find_user_by_name(&body.username).await?;
    // Verify against a real hash even for unknown users so timing does not reveal
    // which usernames exist.
    let (user, hash) = match record {
        Some(record) => (Some(record.user), record.password_hash),
        None => (None, DUMMY_HASH.to_owned()),
    };
    let matches = password::verify(body.password, hash).await?;
    let user = user.filter(|_| matches).ok_or(Error::InvalidCredentials)?;
    let family = new_family_id();
    Ok(Json(issue_session(&state, user, &family).await?))
}

/// Trade a refresh token for a new token pair.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair; the old refresh token is spent", body = Session),
        (status = 401, description = "Unknown, expired or reused refresh token", body = Problem),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<Session>> {
    let hash = hash_refresh_token(&body.refresh_token);
    match state.store.consume_refresh(&hash).await? {
        Consumed::Fresh { user_id, family_id } => {
            let user = state
                .store
                .find_user(user_id)
                .await?
                .ok_or(Error::Unauthorized)?;
            Ok(Json(issue_session(&state, user, &family_id).await?))
        }
        Consumed::Reused { family_id } => {
            tracing::warn!(%family_id, "refresh token reused; revoking its family");
            state.store.revoke_family(&family_id).await?;
            Err(Error::RefreshReused)
        }
        Consumed::Expired | Consumed::Revoked | Consumed::Unknown => Err(Error::Unauthorized),
    }
}

/// Revoke a refresh token and every token rotated from the same login.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Response> {
    let hash = hash_refresh_token(&body.refresh_token);
    if let Some(family) = state.store.refresh_family(&hash).await? {
        state.store.revoke_family(&family).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn issue_session(state: &AppState, user: User, family_id: &str) -> Result<Session> {
    let access_token = state.tokens.issue_access(&user)?;
    let (refresh_token, refresh_hash) = new_refresh_token();
    let refresh_ttl = i64::try_from(state.tokens.refresh_ttl().as_millis()).unwrap_or(i64::MAX / 4);
    let expires_at = chrono::Utc::now().timestamp_millis() + refresh_ttl;
    state
        .store
        .insert_refresh(user.id, family_id, &refresh_hash, expires_at)
        .await?;
    Ok(Session {
        user,
        access_token,
        expires_in: i64::try_from(state.tokens.access_ttl().as_secs()).unwrap_or(i64::MAX),
        refresh_token,
    })
}

fn new_family_id() -> String {
    new_refresh_token().1
}

/// An argon2id hash of a random string, verified against when a username is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29ja2V0aHViZHVtbXk$0MlmJ5lGxsoSWwvOQMCkyIC07vkbl25zXDWnLDLb3xQ";

/// Usernames: 3 to 32 characters of letters, digits, `_`, `.`, `-`, starting with a
/// letter or digit, so they are safe in URLs, mentions and logs.
pub fn validate_username(name: &str) -> Result<()> {
    let len = name.chars().count();
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=32).contains(&len) || !valid_chars || !starts_well {
        return Err(Error::InvalidInput(
            "username must be 3-32 characters of letters, digits, '_', '.' or '-', starting with a letter or digit".into(),
        ));
    }
    Ok(())
}

/// Passwords: 8 to 256 characters; length is what makes them strong.
pub fn validate_password(password: &str) -> Result<()> {
    if !(8..=256).contains(&password.chars().count()) {
        return Err(Error::InvalidInput(
            "password must be 8-256 characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked_for_length_and_characters() {
        assert!(validate_username("ada_lovelace").is_ok());
        assert!(validate_username("ab").is_err());
        assert!(validate_username("_leading").is_err());
        assert!(validate_username("has space").is_err());
        assert!(validate_username(&"x".repeat(33)).is_err());
    }

    #[tokio::test]
    async fn dummy_hash_is_a_valid_argon2_hash() {
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(
            !password::verify("anything".into(), DUMMY_HASH.into())
                .await
                .expect("runs")
        );
    }
}
