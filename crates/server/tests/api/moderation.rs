//! Roles and moderation over real sockets: every action one REST call, every change a
//! room event members see live and a resuming client replays, and the refusals.

use socket_hub_client::{Client, Connection};
use socket_hub_protocol::rest::{Session, UpdateRoom};
use socket_hub_protocol::{ClientFrame, ErrorCode, Message, Role, Room, RoomEvent, ServerFrame};

use crate::helpers::{
    FORBIDDEN, INVALID, NOT_FOUND, TestApp, WAIT, join, next_error, refused, send, spawn_app,
};

/// Alice owns a public room "general" that Bob and Carol joined.
struct Trio {
    alice: Client,
    alice_s: Session,
    bob: Client,
    bob_s: Session,
    carol: Client,
    carol_s: Session,
    room: Room,
}

async fn trio(app: &TestApp) -> Trio {
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let (carol, carol_s) = app.user("carol").await;
    let room = alice
        .create_room("general", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(room.id, None).await.expect("bob joins");
    carol.join_room(room.id, None).await.expect("carol joins");
    Trio {
        alice,
        alice_s,
        bob,
        bob_s,
        carol,
        carol_s,
        room,
    }
}

/// The next room event frame on `ws` (any kind), skipping presence and the like.
async fn next_event(ws: &mut Connection) -> ServerFrame {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::RoomUpdated { .. }
        | ServerFrame::MemberUpdated { .. }
        | ServerFrame::Kicked { .. }
        | ServerFrame::Banned { .. }
        | ServerFrame::Unbanned { .. }
        | ServerFrame::RoomDeleted { .. } => Some(f.clone()),
        _ => None,
    })
    .await
    .expect("a room event")
}

/// The stored message a seq'd room event frame carries.
fn event_message(frame: &ServerFrame) -> &Message {
    match frame {
        ServerFrame::RoomUpdated { message }
        | ServerFrame::MemberUpdated { message }
        | ServerFrame::Kicked { message }
        | ServerFrame::Banned { message }
        | ServerFrame::Unbanned { message }
        | ServerFrame::Chat { message } => message,
        other => panic!("not a stored message: {other:?}"),
    }
}

async fn room_left(ws: &mut Connection, room_id: i64) {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::RoomLeft { room_id: id } if *id == room_id => Some(()),
        _ => None,
    })
    .await
    .expect("room_left");
}

#[tokio::test]
async fn the_owner_makes_an_admin_who_kicks_a_member_live() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let (bob_id, carol_id) = (t.bob_s.user.id, t.carol_s.user.id);
    let mut a = app.connect(&t.alice_s).await;
    let mut c = app.connect(&t.carol_s).await;
    join(&mut a, t.room.id, None).await;
    join(&mut c, t.room.id, None).await;

    let promoted = t
        .alice
        .set_role(t.room.id, bob_id, Role::Admin)
        .await
        .expect("alice promotes bob");
    assert_eq!(
        promoted.event,
        Some(RoomEvent::MemberUpdated {
            user: t.bob_s.user.clone(),
            role: Role::Admin,
            muted_until: None,
        })
    );
    assert_eq!(
        promoted.user, t.alice_s.user,
        "the actor is the event's user"
    );
    for ws in [&mut a, &mut c] {
        let frame = next_event(ws).await;
        assert!(
            matches!(frame, ServerFrame::MemberUpdated { .. }),
            "{frame:?}"
        );
        assert_eq!(event_message(&frame).seq, promoted.seq);
    }
    let members = t.alice.members(t.room.id).await.expect("members");
    let role_of = |id| {
        members
            .members
            .iter()
            .find(|m| m.user.id == id)
            .map(|m| m.role.clone())
    };
    assert_eq!(role_of(bob_id).as_deref(), Some("admin"));
    assert_eq!(role_of(t.alice_s.user.id).as_deref(), Some("owner"));

    let kicked = t
        .bob
        .kick(t.room.id, carol_id, Some("spam"))
        .await
        .expect("bob kicks carol");
    assert_eq!(
        kicked.seq,
        promoted.seq + 1,
        "events take the room's next seq"
    );
    assert_eq!(kicked.content, "bob kicked carol: spam");
    // Carol sees it live, then her connection leaves the room at once.
    let frame = next_event(&mut c).await;
    assert_eq!(
        frame,
        ServerFrame::Kicked {
            message: kicked.clone()
        }
    );
    room_left(&mut c, t.room.id).await;
    let frame = next_event(&mut a).await;
    assert_eq!(event_message(&frame).seq, kicked.seq);
    // No longer a member: she cannot send; a kick is not a ban, so she may come back.
    let err = t
        .carol
        .send_message(t.room.id, "still here?", None)
        .await
        .expect_err("kicked");
    assert_eq!((err.status(), err.code()), FORBIDDEN);
    t.carol.join_room(t.room.id, None).await.expect("rejoins");
    assert_eq!(
        t.alice
            .room(t.room.id)
            .await
            .expect("room")
            .room
            .member_count,
        3
    );
}

