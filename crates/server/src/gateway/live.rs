//! Who holds this process's connection slots, so no one holder can take them all:
//! handshakes without a token (per client address and in total) until they
//! authenticate, each user's connections, and each login session's sockets (so a
//! logout can close them).
//!
//! Every claim is a guard that gives its share back when dropped, on every path a
//! connection can end by. Counts are per process: behind a load balancer, a user's cap
//! applies on each instance.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use socket_hub_protocol::UserId;

use socket_hub_protocol::{ErrorCode, ServerFrame};

use super::outbound::{CloseReason, Outbound, SessionHandle};
use crate::broker::{Recipients, encode};

/// This process's live connections, by what limits them.
#[derive(Default)]
pub(crate) struct Live {
    // std Mutex: counter and map updates only, never held across an `.await`.
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Connections not authenticated yet (no token at the handshake), per address.
    pending_by_addr: HashMap<IpAddr, usize>,
    /// Their total.
    pending: usize,
    /// Authenticated connections per user.
    by_user: HashMap<UserId, usize>,
    /// Authenticated connections per login session (`sid`), for logout.
    by_session: HashMap<Arc<str>, Vec<SessionHandle>>,
    /// Authenticated connections per user, for frames addressed to users
    /// (notifications, presence): delivery costs the user's own sockets, not a scan.
    sockets_of: HashMap<UserId, Vec<SessionHandle>>,
    /// The sockets among those that watch presence (they sent a `presence` frame).
    watchers_of: HashMap<UserId, Vec<SessionHandle>>,
}

/// Why an unauthenticated handshake was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PendingRefused {
    /// This address holds its share of unauthenticated connections.
    Address,
    /// Unauthenticated connections hold their whole share of the slots.
    Total,
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims a slot for a connection from `addr` that has yet to authenticate.
    pub(crate) fn admit_pending(
        self: &Arc<Self>,
        addr: IpAddr,
        per_addr: usize,
        total: usize,
    ) -> Result<PendingGuard, PendingRefused> {
        let mut inner = self.lock();
        if inner.pending >= total {
            return Err(PendingRefused::Total);
        }
        let count = inner.pending_by_addr.entry(addr).or_insert(0);
        if *count >= per_addr {
            return Err(PendingRefused::Address);
        }
        *count += 1;
        inner.pending += 1;
        Ok(PendingGuard {
            live: self.clone(),
            addr,
        })
    }

    /// Claims one of `user`'s at most `cap` connections.
    pub(crate) fn admit_user(self: &Arc<Self>, user: UserId, cap: usize) -> Option<UserGuard> {
        let mut inner = self.lock();
        let count = inner.by_user.entry(user).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(UserGuard {
            live: self.clone(),
            user,
        })
    }

    /// Records `session` as a socket of its user and of login session `sid` (when its
    /// token names one) until the guard drops.
    pub(crate) fn register(
        self: &Arc<Self>,
        sid: Option<Arc<str>>,
        session: SessionHandle,
    ) -> SessionGuard {
        let id = session.id();
        let user_id = session.user().id;
        let mut inner = self.lock();
        // The map's own key when the login session is listed already: one `sid`
        // allocation per login session, not one per socket.
        let sid = sid.map(|sid| match inner.by_session.get_key_value(&*sid) {
            Some((listed, _)) => listed.clone(),
            None => sid,
        });
        if let Some(sid) = &sid {
            inner
                .by_session
                .entry(sid.clone())
                .or_default()
                .push(session.clone());
        }
        inner.sockets_of.entry(user_id).or_default().push(session);
        drop(inner);
        SessionGuard {
            live: self.clone(),
            sid,
            user_id,
            id,
        }
    }

    /// Closes every socket of login session `sid` with 4401 after an `unauthorized`
    /// error saying why; returns how many.
    pub(crate) fn close_session(&self, sid: &str) -> usize {
        let sessions = self.lock().by_session.get(sid).cloned().unwrap_or_default();
        for session in &sessions {
            close_revoked(session);
        }
        sessions.len()
    }

    /// This process's sockets `recipients` names, collected under the lock and handed
    /// over after it is released (a push may wake a writer; no lock is held for that):
    /// one lookup per recipient, never a scan of every socket.
    pub(crate) fn sockets_of(&self, recipients: &Recipients) -> Vec<SessionHandle> {
        let inner = self.lock();
        let index = match recipients {
            Recipients::One(_) => &inner.sockets_of,
            Recipients::Watchers(_) => &inner.watchers_of,
        };
        recipients
            .as_slice()
            .iter()
            .filter_map(|user_id| index.get(user_id))
            .flatten()
            .cloned()
            .collect()
    }

    /// From now on `session` also gets the presence changes of its user's contacts
    /// (until it closes); a no-op when it already does.
    pub(crate) fn watch(&self, session: &SessionHandle) {
        let mut inner = self.lock();
        let watchers = inner.watchers_of.entry(session.user().id).or_default();
        if !watchers.iter().any(|s| s.id() == session.id()) {
            watchers.push(session.clone());
        }
    }

    /// Closes the sockets of every session `revoked` names (after missed notices).
    pub(crate) fn close_sessions_where(&self, revoked: impl Fn(&str) -> bool) {
        let sessions: Vec<SessionHandle> = self
            .lock()
            .by_session
            .iter()
            .filter(|(sid, _)| revoked(sid))
            .flat_map(|(_, sessions)| sessions.iter().cloned())
            .collect();
        sessions.iter().for_each(close_revoked);
    }
}

