//! Quotas (issue 9, item 5): one send bucket per user shared by REST and every
//! WebSocket of that user; a room-creation quota per user; a registration throttle per
//! client address. Limits are configured small and refill slowly, so no assertion
//! depends on timing.

use socket_hub_client::Client;
use socket_hub_protocol::rest::Problem;
use socket_hub_protocol::{ClientFrame, ErrorCode, ServerFrame};

use crate::helpers::{PASSWORD, WAIT, join, members, send, spawn_with};

/// A refill so slow that no test run sees a token come back.
const GLACIAL: f64 = 0.001;

/// Sends over WebSocket and returns the refusal's `retry_after_ms`, failing on an ack.
async fn refused_ws_send(ws: &mut socket_hub_client::Connection, room_id: i64, id: &str) -> u64 {
    ws.send(&ClientFrame::MessageSend {
        room_id,
        client_msg_id: id.into(),
        content: "one too many".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await
    .expect("send");
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Error {
            code: ErrorCode::RateLimited,
            reference: Some(r),
            retry_after_ms,
            ..
        } if r == id => Some(retry_after_ms.expect("retry_after_ms")),
        ServerFrame::Ack { client_msg_id, .. } if client_msg_id == id => {
            panic!("send {id} was accepted past the user's quota")
        }
        _ => None,
    })
    .await
    .expect("rate_limited for the send")
}

/// POSTs `body` to `path` and returns the status, `Retry-After` and problem code.
async fn post_raw(
    url: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> (u16, Option<String>, Option<ErrorCode>) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/api/v1{path}"))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let problem = response.json::<Problem>().await.ok();
    (status, retry_after, problem.map(|p| p.code))
}

#[tokio::test]
async fn rest_and_websocket_sends_share_one_bucket_per_user() {
    let app = spawn_with(|c| {
        c.user_send_per_sec = GLACIAL;
        c.user_send_burst = 4;
    })
    .await;
    let (alice, alice_s, bob, bob_s, room) = members(&app).await;
    let mut first = app.connect(&alice_s).await;
    let mut second = app.connect(&alice_s).await;
    join(&mut first, room.id, None).await;
    join(&mut second, room.id, None).await;

    // Four tokens, spent through three doors: REST, one socket, another socket.
    alice
        .send_message(room.id, "rest 1", None)
        .await
        .expect("rest 1");
    alice
        .send_message(room.id, "rest 2", None)
        .await
        .expect("rest 2");
    send(&mut first, room.id, "ws-1", "ws 1").await;
    send(&mut second, room.id, "ws-2", "ws 2").await;

    // Empty for every door: the other socket, a new socket, and REST.
    assert!(refused_ws_send(&mut first, room.id, "ws-3").await >= 1);
    let mut third = app.connect(&alice_s).await;
    join(&mut third, room.id, None).await;
    refused_ws_send(&mut third, room.id, "ws-4").await;
    let (status, retry_after, code) = post_raw(
        &app.url,
        &format!("/rooms/{}/messages", room.id),
        alice.access_token(),
        &[],
        &serde_json::json!({ "content": "rest 3" }),
    )
    .await;
    assert_eq!((status, code), (429, Some(ErrorCode::RateLimited)));
    let secs: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!(secs >= 1);

    // Per user: Bob's bucket is his own.
    bob.send_message(room.id, "bob 1", None)
        .await
        .expect("bob sends");
    let mut bob_ws = app.connect(&bob_s).await;
    join(&mut bob_ws, room.id, None).await;
    send(&mut bob_ws, room.id, "bob-2", "bob 2").await;
    // Exactly the accepted messages were stored.
    let page = bob.history(room.id, None, Some(50)).await.expect("history");
    assert_eq!(page.messages.len(), 6);
}

#[tokio::test]
async fn room_creation_is_limited_per_user() {
    let app = spawn_with(|c| {
        c.room_create_per_hour = 1;
        c.room_create_burst = 3;
    })
    .await;
    let (alice, _) = app.user("alice").await;
    let (bob, _) = app.user("bob").await;
    for i in 0..3 {
        alice
            .create_room(&format!("room {i}"), false, None)
            .await
            .expect("within the quota");
    }
    let err = alice
        .create_room("room 3", true, Some("a-long-access-code"))
        .await
        .expect_err("quota used up");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    let (status, retry_after, _) = post_raw(
        &app.url,
        "/rooms",
        alice.access_token(),
        &[],
        &serde_json::json!({ "name": "room 4" }),
    )
    .await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some(), "Retry-After");
    bob.create_room("bob's", false, None)
        .await
        .expect("another user's quota is untouched");
    let mine = alice.joined_rooms().await.expect("rooms");
    assert_eq!(mine.len(), 3, "refused creations stored nothing");
}

#[tokio::test]
async fn registration_is_throttled_per_client_address() {
    let app = spawn_with(|c| {
        c.register_per_hour = 1;
        c.register_burst = 2;
        // Lets the test speak for other addresses through X-Forwarded-For.
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("network")];
    })
    .await;
    app.user("first").await;
    app.user("second").await;
    let err = Client::new(&app.url)
        .register("third", PASSWORD)
        .await
        .expect_err("throttled");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    // The refusal comes before the account: the name is still free elsewhere.
    let from = |addr: &'static str| [("x-forwarded-for", addr)];
    let body = serde_json::json!({ "username": "third", "password": PASSWORD });
    let (status, _, _) = post_raw(
        &app.url,
        "/auth/register",
        None,
        &from("198.51.100.7"),
        &body,
    )
    .await;
    assert_eq!(status, 201, "another address registers");
    // IPv6: one /64 is one client.
    for (i, addr) in ["2001:db8:1:2::1", "2001:db8:1:2::2"]
        .into_iter()
        .enumerate()
    {
        let body = serde_json::json!({ "username": format!("six{i}"), "password": PASSWORD });
        let (status, _, _) = post_raw(
            &app.url,
            "/auth/register",
            None,
            &[("x-forwarded-for", addr)],
            &body,
        )
        .await;
        assert_eq!(status, 201);
    }
    let body = serde_json::json!({ "username": "six2", "password": PASSWORD });
    let (status, retry_after, code) = post_raw(
        &app.url,
        "/auth/register",
        None,
        &[("x-forwarded-for", "2001:db8:1:2:ffff::9")],
        &body,
    )
    .await;
    assert_eq!((status, code), (429, Some(ErrorCode::RateLimited)));
    assert!(retry_after.is_some(), "Retry-After");
}
