//! The store behaviour every backend must show.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use socket_hub::auth::Rotation;
use socket_hub::rooms::{AppendOptions, Appended, Linger, NewMessage};
use socket_hub::state::Store;
use socket_hub::store::{DbOptions, StoreError};
use socket_hub_protocol::{RoomId, User};

use crate::backends::Backend;

async fn user(db: &Backend, name: &str) -> User {
    db.store
        .users
        .create(name, "hash")
        .await
        .expect("create user")
}

/// A public room owned by `owner`.
async fn public_room(db: &Backend, owner: &User, name: &str) -> socket_hub_protocol::Room {
    db.store
        .rooms
        .create(owner.id, name, false, None)
        .await
        .expect("room")
        .room
}

async fn append(
    db: &Backend,
    room_id: i64,
    user: &User,
    id: Option<&str>,
    content: &str,
) -> Appended {
    db.store
        .messages
        .append(NewMessage {
            room_id,
            user,
            client_msg_id: id,
            content,
            reply_to: None,
            attachments: None,
        })
        .await
        .expect("append")
}

fn stored(appended: Appended) -> socket_hub_protocol::Message {
    match appended {
        Appended::Stored(message) => message,
        other => panic!("expected a stored message, got {other:?}"),
    }
}

pub async fn users_are_unique_case_insensitively(db: &Backend) {
    let ada = user(db, "Ada").await;
    let err = db.store.users.create("ADA", "x").await.expect_err("taken");
    assert!(matches!(err, StoreError::Conflict(_)));
    let found = db
        .store
        .users
        .find_by_name("ada")
        .await
        .expect("query")
        .expect("found");
    assert_eq!(
        (found.user, found.password_hash.as_str()),
        (ada.clone(), "hash")
    );
    assert_eq!(db.store.users.find(ada.id).await.expect("query"), Some(ada));
    assert!(db.store.users.find(9_999).await.expect("query").is_none());
}

pub async fn refresh_tokens_are_single_use(db: &Backend) {
    let ada = user(db, "ada").await;
    let tokens = &db.store.tokens;
    let far = chrono::Utc::now().timestamp_millis() + 60_000;
    tokens
        .insert(ada.id, "fam", "h1", far)
        .await
        .expect("insert");
    tokens
        .insert(ada.id, "fam", "h2", far)
        .await
        .expect("insert");
    tokens
        .insert(ada.id, "old", "h3", 1)
        .await
        .expect("insert expired");
    assert_eq!(
        tokens.rotate("h1", "h1-next", far).await.expect("rotate"),
        Rotation::Rotated {
            user_id: ada.id,
            family_id: "fam".into()
        }
    );
    // The successor was stored in the same family, in the same transaction.
    assert_eq!(
        tokens.family("h1-next").await.expect("family"),
        Some("fam".into())
    );
    let spent_at = tokens.spent_at("h1").await.expect("query").expect("spent");
    assert_eq!(
        tokens.rotate("h1", "h1-next", far).await.expect("rotate"),
        Rotation::Spent {
            user_id: ada.id,
            family_id: "fam".into(),
            used_at: spent_at,
        }
    );
    assert_eq!(
        tokens.rotate("h3", "h3-next", far).await.expect("rotate"),
        Rotation::Expired
    );
    assert_eq!(
        tokens
            .rotate("nope", "nope-next", far)
            .await
            .expect("rotate"),
        Rotation::Unknown
    );
    assert_eq!(tokens.spent_at("h2").await.expect("query"), None);
    tokens.revoke_family("fam").await.expect("revoke");
    for hash in ["h2", "h1-next", "h1"] {
        assert_eq!(
            tokens.rotate(hash, "x", far).await.expect("rotate"),
            Rotation::Revoked,
            "{hash}"
        );
    }
}

pub async fn rooms_list_public_and_mine(db: &Backend) {
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let lobby = db
        .store
        .rooms
        .create(ada.id, "lobby", false, None)
        .await
        .expect("room");
    let secret = db
        .store
        .rooms
        .create(ada.id, "secret", true, Some("codehash"))
        .await
        .expect("room");
    let bobs = db
        .store
        .rooms
        .create(bob.id, "bob's", true, Some("x"))
        .await
        .expect("room");
    assert!(lobby.room.is_member && lobby.room.member_count == 1);

    let for_ada: Vec<_> = db
        .store
        .rooms
        .list(ada.id, false, 0, 100)
        .await
        .expect("list")
        .iter()
        .map(|r| r.room.id)
        .collect();
    assert_eq!(for_ada, vec![lobby.room.id, secret.room.id]);
    let for_bob = db
        .store
        .rooms
        .list(bob.id, false, 0, 100)
        .await
        .expect("list");
    let ids: Vec<_> = for_bob
        .iter()
        .map(|r| (r.room.id, r.room.is_member))
        .collect();
    assert_eq!(ids, vec![(lobby.room.id, false), (bobs.room.id, true)]);
    // The cursor and the page size, and the caller's own rooms alone.
    let ids = |rooms: Vec<socket_hub_protocol::rest::RoomView>| -> Vec<_> {
        rooms.iter().map(|r| r.room.id).collect()
    };
    let first = db
        .store
        .rooms
        .list(bob.id, false, 0, 1)
        .await
        .expect("list");
    assert_eq!(ids(first), vec![lobby.room.id]);
    let rest = db
        .store
        .rooms
        .list(bob.id, false, lobby.room.id, 10)
        .await
        .expect("list");
    assert_eq!(ids(rest), vec![bobs.room.id]);
    let joined = db
        .store
        .rooms
        .list(bob.id, true, 0, 10)
        .await
        .expect("list");
    assert_eq!(ids(joined), vec![bobs.room.id]);

    let access = db
        .store
        .rooms
        .access(secret.room.id, bob.id)
        .await
        .expect("query")
        .expect("exists");
    assert!(access.view.room.is_private && !access.view.room.is_member);
    assert_eq!(access.access_code_hash.as_deref(), Some("codehash"));
    assert!(
        db.store
            .rooms
            .access(9_999, bob.id)
            .await
            .expect("query")
            .is_none()
    );
}

