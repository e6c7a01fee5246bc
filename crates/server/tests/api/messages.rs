//! A message's life after it is sent (issue 11): edits, deletions, replies, reactions
//! and mentions over real sockets, their refusals, and a client that resumes with
//! `since_seq` ending with exactly the view of one that never left. The SQL differs per
//! backend, so each test runs on SQLite and on PostgreSQL.

use socket_hub_client::Connection;
use socket_hub_protocol::lifecycle::{DELETED_EXCERPT, ReactionCount, fold};
use socket_hub_protocol::{ClientFrame, ErrorCode, Message, RoomEvent, ServerFrame};

use crate::helpers::{
    CONFLICT, FORBIDDEN, GONE, INVALID, NOT_FOUND, TestApp, WAIT, assert_quiet, duo, join, members,
    next_chat, on_both_backends_with, refused,
};

fn defaults(_: &mut socket_hub::Config) {}

/// The next message-lifecycle event on `ws`, skipping everything else.
async fn next_change(ws: &mut Connection) -> Message {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::MessageUpdated { message }
        | ServerFrame::MessageDeleted { message }
        | ServerFrame::Reaction { message } => Some(message.clone()),
        _ => None,
    })
    .await
    .expect("a message_updated, message_deleted or reaction frame")
}

/// The `chat` frame of message `id` on `ws`, skipping everything else.
async fn chat_with_id(ws: &mut Connection, id: i64) -> Message {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Chat { message } if message.id == id => Some(message.clone()),
        _ => None,
    })
    .await
    .expect("the chat frame")
}

/// Sends `content` over the WebSocket answering `reply_to`; the ack's message.
async fn send_reply(
    ws: &mut Connection,
    room_id: i64,
    id: &str,
    content: &str,
    reply_to: i64,
) -> Message {
    ws.send(&ClientFrame::MessageSend {
        room_id,
        client_msg_id: id.into(),
        content: content.into(),
        reply_to: Some(reply_to),
        attachments: Vec::new(),
    })
    .await
    .expect("send");
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Ack { message, .. } => Some(message.clone()),
        ServerFrame::Error { .. } => panic!("send failed: {f:?}"),
        _ => None,
    })
    .await
    .expect("ack")
}

/// The whole history of a room as `client` sees it, oldest first.
async fn history(client: &socket_hub_client::Client, room_id: i64) -> Vec<Message> {
    let mut page = client
        .history(room_id, None, Some(200))
        .await
        .expect("history")
        .messages;
    page.reverse();
    page
}

fn find(messages: &[Message], id: i64) -> Message {
    messages
        .iter()
        .find(|m| m.id == id)
        .cloned()
        .unwrap_or_else(|| panic!("message {id} in {messages:#?}"))
}

/// Whether any stored row (content or event, or a notification's quote) still holds
/// `text`.
async fn stored_anywhere(app: &TestApp, text: &str) -> bool {
    let count: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM messages WHERE content LIKE $1 OR event LIKE $1)
              + (SELECT COUNT(*) FROM notifications WHERE message LIKE $1)",
    )
    .bind(format!("%{text}%"))
    .fetch_one(app.state.store.db().reader())
    .await
    .expect("count");
    count > 0
}

