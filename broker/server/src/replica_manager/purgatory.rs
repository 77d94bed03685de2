//! Requests parked until their partitions reach an offset: `acks=all`
//! produce requests wait for the high watermark to pass their batches, as
//! Kafka's `DelayedProduce` in its produce purgatory. Each request watches
//! only its own partitions, registers before it checks, and so cannot miss
//! the change it waits for.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Partition, Waiter};

/// Waits until each `(partition, offset)` has its high watermark at or past
/// `offset`, or until `deadline`; returns, in order, whether each did.
pub async fn wait_for_high_watermarks(
    waits: &[(Arc<Partition>, i64)],
    deadline: Instant,
) -> Vec<bool> {
    let reached = |waits: &[(Arc<Partition>, i64)]| {
        waits
            .iter()
            .map(|(partition, offset)| partition.high_watermark() >= *offset)
            .collect::<Vec<_>>()
    };
    // The common case, one replica in sync: done at the first look,
    // without registering anywhere.
    let mut done = reached(waits);
    if done.iter().all(|d| *d) {
        return done;
    }
    let waiter = Waiter::new();
    loop {
        for ((partition, _), done) in waits.iter().zip(&done) {
            if !done {
                partition.watch_high_watermark(&waiter);
            }
        }
        done = reached(waits);
        if done.iter().all(|d| *d) {
            return done;
        }
        if tokio::time::timeout_at(deadline, waiter.changed())
            .await
            .is_err()
        {
            return reached(waits);
        }
    }
}