pub async fn memberships_and_read_markers(db: &Backend) {
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let room = public_room(db, &ada, "lobby").await;
    assert!(
        db.store
            .rooms
            .add_member(room.id, bob.id, "member")
            .await
            .expect("add")
    );
    assert!(
        !db.store
            .rooms
            .add_member(room.id, bob.id, "member")
            .await
            .expect("add again")
    );
    assert!(
        db.store
            .rooms
            .is_member(room.id, bob.id)
            .await
            .expect("query")
    );
    let roles: Vec<_> = db
        .store
        .rooms
        .members(room.id, 0, 100)
        .await
        .expect("members")
        .into_iter()
        .map(|m| m.role)
        .collect();
    assert_eq!(roles, vec!["owner", "member"]);

    for i in 0..3 {
        append(db, room.id, &bob, None, &format!("m{i}")).await;
    }
    db.store
        .rooms
        .mark_read(room.id, bob.id, 2)
        .await
        .expect("mark");
    db.store
        .rooms
        .mark_read(room.id, bob.id, 1)
        .await
        .expect("never lowers");
    db.store
        .rooms
        .mark_read(room.id, ada.id, 99)
        .await
        .expect("clamped");
    let read = |user_id| async move {
        db.store
            .rooms
            .access(room.id, user_id)
            .await
            .expect("query")
            .expect("room")
            .view
            .last_read_seq
    };
    assert_eq!((read(bob.id).await, read(ada.id).await), (2, 3));

    assert!(
        db.store
            .rooms
            .remove_member(room.id, bob.id)
            .await
            .expect("remove")
    );
    assert!(
        !db.store
            .rooms
            .remove_member(room.id, bob.id)
            .await
            .expect("remove again")
    );
    assert!(
        !db.store
            .rooms
            .is_member(room.id, bob.id)
            .await
            .expect("query")
    );
}

pub async fn messages_get_gap_free_seqs_and_idempotency(db: &Backend) {
    let ada = user(db, "ada").await;
    let eve = user(db, "eve").await;
    let room = public_room(db, &ada, "lobby").await;
    let first = stored(append(db, room.id, &ada, Some("k1"), "one").await);
    assert_eq!(
        (
            first.seq,
            first.user.clone(),
            first.client_msg_id.as_deref()
        ),
        (1, ada.clone(), Some("k1"))
    );
    // The same key again is the original, and does not burn a seq.
    assert_eq!(
        append(db, room.id, &ada, Some("k1"), "one").await,
        Appended::Duplicate(first.clone())
    );
    // The key is per sender.
    assert_eq!(
        append(db, room.id, &eve, Some("k1"), "x").await,
        Appended::NotMember
    );
    db.store
        .rooms
        .add_member(room.id, eve.id, "member")
        .await
        .expect("add");
    assert_eq!(
        stored(append(db, room.id, &eve, Some("k1"), "two").await).seq,
        2
    );
    assert_eq!(
        stored(append(db, room.id, &ada, None, "three").await).seq,
        3
    );
    assert_eq!(
        append(db, 9_999, &ada, None, "nowhere").await,
        Appended::NotMember
    );
    assert_eq!(db.store.messages.last_seq(room.id).await.expect("last"), 3);
    assert_eq!(db.store.messages.last_seq(9_999).await.expect("last"), 0);
}

pub async fn history_pages_and_replay_ranges(db: &Backend) {
    let ada = user(db, "ada").await;
    let room = public_room(db, &ada, "lobby").await;
    for i in 1..=10 {
        append(db, room.id, &ada, None, &format!("m{i}")).await;
    }
    let seqs = |messages: Vec<socket_hub_protocol::Message>| {
        messages.iter().map(|m| m.seq).collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(
            db.store
                .messages
                .history(room.id, None, 4, 0)
                .await
                .expect("page")
        ),
        vec![10, 9, 8, 7]
    );
    assert_eq!(
        seqs(
            db.store
                .messages
                .history(room.id, Some(7), 4, 0)
                .await
                .expect("page")
        ),
        vec![6, 5, 4, 3]
    );
    assert_eq!(
        seqs(
            db.store
                .messages
                .history(room.id, Some(3), 4, 0)
                .await
                .expect("page")
        ),
        vec![2, 1]
    );
    assert_eq!(
        seqs(
            db.store
                .messages
                .after(room.id, 7, 100)
                .await
                .expect("after")
        ),
        vec![8, 9, 10]
    );
    assert_eq!(
        seqs(db.store.messages.after(room.id, 0, 2).await.expect("after")),
        vec![1, 2]
    );
    let message = db
        .store
        .messages
        .history(room.id, None, 1, 0)
        .await
        .expect("page")
        .remove(0);
    assert_eq!((message.content.as_str(), message.user), ("m10", ada));
}

pub async fn concurrent_writers_from_several_instances_get_unique_gap_free_seqs(db: &Backend) {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    let ada = user(db, "ada").await;
    let room = public_room(db, &ada, "busy").await;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        // Half the writers go through a second store, as a second server would.
        let store = if w % 2 == 0 {
            db.store.clone()
        } else {
            db.another_instance().await
        };
        let ada = ada.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..EACH {
                let id = format!("{w}-{i}");
                let new = NewMessage {
                    room_id: room.id,
                    user: &ada,
                    client_msg_id: Some(&id),
                    content: "x",
                    reply_to: None,
                    attachments: None,
                };
                match store.messages.append(new).await.expect("append") {
                    Appended::Stored(message) => seqs.push(message.seq),
                    other => panic!("unexpected {other:?}"),
                }
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for seq in task.await.expect("writer") {
            assert!(all.insert(seq), "seq {seq} handed out twice");
        }
    }
    let expected: BTreeSet<i64> = (1..=(WRITERS * EACH) as i64).collect();
    assert_eq!(all, expected);
}

