//! A room's notices (join and leave, typing, presence, read markers) sent in bursts.
//!
//! Each notice is one frame for every member, and each frame that reaches an idle
//! member wakes its writer for one write of its own. When many people come online at
//! once (a reconnect storm, a workday starting) a room's notices arrive one after the
//! other, so every member paid a queue slot, a wakeup and a socket write per notice.
//! Now the first notice after a quiet spell still goes out at once, and notices that
//! follow within [`WINDOW`] are held until the window ends and then queued together as
//! one [`Burst`], shared by every member: one queue slot per member (so a crowd's
//! notices cannot fill a member's queue and get it dropped as too slow), one wakeup,
//! and one flush for them all.
//!
//! Nothing is reordered within the room: the room task sends what is held before any
//! chat message or eviction, and a held notice goes only to the members who were there
//! when it arrived (members are kept in joining order, so that is a prefix of them).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use socket_hub_protocol::UserId;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::outbound::{Outbound, SessionHandle};

/// Longest a notice waits for the ones that follow it.
pub(super) const WINDOW: Duration = Duration::from_millis(20);

/// A room's held notices and its window.
#[derive(Default)]
pub(super) struct Notices {
    held: Vec<Held>,
    /// Notices that arrive before this are held; `None` until the first notice.
    quiet_until: Option<Instant>,
    /// Fires at the end of the window; created with the first held notice.
    timer: Option<Pin<Box<Sleep>>>,
}

/// Notices of one room queued together; each member's writer writes the ones meant
/// for it ([`Burst::frames_for`]).
#[derive(Debug)]
pub(crate) struct Burst {
    notices: Vec<Held>,
    /// Their frames' bytes together.
    bytes: usize,
}

impl Burst {
    /// The frames for the member at `position` in the room's list (at the flush) who is
    /// `user_id`, in order.
    pub(crate) fn frames_for(
        &self,
        user_id: UserId,
        position: u32,
    ) -> impl Iterator<Item = &Utf8Bytes> {
        self.notices
            .iter()
            .filter(move |n| n.is_for(user_id, position))
            .map(|n| &n.frame)
    }

    /// Bytes of all its frames, to bound what one write batch takes.
    pub(crate) fn len(&self) -> usize {
        self.bytes
    }
}

/// A notice waiting for its window to end.
#[derive(Debug)]
struct Held {
    frame: Utf8Bytes,
    except_user: Option<UserId>,
    /// Members (a prefix of the room's list) when it arrived: the ones it is for.
    audience: u32,
}

impl Held {
    fn is_for(&self, user_id: UserId, position: u32) -> bool {
        position < self.audience && Some(user_id) != self.except_user
    }
}

impl Notices {
    /// Sends `frame` to `members` now, or holds it if the room's window is open. Returns
    /// how many members it was queued for.
    pub(super) fn offer(
        &mut self,
        members: &[SessionHandle],
        frame: Utf8Bytes,
        except_user: Option<UserId>,
    ) -> u64 {
        let now = Instant::now();
        if self.held.is_empty() && self.quiet_until.is_none_or(|until| now >= until) {
            self.quiet_until = Some(now + WINDOW);
            return send(members, &frame, except_user);
        }
        if self.held.is_empty() {
            let until = self.quiet_until.unwrap_or(now);
            super::set_timer(&mut self.timer, until);
        }
        self.held.push(Held {
            frame,
            except_user,
            audience: u32::try_from(members.len()).unwrap_or(u32::MAX),
        });
        0
    }

    /// Whether notices wait for [`Notices::due`].
    pub(super) fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Resolves when the window of the held notices ends; only while `holding`.
    pub(super) async fn due(&mut self) {
        if let Some(timer) = &mut self.timer {
            timer.as_mut().await;
        }
    }

    /// Queues the held notices as one burst for every member one of them is for, and
    /// opens a new window. Returns how many members it was queued for.
    pub(super) fn flush(&mut self, members: &[SessionHandle]) -> u64 {
        if self.held.is_empty() {
            return 0;
        }
        let notices = std::mem::take(&mut self.held);
        let bytes = notices.iter().map(|n| n.frame.len()).sum();
        let burst = Arc::new(Burst { notices, bytes });
        let mut queued = 0u64;
        for (position, member) in (0u32..).zip(members) {
            let user_id = member.user().id;
            if burst.notices.iter().any(|n| n.is_for(user_id, position))
                && member.push(Outbound::Notices {
                    burst: Arc::clone(&burst),
                    position,
                })
            {
                queued += 1;
            }
        }
        self.quiet_until = Some(Instant::now() + WINDOW);
        queued
    }

    /// The member at `index` left the room's list (the rest moved down by one): held
    /// notices stay for the members they were for.
    pub(super) fn member_removed(&mut self, index: usize) {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        for notice in &mut self.held {
            if index < notice.audience {
                notice.audience -= 1;
            }
        }
    }
}

