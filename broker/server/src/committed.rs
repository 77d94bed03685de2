//! Committed offsets and stored groups: kept in `__consumer_offsets`
//! (`offsets.topic.num.partitions`, 50 by default, compacted, Kafka's record
//! schemas; group G lives on partition `abs(javaHash(G)) % partitions`) and
//! mirrored in memory for OffsetFetch and the group coordinator. Both are
//! rebuilt from the topic at start.

use std::collections::BTreeMap;
use std::sync::{MutexGuard, PoisonError};

use runnel_coordinator::{
    GroupMetadataValue, OffsetKey, OffsetStore, OffsetValue, OffsetsRecord, coordinator_partition,
};
use runnel_http::error_chain;
use runnel_log::BatchBuilder;
use thiserror::Error;

use crate::broker::{Broker, TopicOpError};
use crate::groups::GroupRecord;

/// Kafka's internal topic of committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offsets.topic.segment.bytes`: 100 MiB.
const OFFSETS_TOPIC_SEGMENT_BYTES: &str = "104857600";

/// What [`Broker::load_offsets`] found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    /// Committed offsets.
    pub offsets: usize,
    /// Groups with stored membership state.
    pub groups: usize,
}

/// One partition's commit in an OffsetCommit request.
#[derive(Debug, Clone)]
pub struct Commit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// From OffsetCommit v2-v4's `retention_time_ms`, when one was asked.
    pub expire_timestamp_ms: Option<i64>,
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
    #[error(transparent)]
    Load(#[from] crate::log_reader::ReadError),
}

impl Broker {
    fn offset_store(&self) -> MutexGuard<'_, OffsetStore> {
        self.offsets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Partitions of `__consumer_offsets`: the topic's, once it exists;
    /// `offsets.topic.num.partitions` until then.
    fn offsets_topic_partitions(&self) -> i32 {
        self.topic(OFFSETS_TOPIC)
            .map_or(self.config.offsets_topic_num_partitions, |t| t.partitions)
    }

    /// The `__consumer_offsets` partition that holds `group`, as Kafka's
    /// `abs(hash(group)) % partitions`.
    pub(crate) fn coordinator_partition(&self, group: &str) -> i32 {
        coordinator_partition(group, self.offsets_topic_partitions())
    }

