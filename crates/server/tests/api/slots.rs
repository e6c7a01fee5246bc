//! Issue 9 item 4: connection slots cannot be exhausted by one holder. Sockets that
//! never authenticate are capped per client address and in total (a share of
//! `--max-connections` stays for authenticated users), and one user's sockets are
//! capped, the extra one refused with a `rate_limited` error and close code 1008.

use std::net::SocketAddr;

use socket_hub_client::{Auth, Connection};
use socket_hub_protocol::{CloseCode, ErrorCode};
use tokio::net::TcpSocket;

use crate::helpers::{WAIT, expect_ready, next_error, spawn_with};

/// A WebSocket that connects without a token and then says nothing.
async fn silent(url: &str) -> Result<Connection, socket_hub_client::ClientError> {
    Connection::connect(url, Auth::None).await
}

/// A tokenless upgrade request past the share is refused before the upgrade: 429 with
/// `Retry-After`.
async fn assert_upgrade_refused(url: &str) {
    let response = reqwest::Client::new()
        .get(format!("{url}/ws"))
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let refused = silent(url).await.err().expect("refused");
    assert!(refused.to_string().contains("429"), "{refused}");
}

/// A connection from another loopback address (a different client to the server).
async fn connect_from(source: [u8; 4], url: &str, auth: Auth) -> Connection {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    Connection::connect_socket(url, auth, socket, Default::default())
        .await
        .expect("connects")
}

#[tokio::test]
async fn silent_sockets_from_one_address_cannot_lock_out_an_authenticated_user() {
    let app = spawn_with(|c| {
        c.max_connections = 20;
        // 10 slots for unauthenticated connections in total, 4 of them per address.
        c.max_unauthenticated_percent = 50;
        c.max_unauthenticated_per_address = 4;
        // Long enough that the silent sockets are all still held when the user comes.
        c.auth_timeout_ms = 60_000;
    })
    .await;
    let (_, session) = app.user("victim").await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(silent(&app.url).await.expect("within the address's share"));
    }
    // Far more silent sockets than the pool holds: every one past the share is refused
    // at the handshake, before it takes a slot.
    for _ in 0..30 {
        assert_upgrade_refused(&app.url).await;
    }
    // The user still gets in: with a token at the handshake from the same address, or
    // with a first-frame token from another one.
    let _ws = app.connect(&session).await;
    let token = Auth::FirstFrame(session.access_token.clone());
    let mut ws = connect_from([127, 0, 0, 2], &app.url, token).await;
    expect_ready(&mut ws).await;
    drop(held);
}

#[tokio::test]
async fn silent_sockets_cannot_take_the_slots_kept_for_authenticated_users() {
    let app = spawn_with(|c| {
        c.max_connections = 10;
        c.max_unauthenticated_percent = 50;
        // As if each came from another address: only the total share applies.
        c.max_unauthenticated_per_address = 100;
        c.auth_timeout_ms = 60_000;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(silent(&app.url).await.expect("within the share"));
    }
    assert_upgrade_refused(&app.url).await;
    // The other half of the slots is there for users with tokens.
    let mut users = Vec::new();
    for i in 0..5 {
        let (_, session) = app.user(&format!("user{i}")).await;
        users.push(app.connect(&session).await);
    }
    drop(held);
}

#[tokio::test]
async fn one_users_extra_socket_is_refused_while_others_connect() {
    let app = spawn_with(|c| c.max_connections_per_user = 3).await;
    let (_, alice) = app.user("alice").await;
    let (_, bob) = app.user("bob").await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        tabs.push(app.connect(&alice).await);
    }
    let mut extra = Connection::connect(&app.url, Auth::Header(alice.access_token.clone()))
        .await
        .expect("upgrades");
    assert_eq!(next_error(&mut extra).await, ErrorCode::RateLimited);
    assert_eq!(
        extra.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::POLICY_VIOLATION)
    );
    // Others are not affected.
    let _bob = app.connect(&bob).await;
    // Closing a tab gives its slot back.
    tabs.pop().expect("a tab").close().await.expect("closes");
    // The server frees the slot once it has seen the close: retry until it has.
    let again = tokio::time::timeout(WAIT, async {
        loop {
            let mut ws = Connection::connect(&app.url, Auth::Header(alice.access_token.clone()))
                .await
                .expect("upgrades");
            if matches!(
                ws.frame_within(WAIT).await,
                Ok(socket_hub_protocol::ServerFrame::Ready { .. })
            ) {
                return ws;
            }
        }
    })
    .await;
    assert!(again.is_ok(), "the freed slot was not given back");
}
