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
use crate::broker::encode;

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

    /// Records `session` as a socket of login session `sid` until the guard drops.
    pub(crate) fn register(
        self: &Arc<Self>,
        sid: Arc<str>,
        session: SessionHandle,
    ) -> SessionGuard {
        let id = session.id();
        let mut inner = self.lock();
        // The map's own key when the login session is listed already: one `sid`
        // allocation per login session, not one per socket.
        let sid = match inner.by_session.get_key_value(&*sid) {
            Some((listed, _)) => listed.clone(),
            None => sid,
        };
        inner
            .by_session
            .entry(sid.clone())
            .or_default()
            .push(session);
        drop(inner);
        SessionGuard {
            live: self.clone(),
            sid,
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

    /// This process's sockets of `user_id` (a scan: used for notifications, which are
    /// rare next to messages).
    pub(crate) fn sessions_of(&self, user_id: UserId) -> Vec<SessionHandle> {
        self.lock()
            .by_session
            .values()
            .flatten()
            .filter(|session| session.user().id == user_id)
            .cloned()
            .collect()
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

/// A socket's entry under its login session.
pub(crate) struct SessionGuard {
    live: Arc<Live>,
    sid: Arc<str>,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut inner = self.live.lock();
        if let Some(sessions) = inner.by_session.get_mut(&self.sid) {
            sessions.retain(|s| s.id() != self.id);
            if sessions.is_empty() {
                inner.by_session.remove(&self.sid);
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
