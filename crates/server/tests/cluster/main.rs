//! Several real `socket-hub` processes sharing one PostgreSQL database and one Redis:
//! they must act as one chat server, and an instance dying or Redis restarting must
//! lose nothing. Each test owns its database, its Redis server and its processes.
#![allow(unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

mod outage;
mod presence;

use std::time::Duration;

use socket_hub_client::{Auth, Client, ClientError, Connection, Event};
use socket_hub_protocol::rest::Session;
use socket_hub_protocol::{ClientFrame, CloseCode, RoomId, Seq, ServerFrame, User};
use support::{ClusterConfig, Instance, TestDatabase, TestRedis};

const WAIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "correct horse battery";

struct Cluster {
    db: Option<TestDatabase>,
    redis: TestRedis,
    config: ClusterConfig,
}

impl Cluster {
    async fn new() -> Self {
        let db = TestDatabase::create().await;
        let redis = TestRedis::start().await;
        let config = ClusterConfig::new(&db.url, &redis.url());
        Self {
            db: Some(db),
            redis,
            config,
        }
    }

    async fn instance(&self) -> Instance {
        Instance::start(&self.config, &[]).await
    }

    /// `n` instances started at the same moment on a fresh database, so they also race
    /// to apply its migrations (which must happen exactly once).
    async fn instances(&self, n: usize) -> Vec<Instance> {
        futures_util::future::join_all((0..n).map(|_| self.instance())).await
    }

    async fn finish(mut self) {
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
        self.redis.stop().await;
    }
}

async fn user(url: &str, name: &str) -> (Client, Session) {
    let mut client = Client::new(url);
    let session = client.register(name, PASSWORD).await.expect("register");
    (client, session)
}

/// A public room owned by a fresh user, plus `members` more users who joined it.
async fn room_with_members(url: &str, members: usize) -> (RoomId, Vec<Session>) {
    let (owner, owner_session) = user(url, "owner").await;
    let room = owner
        .create_room("cluster", false, None)
        .await
        .expect("room")
        .room;
    let mut sessions = vec![owner_session];
    for i in 0..members {
        let (client, session) = user(url, &format!("member{i}")).await;
        client.join_room(room.id, None).await.expect("join");
        sessions.push(session);
    }
    (room.id, sessions)
}

async fn connect(url: &str, session: &Session) -> Result<Connection, ClientError> {
    let mut ws = Connection::connect(url, Auth::Header(session.access_token.clone())).await?;
    match ws.frame_within(WAIT).await? {
        ServerFrame::Ready { .. } => Ok(ws),
        other => Err(ClientError::Decode(format!(
            "expected ready, got {other:?}"
        ))),
    }
}

async fn join(
    ws: &mut Connection,
    room_id: RoomId,
    since_seq: Option<Seq>,
) -> Result<(), ClientError> {
    ws.send(&ClientFrame::JoinRoom {
        room_id,
        since_seq,
        access_code: None,
    })
    .await?;
    ws.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::RoomJoined { .. }).then_some(())
    })
    .await
}

/// A client that reads a room until it has seen seq `total`, reconnecting to the next
/// URL (resuming from the last seq it saw) whenever its connection drops. Returns every
/// seq in the order received (exactly-once, in-order delivery means `1..=total`) and how
/// many times it had to move.
async fn follow(
    urls: Vec<String>,
    session: Session,
    room_id: RoomId,
    total: Seq,
) -> (Vec<Seq>, usize) {
    let mut seen: Vec<Seq> = Vec::new();
    let mut target = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    'reconnect: while seen.last().copied().unwrap_or(0) < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "follower stuck at {:?}",
            seen.last()
        );
        let url = &urls[target % urls.len()];
        let since = seen.last().copied().unwrap_or(0);
        let Ok(mut ws) = connect(url, &session).await else {
            target += 1;
            continue;
        };
        if join(&mut ws, room_id, Some(since)).await.is_err() {
            target += 1;
            continue;
        }
        while seen.last().copied().unwrap_or(0) < total {
            match ws.event_within(WAIT).await {
                Ok(Event::Frame(ServerFrame::Chat { message })) => seen.push(message.seq),
                Ok(Event::Frame(_)) => {}
                Ok(Event::Closed { .. }) | Err(ClientError::Transport(_)) => {
                    target += 1;
                    continue 'reconnect;
                }
                Err(err) => panic!("follower on {url} got {err} after seq {:?}", seen.last()),
            }
        }
    }
    (seen, target)
}

