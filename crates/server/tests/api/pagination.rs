//! Lists are paginated (issue 9, item 6): `after`/`limit` -> `next` on every list, a
//! documented default and maximum with no silent cap, and the caller's own rooms
//! through their own endpoint so no number of other rooms can hide them. The queries
//! differ per backend, so each test runs on SQLite and on PostgreSQL.

use socket_hub_client::Client;
use socket_hub_protocol::ErrorCode;
use socket_hub_protocol::rest::{MemberList, RoomList};

use crate::helpers::{TestApp, on_both_backends_with, spawn_with};

/// `GET path` as `client`'s user, decoded as `T`, or the error status and code.
async fn get<T: serde::de::DeserializeOwned>(
    app: &TestApp,
    client: &Client,
    path: &str,
) -> Result<T, (u16, Option<ErrorCode>)> {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1{path}", app.url))
        .bearer_auth(client.access_token().expect("signed in"))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    if status == 200 {
        Ok(response.json().await.expect("body"))
    } else {
        let problem = response
            .json::<socket_hub_protocol::rest::Problem>()
            .await
            .ok();
        Err((status, problem.map(|p| p.code)))
    }
}

fn many_rooms(c: &mut socket_hub::Config) {
    c.room_create_burst = 100;
}

#[tokio::test]
async fn room_lists_page_with_after_and_limit_until_next_is_absent() {
    on_both_backends_with(many_rooms, |app| async move {
        let (alice, _) = app.user("alice").await;
        let mut created = Vec::new();
        for i in 0..5 {
            let room = alice
                .create_room(&format!("room {i}"), false, None)
                .await
                .expect("room");
            created.push(room.room.id);
        }
        let mut seen = Vec::new();
        let mut path = "/rooms?limit=2".to_owned();
        let mut pages = 0;
        loop {
            let page: RoomList = get(&app, &alice, &path).await.expect("page");
            pages += 1;
            assert!(page.rooms.len() <= 2);
            seen.extend(page.rooms.iter().map(|r| r.room.id));
            match page.next {
                Some(next) => path = format!("/rooms?limit=2&after={next}"),
                None => break,
            }
        }
        assert_eq!(seen, created, "every room once, in id order");
        assert_eq!(pages, 3, "the last page is never an empty one");
        // The default page holds them all here; the SDK follows `next` itself.
        let page: RoomList = get(&app, &alice, "/rooms").await.expect("page");
        assert_eq!(page.rooms.len(), 5);
        assert!(page.next.is_none());
        // Out-of-range limits are refused, not silently cut.
        for bad in [
            "/rooms?limit=0",
            "/rooms?limit=501",
            "/rooms/joined?limit=0",
        ] {
            let err = get::<RoomList>(&app, &alice, bad).await.expect_err(bad);
            assert_eq!(err, (422, Some(ErrorCode::InvalidInput)), "{bad}");
        }
        let page: RoomList = get(&app, &alice, "/rooms?limit=500").await.expect("max");
        assert_eq!(page.rooms.len(), 5);
        app
    })
    .await;
}

#[tokio::test]
async fn spam_rooms_cannot_hide_the_callers_own_rooms() {
    on_both_backends_with(many_rooms, |app| async move {
        let (spammer, _) = app.user("spammer").await;
        let (victim, _) = app.user("victim").await;
        let (other, _) = app.user("other").await;
        let public = other
            .create_room("older public", false, None)
            .await
            .expect("room");
        victim
            .join_room(public.room.id, None)
            .await
            .expect("victim joins an older room");
        for i in 0..12 {
            spammer
                .create_room(&format!("spam {i}"), false, None)
                .await
                .expect("spam");
        }
        let own = victim
            .create_room("my private", true, Some("a-long-access-code"))
            .await
            .expect("own room");
        // A page of the directory is full of spam...
        let directory: RoomList = get(&app, &victim, "/rooms?limit=10").await.expect("page");
        assert!(!directory.rooms.iter().any(|r| r.room.id == own.room.id));
        assert!(directory.next.is_some(), "and says there is more");
        // ...while the caller's own rooms come whole from their own endpoint.
        let mine: RoomList = get(&app, &victim, "/rooms/joined?limit=10")
            .await
            .expect("mine");
        let ids: Vec<_> = mine.rooms.iter().map(|r| r.room.id).collect();
        assert_eq!(ids, vec![public.room.id, own.room.id]);
        assert!(mine.rooms.iter().all(|r| r.room.is_member));
        assert!(mine.next.is_none());
        // Paging joined rooms works the same way.
        let first: RoomList = get(&app, &victim, "/rooms/joined?limit=1")
            .await
            .expect("p1");
        assert_eq!(first.next, Some(public.room.id));
        let second: RoomList = get(
            &app,
            &victim,
            &format!("/rooms/joined?limit=1&after={}", public.room.id),
        )
        .await
        .expect("p2");
        assert_eq!(second.rooms[0].room.id, own.room.id);
        assert!(second.next.is_none());
        // The SDK follows `next`: the whole directory, the private room included.
        let all = victim.list_rooms().await.expect("all");
        assert_eq!(all.len(), 14);
        assert!(all.iter().any(|r| r.room.id == own.room.id));
        assert_eq!(victim.joined_rooms().await.expect("joined").len(), 2);
        // Others never see the private room in any page.
        let spam_view = spammer.list_rooms().await.expect("all");
        assert!(!spam_view.iter().any(|r| r.room.id == own.room.id));
        app
    })
    .await;
}

#[tokio::test]
async fn members_page_with_after_and_limit() {
    on_both_backends_with(
        |_| {},
        |app| async move {
            let (owner, _) = app.user("owner").await;
            let room = owner
                .create_room("club", false, None)
                .await
                .expect("room")
                .room;
            let mut ids = vec![owner.me().await.expect("me").id];
            for i in 0..4 {
                let (member, session) = app.user(&format!("member{i}")).await;
                member.join_room(room.id, None).await.expect("join");
                ids.push(session.user.id);
            }
            let base = format!("/rooms/{}/members", room.id);
            let first: MemberList = get(&app, &owner, &format!("{base}?limit=2"))
                .await
                .expect("p1");
            assert_eq!(first.members.len(), 2);
            let next = first.next.expect("more");
            let rest: MemberList = get(&app, &owner, &format!("{base}?limit=10&after={next}"))
                .await
                .expect("p2");
            assert!(rest.next.is_none());
            let paged: Vec<_> = first
                .members
                .iter()
                .chain(&rest.members)
                .map(|m| m.user.id)
                .collect();
            assert_eq!(paged, ids, "every member once, in user-id order");
            let err = get::<MemberList>(&app, &owner, &format!("{base}?limit=501"))
                .await
                .expect_err("too big");
            assert_eq!(err, (422, Some(ErrorCode::InvalidInput)));
            let all = owner.members(room.id).await.expect("SDK follows next");
            assert_eq!(all.members.len(), 5);
            app
        },
    )
    .await;
}

#[tokio::test]
async fn openapi_documents_the_cursor_of_every_list() {
    let app = spawn_with(|_| {}).await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/openapi.json", app.url))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    for path in [
        "/api/v1/rooms",
        "/api/v1/rooms/joined",
        "/api/v1/rooms/{id}/members",
    ] {
        let params = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has parameters"));
        for name in ["after", "limit"] {
            assert!(
                params.iter().any(|p| p["name"] == name),
                "{path} documents {name}"
            );
        }
    }
    for schema in ["RoomList", "MemberList"] {
        assert!(
            doc["components"]["schemas"][schema]["properties"]["next"].is_object(),
            "{schema} has next"
        );
    }
}
