//! Full-text search (issue 11): `GET /search` over the rooms and DMs the caller is a
//! member of, ranked, paginated by cursor, with snippets; never rooms they cannot see,
//! never room events, edits reindex and erased messages never match; user input is
//! never query syntax. Every test runs on SQLite (a file, so messages go through the
//! appender's own connection and the FTS5 triggers) and on PostgreSQL.

use std::collections::HashSet;

use socket_hub_client::Client;
use socket_hub_protocol::rest::{SearchResults, Session, UpdateRoom};
use socket_hub_protocol::{ErrorCode, RoomId};

type MessageId = i64;

use crate::helpers::{
    FORBIDDEN, INVALID, NOT_FOUND, TestApp, on_both_backends_with, refused, spawn_with,
};

/// Searches are rate-limited; these tests search a lot.
fn roomy_quota(config: &mut socket_hub::Config) {
    config.user_search_burst = 1000;
}

async fn say(client: &Client, room_id: RoomId, content: &str) -> MessageId {
    client
        .send_message(room_id, content, None)
        .await
        .expect("send")
        .id
}

async fn search(client: &Client, q: &str) -> SearchResults {
    client.search(q, None, None, None).await.expect("search")
}

fn ids(results: &SearchResults) -> Vec<MessageId> {
    results.hits.iter().map(|h| h.message.id).collect()
}

