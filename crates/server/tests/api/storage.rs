//! The embedded database running out of space: nothing is acknowledged that is not
//! stored, failures are the retryable `unavailable`, and the server recovers by itself.

use std::collections::BTreeMap;

use socket_hub_protocol::ErrorCode;
use sqlx::{Connection as _, SqliteConnection};

use crate::helpers::{WAIT, duo, spawn_with};
use crate::support::{Outcome, send_for_outcome};

/// The database's page cap: a few hundred KiB, most of it taken by ballast.
const MAX_PAGES: u32 = 300;
/// Pages left to the server once the ballast is in.
const HEADROOM_PAGES: i64 = 12;

/// A connection of the test's own to the database file, outside the server's page cap.
async fn side_connection(app: &crate::helpers::TestApp) -> SqliteConnection {
    let path = app.dir.path().join("socket-hub.db");
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("side connection")
}

/// Every stored message of `room_id`: seq -> (id, client_msg_id).
async fn stored(side: &mut SqliteConnection, room_id: i64) -> BTreeMap<i64, (i64, String)> {
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT seq, id, client_msg_id FROM messages WHERE room_id = $1")
            .bind(room_id)
            .fetch_all(&mut *side)
            .await
            .expect("read messages");
    rows.into_iter()
        .map(|(seq, id, cid)| (seq, (id, cid)))
        .collect()
}

#[tokio::test]
async fn a_full_database_refuses_sends_as_unavailable_and_recovers_when_space_frees() {
    let app = spawn_with(|c| c.sqlite_max_pages = Some(MAX_PAGES)).await;
    let mut duo = duo(&app).await;
    let room_id = duo.room.id;
    let http = reqwest::Client::new();
    let readyz = |http: reqwest::Client| {
        let url = format!("{}/readyz", app.url);
        async move { http.get(url).send().await.expect("readyz").status() }
    };
    assert_eq!(readyz(http.clone()).await, 200);

    // Ballast in a table of the test's own leaves the server a few pages.
    let mut side = side_connection(&app).await;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut side)
        .await
        .expect("page count");
    let ballast_pages = i64::from(MAX_PAGES) - pages - HEADROOM_PAGES;
    sqlx::query("CREATE TABLE ballast (b BLOB NOT NULL)")
        .execute(&mut side)
        .await
        .expect("ballast table");
    sqlx::query("INSERT INTO ballast VALUES (zeroblob($1))")
        .bind(ballast_pages * 4_000)
        .execute(&mut side)
        .await
        .expect("ballast");

    // Send until the database is full, then a few more.
    let content = "x".repeat(3_000);
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 0..200 {
        let id = format!("m{i}");
        match send_for_outcome(&mut duo.a, room_id, &id, &content, WAIT).await {
            Outcome::Acked(message) => acked.push(message),
            Outcome::Refused(code, reference) => {
                assert_eq!(
                    (code, reference.as_deref()),
                    (ErrorCode::Unavailable, Some(id.as_str())),
                    "a full disk is the retryable `unavailable`, naming the send"
                );
                refused += 1;
                if refused == 4 {
                    break;
                }
            }
        }
    }
    assert_eq!(refused, 4, "the database never filled up");
    assert!(!acked.is_empty(), "the headroom took no message at all");
    assert_eq!(readyz(http.clone()).await, 503, "not ready while full");

    // The writer is not sitting in a transaction: another connection can take the
    // write lock (it waits out the busy timeout if the writer holds it).
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut side)
        .await
        .expect("the write lock is free");
    sqlx::query("ROLLBACK")
        .execute(&mut side)
        .await
        .expect("rollback");
    // Every acknowledged message is stored, with the seq and id it was acked with.
    let on_disk = stored(&mut side, room_id).await;
    for message in &acked {
        assert_eq!(
            on_disk.get(&message.seq),
            Some(&(
                message.id,
                message.client_msg_id.clone().unwrap_or_default()
            )),
            "acked message seq {} is not stored",
            message.seq
        );
    }
    assert_eq!(
        on_disk.len(),
        acked.len(),
        "nothing unacknowledged was stored"
    );

    // Free the space: the server takes writes again, without a restart.
    sqlx::query("DROP TABLE ballast")
        .execute(&mut side)
        .await
        .expect("drop ballast");
    assert_eq!(readyz(http.clone()).await, 200, "ready again");
    let last = acked.last().map_or(0, |m| m.seq);
    let after = match send_for_outcome(&mut duo.a, room_id, "after", "space again", WAIT).await {
        Outcome::Acked(message) => message,
        Outcome::Refused(code, _) => panic!("still refused with {code:?}"),
    };
    assert_eq!(after.seq, last + 1, "refused sends burned no seq");
    let on_disk = stored(&mut side, room_id).await;
    assert_eq!(
        on_disk.get(&after.seq),
        Some(&(after.id, "after".to_owned()))
    );
    let max_id = acked.iter().map(|m| m.id).max().unwrap_or(0);
    assert!(after.id > max_id, "message ids are not reused");
    app.client()
        .register("latecomer", crate::helpers::PASSWORD)
        .await
        .expect("registration works again");
    drop(side);

    // And all of it survives a restart.
    let app = app.restart().await;
    let (client, _) = app.user("reader").await;
    client.join_room(room_id, None).await.expect("join");
    let history = client
        .history(room_id, None, Some(100))
        .await
        .expect("history")
        .messages;
    let seqs: Vec<_> = history.iter().rev().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=after.seq).collect::<Vec<_>>());
}
