//! The WebSocket half of the SDK: one connection, typed frames in and out.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socket_hub_protocol::{BEARER_SUBPROTOCOL_PREFIX, ClientFrame, SUBPROTOCOL, ServerFrame};
use tokio::net::TcpSocket;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::ClientError;

/// How a connection presents its access token.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>` on the handshake.
    Header(String),
    /// `/ws?token=<token>`.
    Query(String),
    /// `Sec-WebSocket-Protocol: socket-hub.v1, bearer.<token>` (what browsers use).
    Subprotocol(String),
    /// A first frame `{"type":"auth","token":…}` after connecting.
    FirstFrame(String),
    /// No token at all (the server closes with 4401 after its auth timeout).
    None,
}

/// Socket-level knobs, mostly for tests that need a deliberately slow reader.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `SO_RCVBUF` for the TCP socket: small values make a non-reading client fill up
    /// quickly, as a slow phone would.
    pub recv_buffer: Option<u32>,
}

/// Something that arrived on a connection.
// One event at a time is returned by value and consumed at once: boxing the frame would
// cost an allocation per frame to save a few bytes of stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Frame(ServerFrame),
    /// The server closed the connection with this code and reason.
    Closed {
        code: Option<u16>,
        reason: String,
    },
}

/// What [`Connection::next_raw`] returns: a text frame not yet decoded, or the close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEvent {
    Text(RawText),
    /// The server closed the connection with this code and reason.
    Closed {
        code: Option<u16>,
        reason: String,
    },
}

/// The text of one frame, as received (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawText(Utf8Bytes);

impl RawText {
    /// The frame's JSON text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// One WebSocket connection to Socket-Hub.
pub struct Connection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The subprotocol the server selected, if any.
    subprotocol: Option<String>,
}

impl Connection {
    /// Connects to `base_url` (`http://host:port`) and authenticates as `auth` says.
    pub async fn connect(base_url: &str, auth: Auth) -> Result<Self, ClientError> {
        Self::connect_with(base_url, auth, ConnectOptions::default()).await
    }

    /// [`Connection::connect`] with socket options.
    pub async fn connect_with(
        base_url: &str,
        auth: Auth,
        options: ConnectOptions,
    ) -> Result<Self, ClientError> {
        let addr = resolve(base_url).await?;
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        if let Some(size) = options.recv_buffer {
            socket
                .set_recv_buffer_size(size)
                .map_err(|e| ClientError::Transport(e.to_string()))?;
        }
        let config = WebSocketConfig::default().max_message_size(Some(16 << 20));
        Self::connect_socket(base_url, auth, socket, config).await
    }

    /// Connects over `socket`, a TCP socket the caller prepared, with `config` for the
    /// WebSocket layer.
    ///
    /// A load generator holding tens of thousands of connections needs both: sockets
    /// bound to many source addresses (one address runs out of ports) and small
    /// WebSocket buffers (the 128 KiB default read buffer would cost gigabytes).
    pub async fn connect_socket(
        base_url: &str,
        auth: Auth,
        socket: TcpSocket,
        config: WebSocketConfig,
    ) -> Result<Self, ClientError> {
        let request = ws_request(base_url, &auth)?;
        let addr = resolve(base_url).await?;
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (ws, response) = tokio_tungstenite::client_async_with_config(
            request,
            MaybeTlsStream::Plain(stream),
            Some(config),
        )
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        let subprotocol = response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut connection = Self { ws, subprotocol };
        if let Auth::FirstFrame(token) = auth {
            connection.send(&ClientFrame::Auth { token }).await?;
        }
        Ok(connection)
    }

