//! Live chat over WebSocket: delivery, order, resume, idempotency, presence, typing.

use socket_hub_protocol::{ClientFrame, ErrorCode, ServerFrame};

use crate::helpers::{
    Duo, WAIT, assert_quiet, duo, join, members, next_chat, next_error_with_ref, send, spawn_app,
    spawn_with,
};

#[tokio::test]
async fn two_users_chat_both_ways() {
    let app = spawn_app().await;
    let Duo {
        alice: _,
        alice_s,
        bob,
        room,
        mut a,
        mut b,
    } = duo(&app).await;

    let sent = send(&mut a, room.id, "a1", "hi bob").await;
    assert_eq!((sent.seq, sent.user.id), (1, alice_s.user.id));
    let got = next_chat(&mut b).await;
    assert_eq!(got, sent);
    // The sender's own connection gets the chat too, so its seq stream has no holes.
    assert_eq!(next_chat(&mut a).await.seq, 1);

    let reply = send(&mut b, room.id, "b1", "hi alice").await;
    assert_eq!(reply.seq, 2);
    assert_eq!(next_chat(&mut a).await, reply);
    assert_eq!(
        bob.history(room.id, None, None)
            .await
            .expect("history")
            .messages
            .len(),
        2
    );
}

/// Frames over 508 B are written past tungstenite's write buffer (gateway::split, so one
/// large frame does not keep a large write buffer for the connection's life), after
/// what was buffered before them: the client gets the text whole and in order.
#[tokio::test]
async fn a_long_message_arrives_whole_and_in_order_though_written_unbuffered() {
    let app = spawn_app().await;
    let Duo {
        room, mut a, mut b, ..
    } = duo(&app).await;
    let content = "ab€𝄞".repeat(900);
    assert!(content.len() > 3 * 1024);
    let sent = send(&mut a, room.id, "long-1", &content).await;
    assert_eq!(sent.content, content);
    let got = next_chat(&mut b).await;
    assert_eq!(got, sent);
    // The connection goes on normally after an unbuffered frame.
    let short = send(&mut b, room.id, "short-1", "ok").await;
    assert_eq!(next_chat(&mut a).await.seq, sent.seq);
    assert_eq!(next_chat(&mut a).await, short);
}

#[tokio::test]
async fn rest_send_is_delivered_live_like_a_websocket_send() {
    let app = spawn_app().await;
    let (alice, _, _, bob_s, room) = members(&app).await;
    let mut b = app.connect(&bob_s).await;
    join(&mut b, room.id, None).await;
    let sent = alice
        .send_message(room.id, "over http", Some("h1"))
        .await
        .expect("send");
    assert_eq!(next_chat(&mut b).await, sent);
}

#[tokio::test]
async fn resending_a_client_msg_id_returns_the_original_and_broadcasts_once() {
    let app = spawn_app().await;
    let Duo {
        alice,
        alice_s: _,
        bob: _,
        room,
        mut a,
        mut b,
    } = duo(&app).await;

    let first = send(&mut a, room.id, "same-id", "once").await;
    let again = send(&mut a, room.id, "same-id", "once").await;
    assert_eq!(first, again);
    let over_rest = alice
        .send_message(room.id, "once", Some("same-id"))
        .await
        .expect("rest");
    assert_eq!(over_rest, first);

    assert_eq!(next_chat(&mut b).await, first);
    // Only one chat reached bob: the next thing he sees is the next message.
    let next = send(&mut a, room.id, "other-id", "twice?").await;
    assert_eq!(next.seq, 2);
    assert_eq!(next_chat(&mut b).await.seq, 2);
    let history = alice.history(room.id, None, None).await.expect("history");
    assert_eq!(history.messages.len(), 2);
}

#[tokio::test]
async fn join_with_since_seq_replays_then_continues_live_without_gaps() {
    let app = spawn_app().await;
    let (_, alice_s, _, bob_s, room) = members(&app).await;
    let mut a = app.connect(&alice_s).await;
    join(&mut a, room.id, None).await;
    for i in 1..=3 {
        send(&mut a, room.id, &format!("m{i}"), &format!("message {i}")).await;
    }

    // Bob sees 1..3 live, then drops off.
    let mut b = app.connect(&bob_s).await;
    join(&mut b, room.id, Some(0)).await;
    let seen: Vec<i64> = [
        next_chat(&mut b).await,
        next_chat(&mut b).await,
        next_chat(&mut b).await,
    ]
    .iter()
    .map(|m| m.seq)
    .collect();
    assert_eq!(seen, vec![1, 2, 3]);
    b.close().await.expect("close");

    for i in 4..=6 {
        send(&mut a, room.id, &format!("m{i}"), &format!("message {i}")).await;
    }
    // Reconnect with the last seen seq: 4..6 replayed once, then live 7.
    let mut b = app.connect(&bob_s).await;
    match join(&mut b, room.id, Some(3)).await {
        ServerFrame::RoomJoined { last_seq, .. } => assert_eq!(last_seq, 6),
        other => panic!("{other:?}"),
    }
    send(&mut a, room.id, "m7", "message 7").await;
    let mut resumed = Vec::new();
    for _ in 0..4 {
        resumed.push(next_chat(&mut b).await.seq);
    }
    assert_eq!(resumed, vec![4, 5, 6, 7]);
    assert_quiet(&mut b).await;
}

