//! The store behaviour every backend must show.

use std::collections::BTreeSet;

use socket_hub::auth::Consumed;
use socket_hub::rooms::{Appended, NewMessage};
use socket_hub::store::StoreError;
use socket_hub_protocol::User;

use crate::backends::Backend;

async fn user(db: &Backend, name: &str) -> User {
    db.store
        .create_user(name, "hash")
        .await
        .expect("create user")
}

/// A public room owned by `owner`.
async fn public_room(db: &Backend, owner: &User, name: &str) -> socket_hub_protocol::Room {
    db.store
        .create_room(owner.id, name, false, None)
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
    let err = db.store.create_user("ADA", "x").await.expect_err("taken");
    assert!(matches!(err, StoreError::Conflict(_)));
    let found = db
        .store
        .find_user_by_name("ada")
        .await
        .expect("query")
        .expect("found");
    assert_eq!(
        (found.user, found.password_hash.as_str()),
        (ada.clone(), "hash")
    );
    assert_eq!(db.store.find_user(ada.id).await.expect("query"), Some(ada));
    assert!(db.store.find_user(9_999).await.expect("query").is_none());
}

pub async fn refresh_tokens_are_single_use(db: &Backend) {
    let ada = user(db, "ada").await;
    let far = chrono::Utc::now().timestamp_millis() + 60_000;
    db.store
        .insert_refresh(ada.id, "fam", "h1", far)
        .await
        .expect("insert");
    db.store
        .insert_refresh(ada.id, "fam", "h2", far)
        .await
        .expect("insert");
    db.store
        .insert_refresh(ada.id, "old", "h3", 1)
        .await
        .expect("insert expired");
    assert_eq!(
        db.store.consume_refresh("h1").await.expect("consume"),
        Consumed::Fresh {
            user_id: ada.id,
            family_id: "fam".into()
        }
    );
    assert_eq!(
        db.store.consume_refresh("h1").await.expect("consume"),
        Consumed::Reused {
            family_id: "fam".into()
        }
    );
    assert_eq!(
        db.store.consume_refresh("h3").await.expect("consume"),
        Consumed::Expired
    );
    assert_eq!(
        db.store.consume_refresh("nope").await.expect("consume"),
        Consumed::Unknown
    );
    assert_eq!(
        db.store.refresh_family("h2").await.expect("family"),
        Some("fam".into())
    );
    db.store.revoke_family("fam").await.expect("revoke");
    assert_eq!(
        db.store.consume_refresh("h2").await.expect("consume"),
        Consumed::Revoked
    );
}

pub async fn rooms_list_public_and_mine(db: &Backend) {
    let ada = user(db, "ada").await;
    let bob = user(db, "bob").await;
    let lobby = db
        .store
        .create_room(ada.id, "lobby", false, None)
        .await
        .expect("room");
    let secret = db
        .store
        .create_room(ada.id, "secret", true, Some("codehash"))
        .await
        .expect("room");
    let bobs = db
        .store
        .create_room(bob.id, "bob's", true, Some("x"))
        .await
        .expect("room");
    assert!(lobby.room.is_member && lobby.room.member_count == 1);

    let for_ada: Vec<_> = db
        .store
        .list_rooms(ada.id)
        .await
        .expect("list")
        .iter()
        .map(|r| r.room.id)
        .collect();
    assert_eq!(for_ada, vec![lobby.room.id, secret.room.id]);
    let for_bob = db.store.list_rooms(bob.id).await.expect("list");
    let ids: Vec<_> = for_bob
        .iter()
        .map(|r| (r.room.id, r.room.is_member))
        .collect();
    assert_eq!(ids, vec![(lobby.room.id, false), (bobs.room.id, true)]);

    let access = db
        .store
        .room_access(secret.room.id, bob.id)
        .await
        .expect("query")
        .expect("exists");
    assert!(access.view.room.is_private && !access.view.room.is_member);
    assert_eq!(access.access_code_hash.as_deref(), Some("codehash"));
    assert!(
        db.store
            .room_access(9_999, bob.id)
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
            .add_member(room.id, bob.id, "member")
            .await
            .expect("add")
    );
    assert!(
        !db.store
            .add_member(room.id, bob.id, "member")
            .await
            .expect("add again")
    );
    assert!(db.store.is_member(room.id, bob.id).await.expect("query"));
    let roles: Vec<_> = db
        .store
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
    db.store.mark_read(room.id, bob.id, 2).await.expect("mark");
    db.store
        .mark_read(room.id, bob.id, 1)
        .await
        .expect("never lowers");
    db.store
        .mark_read(room.id, ada.id, 99)
        .await
        .expect("clamped");
    let read = |user_id| async move {
        db.store
            .room_access(room.id, user_id)
            .await
            .expect("query")
            .expect("room")
            .view
            .last_read_seq
    };
    assert_eq!((read(bob.id).await, read(ada.id).await), (2, 3));

    assert!(
        db.store
            .remove_member(room.id, bob.id)
            .await
            .expect("remove")
    );
    assert!(
        !db.store
            .remove_member(room.id, bob.id)
            .await
            .expect("remove again")
    );
    assert!(!db.store.is_member(room.id, bob.id).await.expect("query"));
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
    assert_eq!(db.store.last_seq(room.id).await.expect("last"), 3);
    assert_eq!(db.store.last_seq(9_999).await.expect("last"), 0);
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
        seqs(db.store.history(room.id, None, 4).await.expect("page")),
        vec![10, 9, 8, 7]
    );
    assert_eq!(
        seqs(db.store.history(room.id, Some(7), 4).await.expect("page")),
        vec![6, 5, 4, 3]
    );
    assert_eq!(
        seqs(db.store.history(room.id, Some(3), 4).await.expect("page")),
        vec![2, 1]
    );
    assert_eq!(
        seqs(
            db.store
                .messages_after(room.id, 7, 100)
                .await
                .expect("after")
        ),
        vec![8, 9, 10]
    );
    assert_eq!(
        seqs(db.store.messages_after(room.id, 0, 2).await.expect("after")),
        vec![1, 2]
    );
    let message = db
        .store
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
                match store.append(new).await.expect("append") {
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