/// Rooms named by clients (Socket.IO `joinRoom`, a space id): an existing room of that
/// name is found; otherwise creators racing on several instances end in one room.
pub async fn named_rooms_are_found_or_created_once(db: &Backend) {
    let ada = user(db, "ada").await;
    let rest = public_room(db, &ada, "made-over-rest").await;
    assert_eq!(
        db.store
            .rooms
            .find_named("made-over-rest")
            .await
            .expect("find"),
        Some(rest.id)
    );
    assert_eq!(
        db.store.rooms.find_named("nowhere").await.expect("find"),
        None
    );
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = if w % 2 == 0 {
            db.store.clone()
        } else {
            db.another_instance().await
        };
        let owner = ada.id;
        tasks.push(tokio::spawn(async move {
            store
                .rooms
                .create_named(owner, "lobby")
                .await
                .expect("create")
        }));
    }
    let mut ids = BTreeSet::new();
    let mut created = 0;
    for task in tasks {
        let (id, fresh) = task.await.expect("creator");
        ids.insert(id);
        created += usize::from(fresh);
    }
    assert_eq!(ids.len(), 1, "one room for one name: {ids:?}");
    assert_eq!(created, 1, "exactly one creator made it");
    let lobby = ids.first().copied();
    assert_eq!(
        db.store.rooms.find_named("lobby").await.expect("find"),
        lobby
    );
    // A later room of the same name (over REST) does not move the name.
    public_room(db, &ada, "lobby").await;
    assert_eq!(
        db.store.rooms.find_named("lobby").await.expect("find"),
        lobby
    );
}

/// An error inside a write transaction rolls everything of it back, and the next write
/// on the same store commits for real (another instance, with connections of its own,
/// sees it): the failed transaction left no connection half-way through.
pub async fn a_failed_write_transaction_leaves_nothing_behind(db: &Backend) {
    let attempt = async {
        let mut tx = db.store.db().begin().await?;
        sqlx::query(
            "INSERT INTO users (username, username_key, password_hash, created_at)
             VALUES ('ghost', 'ghost', 'x', 0)",
        )
        .execute(&mut *tx)
        .await?;
        // Fails mid-transaction: `?` drops the transaction without COMMIT or ROLLBACK.
        sqlx::query("INSERT INTO no_such_table VALUES (1)")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(())
    };
    assert!(matches!(attempt.await, Err(StoreError::Database(_))));
    for name in ["after1", "after2", "after3"] {
        user(db, name).await;
    }
    let other = db.another_instance().await;
    assert!(
        other
            .users
            .find_by_name("ghost")
            .await
            .expect("query")
            .is_none()
    );
    for name in ["after1", "after2", "after3"] {
        assert!(
            other
                .users
                .find_by_name(name)
                .await
                .expect("query")
                .is_some(),
            "{name} was acknowledged but not committed"
        );
    }
    other.db().close().await;
}

/// `/readyz`'s probe is a real write: it commits, repeatedly, through the writer.
pub async fn the_readiness_probe_writes(db: &Backend) {
    for _ in 0..3 {
        db.store.ready().await.expect("probe write");
    }
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM store_probe")
        .fetch_one(db.store.db().reader())
        .await
        .expect("count");
    assert_eq!(rows, 1, "each probe clears the previous one");
}

/// PostgreSQL: a connection killed in the middle of a write transaction (server restart,
/// failover, admin) is reported as the retryable `Unavailable`, and the pool is not left
/// with it: the next writes succeed.
pub async fn a_connection_lost_mid_transaction_is_unavailable_and_the_pool_recovers(db: &Backend) {
    let ada = user(db, "ada").await;
    let room = public_room(db, &ada, "lobby").await;
    let attempt = async {
        let mut tx = db.store.db().begin().await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *tx)
            .await?;
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
            .await
            .expect("admin connection");
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut admin)
            .await
            .expect("terminate");
        sqlx::query("UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1")
            .bind(room.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    };
    let err = attempt.await.expect_err("the connection is gone");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    for i in 1..=20 {
        let message = stored(append(db, room.id, &ada, None, "after").await);
        assert_eq!(message.seq, i, "the lost transaction took no seq");
    }
}

/// A store over the same database whose writer waits up to `linger` to fill batches of
/// `batch`: concurrent appends spawned together then share one transaction. (Outcomes
/// must be right whatever the batching; the linger only makes the shared batch likely.)
fn batching(db: &Backend, batch: usize, linger: Duration) -> Store {
    db.store.clone().with_append_options(AppendOptions {
        batch,
        queue: 4 * batch,
        linger: Linger::Always(linger),
        ..AppendOptions::default()
    })
}

/// Appends owned messages concurrently and returns the outcomes in request order.
async fn append_all(
    store: &Store,
    messages: Vec<(i64, User, Option<String>, String)>,
) -> Vec<Result<Appended, StoreError>> {
    let tasks: Vec<_> = messages
        .into_iter()
        .map(|(room_id, user, id, content)| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .messages
                    .append(NewMessage {
                        room_id,
                        user: &user,
                        client_msg_id: id.as_deref(),
                        content: &content,
                        reply_to: None,
                        attachments: None,
                    })
                    .await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("append task"));
    }
    outcomes
}

/// Many concurrent appends, spread over many rooms and piled into one: every room's seqs
/// are exactly 1..=n and every acknowledged message is stored as acknowledged.
pub async fn concurrent_appends_across_rooms_are_gap_free_and_all_stored(db: &Backend) {
    const ROOMS: usize = 20;
    const PER_ROOM: usize = 10;
    const HOT: usize = 200;
    let ada = user(db, "ada").await;
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        rooms.push(public_room(db, &ada, &format!("r{r}")).await.id);
    }
    let hot = public_room(db, &ada, "hot").await.id;
    let mut messages = Vec::new();
    for i in 0..PER_ROOM {
        for room in &rooms {
            messages.push((
                *room,
                ada.clone(),
                Some(format!("{room}-{i}")),
                format!("m{i}"),
            ));
        }
    }
    for i in 0..HOT {
        messages.push((hot, ada.clone(), None, format!("hot{i}")));
    }
    let store = batching(db, 64, Duration::from_millis(2));
    let mut acked: BTreeMap<i64, Vec<socket_hub_protocol::Message>> = BTreeMap::new();
    for outcome in append_all(&store, messages).await {
        let message = stored(outcome.expect("append"));
        acked.entry(message.room_id).or_default().push(message);
    }
    for room in rooms.iter().chain([&hot]) {
        let mut mine = acked.remove(room).unwrap_or_default();
        mine.sort_by_key(|m| m.seq);
        let expected = if *room == hot { HOT } else { PER_ROOM };
        let seqs: Vec<i64> = mine.iter().map(|m| m.seq).collect();
        assert_eq!(
            seqs,
            (1..=expected as i64).collect::<Vec<_>>(),
            "room {room}"
        );
        let in_store = db
            .store
            .messages
            .after(*room, 0, 1000)
            .await
            .expect("after");
        assert_eq!(in_store, mine, "room {room}: acknowledged = stored");
        assert_eq!(
            db.store.messages.last_seq(*room).await.expect("last"),
            expected as i64
        );
    }
}