#[tokio::test]
async fn concurrent_senders_reach_every_receiver_exactly_once_in_order() {
    let app = spawn_app().await;
    let (owner, owner_s) = app.user("owner").await;
    let room = owner
        .create_room("busy", false, None)
        .await
        .expect("room")
        .room;
    let mut receivers = Vec::new();
    for name in ["reader1", "reader2"] {
        let (client, session) = app.user(name).await;
        client.join_room(room.id, None).await.expect("join");
        let mut ws = app.connect(&session).await;
        join(&mut ws, room.id, None).await;
        receivers.push(ws);
    }
    const SENDERS: usize = 4;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let (client, session) = app.user(&format!("sender{s}")).await;
        client.join_room(room.id, None).await.expect("join");
        let mut ws = app.connect(&session).await;
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                send(&mut ws, room.id, &format!("{s}-{i}"), "hello").await;
            }
        }));
    }
    drop(owner_s);
    for task in tasks {
        task.await.expect("sender");
    }
    for ws in &mut receivers {
        let mut seqs = Vec::new();
        for _ in 0..SENDERS * EACH {
            seqs.push(next_chat(ws).await.seq);
        }
        let expected: Vec<i64> = (1..=(SENDERS * EACH) as i64).collect();
        assert_eq!(seqs, expected);
        assert_quiet(ws).await;
    }
}

/// `room_joined` is built once and sent again while nobody came or went and nothing was
/// said: each join must still see who is online now and the room's last seq now.
#[tokio::test]
async fn each_room_joined_lists_who_is_online_and_the_last_seq_at_that_moment() {
    let app = spawn_app().await;
    let (_, alice_s, _, bob_s, room) = members(&app).await;
    let listed = |frame: ServerFrame| match frame {
        ServerFrame::RoomJoined {
            members, last_seq, ..
        } => (
            members.into_iter().map(|u| u.username).collect::<Vec<_>>(),
            last_seq,
        ),
        other => panic!("{other:?}"),
    };
    let mut tab1 = app.connect(&alice_s).await;
    assert_eq!(
        listed(join(&mut tab1, room.id, None).await),
        (vec!["alice".into()], 0)
    );
    let mut tab2 = app.connect(&alice_s).await;
    assert_eq!(
        listed(join(&mut tab2, room.id, None).await),
        (vec!["alice".into()], 0)
    );
    let mut b = app.connect(&bob_s).await;
    let both: Vec<String> = vec!["alice".into(), "bob".into()];
    assert_eq!(listed(join(&mut b, room.id, None).await), (both.clone(), 0));
    send(&mut b, room.id, "b1", "hello").await;
    let mut tab3 = app.connect(&alice_s).await;
    assert_eq!(listed(join(&mut tab3, room.id, None).await), (both, 1));
    b.close().await.expect("close");
    // Bob's leave reaches the room task before alice's next join is settled, or after:
    // wait until the others have seen it.
    tab1.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::Leave { .. }).then_some(())
    })
    .await
    .expect("bob left");
    let mut tab4 = app.connect(&alice_s).await;
    assert_eq!(
        listed(join(&mut tab4, room.id, None).await),
        (vec!["alice".into()], 1)
    );
}

#[tokio::test]
async fn presence_counts_tabs_as_one_user() {
    let app = spawn_app().await;
    let (_, alice_s, _, bob_s, room) = members(&app).await;
    let mut b = app.connect(&bob_s).await;
    join(&mut b, room.id, None).await;

    let mut tab1 = app.connect(&alice_s).await;
    match join(&mut tab1, room.id, None).await {
        ServerFrame::RoomJoined { members, .. } => {
            let names: Vec<_> = members.iter().map(|u| u.username.as_str()).collect();
            assert_eq!(names, vec!["alice", "bob"]);
        }
        other => panic!("{other:?}"),
    }
    let came = b.frame_within(WAIT).await.expect("join frame");
    assert_eq!(
        came,
        ServerFrame::Join {
            room_id: room.id,
            user: alice_s.user.clone()
        }
    );

    // A second tab is not a second arrival; the next thing bob sees is a message.
    let mut tab2 = app.connect(&alice_s).await;
    join(&mut tab2, room.id, None).await;
    send(&mut tab2, room.id, "t2", "from tab 2").await;
    assert!(matches!(
        b.frame_within(WAIT).await.expect("frame"),
        ServerFrame::Chat { .. }
    ));

    // Closing one tab is not leaving; closing the last one is.
    tab1.close().await.expect("close");
    send(&mut tab2, room.id, "t2b", "still here").await;
    assert!(matches!(
        b.frame_within(WAIT).await.expect("frame"),
        ServerFrame::Chat { .. }
    ));
    tab2.send(&ClientFrame::LeaveRoom { room_id: room.id })
        .await
        .expect("leave");
    let left = b.frame_within(WAIT).await.expect("leave frame");
    assert_eq!(
        left,
        ServerFrame::Leave {
            room_id: room.id,
            user: alice_s.user.clone()
        }
    );
}

