//! The reader's and the writer's halves of one upgraded socket, and a way for the writer
//! to send a large text message without tungstenite's write buffer.
//!
//! tungstenite copies every frame into its write buffer, and that buffer keeps the
//! capacity of the largest write it ever held: one 8 KB `room_joined` (a room with a
//! couple of hundred people online) would cost the connection 8 KiB for the rest of
//! its life. Large messages used to go out as 512 B fragments, each flushed on its own:
//! sixteen `sendto` calls for that `room_joined`, three quarters of all socket writes in
//! a connect storm. [`Sink::send_text_unbuffered`] instead flushes what tungstenite
//! holds and then writes the frame header (from the stack) and the shared payload
//! straight to the socket with one vectored write: no copy, no fragments, no buffer kept.
//!
//! A server frame needs nothing tungstenite keeps state for (no mask, no extension), so
//! a whole frame written beside it, never inside one of its frames, is well formed.
//! Each half locks the socket only within a poll, never across an `.await`. A raw
//! write that finds the socket full registers the writer's waker for write readiness
//! in place of tungstenite's; only the writer waits on that (a pong the reader queued
//! meanwhile goes out with the writer's next flush).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::SinkExt;
use tokio::io::AsyncWrite;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::{self, Message};

use super::ws::Socket;

/// The sending half, used by the session's writer only.
pub(crate) struct Sink {
    socket: Arc<Mutex<Socket>>,
}

/// The receiving half, used by the session's reader only.
pub(crate) struct Stream {
    socket: Arc<Mutex<Socket>>,
}

/// Splits an upgraded socket into the halves the session's reader and writer own.
pub(crate) fn split(socket: Socket) -> (Sink, Stream) {
    let socket = Arc::new(Mutex::new(socket));
    (
        Sink {
            socket: Arc::clone(&socket),
        },
        Stream { socket },
    )
}

fn lock(socket: &Mutex<Socket>) -> MutexGuard<'_, Socket> {
    socket.lock().unwrap_or_else(|e| e.into_inner())
}

impl futures_util::Sink<Message> for Sink {
    type Error = tungstenite::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *lock(&self.socket)).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        Pin::new(&mut *lock(&self.socket)).start_send(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *lock(&self.socket)).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut *lock(&self.socket)).poll_close(cx)
    }
}

impl futures_util::Stream for Stream {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *lock(&self.socket)).poll_next(cx)
    }
}

impl Sink {
    /// Sends `payload` as one final text frame after everything fed before it, written
    /// straight to the socket (see the module docs).
    pub(crate) async fn send_text_unbuffered(&mut self, payload: &[u8]) -> tungstenite::Result<()> {
        self.flush().await?;
        let header = TextHeader::new(payload.len());
        let mut written = 0;
        let total = header.len() + payload.len();
        std::future::poll_fn(|cx| {
            let mut socket = lock(&self.socket);
            let io = socket.get_mut();
            while written < total {
                let (head, body) = if written < header.len() {
                    (&header.as_bytes()[written..], payload)
                } else {
                    (&[][..], &payload[written - header.len()..])
                };
                let parts = [IoSlice::new(head), IoSlice::new(body)];
                match Pin::new(&mut *io).poll_write_vectored(cx, &parts) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero)));
                    }
                    Poll::Ready(Ok(n)) => written += n,
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            Poll::Ready(Ok(()))
        })
        .await
        .map_err(tungstenite::Error::Io)
    }
}

/// The header of an unmasked, final text frame, formatted by tungstenite into a stack
/// buffer (at most 10 bytes for a server frame).
struct TextHeader {
    bytes: [u8; 10],
    len: usize,
}

impl TextHeader {
    fn new(payload_len: usize) -> Self {
        let header = FrameHeader {
            opcode: OpCode::Data(Data::Text),
            ..FrameHeader::default()
        };
        let length = payload_len as u64;
        let mut bytes = [0u8; 10];
        let len = header.len(length);
        // Writing 2 to 10 bytes into a 10-byte slice cannot fail.
        let _ = header.format(length, &mut &mut bytes[..]);
        Self { bytes, len }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    use super::*;

    /// The header is byte for byte what tungstenite writes for the same frame.
    #[test]
    fn the_header_matches_tungstenites_for_every_length_class() {
        for len in [0, 1, 125, 126, 127, 508, 8_000, 65_535, 65_536, 200_000] {
            let payload = vec![b'x'; len];
            let frame = Frame::message(payload.clone(), OpCode::Data(Data::Text), true);
            let mut expected = Vec::new();
            frame.format(&mut expected).expect("format");
            let header = TextHeader::new(len);
            let mut ours = header.as_bytes().to_vec();
            ours.extend_from_slice(&payload);
            assert_eq!(ours, expected, "payload of {len} bytes");
        }
    }
}
