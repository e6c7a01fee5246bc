//! Fan-out behind one small trait: how a room's events reach every process that has
//! members of that room connected.
//!
//! A [`Broker`] carries [`Envelope`]s: a server frame encoded once, plus the little
//! routing data receivers need without decoding it. Each process subscribes only to
//! rooms its own connections have joined. Publishing never waits: the sender's `ack`
//! depends on the store alone. Brokers may drop envelopes (a full queue, a lost
//! connection); they then say so with [`Received::Lagged`] or a later chat envelope
//! shows the hole, and the receiver refills from the store, so losing an envelope never
//! loses a message.
//!
//! This module depends on nothing of the server but the protocol crate.
//!
//! Presence (who is online in a room) lives here too, because only the broker sees
//! every process. Two implementations ship: [`local::LocalBroker`] for one process and
//! [`redis::RedisBroker`] for many.

pub mod local;
pub mod redis;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use socket_hub_protocol::{Message, PresenceStatus, RoomId, Seq, ServerFrame, User, UserId};
use tokio::sync::{broadcast, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Routing data of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeKind {
    /// A stored chat message: receivers deliver these in `seq` order, without gaps.
    Chat { seq: Seq },
    /// Presence or typing: delivered as is, never to `except_user`'s own connections.
    Ephemeral { except_user: Option<UserId> },
    /// `user_id` lost membership: their connections stop receiving the room.
    Evict { user_id: UserId },
    /// The room is gone: every connection stops receiving it.
    EvictAll,
}

/// A room event on its way to every subscribed process.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub room_id: RoomId,
    pub kind: EnvelopeKind,
    /// The encoded server frame, shared by every recipient (a reference-count bump).
    pub frame: Utf8Bytes,
}

impl Envelope {
    /// A stored message as its frame (`chat`, or a room event's own frame type), encoded
    /// once for every recipient.
    pub fn chat(message: &Message) -> Self {
        Self {
            room_id: message.room_id,
            kind: EnvelopeKind::Chat { seq: message.seq },
            frame: socket_hub_protocol::frames::encode_stored(message).into(),
        }
    }

    /// Presence or typing: `frame` goes to the room's members except `except_user`'s
    /// own connections.
    pub fn ephemeral(room_id: RoomId, except_user: Option<UserId>, frame: &ServerFrame) -> Self {
        Self {
            room_id,
            kind: EnvelopeKind::Ephemeral { except_user },
            frame: encode(frame),
        }
    }

    /// The room was deleted: every connection in it gets `room_left`.
    pub fn evict_all(room_id: RoomId) -> Self {
        Self {
            room_id,
            kind: EnvelopeKind::EvictAll,
            frame: encode(&ServerFrame::RoomLeft { room_id }),
        }
    }

    /// `user_id` lost membership of the room: their connections get `room_left`.
    pub fn evict(room_id: RoomId, user_id: UserId) -> Self {
        Self {
            room_id,
            kind: EnvelopeKind::Evict { user_id },
            frame: encode(&ServerFrame::RoomLeft { room_id }),
        }
    }
}

/// Encodes a server frame once into bytes that every recipient shares.
pub fn encode(frame: &ServerFrame) -> Utf8Bytes {
    Utf8Bytes::from(frame.to_json())
}

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum Received {
    Envelope(Envelope),
    /// Some envelopes were dropped: refill chat messages from the store.
    Lagged,
}

/// A broker failure.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

