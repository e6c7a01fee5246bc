//! Accounts, tokens, and every way a WebSocket authenticates (and fails to).

use std::time::Duration;

use socket_hub::auth::{Claims, hash_refresh_token};
use socket_hub_client::{Auth, Connection};
use socket_hub_protocol::{ClientFrame, CloseCode, ErrorCode, SUBPROTOCOL, ServerFrame, User};

use crate::helpers::{PASSWORD, WAIT, expect_ready, next_error, spawn_app, spawn_with};

#[tokio::test]
async fn register_login_and_me() {
    let app = spawn_app().await;
    let (client, session) = app.user("Ada").await;
    assert_eq!(session.user.username, "Ada");
    assert_eq!(session.expires_in, 900);
    assert_eq!(client.me().await.expect("me"), session.user);

    let mut other = app.client();
    let again = other
        .login("ada", PASSWORD)
        .await
        .expect("login is case-insensitive");
    assert_eq!(again.user.id, session.user.id);
}

#[tokio::test]
async fn usernames_are_unique_case_insensitively_and_validated() {
    let app = spawn_app().await;
    app.user("grace").await;
    let err = app
        .client()
        .register("GRACE", PASSWORD)
        .await
        .expect_err("taken");
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some(ErrorCode::Conflict))
    );
    let err = app
        .client()
        .register("no spaces", PASSWORD)
        .await
        .expect_err("invalid");
    assert_eq!(
        (err.status(), err.code()),
        (Some(422), Some(ErrorCode::InvalidInput))
    );
    let err = app
        .client()
        .register("shortpw", "short")
        .await
        .expect_err("short password");
    assert_eq!(err.status(), Some(422));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = spawn_app().await;
    app.user("alan").await;
    let wrong = app
        .client()
        .login("alan", "not the password")
        .await
        .expect_err("wrong");
    let unknown = app
        .client()
        .login("nobody", PASSWORD)
        .await
        .expect_err("unknown");
    assert_eq!(wrong.status(), Some(401));
    assert_eq!(wrong.code(), Some(ErrorCode::InvalidCredentials));
    assert_eq!(unknown.code(), wrong.code());
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_problems() {
    let app = spawn_app().await;
    let err = app.client().me().await.expect_err("no token");
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::Unauthorized))
    );
    let mut client = app.client();
    client.set_access_token("not.a.jwt");
    assert_eq!(
        client.me().await.expect_err("bad token").status(),
        Some(401)
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    // No grace window: any second presentation is reuse.
    let app = spawn_with(|c| c.refresh_grace_secs = 0).await;
    let (mut client, first) = app.user("turing").await;
    let second = client.refresh(&first.refresh_token).await.expect("rotates");
    assert_ne!(second.refresh_token, first.refresh_token);
    client.me().await.expect("new access token works");

    // Replaying the spent token is the mark of theft: it fails and kills the family.
    let err = client
        .refresh(&first.refresh_token)
        .await
        .expect_err("reuse");
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::RefreshReused))
    );
    let err = client
        .refresh(&second.refresh_token)
        .await
        .expect_err("family revoked");
    assert_eq!(err.status(), Some(401));

    // Other logins are separate families and keep working.
    let third = client.login("turing", PASSWORD).await.expect("login");
    client
        .refresh(&third.refresh_token)
        .await
        .expect("independent family");
}