/// Sets a stored message's content directly, as an edit or a deletion (which erases the
/// content) does.
async fn set_content(app: &TestApp, id: MessageId, content: &str) {
    let db = app.state.store.db();
    let mut tx = db.begin().await.expect("begin");
    sqlx::query("UPDATE messages SET content = $1 WHERE id = $2")
        .bind(content)
        .bind(id)
        .execute(&mut *tx)
        .await
        .expect("update");
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn search_finds_only_messages_of_my_rooms_ranked_with_snippets() {
    on_both_backends_with(roomy_quota, |app| async move {
        let (alice, _) = app.user("alice").await;
        let (bob, _) = app.user("bob").await;
        let (carol, _) = app.user("carol").await;
        let general = alice
            .create_room("general", false, None)
            .await
            .expect("room")
            .room;
        bob.join_room(general.id, None).await.expect("join");
        let secret = alice
            .create_room("secret", true, Some("correct horse code"))
            .await
            .expect("private")
            .room;
        let elsewhere = carol
            .create_room("elsewhere", false, None)
            .await
            .expect("room")
            .room;
        let dm = alice.open_direct("bob").await.expect("dm").room.room;

        for i in 0..8 {
            say(
                &alice,
                general.id,
                &format!("filler number {i} about nothing"),
            )
            .await;
        }
        let best = say(&alice, general.id, "zephyr zephyr zephyr wind").await;
        let weak = say(
            &bob,
            general.id,
            "a zephyr went by on a long and slow summer afternoon by the sea",
        )
        .await;
        let in_dm = say(&alice, dm.id, "our zephyr <b>secret</b> & stuff").await;
        say(&alice, secret.id, "zephyr in the private room").await;
        say(
            &carol,
            elsewhere.id,
            "zephyr in a public room bob never joined",
        )
        .await;

        let found = search(&bob, "Zephyr").await;
        assert_eq!(found.next, None);
        let mut got = ids(&found);
        assert_eq!(got[0], best, "most relevant first: {found:?}");
        got.sort_unstable();
        let mut want = vec![best, weak, in_dm];
        want.sort_unstable();
        assert_eq!(got, want, "only rooms and DMs bob is in");

        // Snippets are plain-text pieces; the matched word is a hit, markup stays text.
        let hit = found
            .hits
            .iter()
            .find(|h| h.message.id == in_dm)
            .expect("dm hit");
        let text: String = hit.snippet.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(text, "our zephyr <b>secret</b> & stuff");
        let marked: Vec<_> = hit
            .snippet
            .iter()
            .filter(|p| p.hit)
            .map(|p| p.text.as_str())
            .collect();
        assert_eq!(marked, ["zephyr"]);

        // Every word is required; a trailing * makes a prefix.
        assert_eq!(ids(&search(&bob, "zephyr summer").await), [weak]);
        assert_eq!(ids(&search(&bob, "summ*").await), [weak]);
        assert_eq!(ids(&search(&bob, "summ").await), Vec::<MessageId>::new());

        // Narrowed to one room.
        let only = bob
            .search("zephyr", Some(dm.id), None, None)
            .await
            .expect("in dm");
        assert_eq!(ids(&only), [in_dm]);
        // Rooms bob is not in are refused like their history: a private room of others
        // does not exist for him, a public one needs joining first.
        assert_eq!(
            refused(bob.search("zephyr", Some(secret.id), None, None).await),
            NOT_FOUND
        );
        assert_eq!(
            refused(bob.search("zephyr", Some(elsewhere.id), None, None).await),
            FORBIDDEN
        );
        assert_eq!(
            refused(bob.search("zephyr", Some(999_999), None, None).await),
            NOT_FOUND
        );
        // Leaving a room takes its messages out of my results.
        bob.leave_room(general.id).await.expect("leave");
        assert_eq!(ids(&search(&bob, "zephyr").await), [in_dm]);
        app
    })
    .await;
}

#[tokio::test]
async fn search_pages_by_cursor_without_repeats_or_gaps() {
    on_both_backends_with(roomy_quota, |app| async move {
        let (alice, _) = app.user("alice").await;
        let room = alice
            .create_room("pages", false, None)
            .await
            .expect("room")
            .room;
        for i in 0..4 {
            say(&alice, room.id, &format!("unrelated chatter {i}")).await;
        }
        let mut all = Vec::new();
        for i in 0..7 {
            // Different lengths and repeats, so ranks differ, and two exact ties.
            let content = match i {
                0 | 1 => "nebula".to_owned(),
                _ => format!("{} with {i} more words here", "nebula ".repeat(i % 3 + 1)),
            };
            all.push(say(&alice, room.id, &content).await);
        }
        let whole = alice
            .search("nebula", None, None, Some(50))
            .await
            .expect("all");
        assert_eq!(whole.hits.len(), 7);

        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        for _ in 0..10 {
            let page = alice
                .search("nebula", None, before.as_deref(), Some(3))
                .await
                .expect("page");
            assert!(page.hits.len() <= 3);
            seen.extend(ids(&page));
            before = page.next;
            if before.is_none() {
                break;
            }
        }
        assert_eq!(seen, ids(&whole), "pages concatenate to the whole ranking");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);

        // A cursor survives new messages arriving between pages (no repeats).
        let first = alice
            .search("nebula", None, None, Some(3))
            .await
            .expect("first");
        say(&alice, room.id, "nebula nebula nebula").await;
        let second = alice
            .search("nebula", None, first.next.as_deref(), Some(50))
            .await
            .expect("second");
        let firsts: HashSet<_> = ids(&first).into_iter().collect();
        assert!(
            ids(&second).iter().all(|id| !firsts.contains(id)),
            "no repeats"
        );

        assert_eq!(
            refused(alice.search("nebula", None, Some("garbage"), None).await),
            INVALID
        );
        assert_eq!(
            refused(alice.search("nebula", None, Some("NaN_4"), None).await),
            INVALID
        );
        assert_eq!(
            refused(alice.search("nebula", None, None, Some(0)).await),
            INVALID
        );
        assert_eq!(
            refused(alice.search("nebula", None, None, Some(51)).await),
            INVALID
        );
        app
    })
    .await;
}