/// Fan-out and presence across every process serving the chat.
#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Hands `envelope` over without waiting: this process's subscription of the room
    /// gets it at once, other processes as soon as the broker can carry it. What cannot
    /// be carried (a full queue, a broker that is down) is counted and dropped; chat
    /// receivers then refill from the store.
    fn publish(&self, envelope: Envelope);
    /// Receives the room's envelopes from now until the subscription is dropped. A
    /// process holds at most one subscription per room.
    async fn subscribe(&self, room_id: RoomId) -> Result<Subscription, BrokerError>;
    /// Records one more connection of `user` in the room; `true` when it is the user's
    /// first anywhere, i.e. they just came online there.
    async fn presence_enter(&self, room_id: RoomId, user: &User) -> Result<bool, BrokerError>;
    /// Records one connection fewer; `true` when it was the user's last, i.e. they
    /// just went offline there.
    async fn presence_exit(&self, room_id: RoomId, user_id: UserId) -> Result<bool, BrokerError>;
    /// The users online in the room.
    async fn presence_list(&self, room_id: RoomId) -> Result<Vec<User>, BrokerError>;
    /// Tells every process, this one included, that login session `session` was
    /// revoked (logout, refresh reuse), so each closes that session's sockets at once.
    /// Never waits; a revocation the broker cannot carry is found by the store poll
    /// ([`crate::auth::Revocations`]), only later.
    fn publish_revocation(&self, session: &str);
    /// Revoked sessions as any process publishes them, from now on.
    fn revocations(&self) -> broadcast::Receiver<Arc<str>>;
    /// Hands `frame` to every process, this one included, for the live connections of
    /// `user_id` (notifications). Never waits; what cannot be carried is found in the
    /// store on the user's next connect.
    fn publish_to_user(&self, user_id: UserId, frame: Utf8Bytes);
    /// Frames for users as any process publishes them, from now on.
    fn user_frames(&self) -> broadcast::Receiver<UserFrame>;
    /// Hands `frame` to every process for the presence-watching connections of each of
    /// `users` (a presence change, for the people who may see it): one message, not one
    /// per user. Never waits; what cannot be carried is read again over REST.
    fn publish_to_watchers(&self, users: Arc<[UserId]>, frame: Utf8Bytes);
    /// Records what this process's connections of `user_id` say (`None`: it has none
    /// left) and returns the user's global status when that changed, for this process
    /// to announce. Global: online if any process says online, away if all that have
    /// connections say away, offline when none has.
    async fn set_user_presence(
        &self,
        user_id: UserId,
        here: Option<PresenceStatus>,
    ) -> Result<Option<PresenceStatus>, BrokerError>;
    /// The global status of each of `users`, in order (offline when unknown).
    async fn user_presence(&self, users: &[UserId]) -> Result<Vec<PresenceStatus>, BrokerError>;
    /// What the broker finds by itself: a crashed process's users going offline (to
    /// announce), or that it lost this process's presence records (to send again).
    fn presence_events(&self) -> broadcast::Receiver<PresenceEvent>;
    /// Short name for readiness and logs.
    fn backend(&self) -> &'static str;
    /// Whether fan-out currently works (readiness).
    fn is_connected(&self) -> bool;
}

/// The receiving end of one room's envelopes. Dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<Received>,
    lagged: Arc<AtomicBool>,
    _unsubscribe: Option<Box<dyn Send + Sync>>,
}

impl Subscription {
    /// Runs `guard`'s `Drop` when this subscription is dropped: how a broker learns
    /// that a room is no longer wanted here.
    pub(crate) fn on_drop(&mut self, guard: Box<dyn Send + Sync>) {
        self._unsubscribe = Some(guard);
    }

    /// The next envelope, or `Lagged` first if anything was dropped since the last call.
    /// `None` when the broker closed the subscription.
    pub async fn recv(&mut self) -> Option<Received> {
        if self.lagged.swap(false, Ordering::AcqRel) {
            return Some(Received::Lagged);
        }
        self.rx.recv().await
    }
}

/// The sending side a broker keeps for each subscribed room.
#[derive(Clone)]
pub(crate) struct Subscriber {
    tx: mpsc::Sender<Received>,
    lagged: Arc<AtomicBool>,
}

/// A frame for live connections of some users (a notification for one user, a
/// presence change for a person's contacts).
pub type UserFrame = (Recipients, Utf8Bytes);

/// Who a [`UserFrame`] is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipients {
    /// Every connection of one user.
    One(UserId),
    /// The connections of these users that watch presence (they sent a `presence`
    /// frame): one list shared by every process's delivery.
    Watchers(Arc<[UserId]>),
}

impl Recipients {
    /// The users, as a slice.
    pub fn as_slice(&self) -> &[UserId] {
        match self {
            Self::One(user_id) => std::slice::from_ref(user_id),
            Self::Watchers(users) => users,
        }
    }
}

