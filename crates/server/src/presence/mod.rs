//! Presence service: whether a person is online, away or offline, across every
//! instance, told to the people who share a room or DM with them and to nobody else.
//!
//! - Here: this process counts its own connections of each user and what each said
//!   (`presence {status: away|online}`): the user is online here while one of them is
//!   online, away while all are away, gone here when the last closes.
//! - Across processes: a worker hands each user's state here to the [`Broker`], which
//!   keeps one record per process and user and answers when the user's global status
//!   changed (the Redis broker in a Lua script, so exactly one process sees each
//!   change; a crashed process's records expire with its heartbeat and are reaped).
//!   The worker coalesces: a user whose state changes many times while the broker is
//!   slow costs one call with the newest state; calls that fail are retried.
//! - Announcing a change costs one query (the user's contacts: everyone sharing one of
//!   their rooms) and one broker message carrying the contact ids, which every process
//!   delivers to its own sockets of those users through its per-user index: O(contacts)
//!   per change, independent of how many users are online. Going offline also stores
//!   `last_seen_at`.
//! - Reading (`GET /users/{id}`, `GET /users/presence`, member lists) answers only for
//!   people who share a room or DM with the caller.

pub mod routes;
mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use socket_hub_protocol::rest::UserPresence;
use socket_hub_protocol::{PresenceStatus, ServerFrame, UserId};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

pub use routes::routes;
pub use store::PresenceStore;

use crate::broker::{Broker, PresenceEvent, encode};
use crate::error::Result;
use crate::store::from_millis;

/// How often changes the broker refused are tried again.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Broker calls in flight at once when many users changed together.
const CONCURRENCY: usize = 16;
/// Most users one presence read may ask about.
pub const MAX_LOOKUP: usize = 200;

/// This process's presence bookkeeping and the worker that publishes it; cloning bumps
/// one reference count.
#[derive(Clone)]
pub struct Presence(Arc<Inner>);

struct Inner {
    broker: Arc<dyn Broker>,
    store: PresenceStore,
    // std Mutex: map updates only, never held across an `.await`.
    /// Per user with connections here: each connection's id and whether it is away.
    here: Mutex<HashMap<UserId, Vec<(u64, bool)>>>,
    /// Users whose state here changed since the worker last looked.
    dirty: Mutex<HashSet<UserId>>,
    wake: Notify,
}

impl Presence {
    /// The service over `broker` and `store`; spawn [`Presence::run`] once to publish.
    pub fn new(broker: Arc<dyn Broker>, store: PresenceStore) -> Self {
        Self(Arc::new(Inner {
            broker,
            store,
            here: Mutex::default(),
            dirty: Mutex::default(),
            wake: Notify::new(),
        }))
    }

    /// Counts connection `session_id` of `user_id` in, online, until the guard drops.
    pub fn connect(&self, user_id: UserId, session_id: u64) -> PresenceGuard {
        self.update(user_id, |sessions| sessions.push((session_id, false)));
        PresenceGuard {
            presence: self.clone(),
            user_id,
            session_id,
        }
    }

    /// What connection `session_id` says now: `away` or `online` (`offline` is not a
    /// connection's to say and reads as away).
    pub fn set(&self, user_id: UserId, session_id: u64, status: PresenceStatus) {
        let away = status != PresenceStatus::Online;
        self.update(user_id, |sessions| {
            if let Some(entry) = sessions.iter_mut().find(|(id, _)| *id == session_id) {
                entry.1 = away;
            }
        });
    }

    fn update(&self, user_id: UserId, change: impl FnOnce(&mut Vec<(u64, bool)>)) {
        let changed = {
            let mut here = self.0.here.lock().unwrap_or_else(|e| e.into_inner());
            let sessions = here.entry(user_id).or_default();
            let before = state_of(sessions);
            change(sessions);
            let after = state_of(sessions);
            if sessions.is_empty() {
                here.remove(&user_id);
            }
            before != after
        };
        if changed {
            self.mark(std::iter::once(user_id));
        }
    }

    fn mark(&self, users: impl IntoIterator<Item = UserId>) {
        let mut dirty = self.0.dirty.lock().unwrap_or_else(|e| e.into_inner());
        dirty.extend(users);
        drop(dirty);
        self.0.wake.notify_one();
    }

    /// This process's view of `user_id`: `None` without connections here.
    fn here(&self, user_id: UserId) -> Option<PresenceStatus> {
        let here = self.0.here.lock().unwrap_or_else(|e| e.into_inner());
        here.get(&user_id).and_then(|s| state_of(s))
    }

