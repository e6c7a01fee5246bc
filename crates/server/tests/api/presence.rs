//! Global presence over real sockets (issue 10): online, away and offline, seen live
//! and over REST by people who share a room or DM, hidden from everyone else; several
//! connections count as one person. Plus what came with it: mentions read by moving
//! the read marker, and invitation-only private rooms. Each flow runs on SQLite and on
//! PostgreSQL.

use socket_hub_client::{Client, Connection};
use socket_hub_protocol::rest::Session;
use socket_hub_protocol::{
    ClientFrame, ErrorCode, NotificationKind, PresenceStatus, ServerFrame, UserId,
};

use crate::helpers::{
    TestApp, WAIT, assert_quiet, join, next_error, on_both_backends, refused, spawn_app,
};

/// A connection that watches presence (it said it is online, as the web client does).
async fn watching(app: &TestApp, session: &Session) -> Connection {
    let mut ws = app.connect(session).await;
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

/// What `GET /users/presence?ids=` tells `client` about `user_id`.
async fn presence_of(client: &Client, user_id: UserId) -> Option<PresenceStatus> {
    let seen = client.presence(&[user_id]).await.expect("presence");
    seen.iter().find(|p| p.user_id == user_id).map(|p| p.status)
}

#[tokio::test]
async fn a_roommate_sees_online_away_and_offline_and_a_stranger_sees_nothing() {
    on_both_backends(|app| async move {
        let (alice, alice_s) = app.user("alice").await;
        let (bob, bob_s) = app.user("bob").await;
        let (carol, carol_s) = app.user("carol").await;
        let room = alice
            .create_room("presence", false, None)
            .await
            .expect("room")
            .room;
        bob.join_room(room.id, None).await.expect("bob joins");
        let alice_id = alice_s.user.id;
        let mut b = watching(&app, &bob_s).await;
        let mut c = watching(&app, &carol_s).await;
        assert_eq!(
            presence_of(&bob, alice_id).await,
            Some(PresenceStatus::Offline)
        );

        // Alice's first connection: online, told live to Bob.
        let mut phone = app.connect(&alice_s).await;
        assert_eq!(
            next_presence(&mut b, alice_id).await,
            (PresenceStatus::Online, false)
        );
        assert_eq!(
            presence_of(&bob, alice_id).await,
            Some(PresenceStatus::Online)
        );
        let profile = bob.profile(alice_id).await.expect("profile");
        assert_eq!(profile.presence, Some(PresenceStatus::Online));
        let members = bob.members(room.id).await.expect("members").members;
        let listed = members
            .iter()
            .find(|m| m.user.id == alice_id)
            .expect("alice");
        assert_eq!(listed.presence, Some(PresenceStatus::Online));

        // The only connection says away: Alice is away.
        phone
            .set_presence(PresenceStatus::Away)
            .await
            .expect("away");
        assert_eq!(
            next_presence(&mut b, alice_id).await,
            (PresenceStatus::Away, false)
        );
        // A second connection is online: so is Alice.
        let mut laptop = app.connect(&alice_s).await;
        assert_eq!(
            next_presence(&mut b, alice_id).await,
            (PresenceStatus::Online, false)
        );
        // One of two closing changes nothing: the next change Bob hears is the other
        // going away, not an offline in between.
        phone.close().await.expect("close");
        laptop
            .set_presence(PresenceStatus::Away)
            .await
            .expect("away");
        assert_eq!(
            next_presence(&mut b, alice_id).await,
            (PresenceStatus::Away, false)
        );
        // The last one closing: offline, with the time she was last seen.
        laptop.close().await.expect("close");
        assert_eq!(
            next_presence(&mut b, alice_id).await,
            (PresenceStatus::Offline, true)
        );
        assert_eq!(
            presence_of(&bob, alice_id).await,
            Some(PresenceStatus::Offline)
        );
        assert!(
            bob.profile(alice_id)
                .await
                .expect("profile")
                .last_seen_at
                .is_some()
        );

        // Carol shares nothing with Alice: no frame, and REST tells her nothing.
        let mut frames = Vec::new();
        c.send(&ClientFrame::Ping).await.expect("ping");
        loop {
            match c.frame_within(WAIT).await.expect("frame") {
                ServerFrame::Pong => break,
                other => frames.push(other),
            }
        }
        assert!(
            !frames
                .iter()
                .any(|f| matches!(f, ServerFrame::Presence { .. })),
            "{frames:?}"
        );
        assert_eq!(presence_of(&carol, alice_id).await, None);
        let seen = carol.profile(alice_id).await.expect("profile");
        assert_eq!((seen.presence, seen.last_seen_at), (None, None));
        let found = carol
            .search_users("alice", None, None)
            .await
            .expect("search")
            .users;
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].presence, found[0].last_seen_at), (None, None));
        let members = carol
            .members(room.id)
            .await
            .expect("public members")
            .members;
        assert!(members.iter().all(|m| m.presence.is_none()));
        // Once they share a DM, Carol may see her.
        carol.open_direct("alice").await.expect("dm");
        assert_eq!(
            presence_of(&carol, alice_id).await,
            Some(PresenceStatus::Offline)
        );
        app
    })
    .await;
}

