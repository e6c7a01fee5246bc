//! PostgreSQL out of reach under connected clients (the path between the server and the
//! database cut, as a partition or a lost database host would): joins and sends get a
//! retryable `unavailable` error on a connection that stays open, a new connection is
//! told to come back later (not to log in again), nothing acknowledged is lost, and a
//! retried send is stored exactly once when the database is back.

use socket_hub_client::{Auth, Connection};
use socket_hub_protocol::{ClientFrame, CloseCode, ErrorCode, ServerFrame};

use crate::support::{ClusterConfig, Instance, Partition};
use crate::{
    Cluster, WAIT, connect, join, message, next_seq, room_with_members, send_many, stored_ids,
};

/// The next `error` frame on `ws` as (code, ref); a success instead fails the test.
async fn next_error(ws: &mut Connection) -> (ErrorCode, Option<String>) {
    ws.wait_for(WAIT, |f| match f {
        ServerFrame::Error {
            code, reference, ..
        } => Some((*code, reference.clone())),
        ServerFrame::Ack { .. } | ServerFrame::RoomJoined { .. } => {
            panic!("succeeded without its database: {f:?}")
        }
        _ => None,
    })
    .await
    .expect("an error frame, not a hang")
}

#[tokio::test]
async fn a_database_outage_gives_retryable_errors_and_loses_nothing_acknowledged() {
    let cluster = Cluster::new().await;
    let partition = Partition::to(cluster.db.as_ref().expect("database")).await;
    let config = ClusterConfig::new(&partition.url, &cluster.redis.url());
    let instance = Instance::start(&config, &[]).await;
    let (room_id, sessions) = room_with_members(&instance.url, 1).await;
    let mut sender = connect(&instance.url, &sessions[0]).await.expect("connect");
    join(&mut sender, room_id, None).await.expect("join");
    let mut reader = connect(&instance.url, &sessions[1]).await.expect("connect");
    assert_eq!(
        send_many(&mut sender, room_id, "before", 3).await,
        [1, 2, 3]
    );

    partition.cut();
    let join_frame = ClientFrame::JoinRoom {
        room_id,
        since_seq: Some(0),
        access_code: None,
    };
    reader.send(&join_frame).await.expect("send join");
    assert_eq!(
        next_error(&mut reader).await,
        (ErrorCode::Unavailable, Some(room_id.to_string()))
    );
    sender
        .send(&message(room_id, "during".into(), "during".into()))
        .await
        .expect("send");
    assert_eq!(
        next_error(&mut sender).await,
        (ErrorCode::Unavailable, Some("during".into()))
    );
    // Both connections are still served.
    for ws in [&mut reader, &mut sender] {
        ws.send(&ClientFrame::Ping).await.expect("ping");
        ws.wait_for(WAIT, |f| (*f == ServerFrame::Pong).then_some(()))
            .await
            .expect("pong during the outage");
    }
    // A connection that cannot have its token checked is told to retry, with a close
    // code that does not send the client back to the login screen.
    let mut late = Connection::connect(
        &instance.url,
        Auth::Header(sessions[1].access_token.clone()),
    )
    .await
    .expect("upgrade");
    assert_eq!(
        next_error(&mut late).await,
        (ErrorCode::Unavailable, None),
        "the token check could not reach the database"
    );
    assert_eq!(
        late.closed_within(WAIT).await.expect("closed"),
        Some(CloseCode::TRY_AGAIN_LATER)
    );

    partition.mend();
    // The client retries what failed, as told: the join replays everything stored, the
    // send is stored once with the next seq.
    reader.send(&join_frame).await.expect("send join");
    reader
        .wait_for(WAIT, |f| {
            matches!(f, ServerFrame::RoomJoined { .. }).then_some(())
        })
        .await
        .expect("join after the outage");
    sender
        .send(&message(room_id, "during".into(), "during".into()))
        .await
        .expect("send");
    let retried = sender
        .wait_for(WAIT, |f| match f {
            ServerFrame::Ack { message, .. } => Some(message.seq),
            ServerFrame::Error { .. } => panic!("retry failed: {f:?}"),
            _ => None,
        })
        .await
        .expect("ack after the outage");
    assert_eq!(retried, 4, "the failed send took no seq");
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(next_seq(&mut reader).await.expect("chat"));
    }
    assert_eq!(seen, [1, 2, 3, 4]);
    assert_eq!(
        stored_ids(&instance.url, &sessions[1], room_id).await,
        ["during", "before-2", "before-1", "before-0"],
        "newest first"
    );
    drop(partition);
    cluster.finish().await;
}
