//! The spawn-app pattern: a real server per test, on port 0, with its own data dir.

use std::time::Duration;

use socket_hub::{App, Config};
use socket_hub_client::{Auth, Client, Connection};
use socket_hub_protocol::rest::Session;
use socket_hub_protocol::{ClientFrame, Message, RoomId, Seq, ServerFrame};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// How long any single expected event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);
pub const PASSWORD: &str = "correct horse battery";

/// A running server owned by one test.
pub struct TestApp {
    pub url: String,
    pub dir: TempDir,
    pub state: socket_hub::state::AppState,
    shutdown: CancellationToken,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// Starts the app with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts the app after `tweak` adjusts its config.
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    start(dir, tweak).await
}

async fn start(dir: TempDir, tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        socket_hub::telemetry::init_logging(socket_hub::config::LogFormat::Pretty);
    }
    let mut config = Config::for_data_dir(dir.path());
    config.database_url = String::new();
    tweak(&mut config);
    let app = App::build(config).await.expect("app builds");
    let url = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let shutdown = app.shutdown_token();
    let handle = tokio::spawn(async move {
        app.run_until_stopped().await.expect("server runs");
    });
    TestApp {
        url,
        dir,
        state,
        shutdown,
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the server (graceful) and starts a new one on the same data dir.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        start(dir, |_| {}).await
    }

    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(WAIT, handle)
                .await
                .expect("server stops in time")
                .expect("server task");
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url)
    }

    /// Registers `name` and returns a signed-in client with its session.
    pub async fn user(&self, name: &str) -> (Client, Session) {
        let mut client = self.client();
        let session = client.register(name, PASSWORD).await.expect("register");
        (client, session)
    }

    /// A WebSocket for `session` that has seen its `ready`.
    pub async fn connect(&self, session: &Session) -> Connection {
        let mut ws = Connection::connect(&self.url, Auth::Header(session.access_token.clone()))
            .await
            .expect("connects");
        expect_ready(&mut ws).await;
        ws
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn expect_ready(ws: &mut Connection) {
    let frame = ws.frame_within(WAIT).await.expect("a first frame");
    assert!(
        matches!(frame, ServerFrame::Ready { .. }),
        "expected ready, got {frame:?}"
    );
}

/// Joins a room on `ws` and returns its `room_joined` (members, last_seq).
pub async fn join(ws: &mut Connection, room_id: RoomId, since_seq: Option<Seq>) -> ServerFrame {
    ws.send(&ClientFrame::JoinRoom {
        room_id,
        since_seq,
        access_code: None,
    })
    .await
    .expect("send join");
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::RoomJoined { .. } => Some(f.clone()),
        ServerFrame::Error { .. } => panic!("join failed: {f:?}"),
        _ => None,
    })
    .await
    .expect("room_joined")
}

/// Sends a message over WebSocket and waits for its ack.
pub async fn send(
    ws: &mut Connection,
    room_id: RoomId,
    client_msg_id: &str,
    content: &str,
) -> Message {
    ws.send(&ClientFrame::MessageSend {
        room_id,
        client_msg_id: client_msg_id.into(),
        content: content.into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await
    .expect("send message");
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Ack {
            client_msg_id: id,
            message,
        } if id == client_msg_id => Some(message.clone()),
        ServerFrame::Error { .. } => panic!("send failed: {f:?}"),
        _ => None,
    })
    .await
    .expect("ack")
}

/// The next `chat` message on `ws`, skipping other frames.
pub async fn next_chat(ws: &mut Connection) -> Message {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Chat { message } => Some(message.clone()),
        _ => None,
    })
    .await
    .expect("chat")
}

/// The next error frame's code.
pub async fn next_error(ws: &mut Connection) -> socket_hub_protocol::ErrorCode {
    next_error_with_ref(ws).await.0
}

/// The next error frame's code and the `ref` naming the request it answers.
pub async fn next_error_with_ref(
    ws: &mut Connection,
) -> (socket_hub_protocol::ErrorCode, Option<String>) {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Error {
            code, reference, ..
        } => Some((*code, reference.clone())),
        _ => None,
    })
    .await
    .expect("error frame")
}

/// Proves nothing else is queued for `ws`: a ping's pong must be the next frame.
pub async fn assert_quiet(ws: &mut Connection) {
    ws.send(&ClientFrame::Ping).await.expect("ping");
    let frame = ws.frame_within(WAIT).await.expect("pong");
    assert_eq!(frame, ServerFrame::Pong, "expected nothing before the pong");
}

/// Alice and Bob, both members of a public room, each with a connection that joined it.
pub struct Duo {
    pub alice: Client,
    pub alice_s: Session,
    pub bob: Client,
    pub room: socket_hub_protocol::Room,
    pub a: Connection,
    pub b: Connection,
}

/// Alice's public room "general" with Bob as a member; no connections yet.
pub async fn members(
    app: &TestApp,
) -> (Client, Session, Client, Session, socket_hub_protocol::Room) {
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let room = alice
        .create_room("general", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(room.id, None).await.expect("bob joins");
    (alice, alice_s, bob, bob_s, room)
}

/// The usual two-person setup of a chat test.
pub async fn duo(app: &TestApp) -> Duo {
    let (alice, alice_s, bob, bob_s, room) = members(app).await;
    let mut a = app.connect(&alice_s).await;
    let mut b = app.connect(&bob_s).await;
    join(&mut b, room.id, None).await;
    join(&mut a, room.id, None).await;
    Duo {
        alice,
        alice_s,
        bob,
        room,
        a,
        b,
    }
}

/// The HTTP status and problem code of a REST call that must be refused.
pub fn refused<T: std::fmt::Debug>(result: Result<T, socket_hub_client::ClientError>) -> Refusal {
    let err = result.expect_err("the call must be refused");
    (err.status(), err.code())
}

/// An HTTP status and problem code, as [`refused`] returns them.
pub type Refusal = (Option<u16>, Option<socket_hub_protocol::ErrorCode>);

use socket_hub_protocol::ErrorCode as Code;
pub const FORBIDDEN: Refusal = (Some(403), Some(Code::Forbidden));
pub const NOT_FOUND: Refusal = (Some(404), Some(Code::NotFound));
pub const CONFLICT: Refusal = (Some(409), Some(Code::Conflict));
pub const GONE: Refusal = (Some(410), Some(Code::Gone));
pub const INVALID: Refusal = (Some(422), Some(Code::InvalidInput));

/// Runs `test` against a fresh app on SQLite, then on a fresh PostgreSQL database, both
/// configured by `tweak`: what every feature must do the same on both backends.
pub async fn on_both_backends_with<F, Fut>(tweak: fn(&mut Config), test: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    let app = spawn_with(tweak).await;
    test(app).await.stop().await;
    let db = crate::support::TestDatabase::create().await;
    let url = db.url.clone();
    let app = spawn_with(move |c| {
        tweak(c);
        c.database_url = url;
    })
    .await;
    test(app).await.stop().await;
    db.drop_database().await;
}

/// [`on_both_backends_with`] the default configuration.
pub async fn on_both_backends<F, Fut>(test: F)
where
    F: Fn(TestApp) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    on_both_backends_with(|_| {}, test).await;
}
