//! The in-process broker: fan-out and presence for a single Socket-Hub process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use socket_hub_protocol::{PresenceStatus, RoomId, User, UserId};
use tokio::sync::broadcast;

use super::{
    Broker, BrokerError, Envelope, PRESENCE_EVENT_CAPACITY, PresenceEvent, REVOCATION_CAPACITY,
    Received, Recipients, RoomSubscribers, Subscription, UserFrame,
};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Fan-out within one process. Holds no envelope longer than a channel hop.
#[derive(Default)]
pub struct LocalBroker {
    inner: Arc<Inner>,
}

/// Per user in one room: the user and how many of their connections are in it.
type RoomPresence = HashMap<UserId, (User, usize)>;

struct Inner {
    rooms: Arc<RoomSubscribers>,
    presence: Mutex<HashMap<RoomId, RoomPresence>>,
    /// Revoked sessions, straight back to this process's listeners.
    revocations: broadcast::Sender<Arc<str>>,
    /// Frames for users (notifications), straight back to this process's listener.
    user_frames: broadcast::Sender<UserFrame>,
    /// Users with connections and what they say (one process: that is global).
    // std Mutex: map operations only, never held across an `.await`.
    users: Mutex<HashMap<UserId, PresenceStatus>>,
    /// Never sent to: one process has no other process to outlive.
    presence_events: broadcast::Sender<PresenceEvent>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            rooms: Arc::default(),
            presence: Mutex::default(),
            revocations: broadcast::channel(REVOCATION_CAPACITY).0,
            user_frames: broadcast::channel(REVOCATION_CAPACITY).0,
            users: Mutex::default(),
            presence_events: broadcast::channel(PRESENCE_EVENT_CAPACITY).0,
        }
    }
}

impl LocalBroker {
    /// A broker with no subscriptions.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Broker for LocalBroker {
    fn publish(&self, envelope: Envelope) {
        if let Some(subscriber) = self.inner.rooms.get(envelope.room_id) {
            subscriber.deliver(Received::Envelope(envelope));
        }
    }

    async fn subscribe(&self, room_id: RoomId) -> Result<Subscription, BrokerError> {
        Ok(self.inner.rooms.subscribe(room_id, |_| {}))
    }

    async fn presence_enter(&self, room_id: RoomId, user: &User) -> Result<bool, BrokerError> {
        let mut presence = self
            .inner
            .presence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let entry = presence
            .entry(room_id)
            .or_default()
            .entry(user.id)
            .or_insert_with(|| (user.clone(), 0));
        entry.1 += 1;
        Ok(entry.1 == 1)
    }

    async fn presence_exit(&self, room_id: RoomId, user_id: UserId) -> Result<bool, BrokerError> {
        let mut presence = self
            .inner
            .presence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(users) = presence.get_mut(&room_id) else {
            return Ok(false);
        };
        let Some(entry) = users.get_mut(&user_id) else {
            return Ok(false);
        };
        entry.1 = entry.1.saturating_sub(1);
        let last = entry.1 == 0;
        if last {
            users.remove(&user_id);
            if users.is_empty() {
                presence.remove(&room_id);
            }
        }
        Ok(last)
    }

    async fn presence_list(&self, room_id: RoomId) -> Result<Vec<User>, BrokerError> {
        let presence = self
            .inner
            .presence
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut users: Vec<User> = presence
            .get(&room_id)
            .map(|users| users.values().map(|(user, _)| user.clone()).collect())
            .unwrap_or_default();
        users.sort_by_key(|user| user.id);
        Ok(users)
    }

    fn publish_revocation(&self, session: &str) {
        // No listener yet is fine: nothing to close.
        let _ = self.inner.revocations.send(Arc::from(session));
    }

    fn revocations(&self) -> broadcast::Receiver<Arc<str>> {
        self.inner.revocations.subscribe()
    }

    fn publish_to_user(&self, user_id: UserId, frame: Utf8Bytes) {
        let _ = self
            .inner
            .user_frames
            .send((Recipients::One(user_id), frame));
    }

    fn user_frames(&self) -> broadcast::Receiver<UserFrame> {
        self.inner.user_frames.subscribe()
    }

