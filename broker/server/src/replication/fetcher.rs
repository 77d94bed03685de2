//! This broker's followers' fetches, as Kafka's `ReplicaFetcherManager`
//! and `ReplicaFetcherThread`: one task per source broker and fetcher
//! index (`num.replica.fetchers`; a partition's index is a hash of it),
//! each with one connection to its leader's inter-broker listener.
//!
//! Each round sends one Fetch (v12, this broker's replica id, from each
//! partition's log end with its last fetched epoch and the leader epoch
//! the metadata gives) and takes each partition's answer:
//!
//! - records: the whole batches are appended as they came (their headers
//!   checked, nothing decoded), then the leader's high watermark and log
//!   start are taken;
//! - a diverging epoch: the log is cut back to where this replica's epoch
//!   ends on the leader (or its own, if that is earlier) and the next
//!   round fetches from there;
//! - OFFSET_OUT_OF_RANGE: the leader's log starts past this one's end
//!   (this log starts over there) or this one ends past the leader's high
//!   watermark (cut back to it);
//! - other errors (the leader changed or has not seen the epoch yet): the
//!   partition waits `replica.fetch.backoff.ms`, or until the metadata
//!   gives it anew.
//!
//! The assignments follow the metadata ([`LocalChangesListener`]): a
//! partition this broker now follows is added to its leader's fetcher and
//! taken from any other; one it now leads or no longer hosts is taken
//! away. A fetcher with no partitions waits; it ends when dropped from
//! the manager.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::protocol::StrBytes;
use runnel_client::connection::Connection;
use runnel_log::LogError;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::batches::whole_batches;
use super::throttle::{self, ReplicationQuota};
use crate::cluster_metadata::{Applied, ClusterMetadata};
use crate::config::ReplicationConfig;
use crate::replica_manager::{Partition, ReplicaManager};
use crate::topic_admin::LocalChangesListener;

const FETCH_VERSION: i16 = 12;
/// The wait before fetching a partition again whose leader has not
/// followed the metadata yet (it does within about 50 ms).
const SOON_MS: u64 = 50;
/// Beyond the fetch's own wait: how long an answer may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A fetcher: the broker it fetches from and its index among that
/// broker's fetchers.
type FetcherId = (i32, usize);

/// A partition a fetcher fetches, in the leader epoch the metadata gave.
#[derive(Debug, Clone)]
struct Target {
    partition: Arc<Partition>,
    leader_epoch: i32,
    /// Not fetched before this (after an error).
    delayed_until: Option<Instant>,
}

/// What a fetcher task shares with the manager.
#[derive(Debug, Default)]
struct Assigned {
    targets: Mutex<BTreeMap<(String, i32), Target>>,
    changed: Notify,
    stopped: AtomicBool,
}

impl Assigned {
    fn targets(&self) -> MutexGuard<'_, BTreeMap<(String, i32), Target>> {
        self.targets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub struct ReplicaFetchers {
    node_id: i32,
    config: ReplicationConfig,
    /// The listener leaders are fetched from.
    listener: String,
    metadata: Arc<ClusterMetadata>,
    replicas: Arc<ReplicaManager>,
    fetchers: Mutex<BTreeMap<FetcherId, Arc<Assigned>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Set by [`ReplicaFetchers::stop`]: no fetcher starts after it.
    closed: AtomicBool,
    /// The follower's reassignment throttle, shared by every fetcher.
    quota: Arc<ReplicationQuota>,
}

impl ReplicaFetchers {
    pub fn new(
        node_id: i32,
        config: ReplicationConfig,
        listener: String,
        metadata: Arc<ClusterMetadata>,
        replicas: Arc<ReplicaManager>,
    ) -> Self {
        Self {
            node_id,
            config,
            listener,
            metadata,
            replicas,
            fetchers: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            quota: Arc::default(),
        }
    }

    fn fetchers(&self) -> MutexGuard<'_, BTreeMap<FetcherId, Arc<Assigned>>> {
        self.fetchers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops fetching `key`, wherever it is fetched but from `keep`.
    fn remove(&self, key: &(String, i32), keep: Option<FetcherId>) {
        for (id, assigned) in self.fetchers().iter() {
            if Some(*id) != keep && assigned.targets().remove(key).is_some() {
                assigned.changed.notify_one();
            }
        }
    }

