//! Reading state (issue 11): unread counts computed by the server from read markers
//! (others' chat messages only: not my own, not room events, not erased messages),
//! `read_marker` frames when a marker moves (to my own connections with the new count;
//! to the room, for "seen by", in rooms of at most 50 members only), and
//! `GET /rooms/{id}/receipts`. Both backends.

use socket_hub_client::{Auth, Client, Connection};
use socket_hub_protocol::rest::{RoomView, UpdateRoom};
use socket_hub_protocol::{ClientFrame, RoomId, Seq, ServerFrame, User};

use crate::helpers::{
    FORBIDDEN, INVALID, NOT_FOUND, WAIT, assert_quiet, duo, expect_ready, on_both_backends,
    refused, send,
};

async fn say(client: &Client, room_id: RoomId, content: &str) -> socket_hub_protocol::Message {
    client
        .send_message(room_id, content, None)
        .await
        .expect("send")
}

async fn joined(client: &Client, room_id: RoomId) -> RoomView {
    client
        .joined_rooms()
        .await
        .expect("rooms")
        .into_iter()
        .find(|v| v.room.id == room_id)
        .expect("listed")
}

/// The next `read_marker` on `ws`: (reader, seq, unread, last_seq).
async fn next_marker(ws: &mut Connection) -> (User, Seq, Option<u32>, Option<Seq>) {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::ReadMarker {
            user,
            seq,
            unread,
            last_seq,
            ..
        } => Some((user.clone(), *seq, *unread, *last_seq)),
        _ => None,
    })
    .await
    .expect("read_marker")
}

#[tokio::test]
async fn unread_counts_only_others_chat_messages_after_the_marker() {
    on_both_backends(|app| async move {
        let (alice, _) = app.user("alice").await;
        let (bob, _) = app.user("bob").await;
        let room = alice
            .create_room("general", false, None)
            .await
            .expect("room")
            .room;
        bob.join_room(room.id, None).await.expect("join");
        let first = say(&alice, room.id, "one").await;
        let second = say(&alice, room.id, "two").await;
        say(&alice, room.id, "three").await;
        say(&bob, room.id, "bob's own").await;
        // A room event takes a seq but is not a message to read.
        alice
            .update_room(
                room.id,
                &UpdateRoom {
                    topic: Some("news".into()),
                    ..UpdateRoom::default()
                },
            )
            .await
            .expect("topic");

        let view = joined(&bob, room.id).await;
        assert_eq!(view.unread, 3, "alice's three, not bob's own nor the event");
        assert_eq!(view.room.last_seq, 5);
        assert_eq!(joined(&alice, room.id).await.unread, 1, "bob's one");
        assert_eq!(bob.room(room.id).await.expect("room").unread, 3);
        // A public room bob sees but is not in has nothing unread for him.
        let (carol, _) = app.user("carol").await;
        let other = carol
            .create_room("other", false, None)
            .await
            .expect("room")
            .room;
        say(&carol, other.id, "hello").await;
        let listed = bob.list_rooms().await.expect("list");
        let other_view = listed
            .iter()
            .find(|v| v.room.id == other.id)
            .expect("listed");
        assert_eq!(other_view.unread, 0);

        // A deleted message is not unread any more (nor is its `message_deleted` event).
        alice
            .delete_message(room.id, first.id)
            .await
            .expect("delete");
        assert_eq!(joined(&bob, room.id).await.unread, 2);

        bob.mark_read(room.id, second.seq).await.expect("mark");
        let view = joined(&bob, room.id).await;
        assert_eq!((view.last_read_seq, view.unread), (second.seq, 1));
        bob.mark_read(room.id, 1_000)
            .await
            .expect("mark past the end");
        let view = joined(&bob, room.id).await;
        assert_eq!((view.last_read_seq, view.unread), (6, 0));

        // DMs count the same way.
        let dm = alice.open_direct("bob").await.expect("dm").room.room;
        say(&alice, dm.id, "psst").await;
        say(&alice, dm.id, "psst again").await;
        let dms = bob.directs().await.expect("dms");
        let dm_view = dms
            .dms
            .iter()
            .find(|d| d.room.room.id == dm.id)
            .expect("dm");
        assert_eq!(dm_view.room.unread, 2);
        app
    })
    .await;
}

