//! The `AuthUser` extractor: a REST handler that takes one requires a valid access token
//! of an account that exists.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use socket_hub_protocol::User;

use super::Auth;
use crate::error::Error;

/// The user whose valid bearer token came with the request.
#[derive(Debug, Clone)]
pub struct AuthUser(pub User);

impl<S> FromRequestParts<S> for AuthUser
where
    Auth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let token = bearer_token(&parts.headers).ok_or(Error::Unauthorized)?;
        let claims = super::authenticate(&Auth::from_ref(state), token).await?;
        Ok(Self(claims.user()?))
    }
}

/// The token of an `Authorization: Bearer …` header, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
