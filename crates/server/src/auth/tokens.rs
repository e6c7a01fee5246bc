//! Access tokens (HS256 JWT) and opaque refresh tokens.
//!
//! Access tokens are verified without a database round trip, so they are short-lived;
//! refresh tokens are stored only as SHA-256 hashes and single-use. A login's first
//! refresh token is random; each rotation's successor is derived from the token it
//! replaces ([`TokenKeys::successor`]), so a second presentation inside the grace
//! window can be given the same successor again without storing any token in clear.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use socket_hub_protocol::{User, UserId};

use crate::error::Error;

/// The claims inside an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a decimal string (JWT `sub` is a string).
    pub sub: String,
    /// The username at issue time, so the gateway needs no lookup to say who is talking.
    pub name: String,
    pub iat: i64,
    pub exp: i64,
    /// The login session (refresh-token family) the token was issued to: what logout
    /// revokes ([`super::Revocations`]). Absent from tokens that belong to no session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Claims {
    /// The user these claims are about.
    pub fn user(&self) -> Result<User, Error> {
        let id: UserId = self.sub.parse().map_err(|_| Error::Unauthorized)?;
        Ok(User {
            id,
            username: self.name.clone(),
        })
    }
}

/// Signs and verifies access tokens; mints refresh tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_ttl: Duration,
    refresh_ttl: Duration,
    refresh_grace: Duration,
    /// HMAC-SHA256 keyed with the server secret, deriving refresh-token successors.
    successor_key: Hmac<Sha256>,
}

impl TokenKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8], access_ttl: Duration, refresh_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // An expired token is expired: no grace period a stolen token could use.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
            refresh_ttl,
            refresh_grace: Duration::ZERO,
            successor_key: <Hmac<Sha256> as Mac>::new_from_slice(secret)
                .expect("HMAC takes keys of any length"),
        }
    }

    /// Sets how long a just-rotated refresh token still returns its successor.
    pub fn with_refresh_grace(mut self, grace: Duration) -> Self {
        self.refresh_grace = grace;
        self
    }

    /// How long a just-rotated refresh token still returns its successor.
    pub fn refresh_grace(&self) -> Duration {
        self.refresh_grace
    }

    /// The refresh token that follows `token` in its family, and its stored hash:
    /// HMAC-SHA256 of the token under the server secret. Deterministic, so presenting
    /// `token` twice yields the same successor; unpredictable without the secret.
    pub fn successor(&self, token: &str) -> (String, String) {
        let mut mac = self.successor_key.clone();
        mac.update(b"socket-hub refresh successor\0");
        mac.update(token.as_bytes());
        let successor = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let hash = hash_refresh_token(&successor);
        (successor, hash)
    }

    /// Access token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// Refresh token lifetime.
    pub fn refresh_ttl(&self) -> Duration {
        self.refresh_ttl
    }

    /// Signs an access token for `user`, tied to no session (so logout cannot revoke
    /// it), that expires after the configured TTL. Tests use it; logins use
    /// [`TokenKeys::issue_session_access`].
    pub fn issue_access(&self, user: &User) -> Result<String, Error> {
        self.issue(user, None)
    }

    /// Signs an access token for `user` in login session `sid` (its refresh-token
    /// family): revoking the session revokes the token.
    pub fn issue_session_access(&self, user: &User, sid: &str) -> Result<String, Error> {
        self.issue(user, Some(sid.to_owned()))
    }

    fn issue(&self, user: &User, sid: Option<String>) -> Result<String, Error> {
        let now = chrono::Utc::now().timestamp();
        let ttl = i64::try_from(self.access_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        self.sign(&Claims {
            sub: user.id.to_string(),
            name: user.username.clone(),
            iat: now,
            exp: now + ttl,
            sid,
        })
    }

    /// Signs arbitrary claims (tests use it to mint expired tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| Error::Internal(format!("jwt encode: {e}")))
    }

    /// Checks signature and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, Error> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Error::TokenExpired,
                _ => Error::Unauthorized,
            })
    }
}

/// A new random refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// The stored form of a refresh token.
pub fn hash_refresh_token(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The configured secret, or the one kept in `<data_dir>/jwt-secret`, generated on
/// first start, so that tokens survive restarts without configuration.
pub fn load_or_create_secret(
    configured: Option<&str>,
    data_dir: &Path,
) -> std::io::Result<Vec<u8>> {
    if let Some(secret) = configured {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing.trim().len() >= 32 => {
            // Whoever reads it can sign tokens for any user.
            crate::files::restrict(&path)?;
            return Ok(existing.trim().as_bytes().to_vec());
        }
        Ok(_) | Err(_) => {}
    }
    crate::files::create_private_dir(data_dir)?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = URL_SAFE_NO_PAD.encode(bytes);
    write_private(&path, secret.as_bytes())?;
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(secret.into_bytes())
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            &[7u8; 32],
            Duration::from_secs(60),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn issued_token_verifies_to_its_user() {
        let user = User {
            id: 42,
            username: "ada".into(),
        };
        let token = keys().issue_access(&user).expect("signs");
        let claims = keys().verify(&token).expect("verifies");
        assert_eq!(claims.user().expect("user"), user);
    }

    #[test]
    fn expired_token_is_reported_as_expired() {
        let now = chrono::Utc::now().timestamp();
        let token = keys()
            .sign(&Claims {
                sub: "1".into(),
                name: "a".into(),
                iat: now - 20,
                exp: now - 10,
                sid: None,
            })
            .expect("signs");
        assert!(matches!(keys().verify(&token), Err(Error::TokenExpired)));
    }

    #[test]
    fn token_signed_with_another_secret_is_rejected() {
        let other = TokenKeys::new(&[9u8; 32], Duration::from_secs(60), Duration::from_secs(60));
        let token = other
            .issue_access(&User {
                id: 1,
                username: "a".into(),
            })
            .expect("signs");
        assert!(matches!(keys().verify(&token), Err(Error::Unauthorized)));
    }

    #[test]
    fn successors_are_deterministic_per_secret_and_token() {
        let other = TokenKeys::new(&[9u8; 32], Duration::from_secs(60), Duration::from_secs(60));
        let (a, a_hash) = keys().successor("t1");
        assert_eq!(keys().successor("t1"), (a.clone(), a_hash.clone()));
        assert_eq!(a_hash, hash_refresh_token(&a));
        assert_ne!(keys().successor("t2").0, a);
        assert_ne!(other.successor("t1").0, a);
    }

    #[test]
    fn secret_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create_secret(None, dir.path()).expect("creates");
        let second = load_or_create_secret(None, dir.path()).expect("reads");
        assert_eq!(first, second);
        assert!(first.len() >= 32);
    }
}