/// The same `client_msg_id` several times in one batch, and again in a later batch:
/// one message is stored, every request gets it, no seq is burned.
pub async fn duplicates_in_one_batch_and_across_batches_return_the_original(db: &Backend) {
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let room = public_room(db, &ada, "lobby").await.id;
    db.store
        .rooms
        .add_member(room, bob.id, "member")
        .await
        .expect("add");
    let store = batching(db, 8, Duration::from_secs(5));
    let mut messages = Vec::new();
    for i in 0..3 {
        messages.push((room, ada.clone(), Some("k".to_owned()), format!("ada{i}")));
        // The key is per sender: bob's "k" is another message.
        messages.push((room, bob.clone(), Some("k".to_owned()), format!("bob{i}")));
    }
    messages.push((room, ada.clone(), None, "plain".to_owned()));
    messages.push((
        room,
        ada.clone(),
        Some("other".to_owned()),
        "other".to_owned(),
    ));
    let outcomes: Vec<Appended> = append_all(&store, messages)
        .await
        .into_iter()
        .map(|o| o.expect("append"))
        .collect();
    let original = |sender: &User| {
        outcomes
            .iter()
            .find_map(|o| match o {
                Appended::Stored(m)
                    if m.user == *sender && m.client_msg_id.as_deref() == Some("k") =>
                {
                    Some(m.clone())
                }
                _ => None,
            })
            .expect("one stored")
    };
    let (ada_k, bob_k) = (original(&ada), original(&bob));
    for (i, outcome) in outcomes.iter().take(6).enumerate() {
        let expected = if i % 2 == 0 { &ada_k } else { &bob_k };
        match outcome {
            Appended::Stored(m) | Appended::Duplicate(m) => assert_eq!(m, expected, "request {i}"),
            Appended::NotMember => panic!("request {i}: not a member?"),
        }
    }
    let stored_count = outcomes
        .iter()
        .filter(|o| matches!(o, Appended::Stored(_)))
        .count();
    assert_eq!(stored_count, 4, "ada's k, bob's k, plain, other");
    assert_eq!(db.store.messages.last_seq(room).await.expect("last"), 4);
    // A later batch: the originals again.
    assert_eq!(
        append(db, room, &ada, Some("k"), "again").await,
        Appended::Duplicate(ada_k)
    );
    assert_eq!(
        append(db, room, &bob, Some("k"), "again").await,
        Appended::Duplicate(bob_k)
    );
    assert_eq!(stored(append(db, room, &bob, None, "next").await).seq, 5);
}

