//! The partitions this broker hosts, by topic and index, over the log
//! manager that keeps their files.
//!
//! - `partition`: one partition's log, leader epoch, high watermark and
//!   wake-ups; every write goes through it.
//! - `purgatory`: requests parked until partitions reach an offset
//!   (`acks=all`).
//! - `simulation` (tests): a seeded simulation of the replication
//!   protocol over `leader_state` and the epoch cache, 1000 seeds in
//!   `cargo test` (`RUNNEL_SIM_SEEDS=n` for more).
//! - `txn_guards`: KIP-890's verification guards of transactional
//!   producers' first batches.
//! - `watchers`: the per-partition wake-up lists parked requests register
//!   with (check-then-watch without a race).
//!
//! Lookups take a read lock for a map lookup only. Creating a partition
//! opens its log with no lock held that a lookup waits for; the map is
//! locked only to insert the opened partitions. Deleting removes them from
//! the map first, then deletes the files without the lock.

mod leader_state;
mod partition;
mod purgatory;
#[cfg(test)]
mod simulation;
mod txn_guards;
mod watchers;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use runnel_log::{LogConfig, LogError, LogManager, TopicPartition};
use runnel_metadata::LocalReplicaChanges;

use crate::storage_health::StorageHealth;

pub use leader_state::IsrChange;
pub use partition::{Appended, LeaderWriteError, Partition, wait_replicated};
pub use purgatory::{Awaited, Wait, wait_for_high_watermarks};
pub use txn_guards::TxnGuard;
pub use watchers::Waiter;

type HostedPartitions = BTreeMap<i32, Arc<Partition>>;

#[derive(Debug)]
pub struct ReplicaManager {
    logs: Arc<LogManager>,
    /// Told of every write's outcome: a storage failure marks the log dir.
    storage: Arc<StorageHealth>,
    /// Each topic's hosted partitions by index (on a cluster, only some of
    /// a topic's partitions are here).
    partitions: RwLock<HashMap<Arc<str>, HostedPartitions>>,
    /// On a cluster, a partition opened from disk does not know how much
    /// of its log the ISR held: its high watermark starts at the log
    /// start and only the ISR (or the leader, for a follower) moves it.
    /// A broker alone is its ISR: it starts at the log end.
    replicated: bool,
}

impl ReplicaManager {
    pub fn new(logs: Arc<LogManager>, storage: Arc<StorageHealth>, replicated: bool) -> Self {
        Self {
            logs,
            storage,
            partitions: RwLock::default(),
            replicated,
        }
    }

    /// A replica manager over `logs` whose storage failures go to metrics
    /// of its own, for tests.
    #[cfg(test)]
    pub fn for_test(logs: Arc<LogManager>) -> Self {
        let metrics = Arc::new(crate::metrics::BrokerMetrics::new());
        let storage = Arc::new(StorageHealth::new(logs.log_dirs(), metrics));
        Self::new(logs, storage, false)
    }

