//! Browser hardening over real HTTP (issue 9 item 7): security headers on every kind of
//! response, `no-store` on token responses, and the refresh token as an `HttpOnly`
//! cookie that no response body shows, with its CSRF guards.

use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_with};

const CSP: &str = "default-src 'self'; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The `Set-Cookie` values of a response.
fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

/// The refresh token a `Set-Cookie` value carries (empty when it clears the cookie).
fn cookie_token(set_cookie: &str) -> &str {
    set_cookie
        .strip_prefix("socket_hub_refresh=")
        .and_then(|rest| rest.split(';').next())
        .expect("a socket_hub_refresh cookie")
}

/// What the web client sends: the cookie transport, from its own origin.
fn browser(app: &TestApp, path: &str) -> RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}/api/v1{path}", app.url))
        .header("x-auth-transport", "cookie")
        .header("origin", app.url.as_str())
}

/// Registers `name` the browser's way; returns the access token and the refresh cookie.
async fn browser_register(app: &TestApp, name: &str) -> (String, String) {
    let response = browser(app, "/auth/register")
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookies = set_cookies(&response);
    let body: Value = response.json().await.expect("session json");
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let token = cookie_token(&cookies[0]).to_owned();
    (
        body["access_token"]
            .as_str()
            .expect("access token")
            .to_owned(),
        token,
    )
}

async fn refresh_with_cookie(app: &TestApp, cookie: &str) -> Response {
    browser(app, "/auth/refresh")
        .header("cookie", format!("socket_hub_refresh={cookie}"))
        .send()
        .await
        .expect("refresh")
}