/// A non-member's message in a batch with members' fails alone and takes no seq.
pub async fn a_non_member_in_a_batch_fails_alone_and_burns_no_seq(db: &Backend) {
    let ada = user(db, "ada").await;
    let eve = user(db, "eve").await;
    let room = public_room(db, &ada, "lobby").await.id;
    let store = batching(db, 7, Duration::from_secs(5));
    let mut messages = Vec::new();
    for i in 0..3 {
        messages.push((room, ada.clone(), None, format!("a{i}")));
        messages.push((room, eve.clone(), Some(format!("e{i}")), format!("e{i}")));
    }
    messages.push((9_999, ada.clone(), None, "no such room".to_owned()));
    let outcomes = append_all(&store, messages).await;
    let mut seqs = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome.expect("append") {
            Appended::Stored(m) => {
                assert_eq!((i % 2, m.user.id), (0, ada.id), "request {i}");
                seqs.push(m.seq);
            }
            Appended::NotMember => assert!(i % 2 == 1 || i == 6, "request {i}"),
            other => panic!("request {i}: {other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(db.store.messages.last_seq(room).await.expect("last"), 3);
    assert_eq!(stored(append(db, room, &ada, None, "next").await).seq, 4);
}

/// A message the database rejects (here a trigger; in life a constraint) fails alone:
/// the batch is retried message by message and the others are stored, gap-free.
pub async fn a_message_the_database_rejects_fails_alone(db: &Backend) {
    let ada = user(db, "ada").await;
    let room = public_room(db, &ada, "lobby").await.id;
    refuse_content(db, "poison", None).await;
    let store = batching(db, 5, Duration::from_secs(5));
    let mut messages: Vec<_> = (0..4)
        .map(|i| (room, ada.clone(), None, format!("ok{i}")))
        .collect();
    messages.insert(2, (room, ada.clone(), None, "poison".to_owned()));
    let outcomes = append_all(&store, messages).await;
    let mut seqs = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        match outcome {
            Ok(Appended::Stored(m)) => seqs.push(m.seq),
            Err(StoreError::Database(_)) => assert_eq!(i, 2, "only the poison fails"),
            other => panic!("request {i}: {other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert_eq!(stored_count(db, room).await, 4);
}

/// A batch that cannot be stored for want of space (SQLite: the file's page cap;
/// PostgreSQL: `disk_full` raised while inserting) acknowledges none of its messages,
/// stores none, burns no seq; the next writes succeed.
pub async fn a_batch_that_cannot_commit_acknowledges_nothing(db: &Backend) {
    let ada = user(db, "ada").await;
    let room = public_room(db, &ada, "lobby").await.id;
    assert_eq!(stored(append(db, room, &ada, None, "before").await).seq, 1);
    let big = "x".repeat(4000);
    let capped = match db.store.backend() {
        socket_hub::store::Backend::Sqlite => {
            let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(db.store.db().reader())
                .await
                .expect("page count");
            let options = DbOptions {
                sqlite_max_pages: Some(u32::try_from(pages + 2).expect("small")),
            };
            Store::open(&db.url, &options).await.expect("capped store")
        }
        socket_hub::store::Backend::Postgres => {
            refuse_content(db, &big, Some("disk_full")).await;
            db.another_instance().await
        }
    };
    let capped = capped.with_append_options(AppendOptions {
        batch: 6,
        queue: 6,
        linger: Linger::Always(Duration::from_secs(5)),
        ..AppendOptions::default()
    });
    let mut messages: Vec<_> = (0..3)
        .map(|i| {
            (
                room,
                ada.clone(),
                Some(format!("small{i}")),
                format!("small{i}"),
            )
        })
        .collect();
    messages.extend((0..3).map(|i| (room, ada.clone(), Some(format!("big{i}")), big.clone())));
    for (i, outcome) in append_all(&capped, messages).await.into_iter().enumerate() {
        assert!(
            matches!(outcome, Err(StoreError::Unavailable(_))),
            "request {i} of the failed batch: {outcome:?}"
        );
    }
    capped.db().close().await;
    assert_eq!(db.store.messages.last_seq(room).await.expect("last"), 1);
    assert_eq!(stored_count(db, room).await, 1);
    assert_eq!(
        stored(append(db, room, &ada, Some("small0"), "small0").await).seq,
        2
    );
}

/// Makes the database refuse to insert messages whose content is `content`: with an
/// error of the given PostgreSQL `errcode`, or (SQLite, or no code) an ordinary error.
async fn refuse_content(db: &Backend, content: &str, errcode: Option<&str>) {
    let pool = db.store.db().reader();
    match db.store.backend() {
        socket_hub::store::Backend::Sqlite => {
            // The reader pool is read-only: use a connection of the test's own.
            let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
                .await
                .expect("side connection");
            sqlx::query(&format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.content = '{content}'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END"
            ))
            .execute(&mut conn)
            .await
            .expect("trigger");
        }
        socket_hub::store::Backend::Postgres => {
            let code = errcode.unwrap_or("check_violation");
            sqlx::query(&format!(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
                   IF NEW.content = '{content}' THEN
                     RAISE EXCEPTION 'refused' USING ERRCODE = '{code}';
                   END IF;
                   RETURN NEW;
                 END $$ LANGUAGE plpgsql"
            ))
            .execute(pool)
            .await
            .expect("function");
            sqlx::query("CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()")
                .execute(pool)
                .await
                .expect("trigger");
        }
    }
}

/// How many messages `room` holds now.
async fn stored_count(db: &Backend, room: RoomId) -> usize {
    db.store
        .messages
        .after(room, 0, 100)
        .await
        .expect("after")
        .len()
}

/// Room events (stored by a room change) and messages (stored by the appender, from
/// another instance too) share one gap-free seq per room, and replay returns both.
pub async fn room_events_take_gap_free_seqs_between_messages(db: &Backend) {
    use socket_hub_protocol::{Role, RoomEvent};
    const EACH: usize = 20;
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let room = public_room(db, &ada, "mixed").await;
    db.store
        .rooms
        .add_member(room.id, bob.id, "member")
        .await
        .expect("bob joins");
    let other = db.another_instance().await;
    let writer = {
        let ada = ada.clone();
        tokio::spawn(async move {
            for i in 0..EACH {
                let content = format!("m{i}");
                let appended = other
                    .messages
                    .append(NewMessage {
                        room_id: room.id,
                        user: &ada,
                        client_msg_id: None,
                        content: &content,
                        reply_to: None,
                        attachments: None,
                    })
                    .await
                    .expect("append");
                assert!(matches!(appended, Appended::Stored(_)));
            }
        })
    };
    for i in 0..EACH {
        let role = if i % 2 == 0 {
            Role::Admin
        } else {
            Role::Member
        };
        let mut change = db
            .store
            .rooms
            .change(room.id)
            .await
            .expect("change")
            .expect("room exists");
        assert_eq!(change.role(ada.id).await.expect("role"), Some(Role::Owner));
        change.set_role(bob.id, role).await.expect("set role");
        let event = RoomEvent::MemberUpdated {
            user: bob.clone(),
            role,
            muted_until: None,
        };
        change
            .append_event(&ada, "role change", event)
            .await
            .expect("event");
        change.commit().await.expect("commit");
    }
    writer.await.expect("writer");
    let all = db
        .store
        .messages
        .after(room.id, 0, 1000)
        .await
        .expect("replay");
    let seqs: Vec<i64> = all.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=(2 * EACH) as i64).collect::<Vec<_>>());
    assert_eq!(all.iter().filter(|m| m.event.is_some()).count(), EACH);
    assert_eq!(
        db.store.rooms.role(room.id, bob.id).await.expect("role"),
        Some(Role::Member)
    );
    // A rolled-back change leaves no event and burns no seq.
    let mut change = db
        .store
        .rooms
        .change(room.id)
        .await
        .expect("change")
        .expect("room");
    change
        .append_event(&ada, "never", RoomEvent::Unbanned { user: bob.clone() })
        .await
        .expect("event");
    change.rollback().await.expect("rollback");
    assert_eq!(
        db.store.messages.last_seq(room.id).await.expect("last"),
        (2 * EACH) as i64
    );
}

/// Bans keep users out even of `add_member`; mutes keep members from appending; deleting
/// a room takes its history, memberships and bans with it.
pub async fn roles_bans_and_mutes_are_enforced_by_the_store(db: &Backend) {
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let room = public_room(db, &ada, "moderated").await;
    let rooms = &db.store.rooms;
    rooms
        .add_member(room.id, bob.id, "member")
        .await
        .expect("join");

    let mut change = rooms.change(room.id).await.expect("change").expect("room");
    let target = change.target(bob.id).await.expect("target").expect("bob");
    assert_eq!(target.role, Some(socket_hub_protocol::Role::Member));
    change
        .set_muted(bob.id, Some(socket_hub::store::now_millis() + 60_000))
        .await
        .expect("mute");
    change.commit().await.expect("commit");
    let appended = append(db, room.id, &bob, None, "hi").await;
    assert_eq!(appended, Appended::NotMember, "muted members cannot send");

    let mut change = rooms.change(room.id).await.expect("change").expect("room");
    assert!(change.remove_member(bob.id).await.expect("remove"));
    change
        .ban(bob.id, ada.id, Some("spam"), None)
        .await
        .expect("ban");
    change.commit().await.expect("commit");
    assert!(rooms.is_banned(room.id, bob.id).await.expect("banned"));
    assert!(
        !rooms
            .add_member(room.id, bob.id, "member")
            .await
            .expect("add"),
        "a banned user cannot be added"
    );
    assert!(!rooms.is_member(room.id, bob.id).await.expect("member"));
    let bans = rooms.bans(room.id, 10).await.expect("bans");
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0].reason.as_deref(), Some("spam"));

    // An expired ban no longer counts.
    let mut change = rooms.change(room.id).await.expect("change").expect("room");
    change
        .ban(
            bob.id,
            ada.id,
            None,
            Some(socket_hub::store::now_millis() - 1),
        )
        .await
        .expect("ban again");
    change.commit().await.expect("commit");
    assert!(!rooms.is_banned(room.id, bob.id).await.expect("expired"));
    assert!(
        rooms
            .add_member(room.id, bob.id, "member")
            .await
            .expect("add")
    );

    let mut change = rooms.change(room.id).await.expect("change").expect("room");
    change.delete().await.expect("delete");
    change.commit().await.expect("commit");
    assert!(rooms.change(room.id).await.expect("change").is_none());
    assert!(
        rooms
            .access(room.id, ada.id)
            .await
            .expect("access")
            .is_none()
    );
}

