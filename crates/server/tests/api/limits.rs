//! Bad input and abusive clients: each gets a clear error frame or close code, never a
//! panic, a hung connection, or a slower room for everyone else.

use socket_hub_client::{Auth, ConnectOptions, Connection};
use socket_hub_protocol::{ClientFrame, CloseCode, ErrorCode, ServerFrame};

use crate::helpers::{
    WAIT, assert_quiet, join, next_chat, next_error, next_error_with_ref, send, spawn_app,
    spawn_with,
};

#[tokio::test]
async fn malformed_json_and_unknown_types_get_errors_and_the_connection_lives() {
    let app = spawn_app().await;
    let (_, session) = app.user("fuzzy").await;
    let mut ws = app.connect(&session).await;
    ws.send_text("{this is not json").await.expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::MalformedJson);
    ws.send_text(r#"{"type":"teleport","room_id":1}"#)
        .await
        .expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::UnknownType);
    ws.send_text(r#"{"type":"join_room"}"#).await.expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::InvalidInput);
    ws.send_text(r#"{"no_type":true}"#).await.expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::InvalidInput);
    ws.send_binary(vec![0, 1, 2]).await.expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::MalformedJson);
    assert_quiet(&mut ws).await;
}

#[tokio::test]
async fn requests_about_rooms_you_are_not_in_are_refused() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (_, bob_s) = app.user("bob").await;
    let room = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;
    let mut ws = app.connect(&bob_s).await;
    for frame in [
        ClientFrame::Typing { room_id: room.id },
        ClientFrame::LeaveRoom { room_id: room.id },
    ] {
        ws.send(&frame).await.expect("send");
        assert_eq!(next_error(&mut ws).await, ErrorCode::NotJoined);
    }
    ws.send(&ClientFrame::MessageSend {
        room_id: room.id,
        client_msg_id: "x".into(),
        content: "hi".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await
    .expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::Forbidden);
    ws.send(&ClientFrame::JoinRoom {
        room_id: 9999,
        since_seq: None,
        access_code: None,
    })
    .await
    .expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::NotFound);
}

#[tokio::test]
async fn content_limits_are_errors_with_the_client_msg_id() {
    let app = spawn_app().await;
    let (alice, session) = app.user("alice").await;
    let room = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;
    let mut ws = app.connect(&session).await;
    join(&mut ws, room.id, None).await;
    for (content, code) in [
        ("x".repeat(4001), ErrorCode::ContentTooLong),
        ("  ".into(), ErrorCode::InvalidInput),
    ] {
        ws.send(&ClientFrame::MessageSend {
            room_id: room.id,
            client_msg_id: "big".into(),
            content,
            reply_to: None,
            attachments: Vec::new(),
        })
        .await
        .expect("send");
        let (got, reference) = next_error_with_ref(&mut ws).await;
        assert_eq!((got, reference.as_deref()), (code, Some("big")));
    }
    // Exactly at the limit is fine, in characters not bytes.
    send(&mut ws, room.id, "max", &"é".repeat(4000)).await;
}

#[tokio::test]
async fn oversized_frame_gets_an_error_then_close_1009() {
    let app = spawn_app().await;
    let (_, session) = app.user("big").await;
    let mut ws = app.connect(&session).await;
    let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(70 * 1024));
    ws.send_text(huge).await.expect("send");
    assert_eq!(next_error(&mut ws).await, ErrorCode::FrameTooLarge);
    assert_eq!(
        ws.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::TOO_BIG)
    );
}

#[tokio::test]
async fn flooding_is_rate_limited_then_disconnected() {
    let app = spawn_with(|c| {
        c.rate_per_sec = 5;
        c.rate_burst = 5;
    })
    .await;
    let (_, session) = app.user("flood").await;
    let mut ws = app.connect(&session).await;
    for _ in 0..20 {
        ws.send(&ClientFrame::Ping).await.expect("send");
    }
    assert_eq!(next_error(&mut ws).await, ErrorCode::RateLimited);
    // Keep pushing far past the limit: the server stops listening.
    for _ in 0..200 {
        if ws.send(&ClientFrame::Ping).await.is_err() {
            break;
        }
    }
    assert_eq!(
        ws.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::POLICY_VIOLATION)
    );
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1013_without_slowing_the_room() {
    let app = spawn_with(|c| {
        c.outbound_queue = 8;
        c.rate_per_sec = 100_000;
        c.rate_burst = 100_000;
        c.user_send_per_sec = 100_000.0;
        c.user_send_burst = 100_000;
    })
    .await;
    let (alice, alice_s) = app.user("alice").await;
    let room = alice
        .create_room("firehose", false, None)
        .await
        .expect("room")
        .room;
    let mut sessions = Vec::new();
    for name in ["slow", "fast"] {
        let (client, session) = app.user(name).await;
        client.join_room(room.id, None).await.expect("join");
        sessions.push(session);
    }
    // The slow client has a tiny receive buffer and stops reading after joining.
    let options = ConnectOptions {
        recv_buffer: Some(4096),
    };
    let mut slow = Connection::connect_with(
        &app.url,
        Auth::Header(sessions[0].access_token.clone()),
        options,
    )
    .await
    .expect("connects");
    join(&mut slow, room.id, None).await;
    let mut fast = app.connect(&sessions[1]).await;
    join(&mut fast, room.id, None).await;
    let mut sender = app.connect(&alice_s).await;

    // More than the kernel will buffer for one socket (tcp_wmem max is 4 MiB here).
    const MESSAGES: i64 = 1500;
    let body = "z".repeat(4000);
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        for _ in 0..MESSAGES {
            seqs.push(next_chat(&mut fast).await.seq);
        }
        seqs
    });
    for i in 0..MESSAGES {
        send(&mut sender, room.id, &format!("m{i}"), &body).await;
    }
    // Everyone else got everything, in order.
    assert_eq!(
        reader.await.expect("fast reader"),
        (1..=MESSAGES).collect::<Vec<_>>()
    );
    // The slow one gets what fit in its buffers, then the close.
    let mut received = 0;
    let code = loop {
        match slow.event_within(WAIT).await {
            Ok(socket_hub_client::Event::Frame(ServerFrame::Chat { .. })) => received += 1,
            Ok(socket_hub_client::Event::Frame(_)) => {}
            Ok(socket_hub_client::Event::Closed { code, .. }) => break code,
            Err(err) => panic!("slow consumer was not closed after {received} chats: {err}"),
        }
    };
    assert_eq!(code, Some(CloseCode::TRY_AGAIN_LATER));
    assert!(
        received < MESSAGES,
        "slow consumer received everything ({received})"
    );
}