#[tokio::test]
async fn presence_refuses_offline_and_bad_ids_and_sdk_connections_get_no_presence_frames() {
    let app = spawn_app().await;
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let room = alice
        .create_room("quiet", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(room.id, None).await.expect("join");
    // Bob's SDK connection never said anything about presence: it gets no presence
    // frames; his second connection says it is online, so it watches.
    let mut b = app.connect(&bob_s).await;
    join(&mut b, room.id, None).await;
    let mut w = watching(&app, &bob_s).await;
    let mut a = app.connect(&alice_s).await;
    assert_eq!(
        next_presence(&mut w, alice_s.user.id).await,
        (PresenceStatus::Online, false)
    );
    assert_eq!(
        presence_of(&bob, alice_s.user.id).await,
        Some(PresenceStatus::Online)
    );
    a.send(&ClientFrame::Presence {
        status: PresenceStatus::Offline,
    })
    .await
    .expect("send");
    assert_eq!(next_error(&mut a).await, ErrorCode::InvalidInput);
    a.send_text(r#"{"type":"presence","status":"dancing"}"#)
        .await
        .expect("send");
    let code = next_error(&mut a).await;
    assert!(
        matches!(code, ErrorCode::InvalidInput | ErrorCode::UnknownType),
        "{code:?}"
    );
    assert_quiet(&mut b).await;

    for ids in ["", "x", "1,,y"] {
        let path = format!("{}/api/v1/users/presence?ids={ids}", app.url);
        let response = reqwest::Client::new()
            .get(path)
            .bearer_auth(bob.access_token().expect("token"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 422, "ids={ids}");
    }
    let too_many: Vec<UserId> = (1..=201).collect();
    assert_eq!(
        refused(bob.presence(&too_many).await),
        (Some(422), Some(ErrorCode::InvalidInput))
    );
}

#[tokio::test]
async fn reading_past_a_mention_marks_it_read_over_rest_and_websocket() {
    on_both_backends(|app| async move {
        let (alice, _) = app.user("alice").await;
        let (bob, bob_s) = app.user("bob").await;
        let room = alice
            .create_room("mentions", false, None)
            .await
            .expect("room")
            .room;
        bob.join_room(room.id, None).await.expect("join");
        let mut b = app.connect(&bob_s).await;
        let first = alice
            .send_message(room.id, "hi @bob", None)
            .await
            .expect("mention");
        let second = alice
            .send_message(room.id, "again @bob", None)
            .await
            .expect("mention");
        // Mentions are notified off the send's path: both arrive live once stored. One
        // stored while the connection reads its unread backlog (PostgreSQL reads it after
        // `ready`) comes both ways: count distinct ids, as a client does.
        let mut notified = std::collections::BTreeSet::new();
        while notified.len() < 2 {
            let id = b
                .wait_for(WAIT, |f| match f {
                    ServerFrame::Notification { notification } => Some(notification.id),
                    _ => None,
                })
                .await
                .expect("mention notified");
            notified.insert(id);
        }
        assert_eq!(bob.unread_notifications().await.expect("unread").unread, 2);
        let listed = bob
            .notifications(None, None)
            .await
            .expect("list")
            .notifications;
        assert!(listed.iter().all(|n| n.kind == NotificationKind::Mentioned));
        // Each send notifies from a task of its own, so the two may be stored either way.
        let mut seqs: Vec<_> = listed.iter().map(|n| n.seq).collect();
        seqs.sort();
        assert_eq!(seqs, vec![Some(first.seq), Some(second.seq)]);

        // Reading up to the first mention marks only that one.
        bob.mark_read(room.id, first.seq).await.expect("read");
        assert_eq!(bob.unread_notifications().await.expect("unread").unread, 1);
        // The WebSocket read marker does the same for the second.
        b.send(&ClientFrame::Read {
            room_id: room.id,
            seq: second.seq,
        })
        .await
        .expect("read");
        // The marker's own `read_marker` frame says the read was handled.
        let second_seq = second.seq;
        b.wait_for(WAIT, |f| match f {
            ServerFrame::ReadMarker { seq, .. } if *seq == second_seq => Some(()),
            _ => None,
        })
        .await
        .expect("the marker moved");
        assert_eq!(bob.unread_notifications().await.expect("unread").unread, 0);
        app
    })
    .await;
}

#[tokio::test]
async fn a_private_room_without_a_code_is_invitation_only() {
    on_both_backends(|app| async move {
        let (alice, _) = app.user("alice").await;
        let (bob, _) = app.user("bob").await;
        let view = alice
            .create_room("by invitation", true, None)
            .await
            .expect("a private room needs no code");
        assert!(view.room.is_private && !view.room.has_access_code);
        let room = view.room;
        // Nobody gets in by id: it is invisible without a code, and no code is right.
        assert_eq!(
            refused(bob.join_room(room.id, None).await),
            (Some(404), Some(ErrorCode::NotFound))
        );
        assert_eq!(
            refused(bob.join_room(room.id, Some("guessing-code")).await),
            (Some(403), Some(ErrorCode::WrongAccessCode))
        );
        // An invitation lets Bob in.
        alice.invite(room.id, "bob").await.expect("invite");
        let invitation = bob.invitations().await.expect("list").invitations[0].id;
        let joined = bob.accept_invitation(invitation).await.expect("accept");
        assert!(joined.room.is_member);
        app
    })
    .await;
}
