//! Connection lifecycle: keepalive and graceful shutdown.

use std::time::Duration;

use socket_hub_protocol::CloseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{WAIT, join, spawn_app, spawn_with};

/// A client that completes the handshake and then never answers anything, as a
/// half-dead mobile connection would; returns every byte the server sends until it
/// closes the socket.
async fn silent_client(url: &str, token: &str) -> Vec<u8> {
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!(
        "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("handshake");
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
        .expect("server closes the silent client");
    received
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_with_4408() {
    let app = spawn_with(|c| {
        c.ping_interval_secs = 1;
        c.keepalive_timeout_secs = 2;
    })
    .await;
    let (_, session) = app.user("silent").await;
    let bytes = silent_client(&app.url, &session.access_token).await;
    // A server close frame: opcode 0x88, then the length, then the code big-endian.
    let code = CloseCode::KEEPALIVE_TIMEOUT.to_be_bytes();
    let has_close = bytes.windows(4).any(|w| w[0] == 0x88 && w[2..4] == code);
    assert!(has_close, "no 4408 close frame in {} bytes", bytes.len());
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect_with_1012() {
    let mut app = spawn_app().await;
    let (alice, session) = app.user("alice").await;
    let room = alice
        .create_room("general", false, None)
        .await
        .expect("room")
        .room;
    let mut ws = app.connect(&session).await;
    join(&mut ws, room.id, None).await;
    let client = tokio::spawn(async move { ws.closed_within(WAIT).await });
    tokio::time::timeout(Duration::from_secs(15), app.stop())
        .await
        .expect("stops within the grace period");
    let code = client.await.expect("client task").expect("closed");
    assert_eq!(code, Some(CloseCode::SERVICE_RESTART));
    // New connections are refused while (and after) draining.
    assert!(reqwest::get(format!("{}/healthz", app.url)).await.is_err());
}
