//! Rooms over REST: visibility, membership, history pages, problem responses.

use socket_hub_protocol::{ClientFrame, ErrorCode, ServerFrame};

use crate::helpers::{WAIT, join, next_error, spawn_app, spawn_with};

#[tokio::test]
async fn private_rooms_are_invisible_until_joined_with_the_code() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let secret = alice
        .create_room("secret", true, Some("open-sesame"))
        .await
        .expect("room")
        .room;
    let public = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;

    let ids: Vec<_> = bob
        .list_rooms()
        .await
        .expect("list")
        .iter()
        .map(|r| r.room.id)
        .collect();
    assert_eq!(ids, vec![public.id]);
    for err in [
        bob.room(secret.id).await.expect_err("hidden"),
        bob.history(secret.id, None, None)
            .await
            .expect_err("hidden")
            .into_status_err(),
        bob.members(secret.id)
            .await
            .expect_err("hidden")
            .into_status_err(),
        bob.join_room(secret.id, None)
            .await
            .expect_err("needs code")
            .into_status_err(),
    ] {
        assert_eq!(
            (err.status(), err.code()),
            (Some(404), Some(ErrorCode::NotFound))
        );
    }
    // Over WebSocket too.
    let mut ws = app.connect(&bob_s).await;
    ws.send(&ClientFrame::JoinRoom {
        room_id: secret.id,
        since_seq: None,
        access_code: None,
    })
    .await
    .expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::NotFound);

    let err = bob
        .join_room(secret.id, Some("wrong"))
        .await
        .expect_err("wrong code");
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some(ErrorCode::WrongAccessCode))
    );
    let joined = bob
        .join_room(secret.id, Some("open-sesame"))
        .await
        .expect("joins");
    assert!(joined.room.is_member);
    assert_eq!(joined.room.member_count, 2);
    assert!(
        bob.list_rooms()
            .await
            .expect("list")
            .iter()
            .any(|r| r.room.id == secret.id)
    );
    join(&mut ws, secret.id, None).await;
}

#[tokio::test]
async fn websocket_join_with_access_code_makes_a_member() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let secret = alice
        .create_room("secret", true, Some("letmein!"))
        .await
        .expect("room")
        .room;
    let mut ws = app.connect(&bob_s).await;
    ws.send(&ClientFrame::JoinRoom {
        room_id: secret.id,
        since_seq: None,
        access_code: Some("nope".into()),
    })
    .await
    .expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::WrongAccessCode);
    ws.send(&ClientFrame::JoinRoom {
        room_id: secret.id,
        since_seq: None,
        access_code: Some("letmein!".into()),
    })
    .await
    .expect("send");
    let joined = ws
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::RoomJoined { .. }).then_some(())
        })
        .await;
    assert!(joined.is_ok());
    assert!(bob.room(secret.id).await.expect("visible").room.is_member);
}

#[tokio::test]
async fn history_pages_backwards_with_a_cursor() {
    // 120 messages from one user: more than the default send burst.
    let app = spawn_with(|c| c.user_send_burst = 200).await;
    let (alice, _) = app.user("alice").await;
    let room = alice
        .create_room("long", false, None)
        .await
        .expect("room")
        .room;
    for i in 1..=120 {
        alice
            .send_message(room.id, &format!("m{i}"), None)
            .await
            .expect("send");
    }
    let mut seqs = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = alice
            .history(room.id, before, Some(50))
            .await
            .expect("page");
        pages += 1;
        seqs.extend(page.messages.iter().map(|m| m.seq));
        match page.next_before_seq {
            Some(cursor) => before = Some(cursor),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seqs, (1..=120).rev().collect::<Vec<i64>>());
    let default = alice
        .history(room.id, None, None)
        .await
        .expect("default page");
    assert_eq!(default.messages.len(), 50);
    for bad in [0, 201] {
        let err = alice
            .history(room.id, None, Some(bad))
            .await
            .expect_err("bad limit");
        assert_eq!(err.status(), Some(422));
    }
}

#[tokio::test]
async fn history_of_a_public_room_needs_membership() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (bob, _) = app.user("bob").await;
    let room = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;
    let err = bob
        .history(room.id, None, None)
        .await
        .expect_err("not a member");
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some(ErrorCode::Forbidden))
    );
    bob.join_room(room.id, None).await.expect("join");
    assert!(bob.history(room.id, None, None).await.is_ok());
    let members = bob.members(room.id).await.expect("members").members;
    let roles: Vec<_> = members
        .iter()
        .map(|m| (m.user.username.as_str(), m.role.as_str()))
        .collect();
    assert_eq!(roles, vec![("alice", "owner"), ("bob", "member")]);
}

#[tokio::test]
async fn read_markers_feed_unread_counts() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let room = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;
    for i in 0..5 {
        alice
            .send_message(room.id, &format!("m{i}"), None)
            .await
            .expect("send");
    }
    alice.mark_read(room.id, 3).await.expect("mark");
    alice.mark_read(room.id, 2).await.expect("never moves back");
    let view = alice.room(room.id).await.expect("room");
    assert_eq!((view.room.last_seq, view.last_read_seq), (5, 3));
}

#[tokio::test]
async fn bad_rest_input_gets_problem_json() {
    let app = spawn_app().await;
    let (alice, session) = app.user("alice").await;
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/api/v1/rooms", app.url))
        .bearer_auth(&session.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 422);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: serde_json::Value = response.json().await.expect("json");
    assert_eq!(problem["code"], "malformed_json");

    let response = http
        .get(format!("{}/api/v1/rooms/not-a-number", app.url))
        .bearer_auth(&session.access_token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 404);

    let err = alice
        .create_room("public with code", false, Some("letmein!"))
        .await
        .expect_err("codes are for private rooms");
    assert_eq!(err.status(), Some(422));
    let err = alice
        .create_room("   ", false, None)
        .await
        .expect_err("empty name");
    assert_eq!(err.status(), Some(422));
    let room = alice
        .create_room("ok", false, None)
        .await
        .expect("room")
        .room;
    let err = alice
        .send_message(room.id, &"x".repeat(4001), None)
        .await
        .expect_err("too long");
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some(ErrorCode::ContentTooLong))
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi_answer() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let health = http
        .get(format!("{}/healthz", app.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = http
        .get(format!("{}/readyz", app.url))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["ready"], true);
    let openapi: serde_json::Value = http
        .get(format!("{}/api/openapi.json", app.url))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    for path in [
        "/api/v1/auth/register",
        "/api/v1/rooms/{id}/messages",
        "/api/v1/users/me",
        "/v1/ws/spaces/{space_id}/broadcast",
    ] {
        assert!(openapi["paths"][path].is_object(), "openapi lacks {path}");
    }
    let metrics = http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
}

/// Lets heterogeneous results be checked in one list.
trait IntoStatusErr {
    fn into_status_err(self) -> socket_hub_client::ClientError;
}

impl IntoStatusErr for socket_hub_client::ClientError {
    fn into_status_err(self) -> socket_hub_client::ClientError {
        self
    }
}