/// Queues `frame` for every member but `except_user`'s connections.
fn send(members: &[SessionHandle], frame: &Utf8Bytes, except_user: Option<UserId>) -> u64 {
    let mut queued = 0u64;
    for member in members {
        if Some(member.user().id) != except_user && member.push(Outbound::Frame(frame.clone())) {
            queued += 1;
        }
    }
    queued
}

#[cfg(test)]
mod tests {
    use socket_hub_protocol::User;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::gateway::outbound::Queue;

    fn member(id: u64, user_id: UserId) -> (SessionHandle, Queue) {
        let user = User {
            id: user_id,
            username: format!("u{user_id}"),
        };
        SessionHandle::new(id, user, 16, CancellationToken::new())
    }

    /// The frames queued for `member`, bursts opened as its writer would.
    fn drained(member: &SessionHandle, queue: &mut Queue) -> Vec<String> {
        let mut frames = Vec::new();
        while let Ok(item) = queue.try_recv() {
            match item {
                Outbound::Frame(frame) => frames.push(frame.to_string()),
                Outbound::Notices { burst, position } => frames.extend(
                    burst
                        .frames_for(member.user().id, position)
                        .map(ToString::to_string),
                ),
                _ => {}
            }
        }
        frames
    }

    fn frame(text: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(text)
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_out_together_to_the_members_it_was_for() {
        let (a, mut qa) = member(1, 10);
        let (b, mut qb) = member(2, 20);
        let (c, mut qc) = member(3, 30);
        let mut members = vec![a.clone(), b.clone()];
        let mut notices = Notices::default();

        // The first notice after a quiet spell is not held.
        assert_eq!(notices.offer(&members, frame("n1"), None), 2);
        assert!(!notices.holding());
        assert_eq!(drained(&a, &mut qa), ["n1"]);
        assert_eq!(drained(&b, &mut qb), ["n1"]);

        // Within the window: held, for the members there now (b's own is not for b).
        assert_eq!(notices.offer(&members, frame("n2"), Some(20)), 0);
        members.push(c.clone());
        assert_eq!(notices.offer(&members, frame("n3"), None), 0);
        assert!(notices.holding());
        assert!(drained(&a, &mut qa).is_empty());

        let started = Instant::now();
        notices.due().await;
        assert_eq!(started.elapsed(), WINDOW);
        assert_eq!(notices.flush(&members), 3, "one burst per member");
        assert!(!notices.holding());
        assert_eq!(drained(&a, &mut qa), ["n2", "n3"]);
        assert_eq!(drained(&b, &mut qb), ["n3"]);
        assert_eq!(drained(&c, &mut qc), ["n3"], "n2 came before c joined");

        // A flush opens a new window; after it a notice goes at once again.
        assert_eq!(notices.offer(&members, frame("n4"), None), 0);
        notices.due().await;
        notices.flush(&members);
        tokio::time::advance(WINDOW).await;
        assert_eq!(notices.offer(&members, frame("n5"), None), 3);
        assert_eq!(drained(&c, &mut qc), ["n4", "n5"]);
    }

    /// A crowd coming online must not fill a member's bounded queue and get the member
    /// dropped as too slow: a held burst takes one slot however many notices it holds.
    #[tokio::test(start_paused = true)]
    async fn a_burst_takes_one_queue_slot_whatever_its_size() {
        let user = User {
            id: 10,
            username: "u10".into(),
        };
        let (a, mut qa) = SessionHandle::new(1, user, 4, CancellationToken::new());
        let members = vec![a.clone()];
        let mut notices = Notices::default();
        let texts: Vec<String> = (0..50).map(|i| format!("n{i}")).collect();
        for text in &texts {
            notices.offer(&members, Utf8Bytes::from(text.clone()), None);
        }
        notices.due().await;
        assert_eq!(notices.flush(&members), 1);
        assert_eq!(a.close_reason(), None, "not dropped as too slow");
        assert_eq!(drained(&a, &mut qa), texts);
    }

    #[tokio::test(start_paused = true)]
    async fn a_member_leaving_keeps_held_notices_for_the_rest() {
        let (a, mut qa) = member(1, 10);
        let (b, _qb) = member(2, 20);
        let (c, mut qc) = member(3, 30);
        let (d, mut qd) = member(4, 40);
        let mut members = vec![a.clone(), b, c.clone()];
        let mut notices = Notices::default();
        notices.offer(&members, frame("first"), None);
        drained(&a, &mut qa);
        drained(&c, &mut qc);

        notices.offer(&members, frame("held"), None);
        members.remove(1);
        notices.member_removed(1);
        members.push(d.clone());
        assert_eq!(notices.flush(&members), 2);
        assert_eq!(drained(&a, &mut qa), ["held"]);
        assert_eq!(drained(&c, &mut qc), ["held"]);
        assert!(drained(&d, &mut qd).is_empty(), "d joined after the notice");
    }
}
