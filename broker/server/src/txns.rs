//! The transaction coordinator follows this broker's share of the
//! metadata: it loads the `__transaction_state` partitions this broker
//! leads (at start, and as changes make it their leader) and unloads those
//! it follows or lost. Transactions found ended while loading go to the
//! group coordinator, whose pending transactional offsets they settle.

use std::sync::Arc;

use runnel_coordinator::txn::Markers;
use runnel_http::error_chain;

use crate::cluster_metadata::{Applied, ClusterMetadata};
use crate::group_coordinator::GroupCoordinator;
use crate::topic_admin::LocalChangesListener;
use crate::txn_coordinator::{TRANSACTION_TOPIC, TxnCoordinator, TxnStoreError};

#[derive(Debug)]
pub struct TxnPartitions {
    txns: Arc<TxnCoordinator>,
    offsets: Arc<GroupCoordinator>,
}

impl TxnPartitions {
    pub fn new(txns: Arc<TxnCoordinator>, offsets: Arc<GroupCoordinator>) -> Self {
        Self { txns, offsets }
    }

    /// Loads every `__transaction_state` partition this broker leads (at
    /// start). Returns how many transactional ids there are.
    pub fn load_led(
        &self,
        metadata: &ClusterMetadata,
        now_ms: i64,
    ) -> Result<usize, TxnStoreError> {
        let image = metadata.image();
        let Some(topic) = image.topic(TRANSACTION_TOPIC) else {
            return Ok(0);
        };
        let node = metadata.node_id();
        let mut ids = 0;
        for (partition, state) in &topic.partitions {
            if state.leader != node {
                continue;
            }
            let loaded = self.txns.load(*partition, now_ms)?;
            ids += loaded.transactional_ids;
            let ended = self
                .txns
                .finish_prepared(*partition, loaded.prepared, now_ms);
            self.offsets.txns_ended(ended);
        }
        Ok(ids)
    }
}

impl TxnPartitions {
    /// Finishes the transactions a load found prepared off the metadata
    /// apply: their markers and stored ends wait for other brokers
    /// (leaders, the ISR), which may need this very apply's successors.
    fn finish_later(&self, partition: i32, prepared: Vec<(String, Markers)>, now_ms: i64) {
        if prepared.is_empty() {
            return;
        }
        let txns = Arc::clone(&self.txns);
        let offsets = Arc::clone(&self.offsets);
        let finish = move || {
            let ended = txns.finish_prepared(partition, prepared, now_ms);
            offsets.txns_ended(ended);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(finish);
            }
            Err(_) => finish(),
        }
    }
}

impl LocalChangesListener for TxnPartitions {
    /// A partition that cannot be loaded is logged and stays unloaded (its
    /// ids are answered NOT_COORDINATOR).
    fn changed(&self, applied: &Applied, now_ms: i64) {
        let local = &applied.local;
        let ours = |topic: &str| topic == TRANSACTION_TOPIC;
        for tp in local.deletes.keys().chain(local.followers.keys()) {
            if ours(&tp.topic) {
                self.txns.unload(tp.partition);
            }
        }
        for tp in local.leaders.keys().filter(|tp| ours(&tp.topic)) {
            match self.txns.load(tp.partition, now_ms) {
                Ok(loaded) => self.finish_later(tp.partition, loaded.prepared, now_ms),
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
        broker.internal.ensure_transactions(0).expect("create");
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
        assert_eq!(
            broker
                .txn_partitions
                .load_led(&broker.metadata, 1)
                .expect("load"),
            1
        );
        let again = broker
            .txn_coordinator
            .init_producer("a", 60_000, 2)
            .expect("init");
        assert_eq!(
            (again.producer_id, again.producer_epoch),
            (init.producer_id, 1)
        );

        broker
            .topics
            .delete_topic(TRANSACTION_TOPIC)
            .expect("delete");
        not_coordinator(broker.txn_coordinator.init_producer("a", 60_000, 3));
    }
}
