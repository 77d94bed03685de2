//! `MetadataDelta`: the changes records make to an image, as Kafka's
//! `image.MetadataDelta` keeps them. Start from an image, [`replay`] each
//! record of the log in order (a record the image contradicts is a
//! [`ReplayError`] and changes nothing), then [`apply`] for the new image
//! and [`local_changes`](MetadataDelta::local_changes) for what this broker
//! must do about it.
//!
//! [`replay`]: MetadataDelta::replay
//! [`apply`]: MetadataDelta::apply

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use thiserror::Error;
use uuid::Uuid;

use crate::image::{
    BrokerRegistration, ConfigResource, MetadataImage, PartitionImage, Provenance, TopicImage,
};
use crate::records::{
    BrokerRegistrationChangeRecord, ConfigRecord, MetadataRecord, NO_LEADER_CHANGE,
    NO_LEADER_RECOVERY_CHANGE, PartitionChangeRecord, PartitionRecord, RegisterBrokerRecord,
    TOPIC_RESOURCE, TopicRecord,
};

/// A record that does not fit the metadata it is replayed onto.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReplayError {
    #[error("record at offset {offset} follows offset {last}: offsets must ascend")]
    OffsetOrder { offset: i64, last: i64 },
    #[error("TopicRecord names topic id {id}, which exists")]
    TopicIdExists { id: Uuid },
    #[error("TopicRecord names topic {name}, which exists")]
    TopicNameExists { name: String },
    #[error("{record} names topic id {id}, which does not exist")]
    UnknownTopicId { record: &'static str, id: Uuid },
    #[error(
        "PartitionChangeRecord names partition {partition} of topic id {id}, which does not exist"
    )]
    UnknownPartition { id: Uuid, partition: i32 },
    #[error("{record} names broker {id}, which is not registered")]
    UnknownBroker { record: &'static str, id: i32 },
    #[error("{record} names epoch {epoch} of broker {id}, which is at epoch {current}")]
    BrokerEpochMismatch {
        record: &'static str,
        id: i32,
        epoch: i64,
        current: i64,
    },
    #[error("BrokerRegistrationChangeRecord of broker {id}: {field} {value} is not a valid change")]
    InvalidBrokerChange {
        id: i32,
        field: &'static str,
        value: i8,
    },
    #[error("ProducerIdsRecord moves the next producer id from {current} to {next}: it must grow")]
    ProducerIdNotIncreasing { current: i64, next: i64 },
}

/// A partition by topic name and index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

/// A partition this broker hosts after the delta, with its new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPartition {
    pub topic_id: Uuid,
    pub state: PartitionImage,
}

/// What one broker must do about a delta (Kafka's `LocalReplicaChanges`).
/// A topic deleted and created again under the same name in one delta shows
/// in `deletes` (old id) and in `leaders`/`followers` (new id): delete
/// first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalReplicaChanges {
    /// Partitions this broker now leads, new or with a new partition epoch.
    pub leaders: BTreeMap<TopicPartition, LocalPartition>,
    /// Partitions this broker now follows, new or with a new partition
    /// epoch.
    pub followers: BTreeMap<TopicPartition, LocalPartition>,
    /// Partitions this broker no longer hosts, with their topic id: the
    /// topic was deleted or the broker left the replicas.
    pub deletes: BTreeMap<TopicPartition, Uuid>,
    /// Every topic created in the delta (not only local ones).
    pub topics_created: BTreeMap<String, Uuid>,
    /// Every topic deleted in the delta.
    pub topics_deleted: BTreeMap<String, Uuid>,
    /// Topic configuration keys changed: topic -> key -> new value (`None`:
    /// removed). Configs of deleted topics are left out.
    pub topic_configs: BTreeMap<String, BTreeMap<String, Option<String>>>,
}

/// A topic created or changed in the delta: its partitions that changed.
#[derive(Debug, Clone)]
struct TopicDelta {
    name: String,
    partitions: BTreeMap<i32, PartitionImage>,
}

