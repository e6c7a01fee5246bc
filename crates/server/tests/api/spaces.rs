//! The seed's spaces API (`/v1/ws/spaces/{space_id}` and its broadcast endpoint) with a
//! plain WebSocket client: its message format over our rooms, its 512-byte limit, and
//! authentication the seed did not have.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use socket_hub_protocol::rest::Session;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::{TestApp, WAIT, join, next_chat, spawn_app, spawn_with};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const API_KEY: &str = "test-api-key-0123456789abcdef";

fn space_url(app: &TestApp, space: &str, query: &str) -> String {
    format!(
        "{}/v1/ws/spaces/{space}?{query}",
        app.url.replacen("http", "ws", 1)
    )
}

/// Connects as `session` (token and matching `user_id` in the query) and reads the
/// connection's own `join`.
async fn connect(app: &TestApp, space: &str, session: &Session) -> (Ws, Value) {
    let query = format!("token={}&user_id={}", session.access_token, session.user.id);
    let (mut ws, _) = connect_async(space_url(app, space, &query))
        .await
        .expect("spaces upgrade");
    let joined = next_of(&mut ws, "join").await;
    (ws, joined)
}

/// The next message of `kind`, skipping others.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).expect("JSON message");
                    if value["type"] == kind {
                        return value;
                    }
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended waiting for {kind}: {other:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} message in time"))
}

/// The close frame's code, skipping other messages.
async fn close_code(ws: &mut Ws) -> CloseCode {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(Some(frame)))) => return frame.code,
                Some(Ok(WsMessage::Close(None))) | None => panic!("closed without a code"),
                Some(Ok(_)) => {}
                Some(Err(err)) => panic!("connection broke: {err}"),
            }
        }
    })
    .await
    .expect("a close frame in time")
}

async fn send_json(ws: &mut Ws, value: Value) {
    ws.send(WsMessage::Text(value.to_string().into()))
        .await
        .expect("send");
}

#[tokio::test]
async fn spaces_members_join_chat_ping_and_leave() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let (mut a, joined) = connect(&app, "sp-general", &alice).await;
    assert_eq!(joined["space_id"], "sp-general");
    assert_eq!(joined["user_id"], alice.user.id.to_string());
    let (mut b, _) = connect(&app, "sp-general", &bob).await;
    let seen = next_of(&mut a, "join").await;
    assert_eq!(seen["user_id"], bob.user.id.to_string());
    assert_eq!(seen["username"], "bob");

    send_json(&mut a, json!({"type": "chat", "message": "hola"})).await;
    for ws in [&mut a, &mut b] {
        let chat = next_of(ws, "chat").await;
        assert_eq!(chat["message"], "hola");
        assert_eq!(chat["seq"], 1);
        assert_eq!(chat["user_id"], alice.user.id.to_string());
        assert_eq!(chat["username"], "alice");
        assert_eq!(chat["space_id"], "sp-general");
    }

    send_json(&mut b, json!({"type": "ping"})).await;
    next_of(&mut b, "pong").await;

    // Garbage is answered with an error, and the connection stays usable.
    send_json(&mut b, json!({"type": "shout"})).await;
    let error = next_of(&mut b, "error").await;
    assert_eq!(error["code"], "unknown_type");

    send_json(&mut b, json!({"type": "leave"})).await;
    assert_eq!(close_code(&mut b).await, CloseCode::Normal);
    let left = next_of(&mut a, "leave").await;
    assert_eq!(left["user_id"], bob.user.id.to_string());

    // A space is a room named by its id: a /ws client of that room sees the same seqs.
    let room_id = joined["room_id"].as_i64().expect("room_id");
    let mut native = app.connect(&alice).await;
    join(&mut native, room_id, Some(0)).await;
    assert_eq!(next_chat(&mut native).await.content, "hola");
    let sent = crate::helpers::send(&mut native, room_id, "n-1", "from /ws").await;
    let chat = next_of(&mut a, "chat").await;
    assert_eq!(chat["message"], "from /ws");
    assert_eq!(chat["seq"], sent.seq);
}

#[tokio::test]
async fn a_spaces_message_over_512_bytes_is_refused_and_closes_with_1009() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let (mut a, _) = connect(&app, "sp-limit", &alice).await;
    // Just under the limit is fine.
    let fits = "x".repeat(512 - r#"{"type":"chat","message":""}"#.len());
    send_json(&mut a, json!({"type": "chat", "message": fits})).await;
    assert_eq!(next_of(&mut a, "chat").await["seq"], 1);
    let too_big = "x".repeat(600);
    send_json(&mut a, json!({"type": "chat", "message": too_big})).await;
    let error = next_of(&mut a, "error").await;
    assert_eq!(error["code"], "frame_too_large");
    assert!(
        error["message"].as_str().is_some_and(|m| m.contains("512")),
        "{error}"
    );
    assert_eq!(close_code(&mut a).await, CloseCode::Size);
}

