//! Writing a coordinator's records: a transactional id's state (or its
//! tombstone) in its `__transaction_state` partition, and a transaction's
//! markers in each of its partitions, all through the replica manager as
//! any producer writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use runnel_coordinator::txn::{Markers, Outcome, Transaction};
use runnel_coordinator::txn_log;
use runnel_log::BatchBuilder;
use runnel_log::control::ControlType;

use super::remote_markers::{Destination, RemoteMarkers, back_off};
use super::{TRANSACTION_TOPIC, TxnEnded, TxnStoreError};
use crate::replica_manager::{Awaited, Partition, ReplicaManager, Wait, wait_replicated};

/// How long a coordinator's write may wait for the ISR.
const REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
pub(super) struct TxnLog {
    replicas: Arc<ReplicaManager>,
    /// On a cluster: the markers of partitions other brokers lead.
    remote: Option<RemoteMarkers>,
}

impl TxnLog {
    pub fn new(replicas: Arc<ReplicaManager>, remote: Option<RemoteMarkers>) -> Self {
        Self { replicas, remote }
    }

    pub fn state_partition(&self, partition: i32) -> Result<Arc<Partition>, TxnStoreError> {
        self.replicas
            .get(TRANSACTION_TOPIC, partition)
            .ok_or(TxnStoreError::MissingPartition(partition))
    }

    /// Stores `txn` as `transactional_id`'s state in `partition`.
    pub fn store(
        &self,
        partition: i32,
        transactional_id: &str,
        txn: &Transaction,
        now_ms: i64,
    ) -> Result<(), TxnStoreError> {
        let key = txn_log::encode_key(transactional_id)?;
        let value = txn.to_log().encode()?;
        self.append(partition, &key, Some(&value), now_ms)
    }

    /// Stores a tombstone for `transactional_id` in `partition`.
    pub fn forget(
        &self,
        partition: i32,
        transactional_id: &str,
        now_ms: i64,
    ) -> Result<(), TxnStoreError> {
        let key = txn_log::encode_key(transactional_id)?;
        self.append(partition, &key, None, now_ms)
    }

    fn append(
        &self,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<(), TxnStoreError> {
        let log = self.state_partition(partition)?;
        let batch = BatchBuilder::new(now_ms)
            .record(Some(key), value, now_ms)
            .build();
        let appended = log.append(&batch, now_ms)?;
        // Replicated before anything follows from it (markers, answers),
        // as Kafka's coordinator appends with acks=-1.
        match log.wait_replicated(&appended, REPLICATION_TIMEOUT) {
            Awaited::Reached => Ok(()),
            outcome => Err(TxnStoreError::NotReplicated { partition, outcome }),
        }
    }

    /// Writes a transaction's markers in each of its partitions. A
    /// partition deleted meanwhile is skipped.
    pub fn write_markers(&self, markers: &Markers, now_ms: i64) -> Result<(), TxnStoreError> {
        let kind = match markers.outcome {
            Outcome::Commit => ControlType::Commit,
            Outcome::Abort => ControlType::Abort,
        };
        if let Some(remote) = &self.remote {
            return self.write_markers_on_cluster(remote, markers, kind, now_ms);
        }
        for (topic, partition) in &markers.partitions {
            let Some(log) = self.replicas.get(topic, *partition) else {
                tracing::warn!(topic, partition, "no partition for a transaction marker");
                continue;
            };
            log.append_marker(markers.producer_id, markers.producer_epoch, kind, 0, now_ms)?;
        }
        Ok(())
    }

    /// As `write_markers`, each marker written by the partition's leader:
    /// here, or sent to it (see `remote_markers`), until all are written.
    fn write_markers_on_cluster(
        &self,
        remote: &RemoteMarkers,
        markers: &Markers,
        kind: ControlType,
        now_ms: i64,
    ) -> Result<(), TxnStoreError> {
        let started = std::time::Instant::now();
        let mut pending = markers.partitions.clone();
        loop {
            let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
            let mut waiting = Vec::new();
            // Markers written here, each until the ISR holds it.
            let mut local: Vec<((String, i32), Wait)> = Vec::new();
            for (topic, partition) in pending {
                match remote.destination(&topic, partition) {
                    Destination::Gone => {
                        tracing::warn!(topic, partition, "no partition for a transaction marker");
                    }
                    Destination::NoLeader => waiting.push((topic, partition)),
                    Destination::Here => {
                        match self
                            .replicas
                            .get(&topic, partition)
                            .filter(|p| p.is_leader())
                        {
                            Some(log) => {
                                let appended = log.append_marker(
                                    markers.producer_id,
                                    markers.producer_epoch,
                                    kind,
                                    0,
                                    now_ms,
                                )?;
                                let wait = (
                                    Arc::clone(&log),
                                    appended.info.last_offset + 1,
                                    appended.leader_epoch,
                                );
                                local.push(((topic, partition), wait));
                            }
                            // The image says so, the partition not yet.
                            None => waiting.push((topic, partition)),
                        }
                    }
                    Destination::Broker(leader) => {
                        by_leader
                            .entry(leader)
                            .or_default()
                            .push((topic, partition));
                    }
                }
            }
            for (leader, partitions) in by_leader {
                waiting.extend(remote.send(markers, leader, partitions));
            }
            let waits: Vec<Wait> = local.iter().map(|(_, w)| w.clone()).collect();
            for ((tp, _), outcome) in local
                .into_iter()
                .zip(wait_replicated(&waits, REPLICATION_TIMEOUT))
            {
                // Not held by the ISR: written again, by the next leader.
                if outcome != Awaited::Reached {
                    waiting.push(tp);
                }
            }
            let Some((topic, partition)) = waiting.first().cloned() else {
                return Ok(());
            };
            if !back_off(started) {
                return Err(TxnStoreError::MarkersNotWritten {
                    pending: waiting.len(),
                    topic,
                    partition,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            pending = waiting;
        }
    }

    /// Stores Prepare*, writes the markers, stores Complete*; `txn` is
    /// left complete.
    pub fn finish(
        &self,
        partition: i32,
        transactional_id: &str,
        txn: &mut Transaction,
        markers: &Markers,
        now_ms: i64,
    ) -> Result<TxnEnded, TxnStoreError> {
        self.store(partition, transactional_id, txn, now_ms)?;
        self.complete(partition, transactional_id, txn, markers, now_ms)
    }

    /// Writes the markers of a stored Prepare* and stores Complete*.
    pub fn complete(
        &self,
        partition: i32,
        transactional_id: &str,
        txn: &mut Transaction,
        markers: &Markers,
        now_ms: i64,
    ) -> Result<TxnEnded, TxnStoreError> {
        self.write_markers(markers, now_ms)?;
        txn.complete(now_ms);
        self.store(partition, transactional_id, txn, now_ms)?;
        Ok(TxnEnded {
            producer_id: markers.producer_id,
            committed: markers.outcome == Outcome::Commit,
        })
    }
}