#[tokio::test]
async fn room_events_never_match_edits_reindex_and_erased_messages_vanish() {
    on_both_backends_with(roomy_quota, |app| async move {
        let (alice, _) = app.user("alice").await;
        let room = alice
            .create_room("lobby", false, None)
            .await
            .expect("room")
            .room;
        // A room event whose text has the word: stored in the stream, never found.
        alice
            .update_room(
                room.id,
                &UpdateRoom {
                    topic: Some("quokka appreciation".into()),
                    ..UpdateRoom::default()
                },
            )
            .await
            .expect("topic");
        assert!(search(&alice, "quokka").await.hits.is_empty());

        let id = say(&alice, room.id, "meet the quokka at noon").await;
        assert_eq!(ids(&search(&alice, "quokka").await), [id]);
        // An edit (the content updated in place) reindexes.
        set_content(&app, id, "meet the wombat at noon").await;
        assert!(search(&alice, "quokka").await.hits.is_empty());
        let found = search(&alice, "wombat").await;
        assert_eq!(ids(&found), [id]);
        assert_eq!(found.hits[0].message.content, "meet the wombat at noon");
        // A deletion erases the content: nothing matches it any more.
        set_content(&app, id, "").await;
        assert!(search(&alice, "wombat").await.hits.is_empty());
        assert!(search(&alice, "noon").await.hits.is_empty());
        // Deleting the room (cascading its messages) leaves no stale entry behind.
        let other = alice
            .create_room("doomed", false, None)
            .await
            .expect("room")
            .room;
        say(&alice, other.id, "ephemeral aardvark").await;
        alice.delete_room(other.id).await.expect("delete");
        assert!(search(&alice, "aardvark").await.hits.is_empty());
        say(&alice, room.id, "the aardvark is back").await;
        assert_eq!(search(&alice, "aardvark").await.hits.len(), 1);
        app
    })
    .await;
}

#[tokio::test]
async fn query_syntax_is_never_interpreted_and_bad_queries_are_422() {
    on_both_backends_with(roomy_quota, |app| async move {
        let (alice, _) = app.user("alice").await;
        let room = alice
            .create_room("syntax", false, None)
            .await
            .expect("room")
            .room;
        let id = say(&alice, room.id, "near the column: select or not").await;
        for q in [
            "\"unbalanced",
            "NEAR(near column",
            "content:near",
            "near AND OR NOT",
            "-near",
            "^near",
            "near'); DROP TABLE messages; --",
            "near & | ! <-> :* column",
            "(near) {column}",
            "near**",
        ] {
            let found = alice.search(q, None, None, None).await;
            let found = found.unwrap_or_else(|e| panic!("{q:?} failed: {e:?}"));
            assert!(found.hits.iter().all(|h| h.message.id == id), "{q:?}");
        }
        assert_eq!(ids(&search(&alice, "(near) column: NOT*").await), [id]);
        for q in ["", "   ", "*", "\"\" ()", "-- !!"] {
            assert_eq!(
                refused(alice.search(q, None, None, None).await),
                INVALID,
                "{q:?}"
            );
        }
        assert_eq!(
            refused(alice.search(&"a".repeat(257), None, None, None).await),
            INVALID
        );
        assert_eq!(
            refused(alice.search("a\u{0}b", None, None, None).await),
            INVALID
        );
        app
    })
    .await;
}

#[tokio::test]
async fn search_is_rate_limited_per_user() {
    let app = spawn_with(|c| {
        c.user_search_burst = 2;
        c.user_search_per_sec = 0.001;
    })
    .await;
    let (alice, _) = app.user("alice").await;
    let (bob, _) = app.user("bob").await;
    for _ in 0..2 {
        alice
            .search("anything", None, None, None)
            .await
            .expect("within quota");
    }
    let err = alice
        .search("anything", None, None, None)
        .await
        .expect_err("limited");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.code(), Some(ErrorCode::RateLimited));
    // Shared with the people search, and per user.
    assert_eq!(
        refused(alice.search_users("bo", None, None).await).0,
        Some(429)
    );
    bob.search("anything", None, None, None)
        .await
        .expect("bob has his own");
}

/// A SQLite app whose message writer indexes for search after `idle_ms` without
/// appends, with alice and her room "lobby".
async fn sqlite_lobby(idle_ms: u64) -> (TestApp, Client, Session, RoomId) {
    let app = spawn_with(move |c| {
        roomy_quota(c);
        c.search_index_idle_ms = idle_ms;
    })
    .await;
    let (alice, session) = app.user("alice").await;
    let room = alice
        .create_room("lobby", false, None)
        .await
        .expect("room")
        .room;
    (app, alice, session, room.id)
}

