//! The bounded queue between everything that talks to a connection and the task that
//! writes to its socket, the handle the rest of the server holds to a connection, and
//! the one type that says why a connection ends.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use socket_hub_protocol::{CloseCode, RoomId, Seq, User};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::notices::Burst;

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
    /// A room's notices sent together: write the ones for this member, which was at
    /// `position` in the room's list when they were sent (`gateway::notices`).
    Notices { burst: Arc<Burst>, position: u32 },
}

impl Outbound {
    /// Bytes of the frame it carries (a replay's stored messages not counted), to bound
    /// how much one batch hands the socket before it flushes.
    pub(crate) fn frame_len(&self) -> usize {
        match self {
            Self::Frame(frame)
            | Self::Chat { frame, .. }
            | Self::Joined { frame, .. }
            | Self::Left { frame, .. } => frame.len(),
            Self::Notices { burst, .. } => burst.len(),
        }
    }
}

/// Every way a connection ends. Decides the close code, the reason text, whether the
/// frames already queued are written first, and what happens after the close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed the connection, or it broke: nobody is left to explain to.
    ClientGone,
    /// The server shuts down (or lost its broker): reconnect elsewhere and resume.
    ServiceRestart,
    /// The client cannot keep up (queue full, write timed out): reconnect and resume.
    TooSlow,
    /// The store could not answer (a replay, or the account check at connect): reconnect
    /// and resume later; the token is fine.
    StoreUnavailable,
    /// The client kept sending past its rate limit.
    Flooding,
    /// A frame was larger than allowed.
    TooBig,
    /// A text frame was not valid UTF-8.
    InvalidUtf8,
    /// No valid token at the handshake or in the first frame.
    Unauthorized,
    /// The access token expired (the client was told with a `token_expired` error).
    TokenExpired,
    /// No frame from the client within the keepalive timeout.
    KeepaliveTimeout,
    /// The login session was revoked (logout, refresh reuse) on any instance.
    SessionRevoked,
    /// The user already holds `--max-connections-per-user` connections here.
    TooManyConnections,
}

impl CloseReason {
    /// The WebSocket close code.
    pub(crate) fn code(self) -> u16 {
        match self {
            Self::ClientGone => 1000,
            Self::ServiceRestart => CloseCode::SERVICE_RESTART,
            Self::TooSlow | Self::StoreUnavailable => CloseCode::TRY_AGAIN_LATER,
            Self::Flooding => CloseCode::POLICY_VIOLATION,
            Self::TooBig => CloseCode::TOO_BIG,
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::Unauthorized | Self::TokenExpired | Self::SessionRevoked => {
                CloseCode::UNAUTHORIZED
            }
            Self::TooManyConnections => CloseCode::POLICY_VIOLATION,
            Self::KeepaliveTimeout => CloseCode::KEEPALIVE_TIMEOUT,
        }
    }

    /// The close frame's reason text.
    pub(crate) fn text(self) -> &'static str {
        match self {
            Self::ClientGone => "",
            Self::ServiceRestart => "server restarting; reconnect and resume",
            Self::TooSlow => "too slow to keep up; reconnect and resume",
            Self::StoreUnavailable => "storage unavailable; reconnect and resume later",
            Self::Flooding => "policy violation (flooding)",
            Self::TooBig => "frame too large",
            Self::InvalidUtf8 => "text frame is not valid UTF-8",
            Self::Unauthorized => "unauthorized",
            Self::TokenExpired => "token expired",
            Self::KeepaliveTimeout => "keepalive timeout",
            Self::SessionRevoked => "signed out",
            Self::TooManyConnections => "too many connections for this user",
        }
    }

    /// Whether the frames already queued (acks, the error that explains the close) are
    /// written before the close frame. Not for a client that cannot take them.
    pub(crate) fn flush_first(self) -> bool {
        !matches!(
            self,
            Self::ClientGone | Self::TooSlow | Self::KeepaliveTimeout
        )
    }

    /// What to do after sending the close frame.
    pub(crate) fn after_close(self) -> AfterClose {
        match self {
            Self::ClientGone => AfterClose::Done,
            // The stream cannot be read past the offending frame.
            Self::TooBig | Self::InvalidUtf8 => AfterClose::Wait,
            _ => AfterClose::Linger,
        }
    }
}

