//! Issue 9 item 11: logout means out. The access token of the logged-out session is
//! refused at once on REST and WebSocket, that session's live sockets are closed with
//! 4401, and the user's other sessions carry on.

use socket_hub_client::{Auth, Connection};
use socket_hub_protocol::{ClientFrame, CloseCode, ErrorCode};

use crate::helpers::{PASSWORD, WAIT, expect_ready, next_error, spawn_app};

#[tokio::test]
async fn logout_revokes_the_sessions_access_token_and_closes_its_sockets() {
    let app = spawn_app().await;
    let (mut phone, first) = app.user("alice").await;
    let mut laptop = app.client();
    let second = laptop.login("alice", PASSWORD).await.expect("second login");
    let mut first_ws = app.connect(&first).await;
    let mut second_ws = app.connect(&second).await;
    phone.me().await.expect("signed in");

    phone.logout(&first.refresh_token).await.expect("logout");

    // REST: the old access token is refused at once, not at its expiry.
    let refused = phone.me().await.expect_err("refused after logout");
    assert_eq!(refused.status(), Some(401), "{refused}");
    // Its live socket is told and closed with 4401.
    assert_eq!(next_error(&mut first_ws).await, ErrorCode::Unauthorized);
    assert_eq!(
        first_ws.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::UNAUTHORIZED)
    );
    // A new socket with it is refused, at the handshake or in a first frame.
    for auth in [
        Auth::Header(first.access_token.clone()),
        Auth::FirstFrame(first.access_token.clone()),
    ] {
        let mut ws = Connection::connect(&app.url, auth).await.expect("upgrades");
        assert_eq!(next_error(&mut ws).await, ErrorCode::Unauthorized);
        assert_eq!(
            ws.closed_within(WAIT).await.expect("closed"),
            Some(CloseCode::UNAUTHORIZED)
        );
    }
    // The other session is untouched: REST, its socket, and re-auth on it.
    laptop.me().await.expect("other session still signed in");
    second_ws
        .send(&ClientFrame::Auth {
            token: second.access_token.clone(),
        })
        .await
        .expect("re-auth");
    expect_ready(&mut second_ws).await;
    // Re-auth with the logged-out token on the surviving socket is refused.
    second_ws
        .send(&ClientFrame::Auth {
            token: first.access_token.clone(),
        })
        .await
        .expect("re-auth");
    assert_eq!(next_error(&mut second_ws).await, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn a_logged_out_token_stays_refused_after_a_restart() {
    let app = spawn_app().await;
    let (mut client, session) = app.user("bob").await;
    client.logout(&session.refresh_token).await.expect("logout");
    let app = app.restart().await;
    let mut client = app.client();
    client.set_access_token(session.access_token.clone());
    let refused = client.me().await.expect_err("refused after restart");
    assert_eq!(refused.status(), Some(401), "{refused}");
}
