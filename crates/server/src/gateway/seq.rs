//! Where an incoming chat `seq` stands against the last one delivered: the one rule the
//! room task (over broker envelopes) and the writer (over its queue) both apply to keep a
//! room's stream gap-free, in order and without duplicates.

use socket_hub_protocol::Seq;

/// How an incoming seq relates to the stream delivered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqStep {
    /// Already delivered (or older): drop it.
    Stale,
    /// Exactly the next one: deliver it.
    Next,
    /// Later than the next one: the seqs in between must be read from the store first.
    Gap,
}

/// The last seq delivered in one room's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeqCursor {
    last: Seq,
}

impl SeqCursor {
    /// A stream that has delivered everything up to `last`.
    pub(crate) fn at(last: Seq) -> Self {
        Self { last }
    }

    /// The last seq delivered.
    pub(crate) fn last(self) -> Seq {
        self.last
    }

    /// Where `seq` stands.
    pub(crate) fn classify(self, seq: Seq) -> SeqStep {
        if seq <= self.last {
            SeqStep::Stale
        } else if seq == self.last + 1 {
            SeqStep::Next
        } else {
            SeqStep::Gap
        }
    }

    /// Records `seq` as delivered; never moves back.
    pub(crate) fn advance(&mut self, seq: Seq) {
        self.last = self.last.max(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_against_the_last_delivered() {
        let cursor = SeqCursor::at(5);
        assert_eq!(cursor.classify(3), SeqStep::Stale);
        assert_eq!(cursor.classify(5), SeqStep::Stale);
        assert_eq!(cursor.classify(6), SeqStep::Next);
        assert_eq!(cursor.classify(8), SeqStep::Gap);
    }

    #[test]
    fn an_empty_room_expects_seq_one() {
        let cursor = SeqCursor::at(0);
        assert_eq!(cursor.classify(1), SeqStep::Next);
        assert_eq!(cursor.classify(2), SeqStep::Gap);
    }

    #[test]
    fn advancing_never_moves_back() {
        let mut cursor = SeqCursor::at(5);
        cursor.advance(6);
        assert_eq!(cursor.last(), 6);
        cursor.advance(4);
        assert_eq!(cursor.last(), 6);
        assert_eq!(cursor.classify(6), SeqStep::Stale);
        assert_eq!(cursor.classify(7), SeqStep::Next);
    }
}
