//! An image as the records that rebuild it: what a snapshot holds. Replaying
//! [`MetadataImage::to_records`] into an empty image gives the same image
//! (but for its provenance, which the snapshot's id carries). The order is
//! Kafka's `MetadataImage.write`: features (so `metadata.version` comes
//! first), brokers, topics with their partitions, configs, producer ids.

use crate::image::{BrokerRegistration, MetadataImage, PartitionImage};
use crate::records::{
    ConfigRecord, FeatureLevelRecord, MetadataRecord, PartitionRecord, ProducerIdsRecord,
    RegisterBrokerRecord, TopicRecord,
};

impl MetadataImage {
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        // Kafka writes metadata.version before every other record.
        let mut features: Vec<_> = self.features.iter().collect();
        features.sort_by_key(|(name, _)| name.as_str() != "metadata.version");
        for (name, level) in features {
            records.push(
                FeatureLevelRecord {
                    version: 0,
                    name: name.clone(),
                    feature_level: *level,
                }
                .into(),
            );
        }
        for broker in self.brokers.values() {
            records.push(register_broker_record(broker).into());
        }
        for topic in self.topics_by_id.values() {
            records.push(
                TopicRecord {
                    version: 0,
                    name: topic.name.clone(),
                    topic_id: topic.id,
                }
                .into(),
            );
            for (partition_id, partition) in &topic.partitions {
                records.push(partition_record(topic.id, *partition_id, partition).into());
            }
        }
        for (resource, config) in &self.configs {
            for (name, value) in config.iter() {
                records.push(
                    ConfigRecord {
                        version: 0,
                        resource_type: resource.resource_type,
                        resource_name: resource.name.clone(),
                        name: name.clone(),
                        value: Some(value.clone()),
                    }
                    .into(),
                );
            }
        }
        if self.next_producer_id > 0 {
            // As Kafka's ProducerIdsImage writes it: no requesting broker.
            records.push(
                ProducerIdsRecord {
                    version: 0,
                    broker_id: -1,
                    broker_epoch: -1,
                    next_producer_id: self.next_producer_id,
                }
                .into(),
            );
        }
        records
    }
}

pub(crate) fn register_broker_record(broker: &BrokerRegistration) -> RegisterBrokerRecord {
    RegisterBrokerRecord {
        version: RegisterBrokerRecord::LATEST,
        broker_id: broker.id,
        is_migrating_zk_broker: broker.is_migrating_zk_broker,
        incarnation_id: broker.incarnation_id,
        broker_epoch: broker.epoch,
        end_points: broker.endpoints.clone(),
        features: broker.supported_features.clone(),
        rack: broker.rack.clone(),
        fenced: broker.fenced,
        in_controlled_shutdown: broker.in_controlled_shutdown,
        log_dirs: broker.log_dirs.clone(),
    }
}

/// The partition's state as a PartitionRecord of the lowest version that
/// holds it all.
pub(crate) fn partition_record(
    topic_id: uuid::Uuid,
    partition_id: i32,
    partition: &PartitionImage,
) -> PartitionRecord {
    let has_elr = !partition.elr.is_empty() || !partition.last_known_elr.is_empty();
    let version = if has_elr {
        2
    } else if !partition.directories.is_empty() {
        1
    } else {
        0
    };
    let non_empty = |list: &Vec<i32>| (!list.is_empty()).then(|| list.clone());
    PartitionRecord {
        version,
        partition_id,
        topic_id,
        replicas: partition.replicas.clone(),
        isr: partition.isr.clone(),
        removing_replicas: partition.removing_replicas.clone(),
        adding_replicas: partition.adding_replicas.clone(),
        leader: partition.leader,
        leader_recovery_state: partition.leader_recovery_state,
        leader_epoch: partition.leader_epoch,
        partition_epoch: partition.partition_epoch,
        directories: partition.directories.clone(),
        eligible_leader_replicas: non_empty(&partition.elr),
        last_known_elr: non_empty(&partition.last_known_elr),
    }
}
