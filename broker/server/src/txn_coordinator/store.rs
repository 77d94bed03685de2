//! Writing a coordinator's records: a transactional id's state (or its
//! tombstone) in its `__transaction_state` partition, and a transaction's
//! markers in each of its partitions, all through the replica manager as
//! any producer writes.

use std::sync::Arc;

use runnel_coordinator::txn::{Markers, Outcome, Transaction};
use runnel_coordinator::txn_log;
use runnel_log::BatchBuilder;
use runnel_log::control::ControlType;

use super::{TRANSACTION_TOPIC, TxnEnded, TxnStoreError};
use crate::replica_manager::{Partition, ReplicaManager};

#[derive(Debug)]
pub(super) struct TxnLog {
    replicas: Arc<ReplicaManager>,
}

impl TxnLog {
    pub fn new(replicas: Arc<ReplicaManager>) -> Self {
        Self { replicas }
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
        log.append(&batch, now_ms)?;
        Ok(())
    }

    /// Writes a transaction's markers in each of its partitions. A
    /// partition deleted meanwhile is skipped.
    pub fn write_markers(&self, markers: &Markers, now_ms: i64) -> Result<(), TxnStoreError> {
        let kind = match markers.outcome {
            Outcome::Commit => ControlType::Commit,
            Outcome::Abort => ControlType::Abort,
        };
        for (topic, partition) in &markers.partitions {
            let Some(log) = self.replicas.get(topic, *partition) else {
                tracing::warn!(topic, partition, "no partition for a transaction marker");
                continue;
            };
            log.append_marker(markers.producer_id, markers.producer_epoch, kind, 0, now_ms)?;
        }
        Ok(())
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
