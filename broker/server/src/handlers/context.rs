//! What each family of handlers is given: the parts of the broker it uses,
//! never the whole. The data path (Produce, Fetch, ListOffsets) sees
//! partitions and metadata; the admin handlers topic changes; the group
//! handlers the group coordinator; the transaction handlers the
//! transaction coordinator and producer ids.

use crate::broker::Broker;
use crate::cluster_metadata::ClusterMetadata;
use crate::config::BrokerConfig;
use crate::group_coordinator::{Commit, GroupCoordinator, OffsetsError};
use crate::groups::Groups;
use crate::internal_topics::InternalTopics;
use crate::metrics::BrokerMetrics;
use crate::producer_ids::ProducerIds;
use crate::replica_manager::{Partition, ReplicaManager};
use crate::replication::IsrUpdates;
use crate::topic_admin::TopicAdmin;
use crate::txn_coordinator::TxnCoordinator;

/// Produce, Fetch and ListOffsets: the partitions, the metadata image and
/// the metrics.
#[derive(Debug, Clone, Copy)]
pub struct DataPath<'a> {
    pub replicas: &'a ReplicaManager,
    pub metadata: &'a ClusterMetadata,
    pub metrics: &'a BrokerMetrics,
    /// Where a leader's ISR changes go (a follower that caught up).
    pub isr_updates: &'a IsrUpdates,
    /// KIP-890: transactional batches checked with their coordinator.
    pub txn_verifier: &'a crate::txn_verification::TxnVerifier,
    /// The leader's reassignment throttle of followers catching up.
    pub leader_quota: &'a crate::replication::throttle::ReplicationQuota,
}

impl<'a> DataPath<'a> {
    /// The error for a partition this broker does not lead: another
    /// broker leads it, or none does now (NOT_LEADER_OR_FOLLOWER, so clients refresh their
    /// metadata), or it does not exist.
    pub fn not_hosted(&self, topic: &str, partition: i32) -> kafka_protocol::error::ResponseError {
        if self.metadata.image().partition(topic, partition).is_some() {
            kafka_protocol::error::ResponseError::NotLeaderOrFollower
        } else {
            kafka_protocol::error::ResponseError::UnknownTopicOrPartition
        }
    }

    /// Partition `partition` of `topic` when this broker hosts and leads
    /// it: what clients may produce to, fetch from and list offsets of.
    pub fn led(&self, topic: &str, partition: i32) -> Option<std::sync::Arc<Partition>> {
        self.replicas
            .get(topic, partition)
            .filter(|hosted| hosted.is_leader())
    }

    pub fn of(broker: &'a Broker) -> Self {
        Self {
            replicas: &broker.replicas,
            metadata: &broker.metadata,
            metrics: &broker.metrics,
            isr_updates: &broker.isr_updates,
            txn_verifier: &broker.txn_verifier,
            leader_quota: &broker.leader_quota,
        }
    }
}

/// Metadata, the topic and config handlers, DescribeCluster: the broker's
/// settings and topic changes.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    pub config: &'a BrokerConfig,
    pub topics: &'a TopicAdmin,
}

impl<'a> Admin<'a> {
    pub fn of(broker: &'a Broker) -> Self {
        Self {
            config: &broker.config,
            topics: &broker.topics,
        }
    }
}

/// FindCoordinator: the advertised address and the internal topics, made
/// when a coordinator is first looked up.
#[derive(Debug, Clone, Copy)]
pub struct Coordinators<'a> {
    pub config: &'a BrokerConfig,
    pub internal: &'a InternalTopics,
    /// Which broker leads each coordinator partition.
    pub metadata: &'a ClusterMetadata,
}

impl<'a> Coordinators<'a> {
    pub fn of(broker: &'a Broker) -> Self {
        Self {
            config: &broker.config,
            internal: &broker.internal,
            metadata: &broker.metadata,
        }
    }
}

/// The group handlers: membership, committed offsets, and the partitions
/// (a commit names partitions that must exist).
#[derive(Debug, Clone, Copy)]
pub struct GroupPath<'a> {
    pub groups: &'a Groups,
    pub group_coordinator: &'a GroupCoordinator,
    pub internal: &'a InternalTopics,
    /// Which partitions exist (on a cluster, most are on other brokers).
    pub metadata: &'a ClusterMetadata,
}

impl<'a> GroupPath<'a> {
    pub fn of(broker: &'a Broker) -> Self {
        Self {
            groups: &broker.groups,
            group_coordinator: &broker.group_coordinator,
            internal: &broker.internal,
            metadata: &broker.metadata,
        }
    }

    /// On a cluster, the error for a group this broker does not
    /// coordinate: COORDINATOR_LOAD_IN_PROGRESS while the group's
    /// `__consumer_offsets` partition is led here but not loaded yet,
    /// NOT_COORDINATOR when another broker leads it (clients find the
    /// coordinator again). None on one broker, which coordinates every
    /// group.
    pub fn not_coordinator(&self, group: &str) -> Option<kafka_protocol::error::ResponseError> {
        use kafka_protocol::error::ResponseError;
        self.metadata.quorum()?;
        if self.group_coordinator.coordinates(group) {
            return None;
        }
        let partition = self.group_coordinator.partition_of(group);
        let leader = self
            .metadata
            .image()
            .partition(crate::group_coordinator::OFFSETS_TOPIC, partition)
            .map(|p| p.leader);
        Some(if leader == Some(self.metadata.node_id()) {
            ResponseError::CoordinatorLoadInProgress
        } else {
            ResponseError::NotCoordinator
        })
    }

    /// Whether partition `partition` of `topic` exists on the cluster.
    pub fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.metadata.image().partition(topic, partition).is_some()
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

    /// Writes the group records queued so far, creating
    /// `__consumer_offsets` first when there are any and it is missing.
    pub fn flush_group_stores(&self, now_ms: i64) -> Result<usize, OffsetsError> {
        self.group_coordinator
            .flush_group_stores(now_ms, || self.ensure_offsets_topic(now_ms))
    }

    fn ensure_offsets_topic(&self, now_ms: i64) -> Result<(), OffsetsError> {
        self.internal
            .ensure_offsets(now_ms)
            .map_err(|err| OffsetsError::Create(Box::new(err)))
    }
}

/// The transaction handlers and TxnOffsetCommit: the transaction
/// coordinator, producer ids, the group coordinator (offsets in a
/// transaction settle when it ends) and the partitions a transaction adds.
#[derive(Debug, Clone, Copy)]
pub struct TxnPath<'a> {
    pub txn_coordinator: &'a TxnCoordinator,
    pub group_coordinator: &'a GroupCoordinator,
    pub producer_ids: &'a ProducerIds,
    pub internal: &'a InternalTopics,
    pub metadata: &'a ClusterMetadata,
    /// TxnOffsetCommit v3+ checks the member's generation.
    pub groups: &'a Groups,
}

impl<'a> TxnPath<'a> {
    pub fn of(broker: &'a Broker) -> Self {
        Self {
            txn_coordinator: &broker.txn_coordinator,
            group_coordinator: &broker.group_coordinator,
            producer_ids: &broker.producer_ids,
            internal: &broker.internal,
            metadata: &broker.metadata,
            groups: &broker.groups,
        }
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
        self.internal
            .ensure_offsets(now_ms)
            .map_err(|err| OffsetsError::Create(Box::new(err)))?;
        self.group_coordinator.commit_txn_offsets(
            producer_id,
            producer_epoch,
            group,
            commits,
            now_ms,
        )
    }
}
