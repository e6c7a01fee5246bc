//! Profiles over REST: edit your own, read anyone's, find people by name (paginated and
//! rate-limited), and the refusals.

use socket_hub_protocol::rest::UpdateProfile;
use socket_hub_protocol::{ErrorCode, ServerFrame};

use crate::helpers::{INVALID, NOT_FOUND, WAIT, refused, spawn_app, spawn_with};

#[tokio::test]
async fn profiles_are_edited_read_and_shown_with_generated_avatars() {
    let app = spawn_app().await;
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;

    let plain = bob.profile(alice_s.user.id).await.expect("profile");
    assert_eq!(plain.username, "alice");
    assert_eq!(plain.initials, "A");
    assert!(plain.avatar_color.starts_with('#') && plain.avatar_color.len() == 7);
    assert_eq!((plain.display_name, plain.status), (None, None));

    let edited = alice
        .update_profile(&UpdateProfile {
            display_name: Some("  Ada Lovelace ".into()),
            status: Some("computing".into()),
        })
        .await
        .expect("edit");
    assert_eq!(edited.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(edited.initials, "AL");
    assert_eq!(
        bob.profile(alice_s.user.id).await.expect("profile"),
        edited,
        "others see the same"
    );
    let cleared = alice
        .update_profile(&UpdateProfile {
            status: Some(String::new()),
            ..UpdateProfile::default()
        })
        .await
        .expect("clear");
    assert_eq!(cleared.status, None);
    assert_eq!(cleared.display_name.as_deref(), Some("Ada Lovelace"));

    for bad in [
        UpdateProfile {
            display_name: Some("x".repeat(65)),
            ..UpdateProfile::default()
        },
        UpdateProfile {
            status: Some("s".repeat(141)),
            ..UpdateProfile::default()
        },
        UpdateProfile {
            display_name: Some("evil\u{202E}name".into()),
            ..UpdateProfile::default()
        },
    ] {
        assert_eq!(
            refused(alice.update_profile(&bad).await),
            INVALID,
            "{bad:?}"
        );
    }
    assert_eq!(refused(alice.profile(999_999).await), NOT_FOUND);

    // Last seen: set when Bob connects (recorded before his unread notifications are
    // sent, so the invitation's arrival proves it is stored).
    let room = alice
        .create_room("lab", false, None)
        .await
        .expect("room")
        .room;
    alice.invite(room.id, "bob").await.expect("invite");
    assert!(
        bob.profile(bob_s.user.id)
            .await
            .expect("me")
            .last_seen_at
            .is_none()
    );
    let mut ws = app.connect(&bob_s).await;
    ws.wait_for(WAIT, |f| {
        matches!(f, ServerFrame::Notification { .. }).then_some(())
    })
    .await
    .expect("notification after ready");
    assert!(
        bob.profile(bob_s.user.id)
            .await
            .expect("me")
            .last_seen_at
            .is_some()
    );
}

#[tokio::test]
async fn people_are_found_by_name_prefix_a_page_at_a_time() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    app.user("Alfred").await;
    app.user("al_x").await;
    app.user("bob").await;

    let page = alice.search_users("AL", None, None).await.expect("search");
    let names: Vec<_> = page.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["alice", "Alfred", "al_x"]);
    // `_` is a character here, not a wildcard.
    let exact = alice.search_users("al_", None, None).await.expect("search");
    assert_eq!(exact.users.len(), 1);

    let first = alice.search_users("al", None, Some(2)).await.expect("page");
    assert_eq!(first.users.len(), 2);
    let rest = alice
        .search_users("al", first.next, Some(2))
        .await
        .expect("next page");
    assert_eq!(rest.users.len(), 1);
    assert_eq!(rest.next, None);

    assert_eq!(refused(alice.search_users(" ", None, None).await), INVALID);
    assert_eq!(
        refused(alice.search_users("al", None, Some(0)).await),
        INVALID
    );
}