#[tokio::test]
async fn two_tabs_refreshing_with_one_token_at_once_get_the_same_successor() {
    let app = spawn_app().await;
    let (_, first) = app.user("twotabs").await;
    let (mut tab_a, mut tab_b) = (app.client(), app.client());
    let (a, b) = tokio::join!(
        tab_a.refresh(&first.refresh_token),
        tab_b.refresh(&first.refresh_token)
    );
    let (a, b) = (a.expect("tab a refreshes"), b.expect("tab b refreshes"));
    assert_eq!(a.refresh_token, b.refresh_token, "one successor for both");
    assert_ne!(a.refresh_token, first.refresh_token);
    tab_a.me().await.expect("tab a's access token works");
    tab_b.me().await.expect("tab b's access token works");

    // The family lives on: the shared successor rotates, and so does its successor.
    let c = tab_a
        .refresh(&a.refresh_token)
        .await
        .expect("rotates again");
    tab_b.refresh(&c.refresh_token).await.expect("and again");
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family() {
    let app = spawn_with(|c| c.refresh_grace_secs = 1).await;
    let (mut client, first) = app.user("latecomer").await;
    let second = client.refresh(&first.refresh_token).await.expect("rotates");
    let again = client
        .refresh(&first.refresh_token)
        .await
        .expect("within the window");
    assert_eq!(again.refresh_token, second.refresh_token);

    // The window runs from when the store marked the token spent; nothing else marks
    // its end, so wait exactly until then.
    let spent_at = app
        .state
        .store
        .tokens
        .spent_at(&hash_refresh_token(&first.refresh_token))
        .await
        .expect("query")
        .expect("spent");
    let window_ends = spent_at + 1_000;
    let left = window_ends - chrono::Utc::now().timestamp_millis();
    if let Ok(left) = u64::try_from(left) {
        tokio::time::sleep(Duration::from_millis(left + 1)).await;
    }
    let err = client
        .refresh(&first.refresh_token)
        .await
        .expect_err("reuse after the window");
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::RefreshReused))
    );
    let err = client
        .refresh(&second.refresh_token)
        .await
        .expect_err("family revoked");
    assert_eq!(err.status(), Some(401));
}

#[tokio::test]
async fn a_token_whose_account_does_not_exist_is_refused_everywhere() {
    let app = spawn_app().await;
    let (_, real) = app.user("real").await;
    // Validly signed, unexpired, for an account that was never stored (as after a lost
    // registration, or a deleted account).
    let ghost = app
        .state
        .auth
        .keys
        .issue_access(&User {
            id: 987_654,
            username: "ghost".into(),
        })
        .expect("signs");

    let mut client = app.client();
    client.set_access_token(ghost.clone());
    let err = client.list_rooms().await.expect_err("REST refuses");
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::Unauthorized))
    );
    let err = client.me().await.expect_err("REST refuses");
    assert_eq!(err.status(), Some(401));

    for auth in [Auth::Header(ghost.clone()), Auth::FirstFrame(ghost.clone())] {
        let mut ws = Connection::connect(&app.url, auth).await.expect("connects");
        assert_eq!(next_error(&mut ws).await, ErrorCode::Unauthorized);
        assert_eq!(
            ws.closed_within(WAIT).await.expect("closed"),
            Some(CloseCode::UNAUTHORIZED)
        );
    }

    // Re-authenticating a live connection with it is refused too.
    let mut ws = app.connect(&real).await;
    ws.send(&ClientFrame::Auth { token: ghost })
        .await
        .expect("send auth");
    assert_eq!(next_error(&mut ws).await, ErrorCode::Unauthorized);
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    let (mut client, session) = app.user("hopper").await;
    client.logout(&session.refresh_token).await.expect("logout");
    let err = client
        .refresh(&session.refresh_token)
        .await
        .expect_err("revoked");
    assert_eq!(err.status(), Some(401));
    let err = client.refresh("never-issued").await.expect_err("unknown");
    assert_eq!(err.status(), Some(401));
}

#[tokio::test]
async fn websocket_accepts_header_query_subprotocol_and_first_frame() {
    let app = spawn_app().await;
    let (_, session) = app.user("linus").await;
    let token = session.access_token.clone();
    for auth in [
        Auth::Header(token.clone()),
        Auth::Query(token.clone()),
        Auth::Subprotocol(token.clone()),
        Auth::FirstFrame(token.clone()),
    ] {
        let label = format!("{auth:?}").chars().take(12).collect::<String>();
        let mut ws = Connection::connect(&app.url, auth).await.expect("connects");
        match ws.frame_within(WAIT).await.expect("ready") {
            ServerFrame::Ready { user } => assert_eq!(user, session.user, "{label}"),
            other => panic!("{label}: expected ready, got {other:?}"),
        }
        ws.send(&ClientFrame::Ping).await.expect("ping");
        assert_eq!(
            ws.frame_within(WAIT).await.expect("pong"),
            ServerFrame::Pong
        );
    }
    let ws = Connection::connect(&app.url, Auth::Subprotocol(token))
        .await
        .expect("connects");
    assert_eq!(ws.subprotocol(), Some(SUBPROTOCOL));
}

