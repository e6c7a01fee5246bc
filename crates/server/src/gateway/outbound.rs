//! The bounded queue between everything that talks to a connection and the task that
//! writes to its socket, and the handle the rest of the server holds to a connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::extract::ws::Utf8Bytes;
use socket_hub_protocol::{CloseCode, RoomId, Seq, User};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One item for a connection's writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A frame written as is: replies, presence, typing.
    Frame(Utf8Bytes),
    /// A chat message of a joined room; the writer keeps each room gap-free and in order.
    Chat {
        room_id: RoomId,
        seq: Seq,
        frame: Utf8Bytes,
    },
    /// The room accepted this connection: write `frame` (`room_joined`), then replay
    /// the stored messages in `(since, last_seq]` before any live one.
    Joined {
        room_id: RoomId,
        since: Seq,
        last_seq: Seq,
        frame: Utf8Bytes,
    },
    /// The connection stopped receiving the room: write `frame` (`room_left`).
    Left { room_id: RoomId, frame: Utf8Bytes },
}

/// The server's handle to one WebSocket connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    shared: Arc<Shared>,
}

struct Shared {
    id: u64,
    user: User,
    tx: mpsc::Sender<Outbound>,
    close: CancellationToken,
    /// First close code asked for; 0 until then.
    close_code: AtomicU16,
}

impl SessionHandle {
    /// A handle plus the receiving end of its queue, which the writer owns.
    pub(crate) fn new(
        id: u64,
        user: User,
        capacity: usize,
        close: CancellationToken,
    ) -> (Self, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(capacity);
        let shared = Arc::new(Shared {
            id,
            user,
            tx,
            close,
            close_code: AtomicU16::new(0),
        });
        (Self { shared }, rx)
    }

    pub(crate) fn id(&self) -> u64 {
        self.shared.id
    }

    pub(crate) fn user(&self) -> &User {
        &self.shared.user
    }

    /// Queues `item` without waiting. A full queue means the client cannot keep up:
    /// it is closed with 1013 (it will resume by seq) rather than allowed to grow.
    /// Returns `false` when the connection is going away.
    pub(crate) fn push(&self, item: Outbound) -> bool {
        if self.shared.close.is_cancelled() {
            return false;
        }
        match self.shared.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("socket_hub_slow_consumers_total").increment(1);
                self.close(CloseCode::TRY_AGAIN_LATER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Asks the connection to close with `code`; the first code asked for wins.
    pub(crate) fn close(&self, code: u16) {
        let _ =
            self.shared
                .close_code
                .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.shared.close.cancel();
    }

    /// The close code asked for, if any.
    pub(crate) fn close_code(&self) -> Option<u16> {
        match self.shared.close_code.load(Ordering::Acquire) {
            0 => None,
            code => Some(code),
        }
    }

    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.shared.close
    }
}