    /// The log manager, for maintenance over every log (flush, retention,
    /// cleaning, checkpoints).
    pub fn logs(&self) -> &Arc<LogManager> {
        &self.logs
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<Arc<str>, HostedPartitions>> {
        self.partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<Arc<str>, HostedPartitions>> {
        self.partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Partition `index` of `topic`, when this broker hosts it.
    pub fn get(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.read().get(topic)?.get(&index).cloned()
    }

    /// Every hosted partition.
    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.read()
            .values()
            .flat_map(|hosted| hosted.values().cloned())
            .collect()
    }

    /// Every hosted partition of `topic`, in index order.
    pub fn topic_partitions(&self, topic: &str) -> Vec<Arc<Partition>> {
        self.read()
            .get(topic)
            .map(|hosted| hosted.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Hosts partitions `from..to` of `topic`, opening (or creating) their
    /// logs with `config`. Partitions already hosted are kept as they are.
    pub fn host(
        &self,
        topic: &str,
        from: i32,
        to: i32,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        self.host_indexes(topic, from..to, config, now_ms)
    }

    /// Hosts partitions `indexes` of `topic` (see [`ReplicaManager::host`]).
    pub fn host_indexes(
        &self,
        topic: &str,
        indexes: impl IntoIterator<Item = i32>,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let missing: Vec<i32> = {
            let partitions = self.read();
            let hosted = partitions.get(topic);
            indexes
                .into_iter()
                .filter(|i| hosted.is_none_or(|h| !h.contains_key(i)))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let name: Arc<str> = Arc::from(topic);
        let mut opened = Vec::with_capacity(missing.len());
        for index in missing {
            let log = self.logs.get_or_create(
                &TopicPartition::new(topic, index),
                config.clone(),
                now_ms,
            )?;
            opened.push(Arc::new(Partition::new(
                (Arc::clone(&name), index),
                log,
                self.replicated,
                Arc::clone(&self.storage),
            )));
        }
        let mut partitions = self.write();
        let hosted = partitions.entry(name).or_default();
        // A partition another caller hosted meanwhile is kept: both opened
        // the same shared log.
        for partition in opened {
            hosted.entry(partition.index()).or_insert(partition);
        }
        Ok(())
    }

    /// Stops hosting partitions `indexes` of `topic` and deletes their
    /// logs; the topic's other partitions stay.
    pub fn delete_partitions(&self, topic: &str, indexes: &[i32]) -> Result<(), LogError> {
        {
            let mut partitions = self.write();
            if let Some(hosted) = partitions.get_mut(topic) {
                for index in indexes {
                    hosted.remove(index);
                }
                if hosted.is_empty() {
                    partitions.remove(topic);
                }
            }
        }
        for index in indexes {
            self.logs.delete(&TopicPartition::new(topic, *index))?;
        }
        Ok(())
    }

    /// Applies broker `node_id`'s share of a metadata change: hosts the
    /// partitions it now leads or follows (creating their logs with
    /// `config_of(topic)`) in their new role, stops hosting and deletes
    /// those it lost, and gives topics whose configs changed their new
    /// log settings.
    pub fn apply(
        &self,
        node_id: i32,
        local: &LocalReplicaChanges,
        now_ms: i64,
        config_of: impl Fn(&str) -> LogConfig,
    ) -> Result<(), LogError> {
        // Only the partitions named go: a reassignment takes one partition
        // of a topic off this broker and leaves the others.
        let mut deleted: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in local.deletes.keys() {
            deleted
                .entry(tp.topic.as_str())
                .or_default()
                .push(tp.partition);
        }
        for (topic, indexes) in deleted {
            self.delete_partitions(topic, &indexes)?;
        }
        let mut hosted: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in local.leaders.keys().chain(local.followers.keys()) {
            hosted
                .entry(tp.topic.as_str())
                .or_default()
                .push(tp.partition);
        }
        for (topic, indexes) in hosted {
            self.host_indexes(topic, indexes, &config_of(topic), now_ms)?;
        }
        for (tp, local) in &local.leaders {
            if let Some(partition) = self.get(&tp.topic, tp.partition) {
                let state = &local.state;
                partition.become_leader(
                    node_id,
                    state.leader_epoch,
                    state.partition_epoch,
                    (&state.replicas, &state.isr),
                    now_ms,
                )?;
            }
        }
        for (tp, local) in &local.followers {
            if let Some(partition) = self.get(&tp.topic, tp.partition) {
                partition.become_follower(local.state.leader_epoch);
            }
        }
        for topic in local.topic_configs.keys() {
            self.set_config(topic, &config_of(topic));
        }
        Ok(())
    }

    /// Gives every hosted partition of `topic` its log settings.
    pub fn set_config(&self, topic: &str, config: &LogConfig) {
        for partition in self.topic_partitions(topic) {
            partition.log().set_config(config.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use runnel_log::{BatchBuilder, ManagerConfig};

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn manager(dir: &std::path::Path) -> ReplicaManager {
        let logs =
            LogManager::open(ManagerConfig::new(vec![dir.to_path_buf()]), NOW).expect("open");
        ReplicaManager::for_test(Arc::new(logs))
    }

    #[test]
    fn hosts_grows_and_deletes_partitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = manager(dir.path());
        replicas
            .host("t", 0, 2, &LogConfig::default(), NOW)
            .expect("host");
        assert!(replicas.get("t", 1).is_some());
        assert!(replicas.get("t", 2).is_none());
        assert!(replicas.get("t", -1).is_none());
        replicas
            .host("t", 0, 4, &LogConfig::default(), NOW)
            .expect("grow");
        assert_eq!(replicas.topic_partitions("t").len(), 4);
        assert_eq!(replicas.get("t", 3).expect("3").index(), 3);
        replicas.delete_partitions("t", &[3]).expect("delete one");
        assert!(replicas.get("t", 3).is_none());
        assert!(replicas.get("t", 2).is_some(), "the others stay");
        assert!(!dir.path().join("t-3").exists());
        replicas.delete_partitions("t", &[0, 1, 2]).expect("delete");
        assert!(replicas.get("t", 0).is_none());
        assert!(!dir.path().join("t-0").exists());
    }

    #[tokio::test(start_paused = true)]
    async fn an_append_moves_the_high_watermark_and_wakes_only_its_watchers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let replicas = manager(dir.path());
        replicas
            .host("t", 0, 2, &LogConfig::default(), NOW)
            .expect("host");
        let (p0, p1) = (
            replicas.get("t", 0).expect("0"),
            replicas.get("t", 1).expect("1"),
        );
        let on_p0 = Waiter::new();
        let on_p1 = Waiter::new();
        p0.watch_high_watermark(&on_p0);
        p1.watch_high_watermark(&on_p1);
        let batch = BatchBuilder::new(NOW).record(None, Some(b"v"), NOW).build();
        let appended = p0.append(&batch, NOW).expect("append");
        assert_eq!(appended.info.first_offset, 0);
        assert_eq!(p0.high_watermark(), 1);
        assert_eq!(p1.high_watermark(), 0);
        tokio::time::timeout(std::time::Duration::from_secs(5), on_p0.changed())
            .await
            .expect("woken");
        let idle = tokio::time::timeout(std::time::Duration::from_secs(1), on_p1.changed());
        assert!(idle.await.is_err(), "p1 had no append");
    }
}
