//! One client connection to either kind of server, with the few operations the
//! scenarios need: join a room, send a timestamped message, read what comes back.

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use socket_hub_client::{Auth, Connection, RawEvent, WebSocketConfig};
use socket_hub_protocol::{ClientFrame, RoomId, ServerFrame};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::LoadError;
use crate::options::Target;

/// How long one connect (TCP, handshake) or one join may take before it counts as failed.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A room as both targets name it: Socket-Hub by id, the peers by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RoomRef {
    pub(crate) id: RoomId,
    pub(crate) name: String,
}

/// Where and how connection number `index` connects.
#[derive(Debug, Clone)]
pub(crate) struct Dial<'a> {
    pub(crate) target: Target,
    pub(crate) url: &'a str,
    pub(crate) addr: SocketAddr,
    /// Socket-Hub access token (unused by peers).
    pub(crate) token: &'a str,
    /// Peer user id (unused by Socket-Hub, where the token names the user).
    pub(crate) user: String,
    pub(crate) index: usize,
    pub(crate) source_ips: u8,
    /// Bytes read from the socket at a time: small for idle holds (tens of thousands of
    /// connections in one process), large for receivers of a hot room.
    pub(crate) read_buffer: usize,
}

/// An open connection.
pub(crate) enum Link {
    Hub(Box<Connection>),
    Peer(Box<WebSocketStream<TcpStream>>),
}

/// What arrived, reduced to what the scenarios count.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A message in a room; `sent_at` is the sender's timestamp (µs on the run clock).
    Msg {
        room: RoomId,
        sent_at: u64,
        seq: Option<i64>,
    },
    /// The sender's acknowledgement of its own message.
    Ack { sent_at: u64 },
    /// The server refused something (rate limit, validation).
    Error(String),
    /// Presence, typing, pings: not counted.
    Other,
    /// The connection ended.
    Closed(String),
}

/// Read buffer for connections that are only held (`idle`, `connect-storm`).
pub(crate) const HOLD_READ_BUFFER: usize = 4096;
/// Read buffer for connections that receive a stream: one read takes a whole burst.
pub(crate) const TRAFFIC_READ_BUFFER: usize = 16 * 1024;

/// WebSocket buffers sized per scenario; writes go out at once (a client sends little).
fn ws_config(read_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
}

/// The loopback address a URL points at; anything else is refused, because this tool
/// floods what it targets and must only ever hit this machine.
pub(crate) async fn loopback_addr(url: &str) -> Result<SocketAddr, LoadError> {
    let host = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| LoadError::Invalid(format!("{url}: use http://host:port")))?
        .split('/')
        .next()
        .unwrap_or_default();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host)
        .await
        .map_err(|e| LoadError::Invalid(format!("{url}: {e}")))?
        .collect();
    match addrs.first() {
        Some(addr) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok(*addr),
        _ => Err(LoadError::Invalid(format!(
            "{url}: socket-hub-load only drives servers on this machine (loopback addresses)"
        ))),
    }
}

/// A socket bound to this connection's source address.
fn socket_for(dial: &Dial<'_>) -> Result<TcpSocket, LoadError> {
    let io = |e: std::io::Error| LoadError::Connect(format!("socket: {e}"));
    match dial.addr {
        SocketAddr::V4(_) => {
            let socket = TcpSocket::new_v4().map_err(io)?;
            if dial.source_ips > 0 {
                let last = 2 + (dial.index % usize::from(dial.source_ips)) as u8;
                let source = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, last), 0);
                socket.bind(source.into()).map_err(io)?;
            }
            Ok(socket)
        }
        SocketAddr::V6(_) => TcpSocket::new_v6().map_err(io),
    }
}