    /// Fetches `partition` from broker `leader` in `leader_epoch`.
    fn add(&self, key: (String, i32), partition: Arc<Partition>, leader: i32, leader_epoch: i32) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        let index = (hasher.finish() % self.config.num_fetchers.max(1) as u64) as usize;
        let id = (leader, index);
        self.remove(&key, Some(id));
        let assigned = {
            let mut fetchers = self.fetchers();
            match fetchers.get(&id) {
                Some(assigned) => Arc::clone(assigned),
                None => {
                    let assigned = Arc::new(Assigned::default());
                    fetchers.insert(id, Arc::clone(&assigned));
                    self.spawn(id, Arc::clone(&assigned));
                    assigned
                }
            }
        };
        assigned.targets().insert(
            key,
            Target {
                partition,
                leader_epoch,
                delayed_until: None,
            },
        );
        assigned.changed.notify_one();
    }

    fn spawn(&self, (leader, index): FetcherId, assigned: Arc<Assigned>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(leader, "no runtime to run a replica fetcher on");
            return;
        };
        let fetcher = Fetcher {
            node_id: self.node_id,
            leader,
            config: self.config.clone(),
            listener: self.listener.clone(),
            metadata: Arc::clone(&self.metadata),
            assigned,
            connection: None,
            quota: Arc::clone(&self.quota),
        };
        tracing::info!(leader, index, "starting a replica fetcher");
        let task = runtime.spawn(fetcher.run());
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    /// Stops every fetcher and waits until they ended (shutdown): none
    /// holds a partition after this.
    pub async fn stop(&self) {
        self.closed.store(true, Ordering::Release);
        for assigned in std::mem::take(&mut *self.fetchers()).into_values() {
            assigned.stopped.store(true, Ordering::Release);
            assigned.targets().clear();
            assigned.changed.notify_one();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            // Appends are not awaited: an abort lands between them.
            task.abort();
            let _ = task.await;
        }
    }
}

impl LocalChangesListener for ReplicaFetchers {
    fn changed(&self, applied: &Applied, _now_ms: i64) {
        let local = &applied.local;
        for tp in local.leaders.keys().chain(local.deletes.keys()) {
            self.remove(&(tp.topic.clone(), tp.partition), None);
        }
        for (tp, followed) in &local.followers {
            let key = (tp.topic.clone(), tp.partition);
            let leader = followed.state.leader;
            match self.replicas.get(&tp.topic, tp.partition) {
                Some(partition) if leader >= 0 && leader != self.node_id => {
                    self.add(key, partition, leader, followed.state.leader_epoch);
                }
                _ => self.remove(&key, None),
            }
        }
    }
}

/// One fetcher task's state.
struct Fetcher {
    node_id: i32,
    leader: i32,
    config: ReplicationConfig,
    listener: String,
    metadata: Arc<ClusterMetadata>,
    assigned: Arc<Assigned>,
    connection: Option<Connection>,
    quota: Arc<ReplicationQuota>,
}

impl Fetcher {
    async fn run(mut self) {
        let backoff = Duration::from_millis(self.config.fetch_backoff_ms);
        while !self.assigned.stopped.load(Ordering::Acquire) {
            let now = Instant::now();
            let due: Vec<((String, i32), Target)> = self
                .assigned
                .targets()
                .iter()
                .filter(|(_, t)| t.delayed_until.is_none_or(|until| until <= now))
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect();
            if due.is_empty() {
                let next = self
                    .assigned
                    .targets()
                    .values()
                    .filter_map(|t| t.delayed_until)
                    .min();
                match next {
                    Some(until) => {
                        tokio::select! {
                            () = self.assigned.changed.notified() => {}
                            () = tokio::time::sleep_until(until) => {}
                        }
                    }
                    None => self.assigned.changed.notified().await,
                }
                continue;
            }
            match self.fetch_once(&due).await {
                Ok(()) => {}
                Err(err) => {
                    tracing::debug!(leader = self.leader, error = %err, "a replica fetch failed");
                    self.connection = None;
                    tokio::select! {
                        () = self.assigned.changed.notified() => {}
                        () = tokio::time::sleep(backoff) => {}
                    }
                }
            }
        }
        tracing::info!(leader = self.leader, "replica fetcher stopped");
    }

