//! The broker's share of the transaction coordinator (txn_coordinator/):
//! creating `__transaction_state` when first needed (a topic made through
//! the metadata log), loading and unloading its partitions as this
//! broker's leadership changes, and handing the transactions that ended
//! to the group side, whose pending transactional offsets they settle.

use std::collections::BTreeMap;

use runnel_http::error_chain;
use runnel_metadata::LocalReplicaChanges;

use crate::broker::{Broker, TopicOpError};
use crate::txn_coordinator::{TRANSACTION_TOPIC, TxnEnded, TxnStoreError};

const SEGMENT_BYTES: u64 = 100 << 20;

impl Broker {
    /// Creates `__transaction_state` if it does not exist yet; its
    /// partitions are loaded as this broker becomes their leader.
    pub fn ensure_transaction_topic(&self, now_ms: i64) -> Result<(), TopicOpError> {
        if self.topic(TRANSACTION_TOPIC).is_some() {
            return Ok(());
        }
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("segment.bytes".to_string(), SEGMENT_BYTES.to_string());
        match self.create_topic(
            TRANSACTION_TOPIC,
            self.config.transaction_state_log_num_partitions,
            1,
            configs,
            false,
            now_ms,
        ) {
            Ok(_) | Err(TopicOpError::AlreadyExists(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Settles the pending transactional offsets of transactions that
    /// ended.
    pub fn txns_ended(&self, ended: impl IntoIterator<Item = TxnEnded>) {
        for ended in ended {
            self.complete_txn_offsets(ended.producer_id, ended.committed);
        }
    }

    /// Loads every `__transaction_state` partition this broker leads (at
    /// start). Returns how many transactional ids there are.
    pub fn load_transactions(&self, now_ms: i64) -> Result<usize, TxnStoreError> {
        let image = self.metadata.image();
        let Some(topic) = image.topic(TRANSACTION_TOPIC) else {
            return Ok(0);
        };
        let node = self.metadata.node_id();
        let mut ids = 0;
        for (partition, state) in &topic.partitions {
            if state.leader != node {
                continue;
            }
            let loaded = self.txn_coordinator.load(*partition, now_ms)?;
            ids += loaded.transactional_ids;
            self.txns_ended(loaded.ended);
        }
        Ok(ids)
    }

    /// Follows this broker's share of a metadata change: loads the
    /// `__transaction_state` partitions it now leads, unloads those it
    /// follows or lost. A partition that cannot be loaded is logged and
    /// stays unloaded (its ids are answered NOT_COORDINATOR).
    pub(crate) fn follow_transaction_partitions(&self, local: &LocalReplicaChanges, now_ms: i64) {
        let ours = |topic: &str| topic == TRANSACTION_TOPIC;
        for tp in local.deletes.keys().chain(local.followers.keys()) {
            if ours(&tp.topic) {
                self.txn_coordinator.unload(tp.partition);
            }
        }
        for tp in local.leaders.keys().filter(|tp| ours(&tp.topic)) {
            match self.txn_coordinator.load(tp.partition, now_ms) {
                Ok(loaded) => self.txns_ended(loaded.ended),
                Err(err) => tracing::error!(
                    partition = tp.partition,
                    error = %error_chain(&err),
                    "cannot load a {TRANSACTION_TOPIC} partition; its transactional ids are not served"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn_coordinator::TxnRequestError;

    fn not_coordinator<T: std::fmt::Debug>(result: Result<T, TxnRequestError>) {
        assert!(
            matches!(result, Err(TxnRequestError::NotCoordinator { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn partitions_load_when_created_or_started_and_unload_when_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::broker::open_for_test(dir.path());
        not_coordinator(broker.txn_coordinator.init_producer("a", 60_000, 0));
        broker.ensure_transaction_topic(0).expect("create");
        let init = broker
            .txn_coordinator
            .init_producer("a", 60_000, 0)
            .expect("loaded on creation");
        drop(broker);

        let broker = crate::broker::open_for_test(dir.path());
        not_coordinator(
            broker
                .txn_coordinator
                .check_producer("a", init.producer_id, 0),
        );
        assert_eq!(broker.load_transactions(1).expect("load"), 1);
        let again = broker
            .txn_coordinator
            .init_producer("a", 60_000, 2)
            .expect("init");
        assert_eq!(
            (again.producer_id, again.producer_epoch),
            (init.producer_id, 1)
        );

        broker.delete_topic(TRANSACTION_TOPIC).expect("delete");
        not_coordinator(broker.txn_coordinator.init_producer("a", 60_000, 3));
    }
}
