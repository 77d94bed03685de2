//! The consumer, for partitions it is given (`assign`, the "queue" way):
//! each partition starts at the group's committed offset when `group.id` is
//! set and one exists, else where `auto.offset.reset` says; `poll` fetches
//! from each partition's leader and returns records in offset order per
//! partition, key and value sharing the fetched buffer (no copy per
//! record of uncompressed data); `commit` stores the positions for the group.
//!
//! `subscribe` joins `group.id` with Kafka's classic group protocol: the
//! range, roundrobin and sticky assignors rebalance eagerly (every member
//! gives up everything, then takes its new share), `cooperative-sticky`
//! incrementally (KIP-429: only partitions that move are given up, and the
//! rest are read on through the rebalance). Heartbeats,
//! `max.poll.interval.ms`, auto commit and rebalance callbacks as Java's.

mod aborted;
mod assignor;
pub(crate) use assignor::decode_assignment;
mod config;
mod membership;
mod rebalance;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestTopic};
use kafka_protocol::messages::{BrokerId, GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;
use runnel_protocol::batch::Batches;
use runnel_protocol::control::ControlType;
use runnel_protocol::records::BatchRecords;

pub use config::{ConsumerConfig, IsolationLevel, OffsetReset};
pub use rebalance::RebalanceListener;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{ClientError, Result, error_chain};

const FETCH_VERSION: i16 = 12;
const OFFSET_FETCH_VERSION: i16 = 7;
const OFFSET_COMMIT_VERSION: i16 = 8;
/// How long a missing group coordinator is waited for.
const COORDINATOR_PATIENCE: Duration = Duration::from_secs(30);
const COORDINATOR_BACKOFF: Duration = Duration::from_millis(100);

/// FindCoordinator's answers that mean "not yet".
fn coordinator_moving(err: &ClientError) -> bool {
    let Some(code) = err.kafka_code() else {
        return false;
    };
    [
        ResponseError::CoordinatorNotAvailable,
        ResponseError::CoordinatorLoadInProgress,
        ResponseError::NotCoordinator,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// Pause before asking again for an offset an open transaction commits.
const UNSTABLE_OFFSET_BACKOFF: Duration = Duration::from_millis(50);
const EARLIEST: i64 = -2;
const LATEST: i64 = -1;

/// One record as the consumer returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Milliseconds since the epoch (CreateTime or LogAppendTime).
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    /// The record's headers as encoded (a slice of the fetched buffer, not
    /// a copy); [`ConsumerRecord::headers`] reads them.
    pub headers_data: Bytes,
    pub headers_count: i32,
}

impl ConsumerRecord {
    /// Each header as (key, value), in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        runnel_protocol::records::header_pairs(&self.headers_data, self.headers_count)
    }
}

/// What a transactional producer sends with a member's offsets
/// (`send_offsets_to_transaction_with`, KIP-447): the group coordinator
/// refuses them when the member's generation is over, so a member that
/// lost its partitions cannot commit what their new owner also reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    pub group_id: String,
    /// -1 when the consumer is not a member of a generation.
    pub generation_id: i32,
    pub member_id: String,
}

/// A Kafka consumer of assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    /// Next offset to read of each assigned partition; `None` until known.
    positions: BTreeMap<(Arc<str>, i32), Option<i64>>,
    /// Assigned partitions `poll` skips until resumed.
    paused: std::collections::BTreeSet<(Arc<str>, i32)>,
    /// Topics of `subscribe`: the group assigns the partitions.
    subscription: Option<Vec<String>>,
    membership: Option<membership::Membership>,
    /// Kept across rejoins, as Kafka's consumers do.
    member_id: String,
    /// The generation this member's partitions were assigned in (-1 when
    /// it has none), sent with them when it joins again.
    generation: i32,
    listener: rebalance::Listener,
    last_auto_commit: std::time::Instant,
}

impl Consumer {
    pub async fn new(config: ConsumerConfig) -> Result<Self> {
        let cluster = Cluster::connect(&config.bootstrap_servers, &config.client_id).await?;
        Ok(Self {
            cluster,
            config,
            positions: BTreeMap::new(),
            paused: Default::default(),
            subscription: None,
            membership: None,
            member_id: String::new(),
            generation: -1,
            listener: Default::default(),
            last_auto_commit: std::time::Instant::now(),
        })
    }

