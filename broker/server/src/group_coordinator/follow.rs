//! The group coordinator follows this broker's share of the metadata: it
//! loads the `__consumer_offsets` partitions this broker leads (at start,
//! and as changes make it their leader) and unloads those deleted.

use runnel_http::error_chain;
use runnel_metadata::MetadataImage;

use super::{GroupCoordinator, Loaded, OFFSETS_TOPIC, OffsetsError};
use crate::cluster_metadata::Applied;
use crate::topic_admin::LocalChangesListener;
use crate::txn_coordinator::TxnEnded;

impl GroupCoordinator {
    /// Loads every `__consumer_offsets` partition this broker hosts, if the
    /// topic exists (at start).
    pub fn load_hosted(&self, image: &MetadataImage) -> Result<Loaded, OffsetsError> {
        let Some(topic) = image.topic(OFFSETS_TOPIC) else {
            return Ok(Loaded::default());
        };
        self.set_partitions(i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX));
        let mut loaded = Loaded::default();
        for &partition in topic.partitions.keys() {
            if self.replicas.get(OFFSETS_TOPIC, partition).is_none() {
                continue;
            }
            let shard = self.load(partition)?;
            loaded.offsets += shard.offsets;
            loaded.groups += shard.groups;
        }
        Ok(loaded)
    }

    /// Settles the pending transactional offsets of transactions that
    /// ended: committed ones take effect, aborted ones are dropped.
    pub fn txns_ended(&self, ended: impl IntoIterator<Item = TxnEnded>) {
        for ended in ended {
            self.complete_txn_offsets(ended.producer_id, ended.committed);
        }
    }
}

impl LocalChangesListener for GroupCoordinator {
    fn changed(&self, applied: &Applied, _now_ms: i64) {
        // Groups are served by the leader of their partition only.
        let local = &applied.local;
        for tp in local.deletes.keys().chain(local.followers.keys()) {
            if tp.topic == OFFSETS_TOPIC {
                self.unload(tp.partition);
            }
        }
        for tp in applied.local.leaders.keys() {
            if tp.topic != OFFSETS_TOPIC {
                continue;
            }
            if let Some(topic) = applied.image.topic(OFFSETS_TOPIC) {
                let partitions = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
                self.set_partitions(partitions);
            }
            if let Err(err) = self.load(tp.partition) {
                tracing::error!(
                    partition = tp.partition,
                    error = %error_chain(&err),
                    "cannot load an {OFFSETS_TOPIC} partition; its groups get NOT_COORDINATOR"
                );
            }
        }
    }
}
