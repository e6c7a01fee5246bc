//! Notifications over real sockets: live to every device once, persisted, sent again
//! after `ready` while unread, and read over REST.

use socket_hub_client::Connection;
use socket_hub_protocol::{Notification, NotificationKind, ServerFrame};

use crate::helpers::{WAIT, assert_quiet, join, send, spawn_app};

async fn next_notification(ws: &mut Connection) -> Notification {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Notification { notification } => Some(notification.clone()),
        _ => None,
    })
    .await
    .expect("a notification")
}

#[tokio::test]
async fn invitations_and_mentions_reach_every_device_once_and_are_listed() {
    let app = spawn_app().await;
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let mut phone = app.connect(&bob_s).await;
    let mut laptop = app.connect(&bob_s).await;
    let room = alice
        .create_room("plans", true, Some("plans-secret-code"))
        .await
        .expect("room")
        .room;

    alice.invite(room.id, "bob").await.expect("invite");
    for ws in [&mut phone, &mut laptop] {
        let notification = next_notification(ws).await;
        assert_eq!(notification.kind, NotificationKind::Invited);
        assert_eq!(notification.room_id, Some(room.id));
        assert_eq!(notification.from.as_ref(), Some(&alice_s.user));
        assert_eq!(notification.message.as_deref(), Some("plans"));
        assert!(!notification.read);
    }
    let invitation = bob.invitations().await.expect("list").invitations[0].id;
    bob.accept_invitation(invitation).await.expect("accept");

    // Mentioned while looking elsewhere: no need to have joined the room's stream.
    let mut a = app.connect(&alice_s).await;
    join(&mut a, room.id, None).await;
    send(
        &mut a,
        room.id,
        "m1",
        "lunch, @Bob? (not @nobody, not @alice)",
    )
    .await;
    for ws in [&mut phone, &mut laptop] {
        let notification = next_notification(ws).await;
        assert_eq!(notification.kind, NotificationKind::Mentioned);
        assert_eq!(
            notification.message.as_deref(),
            Some("lunch, @Bob? (not @nobody, not @alice)")
        );
        // Exactly once per device.
        assert_quiet(ws).await;
    }
    // The sender is not notified of mentioning themselves.
    assert_eq!(alice.unread_notifications().await.expect("count").unread, 0);

    let listed = bob.notifications(None, None).await.expect("list");
    assert_eq!(listed.unread, 2);
    let kinds: Vec<_> = listed.notifications.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [NotificationKind::Invited, NotificationKind::Mentioned]
    );
    let first = listed.notifications[0].id;
    let page = bob.notifications(None, Some(1)).await.expect("page");
    assert_eq!(page.next, Some(first));
    bob.mark_notifications_read(first).await.expect("read");
    assert_eq!(bob.unread_notifications().await.expect("count").unread, 1);
    let err = bob
        .notifications(None, Some(0))
        .await
        .expect_err("bad limit");
    assert_eq!(err.status(), Some(422));
}

#[tokio::test]
async fn an_offline_user_gets_unread_notifications_after_ready() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (carol, carol_s) = app.user("carol").await;
    let room = alice
        .create_room("general", false, None)
        .await
        .expect("room")
        .room;
    carol.join_room(room.id, None).await.expect("join");
    let doomed = alice
        .create_room("doomed", false, None)
        .await
        .expect("room")
        .room;
    carol.join_room(doomed.id, None).await.expect("join");

    // While Carol is offline: a DM, a kick and a deleted room.
    alice.open_direct("carol").await.expect("dm");
    alice
        .kick(room.id, carol_s.user.id, Some("cleanup"))
        .await
        .expect("kick");
    alice.delete_room(doomed.id).await.expect("delete");
    // Stored before each of those calls answered.
    let listed = carol
        .notifications(None, None)
        .await
        .expect("list")
        .notifications;
    assert_eq!(listed.len(), 3);

    let mut ws = app.connect(&carol_s).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(next_notification(&mut ws).await.kind);
    }
    assert_eq!(
        kinds,
        [
            NotificationKind::DirectMessage,
            NotificationKind::Kicked,
            NotificationKind::RoomDeleted
        ]
    );
    // Read ones are not sent again.
    let last = listed.last().map(|n| n.id).expect("some");
    carol.mark_notifications_read(last).await.expect("read");
    let mut again = app.connect(&carol_s).await;
    assert_quiet(&mut again).await;
}