/// Tells the client why, then closes with 4401 once what is queued is written.
pub(crate) fn close_revoked(session: &SessionHandle) {
    let frame = ServerFrame::error(
        ErrorCode::Unauthorized,
        "signed out: this login session was revoked; sign in again",
        None,
    );
    crate::metrics::reply_sent(&frame);
    session.reply(Outbound::Frame(encode(&frame)));
    session.close(CloseReason::SessionRevoked);
}

/// An unauthenticated connection's claim; dropped once it authenticates or ends.
pub(crate) struct PendingGuard {
    live: Arc<Live>,
    addr: IpAddr,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut inner = self.live.lock();
        inner.pending = inner.pending.saturating_sub(1);
        if let Some(count) = inner.pending_by_addr.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                inner.pending_by_addr.remove(&self.addr);
            }
        }
    }
}

/// One of a user's connections.
pub(crate) struct UserGuard {
    live: Arc<Live>,
    user: UserId,
}

impl Drop for UserGuard {
    fn drop(&mut self) {
        let mut inner = self.live.lock();
        if let Some(count) = inner.by_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                inner.by_user.remove(&self.user);
            }
        }
    }
}

/// A socket's entry under its user and its login session.
pub(crate) struct SessionGuard {
    live: Arc<Live>,
    sid: Option<Arc<str>>,
    user_id: UserId,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut inner = self.live.lock();
        if let Some(sid) = &self.sid
            && let Some(sessions) = inner.by_session.get_mut(sid)
        {
            sessions.retain(|s| s.id() != self.id);
            if sessions.is_empty() {
                inner.by_session.remove(sid);
            }
        }
        let inner = &mut *inner;
        for index in [&mut inner.sockets_of, &mut inner.watchers_of] {
            if let Some(sessions) = index.get_mut(&self.user_id) {
                sessions.retain(|s| s.id() != self.id);
                if sessions.is_empty() {
                    index.remove(&self.user_id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_claims_are_capped_per_address_and_in_total_and_given_back() {
        let live = Arc::new(Live::default());
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = live.admit_pending(a, 2, 3).expect("first");
        let _second = live.admit_pending(a, 2, 3).expect("second");
        assert_eq!(
            live.admit_pending(a, 2, 3).err(),
            Some(PendingRefused::Address)
        );
        let _third = live.admit_pending(b, 2, 3).expect("other address");
        assert_eq!(
            live.admit_pending(b, 2, 3).err(),
            Some(PendingRefused::Total)
        );
        drop(first);
        assert!(live.admit_pending(a, 2, 3).is_ok());
    }

    fn handle(id: u64, user_id: UserId) -> SessionHandle {
        let user = socket_hub_protocol::User {
            id: user_id,
            username: format!("u{user_id}"),
        };
        SessionHandle::new(id, user, 4, tokio_util::sync::CancellationToken::new()).0
    }

    fn ids(sessions: Vec<SessionHandle>) -> Vec<u64> {
        let mut ids: Vec<u64> = sessions.iter().map(SessionHandle::id).collect();
        ids.sort_unstable();
        ids
    }

    #[test]
    fn frames_for_users_find_only_their_sockets_and_watchers_until_they_close() {
        let live = Arc::new(Live::default());
        let a1 = live.register(Some(Arc::from("s1")), handle(1, 7));
        let _a2 = live.register(None, handle(2, 7));
        let _b = live.register(Some(Arc::from("s3")), handle(3, 8));
        assert_eq!(ids(live.sockets_of(&Recipients::One(7))), vec![1, 2]);
        assert_eq!(ids(live.sockets_of(&Recipients::One(9))), Vec::<u64>::new());
        let watchers = Recipients::Watchers(Arc::from(vec![7, 8]));
        assert!(live.sockets_of(&watchers).is_empty(), "nobody watches yet");
        live.watch(&handle(1, 7));
        live.watch(&handle(1, 7));
        live.watch(&handle(3, 8));
        assert_eq!(ids(live.sockets_of(&watchers)), vec![1, 3]);
        drop(a1);
        assert_eq!(ids(live.sockets_of(&Recipients::One(7))), vec![2]);
        assert_eq!(ids(live.sockets_of(&watchers)), vec![3]);
        assert_eq!(live.close_session("s1"), 0);
    }

    #[test]
    fn user_claims_are_capped_and_given_back() {
        let live = Arc::new(Live::default());
        let first = live.admit_user(7, 1).expect("first");
        assert!(live.admit_user(7, 1).is_none());
        assert!(live.admit_user(8, 1).is_some());
        drop(first);
        assert!(live.admit_user(7, 1).is_some());
    }
}