/// A `message_send` of plain text.
fn message(room_id: RoomId, client_msg_id: String, content: String) -> ClientFrame {
    ClientFrame::MessageSend {
        room_id,
        client_msg_id,
        content,
        reply_to: None,
        attachments: Vec::new(),
    }
}

/// Sends `count` messages over one connection, each awaiting its ack; `after_each` runs
/// after every ack (tests use it to break things mid-traffic).
async fn send_many(ws: &mut Connection, room_id: RoomId, tag: &str, count: usize) -> Vec<Seq> {
    let mut seqs = Vec::new();
    for i in 0..count {
        let id = format!("{tag}-{i}");
        ws.send(&message(room_id, id.clone(), format!("{tag} {i}")))
            .await
            .expect("send");
        let seq = ws
            .wait_for(WAIT, |f| match f {
                ServerFrame::Ack {
                    client_msg_id,
                    message,
                } if *client_msg_id == id => Some(message.seq),
                ServerFrame::Error { .. } => panic!("send failed: {f:?}"),
                _ => None,
            })
            .await
            .expect("ack");
        seqs.push(seq);
    }
    seqs
}

fn expected(total: Seq) -> Vec<Seq> {
    (1..=total).collect()
}

#[tokio::test]
async fn three_instances_deliver_every_message_exactly_once_in_order() {
    let cluster = Cluster::new().await;
    let instances = cluster.instances(3).await;
    const SENDERS: usize = 3;
    const EACH: usize = 40;
    let total = (SENDERS * EACH) as Seq;
    let (room_id, sessions) = room_with_members(&instances[0].url, 6 + SENDERS).await;

    let mut followers = Vec::new();
    for (i, session) in sessions[1..7].iter().enumerate() {
        let url = instances[i % 3].url.clone();
        followers.push(tokio::spawn(follow(
            vec![url],
            session.clone(),
            room_id,
            total,
        )));
    }
    let mut senders = Vec::new();
    for (s, session) in sessions[7..].iter().enumerate() {
        let mut ws = connect(&instances[s % 3].url, session)
            .await
            .expect("connect");
        senders.push(tokio::spawn(async move {
            send_many(&mut ws, room_id, &format!("s{s}"), EACH).await
        }));
    }
    for sender in senders {
        sender.await.expect("sender");
    }
    for follower in followers {
        assert_eq!(follower.await.expect("follower").0, expected(total));
    }
    cluster.finish().await;
}

#[tokio::test]
async fn clients_of_a_killed_instance_resume_elsewhere_with_nothing_lost() {
    let cluster = Cluster::new().await;
    let mut instances = cluster.instances(3).await;
    let total: Seq = 120;
    let (room_id, sessions) = room_with_members(&instances[0].url, 7).await;
    let urls: Vec<String> = instances.iter().map(|i| i.url.clone()).collect();

    let mut followers = Vec::new();
    for (i, session) in sessions[1..7].iter().enumerate() {
        // Follower i starts on instance (i + 2) % 3 and fails over to the next one, so
        // followers 0 and 3 start on the instance that is killed.
        let ring: Vec<String> = (0..3).map(|k| urls[(i + 2 + k) % 3].clone()).collect();
        followers.push(tokio::spawn(follow(ring, session.clone(), room_id, total)));
    }
    let mut sender = connect(&urls[0], &sessions[7]).await.expect("connect");
    send_many(&mut sender, room_id, "before", 40).await;
    let victim = instances.remove(2);
    victim.kill().await;
    send_many(&mut sender, room_id, "after", (total - 40) as usize).await;
    for (i, follower) in followers.into_iter().enumerate() {
        let (seqs, moves) = follower.await.expect("follower");
        assert_eq!(seqs, expected(total));
        if i % 3 == 0 {
            // Started on the killed instance (ring order 2, 0, 1 for these): it moved.
            assert!(moves >= 1, "follower {i} never had to reconnect");
        }
    }
    cluster.finish().await;
}