#[tokio::test]
async fn edit_delete_reply_and_react_are_seen_live_and_in_history() {
    on_both_backends_with(defaults, |app| async move {
        let mut d = duo(&app).await;
        let room = d.room.id;
        let original = crate::helpers::send(&mut d.a, room, "m1", "hello @Bob").await;
        assert_eq!(original.mentions, ["bob"]);
        next_chat(&mut d.b).await;

        // A reply over the WebSocket carries a quote, live and in the ack.
        let reply = send_reply(&mut d.b, room, "r1", "hi back", original.id).await;
        let quote = reply.reply_to.clone().expect("quote");
        assert_eq!((quote.id, quote.seq), (original.id, original.seq));
        assert_eq!((quote.user.id, quote.excerpt.as_str()), (original.user.id, "hello @Bob"));
        assert_eq!(chat_with_id(&mut d.a, reply.id).await.reply_to, Some(quote));
        // And over REST.
        let rest_reply = d
            .bob
            .send_reply(room, "also this", None, original.id)
            .await
            .expect("rest reply");
        assert_eq!(rest_reply.reply_to.as_ref().map(|q| q.id), Some(original.id));
        let live = chat_with_id(&mut d.a, rest_reply.id).await;
        assert_eq!(live.reply_to, rest_reply.reply_to);

        // Edit: the author's REST call returns it edited; members get message_updated.
        let edited = d
            .alice
            .edit_message(room, original.id, "hello @bob and @carol, edited-secret")
            .await
            .expect("edit");
        assert_eq!(edited.content, "hello @bob and @carol, edited-secret");
        assert_eq!(edited.mentions, ["bob", "carol"]);
        let edited_at = edited.edited_at.expect("edited_at");
        let event = next_change(&mut d.b).await;
        assert_eq!(
            event.event,
            Some(RoomEvent::MessageUpdated {
                message_id: original.id,
                content: edited.content.clone(),
                edited_at,
                mentions: vec!["bob".into(), "carol".into()],
            })
        );
        assert_eq!(event.user.id, original.user.id);
        // The same content again is no change and no event.
        d.alice
            .edit_message(room, original.id, &edited.content)
            .await
            .expect("same edit");

        // Reactions: counted per emoji, `me` per viewer; adding twice is one reaction.
        d.bob.add_reaction(room, original.id, "👍").await.expect("react");
        d.bob.add_reaction(room, original.id, "👍").await.expect("again");
        d.alice.add_reaction(room, original.id, "👍").await.expect("react");
        d.alice.add_reaction(room, original.id, "🎉").await.expect("react");
        d.alice.remove_reaction(room, original.id, "🎉").await.expect("unreact");
        d.alice.remove_reaction(room, original.id, "🎉").await.expect("unreact again");
        for (emoji, added) in [("👍", true), ("👍", true), ("🎉", true), ("🎉", false)] {
            let event = next_change(&mut d.b).await;
            assert_eq!(
                event.event,
                Some(RoomEvent::Reaction {
                    message_id: original.id,
                    emoji: emoji.into(),
                    added
                })
            );
        }
        assert_quiet(&mut d.b).await;

        let seen_by_bob = history(&d.bob, room).await;
        let first = find(&seen_by_bob, original.id);
        assert_eq!(first.content, edited.content);
        assert_eq!(first.edited_at, Some(edited_at));
        assert_eq!(
            first.reactions,
            [ReactionCount {
                emoji: "👍".into(),
                count: 2,
                me: true
            }]
        );
        assert!(
            seen_by_bob.iter().all(|m| m.event.is_none()),
            "history leaves the change events out: {seen_by_bob:#?}"
        );
        assert_eq!(
            find(&seen_by_bob, reply.id).reply_to.map(|q| q.excerpt),
            Some(edited.content.clone())
        );

        // Delete: a tombstone everywhere, the content gone from storage (edit events
        // included), the reactions gone; deleting again changes nothing.
        d.alice
            .delete_message(room, original.id)
            .await
            .expect("delete");
        let event = next_change(&mut d.b).await;
        assert!(
            matches!(event.event, Some(RoomEvent::MessageDeleted { message_id, .. }) if message_id == original.id),
            "{event:?}"
        );
        d.alice
            .delete_message(room, original.id)
            .await
            .expect("delete again");
        assert_quiet(&mut d.b).await;
        let seen = history(&d.alice, room).await;
        let tombstone = find(&seen, original.id);
        assert!(tombstone.deleted && tombstone.deleted_at.is_some());
        assert_eq!(tombstone.content, "");
        assert!(tombstone.reactions.is_empty() && tombstone.mentions.is_empty());
        let quote = find(&seen, reply.id).reply_to.expect("quote");
        assert!(quote.deleted);
        assert_eq!(quote.excerpt, DELETED_EXCERPT);
        assert!(!stored_anywhere(&app, "edited-secret").await);
        // Bob's `mentioned` notification quoted the message: the quote went with it.
        let notes = d.bob.notifications(None, None).await.expect("notifications");
        let mention = notes
            .notifications
            .iter()
            .find(|n| n.room_id == Some(room))
            .expect("bob was mentioned");
        assert_eq!(mention.message, None);
        assert!(!stored_anywhere(&app, "hello @Bob").await);
        app
    })
    .await;
}

#[tokio::test]
async fn admins_delete_members_messages_and_members_cannot() {
    on_both_backends_with(defaults, |app| async move {
        let mut d = duo(&app).await;
        let room = d.room.id;
        let (carol, _) = app.user("carol").await;
        carol.join_room(room, None).await.expect("carol joins");
        let bobs = d.bob.send_message(room, "bob's", None).await.expect("send");
        let alices = crate::helpers::send(&mut d.a, room, "a1", "alice's").await;

        assert_eq!(
            refused(carol.delete_message(room, bobs.id).await),
            FORBIDDEN,
            "a member cannot delete another's message"
        );
        assert_eq!(
            refused(d.bob.delete_message(room, alices.id).await),
            FORBIDDEN,
            "nor the owner's"
        );
        d.alice
            .set_role(
                room,
                carol_id(&carol).await,
                socket_hub_protocol::Role::Admin,
            )
            .await
            .expect("promote");
        carol
            .delete_message(room, bobs.id)
            .await
            .expect("an admin deletes a member's message");
        assert_eq!(
            refused(carol.delete_message(room, alices.id).await),
            FORBIDDEN,
            "an admin cannot delete the owner's"
        );
        app
    })
    .await;
}