    /// `host:port` of the leader's inter-broker listener.
    fn address(&self) -> Option<String> {
        self.metadata
            .image()
            .broker_address(self.leader, &self.listener)
    }

    async fn fetch_once(&mut self, due: &[((String, i32), Target)]) -> Result<(), FetchError> {
        if self.connection.as_ref().is_none_or(Connection::is_closed) {
            let address = self.address().ok_or(FetchError::NoAddress(self.leader))?;
            let connection = Connection::open(&address, "runnel-replica-fetcher")
                .await
                .map_err(|source| FetchError::Exchange {
                    leader: self.leader,
                    source,
                })?;
            self.connection = Some(connection);
        }
        let request = self.request(due);
        let wait = Duration::from_millis(u64::try_from(self.config.fetch_wait_max_ms).unwrap_or(0));
        let Some(connection) = self.connection.as_ref() else {
            return Ok(());
        };
        let response = tokio::time::timeout(
            wait + REQUEST_TIMEOUT,
            connection.call(FETCH_VERSION, &request),
        )
        .await
        .map_err(|_| FetchError::TimedOut(self.leader))?
        .map_err(|source| FetchError::Exchange {
            leader: self.leader,
            source,
        })?;
        if let Some(error) = ResponseError::try_from_code(response.error_code) {
            return Err(FetchError::Refused(self.leader, error));
        }
        let now_ms = crate::clock::now_ms();
        for topic in response.responses {
            let name = topic.topic.0.to_string();
            for answered in topic.partitions {
                let key = (name.clone(), answered.partition_index);
                let Some(sent) = due.iter().find(|(k, _)| *k == key).map(|(_, t)| t) else {
                    continue;
                };
                // The metadata moved the partition while this fetch was
                // out: its answer is stale.
                let current = self.assigned.targets().get(&key).map(|t| t.leader_epoch);
                if current != Some(sent.leader_epoch) {
                    continue;
                }
                if let Err(err) = self.take(&sent.partition, &answered, now_ms) {
                    // The leader has not seen this partition's metadata
                    // yet: it will in a moment.
                    let soon = matches!(
                        err,
                        TakeError::Refused(
                            ResponseError::UnknownTopicOrPartition
                                | ResponseError::UnknownLeaderEpoch
                                | ResponseError::NotLeaderOrFollower
                        )
                    );
                    tracing::debug!(
                        topic = name,
                        partition = answered.partition_index,
                        leader = self.leader,
                        error = %err,
                        "a replica fetch's answer could not be taken; the partition waits"
                    );
                    self.delay(&key, soon);
                }
            }
        }
        Ok(())
    }

