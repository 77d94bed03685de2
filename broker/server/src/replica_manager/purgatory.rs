//! Requests parked until their partitions reach an offset: `acks=all`
//! produce requests wait for the high watermark to pass their batches, as
//! Kafka's `DelayedProduce` in its produce purgatory, and end early when
//! this broker stops leading the partition. Each request watches
//! only its own partitions, registers before it checks, and so cannot miss
//! the change it waits for.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Partition, Waiter};

/// How one partition's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaited {
    /// The high watermark passed the offset while this broker led in the
    /// epoch of the append.
    Reached,
    /// The deadline passed first.
    TimedOut,
    /// This broker stopped leading in that epoch first: the batch may be
    /// truncated by the next leader, so it is not acknowledged.
    LeadershipLost,
}

/// One parked write: the partition, the offset its high watermark must
/// reach, and the leader epoch the write was appended in.
pub type Wait = (Arc<Partition>, i64, i32);

fn outcome((partition, offset, epoch): &Wait) -> Option<Awaited> {
    if !partition.is_leader() || partition.leader_epoch() != *epoch {
        Some(Awaited::LeadershipLost)
    } else if partition.high_watermark() >= *offset {
        Some(Awaited::Reached)
    } else {
        None
    }
}

/// Waits until each wait in `waits` has ended (see [`Awaited`]) or until
/// `deadline`; returns, in order, how each did.
pub async fn wait_for_high_watermarks(waits: &[Wait], deadline: Instant) -> Vec<Awaited> {
    let done = |waits: &[Wait]| waits.iter().map(outcome).collect::<Vec<_>>();
    // The common case, one replica in sync: done at the first look,
    // without registering anywhere.
    let mut ended = done(waits);
    if ended.iter().all(Option::is_some) {
        return ended.into_iter().flatten().collect();
    }
    let waiter = Waiter::new();
    loop {
        for (wait, ended) in waits.iter().zip(&ended) {
            if ended.is_none() {
                wait.0.watch_high_watermark(&waiter);
            }
        }
        ended = done(waits);
        if ended.iter().all(Option::is_some) {
            return ended.into_iter().flatten().collect();
        }
        if tokio::time::timeout_at(deadline, waiter.changed())
            .await
            .is_err()
        {
            return done(waits)
                .into_iter()
                .map(|e| e.unwrap_or(Awaited::TimedOut))
                .collect();
        }
    }
}