/// The index watermark of a SQLite app (see `rooms/search_index.rs`).
async fn indexed_upto(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT indexed_upto FROM search_progress")
        .fetch_one(app.state.store.db().reader())
        .await
        .expect("watermark")
}

/// FTS5's own consistency check of the index structure, after merging its segments: an
/// index once told to delete a row it did not hold, or given a row twice, is reported
/// malformed here (or by the searches around it).
async fn assert_index_sound(app: &TestApp) {
    let db = app.state.store.db();
    let mut tx = db.begin().await.expect("begin");
    for check in [
        "INSERT INTO messages_fts (messages_fts) VALUES ('optimize')",
        "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 0)",
    ] {
        sqlx::query(check)
            .execute(&mut *tx)
            .await
            .expect("the FTS5 index is consistent");
    }
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn sqlite_indexes_after_the_ack_and_changes_before_indexing_are_not_lost() {
    // No indexing for being idle during this test: only searches index.
    let (mut app, alice, _, room) = sqlite_lobby(60_000).await;
    // Acked but not yet indexed (the indexer waits for a backlog or an idle minute, and
    // nothing has searched): then changed while above the watermark.
    let edited = say(&alice, room, "the numbat sleeps").await;
    let erased = say(&alice, room, "the bilby digs").await;
    let kept = say(&alice, room, "the bilby and the numbat").await;
    assert!(
        indexed_upto(&app).await < edited,
        "indexed before any search"
    );
    set_content(&app, edited, "the quoll sleeps").await;
    set_content(&app, erased, "").await;
    let doomed = alice
        .create_room("doomed", false, None)
        .await
        .expect("room")
        .room;
    say(&alice, doomed.id, "the bilby left").await;
    alice.delete_room(doomed.id).await.expect("delete");
    assert_index_sound(&app).await;

    // A search first indexes everything acknowledged, as it is now.
    assert_eq!(ids(&search(&alice, "quoll").await), [edited]);
    assert_eq!(ids(&search(&alice, "numbat").await), [kept]);
    assert_eq!(ids(&search(&alice, "bilby").await), [kept]);
    assert!(indexed_upto(&app).await >= kept);
    assert_index_sound(&app).await;

    // Below the watermark the triggers keep the index in step.
    set_content(&app, kept, "").await;
    assert!(search(&alice, "bilby").await.hits.is_empty());
    assert_index_sound(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn sqlite_indexes_without_a_search_once_the_writer_is_idle() {
    let (mut app, alice, _, room) = sqlite_lobby(50).await;
    let later = say(&alice, room, "the quokka naps").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while indexed_upto(&app).await < later {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the idle appender never indexed message {later}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let hits: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH 'quokka'")
            .fetch_one(app.state.store.db().reader())
            .await
            .expect("match");
    assert_eq!(hits, 1);
    assert_index_sound(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn sqlite_indexes_while_busy_once_a_backlog_waits() {
    // Never idle long enough: only the backlog makes the writer index.
    let (mut app, alice, session, room) = sqlite_lobby(60_000).await;
    let append = |content: String| {
        let store = app.state.store.clone();
        let user = session.user.clone();
        async move {
            let appended = store
                .messages
                .append(socket_hub::rooms::NewMessage {
                    room_id: room,
                    user: &user,
                    client_msg_id: None,
                    content: &content,
                    reply_to: None,
                    attachments: None,
                })
                .await
                .expect("append");
            match appended {
                socket_hub::rooms::Appended::Stored(message) => message.id,
                other => panic!("not stored: {other:?}"),
            }
        }
    };
    // More than a backlog's worth, concurrently, so they form batches as under load.
    let tasks: Vec<_> = (0..2100)
        .map(|i| tokio::spawn(append(format!("busy message {i}"))))
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("append task"));
    }
    ids.sort_unstable();
    // The writer indexes between batches, on its own thread: a message stored after the
    // backlog was reached is stored after the chunk it triggered.
    append("one more".into()).await;
    assert!(
        indexed_upto(&app).await >= ids[2047],
        "2048 messages waited and none was indexed"
    );
    assert_index_sound(&app).await;
    assert_eq!(search(&alice, "busy").await.hits.len(), 20);
    app.stop().await;
}