#[tokio::test]
async fn redis_restart_mid_traffic_loses_nothing() {
    let mut cluster = Cluster::new().await;
    let instances = cluster.instances(2).await;
    let total: Seq = 90;
    let (room_id, sessions) = room_with_members(&instances[0].url, 5).await;
    let mut followers = Vec::new();
    for (i, session) in sessions[1..5].iter().enumerate() {
        let url = instances[i % 2].url.clone();
        followers.push(tokio::spawn(follow(
            vec![url],
            session.clone(),
            room_id,
            total,
        )));
    }
    let mut sender = connect(&instances[1].url, &sessions[5])
        .await
        .expect("connect");
    send_many(&mut sender, room_id, "before", 30).await;

    cluster.redis.stop().await;
    // Sending still persists and acks while Redis is gone.
    send_many(&mut sender, room_id, "during", 30).await;
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", instances[0].url))
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(ready["ready"], true, "the store still works: {ready}");

    cluster.redis.restart().await;
    send_many(&mut sender, room_id, "after", 30).await;
    for follower in followers {
        assert_eq!(follower.await.expect("follower").0, expected(total));
    }
    cluster.finish().await;
}

#[tokio::test]
async fn rest_send_on_an_api_process_reaches_gateway_clients() {
    let cluster = Cluster::new().await;
    let api = Instance::start(&cluster.config, &["--role", "api"]).await;
    let gateways = [
        Instance::start(&cluster.config, &["--role", "gateway"]).await,
        Instance::start(&cluster.config, &["--role", "gateway"]).await,
    ];
    let (room_id, sessions) = room_with_members(&api.url, 2).await;
    let mut clients = Vec::new();
    for (gateway, session) in gateways.iter().zip(&sessions[1..]) {
        let mut ws = connect(&gateway.url, session).await.expect("connect");
        join(&mut ws, room_id, None).await.expect("join");
        clients.push(ws);
    }
    let mut owner = Client::new(&api.url);
    owner.set_access_token(sessions[0].access_token.clone());
    let sent = owner
        .send_message(room_id, "from the api role", None)
        .await
        .expect("send");
    for ws in &mut clients {
        let got = ws
            .wait_for(WAIT, |f| match f {
                ServerFrame::Chat { message } => Some(message.clone()),
                _ => None,
            })
            .await
            .expect("chat on gateway");
        assert_eq!(got, sent);
    }
    // Each role serves only its part.
    assert!(
        Connection::connect(&api.url, Auth::Header(sessions[0].access_token.clone()))
            .await
            .is_err()
    );
    let on_gateway = reqwest::get(format!("{}/api/v1/rooms", gateways[0].url))
        .await
        .expect("request");
    assert_eq!(on_gateway.status(), 404);
    cluster.finish().await;
}

#[tokio::test]
async fn presence_and_typing_cross_instances_and_a_crash_ends_presence() {
    let cluster = Cluster::new().await;
    let mut instances = cluster.instances(2).await;
    let (room_id, sessions) = room_with_members(&instances[0].url, 1).await;
    let (alice, bob) = (&sessions[0], &sessions[1]);
    let mut b = connect(&instances[1].url, bob).await.expect("connect");
    join(&mut b, room_id, None).await.expect("join");
    let mut a = connect(&instances[0].url, alice).await.expect("connect");
    a.send(&ClientFrame::JoinRoom {
        room_id,
        since_seq: None,
        access_code: None,
    })
    .await
    .expect("join");
    let members = a
        .wait_for(WAIT, |f| match f {
            ServerFrame::RoomJoined { members, .. } => Some(members.clone()),
            _ => None,
        })
        .await
        .expect("room_joined");
    let names: Vec<&str> = members.iter().map(|u: &User| u.username.as_str()).collect();
    assert_eq!(
        names,
        vec!["owner", "member0"],
        "bob on the other instance is listed"
    );

    let came = b
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::Join { .. }).then(|| f.clone())
        })
        .await;
    assert_eq!(
        came.expect("join"),
        ServerFrame::Join {
            room_id,
            user: alice.user.clone()
        }
    );
    a.send(&ClientFrame::Typing { room_id })
        .await
        .expect("typing");
    let typing = b
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::Typing { .. }).then(|| f.clone())
        })
        .await;
    assert_eq!(
        typing.expect("typing"),
        ServerFrame::Typing {
            room_id,
            user: alice.user.clone()
        }
    );

    // Alice's instance dies without a word; her presence lease runs out and bob is told.
    instances.remove(0).kill().await;
    let left = b
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::Leave { .. }).then(|| f.clone())
        })
        .await;
    assert_eq!(
        left.expect("leave"),
        ServerFrame::Leave {
            room_id,
            user: alice.user.clone()
        }
    );
    cluster.finish().await;
}