#[tokio::test]
async fn every_rate_limited_send_is_answered_with_its_ref_and_when_to_retry() {
    let app = spawn_with(|c| {
        c.rate_per_sec = 1;
        c.rate_burst = 3;
    })
    .await;
    let (alice, session) = app.user("eager").await;
    let room = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;
    let mut ws = app.connect(&session).await;
    const SENDS: usize = 12;
    for i in 0..SENDS {
        ws.send(&ClientFrame::MessageSend {
            room_id: room.id,
            client_msg_id: format!("m{i}"),
            content: format!("message {i}"),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await
        .expect("send");
    }
    // Each send is answered exactly once: an ack, or rate_limited naming it.
    let mut answered = std::collections::BTreeMap::new();
    while answered.len() < SENDS {
        let (id, outcome) = ws
            .wait_for(WAIT, |f| match f {
                ServerFrame::Ack { client_msg_id, .. } => Some((client_msg_id.clone(), None)),
                ServerFrame::Error {
                    code: ErrorCode::RateLimited,
                    reference: Some(id),
                    retry_after_ms,
                    ..
                } => Some((id.clone(), Some(*retry_after_ms))),
                ServerFrame::Error { .. } => panic!("unexpected {f:?}"),
                _ => None,
            })
            .await
            .expect("every send is answered");
        assert!(answered.insert(id, outcome).is_none(), "answered twice");
    }
    let refused: Vec<_> = answered.values().filter_map(|o| *o).collect();
    assert!(refused.len() >= SENDS - 4, "only {} refused", refused.len());
    assert!(
        refused.iter().all(|retry| retry.is_some_and(|ms| ms > 0)),
        "retry_after_ms missing: {refused:?}"
    );
}

#[tokio::test]
async fn joining_more_rooms_than_allowed_is_refused_with_too_many_rooms() {
    let app = spawn_with(|c| c.max_rooms_per_connection = 2).await;
    let (alice, session) = app.user("collector").await;
    let mut rooms = Vec::new();
    for name in ["one", "two", "three"] {
        rooms.push(
            alice
                .create_room(name, false, None)
                .await
                .expect("room")
                .room
                .id,
        );
    }
    let mut ws = app.connect(&session).await;
    join(&mut ws, rooms[0], None).await;
    join(&mut ws, rooms[1], None).await;
    ws.send(&ClientFrame::JoinRoom {
        room_id: rooms[2],
        since_seq: None,
        access_code: None,
    })
    .await
    .expect("send");
    let (code, reference) = next_error_with_ref(&mut ws).await;
    assert_eq!(code, ErrorCode::TooManyRooms);
    assert_eq!(reference, Some(rooms[2].to_string()));
    // Joining one again is not one more, and leaving one makes room.
    join(&mut ws, rooms[1], None).await;
    ws.send(&ClientFrame::LeaveRoom { room_id: rooms[0] })
        .await
        .expect("leave");
    join(&mut ws, rooms[2], None).await;
}

#[tokio::test]
async fn an_invalid_utf8_text_frame_closes_with_1007() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app().await;
    let (_, session) = app.user("garbled").await;
    let addr = app.url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connects");
    let request = format!(
        "GET /ws?token={} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        session.access_token
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("handshake");
    // A final text frame, masked (as clients must) with a zero key, whose payload
    // `C3 28` is not UTF-8: tungstenite will not build one.
    stream
        .write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28])
        .await
        .expect("frame");
    let mut received = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, read_all)
        .await
        .expect("server closes the connection");
    // A server close frame: opcode 0x88, the length, then the code big-endian.
    let code = CloseCode::INVALID_PAYLOAD.to_be_bytes();
    let closes: Vec<u16> = received
        .windows(4)
        .filter(|w| w[0] == 0x88 && w[1] >= 2 && w[1] < 126)
        .map(|w| u16::from_be_bytes([w[2], w[3]]))
        .collect();
    assert!(
        received.windows(4).any(|w| w[0] == 0x88 && w[2..4] == code),
        "expected a 1007 close frame, found close codes {closes:?}"
    );
}
