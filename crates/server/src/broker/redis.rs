//! Fan-out and presence through Redis, for several Socket-Hub processes.
//!
//! - Fan-out: one Pub/Sub channel per room (`<prefix>room:<id>`). A process subscribes
//!   only to rooms its own connections have joined and unsubscribes when the last one
//!   leaves. The encoded frame is published once with a one-line routing header;
//!   receivers forward its bytes without decoding the JSON.
//! - Publishing never waits on Redis: an envelope goes at once to this process's own
//!   subscription (so local delivery works with Redis hung or down) and into a bounded
//!   queue that one publisher task sends to Redis. Receivers skip their own process's
//!   envelopes coming back from Redis. A full queue drops the envelope (counted in
//!   `socket_hub_publish_dropped_total`); for chat, the newest dropped or failed envelope
//!   of each room is kept and published again later, so other processes see the hole
//!   and refill from the store.
//! - Loss: Pub/Sub drops messages while a connection is down. After every reconnect each
//!   subscription is told [`Received::Lagged`], so its room refills from the store.
//! - Subscribing: requests to the Pub/Sub task go through a bounded queue. A subscribe
//!   waits (bounded) for room in it and fails with [`BrokerError::Unavailable`] if none
//!   frees up; an unsubscribe that does not fit is dropped, and the Pub/Sub task then
//!   unsubscribes when the next message arrives for a room nobody here wants.
//! - Presence: a sorted set per room (`<prefix>presence:<id>`) of
//!   `<user id>:<instance>:<username>` members scored by lease expiry. Each process
//!   renews its members' leases; any process reaps expired members (a crashed
//!   instance's users) and announces their `leave`, so presence heals within one lease.
//! - Revocations: one channel (`<prefix>revoked`) every process subscribes to, carrying
//!   `<origin instance> <session id>`. What Pub/Sub drops meanwhile, the store poll of
//!   [`crate::auth::Revocations`] finds.
//! - Frames for users (notifications, presence changes): one channel (`<prefix>users`)
//!   every process subscribes to, carrying `<origin instance> <user id>\n<frame>` (or
//!   `w<id>,<id>…` for the presence watchers among a person's contacts).
//!   What Pub/Sub drops meanwhile, the user gets from the store on their next connect
//!   (notifications) or the next `GET /users/presence` (presence).
//! - Global presence (online, away, offline per user, whatever the room): a hash per
//!   user (`<prefix>upresence:user:<id>`) with one field per process that has
//!   connections of the user (`o` online, `a` away) and `_s`, the status last announced;
//!   a set per process of the users it has fields for (`<prefix>upresence:of:<instance>`);
//!   and one sorted set of processes scored by heartbeat expiry
//!   (`<prefix>upresence:instances`), renewed every third of a lease: one command per
//!   process, not one per user. A Lua script changes a field and recomputes the status
//!   from the fields of live processes atomically, so two processes never both announce
//!   (or both miss) a change. Any process reaps a process whose heartbeat expired (a
//!   crash): it takes it out of the set of processes (only the one whose ZREM removes
//!   it goes on), clears its fields, and announces the users that went offline. A
//!   process that finds its own heartbeat gone (Redis restarted, or it was stopped
//!   longer than a lease) sets all its users again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use socket_hub_protocol::{PresenceStatus, RoomId, ServerFrame, User, UserId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{
    Broker, BrokerError, Envelope, EnvelopeKind, PRESENCE_EVENT_CAPACITY, PresenceEvent,
    REVOCATION_CAPACITY, Received, Recipients, RoomSubscribers, Subscription, UserFrame,
};

/// Settings of the Redis broker.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Prepended to every key and channel, so deployments (and tests) can share a server.
    pub prefix: String,
    /// How long a presence entry lives without renewal.
    pub presence_lease: Duration,
    /// How long one Redis command (or connection attempt) may take.
    pub timeout: Duration,
}