    /// Creates `__consumer_offsets` the first time a group needs it, as
    /// Kafka does.
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
            Err(err) => Err(err.into()),
        }
    }

    /// Loads every committed offset and stored group from
    /// `__consumer_offsets`, if it exists.
    pub fn load_offsets(&self) -> Result<Loaded, OffsetsError> {
        if self.topic(OFFSETS_TOPIC).is_none() {
            return Ok(Loaded::default());
        }
        let mut store = OffsetStore::new();
        // Transactional offsets wait for their producer's marker.
        let mut pending: std::collections::HashMap<i64, Vec<OffsetsRecord>> = Default::default();
        // The last record of each group wins; a tombstone removes it.
        let mut stored_groups: BTreeMap<String, Option<GroupMetadataValue>> = BTreeMap::new();
        let partitions = self.offsets_topic_partitions();
        self.read_internal_topic(OFFSETS_TOPIC, partitions, |partition, header, records| {
            if header.is_control() {
                let kind = records
                    .records
                    .first()
                    .and_then(|r| records.key(r))
                    .and_then(runnel_log::control::ControlType::parse);
                let done = pending.remove(&header.producer_id).unwrap_or_default();
                if kind == Some(runnel_log::control::ControlType::Commit) {
                    for record in done {
                        store.apply(record);
                    }
                }
                return;
            }
            for record in &records.records {
                let Some(key) = records.key(record) else {
                    continue;
                };
                match OffsetsRecord::decode(key, records.value(record)) {
                    Ok(OffsetsRecord::GroupMetadata { group, value }) => {
                        stored_groups.insert(group, value);
                    }
                    Ok(decoded) if header.is_transactional() => {
                        pending.entry(header.producer_id).or_default().push(decoded);
                    }
                    Ok(decoded) => store.apply(decoded),
                    Err(err) => {
                        tracing::warn!(partition, offset = records.offset(record), error = %error_chain(&err), "skipping an {OFFSETS_TOPIC} record")
                    }
                }
            }
        })?;
        let offsets = store.groups().map(|g| store.offsets_of(g).count()).sum();
        *self.offset_store() = store;
        // Open transactions' offsets: their EndTxn completes them.
        *self.pending_txn_offsets() = pending;
        let stored_groups: Vec<(String, GroupMetadataValue)> = stored_groups
            .into_iter()
            .filter_map(|(group, value)| Some((group, value?)))
            .collect();
        let groups = stored_groups.len();
        self.groups.restore(stored_groups);
        Ok(Loaded { offsets, groups })
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
        let partition = self.coordinator_partition(group);
        let records = offset_records(group, commits, now_ms);
        self.append_offsets_records(partition, &records, None, now_ms)?;
        let mut store = self.offset_store();
        for record in records {
            store.apply(record);
        }
        Ok(())
    }

    /// TxnOffsetCommit: writes the commits as a transactional batch of the
    /// producer to the group's `__consumer_offsets` partition; they take
    /// effect when the transaction commits (see
    /// [`complete_txn_offsets`](Self::complete_txn_offsets)).
    pub fn commit_txn_offsets(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
        commits: &[Commit],
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        self.ensure_offsets_topic(now_ms)?;
        let partition = self.coordinator_partition(group);
        let records = offset_records(group, commits, now_ms);
        self.append_offsets_records(
            partition,
            &records,
            Some((producer_id, producer_epoch)),
            now_ms,
        )?;
        self.pending_txn_offsets()
            .entry(producer_id)
            .or_default()
            .extend(records);
        Ok(())
    }

    /// The producer's transaction ended (its markers are written): its
    /// offsets take effect on commit and are dropped on abort.
    pub fn complete_txn_offsets(&self, producer_id: i64, commit: bool) {
        let Some(records) = self.pending_txn_offsets().remove(&producer_id) else {
            return;
        };
        if commit {
            let mut store = self.offset_store();
            for record in records {
                store.apply(record);
            }
        }
    }

    /// Whether an open transaction has committed an offset of this
    /// partition for `group` (what OffsetFetch's `require_stable` waits for,
    /// KIP-447).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn_offsets().values().flatten().any(|record| {
            matches!(record, OffsetsRecord::Offset { key, .. }
                if key.group == group && key.topic == topic && key.partition == partition)
        })
    }

    fn pending_txn_offsets(
        &self,
    ) -> MutexGuard<'_, std::collections::HashMap<i64, Vec<OffsetsRecord>>> {
        self.pending_txn_offsets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the group records queued so far (see [`Broker::store_groups`]);
    /// returns how many.
    pub fn flush_group_stores(&self, now_ms: i64) -> Result<usize, OffsetsError> {
        let _order = self
            .group_store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let records = self.groups.take_stores();
        let count = records.len();
        self.store_groups(records, now_ms)?;
        Ok(count)
    }

    /// Writes group records (stored groups and tombstones) to their
    /// groups' `__consumer_offsets` partitions, one batch per partition.
    pub fn store_groups(&self, records: Vec<GroupRecord>, now_ms: i64) -> Result<(), OffsetsError> {
        if records.is_empty() {
            return Ok(());
        }
        self.ensure_offsets_topic(now_ms)?;
        let mut by_partition: BTreeMap<i32, Vec<OffsetsRecord>> = BTreeMap::new();
        for (group, value) in records {
            by_partition
                .entry(self.coordinator_partition(&group))
                .or_default()
                .push(OffsetsRecord::GroupMetadata { group, value });
        }
        for (partition, records) in by_partition {
            self.append_offsets_records(partition, &records, None, now_ms)?;
        }
        Ok(())
    }

    /// Expires committed offsets past `offsets.retention.minutes` (see
    /// [`crate::groups::Groups::retention_clock`]) with tombstones, then drops the empty
    /// groups left without offsets. Returns (offsets expired, groups removed).
    pub fn expire_offsets(&self, now_ms: i64) -> Result<(usize, usize), OffsetsError> {
        let retention_ms = self.config.offsets_retention_ms;
        let expired = {
            let mut store = self.offset_store();
            store.expire(now_ms, retention_ms, |group| {
                self.groups.retention_clock(group)
            })
        };
        let mut by_partition: BTreeMap<i32, Vec<OffsetsRecord>> = BTreeMap::new();
        for key in &expired {
            by_partition
                .entry(self.coordinator_partition(&key.group))
                .or_default()
                .push(OffsetsRecord::Offset {
                    key: key.clone(),
                    value: None,
                });
        }
        for (partition, records) in by_partition {
            self.append_offsets_records(partition, &records, None, now_ms)?;
        }
        let with_offsets: std::collections::BTreeSet<String> =
            self.committed_groups().into_iter().collect();
        let removed = self
            .groups
            .ids()
            .into_iter()
            .filter(|group| !with_offsets.contains(group) && self.groups.remove_if_empty(group))
            .count();
        Ok((expired.len(), removed))
    }

    /// Writes `records` as one batch; `transaction` (producer id, epoch)
    /// makes it that producer's transactional batch.
    fn append_offsets_records(
        &self,
        partition: i32,
        records: &[OffsetsRecord],
        transaction: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        let log = self
            .partition(OFFSETS_TOPIC, partition)
            .ok_or(OffsetsError::MissingPartition(partition))?;
        let mut batch = BatchBuilder::new(now_ms);
        if let Some((producer_id, producer_epoch)) = transaction {
            batch = batch
                .producer(producer_id, producer_epoch, -1)
                .transactional();
        }
        for record in records {
            let value = record.encode_value()?;
            batch.push(Some(&record.encode_key()?), value.as_deref(), now_ms);
        }
        log.append(&batch.build(), now_ms)?;
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
        let partition = self.coordinator_partition(group);
        let tombstones: Vec<OffsetsRecord> = keys
            .into_iter()
            .map(|key| OffsetsRecord::Offset { key, value: None })
            .collect();
        self.append_offsets_records(partition, &tombstones, None, now_ms)?;
        let count = tombstones.len();
        self.offset_store().delete_group(group);
        Ok(count)
    }

    /// Removes the committed offsets of `group` for `partitions` (topic,
    /// partition), with tombstones; those not committed are skipped.
    /// Returns how many went.
    pub fn delete_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<usize, OffsetsError> {
        let tombstones: Vec<OffsetsRecord> = {
            let store = self.offset_store();
            partitions
                .iter()
                .filter(|(topic, partition)| store.fetch(group, topic, *partition).is_some())
                .map(|(topic, partition)| OffsetsRecord::Offset {
                    key: OffsetKey {
                        group: group.to_string(),
                        topic: topic.clone(),
                        partition: *partition,
                    },
                    value: None,
                })
                .collect()
        };
        if tombstones.is_empty() {
            return Ok(0);
        }
        let partition = self.coordinator_partition(group);
        self.append_offsets_records(partition, &tombstones, None, now_ms)?;
        let count = tombstones.len();
        let mut store = self.offset_store();
        for record in tombstones {
            store.apply(record);
        }
        Ok(count)
    }

    /// Every committed offset: (group, topic, partition, offset).
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        let store = self.offset_store();
        store
            .groups()
            .flat_map(|group| {
                store
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

/// The `__consumer_offsets` records of `group`'s commits.
fn offset_records(group: &str, commits: &[Commit], now_ms: i64) -> Vec<OffsetsRecord> {
    commits
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
                expire_timestamp_ms: c.expire_timestamp_ms,
            }),
        })
        .collect()
}
