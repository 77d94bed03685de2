//! The broker's side of the group coordinator (group_coordinator/, which
//! owns the committed offsets, sharded by `__consumer_offsets` partition):
//! creating `__consumer_offsets` the first time a group needs it, as Kafka
//! does (a topic change through the metadata log, whose local changes load
//! the new partitions), and loading the partitions this broker leads at
//! start.

use std::collections::BTreeMap;

use crate::broker::{Broker, TopicOpError};
use crate::group_coordinator::{Commit, Loaded, OFFSETS_TOPIC, OffsetsError};

/// Kafka's `offsets.topic.segment.bytes`: 100 MiB.
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";

impl Broker {
    /// Creates `__consumer_offsets` the first time a group needs it.
    pub fn ensure_offsets_topic(&self, now_ms: i64) -> Result<(), OffsetsError> {
        if self.topic(OFFSETS_TOPIC).is_some() {
            return Ok(());
        }
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert(
            "segment.bytes".to_string(),
            OFFSETS_TOPIC_SEGMENT_BYTES.to_string(),
        );
        match self.create_topic(
            OFFSETS_TOPIC,
            self.config.offsets_topic_num_partitions,
            1,
            configs,
            false,
            now_ms,
        ) {
            Ok(_) | Err(TopicOpError::AlreadyExists(_)) => Ok(()),
            Err(err) => Err(OffsetsError::Create(Box::new(err))),
        }
    }

    /// Loads every `__consumer_offsets` partition this broker hosts, if the
    /// topic exists.
    pub fn load_offsets(&self) -> Result<Loaded, OffsetsError> {
        let Some(topic) = self.topic(OFFSETS_TOPIC) else {
            return Ok(Loaded::default());
        };
        self.group_coordinator.set_partitions(topic.partitions);
        let mut loaded = Loaded::default();
        for partition in 0..topic.partitions {
            if self.partition(OFFSETS_TOPIC, partition).is_none() {
                continue;
            }
            let shard = self.group_coordinator.load(partition)?;
            loaded.offsets += shard.offsets;
            loaded.groups += shard.groups;
        }
        Ok(loaded)
    }

    /// Creates `__consumer_offsets` when needed, then commits.
    pub fn commit_offsets(
        &self,
        group: &str,
        commits: &[Commit],
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        self.ensure_offsets_topic(now_ms)?;
        self.group_coordinator
            .commit_offsets(group, commits, now_ms)
    }

    /// Creates `__consumer_offsets` when needed, then commits the
    /// transaction's offsets (pending until its markers).
    pub fn commit_txn_offsets(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
        commits: &[Commit],
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        self.ensure_offsets_topic(now_ms)?;
        self.group_coordinator.commit_txn_offsets(
            producer_id,
            producer_epoch,
            group,
            commits,
            now_ms,
        )
    }

    /// Writes the group records queued so far, creating
    /// `__consumer_offsets` first when there are any and it is missing.
    pub fn flush_group_stores(&self, now_ms: i64) -> Result<usize, OffsetsError> {
        self.group_coordinator
            .flush_group_stores(now_ms, || self.ensure_offsets_topic(now_ms))
    }

    /// The producer's transaction ended: its offsets take effect on commit.
    pub fn complete_txn_offsets(&self, producer_id: i64, commit: bool) {
        self.group_coordinator
            .complete_txn_offsets(producer_id, commit);
    }

    /// The `__consumer_offsets` partition that holds `group`.
    pub(crate) fn coordinator_partition(&self, group: &str) -> i32 {
        self.group_coordinator.partition_of(group)
    }
}