/// Envelopes waiting for the publisher task; beyond this they are dropped.
const PUBLISH_QUEUE: usize = 4096;
/// Subscribe and unsubscribe requests waiting for the Pub/Sub task.
const CONTROL_QUEUE: usize = 1024;
/// How long a subscribe waits for room in the control queue and for Redis to confirm.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);
/// How often chat envelopes that could not be published are tried again.
const REPUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// [`Broker`] over Redis Pub/Sub plus sorted sets for presence.
pub struct RedisBroker {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RedisSettings,
    /// Distinguishes this process's presence entries from other instances'.
    instance: String,
    client: redis::Client,
    /// Commands (PUBLISH, presence); reconnects by itself.
    commands: ConnectionManager,
    /// Local room subscriptions, fed by the Pub/Sub task.
    rooms: Arc<RoomSubscribers>,
    /// Requests to the Pub/Sub task, which owns the subscribing connection.
    control: mpsc::Sender<Control>,
    /// Envelopes for the publisher task.
    outgoing: mpsc::Sender<Envelope>,
    /// Per room, the newest chat envelope that could not be published yet.
    unpublished: Mutex<HashMap<RoomId, Envelope>>,
    connected: AtomicBool,
    /// Connections per (room, user) in this process; the Redis entry exists while > 0.
    local_presence: Mutex<HashMap<(RoomId, UserId), (User, usize)>>,
    /// Revoked sessions for this process's listeners: its own at once, others' as they
    /// arrive on the revocation channel.
    revocations: broadcast::Sender<Arc<str>>,
    /// `<prefix>revoked`, computed once: every incoming message is compared with it.
    revocation_channel: String,
    /// Frames for users, for this process's listener: its own at once, others' as they
    /// arrive on the user channel.
    user_frames: broadcast::Sender<UserFrame>,
    /// `<prefix>users`, computed once.
    user_channel: String,
    /// `<prefix>upresence:instances`, computed once.
    instances_key: String,
    /// Whether this process's heartbeat was ever recorded: recorded anew after that,
    /// Redis lost it, and with it this process's presence fields.
    registered: AtomicBool,
    /// Presence changes found here without a caller (reaped processes), and resyncs.
    presence_events: broadcast::Sender<PresenceEvent>,
}

enum Control {
    Subscribe(RoomId, oneshot::Sender<()>),
    Unsubscribe(RoomId),
}

impl RedisBroker {
    /// Starts the broker's background tasks. Succeeds even while Redis is down: fan-out
    /// then waits for it, and readiness says so.
    pub fn start(settings: RedisSettings) -> Result<Self, BrokerError> {
        let client = redis::Client::open(settings.url.as_str())
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE);
        let (outgoing, outgoing_rx) = mpsc::channel(PUBLISH_QUEUE);
        let instance = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let revocation_channel = format!("{}revoked", settings.prefix);
        let user_channel = format!("{}users", settings.prefix);
        let instances_key = format!("{}upresence:instances", settings.prefix);
        let inner = Arc::new(Inner {
            settings,
            instance,
            client,
            commands,
            rooms: Arc::default(),
            control,
            outgoing,
            unpublished: Mutex::new(HashMap::new()),
            connected: AtomicBool::new(false),
            local_presence: Mutex::new(HashMap::new()),
            revocations: broadcast::channel(REVOCATION_CAPACITY).0,
            revocation_channel,
            user_frames: broadcast::channel(REVOCATION_CAPACITY).0,
            user_channel,
            instances_key,
            registered: AtomicBool::new(false),
            presence_events: broadcast::channel(PRESENCE_EVENT_CAPACITY).0,
        });
        tokio::spawn(pubsub_task(Arc::downgrade(&inner), control_rx));
        tokio::spawn(presence_task(Arc::downgrade(&inner)));
        tokio::spawn(publisher_task(Arc::downgrade(&inner), outgoing_rx));
        Ok(Self { inner })
    }
}

impl Inner {
    fn channel(&self, room_id: RoomId) -> String {
        format!("{}room:{room_id}", self.settings.prefix)
    }

    fn presence_key(&self, room_id: RoomId) -> String {
        format!("{}presence:{room_id}", self.settings.prefix)
    }

    fn member(&self, user: &User) -> String {
        format!("{}:{}:{}", user.id, self.instance, user.username)
    }

    fn lease_expiry(&self) -> i64 {
        now_ms() + i64::try_from(self.settings.presence_lease.as_millis()).unwrap_or(i64::MAX / 4)
    }

    fn presence(&self) -> std::sync::MutexGuard<'_, HashMap<(RoomId, UserId), (User, usize)>> {
        self.local_presence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Live members of the room's presence set, as users (one per user, sorted).
    async fn live_users(&self, room_id: RoomId) -> redis::RedisResult<Vec<(User, String)>> {
        let mut conn = self.commands.clone();
        let members: Vec<String> = conn
            .zrangebyscore(self.presence_key(room_id), now_ms(), "+inf")
            .await?;
        Ok(members
            .into_iter()
            .filter_map(|m| parse_member(&m).map(|(user, instance)| (user, instance.to_owned())))
            .collect())
    }