/// A link with `max_uses` admits exactly that many, also when used at once through two
/// instances; an invitation is consumed by accepting it.
pub async fn invite_links_admit_exactly_max_uses_and_invitations_are_consumed(db: &Backend) {
    use socket_hub::rooms::Admission;
    const USERS: usize = 10;
    const MAX: u32 = 3;
    let ada = user(db, "ada").await;
    let room = public_room(db, &ada, "club").await;
    let (_, hash) = socket_hub::auth::new_refresh_token();
    db.store
        .rooms
        .create_link(room.id, ada.id, &hash, Some(MAX), None)
        .await
        .expect("link");
    let other = db.another_instance().await;
    let mut tasks = Vec::new();
    for i in 0..USERS {
        let guest = user(db, &format!("guest{i}")).await;
        let store = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        let hash = hash.clone();
        tasks.push(tokio::spawn(async move {
            store
                .rooms
                .join_by_link(&hash, guest.id)
                .await
                .expect("join by link")
        }));
    }
    let mut joined = 0;
    for task in tasks {
        match task.await.expect("task") {
            Admission::Member { joined: true, .. } => joined += 1,
            Admission::Unusable(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(joined, MAX as usize);
    let links = db.store.rooms.links(room.id, 10).await.expect("links");
    assert_eq!(links[0].uses, MAX);

    let bob = user(db, "bob").await;
    let invitation = db
        .store
        .rooms
        .invite(room.id, bob.id, ada.id)
        .await
        .expect("invite");
    assert_eq!(
        db.store
            .rooms
            .accept(invitation.id, bob.id)
            .await
            .expect("accept"),
        Admission::Member {
            room_id: room.id,
            joined: true
        }
    );
    assert_eq!(
        db.store
            .rooms
            .accept(invitation.id, bob.id)
            .await
            .expect("again"),
        Admission::Unknown
    );
}

/// One conversation per pair, also when both open it at once through two instances;
/// blocks mute both members and lifting the last block unmutes them.
pub async fn direct_rooms_are_one_per_pair_and_blocks_make_them_read_only(db: &Backend) {
    use socket_hub::rooms::DirectOpened;
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let other = db.another_instance().await;
    let (first, second) = tokio::join!(
        db.store.rooms.open_direct(&ada, &bob),
        other.rooms.open_direct(&bob, &ada)
    );
    let room_of = |opened: DirectOpened| match opened {
        DirectOpened::Room { room_id, .. } => room_id,
        DirectOpened::Blocked => panic!("not blocked"),
    };
    let room_id = room_of(first.expect("open"));
    assert_eq!(room_of(second.expect("open")), room_id);
    let listed = db.store.rooms.directs(ada.id, 10).await.expect("dms");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].peer, bob);
    assert!(listed[0].room.room.is_direct);
    assert!(
        db.store
            .rooms
            .list(ada.id, true, 0, 10)
            .await
            .expect("rooms")
            .is_empty(),
        "DMs are not listed with rooms"
    );

    db.store.rooms.block(bob.id, ada.id).await.expect("block");
    db.store
        .rooms
        .block(ada.id, bob.id)
        .await
        .expect("block back");
    assert_eq!(
        db.store.rooms.open_direct(&ada, &bob).await.expect("open"),
        DirectOpened::Blocked
    );
    assert_eq!(
        append(db, room_id, &ada, None, "hi").await,
        Appended::NotMember
    );
    assert!(
        db.store
            .rooms
            .unblock(bob.id, ada.id)
            .await
            .expect("unblock")
    );
    assert_eq!(
        append(db, room_id, &ada, None, "hi").await,
        Appended::NotMember,
        "ada's own block still stands"
    );
    assert!(
        db.store
            .rooms
            .unblock(ada.id, bob.id)
            .await
            .expect("unblock")
    );
    assert!(matches!(
        append(db, room_id, &ada, None, "hi").await,
        Appended::Stored(_)
    ));
}

/// Each user's stream: oldest first after a cursor, unread counted, marked read up to an
/// id, and never another user's.
pub async fn notifications_are_per_user_with_unread_counts(db: &Backend) {
    use socket_hub::notifications::NewNotification;
    use socket_hub_protocol::NotificationKind;
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let store = &db.store.notifications;
    let new = |kind| NewNotification {
        kind,
        room_id: Some(7),
        from: Some(ada.clone()),
        message: Some("hello".into()),
        seq: None,
    };
    let first = store
        .create(&[bob.id, ada.id], &new(NotificationKind::Invited))
        .await
        .expect("create");
    assert_eq!(first.len(), 2);
    store
        .create(&[bob.id], &new(NotificationKind::Mentioned))
        .await
        .expect("create");
    let listed = store.list(bob.id, 0, 10, false).await.expect("list");
    let kinds: Vec<_> = listed.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NotificationKind::Invited, NotificationKind::Mentioned]
    );
    assert_eq!(listed[0].from.as_ref(), Some(&ada));
    assert_eq!(listed[0].room_id, Some(7));
    assert_eq!(store.unread(bob.id).await.expect("unread"), 2);
    assert_eq!(store.unread(ada.id).await.expect("unread"), 1);
    store.mark_read(bob.id, listed[0].id).await.expect("read");
    assert_eq!(store.unread(bob.id).await.expect("unread"), 1);
    let unread = store.list(bob.id, 0, 10, true).await.expect("unread");
    assert_eq!(unread.len(), 1);
    assert_eq!(unread[0].kind, NotificationKind::Mentioned);
    let after = store
        .list(bob.id, listed[0].id, 10, false)
        .await
        .expect("after");
    assert_eq!(after.len(), 1);
}

