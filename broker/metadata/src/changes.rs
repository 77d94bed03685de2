//! Building changes: the controller's side on one broker, sans-io. Each
//! function validates a request against the image and returns the records
//! to append to the metadata log; nothing changes until they are appended
//! and replayed. Kafka's rules: replicas placed round-robin over the given
//! brokers, the first replica leads at epoch 0, producer ids handed out in
//! blocks of [`PRODUCER_ID_BLOCK_SIZE`].

use std::collections::BTreeMap;

use thiserror::Error;
use uuid::Uuid;

use crate::image::{BrokerRegistration, MetadataImage, PartitionImage};
use crate::image_records::{partition_record, register_broker_record};
use crate::records::{
    ConfigRecord, FeatureLevelRecord, MetadataRecord, ProducerIdsRecord, RemoveTopicRecord,
    TOPIC_RESOURCE, TopicRecord,
};

/// Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// Kafka's longest topic name.
pub const MAX_TOPIC_NAME_BYTES: usize = 249;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChangeError {
    #[error("topic name {name:?} is invalid: {reason}")]
    InvalidTopicName { name: String, reason: &'static str },
    #[error("topic {name} exists")]
    TopicExists { name: String },
    #[error("topic {name} collides with topic {existing}: '.' and '_' are alike in metric names")]
    TopicNameCollision { name: String, existing: String },
    #[error("topic id {id} exists")]
    TopicIdExists { id: Uuid },
    #[error("topic {name} does not exist")]
    UnknownTopic { name: String },
    #[error("topic {topic} cannot have {count} partitions: it has {current}")]
    InvalidPartitionCount {
        topic: String,
        count: i32,
        current: i32,
    },
    #[error("replication factor {factor} must be at least 1")]
    InvalidReplicationFactor { factor: i16 },
    #[error("replication factor {factor} is larger than the {brokers} available brokers")]
    ReplicationFactorTooLarge { factor: i16, brokers: usize },
    #[error("producer ids are exhausted: the next block would start at {next}")]
    ProducerIdsExhausted { next: i64 },
    #[error("feature {name} cannot be at level {level}")]
    InvalidFeatureLevel { name: String, level: i16 },
}

/// A CreateTopics request for one topic, its id chosen by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Kafka's topic-name rules (`org.apache.kafka.common.internals.Topic`):
/// 1 to 249 bytes of `[a-zA-Z0-9._-]`, not `.` or `..`. Same rules as
/// `validate_name` in broker/server/src/topics.rs.
pub fn validate_topic_name(name: &str) -> Result<(), ChangeError> {
    let invalid = |reason| {
        Err(ChangeError::InvalidTopicName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("it is empty");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are reserved");
    }
    if name.len() > MAX_TOPIC_NAME_BYTES {
        return invalid("it is longer than 249 bytes");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// Records creating `topic`: a TopicRecord, a PartitionRecord per
/// partition and a ConfigRecord per config key.
pub fn create_topic(
    image: &MetadataImage,
    topic: &NewTopic,
    brokers: &[i32],
) -> Result<Vec<MetadataRecord>, ChangeError> {
    validate_topic_name(&topic.name)?;
    if image.topic(&topic.name).is_some() {
        return Err(ChangeError::TopicExists {
            name: topic.name.clone(),
        });
    }
    let metric_name = |name: &str| name.replace('.', "_");
    if let Some(existing) = image
        .topic_names()
        .find(|existing| metric_name(existing) == metric_name(&topic.name))
    {
        return Err(ChangeError::TopicNameCollision {
            name: topic.name.clone(),
            existing: existing.to_owned(),
        });
    }
    if image.topic_by_id(&topic.id).is_some() {
        return Err(ChangeError::TopicIdExists { id: topic.id });
    }
    if topic.partitions < 1 {
        return Err(ChangeError::InvalidPartitionCount {
            topic: topic.name.clone(),
            count: topic.partitions,
            current: 0,
        });
    }
    let brokers = placement(brokers, topic.replication_factor)?;
    let mut records = vec![
        TopicRecord {
            version: 0,
            name: topic.name.clone(),
            topic_id: topic.id,
        }
        .into(),
    ];
    records.extend(partition_records(
        topic.id,
        0..topic.partitions,
        &brokers,
        topic.replication_factor,
    ));
    for (name, value) in &topic.configs {
        records.push(topic_config(&topic.name, name, Some(value.clone())));
    }
    Ok(records)
}

/// Records growing `topic` to `count` partitions, placed as at creation
/// with the replication factor of its partition 0.
pub fn create_partitions(
    image: &MetadataImage,
    topic: &str,
    count: i32,
    brokers: &[i32],
) -> Result<Vec<MetadataRecord>, ChangeError> {
    let existing = image
        .topic(topic)
        .ok_or_else(|| ChangeError::UnknownTopic {
            name: topic.to_owned(),
        })?;
    let current = existing.partitions.len() as i32;
    if count <= current {
        return Err(ChangeError::InvalidPartitionCount {
            topic: topic.to_owned(),
            count,
            current,
        });
    }
    let factor = existing
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len() as i16);
    let brokers = placement(brokers, factor)?;
    Ok(partition_records(existing.id, current..count, &brokers, factor).collect())
}

/// The distinct brokers to place replicas on, checked against `factor`.
fn placement(brokers: &[i32], factor: i16) -> Result<Vec<i32>, ChangeError> {
    if factor < 1 {
        return Err(ChangeError::InvalidReplicationFactor { factor });
    }
    let mut distinct = Vec::with_capacity(brokers.len());
    for broker in brokers {
        if !distinct.contains(broker) {
            distinct.push(*broker);
        }
    }
    if factor as usize > distinct.len() {
        return Err(ChangeError::ReplicationFactorTooLarge {
            factor,
            brokers: distinct.len(),
        });
    }
    Ok(distinct)
}

/// Partitions placed round-robin: partition `p` starts at broker `p mod n`.
fn partition_records(
    topic_id: Uuid,
    partitions: std::ops::Range<i32>,
    brokers: &[i32],
    factor: i16,
) -> impl Iterator<Item = MetadataRecord> {
    partitions.map(move |p| {
        let replicas: Vec<i32> = (0..factor as usize)
            .map(|i| brokers[(p as usize + i) % brokers.len()])
            .collect();
        let state = PartitionImage {
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
            removing_replicas: Vec::new(),
            adding_replicas: Vec::new(),
            leader_recovery_state: 0,
            leader_epoch: 0,
            partition_epoch: 0,
            directories: Vec::new(),
            elr: Vec::new(),
            last_known_elr: Vec::new(),
        };
        partition_record(topic_id, p, &state).into()
    })
}

/// A RemoveTopicRecord for `topic` (its configs go with it on replay).
pub fn delete_topic(
    image: &MetadataImage,
    topic: &str,
) -> Result<Vec<MetadataRecord>, ChangeError> {
    let existing = image
        .topic(topic)
        .ok_or_else(|| ChangeError::UnknownTopic {
            name: topic.to_owned(),
        })?;
    Ok(vec![
        RemoveTopicRecord {
            version: 0,
            topic_id: existing.id,
        }
        .into(),
    ])
}

/// ConfigRecords setting (`Some`) or removing (`None`) keys of `topic`'s
/// configuration. Keys already at the asked value give no record.
pub fn alter_topic_configs(
    image: &MetadataImage,
    topic: &str,
    changes: &BTreeMap<String, Option<String>>,
) -> Result<Vec<MetadataRecord>, ChangeError> {
    if image.topic(topic).is_none() {
        return Err(ChangeError::UnknownTopic {
            name: topic.to_owned(),
        });
    }
    let current = image.topic_config(topic);
    Ok(changes
        .iter()
        .filter(|(key, value)| current.and_then(|c| c.get(*key)) != value.as_ref())
        .map(|(key, value)| topic_config(topic, key, value.clone()))
        .collect())
}

/// ConfigRecords setting (`Some`) or removing (`None`) dynamic keys of
/// broker `broker` (`None`: the cluster-wide default). Keys already at the
/// asked value give no record.
pub fn alter_broker_configs(
    image: &MetadataImage,
    broker: Option<i32>,
    changes: &BTreeMap<String, Option<String>>,
) -> Vec<MetadataRecord> {
    let resource = crate::image::ConfigResource::broker(broker);
    let current = image.config(&resource);
    changes
        .iter()
        .filter(|(key, value)| current.and_then(|c| c.get(*key)) != value.as_ref())
        .map(|(key, value)| {
            ConfigRecord {
                version: 0,
                resource_type: resource.resource_type,
                resource_name: resource.name.clone(),
                name: key.clone(),
                value: value.clone(),
            }
            .into()
        })
        .collect()
}

fn topic_config(topic: &str, key: &str, value: Option<String>) -> MetadataRecord {
    ConfigRecord {
        version: 0,
        resource_type: TOPIC_RESOURCE,
        resource_name: topic.to_owned(),
        name: key.to_owned(),
        value,
    }
    .into()
}

/// A block of producer ids handed to a broker (AllocateProducerIds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdsBlock {
    pub broker_id: i32,
    pub first_producer_id: i64,
    pub size: i64,
}

impl ProducerIdsBlock {
    pub fn last_producer_id(&self) -> i64 {
        self.first_producer_id + self.size - 1
    }
}

/// The next block of producer ids for `broker_id`, and the
/// ProducerIdsRecord that takes it.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<(Vec<MetadataRecord>, ProducerIdsBlock), ChangeError> {
    let first = image.next_producer_id();
    let next = first
        .checked_add(PRODUCER_ID_BLOCK_SIZE)
        .ok_or(ChangeError::ProducerIdsExhausted { next: first })?;
    let record = ProducerIdsRecord {
        version: 0,
        broker_id,
        broker_epoch,
        next_producer_id: next,
    };
    let block = ProducerIdsBlock {
        broker_id,
        first_producer_id: first,
        size: PRODUCER_ID_BLOCK_SIZE,
    };
    Ok((vec![record.into()], block))
}

/// A RegisterBrokerRecord for `broker` (its epoch chosen by the caller:
/// Kafka uses the offset the record lands at).
pub fn register_broker(broker: &BrokerRegistration) -> Vec<MetadataRecord> {
    vec![register_broker_record(broker).into()]
}

/// A FeatureLevelRecord; level 0 removes the feature.
pub fn set_feature_level(name: &str, level: i16) -> Result<Vec<MetadataRecord>, ChangeError> {
    if level < 0 || name.is_empty() {
        return Err(ChangeError::InvalidFeatureLevel {
            name: name.to_owned(),
            level,
        });
    }
    Ok(vec![
        FeatureLevelRecord {
            version: 0,
            name: name.to_owned(),
            feature_level: level,
        }
        .into(),
    ])
}
