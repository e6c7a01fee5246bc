//! Invitations by name and invite links over REST: joining private rooms without the
//! code, and every refusal (roles, bans, used-up, expired and revoked links).

use crate::helpers::{CONFLICT, FORBIDDEN, GONE, INVALID, NOT_FOUND, refused, spawn_app};

#[tokio::test]
async fn an_invited_user_joins_a_private_room_without_the_code_or_declines() {
    let app = spawn_app().await;
    let (alice, alice_s) = app.user("alice").await;
    let (bob, bob_s) = app.user("bob").await;
    let (carol, _) = app.user("carol").await;
    let room = alice
        .create_room("secret", true, Some("never-shared-code"))
        .await
        .expect("room")
        .room;

    let invitation = alice.invite(room.id, "BOB").await.expect("invite");
    assert_eq!(invitation.user, bob_s.user);
    assert_eq!(invitation.invited_by, alice_s.user);
    assert_eq!(invitation.room_name, "secret");
    let pending = bob.invitations().await.expect("list");
    assert_eq!(pending.invitations, vec![invitation.clone()]);
    // Invited is not a member yet: the room stays invisible.
    assert_eq!(refused(bob.room(room.id).await), NOT_FOUND);

    let view = bob.accept_invitation(invitation.id).await.expect("accept");
    assert!(view.room.is_member);
    assert_eq!(view.room.member_count, 2);
    bob.send_message(room.id, "thanks!", None)
        .await
        .expect("a member now");
    assert!(
        bob.invitations()
            .await
            .expect("list")
            .invitations
            .is_empty()
    );
    assert_eq!(
        refused(bob.accept_invitation(invitation.id).await),
        NOT_FOUND
    );

    let declined = alice.invite(room.id, "carol").await.expect("invite");
    // Only the invitee may answer it.
    assert_eq!(
        refused(bob.decline_invitation(declined.id).await),
        NOT_FOUND
    );
    carol
        .decline_invitation(declined.id)
        .await
        .expect("decline");
    assert!(
        carol
            .invitations()
            .await
            .expect("list")
            .invitations
            .is_empty()
    );
    assert_eq!(
        refused(carol.accept_invitation(declined.id).await),
        NOT_FOUND
    );
    assert_eq!(refused(carol.room(room.id).await), NOT_FOUND);
}

#[tokio::test]
async fn invitations_follow_the_permission_table() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (bob, _) = app.user("bob").await;
    let (carol, carol_s) = app.user("carol").await;
    let (dave, _) = app.user("dave").await;
    let private = alice
        .create_room("staff", true, Some("staff-only-code"))
        .await
        .expect("room")
        .room;
    let public = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;
    bob.join_room(private.id, Some("staff-only-code"))
        .await
        .expect("bob joins");
    bob.join_room(public.id, None).await.expect("bob joins");

    // Members invite to public rooms, only admins and the owner to private ones.
    bob.invite(public.id, "carol")
        .await
        .expect("member invites");
    assert_eq!(refused(bob.invite(private.id, "carol").await), FORBIDDEN);
    assert_eq!(refused(dave.invite(private.id, "carol").await), NOT_FOUND);
    assert_eq!(refused(dave.invite(public.id, "carol").await), FORBIDDEN);
    assert_eq!(
        refused(alice.invite(private.id, "nobody-here").await),
        NOT_FOUND
    );
    assert_eq!(refused(alice.invite(private.id, "bob").await), CONFLICT);
    alice
        .ban(private.id, carol_s.user.id, None, None)
        .await
        .expect("ban");
    assert_eq!(refused(alice.invite(private.id, "carol").await), FORBIDDEN);
    // Links: admins and the owner only.
    assert_eq!(
        refused(bob.create_invite_link(public.id, None, None).await),
        FORBIDDEN
    );
    assert_eq!(refused(bob.invite_links(public.id).await), FORBIDDEN);
    assert_eq!(
        refused(carol.create_invite_link(private.id, None, None).await),
        NOT_FOUND
    );
}

