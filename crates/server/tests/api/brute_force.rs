//! Brute force and the argon2 queue (issue 9 items 1, 2 and 5's queue): failed logins
//! and wrong access codes lock with 429 and `Retry-After`, before any hashing, on every
//! door; a full hash queue refuses registrations while logins still get through.

use std::net::IpAddr;

use reqwest::StatusCode;
use serde_json::json;
use socket_hub::Config;
use socket_hub_client::Client;
use socket_hub_protocol::{ClientFrame, ErrorCode, ServerFrame};
use tokio::task::JoinSet;

use crate::helpers::{PASSWORD, TestApp, WAIT, expect_ready, spawn_app, spawn_with};

/// A login attempt's status and `Retry-After` (seconds), from `from` when given (the
/// app must trust 127.0.0.1 as a proxy for that).
async fn login(
    app: &TestApp,
    name: &str,
    password: &str,
    from: Option<&str>,
) -> (StatusCode, Option<u64>) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", app.url))
        .json(&json!({ "username": name, "password": password }));
    if let Some(addr) = from {
        request = request.header("x-forwarded-for", addr);
    }
    let response = request.send().await.expect("login request");
    status_and_retry(response).await
}

async fn status_and_retry(response: reqwest::Response) -> (StatusCode, Option<u64>) {
    let status = response.status();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if status == StatusCode::TOO_MANY_REQUESTS {
        let body: serde_json::Value = response.json().await.expect("problem json");
        assert_eq!(body["code"], "rate_limited", "{body}");
    }
    (status, retry)
}

/// Lets the app believe `X-Forwarded-For` from the test (on 127.0.0.1), so a test can
/// speak from several client addresses.
fn behind_proxy(config: &mut Config) {
    config.trusted_proxies = vec![IpAddr::from([127, 0, 0, 1]).into()];
}

#[tokio::test]
async fn fifty_wrong_passwords_lock_the_login_even_for_the_right_one() {
    let app = spawn_app().await;
    app.user("alice").await;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(login(&app, "alice", "wrong password!", None).await);
    }
    // The default (peers' figure): the tenth failure locks.
    assert!(
        statuses[..10]
            .iter()
            .all(|(s, _)| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[10..]
            .iter()
            .all(|(s, r)| *s == StatusCode::TOO_MANY_REQUESTS && r.is_some_and(|r| r >= 1)),
        "{statuses:?}"
    );
    let (status, retry) = login(&app, "alice", PASSWORD, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|r| r >= 1), "Retry-After: {retry:?}");
}

