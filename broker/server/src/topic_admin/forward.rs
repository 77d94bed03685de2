//! Topic changes asked of a node that is not the active controller: sent
//! to the controller as Kafka's CreateTopics (as Kafka's brokers forward
//! them), then waited for until this node's image holds the result, so
//! the caller sees the topic at once, as on the controller.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::TopicOpError;
use crate::cluster_metadata::{ClusterMetadata, QuorumBackend};
use crate::topics::Topic;

const CREATE_TOPICS_VERSION: i16 = 7;
/// The controller's own wait for a change.
const TIMEOUT_MS: i32 = 30_000;

pub struct NewTopicRequest<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: &'a BTreeMap<String, String>,
    pub validate_only: bool,
}

pub fn create_topic(
    metadata: &ClusterMetadata,
    quorum: &QuorumBackend,
    new: NewTopicRequest<'_>,
) -> Result<Topic, TopicOpError> {
    let name = new.name;
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
        .with_num_partitions(new.partitions)
        .with_replication_factor(new.replication_factor)
        .with_configs(
            new.configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(Some(StrBytes::from_string(v.clone())))
                })
                .collect(),
        );
    let request = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(TIMEOUT_MS)
        .with_validate_only(new.validate_only);
    let response = quorum
        .forward(request, CREATE_TOPICS_VERSION)
        .map_err(|source| TopicOpError::Metadata {
            topic: name.into(),
            source: Box::new(source),
        })?;
    let Some(result) = response
        .topics
        .into_iter()
        .find(|t| t.name.0.as_str() == name)
    else {
        return Err(TopicOpError::Forwarded {
            topic: name.into(),
            error: ResponseError::UnknownServerError,
            message: "the controller's answer does not name the topic".into(),
        });
    };
    if let Some(error) = ResponseError::try_from_code(result.error_code) {
        let message = result
            .error_message
            .map(|m| m.to_string())
            .unwrap_or_default();
        return Err(match error {
            ResponseError::TopicAlreadyExists => TopicOpError::AlreadyExists(name.into()),
            error => TopicOpError::Forwarded {
                topic: name.into(),
                error,
                message,
            },
        });
    }
    if !new.validate_only
        && !quorum.wait_for_image(metadata, |image| {
            image.topic(name).is_some_and(|t| t.id == result.topic_id)
        })
    {
        tracing::warn!(
            topic = name,
            "the controller created the topic, but this node's image does not hold it yet"
        );
    }
    Ok(Topic {
        name: name.into(),
        id: result.topic_id,
        partitions: result.num_partitions,
        configs: new.configs.clone(),
    })
}
