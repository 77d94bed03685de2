//! The leader's side of the ISR, as Kafka's `AlterPartitionManager`: ISR
//! changes its partitions propose (a follower caught up, or lagged past
//! `replica.lag.time.max.ms`) go to the controller as AlterPartition (v3,
//! each member with its broker epoch), all pending ones in one request.
//! The controller's answer is taken at once (the metadata brings the same
//! change a moment later), as Kafka's `Partition` takes it:
//!
//! - a refusal clears the change in flight, if it is still that one (an
//!   answer to an older proposal never clears a newer one), so the next
//!   fetch or check proposes again; INVALID_UPDATE_VERSION and
//!   FENCED_LEADER_EPOCH keep it in flight until the metadata settles it;
//! - a failed exchange (or a request-wide error) is sent again after a
//!   backoff while the change is still in flight: the controller may
//!   have committed it, and until the leader knows, its high watermark
//!   must count the follower being added.
//!
//! [`check_lagging_followers`] runs the shrink check over the partitions
//! this broker leads, twice per `replica.lag.time.max.ms` as Kafka does.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::alter_partition_request::{
    AlterPartitionRequest, BrokerState, PartitionData, TopicData,
};
use runnel_http::error_chain;
use runnel_quorum::ControllerClient;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::cluster_metadata::ClusterMetadata;
use crate::replica_manager::{IsrChange, Partition, ReplicaManager};

const ALTER_PARTITION_VERSION: i16 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait before a failed exchange is sent again.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// One partition's proposed change, with the leader epoch it was made in.
#[derive(Debug)]
struct Proposal {
    partition: Arc<Partition>,
    change: IsrChange,
    leader_epoch: i32,
}

/// Where proposals are queued for the sender; held by the data path.
#[derive(Debug)]
pub struct IsrUpdates {
    queue: mpsc::UnboundedSender<Proposal>,
    /// Taken once by [`IsrUpdates::run`] (only a broker on a cluster has
    /// followers, so only it sends).
    pending: Mutex<Option<mpsc::UnboundedReceiver<Proposal>>>,
    /// ISR shrinks and expansions committed, for metrics.
    shrinks: AtomicU64,
    expands: AtomicU64,
}

impl Default for IsrUpdates {
    fn default() -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        Self {
            queue,
            pending: Mutex::new(Some(pending)),
            shrinks: AtomicU64::new(0),
            expands: AtomicU64::new(0),
        }
    }
}

impl IsrUpdates {
    /// The ISR shrinks and expansions committed so far.
    pub fn changes(&self) -> (u64, u64) {
        (
            self.shrinks.load(Ordering::Relaxed),
            self.expands.load(Ordering::Relaxed),
        )
    }

    /// Queues `change` of `partition`, proposed in `leader_epoch`.
    pub fn propose(&self, partition: &Arc<Partition>, change: IsrChange, leader_epoch: i32) {
        tracing::debug!(
            topic = partition.topic(),
            partition = partition.index(),
            isr = ?change.isr,
            leader_epoch,
            "asking the controller to change the ISR"
        );
        let proposal = Proposal {
            partition: Arc::clone(partition),
            change,
            leader_epoch,
        };
        if let Err(refused) = self.queue.send(proposal) {
            // No sender runs: the change is not in flight after all.
            let proposal = refused.0;
            proposal.partition.isr_change_refused(&proposal.change);
        }
    }

