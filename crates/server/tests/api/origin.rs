//! The `/ws` origin check over real WebSocket handshakes (issue 9 item 8): a page of a
//! foreign origin gets 403 before the upgrade; the server's own origin, listed origins
//! and clients sending no `Origin` (SDKs) connect as before.

use futures_util::StreamExt;
use socket_hub_protocol::{BEARER_SUBPROTOCOL_PREFIX, SUBPROTOCOL, ServerFrame};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::helpers::{TestApp, WAIT, spawn_with};

const LISTED: &str = "https://chat.example.com";

/// Opens `/ws` with `origin` (none when `None`) and the bearer subprotocol; `Ok` with
/// the first frame's type once upgraded, `Err` with the refusal's status and problem
/// code.
async fn handshake(
    app: &TestApp,
    token: &str,
    origin: Option<&str>,
) -> Result<&'static str, (u16, String)> {
    let url = format!("{}/ws", app.url.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("request");
    let headers = request.headers_mut();
    headers.insert(
        "sec-websocket-protocol",
        format!("{SUBPROTOCOL}, {BEARER_SUBPROTOCOL_PREFIX}{token}")
            .parse()
            .expect("header"),
    );
    if let Some(origin) = origin {
        headers.insert("origin", origin.parse().expect("origin header"));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut ws, _)) => {
            let message = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("a first frame in time")
                .expect("a frame")
                .expect("no error");
            let Message::Text(text) = message else {
                panic!("expected text, got {message:?}");
            };
            let frame: ServerFrame = serde_json::from_str(&text).expect("a server frame");
            Ok(match frame {
                ServerFrame::Ready { .. } => "ready",
                _ => "other",
            })
        }
        Err(WsError::Http(response)) => {
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .unwrap_or_default();
            Err((
                response.status().as_u16(),
                body["code"].as_str().unwrap_or_default().to_owned(),
            ))
        }
        Err(other) => panic!("handshake failed unexpectedly: {other}"),
    }
}

#[tokio::test]
async fn ws_handshakes_from_foreign_origins_are_refused_before_the_upgrade() {
    let app = spawn_with(|c| c.allowed_origins = vec![LISTED.into()]).await;
    let (_, session) = app.user("origin_ada").await;
    let token = session.access_token.as_str();
    let port = app.url.rsplit(':').next().expect("port");
    for origin in [
        "http://evil.example",
        "https://chat.example.com.evil.example",
        "http://chat.example.com", // the listed origin is https only
        "null",
        // Same host, another port: another origin.
        &format!(
            "http://127.0.0.1:{}",
            port.parse::<u16>().expect("port") ^ 1
        ),
        "http://localhost",
    ] {
        assert_eq!(
            handshake(&app, token, Some(origin)).await,
            Err((403, "forbidden".to_owned())),
            "{origin}"
        );
    }
}

#[tokio::test]
async fn ws_handshakes_from_the_own_origin_listed_origins_and_sdks_connect() {
    let app = spawn_with(|c| c.allowed_origins = vec![LISTED.into()]).await;
    let (_, session) = app.user("origin_bob").await;
    let token = session.access_token.as_str();
    let own = app.url.clone();
    let host = own.trim_start_matches("http://");
    for origin in [
        Some(own.as_str()),
        // Behind a TLS-terminating proxy the page is https on the same host and port.
        Some(&*format!("https://{host}")),
        Some(LISTED),
        None, // an SDK, the load generator
    ] {
        assert_eq!(
            handshake(&app, token, origin).await,
            Ok("ready"),
            "{origin:?}"
        );
    }
}

#[tokio::test]
async fn the_origin_check_comes_before_authentication() {
    let app = spawn_with(|_| {}).await;
    // No valid token either: the foreign page learns nothing beyond 403.
    assert_eq!(
        handshake(&app, "not-a-token", Some("http://evil.example")).await,
        Err((403, "forbidden".to_owned()))
    );
}
