//! A minimal hub speaking the peer protocol of `bench/peers/README.md`, so the load
//! tool's peer target is tested without Node or Go installed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Rooms = Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<String>>>>>;

/// How the hub orders a room's first message.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// As it comes.
    Plain,
    /// The second member's first message reaches the first member as soon as the
    /// second joins, before the load tool can have told its connections to start: what
    /// a connection sees when a room-mate saw the start first and the connection's own
    /// thread was preempted before it looked at the start signal.
    SecondSpeaksFirst,
}

/// Starts the hub on an ephemeral loopback port; returns its base URL.
pub(crate) async fn spawn() -> String {
    spawn_with(Order::Plain).await
}

/// [`spawn`] with a message order of its own.
pub(crate) async fn spawn_with(order: Order) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let rooms = Rooms::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, rooms.clone(), order));
        }
    });
    url
}

async fn serve(stream: TcpStream, rooms: Rooms, order: Order) {
    // The load tool never reads `from`, so the user id in the query is not parsed here.
    let user = "anonymous";
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    // SecondSpeaksFirst: this connection is its room's second member and its first
    // message already went to the first member.
    let mut spoke_early = false;
    tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(message)) = source.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
            continue;
        };
        let room = frame["room"].as_str().unwrap_or_default().to_owned();
        match frame["type"].as_str() {
            Some("join") => {
                {
                    let mut rooms = rooms.lock().expect("rooms lock");
                    let members = rooms.entry(room.clone()).or_default();
                    members.push(tx.clone());
                    let joined = json!({"type": "joined", "room": room}).to_string();
                    if order == Order::SecondSpeaksFirst && members.len() == 2 {
                        let early = json!({
                            "type": "msg", "room": room, "from": user, "id": "early",
                            "body": "0 early",
                        });
                        let _ = members[0].send(early.to_string());
                        spoke_early = true;
                    } else {
                        // Queued under the lock, so no room-mate's message can reach
                        // this connection before its `joined` (one did, once: the
                        // first member got the early message first and dropped it).
                        let _ = tx.send(joined);
                    }
                }
                if spoke_early {
                    // Holds the start back (the load tool starts once every connection
                    // has joined), so the first member reads the message while it is
                    // still waiting for the start. Not a wait for an event: it only
                    // widens the window the test is about.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let _ = tx.send(json!({"type": "joined", "room": room}).to_string());
                }
            }
            Some("send") => {
                let text = json!({
                    "type": "msg", "room": room, "from": user,
                    "id": frame["id"], "body": frame["body"],
                })
                .to_string();
                if let Some(members) = rooms.lock().expect("rooms lock").get(&room) {
                    for member in members {
                        if std::mem::take(&mut spoke_early) && !member.same_channel(&tx) {
                            continue;
                        }
                        let _ = member.send(text.clone());
                    }
                }
                let _ = tx.send(json!({"type": "ack", "id": frame["id"]}).to_string());
            }
            _ => {}
        }
    }
}
