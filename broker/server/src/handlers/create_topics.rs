//! CreateTopics: name rules, partition count (-1 = `num.partitions`),
//! replication factor 1 (one cx), per-topic configs checked before
//! anything is created, `validate_only`.

use super::Admin;
use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};

use super::str_bytes;
use crate::topic_admin::TopicOpError;

/// Kafka's `ConfigSource.DYNAMIC_TOPIC_CONFIG`.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;

pub fn handle(
    cx: &Admin<'_>,
    request: CreateTopicsRequest,
    version: i16,
    now_ms: i64,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let configs: BTreeMap<String, String> = topic
            .configs
            .iter()
            .filter_map(|c| {
                c.value
                    .as_ref()
                    .map(|v| (c.name.to_string(), v.to_string()))
            })
            .collect();
        let mut out = CreatableTopicResult::default();
        out.name = topic.name;
        let partitions = if topic.assignments.is_empty() {
            topic.num_partitions
        } else {
            topic.assignments.len() as i32
        };
        match cx.topics.create_topic(
            &name,
            partitions,
            topic.replication_factor,
            configs,
            request.validate_only,
            now_ms,
        ) {
            Ok(created) => {
                if version >= 7 {
                    out.topic_id = created.id;
                }
                if version >= 5 {
                    out.num_partitions = created.partitions;
                    out.replication_factor = 1;
                    out.configs = Some(
                        created
                            .configs
                            .iter()
                            .map(|(k, v)| {
                                let mut c = CreatableTopicConfigs::default();
                                c.name = str_bytes(k.clone());
                                c.value = Some(str_bytes(v.clone()));
                                c.config_source = DYNAMIC_TOPIC_CONFIG;
                                c
                            })
                            .collect(),
                    );
                }
            }
            Err(err) => {
                out.error_code = error_code(&err).code();
                out.error_message = Some(str_bytes(runnel_http::error_chain(&err)));
            }
        }
        response.topics.push(out);
    }
    response
}

pub(crate) fn error_code(err: &TopicOpError) -> ResponseError {
    match err {
        TopicOpError::InvalidName(_) => ResponseError::InvalidTopicException,
        TopicOpError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicOpError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicOpError::InvalidPartitions { .. } => ResponseError::InvalidPartitions,
        TopicOpError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        TopicOpError::InvalidConfig(_)
        | TopicOpError::InvalidDelivery { .. }
        | TopicOpError::LevelConflict { .. } => ResponseError::InvalidConfig,
        TopicOpError::Forwarded { error, .. } => *error,
        TopicOpError::Metadata { source, .. } => match &**source {
            crate::cluster_metadata::MetadataError::Refused(refused) => refusal_code(refused),
            crate::cluster_metadata::MetadataError::NotController { .. } => {
                ResponseError::NotController
            }
            crate::cluster_metadata::MetadataError::CommitTimeout { .. }
            | crate::cluster_metadata::MetadataError::Forward(_) => ResponseError::RequestTimedOut,
            _ => ResponseError::KafkaStorageError,
        },
        TopicOpError::Storage { .. } => ResponseError::KafkaStorageError,
    }
}

/// Kafka's code for a change the controller's checks refused.
fn refusal_code(refused: &runnel_metadata::ChangeError) -> ResponseError {
    use runnel_metadata::ChangeError;
    match refused {
        ChangeError::InvalidTopicName { .. } | ChangeError::TopicNameCollision { .. } => {
            ResponseError::InvalidTopicException
        }
        ChangeError::TopicExists { .. } | ChangeError::TopicIdExists { .. } => {
            ResponseError::TopicAlreadyExists
        }
        ChangeError::UnknownTopic { .. } => ResponseError::UnknownTopicOrPartition,
        ChangeError::InvalidPartitionCount { .. } => ResponseError::InvalidPartitions,
        ChangeError::InvalidReplicationFactor { .. }
        | ChangeError::ReplicationFactorTooLarge { .. } => ResponseError::InvalidReplicationFactor,
        _ => ResponseError::InvalidRequest,
    }
}