    /// Hands a message from Redis to the room's subscription; returns the room when
    /// nobody here wants it any more (an unsubscribe that did not fit the queue).
    fn dispatch(&self, channel: &str, payload: &[u8]) -> Option<RoomId> {
        if channel == self.user_channel {
            match decode_user_frame(payload) {
                Some((origin, user_frame)) if origin != self.instance => {
                    let _ = self.user_frames.send(user_frame);
                }
                Some(_) => {}
                None => tracing::warn!("undecodable user frame on the broker"),
            }
            return None;
        }
        if channel == self.revocation_channel {
            let text = std::str::from_utf8(payload).unwrap_or_default();
            match text.split_once(' ') {
                Some((origin, session)) if origin != self.instance && !session.is_empty() => {
                    let _ = self.revocations.send(Arc::from(session));
                }
                Some(_) => {}
                None => tracing::warn!("undecodable revocation on the broker"),
            }
            return None;
        }
        let room_id = channel
            .strip_prefix(self.settings.prefix.as_str())
            .and_then(|c| c.strip_prefix("room:"))
            .and_then(|id| id.parse::<RoomId>().ok())?;
        let Some(subscriber) = self.rooms.get(room_id) else {
            return Some(room_id);
        };
        let Some((envelope, origin)) = decode(room_id, payload) else {
            tracing::warn!(room_id, "undecodable envelope on the broker");
            return None;
        };
        // Our own envelopes were delivered here when published.
        if origin != self.instance {
            subscriber.deliver(Received::Envelope(envelope));
        }
        None
    }

    /// Local delivery now, Redis through the publisher task's bounded queue.
    fn publish(&self, envelope: Envelope) {
        if let Some(subscriber) = self.rooms.get(envelope.room_id) {
            subscriber.deliver(Received::Envelope(envelope.clone()));
        }
        if let Err(err) = self.outgoing.try_send(envelope) {
            crate::metrics::publish_dropped();
            let envelope = match err {
                mpsc::error::TrySendError::Full(envelope)
                | mpsc::error::TrySendError::Closed(envelope) => envelope,
            };
            self.keep_unpublished(envelope);
        }
    }

    /// Keeps the newest chat envelope of its room for a later attempt: one is enough
    /// for other processes to notice a hole and refill. Other envelopes are dropped.
    fn keep_unpublished(&self, envelope: Envelope) {
        let EnvelopeKind::Chat { seq } = envelope.kind else {
            return;
        };
        let mut unpublished = self.unpublished.lock().unwrap_or_else(|e| e.into_inner());
        let newer = unpublished
            .get(&envelope.room_id)
            .is_none_or(|kept| matches!(kept.kind, EnvelopeKind::Chat { seq: s } if s < seq));
        if newer {
            unpublished.insert(envelope.room_id, envelope);
        }
    }

    fn take_unpublished(&self) -> Vec<Envelope> {
        let mut unpublished = self.unpublished.lock().unwrap_or_else(|e| e.into_inner());
        unpublished.drain().map(|(_, envelope)| envelope).collect()
    }

    /// One PUBLISH; what fails is kept for another attempt (chat only).
    async fn send_to_redis(&self, envelope: Envelope) {
        if !self.connected.load(Ordering::Acquire) {
            self.keep_unpublished(envelope);
            return;
        }
        if let Err(err) = publish(self, &envelope).await {
            tracing::debug!(room_id = envelope.room_id, error = %err, "publish failed; kept for a retry");
            self.keep_unpublished(envelope);
        }
    }
}

/// Sends queued envelopes to Redis one after another, off every caller's path, and
/// retries the kept chat envelopes.
async fn publisher_task(inner: Weak<Inner>, mut queue: mpsc::Receiver<Envelope>) {
    let mut retry = tokio::time::interval(REPUBLISH_INTERVAL);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = tokio::select! {
            envelope = queue.recv() => match envelope {
                Some(envelope) => Some(envelope),
                None => return,
            },
            _ = retry.tick() => None,
        };
        let Some(strong) = inner.upgrade() else {
            return;
        };
        match next {
            Some(envelope) => strong.send_to_redis(envelope).await,
            None => {
                for envelope in strong.take_unpublished() {
                    strong.send_to_redis(envelope).await;
                }
            }
        }
    }
}

