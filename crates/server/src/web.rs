//! The web client: the Vite build of `web/`, embedded in the binary and served at `/`.
//!
//! - Hashed bundle files (`/assets/*`) are cached for a year (`immutable`).
//! - `index.html` is `no-cache`, so a new release is picked up on the next load.
//! - The service worker (`/sw.js`, scope `/`: it sits at the root) and the web app
//!   manifest are `no-cache` too: a new release's worker must be found at once, since it
//!   is the one that swaps the offline copy of the app (see `web/src/sw/`).
//! - Any other GET that is not an API, WebSocket or ops path serves `index.html`, so
//!   deep links (`/rooms/5`) work; the single-page app routes on the client.
//! - Unknown `/api/…` (and ops) paths stay JSON problem 404s.
//!
//! `build.rs` runs `npm run build` when the bundle is missing or stale. When the bundle
//! could not be built (no npm), `/` says so in plain HTML.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::Embed;
use socket_hub_protocol::ErrorCode;

use crate::error::problem_response;
use crate::state::AppState;

#[derive(Embed)]
#[folder = "../../web/dist/"]
#[allow_missing = true]
struct Assets;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const NO_CACHE: &str = "no-cache";
const SHORT: &str = "public, max-age=3600";

/// Top-level files revalidated on every load (the rest of `public/` may be an hour old).
const REVALIDATED: &[&str] = &["sw.js", "manifest.webmanifest"];

/// Paths owned by the server, never answered with the app shell.
const RESERVED: &[&str] = &[
    "/api",
    "/ws",
    "/v1",
    "/socket.io",
    "/healthz",
    "/readyz",
    "/metrics",
];

/// The web client, as the app router's fallback (no other router sets one).
pub fn routes() -> Router<AppState> {
    Router::new().fallback(serve)
}

async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if is_reserved(path) {
        return problem_response(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no route for {path}"),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = problem_response(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::NotFound,
            format!("{method} is not allowed on {path}"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let relative = path.trim_start_matches('/');
    if !relative.is_empty() && relative != "index.html" {
        if let Some(file) = Assets::get(relative) {
            return file_response(&file, cache_control(relative), &headers);
        }
        // A missing bundle file must not turn into HTML the browser tries to run.
        if relative.starts_with("assets/") {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
    }
    match Assets::get("index.html") {
        Some(file) => file_response(&file, NO_CACHE, &headers),
        None => not_built(),
    }
}

/// The `Cache-Control` of a bundle file (`relative`: its path without the leading `/`).
fn cache_control(relative: &str) -> &'static str {
    if relative.starts_with("assets/") {
        IMMUTABLE
    } else if REVALIDATED.contains(&relative) {
        NO_CACHE
    } else {
        SHORT
    }
}

fn is_reserved(path: &str) -> bool {
    RESERVED.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

fn file_response(
    file: &rust_embed::EmbeddedFile,
    cache: &'static str,
    headers: &HeaderMap,
) -> Response {
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    let mut builder = Response::builder()
        .header(header::CACHE_CONTROL, cache)
        .header(header::ETAG, &etag);
    if matches {
        builder = builder.status(StatusCode::NOT_MODIFIED);
        return builder
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::NOT_MODIFIED.into_response());
    }
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    builder
        .header(header::CONTENT_TYPE, content_type)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Body::from(file.data.clone()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn not_built() -> Response {
    (
        [(header::CACHE_CONTROL, NO_CACHE)],
        Html(
            "<!doctype html><meta charset=utf-8><title>Socket-Hub</title>\
             <h1>Socket-Hub is running</h1>\
             <p>The web client was not built into this binary (npm was not available, or the build failed, when it \
             was compiled). Build it with <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code> \
             and rebuild the server.</p>\
             <p>WebSocket: <code>/ws</code> &middot; REST: <code>/api/v1</code> &middot; \
             <a href=\"/api/openapi.json\">OpenAPI</a> &middot; <a href=\"/readyz\">readiness</a></p>",
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{IMMUTABLE, NO_CACHE, SHORT, cache_control, is_reserved};

    #[test]
    fn the_service_worker_and_manifest_are_revalidated_hashed_assets_kept() {
        assert_eq!(cache_control("sw.js"), NO_CACHE);
        assert_eq!(cache_control("manifest.webmanifest"), NO_CACHE);
        assert_eq!(cache_control("assets/index-abc123.js"), IMMUTABLE);
        assert_eq!(cache_control("icons/icon-192.png"), SHORT);
        assert_eq!(cache_control("favicon.svg"), SHORT);
    }

    #[test]
    fn api_and_ops_paths_are_reserved() {
        for path in [
            "/api",
            "/api/v1/nope",
            "/ws",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(is_reserved(path), "{path}");
        }
        for path in ["/", "/rooms/5", "/apis", "/wsx", "/assets/index-abc.js"] {
            assert!(!is_reserved(path), "{path}");
        }
    }
}