#[tokio::test]
async fn typing_reaches_others_but_not_the_typist() {
    let app = spawn_app().await;
    let Duo {
        alice: _,
        alice_s,
        bob: _,
        room,
        mut a,
        mut b,
    } = duo(&app).await;
    a.send(&ClientFrame::Typing { room_id: room.id })
        .await
        .expect("typing");
    let typing = b
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::Typing { .. }).then(|| f.clone())
        })
        .await
        .expect("typing frame");
    assert_eq!(
        typing,
        ServerFrame::Typing {
            room_id: room.id,
            user: alice_s.user.clone()
        }
    );
    send(&mut a, room.id, "after-typing", "done typing").await;
    // Alice's own stream has her chat but never her typing.
    let own = a
        .wait_for(WAIT, |f| match f {
            ServerFrame::Typing { .. } => Some(false),
            ServerFrame::Chat { .. } => Some(true),
            _ => None,
        })
        .await
        .expect("frame");
    assert!(own, "the typist must not receive their own typing notice");
}

#[tokio::test]
async fn leaving_membership_stops_live_delivery() {
    let app = spawn_app().await;
    let Duo {
        alice: _,
        alice_s: _,
        bob,
        room,
        mut a,
        mut b,
    } = duo(&app).await;
    bob.leave_room(room.id).await.expect("leave");
    let left = b
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::RoomLeft { .. }).then_some(())
        })
        .await;
    assert!(left.is_ok());
    send(&mut a, room.id, "x", "bob is gone").await;
    assert_quiet(&mut b).await;
    let err = bob
        .send_message(room.id, "let me in", None)
        .await
        .expect_err("not a member");
    assert_eq!(err.status(), Some(403));
}

#[tokio::test]
async fn history_survives_a_restart() {
    let app = spawn_app().await;
    let (alice, session) = app.user("alice").await;
    let room = alice
        .create_room("durable", false, None)
        .await
        .expect("room")
        .room;
    for i in 0..3 {
        alice
            .send_message(room.id, &format!("keep {i}"), None)
            .await
            .expect("send");
    }
    let app = app.restart().await;
    // The generated JWT secret persisted: the old token still works.
    let mut client = app.client();
    client.set_access_token(session.access_token.clone());
    let page = client.history(room.id, None, None).await.expect("history");
    let contents: Vec<_> = page.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(contents, vec!["keep 2", "keep 1", "keep 0"]);
    let mut ws = app.connect(&session).await;
    join(&mut ws, room.id, None).await;
    assert_eq!(
        send(&mut ws, room.id, "after", "after restart").await.seq,
        4
    );
}

#[tokio::test]
async fn a_connection_evicted_by_a_rest_leave_cannot_send_typing_into_the_room() {
    let app = spawn_app().await;
    let Duo {
        alice: _,
        alice_s: _,
        bob,
        room,
        mut a,
        mut b,
    } = duo(&app).await;
    bob.leave_room(room.id).await.expect("leave");
    b.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::RoomLeft { .. }).then_some(())
    })
    .await
    .expect("room_left");
    b.send(&ClientFrame::Typing { room_id: room.id })
        .await
        .expect("typing");
    let (code, reference) = next_error_with_ref(&mut b).await;
    assert_eq!(code, ErrorCode::NotJoined);
    assert_eq!(reference, Some(room.id.to_string()));
    // Alice sees bob leave, and no typing from him: the pong comes next.
    a.send(&ClientFrame::Ping).await.expect("ping");
    let next = a
        .wait_for(WAIT, |f| {
            (!matches!(f, ServerFrame::Leave { .. })).then(|| f.clone())
        })
        .await;
    assert_eq!(next.expect("frame"), ServerFrame::Pong);
}

#[tokio::test]
async fn a_long_write_spacing_still_delivers_every_frame_in_order() {
    // Spacing at its largest: every frame after the first of a busy connection waits
    // for the next write, and nothing may be lost or reordered on the way.
    let app = spawn_with(|c| c.write_spacing_us = 100_000).await;
    let mut d = duo(&app).await;
    const COUNT: usize = 30;
    for i in 0..COUNT {
        d.a.send(&ClientFrame::MessageSend {
            room_id: d.room.id,
            client_msg_id: format!("spaced-{i}"),
            content: format!("spaced {i}"),
            reply_to: None,
            attachments: Vec::new(),
        })
        .await
        .expect("send");
    }
    let mut acked = 0;
    while acked < COUNT {
        d.a.wait_for(WAIT, |f| matches!(f, ServerFrame::Ack { .. }).then_some(()))
            .await
            .expect("every send acked");
        acked += 1;
    }
    let mut last_seq = None;
    for i in 0..COUNT {
        let message = next_chat(&mut d.b).await;
        assert_eq!(message.content, format!("spaced {i}"));
        if let Some(last) = last_seq {
            assert_eq!(message.seq, last + 1, "gap-free and in order");
        }
        last_seq = Some(message.seq);
    }
}