/// The changes since an image.
#[derive(Debug, Clone)]
pub struct MetadataDelta {
    image: Arc<MetadataImage>,
    provenance: Provenance,
    features: BTreeMap<String, Option<i16>>,
    brokers: BTreeMap<i32, Option<BrokerRegistration>>,
    /// Topics created or changed, by id.
    topics: BTreeMap<Uuid, TopicDelta>,
    /// Topics of the image deleted: id -> name.
    deleted_topics: BTreeMap<Uuid, String>,
    created_topics: BTreeSet<Uuid>,
    configs: BTreeMap<ConfigResource, BTreeMap<String, Option<String>>>,
    next_producer_id: Option<i64>,
}

impl MetadataDelta {
    pub fn new(image: Arc<MetadataImage>) -> Self {
        Self {
            provenance: image.provenance,
            image,
            features: BTreeMap::new(),
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            deleted_topics: BTreeMap::new(),
            created_topics: BTreeSet::new(),
            configs: BTreeMap::new(),
            next_producer_id: None,
        }
    }

    pub fn image(&self) -> &Arc<MetadataImage> {
        &self.image
    }

    /// Replays the record at `offset`, read from a batch of leader `epoch`.
    /// On error the delta is unchanged.
    pub fn replay(
        &mut self,
        offset: i64,
        epoch: i32,
        record: &MetadataRecord,
    ) -> Result<(), ReplayError> {
        if offset <= self.provenance.offset {
            return Err(ReplayError::OffsetOrder {
                offset,
                last: self.provenance.offset,
            });
        }
        self.replay_record(record)?;
        self.provenance = Provenance { offset, epoch };
        Ok(())
    }

    fn replay_record(&mut self, record: &MetadataRecord) -> Result<(), ReplayError> {
        match record {
            MetadataRecord::RegisterBroker(record) => self.register_broker(record),
            MetadataRecord::UnregisterBroker(record) => {
                let name = "UnregisterBrokerRecord";
                self.broker_at(name, record.broker_id, record.broker_epoch)?;
                self.brokers.insert(record.broker_id, None);
            }
            MetadataRecord::FenceBroker(record) => {
                let mut broker = self.broker_at("FenceBrokerRecord", record.id, record.epoch)?;
                broker.fenced = true;
                self.brokers.insert(record.id, Some(broker));
            }
            MetadataRecord::UnfenceBroker(record) => {
                let mut broker = self.broker_at("UnfenceBrokerRecord", record.id, record.epoch)?;
                broker.fenced = false;
                self.brokers.insert(record.id, Some(broker));
            }
            MetadataRecord::BrokerRegistrationChange(record) => {
                self.change_broker(record)?;
            }
            MetadataRecord::Topic(record) => self.create_topic(record)?,
            MetadataRecord::Partition(record) => self.replay_partition(record)?,
            MetadataRecord::PartitionChange(record) => self.change_partition(record)?,
            MetadataRecord::RemoveTopic(record) => self.remove_topic(record.topic_id)?,
            MetadataRecord::Config(record) => self.replay_config(record),
            MetadataRecord::FeatureLevel(record) => {
                let level = (record.feature_level != 0).then_some(record.feature_level);
                self.features.insert(record.name.clone(), level);
            }
            MetadataRecord::ProducerIds(record) => {
                let current = self.next_producer_id();
                if record.next_producer_id <= current {
                    return Err(ReplayError::ProducerIdNotIncreasing {
                        current,
                        next: record.next_producer_id,
                    });
                }
                self.next_producer_id = Some(record.next_producer_id);
            }
            MetadataRecord::NoOp(_) => {}
        }
        Ok(())
    }

    fn register_broker(&mut self, record: &RegisterBrokerRecord) {
        let registration = BrokerRegistration {
            id: record.broker_id,
            incarnation_id: record.incarnation_id,
            epoch: record.broker_epoch,
            endpoints: record.end_points.clone(),
            supported_features: record.features.clone(),
            rack: record.rack.clone(),
            fenced: record.fenced,
            in_controlled_shutdown: record.in_controlled_shutdown,
            is_migrating_zk_broker: record.is_migrating_zk_broker,
            log_dirs: record.log_dirs.clone(),
        };
        self.brokers.insert(record.broker_id, Some(registration));
    }