/// What a broker tells this process about presence on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceEvent {
    /// The user's global status changed without this process doing anything (another
    /// process crashed and its lease ran out): announce it.
    Changed(UserId, PresenceStatus),
    /// The broker lost this process's presence records (Redis restarted, or this
    /// process was unreachable longer than a lease): set every local user again.
    Resync,
}

/// Presence events buffered for a slow listener (it then resyncs).
pub(crate) const PRESENCE_EVENT_CAPACITY: usize = 1024;

/// Revocations buffered for a slow listener before it lags (and rescans instead).
pub(crate) const REVOCATION_CAPACITY: usize = 1024;

/// Envelopes a room subscription buffers before it counts as lagging.
pub(crate) const SUBSCRIPTION_CAPACITY: usize = 1024;

impl Subscriber {
    /// A connected subscriber/subscription pair.
    pub(crate) fn pair() -> (Self, Subscription) {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        let lagged = Arc::new(AtomicBool::new(false));
        let subscriber = Self {
            tx,
            lagged: lagged.clone(),
        };
        let subscription = Subscription {
            rx,
            lagged,
            _unsubscribe: None,
        };
        (subscriber, subscription)
    }

    /// Hands `received` over without waiting; a full queue marks the subscription as
    /// lagged instead of blocking the publisher. `false` when the receiver is gone.
    pub(crate) fn deliver(&self, received: Received) -> bool {
        match self.tx.try_send(received) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.store(true, Ordering::Release);
                // Wake the receiver in case it is idle: a marker in the queue would not
                // fit, but the flag is checked on its next receive, which the full queue
                // guarantees.
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Whether this subscriber feeds the same subscription as `other`.
    pub(crate) fn same(&self, other: &Self) -> bool {
        self.tx.same_channel(&other.tx)
    }
}

/// The room subscriptions of one process, shared by a broker (which feeds them) and the
/// guards that take an entry out when its subscription is dropped.
#[derive(Default)]
pub(crate) struct RoomSubscribers {
    // std Mutex: map operations only, never held across an `.await`.
    rooms: Mutex<HashMap<RoomId, Subscriber>>,
}

impl RoomSubscribers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Subscriber>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new subscription for `room_id`, replacing any earlier one. When it is dropped
    /// while still the room's current one, its entry goes and `on_removed` runs (the
    /// Redis broker unsubscribes its channel there).
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        room_id: RoomId,
        on_removed: impl FnOnce(RoomId) + Send + Sync + 'static,
    ) -> Subscription {
        let (subscriber, mut subscription) = Subscriber::pair();
        subscription.on_drop(Box::new(Unsubscribe {
            registry: Arc::downgrade(self),
            room_id,
            subscriber: subscriber.clone(),
            on_removed: Some(Box::new(on_removed)),
        }));
        self.lock().insert(room_id, subscriber);
        subscription
    }

    /// The subscriber of `room_id`, if this process holds one.
    pub(crate) fn get(&self, room_id: RoomId) -> Option<Subscriber> {
        self.lock().get(&room_id).cloned()
    }

    pub(crate) fn contains(&self, room_id: RoomId) -> bool {
        self.lock().contains_key(&room_id)
    }

    /// Every room subscribed to.
    pub(crate) fn rooms(&self) -> Vec<RoomId> {
        self.lock().keys().copied().collect()
    }

    /// Tells every subscription it may have missed envelopes.
    pub(crate) fn lag_all(&self) {
        for subscriber in self.lock().values() {
            subscriber.deliver(Received::Lagged);
        }
    }
}

/// Takes a subscription's entry out of its registry when the subscription is dropped.
struct Unsubscribe {
    registry: Weak<RoomSubscribers>,
    room_id: RoomId,
    subscriber: Subscriber,
    on_removed: Option<Box<dyn FnOnce(RoomId) + Send + Sync>>,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let Some(registry) = self.registry.upgrade() else {
            return;
        };
        let removed = {
            let mut rooms = registry.lock();
            let current = rooms
                .get(&self.room_id)
                .is_some_and(|s| s.same(&self.subscriber));
            current && rooms.remove(&self.room_id).is_some()
        };
        if removed && let Some(on_removed) = self.on_removed.take() {
            on_removed(self.room_id);
        }
    }
}