#[tokio::test]
async fn a_user_id_other_than_the_tokens_is_refused() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice").await;
    let query = format!("token={}&user_id={}", alice.access_token, alice.user.id + 1);
    let refused = connect_async(space_url(&app, "sp-x", &query)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // The same check after a first-message `auth`.
    let query = format!("user_id={}", alice.user.id + 1);
    let (mut ws, _) = connect_async(space_url(&app, "sp-x", &query))
        .await
        .expect("upgrade without a token");
    send_json(
        &mut ws,
        json!({"type": "auth", "token": alice.access_token}),
    )
    .await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "forbidden");
    assert_eq!(close_code(&mut ws).await, CloseCode::Policy);
}

#[tokio::test]
async fn bad_or_missing_tokens_are_refused() {
    let app = spawn_app().await;
    let refused = connect_async(space_url(&app, "sp-x", "token=not.a.token")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401)
        }
        other => panic!("expected 401, got {other:?}"),
    }
    // No token in the handshake: the first message must authenticate.
    let (mut ws, _) = connect_async(space_url(&app, "sp-x", ""))
        .await
        .expect("upgrade without a token");
    send_json(&mut ws, json!({"type": "chat", "message": "hi"})).await;
    let error = next_of(&mut ws, "error").await;
    assert_eq!(error["code"], "unauthorized");
    assert_eq!(close_code(&mut ws).await, CloseCode::from(4401));
    // A first `auth` message with a good token joins.
    let (_, alice) = app.user("alice").await;
    let (mut ws, _) = connect_async(space_url(&app, "sp-x", ""))
        .await
        .expect("upgrade without a token");
    send_json(
        &mut ws,
        json!({"type": "auth", "token": alice.access_token}),
    )
    .await;
    assert_eq!(
        next_of(&mut ws, "join").await["user_id"],
        alice.user.id.to_string()
    );
}

#[tokio::test]
async fn broadcast_sends_as_the_token_user_or_as_anyone_with_an_api_key() {
    let app = spawn_with(|config| config.api_keys = vec![API_KEY.into()]).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let (mut a, _) = connect(&app, "sp-news", &alice).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/ws/spaces/sp-news/broadcast", app.url);

    let response = http
        .post(&url)
        .bearer_auth(&alice.access_token)
        .json(&json!({"message": "by token", "user_id": alice.user.id.to_string(), "username": "alice"}))
        .send()
        .await
        .expect("broadcast");
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.expect("message JSON");
    let chat = next_of(&mut a, "chat").await;
    assert_eq!(chat["message"], "by token");
    assert_eq!(chat["seq"], stored["seq"]);

    // A bot with the API key speaks as bob (who never connected to the space).
    let response = http
        .post(&url)
        .header("x-api-key", API_KEY)
        .json(&json!({"message": "by bot", "user_id": bob.user.id, "username": "bob"}))
        .send()
        .await
        .expect("broadcast");
    assert_eq!(response.status(), 201);
    let chat = next_of(&mut a, "chat").await;
    assert_eq!(chat["message"], "by bot");
    assert_eq!(chat["user_id"], bob.user.id.to_string());

    // A wrong key: 401 problem JSON.
    let response = http
        .post(&url)
        .header("x-api-key", "wrong-key-0123456789abcdef")
        .json(&json!({"message": "nope", "user_id": bob.user.id}))
        .send()
        .await
        .expect("broadcast");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("problem JSON");
    assert_eq!(problem["code"], "unauthorized");

    // A token cannot speak for someone else, and nothing without credentials.
    let response = http
        .post(&url)
        .bearer_auth(&alice.access_token)
        .json(&json!({"message": "as bob", "user_id": bob.user.id}))
        .send()
        .await
        .expect("broadcast");
    assert_eq!(response.status(), 403);
    let response = http
        .post(&url)
        .json(&json!({"message": "anonymous"}))
        .send()
        .await
        .expect("broadcast");
    assert_eq!(response.status(), 401);
    // An API key needs a user to send as.
    let response = http
        .post(&url)
        .header("x-api-key", API_KEY)
        .json(&json!({"message": "no one"}))
        .send()
        .await
        .expect("broadcast");
    assert_eq!(response.status(), 422);
}
