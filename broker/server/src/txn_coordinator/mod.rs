//! The transaction coordinator: every transactional id's state
//! (runnel-coordinator's `Transaction`), kept in `__transaction_state`
//! (compacted, Kafka's records; id T lives in partition
//! `abs(javaHash(T)) % partitions`). On one broker every partition is
//! local, so EndTxn writes the markers itself before it answers:
//! PrepareCommit/PrepareAbort is stored, the markers appended, then
//! CompleteCommit/CompleteAbort stored. A coordinator that stopped between
//! the two finishes the markers when it loads.
//!
//! The state is sharded by the `__transaction_state` partition this
//! broker leads: [`TxnCoordinator::load`] reads a partition into its
//! shard when the broker becomes its leader, [`TxnCoordinator::unload`]
//! drops it; an id whose shard is not loaded is refused with
//! [`TxnRequestError::NotCoordinator`]. Locking is in `shards`.
//!
//! - `requests`: InitProducerId, AddPartitionsToTxn, EndTxn and the
//!   checks of TxnOffsetCommit and AddPartitionsToTxn v4.
//! - `timers`: aborting transactions past their timeout, expiring idle
//!   transactional ids.
//! - `load`: reading a partition back.
//! - `store`: the records and markers it writes, through the replica
//!   manager.
//!
//! A transaction that ends is reported as a [`TxnEnded`] to the caller,
//! which tells the group side (its pending transactional offsets).

mod error;
mod load;
mod remote_markers;
mod requests;
mod shards;
mod store;
mod timers;

use std::sync::Arc;

use runnel_coordinator::coordinator_partition;
use runnel_coordinator::txn::{Markers, Transaction};

pub use error::{TxnRequestError, TxnStoreError};

use crate::cluster_metadata::ClusterMetadata;
use crate::config::BrokerConfig;
use crate::producer_ids::ProducerIds;
use crate::replica_manager::ReplicaManager;
use remote_markers::RemoteMarkers;
use shards::{Entry, Shard, Shards, lock_slot};
use store::TxnLog;

pub const TRANSACTION_TOPIC: &str = "__transaction_state";

/// A producer's transaction ended: its markers are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnEnded {
    pub producer_id: i64,
    pub committed: bool,
}

/// The settings the coordinator runs by.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `__transaction_state`'s partition count (the topic's, once it
    /// exists; else `transaction.state.log.num.partitions`).
    pub partitions: i32,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i64,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
}

/// Where new producer ids come from: blocks taken through the metadata
/// log.
#[derive(Debug)]
pub struct ProducerIdSource {
    pub ids: Arc<ProducerIds>,
    pub metadata: Arc<ClusterMetadata>,
}

impl ProducerIdSource {
    fn next(&self, now_ms: i64) -> Result<i64, TxnStoreError> {
        Ok(self.ids.next(&self.metadata, now_ms)?)
    }
}

/// What loading a partition found.
#[derive(Debug, Default)]
pub struct Loaded {
    pub transactional_ids: usize,
    /// Transactions found prepared, for [`TxnCoordinator::finish_prepared`].
    pub prepared: Vec<(String, Markers)>,
}

#[derive(Debug)]
pub struct TxnCoordinator {
    config: TxnConfig,
    store: TxnLog,
    producer_ids: ProducerIdSource,
    shards: Shards,
}

impl TxnCoordinator {
    /// The broker's coordinator, over its replicas and producer ids, by
    /// its settings; `__transaction_state` keeps the partition count it
    /// was made with.
    pub fn open(
        broker_config: &BrokerConfig,
        replicas: &Arc<ReplicaManager>,
        metadata: &Arc<ClusterMetadata>,
        producer_ids: &Arc<ProducerIds>,
    ) -> Self {
        let partitions = metadata
            .image()
            .topic(TRANSACTION_TOPIC)
            .map_or(broker_config.transaction_state_log_num_partitions, |t| {
                i32::try_from(t.partitions.len()).unwrap_or(i32::MAX)
            });
        let config = TxnConfig {
            partitions,
            max_timeout_ms: broker_config.transaction_max_timeout_ms,
            id_expiration_ms: broker_config.transactional_id_expiration_ms,
        };
        let producer_ids = ProducerIdSource {
            ids: Arc::clone(producer_ids),
            metadata: Arc::clone(metadata),
        };
        let remote = broker_config.quorum.as_ref().map(|quorum| {
            let listener = quorum
                .inter_broker_listener_name
                .clone()
                .unwrap_or_else(|| broker_config.client_listener_name().to_owned());
            RemoteMarkers::new(Arc::clone(metadata), broker_config.node_id, listener)
        });
        let mut coordinator = Self::new(config, Arc::clone(replicas), producer_ids);
        coordinator.store = TxnLog::new(Arc::clone(replicas), remote);
        coordinator
    }