    /// Reads exactly these partitions from now on (replacing the previous
    /// assignment); their positions are found at the next `poll`.
    pub async fn assign(&mut self, partitions: &[(&str, i32)]) -> Result<()> {
        let mut positions = BTreeMap::new();
        for &(topic, partition) in partitions {
            let info = self.cluster.topic_or_fetch(topic, false).await?;
            if !(0..info.partitions()).contains(&partition) {
                return Err(ClientError::UnknownPartition {
                    topic: topic.to_string(),
                    partition,
                    partitions: info.partitions(),
                });
            }
            let key = (Arc::<str>::from(topic), partition);
            let kept = self.positions.get(&key).copied().flatten();
            positions.insert(key, kept);
        }
        self.paused.retain(|key| positions.contains_key(key));
        self.positions = positions;
        Ok(())
    }

    /// `poll` skips these partitions (keeping their positions) until
    /// [`resume`](Self::resume).
    pub fn pause(&mut self, partitions: &[(&str, i32)]) {
        for &(topic, partition) in partitions {
            if let Some((key, _)) = self
                .positions
                .iter()
                .find(|((t, p), _)| &**t == topic && *p == partition)
            {
                self.paused.insert(key.clone());
            }
        }
    }

    pub fn resume(&mut self, partitions: &[(&str, i32)]) {
        self.paused.retain(|(t, p)| {
            !partitions
                .iter()
                .any(|&(topic, partition)| &**t == topic && *p == partition)
        });
    }

    /// For each partition, the first offset whose timestamp is at or after
    /// `timestamp_ms` (`None` when there is none), as Kafka's
    /// `offsetsForTimes`.
    pub async fn offsets_for_times(
        &self,
        partitions: &[(&str, i32)],
        timestamp_ms: i64,
    ) -> Result<Vec<Option<i64>>> {
        let mut offsets = Vec::with_capacity(partitions.len());
        for &(topic, partition) in partitions {
            let offset = self.list_offset(topic, partition, timestamp_ms).await?;
            offsets.push((offset >= 0).then_some(offset));
        }
        Ok(offsets)
    }

    /// Every partition of `topic`, as its metadata says now.
    pub async fn partitions_of(&self, topic: &str) -> Result<Vec<i32>> {
        let info = self.cluster.topic_or_fetch(topic, false).await?;
        Ok((0..info.partitions()).collect())
    }