    fn request(&self, due: &[((String, i32), Target)]) -> FetchRequest {
        let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
        let rate = throttle::rate(
            &self.metadata.image(),
            self.node_id,
            throttle::FOLLOWER_RATE,
        );
        let spent = self.quota.exceeded(rate, std::time::Instant::now());
        for ((topic, index), target) in due {
            let partition = &target.partition;
            // Left out while the follower's reassignment throttle is spent.
            if spent && self.throttled(partition) {
                continue;
            }
            let (last_fetched_epoch, log_start) = {
                let log = partition.log();
                (log.latest_epoch(), log.log_start_offset())
            };
            topics.entry(topic).or_default().push(
                FetchPartition::default()
                    .with_partition(*index)
                    .with_current_leader_epoch(target.leader_epoch)
                    .with_fetch_offset(partition.log_end_offset())
                    .with_last_fetched_epoch(last_fetched_epoch)
                    .with_log_start_offset(log_start)
                    .with_partition_max_bytes(self.config.fetch_max_bytes),
            );
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(self.node_id))
            .with_max_wait_ms(self.config.fetch_wait_max_ms)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_response_max_bytes)
            .with_isolation_level(0)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        FetchTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(topic.to_owned())))
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
    }

    /// Whether this replica of `partition` is throttled: named in its
    /// topic's `follower.replication.throttled.replicas` and out of the
    /// ISR.
    fn throttled(&self, partition: &Partition) -> bool {
        partition
            .log()
            .config()
            .follower_replication_throttled_replicas
            .contains(partition.index(), self.node_id)
            && !self
                .metadata
                .image()
                .partition(partition.topic(), partition.index())
                .is_some_and(|p| p.isr.contains(&self.node_id))
    }

    /// Takes one partition's answer (see the module doc).
    fn take(
        &self,
        partition: &Partition,
        answered: &PartitionData,
        now_ms: i64,
    ) -> Result<(), TakeError> {
        match ResponseError::try_from_code(answered.error_code) {
            None => {}
            Some(ResponseError::OffsetOutOfRange) => {
                let log_end = partition.log_end_offset();
                if log_end < answered.log_start_offset {
                    tracing::info!(
                        topic = partition.topic(),
                        partition = partition.index(),
                        log_end,
                        leader_log_start = answered.log_start_offset,
                        "the leader's log starts past this replica's end: starting over there"
                    );
                    partition.truncate_fully_and_start_at(answered.log_start_offset, now_ms)?;
                } else if answered.high_watermark >= 0 && log_end > answered.high_watermark {
                    partition.truncate_to(answered.high_watermark, now_ms)?;
                }
                return Ok(());
            }
            Some(error) => return Err(TakeError::Refused(error)),
        }
        let diverging = &answered.diverging_epoch;
        if diverging.epoch >= 0 || diverging.end_offset >= 0 {
            let target = {
                let log = partition.log();
                match log.end_offset_for_epoch(diverging.epoch) {
                    Some((_, local_end)) if diverging.epoch >= 0 => {
                        local_end.min(diverging.end_offset)
                    }
                    _ => partition.high_watermark().min(log.log_end_offset()),
                }
            };
            tracing::info!(
                topic = partition.topic(),
                partition = partition.index(),
                diverging_epoch = diverging.epoch,
                leader_end_offset = diverging.end_offset,
                truncate_to = target,
                "this replica's log diverged from the leader's: cutting it back"
            );
            let before = (partition.log_end_offset(), partition.log().latest_epoch());
            partition.truncate_to(target, now_ms)?;
            // Cut and still diverged the same way: held back, not spun on.
            if (partition.log_end_offset(), partition.log().latest_epoch()) == before {
                return Err(TakeError::StillDiverged {
                    epoch: diverging.epoch,
                    end_offset: diverging.end_offset,
                });
            }
            return Ok(());
        }
        let records = answered.records.as_deref().map_or(&[][..], whole_batches);
        if !records.is_empty() && self.throttled(partition) {
            let rate = throttle::rate(
                &self.metadata.image(),
                self.node_id,
                throttle::FOLLOWER_RATE,
            );
            self.quota
                .record(rate, records.len() as u64, std::time::Instant::now());
        }
        partition.append_as_follower(
            records,
            answered.high_watermark,
            answered.log_start_offset,
            now_ms,
        )?;
        Ok(())
    }

    /// Holds `key` back `replica.fetch.backoff.ms`, or a moment when it
    /// waits for the leader to follow the metadata (`soon`).
    fn delay(&self, key: &(String, i32), soon: bool) {
        let backoff = if soon {
            self.config.fetch_backoff_ms.min(SOON_MS)
        } else {
            self.config.fetch_backoff_ms
        };
        let until = Instant::now() + Duration::from_millis(backoff);
        if let Some(target) = self.assigned.targets().get_mut(key) {
            target.delayed_until = Some(until);
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("leader {0} has no address on the inter-broker listener")]
    NoAddress(i32),
    #[error("the fetch from leader {leader} failed")]
    Exchange {
        leader: i32,
        #[source]
        source: runnel_client::error::ClientError,
    },
    #[error("leader {0} did not answer in time")]
    TimedOut(i32),
    #[error("leader {0} refused the fetch: {1:?}")]
    Refused(i32, ResponseError),
}

#[derive(Debug, thiserror::Error)]
enum TakeError {
    #[error("the leader answered {0:?}")]
    Refused(ResponseError),
    #[error(
        "the log still diverges from the leader's after a cut (epoch {epoch} ends at {end_offset} there)"
    )]
    StillDiverged { epoch: i32, end_offset: i64 },
    #[error("the log refused the leader's data")]
    Log(#[from] LogError),
}
