//! Input hygiene (issue 9, item 9): room names refuse bidi controls, zero-width and
//! other invisible characters; a NUL in any text field is `422 invalid_input` on every
//! backend (PostgreSQL text cannot hold one, and answered 500), including the
//! unauthenticated login.

use socket_hub_protocol::rest::Problem;
use socket_hub_protocol::{ClientFrame, ErrorCode};

use crate::helpers::{PASSWORD, TestApp, join, next_error_with_ref, on_both_backends};

/// POSTs `body` and returns the status and problem code.
async fn post(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, Option<ErrorCode>) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/v1{path}", app.url))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (
        status,
        response.json::<Problem>().await.ok().map(|p| p.code),
    )
}

const INVALID: (u16, Option<ErrorCode>) = (422, Some(ErrorCode::InvalidInput));

#[tokio::test]
async fn nul_in_any_text_field_is_422_on_every_backend() {
    on_both_backends(|app| async move {
        // Unauthenticated doors first.
        let creds = |name: &str| serde_json::json!({ "username": name, "password": PASSWORD });
        assert_eq!(post(&app, "/auth/login", None, creds("ada\u{0}")).await, INVALID);
        assert_eq!(post(&app, "/auth/register", None, creds("ada\u{0}")).await, INVALID);
        let nul_password = serde_json::json!({ "username": "ada", "password": "pass\u{0}word!" });
        assert_eq!(post(&app, "/auth/register", None, nul_password.clone()).await, INVALID);
        assert_eq!(post(&app, "/auth/login", None, nul_password).await, INVALID);
        let nul_refresh = serde_json::json!({ "refresh_token": "x\u{0}y" });
        assert_eq!(post(&app, "/auth/refresh", None, nul_refresh.clone()).await, INVALID);
        assert_eq!(post(&app, "/auth/logout", None, nul_refresh).await, INVALID);

        let (alice, session) = app.user("alice").await;
        let token = alice.access_token();
        let room = alice.create_room("lobby", false, None).await.expect("room").room;
        let private = alice
            .create_room("vault", true, Some("a-long-access-code"))
            .await
            .expect("room")
            .room;
        for body in [
            serde_json::json!({ "name": "lob\u{0}by" }),
            serde_json::json!({ "name": "vault2", "is_private": true, "access_code": "code\u{0}1234" }),
        ] {
            assert_eq!(post(&app, "/rooms", token, body).await, INVALID);
        }
        let messages = format!("/rooms/{}/messages", room.id);
        for body in [
            serde_json::json!({ "content": "hi\u{0}there" }),
            serde_json::json!({ "content": "hi", "client_msg_id": "id\u{0}1" }),
            serde_json::json!({ "content": "hi", "client_msg_id": "ok", "extra\u{0}": 1 }),
        ] {
            assert_eq!(post(&app, &messages, token, body).await, INVALID);
        }
        let (bob, _) = app.user("bob").await;
        let join_path = format!("/rooms/{}/join", private.id);
        let code = serde_json::json!({ "access_code": "a-long-access-code\u{0}" });
        assert_eq!(post(&app, &join_path, bob.access_token(), code).await, INVALID);

        // The same fields over the WebSocket.
        let mut ws = app.connect(&session).await;
        join(&mut ws, room.id, None).await;
        for (id, content) in [("ws-1", "a\u{0}b"), ("ws\u{0}2", "fine")] {
            ws.send(&ClientFrame::MessageSend {
                room_id: room.id,
                client_msg_id: id.into(),
                content: content.into(),
                reply_to: None,
                attachments: Vec::new(),
            })
            .await
            .expect("send");
            let (code, reference) = next_error_with_ref(&mut ws).await;
            assert_eq!((code, reference.as_deref()), (ErrorCode::InvalidInput, Some(id)));
        }
        // Nothing was stored, and the server still works.
        let page = alice.history(room.id, None, None).await.expect("history");
        assert!(page.messages.is_empty());
        alice.send_message(room.id, "clean", None).await.expect("send");
        app
    })
    .await;
}

#[tokio::test]
async fn room_names_refuse_bidi_zero_width_and_invisible_characters() {
    on_both_backends(|app| async move {
        let (alice, _) = app.user("alice").await;
        let token = alice.access_token();
        for name in [
            "invoice\u{202E}fdp.exe", // right-to-left override
            "a\u{2067}b\u{2069}",     // right-to-left isolate + pop
            "ad\u{200B}min",          // zero-width space
            "ad\u{200D}min",          // zero-width joiner
            "\u{2060}general",        // word joiner
            "\u{FEFF}general",        // byte order mark
            "gen\u{AD}eral",          // soft hyphen
            "tag\u{E0067}\u{E0065}",  // tag characters
            "\u{3164}",               // Hangul filler: looks empty
            "line\u{2028}break",      // line separator
            "a\u{7}b",                // control
        ] {
            let body = serde_json::json!({ "name": name });
            assert_eq!(post(&app, "/rooms", token, body).await, INVALID, "{name:?}");
        }
        for name in ["général", "日本語", "عربي", "party 🎉", "heart ❤\u{FE0F}"] {
            let room = alice.create_room(name, false, None).await.expect(name);
            assert_eq!(room.room.name, name);
        }
        app
    })
    .await;
}