    /// The broker's current registration, if it is at `epoch`.
    fn broker_at(
        &self,
        record: &'static str,
        id: i32,
        epoch: i64,
    ) -> Result<BrokerRegistration, ReplayError> {
        let broker = match self.brokers.get(&id) {
            Some(changed) => changed.clone(),
            None => self.image.brokers.get(&id).map(|b| (**b).clone()),
        }
        .ok_or(ReplayError::UnknownBroker { record, id })?;
        if broker.epoch != epoch {
            return Err(ReplayError::BrokerEpochMismatch {
                record,
                id,
                epoch,
                current: broker.epoch,
            });
        }
        Ok(broker)
    }

    fn change_broker(
        &mut self,
        record: &BrokerRegistrationChangeRecord,
    ) -> Result<(), ReplayError> {
        let name = "BrokerRegistrationChangeRecord";
        let mut broker = self.broker_at(name, record.broker_id, record.broker_epoch)?;
        let invalid = |field, value| ReplayError::InvalidBrokerChange {
            id: record.broker_id,
            field,
            value,
        };
        match record.fenced {
            -1 => broker.fenced = false,
            0 => {}
            1 => broker.fenced = true,
            other => return Err(invalid("Fenced", other)),
        }
        match record.in_controlled_shutdown {
            0 => {}
            1 => broker.in_controlled_shutdown = true,
            other => return Err(invalid("InControlledShutdown", other)),
        }
        if !record.log_dirs.is_empty() {
            broker.log_dirs = record.log_dirs.clone();
        }
        self.brokers.insert(record.broker_id, Some(broker));
        Ok(())
    }

    /// The live topic's name, if `id` names one after the records so far.
    fn live_topic_name(&self, id: &Uuid) -> Option<&str> {
        if let Some(topic) = self.topics.get(id) {
            return Some(&topic.name);
        }
        if self.deleted_topics.contains_key(id) {
            return None;
        }
        self.image.topics_by_id.get(id).map(|t| t.name.as_str())
    }

    fn topic_name_in_use(&self, name: &str) -> bool {
        self.topics.values().any(|t| t.name == name)
            || self
                .image
                .topic_ids_by_name
                .get(name)
                .is_some_and(|id| !self.deleted_topics.contains_key(id))
    }

    fn create_topic(&mut self, record: &TopicRecord) -> Result<(), ReplayError> {
        let id = record.topic_id;
        if self.topics.contains_key(&id) || self.image.topics_by_id.contains_key(&id) {
            return Err(ReplayError::TopicIdExists { id });
        }
        if self.topic_name_in_use(&record.name) {
            return Err(ReplayError::TopicNameExists {
                name: record.name.clone(),
            });
        }
        self.topics.insert(
            id,
            TopicDelta {
                name: record.name.clone(),
                partitions: BTreeMap::new(),
            },
        );
        self.created_topics.insert(id);
        Ok(())
    }

    /// The topic's entry in the delta, made from the image on first change.
    fn topic_delta(
        &mut self,
        record: &'static str,
        id: Uuid,
    ) -> Result<&mut TopicDelta, ReplayError> {
        let name = self
            .live_topic_name(&id)
            .ok_or(ReplayError::UnknownTopicId { record, id })?
            .to_owned();
        Ok(self.topics.entry(id).or_insert_with(|| TopicDelta {
            name,
            partitions: BTreeMap::new(),
        }))
    }

    fn replay_partition(&mut self, record: &PartitionRecord) -> Result<(), ReplayError> {
        let topic = self.topic_delta("PartitionRecord", record.topic_id)?;
        let partition = PartitionImage {
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            removing_replicas: record.removing_replicas.clone(),
            adding_replicas: record.adding_replicas.clone(),
            leader: record.leader,
            leader_recovery_state: record.leader_recovery_state,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
            directories: record.directories.clone(),
            elr: record.eligible_leader_replicas.clone().unwrap_or_default(),
            last_known_elr: record.last_known_elr.clone().unwrap_or_default(),
        };
        topic.partitions.insert(record.partition_id, partition);
        Ok(())
    }