#[tokio::test]
async fn moderation_is_refused_to_roles_below_it() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let (alice_id, bob_id, carol_id) = (t.alice_s.user.id, t.bob_s.user.id, t.carol_s.user.id);
    let room = t.room.id;

    // A member moderates nothing.
    assert_eq!(refused(t.carol.kick(room, bob_id, None).await), FORBIDDEN);
    assert_eq!(
        refused(t.carol.ban(room, bob_id, None, None).await),
        FORBIDDEN
    );
    assert_eq!(refused(t.carol.mute(room, bob_id, None).await), FORBIDDEN);
    assert_eq!(
        refused(t.carol.set_role(room, carol_id, Role::Admin).await),
        FORBIDDEN
    );
    assert_eq!(refused(t.carol.delete_room(room).await), FORBIDDEN);
    let rename = UpdateRoom {
        name: Some("mine now".into()),
        ..UpdateRoom::default()
    };
    assert_eq!(refused(t.carol.update_room(room, &rename).await), FORBIDDEN);
    assert_eq!(refused(t.carol.bans(room).await), FORBIDDEN);

    // An admin moderates members, never the owner or other admins, and cannot
    // promote, transfer or delete.
    t.alice
        .set_role(room, bob_id, Role::Admin)
        .await
        .expect("promote");
    assert_eq!(refused(t.bob.kick(room, alice_id, None).await), FORBIDDEN);
    assert_eq!(
        refused(t.bob.ban(room, alice_id, None, None).await),
        FORBIDDEN
    );
    assert_eq!(
        refused(t.bob.set_role(room, carol_id, Role::Admin).await),
        FORBIDDEN
    );
    assert_eq!(
        refused(t.bob.transfer_ownership(room, carol_id).await),
        FORBIDDEN
    );
    assert_eq!(refused(t.bob.delete_room(room).await), FORBIDDEN);
    t.bob
        .update_room(room, &rename)
        .await
        .expect("admins rename");

    // Targets must exist and, for kicks, be members; ownership is not set by role.
    let (dave, dave_s) = app.user("dave").await;
    assert_eq!(
        refused(t.bob.kick(room, dave_s.user.id, None).await),
        NOT_FOUND
    );
    assert_eq!(refused(t.bob.kick(room, 999_999, None).await), NOT_FOUND);
    assert_eq!(
        refused(t.alice.set_role(room, carol_id, Role::Owner).await),
        INVALID
    );

    // Non-members: forbidden in a public room, and a private room does not exist.
    assert_eq!(refused(dave.kick(room, carol_id, None).await), FORBIDDEN);
    let private = t
        .alice
        .create_room("staff", true, Some("staff-only-code"))
        .await
        .expect("private room")
        .room;
    assert_eq!(
        refused(dave.kick(private.id, alice_id, None).await),
        NOT_FOUND
    );
    assert_eq!(refused(dave.delete_room(private.id).await), NOT_FOUND);
    assert_eq!(
        refused(dave.update_room(private.id, &rename).await),
        NOT_FOUND
    );

    // Nothing of it happened.
    let history = t.alice.history(room, None, None).await.expect("history");
    let kinds: Vec<_> = history
        .messages
        .iter()
        .filter_map(|m| m.event.as_ref().map(RoomEvent::kind))
        .collect();
    assert_eq!(kinds, ["room_updated", "member_updated"]);
}

