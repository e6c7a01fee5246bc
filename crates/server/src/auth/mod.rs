//! Auth service: accounts' credentials and the token pair that proves them.
//!
//! Register and login issue a short-lived access token plus a single-use refresh
//! token; refresh rotates the pair. Presenting an already-rotated refresh token again
//! within the grace window (`--refresh-grace-secs`) returns the same successor (two tabs
//! refreshing at once); after it, it revokes the whole family (the tell-tale of a
//! stolen token). Logout (and reuse) revokes the family's access tokens too: each
//! carries its family as `sid`, checked against [`Revocations`] at every door, and the
//! session's live sockets are closed (4401) on every instance.

pub mod cookie;
mod extract;
pub(crate) mod last_seen;
pub mod lockout;
pub mod password;
mod revocation;
mod store;
mod tokens;
mod user_store;

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use socket_hub_protocol::User;
use socket_hub_protocol::rest::{Credentials, Problem, RefreshRequest, Session};

pub use extract::{AuthUser, bearer_token};
pub use lockout::{Lockout, Policy};
pub use password::Hasher;
pub use revocation::Revocations;
pub use store::{Rotation, TokenStore};
pub use tokens::{Claims, TokenKeys, hash_refresh_token, load_or_create_secret, new_refresh_token};
pub use user_store::{UserRecord, UserStore};

use crate::client_addr::ClientAddr;
use crate::error::{Error, Result};
use crate::http::{JsonBody, created};
use crate::quota::Quotas;
use crate::store::{Db, StoreError};

/// What the auth routes and every door that checks a token (the [`AuthUser`]
/// extractor, the WebSocket handshake) need: the service's own slice of the app state,
/// so auth depends on nothing above it. Cloning bumps a few reference counts.
#[derive(Clone)]
pub struct Auth {
    /// Signs and verifies tokens; carries the access/refresh lifetimes and grace window.
    pub keys: Arc<TokenKeys>,
    /// Refresh tokens and their families.
    pub tokens: TokenStore,
    /// Accounts and their password hashes.
    pub users: UserStore,
    /// The database, for registration's transaction over both stores.
    pub db: Db,
    /// The argon2 queue and the brute-force counters, shared with the rooms service.
    pub guard: Arc<Guard>,
    /// Sessions logged out within the last access-token lifetime, checked in memory.
    pub revocations: Arc<Revocations>,
}

/// What stands between a guesser and argon2: the bounded hashing queue, the failure
/// counters and when they lock. One `Arc` shared by the auth and rooms services (their
/// contexts are copied into every connection's task, so they stay small).
pub struct Guard {
    /// The bounded argon2 queue.
    pub hasher: Hasher,
    /// Failure counts (store or Redis).
    pub lockout: Lockout,
    /// When failed logins lock.
    pub login: LoginLimits,
    /// When wrong access codes lock.
    pub access_code: CodeLimits,
    /// Per-user send and room-creation quotas, the per-address registration throttle.
    pub quotas: Quotas,
}

/// When wrong access codes lock: per (user, room) strictly, so one account gets a few
/// guesses; per room loosely, so many accounts guessing together are stopped too.
#[derive(Debug, Clone, Copy)]
pub struct CodeLimits {
    /// Per (user, room).
    pub member: Policy,
    /// Per room, by anyone.
    pub room: Policy,
}

/// When failed logins lock, per key. The pair limit is the strict one: it stops one
/// client guessing one account without letting anyone lock a victim out by name. The
/// username limit is looser and stops guessing spread over many addresses; the address
/// limit stops one client spraying passwords over many usernames.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Per (username, client address).
    pub pair: Policy,
    /// Per username, from any address.
    pub user: Policy,
    /// Per client address, over any usernames.
    pub addr: Policy,
}

/// Routes under `/api/v1/auth`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Auth: FromRef<S>,
{
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
        (status = 429, description = "Too many registrations from this address, or the password queue is full; see Retry-After", body = Problem),
    ))]