    fn change_partition(&mut self, record: &PartitionChangeRecord) -> Result<(), ReplayError> {
        let (id, partition) = (record.topic_id, record.partition_id);
        let changed = self
            .topics
            .get(&id)
            .and_then(|t| t.partitions.get(&partition));
        let current = match changed {
            Some(current) => Some(current.clone()),
            None if self.live_topic_name(&id).is_some() => self
                .image
                .topics_by_id
                .get(&id)
                .and_then(|t| t.partitions.get(&partition))
                .cloned(),
            None => None,
        }
        .ok_or(ReplayError::UnknownPartition { id, partition })?;
        let merged = merge(current, record);
        self.topic_delta("PartitionChangeRecord", id)?
            .partitions
            .insert(partition, merged);
        Ok(())
    }

    fn remove_topic(&mut self, id: Uuid) -> Result<(), ReplayError> {
        let name = self
            .live_topic_name(&id)
            .ok_or(ReplayError::UnknownTopicId {
                record: "RemoveTopicRecord",
                id,
            })?
            .to_owned();
        self.topics.remove(&id);
        if !self.created_topics.remove(&id) {
            self.deleted_topics.insert(id, name.clone());
        }
        // Kafka drops a deleted topic's configuration with it.
        let resource = ConfigResource::topic(&name);
        let mut keys: BTreeSet<String> = self
            .image
            .configs
            .get(&resource)
            .map(|config| config.keys().cloned().collect())
            .unwrap_or_default();
        let changes = self.configs.entry(resource).or_default();
        keys.extend(changes.keys().cloned());
        for key in keys {
            changes.insert(key, None);
        }
        Ok(())
    }

    fn replay_config(&mut self, record: &ConfigRecord) {
        let resource = ConfigResource {
            resource_type: record.resource_type,
            name: record.resource_name.clone(),
        };
        self.configs
            .entry(resource)
            .or_default()
            .insert(record.name.clone(), record.value.clone());
    }

    fn next_producer_id(&self) -> i64 {
        self.next_producer_id.unwrap_or(self.image.next_producer_id)
    }

    /// The image with every record replayed so far.
    pub fn apply(&self) -> MetadataImage {
        let base = &*self.image;
        let mut features = base.features.clone();
        for (name, level) in &self.features {
            match level {
                Some(level) => features.insert(name.clone(), *level),
                None => features.remove(name),
            };
        }
        let mut brokers = base.brokers.clone();
        for (id, registration) in &self.brokers {
            match registration {
                Some(registration) => brokers.insert(*id, Arc::new(registration.clone())),
                None => brokers.remove(id),
            };
        }
        let mut topics_by_id = base.topics_by_id.clone();
        let mut topic_ids_by_name = base.topic_ids_by_name.clone();
        for (id, name) in &self.deleted_topics {
            topics_by_id.remove(id);
            topic_ids_by_name.remove(name);
        }
        for (id, delta) in &self.topics {
            let mut partitions = base
                .topics_by_id
                .get(id)
                .map(|t| t.partitions.clone())
                .unwrap_or_default();
            partitions.extend(delta.partitions.iter().map(|(p, s)| (*p, s.clone())));
            let topic = TopicImage {
                name: delta.name.clone(),
                id: *id,
                partitions,
            };
            topics_by_id.insert(*id, Arc::new(topic));
            topic_ids_by_name.insert(delta.name.clone(), *id);
        }
        let mut configs = base.configs.clone();
        for (resource, changes) in &self.configs {
            let mut config = configs
                .get(resource)
                .map(|c| (**c).clone())
                .unwrap_or_default();
            for (key, value) in changes {
                match value {
                    Some(value) => config.insert(key.clone(), value.clone()),
                    None => config.remove(key),
                };
            }
            if config.is_empty() {
                configs.remove(resource);
            } else {
                configs.insert(resource.clone(), Arc::new(config));
            }
        }
        MetadataImage {
            provenance: self.provenance,
            features,
            brokers,
            topics_by_id,
            topic_ids_by_name,
            configs,
            next_producer_id: self.next_producer_id(),
        }
    }

