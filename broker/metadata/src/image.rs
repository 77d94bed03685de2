//! `MetadataImage`: everything the cluster knows at one offset of the
//! metadata log, immutable. The broker shares it as an `Arc` and swaps it
//! whole; a new image comes from [`MetadataDelta::apply`](crate::MetadataDelta::apply).
//! Topics, brokers and configs sit behind their own `Arc`, so a new image
//! copies pointers, not the topics a change left alone.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use crate::records::{BROKER_RESOURCE, BrokerEndpoint, BrokerFeature, TOPIC_RESOURCE};

/// The last record an image holds: its offset in the metadata log and the
/// leader epoch of the batch it came in. `offset` is -1 for the empty image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    pub offset: i64,
    pub epoch: i32,
}

impl Default for Provenance {
    fn default() -> Self {
        Self {
            offset: -1,
            epoch: -1,
        }
    }
}

/// A registered broker, as its latest RegisterBrokerRecord and the changes
/// since describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub id: i32,
    pub incarnation_id: Uuid,
    pub epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub supported_features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    pub is_migrating_zk_broker: bool,
    pub log_dirs: Vec<Uuid>,
}

/// One partition's replica state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    /// -1 when the partition has no leader.
    pub leader: i32,
    /// 0 recovered (or elected cleanly), 1 recovering from an unclean
    /// election.
    pub leader_recovery_state: i8,
    pub leader_epoch: i32,
    /// Bumped by every change to the partition.
    pub partition_epoch: i32,
    /// The log directory of each replica, in `replicas` order; empty when
    /// the records never named them.
    pub directories: Vec<Uuid>,
    /// KIP-966's eligible leader replicas and last known ELR.
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

impl PartitionImage {
    pub fn has_replica(&self, broker_id: i32) -> bool {
        self.replicas.contains(&broker_id)
    }
}

/// A topic and its partitions by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

/// What a configuration applies to: Kafka's `ConfigResource` (type id as in
/// ConfigRecord, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigResource {
    pub resource_type: i8,
    pub name: String,
}

impl ConfigResource {
    pub fn topic(name: &str) -> Self {
        Self {
            resource_type: TOPIC_RESOURCE,
            name: name.to_owned(),
        }
    }

    /// A broker's configuration; `None` is the cluster-wide default (the
    /// empty name).
    pub fn broker(id: Option<i32>) -> Self {
        Self {
            resource_type: BROKER_RESOURCE,
            name: id.map(|id| id.to_string()).unwrap_or_default(),
        }
    }
}

/// A resource's configuration: key -> value.
pub type Config = BTreeMap<String, String>;

/// The cluster's metadata at one point of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub(crate) provenance: Provenance,
    pub(crate) features: BTreeMap<String, i16>,
    pub(crate) brokers: BTreeMap<i32, Arc<BrokerRegistration>>,
    pub(crate) topics_by_id: BTreeMap<Uuid, Arc<TopicImage>>,
    pub(crate) topic_ids_by_name: BTreeMap<String, Uuid>,
    pub(crate) configs: BTreeMap<ConfigResource, Arc<Config>>,
    pub(crate) next_producer_id: i64,
}

impl MetadataImage {
    /// The image of an empty log.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn provenance(&self) -> Provenance {
        self.provenance
    }

    /// Offset of the last record applied, -1 for the empty image.
    pub fn offset(&self) -> i64 {
        self.provenance.offset
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
            && self.brokers.is_empty()
            && self.topics_by_id.is_empty()
            && self.configs.is_empty()
            && self.next_producer_id == 0
    }

    /// Finalized feature levels by name (`metadata.version`, ...).
    pub fn features(&self) -> &BTreeMap<String, i16> {
        &self.features
    }

    pub fn feature_level(&self, name: &str) -> Option<i16> {
        self.features.get(name).copied()
    }

    pub fn broker(&self, id: i32) -> Option<&Arc<BrokerRegistration>> {
        self.brokers.get(&id)
    }

    /// Whether broker `id` is registered, unfenced and not shutting down:
    /// one a partition may be led by.
    pub fn is_live_broker(&self, id: i32) -> bool {
        self.broker(id)
            .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown)
    }

    /// `host:port` of broker `id`'s `listener` (its first listener when it
    /// has none of that name), as other brokers reach it.
    pub fn broker_address(&self, id: i32, listener: &str) -> Option<String> {
        let broker = self.broker(id)?;
        let endpoint = broker
            .endpoints
            .iter()
            .find(|e| e.name == listener)
            .or(broker.endpoints.first())?;
        Some(format!("{}:{}", endpoint.host, endpoint.port))
    }

    pub fn brokers(&self) -> impl Iterator<Item = &Arc<BrokerRegistration>> {
        self.brokers.values()
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics_by_id.get(self.topic_ids_by_name.get(name)?)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.topics_by_id.get(id)
    }

    /// Topics in topic-id order.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics_by_id.values()
    }

    /// Topic names in name order.
    pub fn topic_names(&self) -> impl Iterator<Item = &str> {
        self.topic_ids_by_name.keys().map(String::as_str)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionImage> {
        self.topic(topic)?.partitions.get(&partition)
    }

    /// A resource's configuration keys that are set; `None` when none are.
    pub fn config(&self, resource: &ConfigResource) -> Option<&Arc<Config>> {
        self.configs.get(resource)
    }

    /// The keys set on a topic (its overrides of the broker defaults).
    pub fn topic_config(&self, topic: &str) -> Option<&Arc<Config>> {
        self.config(&ConfigResource::topic(topic))
    }

    pub fn configs(&self) -> impl Iterator<Item = (&ConfigResource, &Arc<Config>)> {
        self.configs.iter()
    }

    /// The first producer id of the next block to hand out (0 before any).
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }
}