#[tokio::test]
async fn user_search_is_rate_limited_per_user() {
    let app = spawn_with(|config| {
        config.user_search_per_sec = 0.001;
        config.user_search_burst = 2;
    })
    .await;
    let (alice, _) = app.user("alice").await;
    let (bob, _) = app.user("bob").await;
    alice.search_users("b", None, None).await.expect("1");
    alice.search_users("b", None, None).await.expect("2");
    let err = alice
        .search_users("b", None, None)
        .await
        .expect_err("over the quota");
    assert_eq!(
        (err.status(), err.code()),
        (Some(429), Some(ErrorCode::RateLimited))
    );
    bob.search_users("a", None, None)
        .await
        .expect("bob has his own");
}

#[tokio::test]
async fn changing_the_password_revokes_every_other_session() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let mut laptop = app.client();
    let other = laptop
        .login("alice", crate::helpers::PASSWORD)
        .await
        .expect("second login");
    let mut other_ws = app.connect(&other).await;

    let err = alice
        .change_password("not my password", "a brand new password")
        .await
        .expect_err("wrong current");
    assert_eq!(
        (err.status(), err.code()),
        (Some(401), Some(ErrorCode::InvalidCredentials))
    );
    assert_eq!(
        refused(
            alice
                .change_password(crate::helpers::PASSWORD, "short")
                .await
        ),
        INVALID
    );
    alice
        .change_password(crate::helpers::PASSWORD, "a brand new password")
        .await
        .expect("changed");

    assert_eq!(
        other_ws.closed_within(WAIT).await.expect("closed"),
        Some(socket_hub_protocol::CloseCode::UNAUTHORIZED)
    );
    let err = laptop
        .refresh(&other.refresh_token)
        .await
        .expect_err("other session revoked");
    assert_eq!(err.status(), Some(401));
    alice.me().await.expect("this session stays");
    let mut fresh = app.client();
    assert_eq!(
        fresh
            .login("alice", crate::helpers::PASSWORD)
            .await
            .expect_err("old password")
            .status(),
        Some(401)
    );
    fresh
        .login("alice", "a brand new password")
        .await
        .expect("new password");
}

#[tokio::test]
async fn an_account_is_exported_then_deleted_leaving_its_messages_as_deleted_user() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let room = alice
        .create_room("general", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(room.id, None).await.expect("join");
    bob.send_message(room.id, "hi from bob", None)
        .await
        .expect("send");
    alice.open_direct("bob").await.expect("dm");

    let export = bob.export_account().await.expect("export");
    assert_eq!(export.profile.username, "bob");
    assert_eq!(export.rooms.len(), 1);
    assert_eq!(export.direct_messages.len(), 1);
    assert_eq!(export.messages.len(), 1);
    assert_eq!(export.messages[0].content, "hi from bob");
    assert_eq!(export.notifications.len(), 1, "the new DM");

    let err = bob
        .delete_account("not my password")
        .await
        .expect_err("wrong password");
    assert_eq!(err.status(), Some(401));
    assert_eq!(
        refused(alice.delete_account(crate::helpers::PASSWORD).await),
        crate::helpers::CONFLICT,
        "an owner must hand over their rooms first"
    );
    let mut ws = app.connect(&bob_s).await;
    bob.delete_account(crate::helpers::PASSWORD)
        .await
        .expect("delete");
    assert_eq!(
        ws.closed_within(WAIT).await.expect("closed"),
        Some(socket_hub_protocol::CloseCode::UNAUTHORIZED)
    );
    assert_eq!(bob.me().await.expect_err("gone").status(), Some(401));

    // The message stays, from "deleted user"; the name is free again; nobody finds bob.
    let history = alice.history(room.id, None, None).await.expect("history");
    assert_eq!(history.messages[0].content, "hi from bob");
    assert_eq!(history.messages[0].user.username, "deleted user");
    assert_eq!(
        alice.room(room.id).await.expect("room").room.member_count,
        1
    );
    assert!(
        alice
            .search_users("bob", None, None)
            .await
            .expect("search")
            .users
            .is_empty()
    );
    assert_eq!(refused(alice.open_direct("bob").await), NOT_FOUND);
    let mut again = app.client();
    assert_eq!(
        again
            .login("bob", crate::helpers::PASSWORD)
            .await
            .expect_err("deleted")
            .status(),
        Some(401)
    );
    again
        .register("bob", crate::helpers::PASSWORD)
        .await
        .expect("the name is free again");
}