#[tokio::test]
async fn an_instance_subscribes_only_to_rooms_its_clients_joined() {
    let cluster = Cluster::new().await;
    let instance = cluster.instance().await;
    let (room_id, sessions) = room_with_members(&instance.url, 0).await;
    let mut owner = Client::new(&instance.url);
    owner.set_access_token(sessions[0].access_token.clone());
    let other_room = owner
        .create_room("elsewhere", false, None)
        .await
        .expect("room")
        .room
        .id;
    let mut redis = cluster.redis.connection().await;
    let pattern = format!("{}room:*", cluster.config.redis_prefix);
    let channels = |mut redis: redis::aio::MultiplexedConnection, pattern: String| async move {
        let channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(&pattern)
            .query_async(&mut redis)
            .await
            .expect("pubsub channels");
        channels
    };
    assert!(channels(redis.clone(), pattern.clone()).await.is_empty());

    let mut ws = connect(&instance.url, &sessions[0]).await.expect("connect");
    join(&mut ws, room_id, None).await.expect("join");
    let joined = channels(redis.clone(), pattern.clone()).await;
    assert_eq!(
        joined,
        vec![format!("{}room:{room_id}", cluster.config.redis_prefix)]
    );
    assert!(
        !joined
            .iter()
            .any(|c| c.ends_with(&format!(":{other_room}")))
    );

    ws.send(&ClientFrame::LeaveRoom { room_id })
        .await
        .expect("leave");
    ws.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::RoomLeft { .. }).then_some(())
    })
    .await
    .expect("left");
    // Unsubscribing follows the leave asynchronously: wait for it, bounded.
    let gone = async {
        while !channels(redis.clone(), pattern.clone()).await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, gone)
        .await
        .expect("the instance unsubscribes from a room nobody here is in");
    let _: () = redis::cmd("PING")
        .query_async(&mut redis)
        .await
        .expect("ping");
    cluster.finish().await;
}

/// The start-up log names the database without its password.
#[tokio::test]
async fn database_password_is_not_logged() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let db = TestDatabase::create().await;
    // Trust authentication ignores the password, so the server starts with it.
    let url = db.url.replacen("://root@", "://root:hunter2secret@", 1);
    assert!(
        url.contains("hunter2secret"),
        "test URL carries a password: {url}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = support::server_command()
        .args(["--bind", "127.0.0.1:0", "--log-format", "json"])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", &url])
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("socket-hub starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut logged = Vec::new();
    let listening = tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = out.next_line().await {
            let done = line.contains("listening");
            logged.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(listening, Ok(true)), "server starts: {logged:?}");
    let _ = child.kill().await;
    let mut err = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = stderr.read_to_string(&mut err).await;
    }
    let all = format!("{}\n{err}", logged.join("\n"));
    assert!(!all.contains("hunter2secret"), "password logged:\n{all}");
    assert!(
        all.contains("root:***@127.0.0.1"),
        "database still named:\n{all}"
    );
    db.drop_database().await;
}

/// One client of the drain test: sends continuously (up to `WINDOW` unacknowledged
/// messages) until the server closes. Returns the acknowledged `client_msg_id`s and the
/// close code (`None` when the connection just broke, i.e. 1006).
async fn chatter(
    url: String,
    session: Session,
    room_id: RoomId,
    tag: String,
    warmed_up: tokio::sync::mpsc::Sender<()>,
) -> (Vec<String>, Option<u16>) {
    const WINDOW: usize = 4;
    let mut ws = connect(&url, &session).await.expect("connect");
    let (mut sent, mut in_flight, mut sending) = (0usize, 0usize, true);
    let mut acked = Vec::new();
    loop {
        while sending && in_flight < WINDOW {
            let frame = message(room_id, format!("{tag}-{sent}"), format!("{tag} {sent}"));
            if ws.send(&frame).await.is_err() {
                sending = false;
            } else {
                sent += 1;
                in_flight += 1;
            }
        }
        match ws.event_within(WAIT).await {
            Ok(Event::Frame(ServerFrame::Ack { client_msg_id, .. })) => {
                acked.push(client_msg_id);
                in_flight -= 1;
                if acked.len() == 3 {
                    let _ = warmed_up.send(()).await;
                }
            }
            Ok(Event::Frame(ServerFrame::Error { .. })) => {
                panic!("{tag}: a send failed while the server drained")
            }
            Ok(Event::Frame(_)) => {}
            Ok(Event::Closed { code, .. }) => return (acked, code),
            Err(ClientError::Transport(_)) => return (acked, None),
            Err(err) => panic!("{tag}: {err}"),
        }
    }
}