    pub fn new(
        config: TxnConfig,
        replicas: Arc<ReplicaManager>,
        producer_ids: ProducerIdSource,
    ) -> Self {
        Self {
            config,
            store: TxnLog::new(replicas, None),
            producer_ids,
            shards: Shards::default(),
        }
    }

    /// The `__transaction_state` partition of `transactional_id`.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        coordinator_partition(transactional_id, self.config.partitions)
    }

    /// Reads `partition` of `__transaction_state` into its shard (this
    /// broker became its leader). A loaded shard is read again. The
    /// transactions found prepared stay so (their ids answer
    /// CONCURRENT_TRANSACTIONS) until [`TxnCoordinator::finish_prepared`].
    pub fn load(&self, partition: i32, _now_ms: i64) -> Result<Loaded, TxnStoreError> {
        let loaded = load::load_partition(&self.store, partition)?;
        let transactional_ids = loaded.ids.len();
        self.shards.insert(partition, Shard::with(loaded.ids));
        tracing::debug!(
            partition,
            transactional_ids,
            "loaded a {TRANSACTION_TOPIC} partition"
        );
        Ok(Loaded {
            transactional_ids,
            prepared: loaded.prepared,
        })
    }

    /// Finishes the transactions a load of `partition` found prepared:
    /// writes their markers (each by its partition's leader) and stores
    /// their end. Each id's slot is held meanwhile; one the coordinator
    /// moved on from (another load, an unload) is left alone. Returns
    /// the transactions ended; a failure is logged and leaves the rest
    /// to the next load.
    pub fn finish_prepared(
        &self,
        partition: i32,
        prepared: Vec<(String, Markers)>,
        now_ms: i64,
    ) -> Vec<TxnEnded> {
        let mut ended = Vec::new();
        for (id, markers) in prepared {
            let Some(shard) = self.shards.get(partition) else {
                break;
            };
            let Some(entry) = shard.entry(&id, false) else {
                continue;
            };
            let mut slot = lock_slot(&entry);
            let Some(txn) = slot.txn.as_mut() else {
                continue;
            };
            let still_prepared = matches!(
                txn.state,
                runnel_coordinator::txn_log::TxnState::PrepareCommit
                    | runnel_coordinator::txn_log::TxnState::PrepareAbort
            ) && txn.producer_id == markers.producer_id;
            if !still_prepared {
                continue;
            }
            tracing::info!(
                transactional_id = id,
                outcome = ?markers.outcome,
                "finishing a transaction the last stop left prepared"
            );
            match self.store.complete(partition, &id, txn, &markers, now_ms) {
                Ok(done) => ended.push(done),
                Err(err) => {
                    tracing::error!(
                        transactional_id = id,
                        error = %runnel_http::error_chain(&err),
                        "cannot finish a prepared transaction; the next load tries again"
                    );
                }
            }
        }
        ended
    }

    /// Drops `partition`'s shard (this broker resigned or the partition
    /// is gone); its ids are refused with NOT_COORDINATOR from now.
    pub fn unload(&self, partition: i32) {
        if self.shards.remove(partition) {
            tracing::debug!(partition, "unloaded a {TRANSACTION_TOPIC} partition");
        }
    }

    /// Every transactional id of the loaded shards with its state, sorted
    /// by id (DescribeTransactions, ListTransactions).
    pub fn transactions_now(&self) -> Vec<(String, Transaction)> {
        let mut all = Vec::new();
        for (_, shard) in self.shards.all() {
            for (id, entry) in shard.entries() {
                if let Some(txn) = &lock_slot(&entry).txn {
                    all.push((id, txn.clone()));
                }
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Runs `step` with `transactional_id`'s slot held, as `(partition,
    /// state)`; `create` makes a slot (state `None`) for an unknown id,
    /// else `step` gets `None` without a slot.
    fn with_slot<T>(
        &self,
        transactional_id: &str,
        create: bool,
        step: impl FnOnce(i32, &mut Option<Transaction>) -> Result<T, TxnRequestError>,
    ) -> Result<T, TxnRequestError> {
        let partition = self.partition_for(transactional_id);
        loop {
            let shard = self
                .shards
                .get(partition)
                .ok_or(TxnRequestError::NotCoordinator { partition })?;
            let Some(entry): Option<Entry> = shard.entry(transactional_id, create) else {
                return step(partition, &mut None);
            };
            let mut slot = lock_slot(&entry);
            if slot.removed {
                // Expired while this waited: look again.
                continue;
            }
            return step(partition, &mut slot.txn);
        }
    }
}

#[cfg(test)]
mod tests;
