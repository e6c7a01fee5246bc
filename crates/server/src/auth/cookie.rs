//! The refresh token as an `HttpOnly` cookie, for browsers (docs/protocol.md §2).
//!
//! A refresh token lives 30 days; in `localStorage` any script injected into the page
//! could read it and keep the account long after the page is closed. A browser asks for
//! the cookie transport with the header `X-Auth-Transport: cookie` on
//! register/login/refresh/logout, and then:
//!
//! - register, login and refresh answer with the [`REFRESH_COOKIE`] cookie (`HttpOnly`,
//!   `SameSite=Strict`, `Path=/api/v1/auth`, `Secure` when the page is `https:`) and a
//!   session body *without* `refresh_token`: a refresh token held in a cookie is never
//!   shown to a script, not even by the refresh it authorises;
//! - refresh and logout take the token from the cookie (the body is ignored); logout, and
//!   a refresh the server refuses, clear the cookie.
//!
//! Cross-site request forgery: the browser attaches the cookie on its own, so a request
//! that spends it must be shown to come from the app. `SameSite=Strict` keeps the
//! cookie off requests started by other sites; the custom header cannot be sent by a
//! cross-origin page without a CORS preflight, which this server never grants; and an
//! `Origin` other than the server's own or an `--allowed-origins` entry gets 403.
//!
//! Clients that do not send the header (SDKs, the load generator) keep the token in the
//! JSON bodies exactly as before. The adapter wraps the JSON handlers rather than
//! changing them, so rotation, reuse detection and revocation have one implementation.
//! Every auth response, either way, is `Cache-Control: no-store`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, ORIGIN, PRAGMA, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use socket_hub_protocol::rest::RefreshRequest;

use crate::browser::check_origin;
use crate::error::Error;

/// The request header choosing the cookie transport, with the value [`COOKIE_TRANSPORT`].
pub const TRANSPORT_HEADER: HeaderName = HeaderName::from_static("x-auth-transport");
/// The value of [`TRANSPORT_HEADER`] that selects the cookie.
pub const COOKIE_TRANSPORT: &str = "cookie";
/// The cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "socket_hub_refresh";
/// Where the browser sends the cookie: the auth endpoints only, never `/ws` or the rest
/// of the API (where it would authorise nothing and only widen what could leak it).
pub const COOKIE_PATH: &str = "/api/v1/auth";

/// Largest session body the adapter reads back to move the token into the cookie.
const MAX_SESSION_BODY: usize = 64 * 1024;

/// What the adapter needs: the origins allowed besides the server's own, and how long
/// the cookie lives (the refresh token's lifetime).
#[derive(Debug, Clone)]
pub struct CookieTransport {
    allowed_origins: Arc<[String]>,
    max_age: Duration,
}

impl CookieTransport {
    /// The adapter for `allowed_origins` (`--allowed-origins`) and refresh tokens living
    /// `refresh_ttl`.
    pub fn new(allowed_origins: &[String], refresh_ttl: Duration) -> Self {
        Self {
            allowed_origins: allowed_origins.into(),
            max_age: refresh_ttl,
        }
    }
}

/// Which auth endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// Register or login: issue a session.
    Issue,
    Refresh,
    Logout,
    Other,
}

impl Endpoint {
    fn of(path: &str) -> Self {
        match path.trim_end_matches('/').rsplit('/').next() {
            Some("register" | "login") => Self::Issue,
            Some("refresh") => Self::Refresh,
            Some("logout") => Self::Logout,
            _ => Self::Other,
        }
    }
}