/// Every `client_msg_id` stored in the room, paging back through its history.
async fn stored_ids(url: &str, session: &Session, room_id: RoomId) -> Vec<String> {
    let mut client = Client::new(url);
    client.set_access_token(session.access_token.clone());
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let page = client
            .history(room_id, before, Some(200))
            .await
            .expect("history");
        ids.extend(page.messages.iter().filter_map(|m| m.client_msg_id.clone()));
        match page.next_before_seq {
            Some(next) => before = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_closes_every_client_with_1012_and_keeps_every_ack() {
    const CLIENTS: usize = 20;
    // More than the kernel buffers for one socket (tcp_wmem max is 4 MiB here), so the
    // server is still writing to the slow reader when the signal comes.
    const BACKLOG: usize = 1500;
    let data = tempfile::tempdir().expect("tempdir");
    let config = ClusterConfig::standalone();
    // Generous limits: the slow reader must be drained, not dropped as too slow.
    let flags = [
        "--shutdown-grace-secs",
        "60",
        "--write-timeout-secs",
        "60",
        "--outbound-queue",
        "4096",
    ];
    let instance = Instance::start_in(data.path(), &config, &flags).await;
    let (owner, owner_session) = user(&instance.url, "owner").await;
    let room_id = owner
        .create_room("drain", false, None)
        .await
        .expect("room")
        .room
        .id;
    let sessions: Vec<Session> = futures_util::future::join_all((0..CLIENTS + 1).map(|i| {
        let url = instance.url.clone();
        async move {
            let (client, session) = user(&url, &format!("client{i}")).await;
            client.join_room(room_id, None).await.expect("member");
            session
        }
    }))
    .await;

    // A reader with a tiny receive buffer that stops reading once in the room, and a
    // backlog of big messages for it: its connection has plenty queued at the signal.
    let mut slow = Connection::connect_with(
        &instance.url,
        Auth::Header(sessions[CLIENTS].access_token.clone()),
        socket_hub_client::ConnectOptions {
            recv_buffer: Some(4096),
        },
    )
    .await
    .expect("connect");
    join(&mut slow, room_id, None).await.expect("join");
    let mut bulk = connect(&instance.url, &owner_session)
        .await
        .expect("connect");
    let body = "z".repeat(4000);
    for i in 0..BACKLOG {
        let id = format!("bulk-{i}");
        bulk.send(&message(room_id, id.clone(), body.clone()))
            .await
            .expect("send");
        bulk.wait_for(WAIT, |f| match f {
            ServerFrame::Ack { client_msg_id, .. } => (*client_msg_id == id).then_some(()),
            ServerFrame::Error { .. } => panic!("send failed: {f:?}"),
            _ => None,
        })
        .await
        .expect("ack");
    }
    let mut acked: Vec<String> = (0..BACKLOG).map(|i| format!("bulk-{i}")).collect();

    let (warmed_up, mut warm) = tokio::sync::mpsc::channel(CLIENTS);
    let clients: Vec<_> = sessions[..CLIENTS]
        .iter()
        .enumerate()
        .map(|(i, session)| {
            tokio::spawn(chatter(
                instance.url.clone(),
                session.clone(),
                room_id,
                format!("c{i}"),
                warmed_up.clone(),
            ))
        })
        .collect();
    // Every client is mid-stream before the signal.
    for _ in 0..CLIENTS {
        tokio::time::timeout(WAIT, warm.recv())
            .await
            .expect("every client gets acks")
            .expect("clients running");
    }
    instance.terminate();

    // The slow reader gets its backlog, then the close.
    let mut chats = 0usize;
    let slow_code = loop {
        match slow.event_within(WAIT).await {
            Ok(Event::Frame(ServerFrame::Chat { .. })) => chats += 1,
            Ok(Event::Frame(_)) => {}
            Ok(Event::Closed { code, .. }) => break code,
            Err(ClientError::Transport(_)) => break None,
            Err(err) => panic!("slow reader: {err}"),
        }
    };
    assert_eq!(
        slow_code,
        Some(socket_hub_protocol::CloseCode::SERVICE_RESTART),
        "slow reader after {chats} chats"
    );
    for (i, client) in clients.into_iter().enumerate() {
        let (ids, code) = client.await.expect("client task");
        assert_eq!(
            code,
            Some(socket_hub_protocol::CloseCode::SERVICE_RESTART),
            "client {i} after {} acks",
            ids.len()
        );
        acked.extend(ids);
    }
    let status = instance.exited_within(Duration::from_secs(60)).await;
    assert!(status.success(), "exit status {status}");

    let restarted = Instance::start_in(data.path(), &config, &[]).await;
    let stored: std::collections::HashSet<String> =
        stored_ids(&restarted.url, &owner_session, room_id)
            .await
            .into_iter()
            .collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
}

#[tokio::test]
async fn a_hung_redis_delays_neither_acks_nor_local_delivery() {
    let cluster = Cluster::new().await;
    // Commands to the hung Redis would wait a minute: longer than any wait below, so
    // an ack or a delivery that waits on Redis fails the test.
    let slow = ["--redis-timeout-ms", "60000"];
    let near = Instance::start(&cluster.config, &slow).await;
    let far = Instance::start(&cluster.config, &slow).await;
    let (room_id, sessions) = room_with_members(&near.url, 2).await;
    let mut local = connect(&near.url, &sessions[1]).await.expect("connect");
    join(&mut local, room_id, None).await.expect("join");
    let mut remote = connect(&far.url, &sessions[2]).await.expect("connect");
    join(&mut remote, room_id, None).await.expect("join");
    let mut sender = connect(&near.url, &sessions[0]).await.expect("connect");

    send_many(&mut sender, room_id, "before", 2).await;
    for seq in 1..=2 {
        assert_eq!(next_seq(&mut local).await.expect("chat"), seq);
    }
    cluster.redis.pause();
    let during = send_many(&mut sender, room_id, "during", 5).await;
    assert_eq!(during, (3..=7).collect::<Vec<_>>());
    for seq in 3..=7 {
        assert_eq!(
            next_seq(&mut local)
                .await
                .expect("local delivery with redis hung"),
            seq
        );
    }
    cluster.redis.resume();
    send_many(&mut sender, room_id, "after", 2).await;
    let mut seen = Vec::new();
    while seen.len() < 9 {
        seen.push(next_seq(&mut remote).await.expect("remote delivery"));
    }
    assert_eq!(seen, expected(9));
    assert_quiet(&mut remote).await;
    cluster.finish().await;
}

/// The seq of the next `chat` on `ws`.
async fn next_seq(ws: &mut Connection) -> Result<Seq, ClientError> {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Chat { message } => Some(message.seq),
        _ => None,
    })
    .await
}