#[tokio::test]
async fn moving_a_marker_tells_my_devices_the_count_and_a_small_room_who_read() {
    on_both_backends(|app| async move {
        let mut duo = duo(&app).await;
        let room_id = duo.room.id;
        let m1 = send(&mut duo.a, room_id, "c1", "one").await;
        let m2 = send(&mut duo.a, room_id, "c2", "two").await;
        let m3 = send(&mut duo.a, room_id, "c3", "three").await;
        // Bob's second device, which has not joined the room: his user channel still
        // tells it.
        let token = duo.bob.access_token().expect("token").to_owned();
        let mut b2 = Connection::connect(&app.url, Auth::Header(token))
            .await
            .expect("connects");
        expect_ready(&mut b2).await;
        duo.b
            .send(&ClientFrame::Read {
                room_id,
                seq: m2.seq,
            })
            .await
            .expect("read");
        let (user, seq, unread, last_seq) = next_marker(&mut b2).await;
        assert_eq!(user.username, "bob");
        assert_eq!((seq, unread, last_seq), (m2.seq, Some(1), Some(m3.seq)));
        let (_, seq, unread, _) = next_marker(&mut duo.b).await;
        assert_eq!((seq, unread), (m2.seq, Some(1)), "the reading device too");
        // Alice sees who read how far, without bob's count.
        let (user, seq, unread, last_seq) = next_marker(&mut duo.a).await;
        assert_eq!(
            (user.username.as_str(), seq, unread, last_seq),
            ("bob", m2.seq, None, None)
        );
        // A marker that does not move tells no one.
        duo.b
            .send(&ClientFrame::Read {
                room_id,
                seq: m1.seq,
            })
            .await
            .expect("read");
        assert_quiet(&mut duo.b).await;
        assert_quiet(&mut duo.a).await;

        let receipts = duo
            .alice
            .receipts(room_id)
            .await
            .expect("receipts")
            .receipts;
        let got: Vec<_> = receipts
            .iter()
            .map(|r| (r.user.username.as_str(), r.last_read_seq))
            .collect();
        assert_eq!(got, [("alice", 0), ("bob", m2.seq)]);

        // REST moves it too, with the same frames.
        duo.bob.mark_read(room_id, m3.seq).await.expect("mark");
        let (_, seq, unread, _) = next_marker(&mut b2).await;
        assert_eq!((seq, unread), (m3.seq, Some(0)));
        let (_, seq, _, _) = next_marker(&mut duo.a).await;
        assert_eq!(seq, m3.seq);

        // Refusals: receipts are for members only; a private room of others is not found.
        let (carol, _) = app.user("carol").await;
        assert_eq!(refused(carol.receipts(room_id).await), FORBIDDEN);
        let hidden = duo
            .alice
            .create_room("hidden", true, Some("correct horse code"))
            .await
            .expect("private")
            .room;
        assert_eq!(refused(carol.receipts(hidden.id).await), NOT_FOUND);
        app
    })
    .await;
}

#[tokio::test]
async fn rooms_over_fifty_members_keep_read_markers_private() {
    on_both_backends(|app| async move {
        let mut duo = duo(&app).await;
        let room_id = duo.room.id;
        // 49 more members, straight into the database (registering each would only be slow).
        let db = app.state.store.db();
        let mut tx = db.begin().await.expect("begin");
        for i in 0..49 {
            let name = format!("extra{i}");
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (username, username_key, password_hash, created_at)
                 VALUES ($1, $1, 'x', 0) RETURNING id",
            )
            .bind(&name)
            .fetch_one(&mut *tx)
            .await
            .expect("user");
            sqlx::query(
                "INSERT INTO memberships (room_id, user_id, role, joined_at)
                 VALUES ($1, $2, 'member', 0)",
            )
            .bind(room_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .expect("member");
        }
        tx.commit().await.expect("commit");
        let m1 = send(&mut duo.a, room_id, "c1", "one").await;
        let m2 = send(&mut duo.a, room_id, "c2", "two").await;
        // 51 members: bob's devices hear of his marker, the room does not.
        duo.b
            .send(&ClientFrame::Read {
                room_id,
                seq: m1.seq,
            })
            .await
            .expect("read");
        let (_, seq, unread, _) = next_marker(&mut duo.b).await;
        assert_eq!((seq, unread), (m1.seq, Some(1)));
        // Alice's connection has her own two messages, and nothing after them.
        duo.a
            .wait_for(WAIT, |f| match f {
                ServerFrame::Chat { message } if message.seq == m2.seq => Some(()),
                _ => None,
            })
            .await
            .expect("own chat");
        assert_quiet(&mut duo.a).await;
        assert_eq!(refused(duo.alice.receipts(room_id).await), INVALID);
        // At exactly 50 members the room hears again.
        let members = duo.alice.members(room_id).await.expect("members").members;
        let extra = members
            .iter()
            .find(|m| m.user.username == "extra0")
            .expect("extra0")
            .user
            .id;
        duo.alice.kick(room_id, extra, None).await.expect("kick");
        duo.b
            .send(&ClientFrame::Read {
                room_id,
                seq: m2.seq,
            })
            .await
            .expect("read");
        let (user, seq, _, _) = next_marker(&mut duo.a).await;
        assert_eq!((user.username.as_str(), seq), ("bob", m2.seq));
        assert_eq!(
            duo.alice
                .receipts(room_id)
                .await
                .expect("receipts")
                .receipts
                .len(),
            50
        );
        app
    })
    .await;
}