#[tokio::test]
async fn a_banned_user_is_evicted_and_cannot_rejoin_until_unbanned() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let carol_id = t.carol_s.user.id;
    let mut c = app.connect(&t.carol_s).await;
    join(&mut c, t.room.id, None).await;

    let banned = t
        .alice
        .ban(t.room.id, carol_id, Some("flooding"), Some(3600))
        .await
        .expect("ban");
    match &banned.event {
        Some(RoomEvent::Banned {
            user,
            reason,
            until,
        }) => {
            assert_eq!(user.id, carol_id);
            assert_eq!(reason.as_deref(), Some("flooding"));
            assert!(until.is_some());
        }
        other => panic!("expected a ban, got {other:?}"),
    }
    let frame = next_event(&mut c).await;
    assert!(matches!(frame, ServerFrame::Banned { .. }), "{frame:?}");
    room_left(&mut c, t.room.id).await;

    // Not by REST, not by WebSocket.
    let err = t
        .carol
        .join_room(t.room.id, None)
        .await
        .expect_err("banned");
    assert_eq!((err.status(), err.code()), FORBIDDEN);
    c.send(&ClientFrame::JoinRoom {
        room_id: t.room.id,
        since_seq: None,
        access_code: None,
    })
    .await
    .expect("send join");
    assert_eq!(next_error(&mut c).await, ErrorCode::Forbidden);

    let bans = t.alice.bans(t.room.id).await.expect("bans");
    assert_eq!(bans.bans.len(), 1);
    assert_eq!(bans.bans[0].user.id, carol_id);
    assert_eq!(bans.bans[0].reason.as_deref(), Some("flooding"));

    // Bad input is refused before anything changes.
    let err = t
        .alice
        .ban(t.room.id, t.bob_s.user.id, None, Some(0))
        .await
        .expect_err("zero duration");
    assert_eq!((err.status(), err.code()), INVALID);
    let err = t
        .alice
        .ban(t.room.id, t.bob_s.user.id, Some(&"x".repeat(257)), None)
        .await
        .expect_err("long reason");
    assert_eq!((err.status(), err.code()), INVALID);

    t.alice.unban(t.room.id, carol_id).await.expect("unban");
    let err = t
        .alice
        .unban(t.room.id, carol_id)
        .await
        .expect_err("no ban left");
    assert_eq!((err.status(), err.code()), NOT_FOUND);
    t.carol.join_room(t.room.id, None).await.expect("rejoins");
}

#[tokio::test]
async fn a_muted_member_cannot_send_until_unmuted() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let carol_id = t.carol_s.user.id;
    let mut c = app.connect(&t.carol_s).await;
    join(&mut c, t.room.id, None).await;

    let muted = t.alice.mute(t.room.id, carol_id, None).await.expect("mute");
    assert!(matches!(
        muted.event,
        Some(RoomEvent::MemberUpdated {
            muted_until: Some(_),
            ..
        })
    ));
    let err = t
        .carol
        .send_message(t.room.id, "hello?", None)
        .await
        .expect_err("muted");
    assert_eq!((err.status(), err.code()), FORBIDDEN);
    c.send(&ClientFrame::MessageSend {
        room_id: t.room.id,
        client_msg_id: "m1".into(),
        content: "hello?".into(),
        reply_to: None,
        attachments: Vec::new(),
    })
    .await
    .expect("send");
    assert_eq!(next_error(&mut c).await, ErrorCode::Forbidden);
    let members = t.alice.members(t.room.id).await.expect("members");
    assert!(
        members
            .members
            .iter()
            .any(|m| m.user.id == carol_id && m.muted_until.is_some())
    );

    t.alice.unmute(t.room.id, carol_id).await.expect("unmute");
    send(&mut c, t.room.id, "m2", "back").await;
}