#[tokio::test]
async fn a_successful_login_resets_the_username_count() {
    let app = spawn_with(|c| {
        c.login_lockout_failures = 3;
        c.login_lockout_user_failures = 3;
    })
    .await;
    app.user("alice").await;
    let mut seen = Vec::new();
    for password in [
        "wrong one",
        "wrong two",
        PASSWORD,
        "wrong three",
        "wrong four",
        PASSWORD,
    ] {
        seen.push(login(&app, "alice", password, None).await.0);
    }
    use StatusCode as S;
    assert_eq!(
        seen,
        [
            S::UNAUTHORIZED,
            S::UNAUTHORIZED,
            S::OK,
            S::UNAUTHORIZED,
            S::UNAUTHORIZED,
            S::OK
        ],
        "the successes reset the count"
    );
    for password in ["wrong five", "wrong six", "wrong seven"] {
        assert_eq!(
            login(&app, "alice", password, None).await.0,
            S::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&app, "alice", PASSWORD, None).await.0,
        S::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn one_address_guessing_does_not_lock_the_victim_out_elsewhere() {
    let app = spawn_with(|c| {
        behind_proxy(c);
        c.login_lockout_failures = 3;
    })
    .await;
    app.user("alice").await;
    let attacker = Some("198.51.100.66");
    for _ in 0..3 {
        assert_eq!(
            login(&app, "alice", "guess guess", attacker).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&app, "alice", PASSWORD, attacker).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The pair is locked, not the account: Alice at home still signs in.
    assert_eq!(
        login(&app, "alice", PASSWORD, Some("203.0.113.5")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn guessing_one_username_from_many_addresses_locks_the_username() {
    let app = spawn_with(|c| {
        behind_proxy(c);
        c.login_lockout_user_failures = 4;
    })
    .await;
    app.user("alice").await;
    for i in 1..=4 {
        let from = format!("198.51.100.{i}");
        assert_eq!(
            login(&app, "alice", "guess guess", Some(&from)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, retry) = login(&app, "alice", PASSWORD, Some("203.0.113.5")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    // Other accounts are untouched.
    app.user("bob").await;
    assert_eq!(
        login(&app, "bob", PASSWORD, Some("203.0.113.5")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_address_spraying_many_usernames_is_locked() {
    let app = spawn_with(|c| c.login_lockout_addr_failures = 3).await;
    app.user("alice").await;
    for name in ["nobody1", "nobody2", "nobody3"] {
        assert_eq!(
            login(&app, name, "password1", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&app, "alice", PASSWORD, None).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// Alice's private room with code `open-sesame`, and Bob signed in (not a member).
async fn private_room(app: &TestApp) -> (i64, Client, socket_hub_protocol::rest::Session) {
    let (alice, _) = app.user("alice").await;
    let room = alice
        .create_room("secret", true, Some("open-sesame"))
        .await
        .expect("room")
        .room;
    let (bob, bob_s) = app.user("bob").await;
    (room.id, bob, bob_s)
}

async fn rest_join(
    app: &TestApp,
    token: &str,
    room_id: i64,
    code: &str,
) -> (StatusCode, Option<u64>) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/rooms/{room_id}/join", app.url))
        .bearer_auth(token)
        .json(&json!({ "access_code": code }))
        .send()
        .await
        .expect("join request");
    status_and_retry(response).await
}

#[tokio::test]
async fn guessing_an_access_code_over_rest_locks() {
    let app = spawn_with(|c| c.code_lockout_failures = 3).await;
    let (room_id, _bob, bob_s) = private_room(&app).await;
    let token = &bob_s.access_token;
    for guess in ["00000000", "00000001", "00000002"] {
        assert_eq!(
            rest_join(&app, token, room_id, guess).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let (status, retry) = rest_join(&app, token, room_id, "open-sesame").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|r| r >= 1));
}

#[tokio::test]
async fn guessing_an_access_code_over_websocket_locks_and_counts_with_rest() {
    let app = spawn_with(|c| c.code_lockout_failures = 3).await;
    let (room_id, _bob, bob_s) = private_room(&app).await;
    // Two guesses by REST, the third over the WebSocket: one count for both doors.
    for guess in ["00000000", "00000001"] {
        assert_eq!(
            rest_join(&app, &bob_s.access_token, room_id, guess).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let mut ws = socket_hub_client::Connection::connect(
        &app.url,
        socket_hub_client::Auth::Header(bob_s.access_token.clone()),
    )
    .await
    .expect("connects");
    expect_ready(&mut ws).await;
    let mut ws_join = async |code: &str| {
        ws.send(&ClientFrame::JoinRoom {
            room_id,
            since_seq: None,
            access_code: Some(code.into()),
        })
        .await
        .expect("send join");
        ws.wait_for(WAIT, |f| match f {
            ServerFrame::Error {
                code,
                retry_after_ms,
                ..
            } => Some((Some(*code), *retry_after_ms)),
            ServerFrame::RoomJoined { .. } => Some((None, None)),
            _ => None,
        })
        .await
        .expect("join answer")
    };
    assert_eq!(
        ws_join("00000002").await,
        (Some(ErrorCode::WrongAccessCode), None)
    );
    let (code, retry_after_ms) = ws_join("open-sesame").await;
    assert_eq!(code, Some(ErrorCode::RateLimited));
    assert!(retry_after_ms.is_some_and(|ms| ms >= 1));
    // And REST sees the same lock.
    assert_eq!(
        rest_join(&app, &bob_s.access_token, room_id, "open-sesame")
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn many_accounts_guessing_one_room_lock_the_room() {
    let app = spawn_with(|c| c.code_lockout_room_failures = 3).await;
    let (room_id, _bob, bob_s) = private_room(&app).await;
    let (_carol, carol_s) = app.user("carol").await;
    let (_dave, dave_s) = app.user("dave").await;
    for (session, guess) in [
        (&bob_s, "00000000"),
        (&bob_s, "00000001"),
        (&carol_s, "00000002"),
    ] {
        assert_eq!(
            rest_join(&app, &session.access_token, room_id, guess)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        rest_join(&app, &dave_s.access_token, room_id, "open-sesame")
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn access_codes_shorter_than_eight_characters_are_refused() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let err = alice
        .create_room("secret", true, Some("1234567"))
        .await
        .expect_err("short code");
    assert_eq!(err.code(), Some(ErrorCode::InvalidInput));
    alice
        .create_room("secret", true, Some("12345678"))
        .await
        .expect("eight characters are enough");
}

#[tokio::test]
async fn a_full_hash_queue_refuses_registrations_while_logins_get_through() {
    // One shared place and one kept for verifications.
    let app = spawn_with(|c| {
        c.hash_queue = 2;
        c.hash_queue_reserved = 1;
    })
    .await;
    app.user("alice").await;
    let stop = tokio_util::sync::CancellationToken::new();
    let flood = {
        let url = app.url.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut refused = Vec::new();
            let mut accepted = 0usize;
            let mut n = 0usize;
            while !stop.is_cancelled() {
                let mut batch = JoinSet::new();
                for _ in 0..16 {
                    n += 1;
                    let request = http
                        .post(format!("{url}/api/v1/auth/register"))
                        .json(&json!({ "username": format!("flood{n}"), "password": PASSWORD }));
                    batch.spawn(async move {
                        status_and_retry(request.send().await.expect("register")).await
                    });
                }
                while let Some(result) = batch.join_next().await {
                    match result.expect("task") {
                        (StatusCode::CREATED, _) => accepted += 1,
                        other => refused.push(other),
                    }
                }
            }
            (accepted, refused)
        })
    };
    for _ in 0..5 {
        assert_eq!(
            login(&app, "alice", PASSWORD, None).await.0,
            StatusCode::OK,
            "logins keep their share of the queue"
        );
    }
    stop.cancel();
    let (accepted, refused) = tokio::time::timeout(WAIT, flood)
        .await
        .expect("flood ends")
        .expect("flood task");
    assert!(accepted >= 1, "some registrations are served");
    assert!(!refused.is_empty(), "a full queue refuses registrations");
    assert!(
        refused
            .iter()
            .all(|(s, r)| *s == StatusCode::TOO_MANY_REQUESTS && r.is_some()),
        "{refused:?}"
    );
}