    /// The next `poll` reads `partition` from `offset`.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(position) = self
            .positions
            .iter_mut()
            .find(|((t, p), _)| &**t == topic && *p == partition)
            .map(|(_, position)| position)
        {
            *position = Some(offset);
        }
    }

    /// The next offset `poll` reads from `partition`, once known.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.positions
            .iter()
            .find(|((t, p), _)| &**t == topic && *p == partition)
            .and_then(|(_, position)| *position)
    }

    /// Joins `group.id` subscribed to `topics`; the group's assignor gives
    /// this member its partitions at the next `poll` (and at each
    /// rebalance).
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        self.group()?;
        self.subscription = Some(topics.iter().map(|t| t.to_string()).collect());
        if let Some(membership) = &self.membership {
            membership
                .rejoin
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(())
    }

    /// [`subscribe`](Self::subscribe), telling `listener` of each
    /// rebalance.
    pub fn subscribe_with(
        &mut self,
        topics: &[&str],
        listener: Box<dyn RebalanceListener>,
    ) -> Result<()> {
        self.subscribe(topics)?;
        self.listener = rebalance::Listener::new(listener);
        Ok(())
    }

    /// The group, generation and member id the consumer holds now (Java's
    /// `groupMetadata()`); `group.id` must be set.
    pub fn group_metadata(&self) -> Result<ConsumerGroupMetadata> {
        let group_id = self.group()?.to_string();
        Ok(match &self.membership {
            Some(m) => ConsumerGroupMetadata {
                group_id,
                generation_id: m.generation,
                member_id: m.member_id.clone(),
            },
            None => ConsumerGroupMetadata {
                group_id,
                generation_id: -1,
                member_id: String::new(),
            },
        })
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.positions
            .keys()
            .map(|(t, p)| (t.to_string(), *p))
            .collect()
    }

    /// Fetches what is there (waiting up to `fetch.max.wait.ms` on each
    /// leader for `fetch.min.bytes`, and up to `timeout` in all). A
    /// subscribed consumer first joins its group or rejoins when asked;
    /// with `enable.auto.commit` the positions are committed every
    /// `auto.commit.interval.ms`.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if let Some(membership) = &self.membership {
            membership.polled();
        }
        self.maybe_auto_commit().await;
        if self.subscription.is_some() {
            let must_join = self
                .membership
                .as_ref()
                .is_none_or(|m| m.rejoin.load(std::sync::atomic::Ordering::Acquire));
            if must_join {
                self.rejoin().await?;
            }
        }
        match tokio::time::timeout(timeout, self.fetch_once()).await {
            Ok(result) => result,
            Err(_) => Ok(Vec::new()),
        }
    }

    async fn maybe_auto_commit(&mut self) {
        if !self.config.enable_auto_commit || self.config.group_id.is_none() {
            return;
        }
        if self.last_auto_commit.elapsed() < self.config.auto_commit_interval {
            return;
        }
        self.last_auto_commit = std::time::Instant::now();
        // Asynchronous, as Java's auto commit: poll does not wait for the
        // answer.
        match self.commit_async().await {
            Ok(answer) => {
                tokio::spawn(async move {
                    if let Err(err) = answer.await {
                        tracing::warn!(error = %error_chain(&err), "auto commit failed");
                    }
                });
            }
            Err(err) => tracing::warn!(error = %error_chain(&err), "auto commit failed"),
        }
    }

    /// Joins the group again and takes the partitions it assigns. Unless
    /// the member lost them, what it read is committed first (auto
    /// commit). Eager: every partition is revoked before the join and new
    /// ones start at their committed offsets. Cooperative: partitions kept
    /// go on from their positions, and when some had to be given up the
    /// member joins once more so the group can hand them over.
    async fn rejoin(&mut self) -> Result<()> {
        let group = self.group()?.to_string();
        let lost = self
            .membership
            .as_ref()
            .is_some_and(|m| m.lost.load(std::sync::atomic::Ordering::Acquire));
        if self.membership.is_some()
            && !lost
            && self.config.enable_auto_commit
            && let Err(err) = self.commit().await
        {
            tracing::debug!(error = %error_chain(&err), "commit before rejoining failed");
        }
        self.membership = None;
        let cooperative = self.config.cooperative();
        if lost {
            self.listener.lost(&self.assignment());
            self.positions.clear();
            self.generation = -1;
        } else if !cooperative {
            self.listener.revoked(&self.assignment());
        }
        let topics = self.subscription.clone().unwrap_or_default();
        let owned = self.assignment();
        // A coordinator that moves or still loads the group answers the
        // join with NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS: find
        // it again and join there.
        let deadline = tokio::time::Instant::now() + COORDINATOR_PATIENCE;
        let (membership, partitions) = loop {
            let coordinator = self.coordinator(&group).await?;
            let joined = membership::join(
                &self.cluster,
                &self.config,
                coordinator,
                membership::Joining {
                    group: &group,
                    topics: &topics,
                    owned: &owned,
                    generation: self.generation,
                },
                &mut self.member_id,
            )
            .await;
            match joined {
                Err(err) if coordinator_moving(&err) && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(group, error = %error_chain(&err), "joining again at the coordinator");
                    tokio::time::sleep(COORDINATOR_BACKOFF).await;
                }
                joined => break joined?,
            }
        };
        membership.polled();
        self.generation = membership.generation;
        let previous = std::mem::take(&mut self.positions);
        self.positions = partitions
            .iter()
            .map(|(t, p)| {
                let key = (Arc::<str>::from(t.as_str()), *p);
                let kept = if cooperative {
                    previous.get(&key).copied().flatten()
                } else {
                    None
                };
                (key, kept)
            })
            .collect();
        self.paused.retain(|key| self.positions.contains_key(key));
        if cooperative {
            let revoked: Vec<(String, i32)> = owned
                .iter()
                .filter(|tp| !partitions.contains(tp))
                .cloned()
                .collect();
            let added: Vec<(String, i32)> = partitions
                .iter()
                .filter(|tp| !owned.contains(tp))
                .cloned()
                .collect();
            self.listener.revoked(&revoked);
            self.listener.assigned(&added);
            if !revoked.is_empty() {
                membership
                    .rejoin
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        } else {
            self.listener.assigned(&partitions);
        }
        self.membership = Some(membership);
        Ok(())
    }

    /// Commits (with `enable.auto.commit`) and leaves the group.
    pub async fn close(mut self) {
        if self.config.enable_auto_commit && self.config.group_id.is_some() {
            let _ = self.commit().await;
        }
        if let (Some(membership), Some(group)) = (self.membership.take(), &self.config.group_id) {
            self.listener.revoked(&self.assignment());
            membership.leave(group).await;
        }
    }

    async fn fetch_once(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.resolve_positions().await?;
        let mut by_leader: BTreeMap<i32, Vec<(Arc<str>, i32, i64)>> = BTreeMap::new();
        for ((topic, partition), position) in &self.positions {
            let Some(offset) = *position else { continue };
            if self.paused.contains(&(Arc::clone(topic), *partition)) {
                continue;
            }
            let info = self.cluster.topic_or_fetch(topic, false).await?;
            let leader = info.leaders.get(*partition as usize).copied().unwrap_or(-1);
            by_leader
                .entry(leader)
                .or_default()
                .push((Arc::clone(topic), *partition, offset));
        }
        if by_leader.is_empty() {
            // Nothing to read (no partitions, or all paused): wait out the
            // poll's timeout, or until the group needs this member.
            match &self.membership {
                Some(membership) => membership.wake.notified().await,
                None => std::future::pending().await,
            }
            return Ok(Vec::new());
        }
        // One Fetch to each leader, all in flight at once: a poll waits for
        // the slowest leader rather than for the sum of them.
        let mut in_flight = Vec::with_capacity(by_leader.len());
        for (leader, partitions) in by_leader {
            if leader < 0 {
                for (topic, _, _) in &partitions {
                    self.cluster.invalidate(topic);
                }
                continue;
            }
            let connection = self.cluster.connection(leader).await?;
            let request = self.fetch_request(&partitions);
            in_flight.push((connection.send(FETCH_VERSION, &request).await?, partitions));
        }
        let mut records = Vec::new();
        for (pending, partitions) in in_flight {
            let response = pending.response().await?;
            self.take_fetched(response, &partitions, &mut records)?;
        }
        Ok(records)
    }

    /// The Fetch for these partitions of one leader.
    fn fetch_request(&self, partitions: &[(Arc<str>, i32, i64)]) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for (topic, partition, offset) in partitions {
            let fetch = FetchPartition::default()
                .with_partition(*partition)
                .with_fetch_offset(*offset)
                .with_partition_max_bytes(self.config.max_partition_fetch_bytes);
            match topics.iter_mut().find(|t| t.topic.0.as_str() == &**topic) {
                Some(t) => t.partitions.push(fetch),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(vec![fetch]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.config.fetch_max_wait.as_millis() as i32)
            .with_min_bytes(self.config.fetch_min_bytes)
            .with_max_bytes(self.config.fetch_max_bytes)
            .with_isolation_level(self.config.isolation_level.wire())
            .with_session_epoch(-1)
            .with_topics(topics)
    }

    /// A leader's Fetch answer: records appended to `out`, positions
    /// advanced.
    fn take_fetched(
        &mut self,
        response: kafka_protocol::messages::FetchResponse,
        partitions: &[(Arc<str>, i32, i64)],
        out: &mut Vec<ConsumerRecord>,
    ) -> Result<()> {
        for topic_response in response.responses {
            let name = topic_response.topic.0.to_string();
            let Some((topic, _, _)) = partitions.iter().find(|(t, _, _)| **t == *name) else {
                continue;
            };
            for p in topic_response.partitions {
                let key = (Arc::clone(topic), p.partition_index);
                let Some(Some(position)) = self.positions.get(&key).copied() else {
                    continue;
                };
                match ResponseError::try_from_code(p.error_code) {
                    None => {}
                    Some(ResponseError::OffsetOutOfRange) => {
                        // Start again where auto.offset.reset says.
                        self.positions.insert(key, None);
                        continue;
                    }
                    Some(error) => {
                        self.cluster.invalidate(topic);
                        tracing::debug!(
                            topic = &**topic,
                            partition = p.partition_index,
                            %error,
                            "fetch error"
                        );
                        continue;
                    }
                }
                let Some(bytes) = p.records else { continue };
                let mut aborted = match self.config.isolation_level {
                    IsolationLevel::ReadCommitted => Some(aborted::AbortedFilter::new(
                        p.aborted_transactions.as_deref().unwrap_or_default(),
                    )),
                    IsolationLevel::ReadUncommitted => None,
                };
                let next = read_records(
                    topic,
                    p.partition_index,
                    &bytes,
                    position,
                    aborted.as_mut(),
                    out,
                )?;
                self.positions.insert(key, Some(next));
            }
        }
        Ok(())
    }

    /// Finds the start of partitions with no position: the committed offset,
    /// else `auto.offset.reset`.
    async fn resolve_positions(&mut self) -> Result<()> {
        let unknown: Vec<(Arc<str>, i32)> = self
            .positions
            .iter()
            .filter(|(_, position)| position.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        for (topic, partition) in unknown {
            let committed = match &self.config.group_id {
                Some(_) => self.committed(&topic, partition).await?,
                None => None,
            };
            let start = match (committed, self.config.auto_offset_reset) {
                (Some(offset), _) => offset,
                (None, OffsetReset::Earliest) => {
                    self.list_offset(&topic, partition, EARLIEST).await?
                }
                (None, OffsetReset::Latest) => self.list_offset(&topic, partition, LATEST).await?,
                (None, OffsetReset::None) => {
                    return Err(ClientError::NoOffset {
                        topic: topic.to_string(),
                        partition,
                    });
                }
            };
            self.positions.insert((topic, partition), Some(start));
        }
        Ok(())
    }

    /// The offset ListOffsets gives for `timestamp` (-2 earliest, -1 latest).
    async fn list_offset(&self, topic: &str, partition: i32, timestamp: i64) -> Result<i64> {
        self.cluster
            .list_offset(
                topic,
                partition,
                timestamp,
                self.config.isolation_level.wire(),
            )
            .await
    }

    /// The connection to the group's coordinator.
    /// While the brokers answer that the coordinator is not there yet
    /// (Kafka creates `__consumer_offsets` on the first FindCoordinator, a
    /// coordinator loads or moves), it is asked again for up to
    /// [`COORDINATOR_PATIENCE`], as Java's consumer does.
    async fn coordinator(&self, group: &str) -> Result<Connection> {
        let deadline = tokio::time::Instant::now() + COORDINATOR_PATIENCE;
        loop {
            match self.cluster.coordinator(group, 0).await {
                Err(err) if coordinator_moving(&err) && tokio::time::Instant::now() < deadline => {
                    tracing::debug!(group, error = %error_chain(&err), "no coordinator yet");
                    tokio::time::sleep(COORDINATOR_BACKOFF).await;
                }
                answer => return answer,
            }
        }
    }

    /// The group's committed offset of a partition (`group.id` must be set).
    /// A `read_committed` consumer asks for a stable offset (KIP-447) and
    /// waits while a transaction that commits offsets of the partition is
    /// still open, as Java's does: the offset it would start at otherwise
    /// may be one that transaction is about to move past (the caller's
    /// poll timeout bounds the wait).
    pub async fn committed(&self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let group = self.group()?;
        let require_stable = self.config.isolation_level == IsolationLevel::ReadCommitted;
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_require_stable(require_stable)
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_indexes(vec![partition]),
            ]));
        loop {
            let connection = self.coordinator(group).await?;
            match Self::fetch_committed(&connection, &request, topic, partition).await {
                Err(ClientError::Kafka { code, .. })
                    if require_stable && code == ResponseError::UnstableOffsetCommit.code() =>
                {
                    tokio::time::sleep(UNSTABLE_OFFSET_BACKOFF).await;
                }
                answer => return answer,
            }
        }
    }

    async fn fetch_committed(
        connection: &Connection,
        request: &OffsetFetchRequest,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>> {
        let response = connection.call(OFFSET_FETCH_VERSION, request).await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                "OffsetFetch",
                topic,
                partition,
                response.error_code,
            ));
        }
        let answer = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition);
        match answer {
            Some(p) if p.error_code != 0 => Err(ClientError::kafka(
                "OffsetFetch",
                topic,
                partition,
                p.error_code,
            )),
            Some(p) if p.committed_offset >= 0 => Ok(Some(p.committed_offset)),
            _ => Ok(None),
        }
    }

    /// Commits the current positions for the group: in the member's
    /// generation when subscribed, else outside any (Kafka's "simple"
    /// commit of an `assign` consumer).
    pub async fn commit(&self) -> Result<()> {
        self.commit_async().await?.await
    }

    /// Sends the commit of the current positions and returns once it is
    /// on its way; the future it gives resolves to the coordinator's
    /// answer and may be awaited later or dropped (Java's `commitAsync`).
    /// Commits are answered in the order they were sent, so an older one
    /// never lands after a newer one.
    pub async fn commit_async(
        &self,
    ) -> Result<impl std::future::Future<Output = Result<()>> + Send + 'static> {
        let group = self.group()?;
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for ((topic, partition), position) in &self.positions {
            let Some(offset) = *position else { continue };
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(offset);
            match topics.iter_mut().find(|t| t.name.0.as_str() == &**topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let pending = if topics.is_empty() {
            None
        } else {
            let (connection, generation, member_id) = match &self.membership {
                Some(m) => (m.coordinator.clone(), m.generation, m.member_id.clone()),
                None => (self.coordinator(group).await?, -1, String::new()),
            };
            let request = OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(StrBytes::from_string(member_id))
                .with_topics(topics);
            Some(connection.send(OFFSET_COMMIT_VERSION, &request).await?)
        };
        Ok(async move {
            let Some(pending) = pending else {
                return Ok(());
            };
            let response = pending.response().await?;
            for t in &response.topics {
                if let Some(p) = t.partitions.iter().find(|p| p.error_code != 0) {
                    return Err(ClientError::kafka(
                        "OffsetCommit",
                        t.name.0.as_str(),
                        p.partition_index,
                        p.error_code,
                    ));
                }
            }
            Ok(())
        })
    }

    fn group(&self) -> Result<&str> {
        self.config.group_id.as_deref().ok_or(ClientError::Config {
            key: "group.id".into(),
            value: String::new(),
            reason: "committed offsets need a group".into(),
        })
    }
}