#[tokio::test]
async fn room_settings_change_live_and_show_in_history() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let mut b = app.connect(&t.bob_s).await;
    join(&mut b, t.room.id, None).await;

    let update = UpdateRoom {
        name: Some("  Town square ".into()),
        topic: Some("all things local".into()),
        ..UpdateRoom::default()
    };
    let view = t
        .alice
        .update_room(t.room.id, &update)
        .await
        .expect("update");
    assert_eq!(view.room.name, "Town square");
    assert_eq!(view.room.topic.as_deref(), Some("all things local"));
    assert_eq!(view.role, Some(Role::Owner));
    let frame = next_event(&mut b).await;
    let ServerFrame::RoomUpdated { message } = &frame else {
        panic!("expected room_updated, got {frame:?}");
    };
    assert_eq!(
        message.event,
        Some(RoomEvent::RoomUpdated {
            name: "Town square".into(),
            topic: Some("all things local".into()),
            is_private: false,
            has_access_code: false,
        })
    );

    // Private, invitation-only (no code), then with a code, then the code cleared.
    let private = UpdateRoom {
        is_private: Some(true),
        ..UpdateRoom::default()
    };
    let view = t
        .alice
        .update_room(t.room.id, &private)
        .await
        .expect("private");
    assert!(view.room.is_private && !view.room.has_access_code);
    let code = UpdateRoom {
        access_code: Some("let-me-in-please".into()),
        ..UpdateRoom::default()
    };
    let view = t.alice.update_room(t.room.id, &code).await.expect("code");
    assert!(view.room.has_access_code);
    let (dave, _) = app.user("dave").await;
    dave.join_room(t.room.id, Some("let-me-in-please"))
        .await
        .expect("joins with the new code");
    let clear = UpdateRoom {
        access_code: Some(String::new()),
        ..UpdateRoom::default()
    };
    let view = t.alice.update_room(t.room.id, &clear).await.expect("clear");
    assert!(!view.room.has_access_code);
    let (erin, _) = app.user("erin").await;
    let err = erin
        .join_room(t.room.id, Some("let-me-in-please"))
        .await
        .expect_err("no code any more");
    assert_eq!(err.status(), Some(403));

    // Refusals: nothing to change, a blank name, a long topic, a code on a public room.
    for bad in [
        UpdateRoom::default(),
        UpdateRoom {
            name: Some("   ".into()),
            ..UpdateRoom::default()
        },
        UpdateRoom {
            topic: Some("t".repeat(257)),
            ..UpdateRoom::default()
        },
        UpdateRoom {
            is_private: Some(false),
            access_code: Some("a-public-code".into()),
            ..UpdateRoom::default()
        },
    ] {
        let err = t.alice.update_room(t.room.id, &bad).await.expect_err("bad");
        assert_eq!((err.status(), err.code()), INVALID, "{bad:?}");
    }

    let history = t.bob.history(t.room.id, None, None).await.expect("history");
    assert_eq!(history.messages.len(), 4, "one event per accepted change");
    assert!(history.messages.iter().all(|m| m.event.is_some()));
    assert_eq!(
        history.messages[3].content,
        "alice changed the room settings"
    );
}