/// The end of a connection after its close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterClose {
    /// Close the socket now.
    Done,
    /// Read (and discard) until the client answers, bounded: closing at once would
    /// reset a connection with unread data, and the reset discards the close frame.
    Linger,
    /// As `Linger`, but without reading: keep the socket open a moment.
    Wait,
}

/// The server's handle to one WebSocket connection. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    shared: Arc<Shared>,
}

struct Shared {
    id: u64,
    user: User,
    queue: Mutex<VecDeque<Outbound>>,
    /// Most items `queue` holds.
    capacity: usize,
    /// Wakes the writer; a permit is kept when it is busy, so no push is missed.
    queued: Notify,
    /// The writer's [`Queue`] is gone: nothing is accepted any more.
    receiver_gone: AtomicBool,
    /// The connection is closing: room traffic is refused. The same fact as `close`
    /// being cancelled, but an atomic load per push where the token takes a mutex.
    closing: AtomicBool,
    close: CancellationToken,
    /// The first reason asked for.
    reason: OnceLock<CloseReason>,
    /// Rooms whose live stream this connection receives. The room task adds and removes
    /// (a join accepted, an eviction), the reader removes (leave) and reads (typing).
    // std Mutex: set operations only, never held across an `.await`.
    rooms: Mutex<HashSet<RoomId>>,
}

impl SessionHandle {
    /// A handle plus the receiving end of its queue, which the writer owns.
    pub(crate) fn new(
        id: u64,
        user: User,
        capacity: usize,
        close: CancellationToken,
    ) -> (Self, Queue) {
        let shared = Arc::new(Shared {
            id,
            user,
            queue: Mutex::new(VecDeque::new()),
            capacity,
            queued: Notify::new(),
            receiver_gone: AtomicBool::new(false),
            closing: AtomicBool::new(close.is_cancelled()),
            close,
            reason: OnceLock::new(),
            rooms: Mutex::new(HashSet::new()),
        });
        let queue = Queue {
            shared: Arc::clone(&shared),
        };
        (Self { shared }, queue)
    }

    pub(crate) fn id(&self) -> u64 {
        self.shared.id
    }

    pub(crate) fn user(&self) -> &User {
        &self.shared.user
    }

    /// Queues room traffic without waiting. A full queue means the client cannot keep
    /// up: it is closed with 1013 (it will resume by seq) rather than allowed to grow.
    /// Returns `false` when the connection is going away.
    pub(crate) fn push(&self, item: Outbound) -> bool {
        if self.shared.closing.load(Ordering::Acquire) {
            return false;
        }
        self.enqueue(item)
    }

    /// Queues a reply to the client's own request. Accepted while closing too, so an
    /// `ack` for a message stored during shutdown still goes out before the close.
    pub(crate) fn reply(&self, item: Outbound) -> bool {
        self.enqueue(item)
    }

    fn enqueue(&self, item: Outbound) -> bool {
        if self.shared.receiver_gone.load(Ordering::Acquire) {
            return false;
        }
        let mut queue = lock(&self.shared.queue);
        if queue.len() >= self.shared.capacity {
            drop(queue);
            if !self.shared.close.is_cancelled() {
                crate::metrics::slow_consumer(crate::metrics::SlowCause::QueueFull);
                self.close(CloseReason::TooSlow);
            }
            return false;
        }
        let was_empty = queue.is_empty();
        queue.push_back(item);
        drop(queue);
        // The writer waits only once it found the queue empty, and it drains all of it
        // once woken: only the first item needs to wake it (a wakeup takes the Notify's
        // lock when the writer is waiting).
        if was_empty {
            self.shared.queued.notify_one();
        }
        true
    }

    /// Asks the connection to close; the first reason asked for wins.
    pub(crate) fn close(&self, reason: CloseReason) {
        let _ = self.shared.reason.set(reason);
        self.closing_seen();
        self.shared.close.cancel();
    }

    /// Notes that the connection is closing (also when the close token fired without
    /// [`close`](Self::close): the server shuts down): room traffic is refused from now
    /// on, and the writer's [`Queue::recv`] ends, so the writer need not poll the token.
    pub(crate) fn closing_seen(&self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.queued.notify_one();
    }

