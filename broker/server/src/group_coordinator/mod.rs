//! The group coordinator's committed offsets and stored groups, sharded by
//! the `__consumer_offsets` partition that holds them (group G lives on
//! partition `abs(javaHash(G)) % partitions`, as in Kafka). A shard exists
//! while this broker leads its partition: [`GroupCoordinator::load`] reads
//! the partition back when it becomes leader, [`GroupCoordinator::unload`]
//! drops it on resign; a group whose shard is not here is answered
//! NOT_COORDINATOR. Records go to the partition through the replica
//! manager, like any producer's, and only then show in the shard.
//!
//! - `follow`: loading and unloading shards as this broker's share of the
//!   metadata changes.
//! - `load`: rebuilding one shard from its partition.
//! - `shard`: one partition's committed offsets and the offsets of open
//!   transactions waiting for their markers.
//!
//! Each shard has its own locks, held for an update of its maps only,
//! never across a write or an await.

mod follow;
mod load;
mod shard;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use runnel_coordinator::{
    OffsetKey, OffsetValue, OffsetsRecord, OffsetsRecordError, coordinator_partition,
};
use runnel_log::BatchBuilder;
use thiserror::Error;

use crate::groups::{GroupRecord, Groups};
use crate::replica_manager::ReplicaManager;
pub use load::Loaded;
use shard::Shard;