    /// Hands changed users to the broker and announces what changed globally, until
    /// `shutdown`. Spawned once per process.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut events = self.0.broker.presence_events();
        let mut retry = tokio::time::interval(RETRY_INTERVAL);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failed: HashSet<UserId> = HashSet::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.0.wake.notified() => {}
                _ = retry.tick() => {
                    self.mark(failed.drain());
                }
                event = events.recv() => match event {
                    Ok(PresenceEvent::Changed(user_id, status)) => {
                        self.announce(user_id, status).await;
                        continue;
                    }
                    Ok(PresenceEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        let users: Vec<UserId> = {
                            let here = self.0.here.lock().unwrap_or_else(|e| e.into_inner());
                            here.keys().copied().collect()
                        };
                        self.mark(users);
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
            let batch: Vec<UserId> = {
                let mut dirty = self.0.dirty.lock().unwrap_or_else(|e| e.into_inner());
                dirty.drain().collect()
            };
            let outcomes: Vec<(UserId, bool)> = futures_util::stream::iter(batch)
                .map(|user_id| {
                    let this = self.clone();
                    async move { (user_id, this.publish(user_id).await) }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            failed.extend(outcomes.into_iter().filter(|(_, ok)| !ok).map(|(u, _)| u));
        }
    }

    /// Sends `user_id`'s state here to the broker; announces a global change. `false`
    /// when the broker could not take it (tried again later).
    async fn publish(&self, user_id: UserId) -> bool {
        let here = self.here(user_id);
        match self.0.broker.set_user_presence(user_id, here).await {
            Ok(Some(status)) => {
                self.announce(user_id, status).await;
                true
            }
            Ok(None) => true,
            Err(err) => {
                tracing::debug!(user_id, error = %err, "presence not recorded; retrying");
                false
            }
        }
    }

    /// Tells everyone who shares a room or DM with `user_id` that their status is now
    /// `status` (storing the last-seen time first when they went offline).
    async fn announce(&self, user_id: UserId, status: PresenceStatus) {
        let last_seen_at = if status == PresenceStatus::Offline {
            match self.0.store.went_offline(user_id).await {
                Ok(at) => Some(from_millis(at)),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot record last seen");
                    None
                }
            }
        } else {
            None
        };
        let contacts = match self.0.store.contacts(user_id).await {
            Ok(contacts) => contacts,
            Err(err) => {
                tracing::warn!(error = %err, "cannot list who sees a presence change");
                return;
            }
        };
        crate::metrics::presence_change(contacts.len());
        if contacts.is_empty() {
            return;
        }
        let frame = encode(&ServerFrame::Presence {
            user_id,
            status,
            last_seen_at,
        });
        self.0
            .broker
            .publish_to_watchers(Arc::from(contacts), frame);
    }

    /// The presence of those of `users` who share a room or DM with `viewer` (and of
    /// the viewer), in the order asked; the others are left out.
    pub async fn visible(&self, viewer: UserId, users: &[UserId]) -> Result<Vec<UserPresence>> {
        let visible = self.0.store.visible_to(viewer, users).await?;
        let shown: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|id| visible.contains_key(id))
            .collect();
        let statuses = self.statuses(&shown).await;
        Ok(shown
            .into_iter()
            .zip(statuses)
            .map(|(user_id, status)| UserPresence {
                user_id,
                status,
                last_seen_at: visible.get(&user_id).copied().flatten().map(from_millis),
            })
            .collect())
    }

    /// Global statuses of `users`; this process's own view when the broker cannot
    /// answer (a Redis outage degrades presence, never fails the request).
    pub async fn statuses(&self, users: &[UserId]) -> Vec<PresenceStatus> {
        match self.0.broker.user_presence(users).await {
            Ok(statuses) => statuses,
            Err(err) => {
                tracing::debug!(error = %err, "presence read from this instance only");
                users
                    .iter()
                    .map(|id| self.here(*id).unwrap_or(PresenceStatus::Offline))
                    .collect()
            }
        }
    }
}

/// What a user's connections here say together: online if any is, away if all are,
/// `None` without connections.
fn state_of(sessions: &[(u64, bool)]) -> Option<PresenceStatus> {
    if sessions.is_empty() {
        None
    } else if sessions.iter().any(|(_, away)| !away) {
        Some(PresenceStatus::Online)
    } else {
        Some(PresenceStatus::Away)
    }
}

/// One connection counted in presence; dropping it counts the connection out.
pub struct PresenceGuard {
    presence: Presence,
    user_id: UserId,
    session_id: u64,
}

impl Drop for PresenceGuard {
    fn drop(&mut self) {
        let session_id = self.session_id;
        self.presence.update(self.user_id, |sessions| {
            sessions.retain(|(id, _)| *id != session_id)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_away_only_when_every_connection_is() {
        assert_eq!(state_of(&[]), None);
        assert_eq!(state_of(&[(1, true)]), Some(PresenceStatus::Away));
        assert_eq!(
            state_of(&[(1, true), (2, false)]),
            Some(PresenceStatus::Online)
        );
    }
}