impl Link {
    /// Connects (TCP and WebSocket handshake, authenticated for Socket-Hub).
    pub(crate) async fn connect(dial: &Dial<'_>) -> Result<Self, LoadError> {
        let socket = socket_for(dial)?;
        let connecting = async {
            match dial.target {
                Target::SocketHub => Connection::connect_socket(
                    dial.url,
                    Auth::Header(dial.token.to_owned()),
                    socket,
                    ws_config(dial.read_buffer),
                )
                .await
                .map(|c| Link::Hub(Box::new(c)))
                .map_err(|e| LoadError::Connect(e.to_string())),
                Target::Peer => {
                    let ws_url = format!(
                        "{}/ws?user={}",
                        dial.url.replacen("http://", "ws://", 1),
                        dial.user
                    );
                    let request = ws_url
                        .into_client_request()
                        .map_err(|e| LoadError::Connect(e.to_string()))?;
                    let stream = socket
                        .connect(dial.addr)
                        .await
                        .map_err(|e| LoadError::Connect(e.to_string()))?;
                    stream
                        .set_nodelay(true)
                        .map_err(|e| LoadError::Connect(e.to_string()))?;
                    let (ws, _) = tokio_tungstenite::client_async_with_config(
                        request,
                        stream,
                        Some(ws_config(dial.read_buffer)),
                    )
                    .await
                    .map_err(|e| LoadError::Connect(e.to_string()))?;
                    Ok(Link::Peer(Box::new(ws)))
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| LoadError::Connect("connect timed out".into()))?
    }

    /// Joins `room` and waits for the server to confirm.
    pub(crate) async fn join(&mut self, room: &RoomRef) -> Result<(), LoadError> {
        match self {
            Link::Hub(ws) => {
                ws.send(&ClientFrame::JoinRoom {
                    room_id: room.id,
                    since_seq: None,
                    access_code: None,
                })
                .await
                .map_err(|e| LoadError::Connect(e.to_string()))?;
                let joined = ws
                    .wait_for(CONNECT_TIMEOUT, |frame| match frame {
                        ServerFrame::RoomJoined { room_id, .. } if *room_id == room.id => {
                            Some(Ok(()))
                        }
                        ServerFrame::Error { code, message, .. } => {
                            Some(Err(format!("join refused: {code}: {message}")))
                        }
                        _ => None,
                    })
                    .await
                    .map_err(|e| LoadError::Connect(format!("join: {e}")))?;
                joined.map_err(LoadError::Connect)
            }
            Link::Peer(ws) => {
                let frame = serde_json::json!({"type": "join", "room": room.name});
                ws.send(Message::text(frame.to_string()))
                    .await
                    .map_err(|e| LoadError::Connect(e.to_string()))?;
                let deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
                loop {
                    let next = tokio::time::timeout_at(deadline, ws.next())
                        .await
                        .map_err(|_| LoadError::Connect("join timed out".into()))?;
                    let text = match next {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return Err(LoadError::Connect(e.to_string())),
                        None => return Err(LoadError::Connect("closed while joining".into())),
                    };
                    let frame: PeerFrame<'_> = serde_json::from_str(text.as_str())
                        .map_err(|e| LoadError::Protocol(format!("{e}: {}", text.as_str())))?;
                    match frame.kind {
                        "joined" if frame.room.as_deref() == Some(room.name.as_str()) => {
                            return Ok(());
                        }
                        "error" => {
                            return Err(LoadError::Connect(format!(
                                "join refused: {}",
                                frame.error.unwrap_or_default()
                            )));
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Sends a message whose body starts with `sent_at` and whose client id encodes it
    /// too (acks carry only the id on the peers).
    pub(crate) async fn send(
        &mut self,
        room: &RoomRef,
        id: &str,
        body: String,
    ) -> Result<(), LoadError> {
        match self {
            Link::Hub(ws) => ws
                .send(&ClientFrame::MessageSend {
                    room_id: room.id,
                    client_msg_id: id.to_owned(),
                    content: body,
                    reply_to: None,
                    attachments: Vec::new(),
                })
                .await
                .map_err(|e| LoadError::Protocol(e.to_string())),
            Link::Peer(ws) => {
                let frame = PeerSend {
                    kind: "send",
                    room: &room.name,
                    id,
                    body: &body,
                };
                let text = serde_json::to_string(&frame)
                    .map_err(|e| LoadError::Protocol(e.to_string()))?;
                ws.send(Message::text(text))
                    .await
                    .map_err(|e| LoadError::Protocol(e.to_string()))
            }
        }
    }

    /// The next thing that arrived.
    pub(crate) async fn next(&mut self, peer_room: RoomId) -> Incoming {
        match self {
            Link::Hub(ws) => match ws.next_raw().await {
                Ok(RawEvent::Text(text)) => hub_incoming(text.as_str()),
                Ok(RawEvent::Closed { code, reason }) => {
                    Incoming::Closed(format!("closed {code:?} {reason}"))
                }
                Err(e) => Incoming::Closed(e.to_string()),
            },
            Link::Peer(ws) => match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if let Some(incoming) = scan_peer(text.as_str(), peer_room) {
                        return incoming;
                    }
                    match serde_json::from_str::<PeerFrame<'_>>(text.as_str()) {
                        Ok(frame) => match frame.kind {
                            "msg" => Incoming::Msg {
                                room: peer_room,
                                sent_at: frame.body.as_deref().map_or(0, stamp),
                                seq: None,
                            },
                            "ack" => Incoming::Ack {
                                sent_at: frame.id.as_deref().map_or(0, stamp),
                            },
                            "error" => {
                                Incoming::Error(frame.error.unwrap_or_default().into_owned())
                            }
                            _ => Incoming::Other,
                        },
                        Err(e) => Incoming::Error(format!("undecodable frame: {e}")),
                    }
                }
                Some(Ok(Message::Close(frame))) => Incoming::Closed(format!("closed {frame:?}")),
                Some(Ok(_)) => Incoming::Other,
                Some(Err(e)) => Incoming::Closed(e.to_string()),
                None => Incoming::Closed("closed".into()),
            },
        }
    }

    /// Closes politely, without waiting long for the server.
    pub(crate) async fn close(self) {
        let closing = async {
            match self {
                Link::Hub(ws) => drop(ws.close().await),
                Link::Peer(mut ws) => drop(SinkExt::close(ws.as_mut()).await),
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), closing).await;
    }
}

/// Decodes only what the scenarios count from a Socket-Hub frame: the frame's type,
/// then a chat's room, seq and content or an ack's id. Decoding every field (user,
/// timestamps) would make the load generator, not the server, the bottleneck: the
/// frames a run is made of (chats, acks) are scanned without a JSON parser, anything
/// else (or anything the scan does not recognise) goes through serde.
fn hub_incoming(text: &str) -> Incoming {
    scan_hub(text).unwrap_or_else(|| decode_hub(text))
}

/// The byte scan behind [`hub_incoming`]. It relies on what serde writes for
/// `ServerFrame`: the `type` tag first, then the fields in declaration order, no
/// whitespace. A key such as `"seq":` cannot occur inside a JSON string (its quotes
/// would be escaped), and no object nested before `seq` has one, so the first match is
/// the message's own.
fn scan_hub(text: &str) -> Option<Incoming> {
    if let Some(rest) = text.strip_prefix(r#"{"type":"chat","message":{"#) {
        let (room, rest) = integer_after(rest, r#""room_id":"#)?;
        let (seq, rest) = integer_after(rest, r#""seq":"#)?;
        let content = after(rest, r#""content":""#)?;
        return Some(Incoming::Msg {
            room,
            sent_at: stamp(content),
            seq: Some(seq),
        });
    }
    let id = text.strip_prefix(r#"{"type":"ack","client_msg_id":""#)?;
    Some(Incoming::Ack { sent_at: stamp(id) })
}

/// The peers' `msg` and `ack` frames, scanned like [`scan_hub`] (the Go and Node hubs
/// write `type` first); `None` sends the frame through serde.
fn scan_peer(text: &str, peer_room: RoomId) -> Option<Incoming> {
    if let Some(rest) = text.strip_prefix(r#"{"type":"msg","#) {
        let body = after(rest, r#""body":""#)?;
        return Some(Incoming::Msg {
            room: peer_room,
            sent_at: stamp(body),
            seq: None,
        });
    }
    let id = text.strip_prefix(r#"{"type":"ack","id":""#)?;
    Some(Incoming::Ack { sent_at: stamp(id) })
}

/// The text after the first `key`.
fn after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.find(key).map(|at| &text[at + key.len()..])
}

/// The integer right after the first `key`, and the text after it.
fn integer_after<'a>(text: &'a str, key: &str) -> Option<(i64, &'a str)> {
    let rest = after(text, key)?;
    let end = rest
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b == b'-'))
        .unwrap_or(rest.len());
    Some((rest[..end].parse().ok()?, &rest[end..]))
}

/// [`hub_incoming`] through serde, for what the scan does not take.
fn decode_hub(text: &str) -> Incoming {
    #[derive(Deserialize)]
    struct Kind<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
    }
    #[derive(Deserialize)]
    struct Chat<'a> {
        #[serde(borrow)]
        message: ChatMessage<'a>,
    }
    #[derive(Deserialize)]
    struct ChatMessage<'a> {
        room_id: RoomId,
        seq: i64,
        #[serde(borrow)]
        content: Cow<'a, str>,
    }
    #[derive(Deserialize)]
    struct Ack<'a> {
        #[serde(borrow)]
        client_msg_id: Cow<'a, str>,
    }
    let undecodable = |e: serde_json::Error| Incoming::Error(format!("undecodable frame: {e}"));
    let kind = match serde_json::from_str::<Kind<'_>>(text) {
        Ok(k) => k.kind,
        Err(e) => return undecodable(e),
    };
    match kind.as_ref() {
        "chat" => match serde_json::from_str::<Chat<'_>>(text) {
            Ok(Chat { message }) => Incoming::Msg {
                room: message.room_id,
                sent_at: stamp(&message.content),
                seq: Some(message.seq),
            },
            Err(e) => undecodable(e),
        },
        "ack" => match serde_json::from_str::<Ack<'_>>(text) {
            Ok(ack) => Incoming::Ack {
                sent_at: stamp(&ack.client_msg_id),
            },
            Err(e) => undecodable(e),
        },
        "error" => match serde_json::from_str::<ServerFrame>(text) {
            Ok(ServerFrame::Error { code, message, .. }) => {
                Incoming::Error(format!("{code}: {message}"))
            }
            _ => Incoming::Error(text.to_owned()),
        },
        _ => Incoming::Other,
    }
}

