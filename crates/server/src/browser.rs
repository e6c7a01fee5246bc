//! Defences that exist because a browser is one of the clients (docs/security.md):
//!
//! - [`security_headers`]: every response says what a browser may do with it: a strict
//!   Content-Security-Policy (the web client's own scripts, styles and connections
//!   only; no plugins, no `<base>`, no framing), `X-Frame-Options: DENY` for browsers
//!   without `frame-ancestors`, `nosniff` so a JSON body is never run as a script, and
//!   no `Referer` leaking room URLs to links people post.
//! - [`check_origin`]: a browser names the page that makes a request in `Origin`, and
//!   a page on another site must not open a WebSocket with the user's credentials, nor
//!   spend the refresh cookie. Requests without `Origin` (SDKs, the load generator,
//!   `curl`) come from no page and are not affected.
//!
//! It knows only the error type, so the gateway and the auth service can both use it.

use axum::extract::Request;
use axum::http::header::{
    CONTENT_SECURITY_POLICY, HOST, ORIGIN, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::Error;

/// The policy of every response. The web client is a Vite bundle of same-origin files
/// (no inline script or style, no `data:` URL: see `web/vite.config.ts`), and it talks
/// to `/api` and `/ws` on its own origin (`'self'` covers `ws:`/`wss:` to the same host
/// in CSP Level 3 browsers; the e2e tests check Chromium reports no violation).
pub const CSP: &str = "default-src 'self'; connect-src 'self'; object-src 'none'; \
                       base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Sent with every response: links in messages must not tell other sites which room
/// (`/rooms/<id>`) a user was reading.
pub const REFERRER: &str = "no-referrer";

/// Middleware adding the browser security headers to every response (the web client,
/// the API's JSON and problem bodies, ops endpoints). A handler that set one of them
/// itself keeps its own value.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &'static str); 4] = [
        (CONTENT_SECURITY_POLICY, CSP),
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, REFERRER),
    ];
    for (name, value) in fixed {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    response
}

/// Refuses a request made by a page of a foreign origin: accepted are requests with no
/// `Origin` header (not made by a page), those from this server's own origin (the
/// origin's `host[:port]` is the request's `Host`) and those from an origin listed in
/// `allowed` (`--allowed-origins`). Anything else, `Origin: null` included (sandboxed
/// frames, `file:` pages), is `403 forbidden`.
///
/// Same-origin compares host and port only: behind a TLS-terminating proxy the server
/// sees plain HTTP while the page is `https:`, and no other server can answer on the
/// same host and port. The proxy must forward the `Host` the browser sent (nginx:
/// `proxy_set_header Host $http_host`), or the public origin must be listed.
pub fn check_origin(headers: &HeaderMap, uri: &Uri, allowed: &[String]) -> Result<(), Error> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("null").trim();
    // HTTP/1.1 names the authority in `Host`; HTTP/2 (extended CONNECT) in the URI.
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()));
    if is_same_origin(origin, host) || is_listed(origin, allowed) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "requests from this origin are not allowed (see --allowed-origins)",
        ))
    }
}

/// Whether the page's `origin` (`scheme://host[:port]`) is served by `host`, the
/// authority the request was sent to.
fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let (Some((scheme, authority)), Some(host)) = (origin.split_once("://"), host) else {
        return false;
    };
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return false;
    }
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let strip = |authority: &str| -> String {
        let lower = authority.trim().to_ascii_lowercase();
        match lower.strip_suffix(default_port) {
            Some(bare) => bare.to_owned(),
            None => lower,
        }
    };
    strip(authority) == strip(host)
}

/// Whether `origin` is one of `allowed`, compared as origins are: case-insensitively,
/// a trailing `/` in the configured value ignored.
fn is_listed(origin: &str, allowed: &[String]) -> bool {
    origin != "null"
        && allowed
            .iter()
            .any(|entry| entry.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// Checks one `--allowed-origins` entry: `scheme://host[:port]` exactly as a browser
/// sends it in `Origin` (`http` or `https`, no path, no trailing `/` needed).
pub fn validate_origin(entry: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "--allowed-origins entry {entry:?} is not an origin like https://chat.example.com"
        ))
    };
    let Some((scheme, authority)) = entry.trim_end_matches('/').split_once("://") else {
        return bad();
    };
    if !matches!(scheme, "http" | "https")
        || authority.is_empty()
        || authority.contains(['/', '?', '#', '@', ' ', '*'])
    {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(origin).expect("origin"));
        }
        headers
    }

    fn allowed(origin: Option<&str>, host: &str, list: &[&str]) -> bool {
        let list: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        check_origin(&request(origin, host), &Uri::from_static("/ws"), &list).is_ok()
    }

    #[test]
    fn no_origin_is_not_a_page_and_passes() {
        assert!(allowed(None, "chat.example.com", &[]));
    }

    #[test]
    fn same_origin_passes_whatever_the_scheme_and_case() {
        assert!(allowed(
            Some("http://127.0.0.1:8080"),
            "127.0.0.1:8080",
            &[]
        ));
        assert!(allowed(
            Some("https://Chat.Example.com"),
            "chat.example.com",
            &[]
        ));
        assert!(allowed(
            Some("https://chat.example.com"),
            "chat.example.com:443",
            &[]
        ));
    }

    #[test]
    fn other_hosts_ports_and_null_are_refused() {
        assert!(!allowed(
            Some("http://evil.example"),
            "chat.example.com",
            &[]
        ));
        assert!(!allowed(
            Some("http://127.0.0.1:9999"),
            "127.0.0.1:8080",
            &[]
        ));
        assert!(!allowed(
            Some("http://chat.example.com.evil.example"),
            "chat.example.com",
            &[]
        ));
        assert!(!allowed(Some("null"), "chat.example.com", &["null"]));
        assert!(!allowed(
            Some("ftp://chat.example.com"),
            "chat.example.com",
            &[]
        ));
    }

    #[test]
    fn listed_origins_pass() {
        let list = ["https://app.example.com/", "http://localhost:5173"];
        assert!(allowed(
            Some("https://app.example.com"),
            "api.example.com",
            &list
        ));
        assert!(allowed(
            Some("http://localhost:5173"),
            "127.0.0.1:8080",
            &list
        ));
        assert!(!allowed(
            Some("http://app.example.com"),
            "api.example.com",
            &list
        ));
    }

    #[test]
    fn configured_origins_are_validated() {
        assert!(validate_origin("https://chat.example.com").is_ok());
        assert!(validate_origin("http://localhost:5173/").is_ok());
        for bad in [
            "chat.example.com",
            "https://x.com/app",
            "*",
            "https://*",
            "null",
        ] {
            assert!(validate_origin(bad).is_err(), "{bad}");
        }
    }
}
