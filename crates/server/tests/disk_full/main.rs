//! A real `socket-hub` process, embedded database, data dir on a 2 MiB tmpfs filled to
//! the last byte: every acknowledged message must be on disk after a restart, refused
//! sends must be the retryable `unavailable` naming the send, and once space frees up
//! the same process takes writes again. Needs root (to mount); without it the test
//! fails with the reason, it never skips.
#![allow(unreachable_pub)]

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket_hub_client::{Auth, Client, Connection};
use socket_hub_protocol::rest::Session;
use socket_hub_protocol::{ClientFrame, ErrorCode, Message, ServerFrame};
use support::{Instance, Outcome, send_for_outcome};

const WAIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "correct horse battery";
/// Bytes the ballast leaves free on the tmpfs: room for a dozen or so sends.
const HEADROOM: u64 = 256 * 1024;

/// A tmpfs of its own, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("the mount command runs");
        assert!(
            output.status.success(),
            "this test needs to mount a {size} tmpfs at {} (run it as root): {}",
            dir.path().display(),
            String::from_utf8_lossy(&output.stderr)
        );
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process still holding files there cannot keep it mounted.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem at `dir` with a ballast file, then gives `HEADROOM` back.
fn fill_with_ballast(dir: &Path) -> PathBuf {
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).expect("ballast file");
    let chunk = vec![0xA5u8; 64 * 1024];
    let mut written: u64 = 0;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(err) => {
                assert_eq!(
                    err.raw_os_error(),
                    Some(28),
                    "ballast stopped by {err}, not ENOSPC"
                );
                break;
            }
        }
    }
    file.set_len(written.saturating_sub(HEADROOM))
        .expect("give headroom back");
    file.sync_all().expect("sync ballast");
    path
}

async fn connect(url: &str, session: &Session, room_id: i64) -> Connection {
    let mut ws = Connection::connect(url, Auth::Header(session.access_token.clone()))
        .await
        .expect("connects");
    ws.send(&ClientFrame::JoinRoom {
        room_id,
        since_seq: None,
        access_code: None,
    })
    .await
    .expect("join");
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::RoomJoined { .. } => Some(()),
        ServerFrame::Error { .. } => panic!("join failed: {f:?}"),
        _ => None,
    })
    .await
    .expect("room_joined");
    ws
}

async fn readyz(url: &str) -> u16 {
    reqwest::get(format!("{url}/readyz"))
        .await
        .expect("readyz answers")
        .status()
        .as_u16()
}

/// Waits until `/readyz` says ready. Space coming back is no event the test can await,
/// so it asks again every 50 ms, within `WAIT`.
async fn until_ready(url: &str) {
    tokio::time::timeout(WAIT, async {
        while readyz(url).await != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("ready again once space is free");
}

/// Every message of the room, by seq, read page by page over REST.
async fn history(client: &Client, room_id: i64) -> BTreeMap<i64, Message> {
    let mut all = BTreeMap::new();
    let mut before = None;
    loop {
        let page = client
            .history(room_id, before, Some(100))
            .await
            .expect("history");
        for message in &page.messages {
            assert!(
                all.insert(message.seq, message.clone()).is_none(),
                "seq {} stored twice",
                message.seq
            );
        }
        match page.messages.last() {
            Some(oldest) if page.messages.len() == 100 => before = Some(oldest.seq),
            _ => return all,
        }
    }
}

#[tokio::test]
async fn a_full_disk_never_loses_an_acknowledged_message_and_recovers_without_restart() {
    let tmpfs = Tmpfs::mount("2m");
    let data_dir = tmpfs.path().join("data");
    let server = Instance::start_embedded(&data_dir, &[]).await;
    let url = server.url.clone();

    let mut alice = Client::new(&url);
    let alice_s = alice.register("alice", PASSWORD).await.expect("register");
    let mut bob = Client::new(&url);
    let bob_s = bob.register("bob", PASSWORD).await.expect("register");
    let room = alice
        .create_room("full", false, None)
        .await
        .expect("room")
        .room;
    let mut ws = connect(&url, &alice_s, room.id).await;

    let ballast = fill_with_ballast(tmpfs.path());
    let content = "y".repeat(2_000);
    let mut acked: Vec<Message> = Vec::new();
    let mut refused = 0;
    for i in 0..2_000 {
        let id = format!("m{i}");
        match send_for_outcome(&mut ws, room.id, &id, &content, WAIT).await {
            Outcome::Acked(message) => acked.push(message),
            Outcome::Refused(code, reference) => {
                assert_eq!(
                    (code, reference.as_deref()),
                    (ErrorCode::Unavailable, Some(id.as_str())),
                    "a full disk is `unavailable`, with the send's ref"
                );
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 5, "the disk never filled up");
    let mut carol = Client::new(&url);
    let err = carol
        .register("carol", PASSWORD)
        .await
        .expect_err("no room for an account");
    assert_eq!(
        (err.status(), err.code()),
        (Some(503), Some(ErrorCode::Unavailable))
    );
    assert_eq!(readyz(&url).await, 503, "not ready while the disk is full");

    // Space comes back: the same process recovers by itself.
    std::fs::remove_file(&ballast).expect("remove ballast");
    until_ready(&url).await;
    for i in 0..3 {
        let id = format!("after{i}");
        match send_for_outcome(&mut ws, room.id, &id, "room again", WAIT).await {
            Outcome::Acked(message) => acked.push(message),
            Outcome::Refused(code, _) => panic!("{id} refused with {code:?} after recovery"),
        }
    }
    let carol_s = carol
        .register("carol", PASSWORD)
        .await
        .expect("accounts again");
    drop(ws);

    // kill -9: an ack promised durability, so a crash loses nothing acknowledged.
    server.kill().await;
    let server = Instance::start_embedded(&data_dir, &[]).await;
    let url = server.url.clone();
    let mut reader = Client::new(&url);
    reader
        .login("bob", PASSWORD)
        .await
        .expect("bob's account survived");
    reader.join_room(room.id, None).await.expect("join");
    let stored = history(&reader, room.id).await;
    for message in &acked {
        let on_disk = stored
            .get(&message.seq)
            .unwrap_or_else(|| panic!("acked seq {} is not stored", message.seq));
        assert_eq!(
            (on_disk.id, &on_disk.client_msg_id, &on_disk.content),
            (message.id, &message.client_msg_id, &message.content),
            "seq {} stored differently from its ack",
            message.seq
        );
    }
    let seqs: Vec<_> = stored.keys().copied().collect();
    let last = acked.last().map_or(0, |m| m.seq);
    assert_eq!(
        seqs,
        (1..=last).collect::<Vec<_>>(),
        "exactly the acked seqs"
    );

    // Nothing is handed out twice after the restart: not a seq, not a message id, not
    // a user id (an old token must not name a new account).
    let mut ws = connect(&url, &alice_s, room.id).await;
    let next = match send_for_outcome(&mut ws, room.id, "restarted", "still here", WAIT).await {
        Outcome::Acked(message) => message,
        Outcome::Refused(code, _) => panic!("refused after restart with {code:?}"),
    };
    assert_eq!(next.seq, last + 1);
    assert!(acked.iter().all(|m| m.id < next.id), "message id reused");
    let mut dave = Client::new(&url);
    let dave_s = dave.register("dave", PASSWORD).await.expect("register");
    let earlier = [&alice_s, &bob_s, &carol_s].map(|s| s.user.id);
    assert!(
        earlier.iter().all(|&id| id < dave_s.user.id),
        "user id reused: {earlier:?} then {}",
        dave_s.user.id
    );
    drop(ws);
    server.kill().await;
}