    fn publish_to_watchers(&self, users: Arc<[UserId]>, frame: Utf8Bytes) {
        let _ = self
            .inner
            .user_frames
            .send((Recipients::Watchers(users), frame));
    }

    async fn set_user_presence(
        &self,
        user_id: UserId,
        here: Option<PresenceStatus>,
    ) -> Result<Option<PresenceStatus>, BrokerError> {
        let mut users = self.inner.users.lock().unwrap_or_else(|e| e.into_inner());
        let before = users
            .get(&user_id)
            .copied()
            .unwrap_or(PresenceStatus::Offline);
        match here {
            Some(status) if status != PresenceStatus::Offline => {
                users.insert(user_id, status);
            }
            _ => {
                users.remove(&user_id);
            }
        }
        let after = here.unwrap_or(PresenceStatus::Offline);
        Ok((before != after).then_some(after))
    }

    async fn user_presence(&self, ids: &[UserId]) -> Result<Vec<PresenceStatus>, BrokerError> {
        let users = self.inner.users.lock().unwrap_or_else(|e| e.into_inner());
        Ok(ids
            .iter()
            .map(|id| users.get(id).copied().unwrap_or(PresenceStatus::Offline))
            .collect())
    }

    fn presence_events(&self) -> broadcast::Receiver<PresenceEvent> {
        self.inner.presence_events.subscribe()
    }

    fn backend(&self) -> &'static str {
        "local"
    }

    fn is_connected(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::EnvelopeKind;

    fn envelope(room_id: RoomId, seq: i64) -> Envelope {
        Envelope {
            room_id,
            kind: EnvelopeKind::Chat { seq },
            frame: format!("{{\"seq\":{seq}}}").into(),
        }
    }

    #[tokio::test]
    async fn subscriber_receives_only_its_room() {
        let broker = LocalBroker::new();
        let mut sub = broker.subscribe(1).await.expect("subscribes");
        broker.publish(envelope(2, 1));
        broker.publish(envelope(1, 1));
        match sub.recv().await {
            Some(Received::Envelope(env)) => assert_eq!(env.room_id, 1),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn dropping_the_subscription_unsubscribes() {
        let broker = LocalBroker::new();
        drop(broker.subscribe(1).await.expect("subscribes"));
        assert!(broker.inner.rooms.rooms().is_empty());
    }

    #[tokio::test]
    async fn overflow_reports_lagged_instead_of_blocking() {
        let broker = LocalBroker::new();
        let mut sub = broker.subscribe(1).await.expect("subscribes");
        for seq in 0..(super::super::SUBSCRIPTION_CAPACITY as i64 + 10) {
            broker.publish(envelope(1, seq));
        }
        assert!(matches!(sub.recv().await, Some(Received::Lagged)));
    }

    #[tokio::test]
    async fn presence_counts_connections_per_user() {
        let broker = LocalBroker::new();
        let ada = User {
            id: 1,
            username: "ada".into(),
        };
        assert!(broker.presence_enter(9, &ada).await.expect("enter"));
        assert!(!broker.presence_enter(9, &ada).await.expect("enter"));
        assert_eq!(
            broker.presence_list(9).await.expect("list"),
            vec![ada.clone()]
        );
        assert!(!broker.presence_exit(9, 1).await.expect("exit"));
        assert!(broker.presence_exit(9, 1).await.expect("exit"));
        assert!(broker.presence_list(9).await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn user_presence_reports_only_changes() {
        use PresenceStatus::{Away, Offline, Online};
        let broker = LocalBroker::new();
        assert_eq!(
            broker.set_user_presence(1, Some(Online)).await.ok(),
            Some(Some(Online))
        );
        assert_eq!(
            broker.set_user_presence(1, Some(Online)).await.ok(),
            Some(None)
        );
        assert_eq!(
            broker.set_user_presence(1, Some(Away)).await.ok(),
            Some(Some(Away))
        );
        assert_eq!(
            broker.user_presence(&[1, 2]).await.ok(),
            Some(vec![Away, Offline])
        );
        assert_eq!(
            broker.set_user_presence(1, None).await.ok(),
            Some(Some(Offline))
        );
        assert_eq!(broker.set_user_presence(1, None).await.ok(), Some(None));
    }
}