async fn carol_id(carol: &socket_hub_client::Client) -> i64 {
    carol.me().await.expect("me").id
}

fn short_window(c: &mut socket_hub::Config) {
    c.edit_window_secs = 60;
}

#[tokio::test]
async fn refusals_are_clear() {
    on_both_backends_with(short_window, |app| async move {
        let mut d = duo(&app).await;
        let room = d.room.id;
        let mine = crate::helpers::send(&mut d.a, room, "a1", "mine").await;

        assert_eq!(
            refused(d.bob.edit_message(room, mine.id, "not yours").await),
            FORBIDDEN,
            "edit someone else's message"
        );
        assert_eq!(
            refused(d.alice.edit_message(room, mine.id + 1000, "x").await),
            NOT_FOUND
        );
        assert_eq!(
            refused(d.alice.edit_message(room, mine.id, " ").await),
            INVALID
        );

        // Past the window (sent two minutes ago, as far as the store knows).
        let mut tx = app.state.store.db().begin().await.expect("tx");
        sqlx::query("UPDATE messages SET created_at = created_at - 120000 WHERE id = $1")
            .bind(mine.id)
            .execute(&mut *tx)
            .await
            .expect("backdate");
        tx.commit().await.expect("commit");
        assert_eq!(
            refused(d.alice.edit_message(room, mine.id, "too late").await),
            FORBIDDEN,
            "edit after the window"
        );

        // Too many distinct emojis.
        let emojis: Vec<String> = (0..21u32)
            .map(|i| char::from_u32(0x1F600 + i).expect("emoji").to_string())
            .collect();
        for emoji in &emojis[..20] {
            d.bob
                .add_reaction(room, mine.id, emoji)
                .await
                .expect("react");
        }
        assert_eq!(
            refused(d.bob.add_reaction(room, mine.id, &emojis[20]).await),
            CONFLICT,
            "a 21st distinct emoji"
        );
        d.alice
            .add_reaction(room, mine.id, &emojis[0])
            .await
            .expect("an emoji already there may still be added");
        assert_eq!(
            refused(d.bob.add_reaction(room, mine.id, "lol").await),
            INVALID,
            "not an emoji"
        );

        // Reply to a message of another room: REST and WebSocket.
        let other = d
            .alice
            .create_room("elsewhere", false, None)
            .await
            .expect("room")
            .room;
        let there = d
            .alice
            .send_message(other.id, "over there", None)
            .await
            .expect("send");
        assert_eq!(
            refused(d.alice.send_reply(room, "re", None, there.id).await),
            INVALID
        );
        d.a.send(&ClientFrame::MessageSend {
            room_id: room,
            client_msg_id: "bad-reply".into(),
            content: "re".into(),
            reply_to: Some(there.id),
            attachments: Vec::new(),
        })
        .await
        .expect("send");
        let (code, reference) = crate::helpers::next_error_with_ref(&mut d.a).await;
        assert_eq!(
            (code, reference.as_deref()),
            (ErrorCode::InvalidInput, Some("bad-reply"))
        );

        // A muted member may neither edit nor react; taking a reaction back is fine.
        let bobs = d
            .bob
            .send_message(room, "bob's own", None)
            .await
            .expect("send");
        d.alice.mute(room, bobs.user.id, None).await.expect("mute");
        assert_eq!(
            refused(d.bob.edit_message(room, bobs.id, "edited").await),
            FORBIDDEN,
            "edit while muted"
        );
        assert_eq!(
            refused(d.bob.add_reaction(room, mine.id, "🎉").await),
            FORBIDDEN,
            "react while muted"
        );
        d.bob
            .remove_reaction(room, mine.id, &emojis[0])
            .await
            .expect("a muted member takes a reaction back");

        // React in a room I left; edit a deleted message.
        d.bob.leave_room(room).await.expect("leave");
        assert_eq!(
            refused(d.bob.add_reaction(room, mine.id, "👍").await),
            FORBIDDEN,
            "react in a room I left"
        );
        assert_eq!(
            refused(d.bob.delete_message(room, mine.id).await),
            FORBIDDEN
        );
        d.alice.delete_message(room, mine.id).await.expect("delete");
        assert_eq!(
            refused(d.alice.add_reaction(room, mine.id, "👍").await),
            GONE
        );
        app
    })
    .await;
}