/// Nothing else is queued for `ws`: a ping's pong is the next frame.
async fn assert_quiet(ws: &mut Connection) {
    ws.send(&ClientFrame::Ping).await.expect("ping");
    let frame = ws
        .wait_for(WAIT, |f| {
            (!matches!(f, ServerFrame::Join { .. } | ServerFrame::Leave { .. })).then(|| f.clone())
        })
        .await
        .expect("pong");
    assert_eq!(frame, ServerFrame::Pong, "expected nothing before the pong");
}

/// A login's status and `Retry-After` on `url`.
async fn login_status(url: &str, name: &str, password: &str) -> (u16, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v1/auth/login"))
        .json(&serde_json::json!({ "username": name, "password": password }))
        .send()
        .await
        .expect("login request");
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), retry)
}

/// Three wrong passwords on `a` lock the login on `b` too.
async fn login_lock_holds_across(a: &Instance, b: &Instance) {
    user(&a.url, "alice").await;
    for _ in 0..3 {
        assert_eq!(login_status(&a.url, "alice", "guess guess").await.0, 401);
    }
    let (status, retry) = login_status(&b.url, "alice", PASSWORD).await;
    assert_eq!(status, 429, "locked on the other instance too");
    assert!(retry.is_some(), "with Retry-After");
}

const LOCK_FAST: &[&str] = &[
    "--login-lockout-failures",
    "3",
    "--code-lockout-failures",
    "2",
];