/// Profiles: edits, clears, prefix search with wildcards taken literally, last seen.
pub async fn profiles_edit_and_search_by_prefix(db: &Backend) {
    let ada = user(db, "Ada").await;
    user(db, "ad_min").await;
    user(db, "adam").await;
    user(db, "bob").await;
    let profiles = &db.store.profiles;
    profiles
        .update(ada.id, Some(Some("Ada Lovelace")), Some(Some("busy")))
        .await
        .expect("update");
    profiles
        .update(ada.id, None, Some(None))
        .await
        .expect("clear status");
    let profile = profiles
        .profile(ada.id)
        .await
        .expect("profile")
        .expect("ada");
    assert_eq!(profile.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(profile.status, None);
    assert_eq!(profile.initials, "AL");
    let names = |found: Vec<socket_hub_protocol::rest::Profile>| -> Vec<String> {
        found.into_iter().map(|p| p.username).collect()
    };
    assert_eq!(
        names(profiles.search("ad", 0, 10).await.expect("search")),
        ["Ada", "ad_min", "adam"]
    );
    assert_eq!(
        names(profiles.search("ad_", 0, 10).await.expect("search")),
        ["ad_min"]
    );
    assert_eq!(
        names(profiles.search("ad%", 0, 10).await.expect("search")),
        Vec::<String>::new()
    );
    assert_eq!(
        names(profiles.search("ad", ada.id, 1).await.expect("after")),
        ["ad_min"]
    );
    db.store.users.touch(ada.id).await.expect("touch");
    assert!(
        profiles
            .profile(ada.id)
            .await
            .expect("profile")
            .expect("ada")
            .last_seen_at
            .is_some()
    );
}

/// A deleted account keeps its row (its messages keep an author) but cannot be found,
/// signed into or named again until someone registers the name anew; an owner cannot
/// delete theirs.
pub async fn deleted_accounts_stay_as_deleted_user(db: &Backend) {
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let room = public_room(db, &ada, "general").await;
    db.store
        .rooms
        .add_member(room.id, bob.id, "member")
        .await
        .expect("join");
    stored(append(db, room.id, &bob, None, "hello").await);
    assert_eq!(db.store.users.delete(ada.id).await.expect("owner"), None);
    assert!(
        db.store
            .users
            .delete(bob.id)
            .await
            .expect("delete")
            .is_some()
    );
    assert!(db.store.users.find(bob.id).await.expect("find").is_none());
    assert!(
        db.store
            .users
            .find_by_name("bob")
            .await
            .expect("by name")
            .is_none()
    );
    let history = db
        .store
        .messages
        .after(room.id, 0, 10)
        .await
        .expect("history");
    assert_eq!(history[0].user.username, "deleted user");
    assert!(
        !db.store
            .rooms
            .is_member(room.id, bob.id)
            .await
            .expect("member")
    );
    user(db, "bob").await;
}

/// "Last seen" times written at the same moment (a storm of connects, then of
/// disconnects) share transactions, and every one of them is stored, the later time
/// last.
pub async fn last_seen_times_written_together_are_all_stored(db: &Backend) {
    let mut people = Vec::new();
    for i in 0..40 {
        people.push(user(db, &format!("p{i}")).await.id);
    }
    let touches = people.iter().map(|&id| db.store.users.touch(id));
    for touched in futures_util::future::join_all(touches).await {
        touched.expect("touch");
    }
    let seen = |id| async move {
        db.store
            .profiles
            .profile(id)
            .await
            .expect("profile")
            .expect("exists")
            .last_seen_at
            .expect("last seen stored")
    };
    let mut connected = Vec::new();
    for &id in &people {
        connected.push(seen(id).await);
    }
    let offline = people.iter().map(|&id| db.store.presence.went_offline(id));
    let times: Vec<i64> = futures_util::future::join_all(offline)
        .await
        .into_iter()
        .map(|at| at.expect("offline"))
        .collect();
    for ((&id, at), before) in people.iter().zip(times).zip(connected) {
        let stored = seen(id).await;
        assert_eq!(stored.timestamp_millis(), at, "user {id}");
        assert!(stored >= before);
    }
}

/// Failure injected: the database refuses "last seen" updates. A touch fails (and every
/// caller sharing its batch), and its claim is dropped so the next connection tries
/// again instead of believing the time stored; going offline fails the same way; once
/// the database takes writes again the next touch stores the time.
pub async fn a_failed_last_seen_write_is_tried_again_and_stores_nothing(db: &Backend) {
    let ada = user(db, "ada").await;
    let pool = db.store.db().reader();
    let create = match db.store.backend() {
        socket_hub::store::Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_seen BEFORE UPDATE OF last_seen_at ON users
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        ],
        socket_hub::store::Backend::Postgres => vec![
            "CREATE FUNCTION refuse_seen() RETURNS trigger AS $$ BEGIN
               RAISE EXCEPTION 'refused' USING ERRCODE = 'disk_full';
             END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_seen BEFORE UPDATE OF last_seen_at ON users
             FOR EACH ROW EXECUTE FUNCTION refuse_seen()",
        ],
    };
    // SQLite's reader pool is read-only: a connection of the test's own.
    let mut side = match db.store.backend() {
        socket_hub::store::Backend::Sqlite => Some(
            <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
                .await
                .expect("side connection"),
        ),
        socket_hub::store::Backend::Postgres => None,
    };
    for sql in create {
        match side.as_mut() {
            Some(conn) => sqlx::query(sql).execute(conn).await.map(drop),
            None => sqlx::query(sql).execute(pool).await.map(drop),
        }
        .expect("refuse last seen");
    }
    let users = &db.store.users;
    assert!(
        users.touch(ada.id).await.is_err(),
        "the refused write fails"
    );
    assert!(
        users.touch(ada.id).await.is_err(),
        "tried again, not taken as stored"
    );
    assert!(db.store.presence.went_offline(ada.id).await.is_err());
    let seen = || async {
        db.store
            .profiles
            .profile(ada.id)
            .await
            .expect("profile")
            .expect("ada")
            .last_seen_at
    };
    assert_eq!(seen().await, None, "nothing stored");
    let drop_trigger = "DROP TRIGGER refuse_seen";
    match side.as_mut() {
        Some(conn) => sqlx::query(drop_trigger).execute(conn).await.map(drop),
        None => sqlx::query("DROP TRIGGER refuse_seen ON users")
            .execute(pool)
            .await
            .map(drop),
    }
    .expect("accept last seen again");
    users.touch(ada.id).await.expect("touch");
    assert!(seen().await.is_some());
}