/// Appends the records at or after `position` from a fetched records
/// section, leaving out what `aborted` filters (read_committed); returns
/// the next position. Stops at a partial last batch.
fn read_records(
    topic: &Arc<str>,
    partition: i32,
    bytes: &Bytes,
    position: i64,
    mut aborted: Option<&mut aborted::AbortedFilter>,
    out: &mut Vec<ConsumerRecord>,
) -> Result<i64> {
    let corrupt = |err: runnel_protocol::records::RecordsError| ClientError::Corrupt {
        topic: topic.to_string(),
        partition,
        reason: err.to_string(),
    };
    let mut next = position;
    for batch in Batches::new(bytes) {
        // A fetch may end inside a batch: the next fetch starts there.
        let Ok((header, batch)) = batch else { break };
        if header.next_offset() <= position {
            continue;
        }
        next = header.next_offset();
        // A slice of the fetched buffer: records are not copied.
        let shared = bytes.slice_ref(batch);
        if let Some(filter) = aborted.as_deref_mut() {
            let marker = if header.is_control() {
                let records = BatchRecords::decode_shared(shared.clone()).map_err(corrupt)?;
                records
                    .records
                    .first()
                    .and_then(|r| r.key.clone())
                    .and_then(|k| ControlType::parse(&records.data[k]))
            } else {
                None
            };
            if filter.skips(&header, marker) {
                continue;
            }
        } else if header.is_control() {
            continue;
        }
        let records = BatchRecords::decode_shared(shared).map_err(corrupt)?;
        for record in &records.records {
            let offset = records.offset(record);
            if offset < position {
                continue;
            }
            out.push(ConsumerRecord {
                topic: Arc::clone(topic),
                partition,
                offset,
                timestamp: records.timestamp(record),
                key: record.key.clone().map(|r| records.data.slice(r)),
                value: record.value.clone().map(|r| records.data.slice(r)),
                headers_data: records.data.slice(record.headers.clone()),
                headers_count: record.headers_count,
            });
        }
    }
    Ok(next)
}