pub async fn register(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Response> {
    validate_username(&body.username)?;
    validate_password(&body.password)?;
    // Before the argon2 hash: a refused registration costs the server nothing.
    auth.guard.quotas.register(addr)?;
    let hash = auth.guard.hasher.hash(body.password).await?;
    // The account and its first session are stored together: a refused registration
    // (e.g. `unavailable`) leaves no account behind to make the retry a conflict.
    let mut tx = auth.db.begin().await?;
    let user = match auth.users.create_in(&mut tx, &body.username, &hash).await {
        Ok(user) => user,
        Err(StoreError::Conflict(_)) => {
            tx.rollback().await?;
            return Err(Error::Conflict("username is taken"));
        }
        Err(other) => return Err(other.into()),
    };
    let (refresh_token, refresh_hash) = new_refresh_token();
    let family = new_family_id();
    auth.tokens
        .insert_in(
            &mut tx,
            user.id,
            &family,
            &refresh_hash,
            refresh_expiry(&auth),
        )
        .await?;
    tx.commit().await?;
    Ok(created(Session {
        access_token: auth.keys.issue_session_access(&user, &family)?,
        expires_in: access_expires_in(&auth),
        refresh_token,
        user,
    }))
}

/// Sign in with username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Wrong username or password", body = Problem),
        (status = 429, description = "Too many failed logins, or the password queue is full; see Retry-After", body = Problem),
    ))]
pub async fn login(
    State(auth): State<Auth>,
    ClientAddr(addr): ClientAddr,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<Json<Session>> {
    let keys = LoginKeys::new(&body.username, addr);
    // Refused before any argon2 work: a locked key costs one lookup, not a hash.
    auth.guard.lockout.check(&keys.all()).await?;
    let record = auth.users.find_by_name(&body.username).await?;
    // Verify against a real hash even for unknown users so timing does not reveal
    // which usernames exist.
    let (user, hash) = match record {
        Some(record) => (Some(record.user), record.password_hash),
        None => (None, DUMMY_HASH.to_owned()),
    };
    let matches = auth.guard.hasher.verify(body.password, hash).await?;
    let Some(user) = user.filter(|_| matches) else {
        let limits = &auth.guard.login;
        let mut failed = vec![(keys.addr.as_str(), &limits.addr)];
        if let Some((pair, name)) = keys.pair.as_deref().zip(keys.user.as_deref()) {
            failed.push((pair, &limits.pair));
            failed.push((name, &limits.user));
        }
        auth.guard.lockout.fail(&failed).await?;
        return Err(Error::InvalidCredentials);
    };
    // The address keeps its count: one good account must not launder a spray.
    let succeeded: Vec<&str> = keys
        .pair
        .iter()
        .chain(&keys.user)
        .map(String::as_str)
        .collect();
    auth.guard.lockout.reset(&succeeded).await?;
    let family = new_family_id();
    Ok(Json(issue_session(&auth, user, &family).await?))
}

/// The lockout keys of one login attempt.
struct LoginKeys {
    /// `None` for a name no account can have (it cannot be guessed into, and an
    /// arbitrary string must not become a key).
    user: Option<String>,
    pair: Option<String>,
    addr: String,
}

impl LoginKeys {
    fn new(username: &str, addr: std::net::IpAddr) -> Self {
        // Usernames are unique case-insensitively: `Alice` and `alice` are one account.
        let name = validate_username(username)
            .is_ok()
            .then(|| username.to_ascii_lowercase());
        Self {
            pair: name
                .as_ref()
                .map(|name| format!("login:pair:{name}@{addr}")),
            user: name.map(|name| format!("login:user:{name}")),
            addr: format!("login:addr:{addr}"),
        }
    }

    fn all(&self) -> Vec<&str> {
        let mut keys = vec![self.addr.as_str()];
        keys.extend(self.pair.as_deref());
        keys.extend(self.user.as_deref());
        keys
    }
}

/// Trade a refresh token for a new token pair.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair; the old refresh token is spent", body = Session),
        (status = 401, description = "Unknown, expired or reused refresh token", body = Problem),
    ))]