/// Contacts over several rooms: everyone who shares any of them, each once, never the
/// user (the list travels as one comma-separated text).
pub async fn contacts_are_everyone_sharing_a_room_once(db: &Backend) {
    let ada = user(db, "ada").await;
    let mut expected = Vec::new();
    for name in ["one", "two"] {
        let room = public_room(db, &ada, name).await;
        for who in ["bob", "cy", "dee"] {
            let member = match db.store.users.find_by_name(who).await.expect("find") {
                Some(found) => found.user,
                None => {
                    let created = user(db, who).await;
                    expected.push(created.id);
                    created
                }
            };
            db.store
                .rooms
                .add_member(room.id, member.id, "member")
                .await
                .expect("member");
        }
    }
    let mut contacts = db.store.presence.contacts(ada.id).await.expect("contacts");
    contacts.sort_unstable();
    expected.sort_unstable();
    assert_eq!(contacts, expected);
    let bob = expected[0];
    let mut of_bob = db.store.presence.contacts(bob).await.expect("contacts");
    of_bob.sort_unstable();
    let mut others: Vec<_> = [ada.id, expected[1], expected[2]].into();
    others.sort_unstable();
    assert_eq!(of_bob, others);
}

/// Presence: contacts are the people sharing a room (or DM) with a user; presence is
/// visible to them and to the user, not to strangers; going offline stores last seen.
/// Mentions are read by moving the read marker past them, and only mentions.
pub async fn presence_contacts_visibility_and_mentions_read_by_marker(db: &Backend) {
    use socket_hub::notifications::NewNotification;
    use socket_hub_protocol::NotificationKind;
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let cy = user(db, "cy").await;
    let room = public_room(db, &ada, "lab").await;
    db.store
        .rooms
        .add_member(room.id, bob.id, "member")
        .await
        .expect("bob joins");
    let presence = &db.store.presence;
    assert_eq!(
        presence.contacts(ada.id).await.expect("contacts"),
        vec![bob.id]
    );
    assert!(presence.contacts(cy.id).await.expect("contacts").is_empty());
    let seen = presence
        .visible_to(bob.id, &[ada.id, bob.id, cy.id])
        .await
        .expect("visible");
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([ada.id, bob.id])
    );
    assert!(seen[&ada.id].is_none(), "never seen yet");
    presence.went_offline(ada.id).await.expect("offline");
    let seen = presence
        .visible_to(bob.id, &[ada.id])
        .await
        .expect("visible");
    assert!(seen[&ada.id].is_some());
    assert!(
        presence
            .visible_to(cy.id, &[ada.id])
            .await
            .expect("visible")
            .is_empty()
    );

    let store = &db.store.notifications;
    let new = |kind, seq| NewNotification {
        kind,
        room_id: Some(room.id),
        from: Some(ada.clone()),
        message: Some("hi @bob".into()),
        seq,
    };
    store
        .create(&[bob.id], &new(NotificationKind::Mentioned, Some(3)))
        .await
        .expect("create");
    store
        .create(&[bob.id], &new(NotificationKind::Mentioned, Some(8)))
        .await
        .expect("create");
    store
        .create(&[bob.id], &new(NotificationKind::Invited, None))
        .await
        .expect("create");
    let marked = store.mark_mentions_read(bob.id, room.id, 5).await;
    assert_eq!(marked.expect("mark"), 1);
    assert_eq!(store.unread(bob.id).await.expect("unread"), 2);
    let listed = store.list(bob.id, 0, 10, false).await.expect("list");
    assert_eq!(listed[0].seq, Some(3));
    assert!(listed[0].read && !listed[1].read);
    assert_eq!(
        store
            .mark_mentions_read(bob.id, room.id, 5)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        store
            .mark_mentions_read(bob.id, room.id, 99)
            .await
            .expect("all"),
        1
    );
    assert_eq!(
        store.unread(bob.id).await.expect("unread"),
        1,
        "the invitation stays"
    );
}