#[tokio::test]
async fn invite_links_admit_until_used_up_expired_or_revoked() {
    let app = spawn_app().await;
    let (alice, alice_s) = app.user("alice").await;
    let (bob, _) = app.user("bob").await;
    let (carol, _) = app.user("carol").await;
    let room = alice
        .create_room("club", true, Some("members-only-code"))
        .await
        .expect("room")
        .room;

    let link = alice
        .create_invite_link(room.id, Some(1), Some(3600))
        .await
        .expect("link");
    let token = link.token.clone().expect("token at creation");
    assert!(token.len() >= 43, "256 random bits: {token}");
    assert_eq!(
        link.url.as_deref(),
        Some(format!("/invite/{token}").as_str())
    );
    let preview = bob.preview_invite(&token).await.expect("preview");
    assert_eq!(
        (preview.room_id, preview.room_name.as_str()),
        (room.id, "club")
    );

    let view = bob.accept_invite(&token).await.expect("bob joins");
    assert!(view.room.is_member);
    // Already a member: accepted again without using the link up.
    bob.accept_invite(&token).await.expect("idempotent");
    assert_eq!(refused(carol.accept_invite(&token).await), GONE);
    assert_eq!(refused(carol.preview_invite(&token).await), GONE);
    let links = alice.invite_links(room.id).await.expect("links");
    assert_eq!(links.links.len(), 1);
    assert_eq!(
        (links.links[0].uses, links.links[0].token.as_deref()),
        (1, None)
    );

    // Revoked.
    let second = alice
        .create_invite_link(room.id, None, None)
        .await
        .expect("link");
    alice
        .revoke_invite_link(room.id, second.id)
        .await
        .expect("revoke");
    let err = carol
        .accept_invite(second.token.as_deref().expect("token"))
        .await
        .expect_err("revoked");
    assert_eq!((err.status(), err.code()), GONE);
    assert!(err.to_string().contains("revoked"), "{err}");
    assert_eq!(
        refused(alice.revoke_invite_link(room.id, 999_999).await),
        NOT_FOUND
    );

    // Expired (stored with an expiry in the past: no test waits for a clock).
    let (expired, hash) = socket_hub::auth::new_refresh_token();
    app.state
        .store
        .rooms
        .create_link(
            room.id,
            alice_s.user.id,
            &hash,
            None,
            Some(socket_hub::store::now_millis() - 1),
        )
        .await
        .expect("expired link");
    let err = carol.accept_invite(&expired).await.expect_err("expired");
    assert_eq!((err.status(), err.code()), GONE);
    assert!(err.to_string().contains("expired"), "{err}");

    // Unknown tokens and bad limits.
    assert_eq!(
        refused(carol.accept_invite("not-a-real-token").await),
        NOT_FOUND
    );
    assert_eq!(
        refused(alice.create_invite_link(room.id, Some(0), None).await),
        INVALID
    );
    assert_eq!(
        refused(alice.create_invite_link(room.id, None, Some(1)).await),
        INVALID
    );
    assert_eq!(
        refused(carol.room(room.id).await),
        NOT_FOUND,
        "carol never got in"
    );
}

#[tokio::test]
async fn a_banned_user_cannot_rejoin_by_link_or_invitation() {
    let app = spawn_app().await;
    let (alice, _) = app.user("alice").await;
    let (carol, carol_s) = app.user("carol").await;
    let room = alice
        .create_room("club", true, Some("members-only-code"))
        .await
        .expect("room")
        .room;
    let link = alice
        .create_invite_link(room.id, None, None)
        .await
        .expect("link");
    let token = link.token.expect("token");
    carol.accept_invite(&token).await.expect("carol joins");
    // Invited (to come back later), then banned.
    let invitation = {
        alice
            .kick(room.id, carol_s.user.id, None)
            .await
            .expect("kick");
        alice.invite(room.id, "carol").await.expect("invite")
    };
    alice
        .ban(room.id, carol_s.user.id, Some("trouble"), None)
        .await
        .expect("ban");

    assert_eq!(refused(carol.accept_invite(&token).await), FORBIDDEN);
    assert_eq!(
        refused(carol.accept_invitation(invitation.id).await),
        FORBIDDEN
    );
    assert_eq!(
        refused(carol.join_room(room.id, Some("members-only-code")).await),
        FORBIDDEN
    );
    let links = alice.invite_links(room.id).await.expect("links");
    assert_eq!(links.links[0].uses, 1, "a refused join uses nothing");

    alice.unban(room.id, carol_s.user.id).await.expect("unban");
    carol
        .accept_invitation(invitation.id)
        .await
        .expect("the invitation waited");
}