#[tokio::test]
async fn invalid_token_is_an_error_then_close_4401() {
    let app = spawn_app().await;
    for auth in [
        Auth::Header("garbage".into()),
        Auth::Query("garbage".into()),
        Auth::Subprotocol("garbage".into()),
        Auth::FirstFrame("garbage".into()),
    ] {
        let mut ws = Connection::connect(&app.url, auth).await.expect("connects");
        assert_eq!(next_error(&mut ws).await, ErrorCode::Unauthorized);
        assert_eq!(
            ws.closed_within(WAIT).await.expect("closed"),
            Some(CloseCode::UNAUTHORIZED)
        );
    }
}

#[tokio::test]
async fn no_auth_within_the_timeout_closes_4401() {
    let app = spawn_with(|c| c.auth_timeout_ms = 300).await;
    let mut ws = Connection::connect(&app.url, Auth::None)
        .await
        .expect("connects");
    assert_eq!(
        ws.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::UNAUTHORIZED)
    );

    // A first frame that is not `auth` does not authenticate either.
    let mut ws = Connection::connect(&app.url, Auth::None)
        .await
        .expect("connects");
    ws.send(&ClientFrame::Ping).await.expect("ping");
    assert_eq!(
        ws.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn expired_token_is_refused_with_token_expired() {
    let app = spawn_app().await;
    let (_, session) = app.user("expired").await;
    let now = chrono::Utc::now().timestamp();
    let stale = app
        .state
        .auth
        .keys
        .sign(&Claims {
            sub: session.user.id.to_string(),
            name: "expired".into(),
            iat: now - 120,
            exp: now - 60,
            sid: None,
        })
        .expect("signs");
    let mut ws = Connection::connect(&app.url, Auth::Header(stale.clone()))
        .await
        .expect("connects");
    assert_eq!(next_error(&mut ws).await, ErrorCode::TokenExpired);
    assert_eq!(
        ws.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::UNAUTHORIZED)
    );

    let mut client = app.client();
    client.set_access_token(stale);
    let err = client.me().await.expect_err("expired over REST too");
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::TokenExpired))
    );
}

#[tokio::test]
async fn live_connection_closes_when_its_token_expires() {
    let app = spawn_with(|c| c.access_ttl_secs = 1).await;
    let (_, session) = app.user("shortlived").await;
    let mut ws = Connection::connect(&app.url, Auth::Header(session.access_token))
        .await
        .expect("connects");
    expect_ready(&mut ws).await;
    assert_eq!(next_error(&mut ws).await, ErrorCode::TokenExpired);
    assert_eq!(
        ws.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::UNAUTHORIZED)
    );
}

#[tokio::test]
async fn auth_frame_refreshes_a_live_connection_but_cannot_switch_user() {
    let app = spawn_app().await;
    let (mut ada, ada_session) = app.user("ada2").await;
    let (_, bob_session) = app.user("bob2").await;
    let mut ws = app.connect(&ada_session).await;

    let fresh = ada
        .refresh(&ada_session.refresh_token)
        .await
        .expect("refresh");
    ws.send(&ClientFrame::Auth {
        token: fresh.access_token,
    })
    .await
    .expect("auth");
    assert!(matches!(
        ws.frame_within(WAIT).await.expect("ready"),
        ServerFrame::Ready { .. }
    ));

    ws.send(&ClientFrame::Auth {
        token: bob_session.access_token,
    })
    .await
    .expect("auth");
    assert_eq!(next_error(&mut ws).await, ErrorCode::Forbidden);
    ws.send(&ClientFrame::Ping).await.expect("still open");
    assert_eq!(
        ws.frame_within(WAIT).await.expect("pong"),
        ServerFrame::Pong
    );
}