#[tokio::test]
async fn security_headers_on_the_app_the_api_errors_and_ops() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/rooms/5",
        "/api/v1/users/me",
        "/api/v1/nope",
        "/healthz",
        "/api/openapi.json",
    ] {
        let response = http
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .expect("request");
        let headers = response.headers();
        assert_eq!(
            header(headers, "content-security-policy"),
            Some(CSP),
            "{path}"
        );
        assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(headers, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            header(headers, "referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn token_responses_are_never_cached() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v1/auth/{path}", app.url);
    let credentials = json!({"username": "nocache", "password": PASSWORD});
    let registered = http
        .post(url("register"))
        .json(&credentials)
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::CREATED);
    assert_eq!(
        header(registered.headers(), "cache-control"),
        Some("no-store")
    );
    // An SDK (no transport header) gets the token in the body and no cookie.
    assert!(set_cookies(&registered).is_empty());
    let session: Value = registered.json().await.expect("json");
    let refresh_token = session["refresh_token"].as_str().expect("token in body");

    let refreshed = http
        .post(url("refresh"))
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(
        header(refreshed.headers(), "cache-control"),
        Some("no-store")
    );
    let logged_in = http
        .post(url("login"))
        .json(&credentials)
        .send()
        .await
        .expect("login");
    assert_eq!(
        header(logged_in.headers(), "cache-control"),
        Some("no-store")
    );
    let refused = http
        .post(url("login"))
        .json(&json!({"username": "nocache", "password": "wrong password"}))
        .send()
        .await
        .expect("login");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(refused.headers(), "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn cookie_transport_keeps_the_refresh_token_out_of_every_body() {
    let app = spawn_app().await;
    let response = browser(&app, "/auth/register")
        .json(&json!({"username": "cookie_ada", "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let first = cookie_token(&cookies[0]).to_owned();
    assert!(first.len() >= 40, "a real token: {first}");
    assert_eq!(
        cookies[0],
        format!(
            "socket_hub_refresh={first}; Path=/api/v1/auth; Max-Age={}; HttpOnly; SameSite=Strict",
            30 * 24 * 3600
        ),
        "HttpOnly, SameSite=Strict, scoped to the auth endpoints, not Secure over http"
    );
    let body: Value = response.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["user"]["username"], "cookie_ada");

    // Refresh takes the cookie, rotates it, and again shows no token.
    let response = refresh_with_cookie(&app, &first).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    let second = cookie_token(&cookies[0]).to_owned();
    assert_ne!(second, first, "rotated");
    let body: Value = response.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let mut client = app.client();
    client.set_access_token(body["access_token"].as_str().expect("access token"));
    assert_eq!(client.me().await.expect("me").username, "cookie_ada");

    // Login the browser's way too.
    let response = browser(&app, "/auth/login")
        .json(&json!({"username": "cookie_ada", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(set_cookies(&response).len(), 1);
    let body: Value = response.json().await.expect("json");
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn a_reused_refresh_cookie_revokes_the_family_and_is_cleared() {
    let app = spawn_with(|c| c.refresh_grace_secs = 0).await;
    let (_, first) = browser_register(&app, "reuse_cookie").await;
    let response = refresh_with_cookie(&app, &first).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = cookie_token(&set_cookies(&response)[0]).to_owned();

    let response = refresh_with_cookie(&app, &first).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let cleared = set_cookies(&response);
    assert_eq!(cookie_token(&cleared[0]), "", "{cleared:?}");
    assert!(cleared[0].contains("Max-Age=0"), "{cleared:?}");
    let problem: Value = response.json().await.expect("json");
    assert_eq!(problem["code"], "refresh_reused");
    // The whole family is gone: the successor is refused too.
    let response = refresh_with_cookie(&app, &second).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cookie_refresh_needs_the_header_and_an_allowed_origin() {
    let app = spawn_app().await;
    let (_, cookie) = browser_register(&app, "csrf_target").await;
    let http = reqwest::Client::new();
    let refresh = format!("{}/api/v1/auth/refresh", app.url);

    // A cross-site form or simple fetch cannot add the header: the cookie alone is not
    // a refresh request.
    let response = http
        .post(&refresh)
        .header("cookie", format!("socket_hub_refresh={cookie}"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("refresh_token=x")
        .send()
        .await
        .expect("request");
    assert!(response.status().is_client_error(), "{}", response.status());
    assert!(set_cookies(&response).is_empty());

    // With the header but from another origin: 403 before anything is spent.
    for origin in ["http://evil.example", "null"] {
        let response = http
            .post(&refresh)
            .header("x-auth-transport", "cookie")
            .header("cookie", format!("socket_hub_refresh={cookie}"))
            .header("origin", origin)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
        let problem: Value = response.json().await.expect("json");
        assert_eq!(problem["code"], "forbidden");
    }

    // The cookie was not spent: the app itself still refreshes with it.
    let response = refresh_with_cookie(&app, &cookie).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Without a cookie there is nothing to refresh with.
    let response = browser(&app, "/auth/refresh")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_allowed_origin_may_use_the_cookie() {
    let app = spawn_with(|c| c.allowed_origins = vec!["https://chat.example.com".into()]).await;
    let (_, cookie) = browser_register(&app, "allowed_site").await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/refresh", app.url))
        .header("x-auth-transport", "cookie")
        .header("cookie", format!("socket_hub_refresh={cookie}"))
        .header("origin", "https://chat.example.com")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    // The page is https: the new cookie is Secure.
    assert!(set_cookies(&response)[0].ends_with("; Secure"));
}

#[tokio::test]
async fn cookie_logout_revokes_the_session_and_clears_the_cookie() {
    let app = spawn_app().await;
    let (_, cookie) = browser_register(&app, "leaver").await;
    let response = browser(&app, "/auth/logout")
        .header("cookie", format!("socket_hub_refresh={cookie}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let cleared = set_cookies(&response);
    assert_eq!(cookie_token(&cleared[0]), "");
    assert!(cleared[0].contains("Max-Age=0; HttpOnly; SameSite=Strict"));
    let response = refresh_with_cookie(&app, &cookie).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Logging out without a cookie still answers 204 and clears it.
    let response = browser(&app, "/auth/logout").send().await.expect("logout");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(cookie_token(&set_cookies(&response)[0]), "");
}

#[tokio::test]
async fn pages_served_over_https_get_a_secure_cookie() {
    let app = spawn_app().await;
    let host = app.url.trim_start_matches("http://");
    // The page is https (a TLS proxy in front): its Origin says so, same host and port.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/register", app.url))
        .header("x-auth-transport", "cookie")
        .header("origin", format!("https://{host}"))
        .json(&json!({"username": "tls_user", "password": PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(set_cookies(&response)[0].ends_with("; HttpOnly; SameSite=Strict; Secure"));
    // So does the proxy, when it forwards the scheme.
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.url))
        .header("x-auth-transport", "cookie")
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "tls_user", "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response)[0].ends_with("; Secure"));
}
