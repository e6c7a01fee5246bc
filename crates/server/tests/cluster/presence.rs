//! Global presence and notifications across real processes sharing PostgreSQL and
//! Redis (issue 10): a user's connections on every instance count as one person, a
//! crashed instance's users go offline within a lease, and what is published while
//! Redis hangs is not lost.

use socket_hub_client::{Client, Connection};
use socket_hub_protocol::rest::Session;
use socket_hub_protocol::{NotificationKind, PresenceStatus, ServerFrame, UserId};

use super::support::Instance;
use super::{Cluster, WAIT, connect, user};

/// Alice's public room with Bob in it, through `url`.
async fn roommates(url: &str) -> (Client, Session, Client, Session) {
    let (alice, alice_s) = user(url, "alice").await;
    let (bob, bob_s) = user(url, "bob").await;
    let room = alice
        .create_room("presence", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(room.id, None).await.expect("bob joins");
    (alice, alice_s, bob, bob_s)
}

/// A connection to `url` that watches presence (it said it is online).
async fn watching(url: &str, session: &Session) -> Connection {
    let mut ws = connect(url, session).await.expect("connect");
    ws.set_presence(PresenceStatus::Online)
        .await
        .expect("presence");
    ws
}

/// The next `presence` frame about `user_id`: its status and whether it carries a
/// last-seen time.
async fn next_presence(ws: &mut Connection, user_id: UserId) -> (PresenceStatus, bool) {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Presence {
            user_id: id,
            status,
            last_seen_at,
        } if *id == user_id => Some((*status, last_seen_at.is_some())),
        _ => None,
    })
    .await
    .expect("a presence frame")
}

#[tokio::test]
async fn connections_on_two_instances_count_as_one_person_and_a_crash_ends_presence() {
    let cluster = Cluster::new().await;
    let [a, b]: [Instance; 2] = cluster.instances(2).await.try_into().ok().expect("two");
    let (_alice, alice_s, _bob, bob_s) = roommates(&a.url).await;
    let alice_id = alice_s.user.id;
    let mut watcher = watching(&b.url, &bob_s).await;

    // Online through a, told to Bob on b.
    let phone = connect(&a.url, &alice_s).await.expect("phone on a");
    assert_eq!(
        next_presence(&mut watcher, alice_id).await,
        (PresenceStatus::Online, false)
    );
    // A second connection on b, then the one on a closes: she is still there, so the
    // next change Bob hears is her going away on b, not an offline in between. Each
    // instance records its own connections in Redis off the connect's path, and her
    // status does not change when b's record comes: wait for it, bounded.
    let mut laptop = connect(&b.url, &alice_s).await.expect("laptop on b");
    let mut redis = cluster.redis.connection().await;
    let key = format!("{}upresence:user:{alice_id}", cluster.config.redis_prefix);
    tokio::time::timeout(WAIT, async {
        loop {
            let fields: Vec<String> = redis::cmd("HKEYS")
                .arg(&key)
                .query_async(&mut redis)
                .await
                .expect("hkeys");
            if fields.iter().filter(|f| f.as_str() != "_s").count() == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both instances record her connections");
    phone.close().await.expect("close");
    laptop
        .set_presence(PresenceStatus::Away)
        .await
        .expect("away");
    assert_eq!(
        next_presence(&mut watcher, alice_id).await,
        (PresenceStatus::Away, false)
    );
    let mut on_b = Client::new(&b.url);
    on_b.set_access_token(bob_s.access_token.clone());
    let seen = on_b.presence(&[alice_id]).await.expect("presence on b");
    assert_eq!(seen[0].status, PresenceStatus::Away);

    // A connection on a again (online), the one on b closes: still online.
    let _tablet = connect(&a.url, &alice_s).await.expect("tablet on a");
    assert_eq!(
        next_presence(&mut watcher, alice_id).await,
        (PresenceStatus::Online, false)
    );
    laptop.close().await.expect("close");
    // Instance a dies with her last connection: its heartbeat runs out, b reaps it and
    // Bob is told she is offline, with when she was last seen.
    a.kill().await;
    assert_eq!(
        next_presence(&mut watcher, alice_id).await,
        (PresenceStatus::Offline, true)
    );
    let seen = on_b.presence(&[alice_id]).await.expect("presence on b");
    assert_eq!(seen[0].status, PresenceStatus::Offline);
    assert!(seen[0].last_seen_at.is_some());
    cluster.finish().await;
}

/// Failure injection: Redis hung (`SIGSTOP`) while a mention is notified and while a
/// person comes online. The send is stored and answered (nothing waits on Redis); the
/// notification, persisted, reaches Bob from the store when he connects again, even
/// with Redis still hung; the presence change that could not be recorded is retried
/// and reaches Bob once Redis answers again.
#[tokio::test]
async fn a_hung_redis_loses_no_notification_and_presence_heals_when_it_answers() {
    let cluster = Cluster::new().await;
    let fast = ["--redis-timeout-ms", "300"];
    let a = Instance::start(&cluster.config, &fast).await;
    let b = Instance::start(&cluster.config, &fast).await;
    let (alice, alice_s, bob, bob_s) = roommates(&a.url).await;
    let room_id = alice.joined_rooms().await.expect("rooms")[0].room.id;
    let mut watcher = watching(&b.url, &bob_s).await;

    cluster.redis.pause();
    let mention = tokio::time::timeout(
        WAIT,
        alice.send_message(room_id, "are you there @bob?", None),
    )
    .await
    .expect("the send does not wait on Redis")
    .expect("stored and answered");
    // Alice comes online on a while Redis hangs: a cannot record it yet.
    let _alice_ws = connect(&a.url, &alice_s).await.expect("alice connects");

    // The mention is persisted by a task of its own after the send's ack: wait until it
    // is in the store (read over REST, which needs no Redis), as Bob's next connect
    // would find it only then; a live copy cannot get through the hung Redis.
    tokio::time::timeout(WAIT, async {
        loop {
            let listed = bob.notifications(None, None).await.expect("listed");
            if listed.unread > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the mention is persisted");
    // Bob connects again to b: the mention comes from the store after `ready`.
    let mut again = connect(&b.url, &bob_s).await.expect("bob reconnects");
    let notification = again
        .wait_for(WAIT, |f| match f {
            ServerFrame::Notification { notification } => Some(notification.clone()),
            _ => None,
        })
        .await
        .expect("the mention from the store");
    assert_eq!(notification.kind, NotificationKind::Mentioned);
    assert_eq!(notification.seq, Some(mention.seq));
    let listed = bob.notifications(None, None).await.expect("listed");
    assert_eq!(listed.unread, 1);

    // Redis answers again: the presence change is retried and reaches Bob on b.
    cluster.redis.resume();
    assert_eq!(
        next_presence(&mut watcher, alice_s.user.id).await,
        (PresenceStatus::Online, false)
    );
    cluster.finish().await;
}