    /// What `broker_id` must do: Kafka's `TopicsDelta.localChanges`, plus
    /// the topics created and deleted and the topic configs changed.
    pub fn local_changes(&self, broker_id: i32) -> LocalReplicaChanges {
        let mut changes = LocalReplicaChanges::default();
        for (id, name) in &self.deleted_topics {
            changes.topics_deleted.insert(name.clone(), *id);
            let Some(topic) = self.image.topics_by_id.get(id) else {
                continue;
            };
            for (partition, state) in &topic.partitions {
                if state.has_replica(broker_id) {
                    let tp = TopicPartition {
                        topic: name.clone(),
                        partition: *partition,
                    };
                    changes.deletes.insert(tp, *id);
                }
            }
        }
        for (id, delta) in &self.topics {
            if self.created_topics.contains(id) {
                changes.topics_created.insert(delta.name.clone(), *id);
            }
            let before = self.image.topics_by_id.get(id);
            for (partition, state) in &delta.partitions {
                let previous = before.and_then(|t| t.partitions.get(partition));
                let tp = TopicPartition {
                    topic: delta.name.clone(),
                    partition: *partition,
                };
                let local = LocalPartition {
                    topic_id: *id,
                    state: state.clone(),
                };
                let is_new = previous.is_none_or(|p| p.partition_epoch != state.partition_epoch);
                if !state.has_replica(broker_id) {
                    if previous.is_some_and(|p| p.has_replica(broker_id)) {
                        changes.deletes.insert(tp, *id);
                    }
                } else if state.leader == broker_id {
                    if is_new {
                        changes.leaders.insert(tp, local);
                    }
                } else if is_new {
                    changes.followers.insert(tp, local);
                }
            }
        }
        let deleted: BTreeSet<&String> = self.deleted_topics.values().collect();
        for (resource, keys) in &self.configs {
            let live = !deleted.contains(&resource.name) || self.topic_name_in_use(&resource.name);
            if resource.resource_type == TOPIC_RESOURCE && live {
                changes
                    .topic_configs
                    .insert(resource.name.clone(), keys.clone());
            }
        }
        changes
    }
}

/// A partition after a change, as Kafka's `PartitionRegistration.merge`:
/// absent fields keep their value, a new leader bumps the leader epoch, and
/// every change bumps the partition epoch.
fn merge(current: PartitionImage, change: &PartitionChangeRecord) -> PartitionImage {
    let replicas = change.replicas.clone().unwrap_or(current.replicas.clone());
    let directories = match (&change.directories, &change.replicas) {
        (Some(directories), _) => directories.clone(),
        // New replicas keep the directory they had; a replica new to the
        // partition has none assigned yet (Kafka's DirectoryId.UNASSIGNED).
        (None, Some(_)) if !current.directories.is_empty() => replicas
            .iter()
            .map(|replica| {
                current
                    .replicas
                    .iter()
                    .position(|r| r == replica)
                    .and_then(|i| current.directories.get(i).copied())
                    .unwrap_or(Uuid::nil())
            })
            .collect(),
        (None, _) => current.directories.clone(),
    };
    let (leader, leader_epoch) = if change.leader == NO_LEADER_CHANGE {
        (current.leader, current.leader_epoch)
    } else {
        (change.leader, current.leader_epoch + 1)
    };
    let leader_recovery_state = if change.leader_recovery_state == NO_LEADER_RECOVERY_CHANGE {
        current.leader_recovery_state
    } else {
        change.leader_recovery_state
    };
    PartitionImage {
        replicas,
        isr: change.isr.clone().unwrap_or(current.isr),
        removing_replicas: change
            .removing_replicas
            .clone()
            .unwrap_or(current.removing_replicas),
        adding_replicas: change
            .adding_replicas
            .clone()
            .unwrap_or(current.adding_replicas),
        leader,
        leader_recovery_state,
        leader_epoch,
        partition_epoch: current.partition_epoch + 1,
        directories,
        elr: change
            .eligible_leader_replicas
            .clone()
            .unwrap_or(current.elr),
        last_known_elr: change
            .last_known_elr
            .clone()
            .unwrap_or(current.last_known_elr),
    }
}