/// Owns the subscribing connection: (re)connects, (re)subscribes, dispatches messages.
async fn pubsub_task(inner: Weak<Inner>, mut control: mpsc::Receiver<Control>) {
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let client = strong.client.clone();
        drop(strong);
        let pubsub = match client.get_async_pubsub().await {
            Ok(pubsub) => pubsub,
            Err(err) => {
                tracing::warn!(error = %err, "redis pub/sub connect failed; retrying");
                // Answer subscribes meanwhile: they are recorded and applied on connect.
                if !drain_control_while_down(&mut control, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let (mut sink, mut stream) = pubsub.split();
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let rooms = strong.rooms.rooms();
        let mut resubscribed = sink
            .subscribe(strong.revocation_channel.as_str())
            .await
            .is_ok()
            && sink.subscribe(strong.user_channel.as_str()).await.is_ok();
        for room_id in &rooms {
            if sink.subscribe(strong.channel(*room_id)).await.is_err() {
                resubscribed = false;
                break;
            }
        }
        if !resubscribed {
            continue;
        }
        strong.connected.store(true, Ordering::Release);
        if !first {
            tracing::info!(
                rooms = rooms.len(),
                "redis pub/sub reconnected; rooms refill from the store"
            );
            strong.rooms.lag_all();
            // Changes may have failed meanwhile: set every local user again.
            let _ = strong.presence_events.send(PresenceEvent::Resync);
        }
        first = false;
        drop(strong);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { break };
                    let Some(strong) = inner.upgrade() else { return };
                    if let Some(unwanted) =
                        strong.dispatch(message.get_channel_name(), message.get_payload_bytes())
                    {
                        let _ = sink.unsubscribe(strong.channel(unwanted)).await;
                    }
                }
                request = control.recv() => {
                    let Some(strong) = inner.upgrade() else { return };
                    match request {
                        Some(Control::Subscribe(room_id, done)) => {
                            let _ = sink.subscribe(strong.channel(room_id)).await;
                            let _ = done.send(());
                        }
                        Some(Control::Unsubscribe(room_id)) => {
                            // Resubscribed meanwhile: keep it.
                            if !strong.rooms.contains(room_id) {
                                let _ = sink.unsubscribe(strong.channel(room_id)).await;
                            }
                        }
                        None => return,
                    }
                }
            }
        }
        if let Some(strong) = inner.upgrade() {
            strong.connected.store(false, Ordering::Release);
            tracing::warn!("redis pub/sub connection lost; reconnecting");
        }
    }
}

/// While disconnected, acknowledges control requests for `wait`; `false` when the
/// broker is gone.
async fn drain_control_while_down(control: &mut mpsc::Receiver<Control>, wait: Duration) -> bool {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return true,
            request = control.recv() => match request {
                Some(Control::Subscribe(_, done)) => { let _ = done.send(()); }
                Some(Control::Unsubscribe(_)) => {}
                None => return false,
            },
        }
    }
}

/// Renews this process's presence leases and reaps expired entries of other (crashed)
/// processes, announcing their users' `leave`.
async fn presence_task(inner: Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(strong) => (strong.settings.presence_lease / 3).max(Duration::from_millis(100)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if let Err(err) = renew_and_reap(&strong).await {
            tracing::debug!(error = %err, "presence upkeep failed; retrying next tick");
        }
        if let Err(err) = heartbeat_and_reap_instances(&strong).await {
            tracing::debug!(error = %err, "user presence upkeep failed; retrying next tick");
        }
    }
}

