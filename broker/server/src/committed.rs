//! Committed offsets: kept in `__consumer_offsets` (50 partitions,
//! compacted, Kafka's record schemas; group G lives on partition
//! `abs(javaHash(G)) % 50`) and mirrored in memory for OffsetFetch. The
//! mirror is rebuilt from the topic at start.

use std::collections::BTreeMap;
use std::sync::{MutexGuard, PoisonError};

use runnel_coordinator::{
    OffsetKey, OffsetStore, OffsetValue, OffsetsRecord, coordinator_partition,
};
use runnel_log::BatchBuilder;
use runnel_log::batch::Batches;
use runnel_log::manager::lock;
use runnel_log::records::BatchRecords;
use thiserror::Error;

use crate::broker::{Broker, TopicOpError};

/// Kafka's internal topic of committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.num.partitions`.
pub const OFFSETS_TOPIC_PARTITIONS: i32 = 50;
/// Kafka's `offsets.topic.segment.bytes`: 100 MiB.
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";
const READ_CHUNK_BYTES: u64 = 1 << 20;

/// One partition's commit in an OffsetCommit request.
#[derive(Debug, Clone)]
pub struct Commit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

#[derive(Debug, Error)]
pub enum OffsetsError {
    #[error("the {OFFSETS_TOPIC} partition {0} is missing")]
    MissingPartition(i32),
    #[error("cannot encode an {OFFSETS_TOPIC} record")]
    Encode(#[from] runnel_coordinator::OffsetsRecordError),
    #[error("cannot read or write {OFFSETS_TOPIC}")]
    Log(#[from] runnel_log::LogError),
    #[error("cannot decode an {OFFSETS_TOPIC} batch")]
    Records(#[from] runnel_log::records::RecordsError),
    #[error("cannot copy an {OFFSETS_TOPIC} region")]
    Read(#[from] std::io::Error),
    #[error("cannot create {OFFSETS_TOPIC}")]
    Create(#[from] TopicOpError),
}

impl Broker {
    fn offset_store(&self) -> MutexGuard<'_, OffsetStore> {
        self.offsets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates `__consumer_offsets` the first time a group needs it, as
    /// Kafka does.
    pub fn ensure_offsets_topic(&self, now_ms: i64) -> Result<(), OffsetsError> {
        if self.topics().get(OFFSETS_TOPIC).is_some() {
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
            OFFSETS_TOPIC_PARTITIONS,
            1,
            configs,
            false,
            now_ms,
        ) {
            Ok(_) | Err(TopicOpError::AlreadyExists(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Loads every committed offset from `__consumer_offsets`, if it exists.
    /// Returns how many offsets are committed.
    pub fn load_offsets(&self) -> Result<usize, OffsetsError> {
        if self.topics().get(OFFSETS_TOPIC).is_none() {
            return Ok(0);
        }
        let mut store = OffsetStore::new();
        for partition in 0..OFFSETS_TOPIC_PARTITIONS {
            let log = self
                .partition(OFFSETS_TOPIC, partition)
                .ok_or(OffsetsError::MissingPartition(partition))?;
            let log = lock(&log);
            let mut offset = log.log_start_offset();
            while offset < log.log_end_offset() {
                let Some(region) = log.read(offset, READ_CHUNK_BYTES, None, true)?.region else {
                    break;
                };
                let bytes = region.to_vec()?;
                let mut advanced = false;
                for batch in Batches::new(&bytes) {
                    // A region may end inside a batch: the next read starts there.
                    let Ok((header, batch)) = batch else { break };
                    offset = header.next_offset();
                    advanced = true;
                    if header.is_control() {
                        continue;
                    }
                    let records = BatchRecords::decode(batch)?;
                    for record in &records.records {
                        let Some(key) = records.key(record) else {
                            continue;
                        };
                        match OffsetsRecord::decode(key, records.value(record)) {
                            Ok(decoded) => store.apply(decoded),
                            Err(err) => {
                                tracing::warn!(partition, offset = records.offset(record), %err, "skipping an {OFFSETS_TOPIC} record")
                            }
                        }
                    }
                }
                if !advanced {
                    break;
                }
            }
        }
        let count = store.groups().map(|g| store.offsets_of(g).count()).sum();
        *self.offset_store() = store;
        Ok(count)
    }

    /// Writes the commits to the group's `__consumer_offsets` partition,
    /// then makes them visible to OffsetFetch.
    pub fn commit_offsets(
        &self,
        group: &str,
        commits: &[Commit],
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        self.ensure_offsets_topic(now_ms)?;
        let partition = coordinator_partition(group, OFFSETS_TOPIC_PARTITIONS);
        let log = self
            .partition(OFFSETS_TOPIC, partition)
            .ok_or(OffsetsError::MissingPartition(partition))?;
        let records: Vec<OffsetsRecord> = commits
            .iter()
            .map(|c| OffsetsRecord::Offset {
                key: OffsetKey {
                    group: group.to_string(),
                    topic: c.topic.clone(),
                    partition: c.partition,
                },
                value: Some(OffsetValue {
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.clone(),
                    commit_timestamp_ms: now_ms,
                    expire_timestamp_ms: None,
                }),
            })
            .collect();
        let mut batch = BatchBuilder::new(now_ms);
        for record in &records {
            let value = record.encode_value()?;
            batch.push(Some(&record.encode_key()?), value.as_deref(), now_ms);
        }
        lock(&log).append(&batch.build(), now_ms)?;
        let mut store = self.offset_store();
        for record in records {
            store.apply(record);
        }
        Ok(())
    }

    /// The committed offset of one partition for `group`.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<OffsetValue> {
        self.offset_store().fetch(group, topic, partition).cloned()
    }

    /// Removes every committed offset of `group`, writing a tombstone for
    /// each to `__consumer_offsets` first. Returns how many there were.
    pub fn delete_committed(&self, group: &str, now_ms: i64) -> Result<usize, OffsetsError> {
        let keys: Vec<OffsetKey> = {
            let store = self.offset_store();
            store
                .offsets_of(group)
                .map(|(topic, partition, _)| OffsetKey {
                    group: group.to_string(),
                    topic: topic.to_string(),
                    partition,
                })
                .collect()
        };
        if keys.is_empty() {
            return Ok(0);
        }
        let partition = coordinator_partition(group, OFFSETS_TOPIC_PARTITIONS);
        let log = self
            .partition(OFFSETS_TOPIC, partition)
            .ok_or(OffsetsError::MissingPartition(partition))?;
        let mut batch = BatchBuilder::new(now_ms);
        for key in &keys {
            let record = OffsetsRecord::Offset {
                key: key.clone(),
                value: None,
            };
            batch.push(Some(&record.encode_key()?), None, now_ms);
        }
        lock(&log).append(&batch.build(), now_ms)?;
        let count = keys.len();
        self.offset_store().delete_group(group);
        Ok(count)
    }

    /// The groups with committed offsets.
    pub fn committed_groups(&self) -> Vec<String> {
        self.offset_store().groups().map(str::to_string).collect()
    }

    /// Every partition `group` has committed, by topic.
    pub fn committed_partitions(&self, group: &str) -> Vec<(String, Vec<i32>)> {
        let store = self.offset_store();
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition, _) in store.offsets_of(group) {
            by_topic
                .entry(topic.to_string())
                .or_default()
                .push(partition);
        }
        by_topic.into_iter().collect()
    }
}