#[tokio::test]
async fn brute_force_locks_hold_across_instances_sharing_redis() {
    let cluster = Cluster::new().await;
    let a = Instance::start(&cluster.config, LOCK_FAST).await;
    let b = Instance::start(&cluster.config, LOCK_FAST).await;
    login_lock_holds_across(&a, &b).await;

    // Access codes: two wrong guesses over REST on B, then the right code over the
    // WebSocket on A is refused.
    let (owner, _) = user(&a.url, "carol").await;
    let room = owner
        .create_room("secret", true, Some("open-sesame"))
        .await
        .expect("room")
        .room;
    let (bob, bob_s) = user(&b.url, "bob").await;
    for guess in ["00000000", "00000001"] {
        let err = bob
            .join_room(room.id, Some(guess))
            .await
            .expect_err("wrong code");
        assert_eq!(
            err.code(),
            Some(socket_hub_protocol::ErrorCode::WrongAccessCode)
        );
    }
    let mut ws = connect(&a.url, &bob_s).await.expect("connect");
    ws.send(&ClientFrame::JoinRoom {
        room_id: room.id,
        since_seq: None,
        access_code: Some("open-sesame".into()),
    })
    .await
    .expect("send join");
    let refused = ws
        .wait_for(WAIT, |f| match f {
            ServerFrame::Error {
                code,
                retry_after_ms,
                ..
            } => Some((*code, *retry_after_ms)),
            ServerFrame::RoomJoined { .. } => panic!("joined despite the lock"),
            _ => None,
        })
        .await
        .expect("an answer");
    assert_eq!(refused.0, socket_hub_protocol::ErrorCode::RateLimited);
    assert!(refused.1.is_some());

    // The counts are in Redis (under this deployment's prefix), not only in the database.
    let mut conn = cluster.redis.connection().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}lockout:*", cluster.config.redis_prefix))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(
        keys.iter()
            .any(|k| k.ends_with("lockout:login:pair:alice@127.0.0.1")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&format!("lockout:code:room:{}", room.id))),
        "{keys:?}"
    );
    cluster.finish().await;
}

#[tokio::test]
async fn login_lock_holds_across_instances_sharing_only_postgres() {
    let db = TestDatabase::create().await;
    let config = ClusterConfig::new(&db.url, "");
    let a = Instance::start(&config, LOCK_FAST).await;
    let b = Instance::start(&config, LOCK_FAST).await;
    login_lock_holds_across(&a, &b).await;
    drop((a, b));
    db.drop_database().await;
}

/// Issue 9 item 11: a logout on one instance revokes that session's access token on
/// every instance and closes its sockets there with 4401; the user's other session
/// carries on.
#[tokio::test]
async fn logout_on_one_instance_closes_that_sessions_sockets_on_every_instance() {
    let cluster = Cluster::new().await;
    let [a, b]: [Instance; 2] = cluster.instances(2).await.try_into().ok().expect("two");
    let (mut phone, first) = user(&a.url, "alice").await;
    let mut laptop = Client::new(&b.url);
    let second = laptop.login("alice", PASSWORD).await.expect("second login");
    let mut first_on_a = connect(&a.url, &first).await.expect("connect");
    let mut first_on_b = connect(&b.url, &first).await.expect("connect");
    let mut second_on_a = connect(&a.url, &second).await.expect("connect");

    phone
        .logout(&first.refresh_token)
        .await
        .expect("logout on a");

    for ws in [&mut first_on_a, &mut first_on_b] {
        assert_eq!(
            ws.closed_within(WAIT).await.expect("closed"),
            Some(CloseCode::UNAUTHORIZED)
        );
    }
    // b has heard of it (its socket was closed): its REST refuses the token too.
    let mut on_b = Client::new(&b.url);
    on_b.set_access_token(first.access_token.clone());
    let refused = on_b.me().await.expect_err("refused on b");
    assert_eq!(refused.status(), Some(401), "{refused}");
    // The other session is untouched on both instances.
    assert_quiet(&mut second_on_a).await;
    laptop.me().await.expect("second session on b");
    cluster.finish().await;
}

/// The broker may drop a revocation (Redis hung): every instance still finds it in the
/// store, bounded by the revocation poll, and closes the session's sockets.
#[tokio::test]
async fn a_revocation_the_broker_drops_is_found_in_the_store() {
    let cluster = Cluster::new().await;
    let [a, b]: [Instance; 2] = cluster.instances(2).await.try_into().ok().expect("two");
    let (mut phone, session) = user(&a.url, "bob").await;
    let mut on_b = connect(&b.url, &session).await.expect("connect");
    cluster.redis.pause();
    phone
        .logout(&session.refresh_token)
        .await
        .expect("logout on a");
    assert_eq!(
        on_b.closed_within(WAIT)
            .await
            .expect("closed by b's store poll"),
        Some(CloseCode::UNAUTHORIZED)
    );
    let mut rest = Client::new(&b.url);
    rest.set_access_token(session.access_token.clone());
    assert_eq!(rest.me().await.err().and_then(|e| e.status()), Some(401));
    cluster.redis.resume();
    cluster.finish().await;
}