async fn renew_and_reap(inner: &Inner) -> redis::RedisResult<()> {
    let entries: Vec<(RoomId, User)> = inner
        .presence()
        .iter()
        .map(|((room_id, _), (user, _))| (*room_id, user.clone()))
        .collect();
    let expiry = inner.lease_expiry();
    let mut conn = inner.commands.clone();
    if !entries.is_empty() {
        let mut pipe = redis::pipe();
        for (room_id, user) in &entries {
            pipe.zadd(inner.presence_key(*room_id), inner.member(user), expiry)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    // Reap in every room this process serves: its members must not see ghosts.
    for room_id in inner.rooms.rooms() {
        let key = inner.presence_key(room_id);
        let expired: Vec<String> = conn.zrangebyscore(&key, "-inf", now_ms()).await?;
        for member in expired {
            // Only the process whose ZREM removes the entry announces the leave.
            let removed: i64 = conn.zrem(&key, &member).await?;
            let Some((user, _)) = parse_member(&member) else {
                continue;
            };
            if removed == 1
                && !inner
                    .live_users(room_id)
                    .await?
                    .iter()
                    .any(|(u, _)| u.id == user.id)
            {
                let user_id = user.id;
                let frame = ServerFrame::Leave { room_id, user };
                inner.publish(Envelope::ephemeral(room_id, Some(user_id), &frame));
            }
        }
    }
    Ok(())
}

/// Sets one process's field of a user's presence hash (`''` clears it), renews that
/// process's heartbeat unless told not to (reaping a dead one), and recomputes the
/// user's status from the fields of live processes. Returns the status announced
/// before, the status now, and whether the heartbeat had to be added anew.
const SET_USER_PRESENCE: &str = r"
local hash, instances, owned = KEYS[1], KEYS[2], KEYS[3]
local me, state, now, uid, lease = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local added = 0
if lease ~= '' then added = redis.call('ZADD', instances, lease, me) end
if state == '' then
  redis.call('HDEL', hash, me)
  redis.call('SREM', owned, uid)
else
  redis.call('HSET', hash, me, state)
  redis.call('SADD', owned, uid)
end
local status = 'offline'
local fields = redis.call('HGETALL', hash)
for i = 1, #fields, 2 do
  local f, v = fields[i], fields[i + 1]
  if f ~= '_s' then
    local until_ms = redis.call('ZSCORE', instances, f)
    if until_ms and tonumber(until_ms) > now then
      if v == 'o' then status = 'online' elseif status == 'offline' then status = 'away' end
    end
  end
end
local before = redis.call('HGET', hash, '_s') or 'offline'
if status == 'offline' then redis.call('HDEL', hash, '_s') else redis.call('HSET', hash, '_s', status) end
return {before, status, added}
";

impl Inner {
    fn user_presence_key(&self, user_id: UserId) -> String {
        format!("{}upresence:user:{user_id}", self.settings.prefix)
    }

    fn owned_key(&self, instance: &str) -> String {
        format!("{}upresence:of:{instance}", self.settings.prefix)
    }

    /// Runs [`SET_USER_PRESENCE`] for `instance`'s field of `user_id`; the status when
    /// it changed.
    async fn set_field(
        &self,
        instance: &str,
        user_id: UserId,
        state: &str,
        renew: bool,
    ) -> redis::RedisResult<Option<PresenceStatus>> {
        let mut conn = self.commands.clone();
        let lease = if renew {
            self.lease_expiry().to_string()
        } else {
            String::new()
        };
        let (before, after, added): (String, String, i64) = redis::cmd("EVAL")
            .arg(SET_USER_PRESENCE)
            .arg(3)
            .arg(self.user_presence_key(user_id))
            .arg(&self.instances_key)
            .arg(self.owned_key(instance))
            .arg(instance)
            .arg(state)
            .arg(now_ms())
            .arg(user_id)
            .arg(lease)
            .query_async(&mut conn)
            .await?;
        if renew {
            self.heartbeat_recorded(added == 1);
        }
        Ok((before != after).then(|| status_from(&after)))
    }

    /// Notes that this process's heartbeat was written; `added` anew after the first
    /// time means Redis had lost it (and this process's fields): ask for a resync.
    fn heartbeat_recorded(&self, added: bool) {
        let was = self.registered.swap(true, Ordering::AcqRel);
        if added && was {
            tracing::info!("redis lost this instance's presence; setting it again");
            let _ = self.presence_events.send(PresenceEvent::Resync);
        }
    }
}

/// Renews this process's heartbeat, and reaps processes whose heartbeat expired:
/// their users' fields go, and those who went offline are announced (by the one
/// process whose ZREM took the dead one out).
async fn heartbeat_and_reap_instances(inner: &Inner) -> redis::RedisResult<()> {
    let mut conn = inner.commands.clone();
    let added: i64 = conn
        .zadd(&inner.instances_key, &inner.instance, inner.lease_expiry())
        .await?;
    inner.heartbeat_recorded(added == 1);
    let dead: Vec<String> = conn
        .zrangebyscore(&inner.instances_key, "-inf", now_ms())
        .await?;
    for instance in dead {
        let removed: i64 = conn.zrem(&inner.instances_key, &instance).await?;
        if removed != 1 {
            continue;
        }
        let owned = inner.owned_key(&instance);
        let users: Vec<UserId> = conn.smembers(&owned).await?;
        tracing::info!(%instance, users = users.len(), "reaping a dead instance's presence");
        for user_id in users {
            if let Some(status) = inner.set_field(&instance, user_id, "", false).await? {
                let _ = inner
                    .presence_events
                    .send(PresenceEvent::Changed(user_id, status));
            }
        }
        let _: () = conn.del(&owned).await?;
    }
    Ok(())
}

fn status_from(name: &str) -> PresenceStatus {
    match name {
        "online" => PresenceStatus::Online,
        "away" => PresenceStatus::Away,
        _ => PresenceStatus::Offline,
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn publish(&self, envelope: Envelope) {
        self.inner.publish(envelope);
    }

    async fn subscribe(&self, room_id: RoomId) -> Result<Subscription, BrokerError> {
        let control = self.inner.control.clone();
        let subscription = self.inner.rooms.subscribe(room_id, move |room_id| {
            // Full: the Pub/Sub task unsubscribes when the room's next message comes.
            let _ = control.try_send(Control::Unsubscribe(room_id));
        });
        let deadline = tokio::time::Instant::now() + SUBSCRIBE_WAIT;
        let (done, confirmed) = oneshot::channel();
        let request = self.inner.control.send(Control::Subscribe(room_id, done));
        match tokio::time::timeout_at(deadline, request).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(BrokerError::Unavailable("broker stopped".into())),
            Err(_) => {
                return Err(BrokerError::Unavailable(
                    "too many redis subscriptions pending; retry".into(),
                ));
            }
        }
        // Wait for Redis to confirm, so nothing published from now on is missed. If
        // Redis is down this returns at once: the reconnect marks the room lagged.
        let _ = tokio::time::timeout_at(deadline, confirmed).await;
        Ok(subscription)
    }

    async fn presence_enter(&self, room_id: RoomId, user: &User) -> Result<bool, BrokerError> {
        let first_here = {
            let mut local = self.inner.presence();
            let entry = local
                .entry((room_id, user.id))
                .or_insert_with(|| (user.clone(), 0));
            entry.1 += 1;
            entry.1 == 1
        };
        if !first_here {
            return Ok(false);
        }
        let inner = &self.inner;
        let result: redis::RedisResult<bool> = async {
            let mut conn = inner.commands.clone();
            let _: () = conn
                .zadd(
                    inner.presence_key(room_id),
                    inner.member(user),
                    inner.lease_expiry(),
                )
                .await?;
            let others = inner.live_users(room_id).await?;
            Ok(!others
                .iter()
                .any(|(u, instance)| u.id == user.id && *instance != inner.instance))
        }
        .await;
        // Without Redis, presence degrades to this process's view rather than failing joins.
        Ok(result.unwrap_or(true))
    }

    async fn presence_exit(&self, room_id: RoomId, user_id: UserId) -> Result<bool, BrokerError> {
        let user = {
            let mut local = self.inner.presence();
            let Some(entry) = local.get_mut(&(room_id, user_id)) else {
                return Ok(false);
            };
            entry.1 = entry.1.saturating_sub(1);
            if entry.1 > 0 {
                return Ok(false);
            }
            local.remove(&(room_id, user_id)).map(|(user, _)| user)
        };
        let Some(user) = user else { return Ok(false) };
        let inner = &self.inner;
        let result: redis::RedisResult<bool> = async {
            let mut conn = inner.commands.clone();
            let _: () = conn
                .zrem(inner.presence_key(room_id), inner.member(&user))
                .await?;
            let others = inner.live_users(room_id).await?;
            Ok(!others.iter().any(|(u, _)| u.id == user_id))
        }
        .await;
        Ok(result.unwrap_or(true))
    }

    async fn presence_list(&self, room_id: RoomId) -> Result<Vec<User>, BrokerError> {
        let mut users: Vec<User> = match self.inner.live_users(room_id).await {
            Ok(live) => live.into_iter().map(|(user, _)| user).collect(),
            // Without Redis, say who is online here.
            Err(_) => self
                .inner
                .presence()
                .iter()
                .filter(|((room, _), _)| *room == room_id)
                .map(|(_, (user, _))| user.clone())
                .collect(),
        };
        users.sort_by_key(|user| user.id);
        users.dedup_by_key(|user| user.id);
        Ok(users)
    }

    fn publish_revocation(&self, session: &str) {
        let _ = self.inner.revocations.send(Arc::from(session));
        let inner = self.inner.clone();
        let payload = format!("{} {session}", inner.instance);
        // One short task per logout, bounded by the command timeout; a failure is
        // caught up by every process's store poll.
        tokio::spawn(async move {
            let mut conn = inner.commands.clone();
            let sent = tokio::time::timeout(
                inner.settings.timeout,
                conn.publish::<_, _, i64>(inner.revocation_channel.as_str(), payload),
            )
            .await;
            if !matches!(sent, Ok(Ok(_))) {
                tracing::warn!("cannot publish a revocation; other instances find it by polling");
            }
        });
    }

    fn revocations(&self) -> broadcast::Receiver<Arc<str>> {
        self.inner.revocations.subscribe()
    }

    fn publish_to_user(&self, user_id: UserId, frame: Utf8Bytes) {
        let payload = encode_user_frame(&self.inner.instance, user_id, &frame);
        let _ = self
            .inner
            .user_frames
            .send((Recipients::One(user_id), frame));
        let inner = self.inner.clone();
        // One short task per notification, bounded by the command timeout; a frame that
        // cannot be carried is sent from the store on the user's next connect.
        tokio::spawn(async move {
            let mut conn = inner.commands.clone();
            let sent = tokio::time::timeout(
                inner.settings.timeout,
                conn.publish::<_, _, i64>(inner.user_channel.as_str(), payload),
            )
            .await;
            if !matches!(sent, Ok(Ok(_))) {
                tracing::warn!("cannot publish a user frame; it is delivered on next connect");
            }
        });
    }

    fn user_frames(&self) -> broadcast::Receiver<UserFrame> {
        self.inner.user_frames.subscribe()
    }

    fn publish_to_watchers(&self, users: Arc<[UserId]>, frame: Utf8Bytes) {
        if users.is_empty() {
            return;
        }
        let recipients = Recipients::Watchers(users);
        let payload = encode_recipients_frame(&self.inner.instance, &recipients, &frame);
        let _ = self.inner.user_frames.send((recipients, frame));
        let inner = self.inner.clone();
        // As for notifications: one short task per change, bounded by the timeout.
        tokio::spawn(async move {
            let mut conn = inner.commands.clone();
            let sent = tokio::time::timeout(
                inner.settings.timeout,
                conn.publish::<_, _, i64>(inner.user_channel.as_str(), payload),
            )
            .await;
            if !matches!(sent, Ok(Ok(_))) {
                tracing::debug!("cannot publish a presence change to other instances");
            }
        });
    }

    async fn set_user_presence(
        &self,
        user_id: UserId,
        here: Option<PresenceStatus>,
    ) -> Result<Option<PresenceStatus>, BrokerError> {
        let state = match here {
            Some(PresenceStatus::Online) => "o",
            Some(PresenceStatus::Away) => "a",
            Some(PresenceStatus::Offline) | None => "",
        };
        let inner = &self.inner;
        inner
            .set_field(&inner.instance, user_id, state, true)
            .await
            .map_err(|e| BrokerError::Unavailable(e.to_string()))
    }

    async fn user_presence(&self, users: &[UserId]) -> Result<Vec<PresenceStatus>, BrokerError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for user_id in users {
            pipe.hget(self.inner.user_presence_key(*user_id), "_s");
        }
        let mut conn = self.inner.commands.clone();
        let statuses: Vec<Option<String>> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        Ok(statuses
            .iter()
            .map(|s| s.as_deref().map_or(PresenceStatus::Offline, status_from))
            .collect())
    }

    fn presence_events(&self) -> broadcast::Receiver<PresenceEvent> {
        self.inner.presence_events.subscribe()
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }
}

async fn publish(inner: &Inner, envelope: &Envelope) -> redis::RedisResult<()> {
    let mut conn = inner.commands.clone();
    let _: i64 = conn
        .publish(
            inner.channel(envelope.room_id),
            encode(envelope, &inner.instance),
        )
        .await?;
    Ok(())
}

/// `<header> <origin instance>\n<frame>`: the header is `c<seq>` for chat, `e<user id
/// or empty>` for ephemeral, `x<user id>` for evict, `z` for evicting everyone.
fn encode(envelope: &Envelope, origin: &str) -> Vec<u8> {
    let header = match envelope.kind {
        EnvelopeKind::Chat { seq } => format!("c{seq} {origin}"),
        EnvelopeKind::Ephemeral { except_user } => {
            format!(
                "e{} {origin}",
                except_user.map(|u| u.to_string()).unwrap_or_default()
            )
        }
        EnvelopeKind::Evict { user_id } => format!("x{user_id} {origin}"),
        EnvelopeKind::EvictAll => format!("z {origin}"),
    };
    let frame = envelope.frame.as_str().as_bytes();
    let mut out = Vec::with_capacity(header.len() + 1 + frame.len());
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(frame);
    out
}

/// `<origin> <user id>\n<frame>`.
fn encode_user_frame(origin: &str, user_id: UserId, frame: &Utf8Bytes) -> Vec<u8> {
    encode_recipients_frame(origin, &Recipients::One(user_id), frame)
}

/// `<origin> <user id>\n<frame>`, or `<origin> w<user id>[,<user id>…]\n<frame>` for
/// presence watchers.
fn encode_recipients_frame(origin: &str, recipients: &Recipients, frame: &Utf8Bytes) -> Vec<u8> {
    use std::fmt::Write as _;
    let users = recipients.as_slice();
    let mut header = String::with_capacity(origin.len() + 3 + users.len() * 8);
    header.push_str(origin);
    header.push(' ');
    if let Recipients::Watchers(_) = recipients {
        header.push('w');
    }
    for (i, user_id) in users.iter().enumerate() {
        if i > 0 {
            header.push(',');
        }
        let _ = write!(header, "{user_id}");
    }
    header.push('\n');
    let mut out = header.into_bytes();
    out.extend_from_slice(frame.as_str().as_bytes());
    out
}

/// The instance that published a user frame, and the frame.
fn decode_user_frame(payload: &[u8]) -> Option<(&str, UserFrame)> {
    let split = payload.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&payload[..split]).ok()?;
    let (origin, users) = header.split_once(' ')?;
    let recipients = match users.strip_prefix('w') {
        Some(watchers) => {
            let ids: Option<Vec<UserId>> = watchers.split(',').map(|id| id.parse().ok()).collect();
            Recipients::Watchers(Arc::from(ids?))
        }
        None => Recipients::One(users.parse().ok()?),
    };
    let frame = Utf8Bytes::try_from(Bytes::copy_from_slice(&payload[split + 1..])).ok()?;
    Some((origin, (recipients, frame)))
}