    /// The subprotocol the server selected at the handshake.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &ClientFrame) -> Result<(), ClientError> {
        let text = serde_json::to_string(frame).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.send_text(text).await
    }

    /// Sends raw text (tests use it to send malformed frames).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.ws
            .send(Message::text(text.into()))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// Sends a binary frame (which the protocol does not use).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        self.ws
            .send(Message::binary(bytes))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }

    /// The next frame or close, skipping pings; errors on a transport failure.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        match self.next_raw().await? {
            RawEvent::Text(text) => {
                let frame = serde_json::from_str(text.as_str())
                    .map_err(|e| ClientError::Decode(format!("{e}: {}", text.as_str())))?;
                Ok(Event::Frame(frame))
            }
            RawEvent::Closed { code, reason } => Ok(Event::Closed { code, reason }),
        }
    }

    /// The next text frame undecoded, or the close; skips pings and binary frames.
    ///
    /// For clients that read a high-volume stream and need only a field or two of each
    /// frame: the load generator decodes just what it counts, so that its own parsing
    /// does not cap the deliveries per second it can measure.
    pub async fn next_raw(&mut self) -> Result<RawEvent, ClientError> {
        loop {
            let message = match self.ws.next().await {
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(ClientError::Transport(e.to_string())),
                None => {
                    return Ok(RawEvent::Closed {
                        code: None,
                        reason: String::new(),
                    });
                }
            };
            match message {
                Message::Text(text) => return Ok(RawEvent::Text(RawText(text))),
                Message::Close(frame) => {
                    return Ok(RawEvent::Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    });
                }
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// [`Connection::next_event`] within `timeout`.
    pub async fn event_within(&mut self, timeout: Duration) -> Result<Event, ClientError> {
        tokio::time::timeout(timeout, self.next_event())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// The next frame within `timeout`; a close is an error.
    pub async fn frame_within(&mut self, timeout: Duration) -> Result<ServerFrame, ClientError> {
        match self.event_within(timeout).await? {
            Event::Frame(frame) => Ok(frame),
            Event::Closed { code, .. } => Err(ClientError::Closed { code }),
        }
    }

    /// Skips frames until one for which `pick` returns `Some`, within `timeout` overall.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> Result<T, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = self.frame_within(left).await?;
            if let Some(found) = pick(&frame) {
                return Ok(found);
            }
        }
    }

    /// Reads until the server closes, within `timeout`; returns the close code.
    pub async fn closed_within(&mut self, timeout: Duration) -> Result<Option<u16>, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.event_within(left).await {
                Ok(Event::Closed { code, .. }) => return Ok(code),
                Ok(Event::Frame(_)) => {}
                // A reset after the close frame was lost counts as closed without code.
                Err(ClientError::Transport(_)) => return Ok(None),
                Err(other) => return Err(other),
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) -> Result<(), ClientError> {
        self.ws
            .close(None)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))
    }
}

fn header(value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|e| ClientError::Transport(e.to_string()))
}

/// The handshake request for `base_url` carrying `auth`'s token where it belongs.
fn ws_request(base_url: &str, auth: &Auth) -> Result<Request, ClientError> {
    let ws_base = base_url
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let url = match auth {
        Auth::Query(token) => format!("{ws_base}/ws?token={token}"),
        _ => format!("{ws_base}/ws"),
    };
    let mut request = url
        .into_client_request()
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    let headers = request.headers_mut();
    match auth {
        Auth::Header(token) => {
            headers.insert("authorization", header(&format!("Bearer {token}"))?);
        }
        Auth::Subprotocol(token) => {
            let offer = format!("{SUBPROTOCOL}, {BEARER_SUBPROTOCOL_PREFIX}{token}");
            headers.insert("sec-websocket-protocol", header(&offer)?);
        }
        Auth::Query(_) | Auth::FirstFrame(_) | Auth::None => {}
    }
    Ok(request)
}

/// The socket address of `base_url`'s host.
async fn resolve(base_url: &str) -> Result<SocketAddr, ClientError> {
    let request = ws_request(base_url, &Auth::None)?;
    let host = request
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .ok_or_else(|| ClientError::Transport("URL has no host".into()))?;
    tokio::net::lookup_host(&host)
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?
        .next()
        .ok_or_else(|| ClientError::Transport(format!("cannot resolve {host}")))
}