/// The leading decimal number of a body or id (`"<µs> ..."` or `"<µs>.<conn>.<n>"`).
fn stamp(text: &str) -> u64 {
    let mut value = 0u64;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
    }
    value
}

/// A peer server frame, borrowed from the text it was parsed from.
#[derive(Deserialize)]
struct PeerFrame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(default, borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    error: Option<Cow<'a, str>>,
}

/// A peer `send` frame.
#[derive(Serialize)]
struct PeerSend<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    room: &'a str,
    id: &'a str,
    body: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_parse_from_bodies_and_ids() {
        assert_eq!(stamp("12345 xxxx"), 12345);
        assert_eq!(stamp("987.3.14"), 987);
        assert_eq!(stamp("no stamp"), 0);
    }

    #[test]
    fn decodes_the_hub_frames_it_counts() {
        let message: socket_hub_protocol::Message = serde_json::from_str(
            r#"{"id":9,"room_id":4,"seq":17,"user":{"id":2,"username":"ada \"q\""},
                "content":"1234 xx\ny","client_msg_id":"1200.3.0",
                "created_at":"2026-11-23T10:00:00Z"}"#,
        )
        .expect("a message");
        let chat = ServerFrame::Chat {
            message: message.clone(),
        }
        .to_json();
        assert!(matches!(
            hub_incoming(&chat),
            Incoming::Msg {
                room: 4,
                sent_at: 1234,
                seq: Some(17)
            }
        ));
        let ack = ServerFrame::Ack {
            client_msg_id: "1200.3.0".into(),
            message,
        }
        .to_json();
        assert!(matches!(
            hub_incoming(&ack),
            Incoming::Ack { sent_at: 1200 }
        ));
        let error = ServerFrame::error(socket_hub_protocol::ErrorCode::RateLimited, "slow", None);
        assert!(
            matches!(hub_incoming(&error.to_json()), Incoming::Error(e) if e.contains("rate_limited"))
        );
        assert!(matches!(
            hub_incoming(r#"{"type":"pong"}"#),
            Incoming::Other
        ));
        assert!(matches!(hub_incoming("nope"), Incoming::Error(_)));
    }

    #[test]
    fn the_scan_agrees_with_serde_whatever_the_strings_hold() {
        let message: socket_hub_protocol::Message = serde_json::from_value(serde_json::json!({
            "id": 1, "room_id": 7, "seq": 42,
            "user": {"id": 3, "username": r#"x","seq":9,"room_id":8"#},
            "content": r#"555 "content":"1","seq":1"#,
            "client_msg_id": "555.0.1",
            "created_at": "2026-11-23T10:00:00Z"
        }))
        .expect("a message");
        let frame = ServerFrame::Chat { message }.to_json();
        let scanned = scan_hub(&frame).expect("a chat frame scans");
        for incoming in [scanned, decode_hub(&frame)] {
            assert!(
                matches!(
                    incoming,
                    Incoming::Msg {
                        room: 7,
                        sent_at: 555,
                        seq: Some(42)
                    }
                ),
                "{incoming:?}"
            );
        }
        let peer =
            r#"{"type":"msg","room":"r1","from":"u\"body\":\"9","id":"77.1.2","body":"77 xx"}"#;
        assert!(matches!(
            scan_peer(peer, 5),
            Some(Incoming::Msg {
                room: 5,
                sent_at: 77,
                seq: None
            })
        ));
        assert!(matches!(
            scan_peer(r#"{"type":"ack","id":"88.1.2"}"#, 5),
            Some(Incoming::Ack { sent_at: 88 })
        ));
    }

    #[tokio::test]
    async fn refuses_targets_off_this_machine() {
        assert!(loopback_addr("http://127.0.0.1:9").await.is_ok());
        assert!(loopback_addr("http://192.0.2.1:80").await.is_err());
        assert!(loopback_addr("ftp://127.0.0.1:9").await.is_err());
    }
}
