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

/// Starts the hub on an ephemeral loopback port; returns its base URL.
pub(crate) async fn spawn() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let rooms = Rooms::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, rooms.clone()));
        }
    });
    url
}

async fn serve(stream: TcpStream, rooms: Rooms) {
    // The load tool never reads `from`, so the user id in the query is not parsed here.
    let user = "anonymous";
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
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
                rooms
                    .lock()
                    .expect("rooms lock")
                    .entry(room.clone())
                    .or_default()
                    .push(tx.clone());
                let _ = tx.send(json!({"type": "joined", "room": room}).to_string());
            }
            Some("send") => {
                let text = json!({
                    "type": "msg", "room": room, "from": user,
                    "id": frame["id"], "body": frame["body"],
                })
                .to_string();
                if let Some(members) = rooms.lock().expect("rooms lock").get(&room) {
                    for member in members {
                        let _ = member.send(text.clone());
                    }
                }
                let _ = tx.send(json!({"type": "ack", "id": frame["id"]}).to_string());
            }
            _ => {}
        }
    }
}
