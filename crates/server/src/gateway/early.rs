//! Chat messages that reached a room task ahead of an earlier seq of the same room.
//!
//! Seqs are handed out in commit order, but their envelopes are published by whoever
//! sent each message, after its ack: the senders of one append batch (or of two
//! instances' back-to-back commits) race to publish, so a room often sees seq `n + 1`
//! just before `n`. Treating every such overtaking as a hole made the room read the
//! store (a refill) about once every three batches in a busy room, stall its stream
//! for that read, re-encode what it read and drop the overtaking frames it already had.
//!
//! Now a frame that arrives early is held, keyed by seq, until the missing ones arrive
//! (microseconds later, as a rule) and then goes out in order. Only when the hole
//! outlives [`WAIT`] (its publisher died between commit and publish, or the broker lost
//! the envelope) or more than [`MOST`] frames pile up does the room refill from the
//! store, exactly as before.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use socket_hub_protocol::Seq;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Longest a hole in a room's stream is waited for before the store is read.
pub(super) const WAIT: Duration = Duration::from_millis(10);
/// Most frames held behind one hole; one more means read the store now.
pub(super) const MOST: usize = 1024;

/// A room's held chat frames and the deadline of its oldest hole.
#[derive(Default)]
pub(super) struct EarlyChats {
    held: BTreeMap<Seq, Utf8Bytes>,
    /// Fires [`WAIT`] after the current hole opened; created with the first hole.
    timer: Option<Pin<Box<Sleep>>>,
}

impl EarlyChats {
    /// Holds the frame of `seq`, which is ahead of the room's stream. `false` when
    /// [`MOST`] are held already: the caller reads the store instead.
    pub(super) fn hold(&mut self, seq: Seq, frame: Utf8Bytes) -> bool {
        if self.held.len() >= MOST {
            return false;
        }
        if self.held.is_empty() {
            self.restart();
        }
        self.held.insert(seq, frame);
        true
    }

    /// Whether frames wait for a hole to close (then [`EarlyChats::due`] matters).
    pub(super) fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Resolves when the current hole has been open for [`WAIT`]; only while `holding`.
    pub(super) async fn due(&mut self) {
        if let Some(timer) = &mut self.timer {
            timer.as_mut().await;
        }
    }

    /// The held frame of `next` (the seq the stream continues with), if it is here.
    /// When frames are left behind a new hole, that hole gets its own [`WAIT`].
    pub(super) fn take(&mut self, next: Seq) -> Option<Utf8Bytes> {
        let (&first, _) = self.held.first_key_value()?;
        if first != next {
            return None;
        }
        let frame = self.held.remove(&first);
        if let Some((&following, _)) = self.held.first_key_value()
            && following != next + 1
        {
            self.restart();
        }
        frame
    }

    /// Forgets every held frame, after the store delivered what they carried.
    pub(super) fn clear(&mut self) {
        self.held.clear();
    }

    /// Gives the current hole a full [`WAIT`] from now (also after a failed refill, so
    /// a store that is down is not read in a tight loop).
    pub(super) fn restart(&mut self) {
        let until = Instant::now() + WAIT;
        super::set_timer(&mut self.timer, until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: Seq) -> Utf8Bytes {
        Utf8Bytes::from(format!("chat {seq}"))
    }

    // The hole's timer lives on the runtime's clock, as in a room task.
    #[tokio::test]
    async fn frames_come_out_in_seq_order_once_the_hole_closes() {
        let mut early = EarlyChats::default();
        assert!(early.hold(4, frame(4)));
        assert!(early.hold(3, frame(3)));
        assert!(early.holding());
        // The stream is at 1: seq 2 is missing, nothing comes out.
        assert_eq!(early.take(2), None);
        // 2 arrived and went out by itself; 3 and 4 follow it.
        assert_eq!(early.take(3), Some(frame(3)));
        assert_eq!(early.take(4), Some(frame(4)));
        assert_eq!(early.take(5), None);
        assert!(!early.holding());
    }

    #[tokio::test]
    async fn past_the_limit_the_caller_reads_the_store() {
        let mut early = EarlyChats::default();
        for seq in 0..MOST {
            assert!(early.hold(10 + seq as Seq, frame(1)));
        }
        assert!(!early.hold(5, frame(5)));
        early.clear();
        assert!(!early.holding());
        assert!(early.hold(5, frame(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hole_is_due_after_the_wait_and_a_new_hole_gets_its_own() {
        let mut early = EarlyChats::default();
        let start = Instant::now();
        assert!(early.hold(3, frame(3)));
        assert!(early.hold(5, frame(5)));
        tokio::time::advance(WAIT / 2).await;
        // 2 came; 3 goes out, and 4 is the next hole: its wait starts now.
        assert_eq!(early.take(3), Some(frame(3)));
        early.due().await;
        assert_eq!(Instant::now() - start, WAIT / 2 + WAIT);
        assert!(early.holding());
    }
}