/// Middleware over the `/auth` routes: `no-store` on every response, and the cookie
/// transport for requests that ask for it (see the module docs).
pub async fn transport(
    State(transport): State<CookieTransport>,
    request: Request,
    next: Next,
) -> Response {
    let wants_cookie = request
        .headers()
        .get(TRANSPORT_HEADER)
        .is_some_and(|value| {
            value
                .as_bytes()
                .eq_ignore_ascii_case(COOKIE_TRANSPORT.as_bytes())
        });
    let mut response = if wants_cookie {
        with_cookie(&transport, request, next).await
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

async fn with_cookie(transport: &CookieTransport, mut request: Request, next: Next) -> Response {
    if let Err(err) = check_origin(request.headers(), request.uri(), &transport.allowed_origins) {
        return err.into_response();
    }
    let endpoint = Endpoint::of(request.uri().path());
    let secure = is_https(request.headers());
    if matches!(endpoint, Endpoint::Refresh | Endpoint::Logout) {
        let Some(token) = refresh_cookie(request.headers()) else {
            let mut response = match endpoint {
                Endpoint::Logout => StatusCode::NO_CONTENT.into_response(),
                _ => Error::Unauthorized.into_response(),
            };
            set_cookie(&mut response, &clear_cookie(secure));
            return response;
        };
        let body = serde_json::to_vec(&RefreshRequest {
            refresh_token: token.to_owned(),
        })
        .unwrap_or_default();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.remove(CONTENT_LENGTH);
        *request.body_mut() = Body::from(body);
    }
    let response = next.run(request).await;
    match endpoint {
        Endpoint::Logout => {
            let mut response = response;
            set_cookie(&mut response, &clear_cookie(secure));
            response
        }
        Endpoint::Refresh if response.status() == StatusCode::UNAUTHORIZED => {
            // Spent, revoked or expired: the browser should stop presenting it.
            let mut response = response;
            set_cookie(&mut response, &clear_cookie(secure));
            response
        }
        Endpoint::Issue | Endpoint::Refresh if response.status().is_success() => {
            move_token_to_cookie(response, transport.max_age, secure).await
        }
        _ => response,
    }
}

/// Takes `refresh_token` out of a session body and sets it as the cookie instead.
async fn move_token_to_cookie(response: Response, max_age: Duration, secure: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_SESSION_BODY).await else {
        return Error::Internal("session body unreadable".into()).into_response();
    };
    let Ok(serde_json::Value::Object(mut session)) = serde_json::from_slice(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let Some(serde_json::Value::String(token)) = session.remove("refresh_token") else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let Ok(body) = serde_json::to_vec(&session) else {
        return Error::Internal("session body unwritable".into()).into_response();
    };
    parts.headers.remove(CONTENT_LENGTH);
    let mut response = Response::from_parts(parts, Body::from(body));
    set_cookie(&mut response, &issue_cookie(&token, max_age, secure));
    response
}

fn set_cookie(response: &mut Response, cookie: &str) {
    match HeaderValue::from_str(cookie) {
        Ok(value) => {
            response.headers_mut().append(SET_COOKIE, value);
        }
        // Tokens are base64url, so this cannot happen; refuse rather than drop it.
        Err(_) => *response = Error::Internal("unrepresentable cookie".into()).into_response(),
    }
}

fn issue_cookie(token: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{REFRESH_COOKIE}={token}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

fn clear_cookie(secure: bool) -> String {
    format!(
        "{REFRESH_COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The refresh token in the request's `Cookie` header(s), if any.
fn refresh_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == REFRESH_COOKIE).then(|| value.trim_matches('"'))
        })
        .filter(|token| !token.is_empty())
}

/// Whether the page is served over https, so the cookie must be `Secure`: the page's
/// `Origin` says so, or the TLS-terminating proxy does (`X-Forwarded-Proto`). A client
/// lying here only changes the attributes of its own cookie.
fn is_https(headers: &HeaderMap) -> bool {
    let origin_https = headers
        .get(ORIGIN)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|origin| origin.to_ascii_lowercase().starts_with("https://"));
    let proxy_https = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    origin_https || proxy_https
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_told_apart_by_their_last_segment() {
        assert_eq!(Endpoint::of("/auth/login"), Endpoint::Issue);
        assert_eq!(Endpoint::of("/api/v1/auth/register"), Endpoint::Issue);
        assert_eq!(Endpoint::of("/auth/refresh/"), Endpoint::Refresh);
        assert_eq!(Endpoint::of("/auth/logout"), Endpoint::Logout);
        assert_eq!(Endpoint::of("/auth/other"), Endpoint::Other);
    }

    #[test]
    fn the_refresh_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            COOKIE,
            HeaderValue::from_static("a=1; socket_hub_refresh=tok-en_1"),
        );
        assert_eq!(refresh_cookie(&headers), Some("tok-en_1"));
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("socket_hub_refresh=; b=2"));
        assert_eq!(refresh_cookie(&empty), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_path_scoped() {
        let cookie = issue_cookie("abc", Duration::from_secs(60), true);
        assert_eq!(
            cookie,
            "socket_hub_refresh=abc; Path=/api/v1/auth; Max-Age=60; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!clear_cookie(false).contains("Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