/// Kafka's internal topic of committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How long a write to `__consumer_offsets` may wait for the ISR (Kafka's
/// `offsets.commit.timeout.ms`).
const REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum OffsetsError {
    #[error(
        "this broker does not coordinate group {group}: {OFFSETS_TOPIC} partition {partition} is not loaded here"
    )]
    NotCoordinator { group: String, partition: i32 },
    #[error("the {OFFSETS_TOPIC} partition {0} is missing")]
    MissingPartition(i32),
    #[error("cannot encode an {OFFSETS_TOPIC} record")]
    Encode(#[from] OffsetsRecordError),
    #[error("cannot read or write {OFFSETS_TOPIC}")]
    Log(#[from] runnel_log::LogError),
    #[error("cannot create {OFFSETS_TOPIC}")]
    Create(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Load(#[from] crate::log_reader::ReadError),
    #[error("the write to {OFFSETS_TOPIC} partition {partition} was not replicated: {outcome:?}")]
    NotReplicated {
        partition: i32,
        outcome: crate::replica_manager::Awaited,
    },
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

#[derive(Debug)]
pub struct GroupCoordinator {
    replicas: Arc<ReplicaManager>,
    /// Membership state, restored from the shards as they load.
    groups: Arc<Groups>,
    /// `offsets.retention.minutes`, in ms.
    retention_ms: i64,
    /// The partition count of `__consumer_offsets`:
    /// `offsets.topic.num.partitions` until the topic exists.
    partitions: AtomicI32,
    shards: RwLock<HashMap<i32, Arc<Shard>>>,
    /// Held while queued group records are taken and written, so they
    /// reach `__consumer_offsets` in the order they happened.
    group_store: Mutex<()>,
    /// Groups whose offsets never expire: the broker's own (the delay
    /// movers' positions).
    kept: BTreeSet<String>,
}

impl GroupCoordinator {
    pub fn new(
        replicas: Arc<ReplicaManager>,
        groups: Arc<Groups>,
        retention_ms: i64,
        default_partitions: i32,
    ) -> Self {
        Self {
            replicas,
            groups,
            retention_ms,
            partitions: AtomicI32::new(default_partitions),
            shards: RwLock::default(),
            group_store: Mutex::new(()),
            kept: BTreeSet::new(),
        }
    }

    /// Offsets of `groups` never expire, whatever `offsets.retention.minutes`.
    pub fn keeping(mut self, groups: &[&str]) -> Self {
        self.kept = groups.iter().map(|g| g.to_string()).collect();
        self
    }

    /// Sets the partition count of `__consumer_offsets` once it exists.
    pub fn set_partitions(&self, partitions: i32) {
        self.partitions.store(partitions, Ordering::Release);
    }

    /// The `__consumer_offsets` partition that holds `group`.
    pub fn partition_of(&self, group: &str) -> i32 {
        coordinator_partition(group, self.partitions.load(Ordering::Acquire))
    }

    /// Whether this broker coordinates `group`: its partition is loaded.
    pub fn coordinates(&self, group: &str) -> bool {
        self.shard(group).is_ok()
    }

    fn shard(&self, group: &str) -> Result<(i32, Arc<Shard>), OffsetsError> {
        let partition = self.partition_of(group);
        self.shards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&partition)
            .map(|shard| (partition, Arc::clone(shard)))
            .ok_or_else(|| OffsetsError::NotCoordinator {
                group: group.to_string(),
                partition,
            })
    }

    fn all_shards(&self) -> Vec<Arc<Shard>> {
        self.shards
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Stops coordinating the groups of `partition` (this broker no longer
    /// leads it): their offsets and membership state are dropped from
    /// memory, not from the log.
    pub fn unload(&self, partition: i32) {
        let removed = self
            .shards
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&partition);
        let members = self
            .groups
            .unload(|group| self.partition_of(group) == partition);
        if removed.is_some() || members > 0 {
            tracing::info!(
                partition,
                groups_with_members = members,
                "unloaded the groups of an {OFFSETS_TOPIC} partition"
            );
        }
    }

    /// Writes the commits to the group's partition, then makes them visible
    /// to OffsetFetch.
    pub fn commit_offsets(
        &self,
        group: &str,
        commits: &[Commit],
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        let (partition, shard) = self.shard(group)?;
        let records = offset_records(group, commits, now_ms);
        self.append(partition, &records, None, now_ms)?;
        shard.apply(records);
        Ok(())
    }

    /// TxnOffsetCommit: writes the commits as a transactional batch of the
    /// producer; they take effect when its transaction commits (see
    /// [`GroupCoordinator::complete_txn_offsets`]).
    pub fn commit_txn_offsets(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        group: &str,
        commits: &[Commit],
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        let (partition, shard) = self.shard(group)?;
        let records = offset_records(group, commits, now_ms);
        self.append(
            partition,
            &records,
            Some((producer_id, producer_epoch)),
            now_ms,
        )?;
        shard.add_pending(producer_id, records);
        Ok(())
    }

    /// The producer's transaction ended (its markers are written): its
    /// offsets take effect on commit and are dropped on abort.
    pub fn complete_txn_offsets(&self, producer_id: i64, commit: bool) {
        for shard in self.all_shards() {
            shard.complete_pending(producer_id, commit);
        }
    }

    /// Whether an open transaction has committed an offset of this
    /// partition for `group` (what OffsetFetch's `require_stable` waits for,
    /// KIP-447).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.shard(group)
            .is_ok_and(|(_, shard)| shard.has_pending(group, topic, partition))
    }

    /// Writes the group records queued so far; returns how many. `before`
    /// runs first when there are any (the broker creates
    /// `__consumer_offsets` there when it is missing).
    pub fn flush_group_stores(
        &self,
        now_ms: i64,
        before: impl FnOnce() -> Result<(), OffsetsError>,
    ) -> Result<usize, OffsetsError> {
        let _order = self
            .group_store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let records = self.groups.take_stores();
        if records.is_empty() {
            return Ok(0);
        }
        before()?;
        let count = records.len();
        self.store_groups(records, now_ms)?;
        Ok(count)
    }

    /// Writes group records (stored groups and tombstones) to their
    /// groups' partitions, one batch per partition.
    fn store_groups(&self, records: Vec<GroupRecord>, now_ms: i64) -> Result<(), OffsetsError> {
        let mut by_partition: BTreeMap<i32, Vec<OffsetsRecord>> = BTreeMap::new();
        for (group, value) in records {
            by_partition
                .entry(self.partition_of(&group))
                .or_default()
                .push(OffsetsRecord::GroupMetadata { group, value });
        }
        for (partition, records) in by_partition {
            self.append(partition, &records, None, now_ms)?;
        }
        Ok(())
    }

    /// Expires committed offsets past `offsets.retention.minutes` (see
    /// [`Groups::retention_clock`]) with tombstones, then drops the empty
    /// groups left without offsets. Returns (offsets expired, groups
    /// removed).
    pub fn expire_offsets(&self, now_ms: i64) -> Result<(usize, usize), OffsetsError> {
        let mut expired = 0;
        for shard in self.all_shards() {
            let keys = shard.expire(now_ms, self.retention_ms, |group| {
                if self.kept.contains(group) {
                    return runnel_coordinator::RetentionClock::Paused;
                }
                self.groups.retention_clock(group)
            });
            let Some(first) = keys.first() else { continue };
            let partition = self.partition_of(&first.group);
            expired += keys.len();
            let tombstones: Vec<OffsetsRecord> = keys
                .into_iter()
                .map(|key| OffsetsRecord::Offset { key, value: None })
                .collect();
            self.append(partition, &tombstones, None, now_ms)?;
        }
        let with_offsets: BTreeSet<String> = self.committed_groups().into_iter().collect();
        let removed = self
            .groups
            .ids()
            .into_iter()
            .filter(|group| !with_offsets.contains(group) && self.groups.remove_if_empty(group))
            .count();
        Ok((expired, removed))
    }

    /// Writes `records` as one batch to `partition`; `transaction`
    /// (producer id, epoch) makes it that producer's transactional batch.
    fn append(
        &self,
        partition: i32,
        records: &[OffsetsRecord],
        transaction: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<(), OffsetsError> {
        let log = self
            .replicas
            .get(OFFSETS_TOPIC, partition)
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
        let appended = log.append(&batch.build(), now_ms)?;
        match log.wait_replicated(&appended, REPLICATION_TIMEOUT) {
            crate::replica_manager::Awaited::Reached => Ok(()),
            outcome => Err(OffsetsError::NotReplicated { partition, outcome }),
        }
    }

    /// The committed offset of one partition for `group`.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<OffsetValue> {
        let (_, shard) = self.shard(group).ok()?;
        shard.committed(group, topic, partition)
    }

    /// As [`GroupCoordinator::committed`], but NOT_COORDINATOR when the
    /// group's partition is not loaded here, rather than "none committed".
    pub fn committed_here(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
    ) -> Result<Option<OffsetValue>, OffsetsError> {
        let (_, shard) = self.shard(group)?;
        Ok(shard.committed(group, topic, partition))
    }

    /// Removes every committed offset of `group`, writing a tombstone for
    /// each first. Returns how many there were.
    pub fn delete_committed(&self, group: &str, now_ms: i64) -> Result<usize, OffsetsError> {
        let (partition, shard) = self.shard(group)?;
        let keys = shard.keys_of(group);
        if keys.is_empty() {
            return Ok(0);
        }
        let tombstones: Vec<OffsetsRecord> = keys
            .into_iter()
            .map(|key| OffsetsRecord::Offset { key, value: None })
            .collect();
        self.append(partition, &tombstones, None, now_ms)?;
        let count = tombstones.len();
        shard.delete_group(group);
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
        let (partition, shard) = self.shard(group)?;
        let tombstones: Vec<OffsetsRecord> = partitions
            .iter()
            .filter(|(topic, p)| shard.committed(group, topic, *p).is_some())
            .map(|(topic, p)| OffsetsRecord::Offset {
                key: OffsetKey {
                    group: group.to_string(),
                    topic: topic.clone(),
                    partition: *p,
                },
                value: None,
            })
            .collect();
        if tombstones.is_empty() {
            return Ok(0);
        }
        self.append(partition, &tombstones, None, now_ms)?;
        let count = tombstones.len();
        shard.apply(tombstones);
        Ok(count)
    }

    /// Every committed offset: (group, topic, partition, offset).
    pub fn committed_offsets(&self) -> Vec<(String, String, i32, i64)> {
        self.all_shards()
            .iter()
            .flat_map(|shard| shard.all_offsets())
            .collect()
    }

    /// The groups with committed offsets.
    pub fn committed_groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self
            .all_shards()
            .iter()
            .flat_map(|shard| shard.groups())
            .collect();
        groups.sort();
        groups
    }

    /// Every partition `group` has committed, by topic.
    pub fn committed_partitions(&self, group: &str) -> Vec<(String, Vec<i32>)> {
        self.shard(group)
            .map(|(_, shard)| shard.partitions_of(group))
            .unwrap_or_default()
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

#[cfg(test)]
mod tests {
    use runnel_coordinator::GroupConfig;
    use runnel_log::{LogConfig, LogManager, ManagerConfig};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const PARTITIONS: i32 = 3;

    fn coordinator(dir: &std::path::Path) -> GroupCoordinator {
        let logs =
            LogManager::open(ManagerConfig::new(vec![dir.to_path_buf()]), NOW).expect("open");
        let replicas = Arc::new(ReplicaManager::for_test(Arc::new(logs)));
        replicas
            .host(OFFSETS_TOPIC, 0, PARTITIONS, &LogConfig::default(), NOW)
            .expect("host");
        let groups = Arc::new(Groups::new(GroupConfig {
            initial_rebalance_delay_ms: 0,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
        }));
        GroupCoordinator::new(replicas, groups, 7 * 24 * 3_600_000, PARTITIONS)
    }

    fn commit(offset: i64) -> Commit {
        Commit {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            expire_timestamp_ms: None,
        }
    }

    /// A group id that lives on `partition`.
    fn group_on(coordinator: &GroupCoordinator, partition: i32) -> String {
        (0..)
            .map(|i| format!("group-{i}"))
            .find(|g| coordinator.partition_of(g) == partition)
            .expect("some id hashes there")
    }

    #[test]
    fn a_group_whose_partition_is_not_loaded_gets_not_coordinator() {
        let dir = tempfile::tempdir().expect("tempdir");
        let coordinator = coordinator(dir.path());
        coordinator.load(1).expect("load 1");
        let here = group_on(&coordinator, 1);
        let elsewhere = group_on(&coordinator, 2);
        coordinator
            .commit_offsets(&here, &[commit(5)], NOW)
            .expect("commit on a loaded shard");
        assert_eq!(
            coordinator.committed(&here, "t", 0).map(|v| v.offset),
            Some(5)
        );
        let err = coordinator
            .commit_offsets(&elsewhere, &[commit(6)], NOW)
            .expect_err("partition 2 is not loaded");
        assert!(
            matches!(err, OffsetsError::NotCoordinator { partition: 2, .. }),
            "{err:?}"
        );
        assert_eq!(
            crate::error_codes::offsets(&err),
            kafka_protocol::error::ResponseError::NotCoordinator
        );
        assert!(coordinator.committed(&elsewhere, "t", 0).is_none());
    }

    #[test]
    fn unload_then_load_rebuilds_the_shard_from_its_partition() {
        let dir = tempfile::tempdir().expect("tempdir");
        let coordinator = coordinator(dir.path());
        for partition in 0..PARTITIONS {
            coordinator.load(partition).expect("load");
        }
        let group = group_on(&coordinator, 0);
        coordinator
            .commit_offsets(&group, &[commit(7)], NOW)
            .expect("commit");
        coordinator
            .commit_txn_offsets(42, 0, &group, &[commit(9)], NOW)
            .expect("transactional commit");
        assert!(coordinator.has_pending_txn_offset(&group, "t", 0));
        coordinator.unload(0);
        assert!(coordinator.committed(&group, "t", 0).is_none(), "unloaded");
        let loaded = coordinator.load(0).expect("reload");
        assert_eq!(loaded.offsets, 1);
        assert_eq!(
            coordinator.committed(&group, "t", 0).map(|v| v.offset),
            Some(7)
        );
        // The open transaction's offset is pending again, and applies on
        // its commit.
        assert!(coordinator.has_pending_txn_offset(&group, "t", 0));
        coordinator.complete_txn_offsets(42, true);
        assert_eq!(
            coordinator.committed(&group, "t", 0).map(|v| v.offset),
            Some(9)
        );
        assert_eq!(coordinator.committed_groups(), [group]);
    }

    #[test]
    fn unload_drops_the_membership_of_the_partitions_groups_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let coordinator = coordinator(dir.path());
        let (gone, kept) = (group_on(&coordinator, 0), group_on(&coordinator, 1));
        for group in [&gone, &kept] {
            let join = runnel_coordinator::group::JoinRequest {
                // v3: no MEMBER_ID_REQUIRED round trip.
                api_version: 3,
                member_id: String::new(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), bytes::Bytes::new())],
                new_member_id: format!("c-{group}"),
            };
            // The answer may be held for the rebalance; the member is in.
            let _reply = coordinator.groups.join(group, join);
            assert!(coordinator.groups.exists(group));
        }
        coordinator.unload(0);
        assert!(!coordinator.groups.exists(&gone), "its partition went");
        assert!(coordinator.groups.exists(&kept));
    }
}