    /// The reason asked for, if any (none when the server shuts down).
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.shared.reason.get().copied()
    }

    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.shared.close
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashSet<RoomId>> {
        self.shared.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the connection receives the room's live stream.
    pub(crate) fn in_room(&self, room_id: RoomId) -> bool {
        self.rooms().contains(&room_id)
    }

    /// How many rooms the connection receives.
    pub(crate) fn room_count(&self) -> usize {
        self.rooms().len()
    }

    /// Records that the room's live stream now reaches this connection.
    pub(crate) fn enter_room(&self, room_id: RoomId) {
        self.rooms().insert(room_id);
    }

    /// Records that it no longer does; `false` when it did not.
    pub(crate) fn exit_room(&self, room_id: RoomId) -> bool {
        self.rooms().remove(&room_id)
    }

    /// Every room the connection receives, forgetting them all.
    pub(crate) fn take_rooms(&self) -> Vec<RoomId> {
        self.rooms().drain().collect()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Slots kept after the queue drains; a larger buffer (left by a burst) is released so
/// an idle connection holds no more than this.
const KEPT_SLOTS: usize = 16;

/// The writer's end of a connection's bounded queue.
///
/// A `VecDeque` under a mutex inside the session's own allocation instead of a tokio
/// `mpsc` channel: that channel allocates a 32-slot block and a cache-padded channel up
/// front, about 3 KiB per connection whether anything is ever queued or not
/// (BENCHMARKS.md, "Memory per connection"). This buffer grows with what is queued
/// and shrinks back once drained.
pub(crate) struct Queue {
    shared: Arc<Shared>,
}

/// [`Queue::try_recv`] found nothing queued.
#[derive(Debug)]
pub(crate) struct Empty;

impl Queue {
    /// The next item, waiting for one; `None` once the connection is closing (see
    /// [`SessionHandle::closing_seen`]), whatever is still queued: the writer's close
    /// decides what of it to write.
    pub(crate) async fn recv(&mut self) -> Option<Outbound> {
        loop {
            if self.shared.closing.load(Ordering::Acquire) {
                return None;
            }
            if let Ok(item) = self.try_recv() {
                return Some(item);
            }
            self.shared.queued.notified().await;
        }
    }

    /// Whether nothing is queued right now.
    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.shared.queue).is_empty()
    }

    /// Everything queued now, taken under one lock (the writer's batch); hand what it
    /// did not write back with [`put_back`](Self::put_back).
    pub(crate) fn take_all(&mut self) -> VecDeque<Outbound> {
        std::mem::take(&mut *lock(&self.shared.queue))
    }

    /// Returns the unwritten rest of a [`take_all`](Self::take_all) to the front of the
    /// queue, ahead of what was queued since. An empty rest gives its buffer back
    /// (shrunk to [`KEPT_SLOTS`]) so the next burst does not allocate.
    pub(crate) fn put_back(&mut self, mut rest: VecDeque<Outbound>) {
        let mut queue = lock(&self.shared.queue);
        if rest.is_empty() {
            if queue.capacity() == 0 && rest.capacity() > 0 {
                rest.shrink_to(KEPT_SLOTS);
                *queue = rest;
            }
            return;
        }
        rest.append(&mut queue);
        *queue = rest;
    }

    /// The next item if one is queued.
    pub(crate) fn try_recv(&mut self) -> Result<Outbound, Empty> {
        let mut queue = lock(&self.shared.queue);
        let item = queue.pop_front().ok_or(Empty)?;
        if queue.is_empty() && queue.capacity() > KEPT_SLOTS {
            queue.shrink_to(KEPT_SLOTS);
        }
        Ok(item)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.shared.receiver_gone.store(true, Ordering::Release);
        lock(&self.shared.queue).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every queued frame is one item: keep it to the shared frame bytes plus a room
    /// and a seq.
    #[test]
    fn a_queue_item_stays_small() {
        assert!(size_of::<Outbound>() <= 64, "{}", size_of::<Outbound>());
    }

    #[test]
    fn the_queue_is_bounded_and_drains_in_order() {
        let user = User {
            id: 1,
            username: "ada".into(),
        };
        let (session, mut queue) = SessionHandle::new(1, user, 4, CancellationToken::new());
        for text in ["a", "b", "c", "d"] {
            assert!(session.push(Outbound::Frame(Utf8Bytes::from_static(text))));
        }
        assert!(!session.push(Outbound::Frame(Utf8Bytes::from_static("e"))));
        assert_eq!(session.close_reason(), Some(CloseReason::TooSlow));
        let mut drained = Vec::new();
        while let Ok(Outbound::Frame(frame)) = queue.try_recv() {
            drained.push(frame.to_string());
        }
        assert_eq!(drained, ["a", "b", "c", "d"]);
        drop(queue);
        assert!(!session.push(Outbound::Frame(Utf8Bytes::from_static("f"))));
        assert!(!session.reply(Outbound::Frame(Utf8Bytes::from_static("f"))));
    }

    #[test]
    fn an_unwritten_rest_goes_back_ahead_of_later_items() {
        let user = User {
            id: 1,
            username: "ada".into(),
        };
        let (session, mut queue) = SessionHandle::new(1, user, 8, CancellationToken::new());
        for text in ["a", "b", "c"] {
            assert!(session.push(Outbound::Frame(Utf8Bytes::from_static(text))));
        }
        let mut batch = queue.take_all();
        assert!(queue.is_empty());
        assert!(matches!(batch.pop_front(), Some(Outbound::Frame(f)) if f == "a"));
        assert!(session.push(Outbound::Frame(Utf8Bytes::from_static("d"))));
        queue.put_back(batch);
        let mut drained = Vec::new();
        while let Ok(Outbound::Frame(frame)) = queue.try_recv() {
            drained.push(frame.to_string());
        }
        assert_eq!(drained, ["b", "c", "d"]);
    }

    #[tokio::test]
    async fn recv_wakes_for_an_item_pushed_later() {
        let user = User {
            id: 1,
            username: "ada".into(),
        };
        let (session, mut queue) = SessionHandle::new(1, user, 4, CancellationToken::new());
        let writer = tokio::spawn(async move { queue.recv().await.is_some() });
        tokio::task::yield_now().await;
        assert!(session.push(Outbound::Frame(Utf8Bytes::from_static("x"))));
        let received = tokio::time::timeout(std::time::Duration::from_secs(10), writer)
            .await
            .expect("recv woke")
            .expect("writer task");
        assert!(received);
    }

    #[tokio::test]
    async fn recv_ends_once_the_session_is_closing() {
        let user = User {
            id: 1,
            username: "ada".into(),
        };
        let (session, mut queue) = SessionHandle::new(1, user, 4, CancellationToken::new());
        // A writer waiting on an empty queue is woken by the close.
        let waiting = tokio::spawn(async move {
            let ended = queue.recv().await.is_none();
            (ended, queue)
        });
        tokio::task::yield_now().await;
        session.closing_seen();
        let (ended, mut queue) = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("recv woke")
            .expect("writer task");
        assert!(ended);
        // Replies queued while closing are left for the writer's close, not returned.
        assert!(session.reply(Outbound::Frame(Utf8Bytes::from_static("ack"))));
        assert!(queue.recv().await.is_none());
        assert!(queue.try_recv().is_ok());
    }

    #[test]
    fn each_reason_has_its_code_and_flush_rule() {
        let cases = [
            (CloseReason::ServiceRestart, 1012, true),
            (CloseReason::TooSlow, 1013, false),
            (CloseReason::StoreUnavailable, 1013, true),
            (CloseReason::InvalidUtf8, 1007, true),
            (CloseReason::Flooding, 1008, true),
            (CloseReason::ClientGone, 1000, false),
        ];
        for (reason, code, flush) in cases {
            assert_eq!(
                (reason.code(), reason.flush_first()),
                (code, flush),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn the_first_close_reason_wins() {
        let user = User {
            id: 1,
            username: "ada".into(),
        };
        let (session, _queue) = SessionHandle::new(1, user, 4, CancellationToken::new());
        session.close(CloseReason::Flooding);
        session.close(CloseReason::ClientGone);
        assert_eq!(session.close_reason(), Some(CloseReason::Flooding));
        assert!(!session.push(Outbound::Frame(Utf8Bytes::from_static("{}"))));
        assert!(session.reply(Outbound::Frame(Utf8Bytes::from_static("{}"))));
    }
}