pub async fn refresh(
    State(auth): State<Auth>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<Session>> {
    let hash = hash_refresh_token(&body.refresh_token);
    let (successor, successor_hash) = auth.keys.successor(&body.refresh_token);
    let expires_at = refresh_expiry(&auth);
    let (user_id, family) = match auth
        .tokens
        .rotate(&hash, &successor_hash, expires_at)
        .await?
    {
        Rotation::Rotated { user_id, family_id } => (user_id, family_id),
        Rotation::Spent {
            user_id,
            family_id,
            used_at,
        } => {
            let grace = i64::try_from(auth.keys.refresh_grace().as_millis()).unwrap_or(0);
            if chrono::Utc::now().timestamp_millis() - used_at >= grace {
                tracing::warn!(%family_id, "refresh token reused; revoking its family");
                auth.tokens.revoke_family(&family_id).await?;
                auth.revocations.revoke(&family_id);
                return Err(Error::RefreshReused);
            }
            // Within the grace window: the same successor again (another tab racing).
            (user_id, family_id)
        }
        Rotation::Expired | Rotation::Revoked | Rotation::Unknown => {
            return Err(Error::Unauthorized);
        }
    };
    let user = auth.users.find(user_id).await?.ok_or(Error::Unauthorized)?;
    Ok(Json(Session {
        access_token: auth.keys.issue_session_access(&user, &family)?,
        expires_in: access_expires_in(&auth),
        refresh_token: successor,
        user,
    }))
}

/// Revoke a refresh token, every token rotated from the same login, and the access
/// tokens issued to that login; its live sockets are closed with 4401 on every instance.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
pub async fn logout(
    State(auth): State<Auth>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Response> {
    let hash = hash_refresh_token(&body.refresh_token);
    if let Some(family) = auth.tokens.family(&hash).await? {
        auth.tokens.revoke_family(&family).await?;
        auth.revocations.revoke(&family);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The user of a valid access token whose account exists: the one check every door
/// (REST extractor, WebSocket handshake, first frame and `auth` re-auth) makes, so a
/// token outliving its account, or its logout, is refused everywhere.
pub async fn authenticate(auth: &Auth, token: &str) -> Result<Claims> {
    let claims = auth.keys.verify(token)?;
    if claims
        .sid
        .as_deref()
        .is_some_and(|sid| auth.revocations.is_revoked(sid))
    {
        return Err(Error::Unauthorized);
    }
    let user = claims.user()?;
    auth.users.find(user.id).await?.ok_or(Error::Unauthorized)?;
    Ok(claims)
}

/// A new login: an access token and the first refresh token of family `family_id`.
async fn issue_session(auth: &Auth, user: User, family_id: &str) -> Result<Session> {
    let access_token = auth.keys.issue_session_access(&user, family_id)?;
    let (refresh_token, refresh_hash) = new_refresh_token();
    auth.tokens
        .insert(user.id, family_id, &refresh_hash, refresh_expiry(auth))
        .await?;
    Ok(Session {
        user,
        access_token,
        expires_in: access_expires_in(auth),
        refresh_token,
    })
}

/// When a refresh token issued now expires (Unix ms).
fn refresh_expiry(auth: &Auth) -> i64 {
    let refresh_ttl = i64::try_from(auth.keys.refresh_ttl().as_millis()).unwrap_or(i64::MAX / 4);
    chrono::Utc::now().timestamp_millis() + refresh_ttl
}

fn access_expires_in(auth: &Auth) -> i64 {
    i64::try_from(auth.keys.access_ttl().as_secs()).unwrap_or(i64::MAX)
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
            !Hasher::default()
                .verify("anything".into(), DUMMY_HASH.into())
                .await
                .expect("runs")
        );
    }
}