/// The envelope and the instance that published it.
fn decode(room_id: RoomId, payload: &[u8]) -> Option<(Envelope, &str)> {
    let split = payload.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&payload[..split]).ok()?;
    let (header, origin) = header.split_once(' ')?;
    let (tag, value) = header.split_at_checked(1)?;
    let kind = match tag {
        "c" => EnvelopeKind::Chat {
            seq: value.parse().ok()?,
        },
        "e" => EnvelopeKind::Ephemeral {
            except_user: if value.is_empty() {
                None
            } else {
                Some(value.parse().ok()?)
            },
        },
        "x" => EnvelopeKind::Evict {
            user_id: value.parse().ok()?,
        },
        "z" => EnvelopeKind::EvictAll,
        _ => return None,
    };
    // One copy out of the Redis reply; every local recipient then shares these bytes.
    let frame = Utf8Bytes::try_from(Bytes::copy_from_slice(&payload[split + 1..])).ok()?;
    Some((
        Envelope {
            room_id,
            kind,
            frame,
        },
        origin,
    ))
}

/// `<user id>:<instance>:<username>` back to its parts.
fn parse_member(member: &str) -> Option<(User, &str)> {
    let mut parts = member.splitn(3, ':');
    let id = parts.next()?.parse().ok()?;
    let instance = parts.next()?;
    let username = parts.next()?.to_owned();
    Some((User { id, username }, instance))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_frames_round_trip_through_the_wire_format() {
        let frame = Utf8Bytes::from_static(r#"{"type":"notification"}"#);
        let wire = encode_user_frame("abc", 42, &frame);
        let (origin, (user, decoded)) = decode_user_frame(&wire).expect("decodes");
        assert_eq!(
            (origin, user, decoded.as_str()),
            ("abc", Recipients::One(42), frame.as_str())
        );
        for watchers in [vec![1, 22, 333], vec![7]] {
            let watchers = Recipients::Watchers(Arc::from(watchers));
            let wire = encode_recipients_frame("abc", &watchers, &frame);
            let (_, (users, _)) = decode_user_frame(&wire).expect("decodes");
            assert_eq!(users, watchers);
        }
        assert!(decode_user_frame(b"no newline").is_none());
        assert!(decode_user_frame(b"abc w1,x\n{}").is_none());
        assert!(decode_user_frame(b"abc 1,2\n{}").is_none());
    }

    #[test]
    fn envelopes_round_trip_through_the_wire_format() {
        for kind in [
            EnvelopeKind::Chat { seq: 42 },
            EnvelopeKind::Ephemeral {
                except_user: Some(7),
            },
            EnvelopeKind::Ephemeral { except_user: None },
            EnvelopeKind::Evict { user_id: 9 },
            EnvelopeKind::EvictAll,
        ] {
            let envelope = Envelope {
                room_id: 3,
                kind,
                frame: Utf8Bytes::from_static(r#"{"type":"pong"}"#),
            };
            let wire = encode(&envelope, "abc");
            let (decoded, origin) = decode(3, &wire).expect("decodes");
            assert_eq!(
                (decoded.kind, decoded.frame.as_str(), origin),
                (kind, r#"{"type":"pong"}"#, "abc")
            );
        }
        assert!(decode(3, b"no header").is_none());
        assert!(decode(3, b"q1 abc\n{}").is_none());
        assert!(decode(3, b"c1\n{}").is_none(), "no origin");
    }

    #[tokio::test]
    async fn only_the_newest_unpublished_chat_of_a_room_is_kept_for_a_retry() {
        // Nothing listens there: every publish fails and is kept for later.
        let broker = RedisBroker::start(RedisSettings {
            url: format!("redis://127.0.0.1:{}", free_port()),
            prefix: "t:".into(),
            presence_lease: Duration::from_secs(30),
            timeout: Duration::from_millis(200),
        })
        .expect("starts while redis is down");
        let chat = |room_id, seq| Envelope {
            room_id,
            kind: EnvelopeKind::Chat { seq },
            frame: Utf8Bytes::from_static("{}"),
        };
        let inner = &broker.inner;
        for envelope in [chat(1, 2), chat(1, 3), chat(1, 1), chat(2, 7)] {
            inner.keep_unpublished(envelope);
        }
        inner.keep_unpublished(Envelope::evict(1, 5));
        let mut kept: Vec<(RoomId, EnvelopeKind)> = inner
            .take_unpublished()
            .into_iter()
            .map(|e| (e.room_id, e.kind))
            .collect();
        kept.sort_by_key(|(room_id, _)| *room_id);
        assert_eq!(
            kept,
            vec![
                (1, EnvelopeKind::Chat { seq: 3 }),
                (2, EnvelopeKind::Chat { seq: 7 })
            ]
        );
        assert!(inner.take_unpublished().is_empty());
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port")
    }

    #[test]
    fn presence_members_parse_back() {
        let (user, instance) = parse_member("12:abc:ada.l").expect("parses");
        assert_eq!(
            (user.id, user.username.as_str(), instance),
            (12, "ada.l", "abc")
        );
        assert!(parse_member("x:abc:ada").is_none());
    }
}
