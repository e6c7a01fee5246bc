//! The store behaviour every backend must show.

use std::collections::BTreeSet;

use socket_hub::auth::Rotation;
use socket_hub::rooms::{Appended, NewMessage};
use socket_hub::store::StoreError;
use socket_hub_protocol::User;

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
        .list(ada.id)
        .await
        .expect("list")
        .iter()
        .map(|r| r.room.id)
        .collect();
    assert_eq!(for_ada, vec![lobby.room.id, secret.room.id]);
    let for_bob = db.store.rooms.list(bob.id).await.expect("list");
    let ids: Vec<_> = for_bob
        .iter()
        .map(|r| (r.room.id, r.room.is_member))
        .collect();
    assert_eq!(ids, vec![(lobby.room.id, false), (bobs.room.id, true)]);

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
        .members(room.id)
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
                .history(room.id, None, 4)
                .await
                .expect("page")
        ),
        vec![10, 9, 8, 7]
    );
    assert_eq!(
        seqs(
            db.store
                .messages
                .history(room.id, Some(7), 4)
                .await
                .expect("page")
        ),
        vec![6, 5, 4, 3]
    );
    assert_eq!(
        seqs(
            db.store
                .messages
                .history(room.id, Some(3), 4)
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
        .history(room.id, None, 1)
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