/// B follows the room, goes offline; A edits, deletes, reacts and sends; B resumes with
/// `since_seq`, folds what it replays, and ends with exactly the view a fresh history
/// gives (its own, and A's but for `me`).
#[tokio::test]
async fn a_resuming_client_ends_with_the_view_of_one_that_never_left() {
    on_both_backends_with(defaults, |app| async move {
        let (alice, alice_s, bob, bob_s, room) = members(&app).await;
        let room = room.id;
        let mut a = app.connect(&alice_s).await;
        let mut b = app.connect(&bob_s).await;
        join(&mut a, room, None).await;
        join(&mut b, room, None).await;
        let bob_id = bob_s.user.id;
        let mut sent = Vec::new();
        for i in 0..4 {
            let (id, content) = (format!("m{i}"), format!("message {i}"));
            sent.push(crate::helpers::send(&mut a, room, &id, &content).await);
        }
        bob.add_reaction(room, sent[2].id, "👍")
            .await
            .expect("react");

        // B's view: a history page (as of its `last_seq`), then every later event live.
        let page = bob.history(room, None, Some(200)).await.expect("history");
        let mut timeline = page.messages;
        timeline.reverse();
        let mut last_seq = page.last_seq;
        assert!(last_seq > sent[3].seq, "the page covers the reaction event");
        loop {
            let message = b
                .wait_for(WAIT, |f| match f {
                    ServerFrame::Chat { message }
                    | ServerFrame::Reaction { message }
                    | ServerFrame::MessageUpdated { message }
                    | ServerFrame::MessageDeleted { message } => Some(message.clone()),
                    _ => None,
                })
                .await
                .expect("live frame");
            // The page already shows everything up to its last_seq.
            if message.seq > last_seq {
                fold(&mut timeline, &message, bob_id);
                last_seq = message.seq;
            }
            if matches!(message.event, Some(RoomEvent::Reaction { .. })) {
                break;
            }
        }
        b.close().await.expect("bob goes offline");

        // While B is away.
        let (s0, s1, s2, s3) = (sent[0].id, sent[1].id, sent[2].id, sent[3].id);
        alice
            .edit_message(room, s0, "message 0, fixed")
            .await
            .expect("edit");
        alice.delete_message(room, s1).await.expect("delete");
        alice.add_reaction(room, s2, "🎉").await.expect("react");
        alice.add_reaction(room, s2, "👍").await.expect("react");
        alice.add_reaction(room, s3, "😮").await.expect("react");
        alice
            .remove_reaction(room, s3, "😮")
            .await
            .expect("unreact");
        alice
            .edit_message(room, s2, "message 2, fixed")
            .await
            .expect("edit");
        let reply = send_reply(&mut a, room, "late", "late reply", s0).await;
        alice
            .delete_message(room, s0)
            .await
            .expect("delete the replied one");
        let last = crate::helpers::send(&mut a, room, "end", "the end").await;

        // B resumes.
        let mut b = app.connect(&bob_s).await;
        join(&mut b, room, Some(last_seq)).await;
        loop {
            let message = b
                .wait_for(WAIT, |f| match f {
                    ServerFrame::Chat { message }
                    | ServerFrame::Reaction { message }
                    | ServerFrame::MessageUpdated { message }
                    | ServerFrame::MessageDeleted { message } => Some(message.clone()),
                    _ => None,
                })
                .await
                .expect("replayed frame");
            assert_eq!(message.seq, last_seq + 1, "gap-free replay");
            last_seq = message.seq;
            fold(&mut timeline, &message, bob_id);
            if message.id == last.id {
                break;
            }
        }
        assert!(timeline.iter().any(|m| m.id == reply.id));

        let normalise = |mut messages: Vec<Message>, keep_me: bool| {
            for m in &mut messages {
                m.reactions.sort_by(|a, b| a.emoji.cmp(&b.emoji));
                if !keep_me {
                    m.reactions.iter_mut().for_each(|r| r.me = false);
                }
            }
            messages
        };
        let bobs_view = normalise(history(&bob, room).await, true);
        assert_eq!(normalise(timeline.clone(), true), bobs_view);
        let alices_view = normalise(history(&alice, room).await, false);
        assert_eq!(normalise(timeline, false), alices_view);
        app
    })
    .await;
}