/// The failure counts live in Redis: with Redis hung a login is refused at once as
/// `unavailable` (503, retryable), never let through unchecked and never left hanging;
/// once Redis answers again, the same login succeeds and nothing was counted meanwhile.
#[tokio::test]
async fn logins_fail_closed_and_retryable_while_redis_is_hung() {
    let cluster = Cluster::new().await;
    let mut args = LOCK_FAST.to_vec();
    args.extend(["--redis-timeout-ms", "300"]);
    let a = Instance::start(&cluster.config, &args).await;
    user(&a.url, "alice").await;
    cluster.redis.pause();
    let (status, _) = tokio::time::timeout(WAIT, login_status(&a.url, "alice", PASSWORD))
        .await
        .expect("answered while Redis is hung");
    assert_eq!(status, 503, "refused as unavailable, not let through");
    cluster.redis.resume();
    let (status, _) = login_status(&a.url, "alice", PASSWORD).await;
    assert_eq!(status, 200, "the retry succeeds once Redis is back");
    cluster.finish().await;
}

/// Moderation and notifications cross instances: Bob, connected to b, is notified
/// (once) of a mention sent through a, and his socket on b leaves the room at once when
/// an admin on a kicks him, after the `kicked` event.
#[tokio::test]
async fn a_kick_and_a_notification_reach_a_user_on_another_instance() {
    let cluster = Cluster::new().await;
    let [a, b]: [Instance; 2] = cluster.instances(2).await.try_into().ok().expect("two");
    let (alice, _) = user(&a.url, "alice").await;
    let (bob, bob_s) = user(&a.url, "bob").await;
    let room = alice
        .create_room("crossing", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(room.id, None).await.expect("join");
    let mut on_b = connect(&b.url, &bob_s).await.expect("connect");
    join(&mut on_b, room.id, None).await.expect("join on b");

    alice
        .send_message(room.id, "hello @bob", None)
        .await
        .expect("mention");
    let notified = on_b
        .wait_for(WAIT, |f| match f {
            ServerFrame::Notification { notification } => Some(notification.kind),
            _ => None,
        })
        .await
        .expect("notification on b");
    assert_eq!(notified, socket_hub_protocol::NotificationKind::Mentioned);

    let kicked = alice
        .kick(room.id, bob_s.user.id, None)
        .await
        .expect("kick through a");
    let seen = on_b
        .wait_for(WAIT, |f| match f {
            ServerFrame::Kicked { message } => Some(message.seq),
            _ => None,
        })
        .await
        .expect("kicked on b");
    assert_eq!(seen, kicked.seq);
    on_b.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::RoomLeft { room_id } if *room_id == room.id).then_some(())
    })
    .await
    .expect("room_left on b");
    cluster.finish().await;
}

/// Edits, deletions and reactions made through one instance reach a member connected
/// to another, as room events in seq order right after the message they change.
#[tokio::test]
async fn message_changes_reach_a_user_on_another_instance() {
    let cluster = Cluster::new().await;
    let [a, b]: [Instance; 2] = cluster.instances(2).await.try_into().ok().expect("two");
    let (alice, _) = user(&a.url, "alice").await;
    let (bob, bob_s) = user(&a.url, "bob").await;
    let room = alice
        .create_room("changes", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(room.id, None).await.expect("join");
    let mut on_b = connect(&b.url, &bob_s).await.expect("connect");
    join(&mut on_b, room.id, None).await.expect("join on b");

    let sent = alice
        .send_message(room.id, "typo", None)
        .await
        .expect("send");
    alice
        .edit_message(room.id, sent.id, "fixed")
        .await
        .expect("edit through a");
    alice
        .add_reaction(room.id, sent.id, "👍")
        .await
        .expect("react through a");
    alice
        .delete_message(room.id, sent.id)
        .await
        .expect("delete through a");
    let mut kinds = Vec::new();
    let mut seqs = Vec::new();
    while kinds.len() < 4 {
        let (kind, seq) = on_b
            .wait_for(WAIT, |f| match f {
                ServerFrame::Chat { message } => Some(("chat", message.seq)),
                ServerFrame::MessageUpdated { message } => Some(("message_updated", message.seq)),
                ServerFrame::Reaction { message } => Some(("reaction", message.seq)),
                ServerFrame::MessageDeleted { message } => Some(("message_deleted", message.seq)),
                _ => None,
            })
            .await
            .expect("a frame on b");
        kinds.push(kind);
        seqs.push(seq);
    }
    assert_eq!(
        kinds,
        ["chat", "message_updated", "reaction", "message_deleted"]
    );
    assert_eq!(seqs, [sent.seq, sent.seq + 1, sent.seq + 2, sent.seq + 3]);
    cluster.finish().await;
}