#[tokio::test]
async fn the_owner_leaves_only_after_transferring_ownership() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let err = t.alice.leave_room(t.room.id).await.expect_err("owner");
    assert_eq!((err.status(), err.code()), FORBIDDEN);

    let mut b = app.connect(&t.bob_s).await;
    join(&mut b, t.room.id, None).await;
    let transferred = t
        .alice
        .transfer_ownership(t.room.id, t.bob_s.user.id)
        .await
        .expect("transfer");
    let first = next_event(&mut b).await;
    let second = next_event(&mut b).await;
    assert_eq!(event_message(&first).seq, transferred.seq);
    assert_eq!(event_message(&second).seq, transferred.seq + 1);
    let room = t.bob.room(t.room.id).await.expect("room");
    assert_eq!(room.room.owner_id, t.bob_s.user.id);
    assert_eq!(room.role, Some(Role::Owner));
    assert_eq!(
        t.alice.room(t.room.id).await.expect("room").role,
        Some(Role::Admin)
    );

    t.alice.leave_room(t.room.id).await.expect("alice leaves");
    let err = t.bob.leave_room(t.room.id).await.expect_err("new owner");
    assert_eq!((err.status(), err.code()), FORBIDDEN);
    // The new owner can delete; the old one (gone) cannot.
    assert_eq!(refused(t.alice.delete_room(t.room.id).await), FORBIDDEN);
}

#[tokio::test]
async fn a_resuming_client_replays_room_events_in_seq_order() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let mut c = app.connect(&t.carol_s).await;
    join(&mut c, t.room.id, None).await;
    let first = send(&mut c, t.room.id, "c1", "hello").await;
    c.close().await.expect("carol goes offline");

    // While Carol is away: a message, a promotion, a rename, another message.
    t.alice
        .send_message(t.room.id, "welcome", None)
        .await
        .expect("send");
    t.alice
        .set_role(t.room.id, t.bob_s.user.id, Role::Admin)
        .await
        .expect("promote");
    let rename = UpdateRoom {
        name: Some("renamed".into()),
        ..UpdateRoom::default()
    };
    t.bob.update_room(t.room.id, &rename).await.expect("rename");
    let last = t
        .bob
        .send_message(t.room.id, "new name!", None)
        .await
        .expect("send");

    let mut c = app.connect(&t.carol_s).await;
    join(&mut c, t.room.id, Some(first.seq)).await;
    let mut seen = Vec::new();
    while seen.last().is_none_or(|(seq, _)| *seq < last.seq) {
        let frame = c.frame_within(WAIT).await.expect("replayed frame");
        match &frame {
            ServerFrame::Chat { message } => seen.push((message.seq, "chat")),
            ServerFrame::MemberUpdated { message } => seen.push((message.seq, "member_updated")),
            ServerFrame::RoomUpdated { message } => seen.push((message.seq, "room_updated")),
            _ => {}
        }
    }
    let s = first.seq;
    assert_eq!(
        seen,
        [
            (s + 1, "chat"),
            (s + 2, "member_updated"),
            (s + 3, "room_updated"),
            (s + 4, "chat"),
        ]
    );
}

#[tokio::test]
async fn deleting_a_room_tells_its_members_and_forgets_it() {
    let app = spawn_app().await;
    let t = trio(&app).await;
    let mut c = app.connect(&t.carol_s).await;
    join(&mut c, t.room.id, None).await;
    t.alice.delete_room(t.room.id).await.expect("delete");
    let frame = next_event(&mut c).await;
    assert_eq!(
        frame,
        ServerFrame::RoomDeleted {
            room_id: t.room.id,
            by: t.alice_s.user.clone(),
        }
    );
    room_left(&mut c, t.room.id).await;
    assert_eq!(refused(t.carol.room(t.room.id).await), NOT_FOUND);
    assert_eq!(refused(t.alice.delete_room(t.room.id).await), NOT_FOUND);
    // Resuming finds nothing.
    c.send(&ClientFrame::JoinRoom {
        room_id: t.room.id,
        since_seq: Some(0),
        access_code: None,
    })
    .await
    .expect("send join");
    assert_eq!(next_error(&mut c).await, ErrorCode::NotFound);
}
