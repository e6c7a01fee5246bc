//! Direct messages over real sockets: one private room of exactly two, listed apart,
//! with the usual history, seq and read markers; and blocking.

use socket_hub_protocol::{ClientFrame, ErrorCode};

use crate::helpers::{
    FORBIDDEN, INVALID, NOT_FOUND, join, next_chat, next_error, refused, send, spawn_app,
};

#[tokio::test]
async fn a_dm_is_one_private_room_of_two_listed_apart() {
    let app = spawn_app().await;
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let (carol, _) = app.user("carol").await;
    alice
        .create_room("general", false, None)
        .await
        .expect("a room");

    let dm = alice.open_direct("Bob").await.expect("open");
    assert_eq!(dm.peer, bob_s.user);
    assert!(dm.room.room.is_direct && dm.room.room.is_private);
    assert_eq!(dm.room.room.member_count, 2);
    let again = alice.open_direct("bob").await.expect("again");
    let theirs = bob.open_direct("alice").await.expect("from the other side");
    assert_eq!(again.room.room.id, dm.room.room.id);
    assert_eq!(theirs.room.room.id, dm.room.room.id);
    assert_eq!(theirs.peer, alice_s.user);

    // Listed apart: in GET /dms, never with rooms.
    let listed = bob.directs().await.expect("dms");
    assert_eq!(listed.dms.len(), 1);
    assert_eq!(listed.dms[0].peer, alice_s.user);
    for rooms in [
        alice.list_rooms().await.expect("rooms"),
        alice.joined_rooms().await.expect("joined"),
    ] {
        assert!(rooms.iter().all(|r| !r.room.is_direct), "{rooms:?}");
    }

    // Exactly two: a third person sees nothing and cannot get in.
    let room_id = dm.room.room.id;
    assert_eq!(refused(carol.room(room_id).await), NOT_FOUND);
    assert_eq!(refused(carol.join_room(room_id, None).await), NOT_FOUND);
    assert_eq!(refused(alice.invite(room_id, "carol").await), FORBIDDEN);
    assert_eq!(
        refused(alice.create_invite_link(room_id, None, None).await),
        FORBIDDEN
    );

    // Chat as in any room: live, acked, seq'd, read markers.
    let mut a = app.connect(&alice_s).await;
    let mut b = app.connect(&bob_s).await;
    join(&mut a, room_id, None).await;
    join(&mut b, room_id, None).await;
    let sent = send(&mut a, room_id, "d1", "hi bob").await;
    assert_eq!(sent.seq, 1);
    assert_eq!(next_chat(&mut b).await, sent);
    bob.mark_read(room_id, sent.seq).await.expect("read");
    let listed = bob.directs().await.expect("dms");
    assert_eq!(listed.dms[0].room.last_read_seq, 1);
    assert_eq!(listed.dms[0].room.room.last_seq, 1);

    // Refusals: yourself, nobody.
    assert_eq!(refused(alice.open_direct("alice").await), INVALID);
    assert_eq!(refused(alice.open_direct("nobody-at-all").await), NOT_FOUND);
}

#[tokio::test]
async fn a_blocked_user_cannot_open_or_write_a_dm() {
    let app = spawn_app().await;
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let dm = alice.open_direct("bob").await.expect("open");
    let room_id = dm.room.room.id;
    alice
        .send_message(room_id, "hello", None)
        .await
        .expect("before the block");

    bob.block(alice_s.user.id).await.expect("bob blocks alice");
    bob.block(alice_s.user.id).await.expect("again: no-op");
    assert_eq!(refused(alice.open_direct("bob").await), FORBIDDEN);
    assert_eq!(
        refused(alice.send_message(room_id, "hey?", None).await),
        FORBIDDEN
    );
    let mut a = app.connect(&alice_s).await;
    join(&mut a, room_id, None).await;
    a.send(&ClientFrame::MessageSend {
        room_id,
        client_msg_id: "x1".into(),
        content: "hey?".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await
    .expect("send");
    assert_eq!(next_error(&mut a).await, ErrorCode::Forbidden);
    // Both ways: the blocker cannot write either, but history stays readable.
    assert_eq!(
        refused(bob.send_message(room_id, "go away", None).await),
        FORBIDDEN
    );
    assert_eq!(
        bob.history(room_id, None, None)
            .await
            .expect("history")
            .messages
            .len(),
        1
    );

    // Refusals of blocking itself.
    assert_eq!(refused(bob.block(bob_s.user.id).await), INVALID);
    assert_eq!(refused(bob.block(999_999).await), NOT_FOUND);
    assert_eq!(refused(alice.unblock(bob_s.user.id).await), NOT_FOUND);

    bob.unblock(alice_s.user.id).await.expect("unblock");
    alice
        .send_message(room_id, "friends again", None)
        .await
        .expect("after the block");
    alice.open_direct("bob").await.expect("opens again");
}
