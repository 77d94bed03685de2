//! One `__consumer_offsets` partition's share of the group coordinator:
//! the committed offsets of its groups, and the offsets open transactions
//! committed there (TxnOffsetCommit) until their markers say commit or
//! abort. Each map has its own lock, held for one update or one read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use runnel_coordinator::{OffsetKey, OffsetStore, OffsetValue, OffsetsRecord, RetentionClock};

#[derive(Debug, Default)]
pub struct Shard {
    offsets: Mutex<OffsetStore>,
    /// By producer id.
    pending: Mutex<HashMap<i64, Vec<OffsetsRecord>>>,
}

impl Shard {
    pub fn new(offsets: OffsetStore, pending: HashMap<i64, Vec<OffsetsRecord>>) -> Self {
        Self {
            offsets: Mutex::new(offsets),
            pending: Mutex::new(pending),
        }
    }

    fn offsets(&self) -> MutexGuard<'_, OffsetStore> {
        self.offsets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<i64, Vec<OffsetsRecord>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn apply(&self, records: Vec<OffsetsRecord>) {
        let mut offsets = self.offsets();
        for record in records {
            offsets.apply(record);
        }
    }

    pub fn add_pending(&self, producer_id: i64, records: Vec<OffsetsRecord>) {
        self.pending()
            .entry(producer_id)
            .or_default()
            .extend(records);
    }

    pub fn complete_pending(&self, producer_id: i64, commit: bool) {
        let Some(records) = self.pending().remove(&producer_id) else {
            return;
        };
        if commit {
            self.apply(records);
        }
    }

    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending().values().flatten().any(|record| {
            matches!(record, OffsetsRecord::Offset { key, .. }
                if key.group == group && key.topic == topic && key.partition == partition)
        })
    }

    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<OffsetValue> {
        self.offsets().fetch(group, topic, partition).cloned()
    }

    pub fn keys_of(&self, group: &str) -> Vec<OffsetKey> {
        self.offsets()
            .offsets_of(group)
            .map(|(topic, partition, _)| OffsetKey {
                group: group.to_string(),
                topic: topic.to_string(),
                partition,
            })
            .collect()
    }

    pub fn delete_group(&self, group: &str) {
        self.offsets().delete_group(group);
    }

    pub fn expire(
        &self,
        now_ms: i64,
        retention_ms: i64,
        clock: impl Fn(&str) -> RetentionClock,
    ) -> Vec<OffsetKey> {
        self.offsets().expire(now_ms, retention_ms, clock)
    }

    /// (group, topic, partition, offset) of every committed offset.
    pub fn all_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let offsets = self.offsets();
        offsets
            .groups()
            .flat_map(|group| {
                offsets
                    .offsets_of(group)
                    .map(move |(topic, partition, value)| {
                        (
                            group.to_string(),
                            topic.to_string(),
                            partition,
                            value.offset,
                        )
                    })
            })
            .collect()
    }

    pub fn groups(&self) -> Vec<String> {
        self.offsets().groups().map(str::to_string).collect()
    }

    pub fn partitions_of(&self, group: &str) -> Vec<(String, Vec<i32>)> {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition, _) in self.offsets().offsets_of(group) {
            by_topic
                .entry(topic.to_string())
                .or_default()
                .push(partition);
        }
        by_topic.into_iter().collect()
    }
}