    /// Sends the queued changes to the controller behind `client` until
    /// the task is dropped. Does nothing when called a second time.
    pub async fn run(&self, metadata: Arc<ClusterMetadata>, client: Arc<ControllerClient>) {
        let taken = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(mut pending) = taken else {
            return;
        };
        let mut retry: Vec<Proposal> = Vec::new();
        loop {
            let mut batch = std::mem::take(&mut retry);
            if batch.is_empty() {
                let Some(first) = pending.recv().await else {
                    return;
                };
                batch.push(first);
            } else {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            while let Ok(more) = pending.try_recv() {
                batch.push(more);
            }
            // Sent again only while still in flight (leadership or the
            // metadata may have settled it meanwhile).
            batch.retain(|p| p.partition.isr_change_pending(&p.change));
            retry = send(self, &metadata, &client, batch).await;
        }
    }
}

/// Sends one AlterPartition for `batch` and takes its answer; the
/// proposals to send again (the exchange failed, or was not answered for
/// them).
async fn send(
    updates: &IsrUpdates,
    metadata: &ClusterMetadata,
    client: &ControllerClient,
    batch: Vec<Proposal>,
) -> Vec<Proposal> {
    let image = metadata.image();
    let node_id = metadata.node_id();
    let broker_epoch = |id: i32| image.broker(id).map_or(-1, |b| b.epoch);
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    let mut sent: BTreeMap<(Uuid, i32), Proposal> = BTreeMap::new();
    for proposal in batch {
        let Some(topic) = image.topic(proposal.partition.topic()) else {
            proposal.partition.isr_change_refused(&proposal.change);
            continue;
        };
        let index = proposal.partition.index();
        let data = PartitionData::default()
            .with_partition_index(index)
            .with_leader_epoch(proposal.leader_epoch)
            .with_partition_epoch(proposal.change.partition_epoch)
            .with_new_isr_with_epochs(
                proposal
                    .change
                    .isr
                    .iter()
                    .map(|id| {
                        BrokerState::default()
                            .with_broker_id(BrokerId(*id))
                            .with_broker_epoch(broker_epoch(*id))
                    })
                    .collect(),
            );
        topics.entry(topic.id).or_default().push(data);
        // A later proposal for the same partition replaces an earlier
        // one (which is no longer in flight: nothing to clear).
        sent.insert((topic.id, index), proposal);
    }
    if sent.is_empty() {
        return Vec::new();
    }
    let request = AlterPartitionRequest::default()
        .with_broker_id(BrokerId(node_id))
        .with_broker_epoch(broker_epoch(node_id))
        .with_topics(
            topics
                .into_iter()
                .map(|(id, partitions)| {
                    TopicData::default()
                        .with_topic_id(id)
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = match client
        .send(request, ALTER_PARTITION_VERSION, REQUEST_TIMEOUT)
        .await
    {
        Ok(response) => response,
        Err(err) => {
            tracing::warn!(error = %error_chain(&err), "cannot send an ISR change to the controller; trying again");
            return sent.into_values().collect();
        }
    };
    if let Some(error) = ResponseError::try_from_code(response.error_code) {
        tracing::warn!(
            ?error,
            "the controller refused the ISR changes; trying again"
        );
        return sent.into_values().collect();
    }
    let now_ms = crate::clock::now_ms();
    for topic in response.topics {
        for answered in topic.partitions {
            let Some(proposal) = sent.remove(&(topic.topic_id, answered.partition_index)) else {
                continue;
            };
            let partition = &proposal.partition;
            match ResponseError::try_from_code(answered.error_code) {
                None => {
                    let isr: Vec<i32> = answered.isr.iter().map(|b| b.0).collect();
                    let replicas = metadata
                        .image()
                        .partition(partition.topic(), partition.index())
                        .map(|p| p.replicas.clone())
                        .unwrap_or_else(|| isr.clone());
                    tracing::info!(
                        topic = partition.topic(),
                        partition = partition.index(),
                        ?isr,
                        partition_epoch = answered.partition_epoch,
                        "the controller changed the ISR"
                    );
                    let before = partition.in_sync_replicas();
                    let counter = if isr.len() < before {
                        &updates.shrinks
                    } else {
                        &updates.expands
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    partition.isr_committed(&replicas, &isr, answered.partition_epoch, now_ms);
                }
                // This leader's view is stale: the metadata on its way
                // settles the change (it may be committed already).
                Some(
                    error
                    @ (ResponseError::InvalidUpdateVersion | ResponseError::FencedLeaderEpoch),
                ) => {
                    tracing::debug!(
                        topic = partition.topic(),
                        partition = partition.index(),
                        ?error,
                        "an ISR change waits for the metadata"
                    );
                }
                Some(error) => {
                    tracing::debug!(
                        topic = partition.topic(),
                        partition = partition.index(),
                        ?error,
                        "the controller refused an ISR change; asked again at the next fetch or check"
                    );
                    partition.isr_change_refused(&proposal.change);
                }
            }
        }
    }
    // Not answered: sent again.
    sent.into_values().collect()
}

/// Proposes dropping the followers that lagged past `max_lag_ms` from the
/// ISR of every partition this broker leads, every `max_lag_ms / 2`.
pub async fn check_lagging_followers(
    replicas: Arc<ReplicaManager>,
    updates: Arc<IsrUpdates>,
    max_lag_ms: i64,
) {
    let every = Duration::from_millis(u64::try_from(max_lag_ms / 2).unwrap_or(1).max(1));
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now_ms = crate::clock::now_ms();
        for partition in replicas.all_partitions() {
            if !partition.is_leader() {
                continue;
            }
            let epoch = partition.leader_epoch();
            if let Some(change) = partition.shrink_if_lagging(now_ms, max_lag_ms) {
                updates.propose(&partition, change, epoch);
            }
        }
    }
}
