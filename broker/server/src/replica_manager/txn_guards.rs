//! KIP-890's verification guards of one partition: a transactional
//! producer's first batch of a transaction is taken only after the
//! transaction coordinator said the partition is in that open
//! transaction, and only if no marker for that producer was written to
//! this partition in between. A guard is handed out when the verification
//! starts, dropped by a marker, and checked (and used up) by the append.
//!
//! Without it, a producer whose client thinks a partition is still added
//! (or never says it is) writes records that no marker of its own
//! transaction ends: the next transaction's marker then commits them.
//!
//! Only taken under the partition log's lock, so a marker and an append
//! never interleave with a check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// One verification's token: the producer it is for and a number no other
/// verification on this broker has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnGuard {
    pub producer_id: i64,
    pub producer_epoch: i16,
    token: u64,
}

/// The guards of the verifications in flight, by producer id.
#[derive(Debug, Default)]
pub struct TxnGuards {
    by_producer: HashMap<i64, u64>,
}

static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

impl TxnGuards {
    /// Starts a verification for `producer_id`, replacing any earlier one.
    pub fn begin(&mut self, producer_id: i64, producer_epoch: i16) -> TxnGuard {
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        self.by_producer.insert(producer_id, token);
        TxnGuard {
            producer_id,
            producer_epoch,
            token,
        }
    }

    /// Whether `guard` still stands: no marker and no later verification
    /// for its producer since it began.
    pub fn holds(&self, guard: TxnGuard) -> bool {
        self.by_producer.get(&guard.producer_id) == Some(&guard.token)
    }

    /// The verification ended (its batch was written, or refused): the
    /// guard is gone unless a later one replaced it.
    pub fn finish(&mut self, guard: TxnGuard) {
        if self.holds(guard) {
            self.by_producer.remove(&guard.producer_id);
        }
    }

    /// A marker for `producer_id` was written: its verifications in flight
    /// no longer stand.
    pub fn marker_written(&mut self, producer_id: i64) {
        self.by_producer.remove(&producer_id);
    }

    /// Leadership moved: no verification started here stands.
    pub fn clear(&mut self) {
        self.by_producer.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_or_a_later_verification_breaks_a_guard() {
        let mut guards = TxnGuards::default();
        let first = guards.begin(7, 0);
        assert!(guards.holds(first));
        guards.marker_written(7);
        assert!(!guards.holds(first));

        let second = guards.begin(7, 0);
        let third = guards.begin(7, 0);
        assert!(!guards.holds(second));
        assert!(guards.holds(third));
        // Finishing the replaced one leaves the newer in place.
        guards.finish(second);
        assert!(guards.holds(third));
        guards.finish(third);
        assert!(!guards.holds(third));

        let other = guards.begin(8, 0);
        guards.marker_written(7);
        assert!(guards.holds(other));
        guards.clear();
        assert!(!guards.holds(other));
    }
}
