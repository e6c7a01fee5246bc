//! Logout means out: the sessions (refresh-token families) revoked within the last
//! access-token lifetime, checked in memory by every door that takes an access token.
//!
//! The store is the record (`refresh_tokens.revoked_at`, set by logout and by refresh
//! reuse); each process keeps the recent revocations in a set, so the check per request
//! is a hash lookup, not a query. The set is kept in step three ways: loaded from the
//! store at start, fed by the broker's revocation fan-out (every instance hears a
//! logout at once and closes that session's sockets), and topped up by a store poll
//! every [`POLL_INTERVAL`], which catches what the broker dropped (Redis down, an
//! instance reconnecting). An entry is forgotten once every access token of its session
//! has expired: no token is issued to a revoked session, so that is one access-token
//! lifetime after the revocation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::TokenStore;
use crate::broker::Broker;
use crate::store::now_millis;

/// How often each process reads revocations from the store, as a backstop for the
/// broker: the longest a dropped fan-out message leaves a revoked token working.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Clock skew between instances tolerated when polling: each poll looks back this far
/// before the newest revocation already seen.
const POLL_OVERLAP_MS: i64 = 30_000;
/// Kept past the access-token lifetime, for clock skew between instances.
const FORGET_SLACK_MS: i64 = 30_000;

/// The recently revoked sessions, shared by every door of this process.
pub struct Revocations {
    /// Session id → when to forget it (Unix ms).
    // std Mutex: map operations only, never held across an `.await`.
    revoked: Mutex<HashMap<Arc<str>, i64>>,
    /// How long after its revocation a session is remembered.
    keep_ms: i64,
    broker: Arc<dyn Broker>,
    /// Newly revoked sessions, for the gateway to close their sockets.
    closed: broadcast::Sender<Arc<str>>,
}

impl Revocations {
    /// An empty list whose entries live `access_ttl` (plus slack for clock skew).
    pub fn new(broker: Arc<dyn Broker>, access_ttl: Duration) -> Self {
        let ttl_ms = i64::try_from(access_ttl.as_millis()).unwrap_or(i64::MAX / 4);
        Self {
            revoked: Mutex::new(HashMap::new()),
            keep_ms: ttl_ms.saturating_add(FORGET_SLACK_MS),
            broker,
            closed: broadcast::channel(crate::broker::REVOCATION_CAPACITY).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, i64>> {
        self.revoked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether session `sid` was revoked: one hash lookup.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.lock().contains_key(sid)
    }

    /// Records a revocation made here (already stored) and tells every instance.
    pub fn revoke(&self, sid: &str) {
        self.note(Arc::from(sid), now_millis());
        self.broker.publish_revocation(sid);
    }

    /// Newly revoked sessions from now on, whoever revoked them.
    pub fn watch(&self) -> broadcast::Receiver<Arc<str>> {
        self.closed.subscribe()
    }

    /// Adds `sid`, revoked at `revoked_at`; tells watchers when it is new.
    fn note(&self, sid: Arc<str>, revoked_at: i64) {
        let forget_at = revoked_at.saturating_add(self.keep_ms);
        let now = now_millis();
        if forget_at <= now {
            return;
        }
        let new = {
            let mut revoked = self.lock();
            let new = revoked.insert(sid.clone(), forget_at).is_none();
            if new && revoked.len().is_power_of_two() {
                // Amortised pruning: at most one sweep per doubling.
                revoked.retain(|_, forget| *forget > now);
            }
            new
        };
        if new {
            let _ = self.closed.send(sid);
        }
    }

    fn prune(&self) {
        let now = now_millis();
        self.lock().retain(|_, forget| *forget > now);
    }

    /// Loads what the store revoked within the last access-token lifetime. Run once
    /// before serving, so a restarted instance does not accept a logged-out token.
    pub async fn load(&self, tokens: &TokenStore) -> Result<i64, crate::store::StoreError> {
        let since = now_millis().saturating_sub(self.keep_ms);
        let mut newest = since;
        for (sid, revoked_at) in tokens.revoked_since(since).await? {
            newest = newest.max(revoked_at);
            self.note(Arc::from(sid), revoked_at);
        }
        Ok(newest)
    }

    /// Keeps the list in step until `shutdown`: the broker's revocations as they come,
    /// the store every [`POLL_INTERVAL`]. `newest` is what [`Revocations::load`] returned.
    pub async fn sync(
        self: Arc<Self>,
        tokens: TokenStore,
        mut newest: i64,
        shutdown: CancellationToken,
    ) {
        let mut remote = self.broker.revocations();
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = remote.recv() => match received {
                    Ok(sid) => self.note(sid, now_millis()),
                    // Missed some: the next poll finds them.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = poll.tick() => {
                    self.prune();
                    let since = newest.saturating_sub(POLL_OVERLAP_MS);
                    match tokens.revoked_since(since).await {
                        Ok(rows) => {
                            for (sid, revoked_at) in rows {
                                newest = newest.max(revoked_at);
                                self.note(Arc::from(sid), revoked_at);
                            }
                        }
                        Err(err) => tracing::warn!(error = %err, "cannot poll revocations"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::local::LocalBroker;

    #[tokio::test]
    async fn revoked_sessions_are_told_once_and_checked_in_memory() {
        let revocations = Revocations::new(Arc::new(LocalBroker::new()), Duration::from_secs(60));
        let mut watch = revocations.watch();
        revocations.revoke("s1");
        revocations.revoke("s1");
        assert!(revocations.is_revoked("s1"));
        assert!(!revocations.is_revoked("s2"));
        assert_eq!(watch.recv().await.expect("told").as_ref(), "s1");
        assert!(watch.try_recv().is_err(), "told twice");
    }

    #[test]
    fn revocations_older_than_a_token_lifetime_are_forgotten() {
        let revocations = Revocations::new(Arc::new(LocalBroker::new()), Duration::from_secs(60));
        revocations.note(Arc::from("old"), now_millis() - 3_600_000);
        assert!(!revocations.is_revoked("old"));
    }
}
