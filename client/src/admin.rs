//! The admin client: create, delete and grow topics, read and change their
//! configs, list them, with Kafka's admin requests. Each call sends to a
//! broker it knows and maps an error code to a [`ClientError::Kafka`]
//! naming the topic.

use std::sync::Arc;

use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{ClientError, Result};

const CREATE_TOPICS_VERSION: i16 = 5;
const DELETE_TOPICS_VERSION: i16 = 4;
const CREATE_PARTITIONS_VERSION: i16 = 2;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
const METADATA_VERSION: i16 = 12;
/// Kafka's `ConfigResource.Type.TOPIC`.
const TOPIC_RESOURCE: i8 = 2;
/// IncrementalAlterConfigs' SET.
const SET: i8 = 0;
const TIMEOUT_MS: i32 = 30_000;

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    pub internal: bool,
    /// (partition, leader) in partition order.
    pub partitions: Vec<(i32, i32)>,
}

/// One config entry of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// Set on the topic (not the broker's default).
    pub is_override: bool,
}

/// A Kafka admin client.
#[derive(Debug)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

impl Admin {
    pub async fn new(bootstrap_servers: &str, client_id: &str) -> Result<Self> {
        Ok(Self {
            cluster: Cluster::connect(bootstrap_servers, client_id).await?,
        })
    }

    async fn any_broker(&self) -> Result<Connection> {
        let node = self
            .cluster
            .any_node()
            .ok_or(ClientError::UnknownNode { node_id: -1 })?;
        self.cluster.connection(node).await
    }

    /// Creates `name` with `partitions` (-1: the broker's default),
    /// `replication_factor` (-1: default) and config overrides.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(String, String)],
    ) -> Result<()> {
        let topic = CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(
                configs
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
            .with_timeout_ms(TIMEOUT_MS);
        let response = self
            .any_broker()
            .await?
            .call(CREATE_TOPICS_VERSION, &request)
            .await?;
        for t in &response.topics {
            check(
                "CreateTopics",
                name,
                t.error_code,
                t.error_message.as_deref(),
            )?;
        }
        self.cluster.invalidate(name);
        Ok(())
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![topic_name(name)])
            .with_timeout_ms(TIMEOUT_MS);
        let response = self
            .any_broker()
            .await?
            .call(DELETE_TOPICS_VERSION, &request)
            .await?;
        for t in &response.responses {
            check(
                "DeleteTopics",
                name,
                t.error_code,
                t.error_message.as_deref(),
            )?;
        }
        self.cluster.invalidate(name);
        Ok(())
    }

    /// Grows `name` to `count` partitions.
    pub async fn create_partitions(&self, name: &str, count: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(topic_name(name))
                    .with_count(count),
            ])
            .with_timeout_ms(TIMEOUT_MS);
        let response = self
            .any_broker()
            .await?
            .call(CREATE_PARTITIONS_VERSION, &request)
            .await?;
        for r in &response.results {
            check(
                "CreatePartitions",
                name,
                r.error_code,
                r.error_message.as_deref(),
            )?;
        }
        self.cluster.invalidate(name);
        Ok(())
    }

    /// Every topic, internal ones included, by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicDescription>> {
        let request = MetadataRequest::default().with_topics(None);
        let response = self
            .any_broker()
            .await?
            .call(METADATA_VERSION, &request)
            .await?;
        let mut topics: Vec<TopicDescription> = response
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                let name = t.name?.0.to_string();
                let mut partitions: Vec<(i32, i32)> = t
                    .partitions
                    .iter()
                    .map(|p| (p.partition_index, p.leader_id.0))
                    .collect();
                partitions.sort_unstable();
                Some(TopicDescription {
                    name,
                    internal: t.is_internal,
                    partitions,
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// The topic's configs, overrides marked.
    pub async fn describe_configs(&self, name: &str) -> Result<Vec<ConfigEntry>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configuration_keys(None),
        ]);
        let response = self
            .any_broker()
            .await?
            .call(DESCRIBE_CONFIGS_VERSION, &request)
            .await?;
        let mut entries = Vec::new();
        for result in response.results {
            check(
                "DescribeConfigs",
                name,
                result.error_code,
                result.error_message.as_deref(),
            )?;
            for c in result.configs {
                entries.push(ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    // DYNAMIC_TOPIC_CONFIG
                    is_override: c.config_source == 1,
                });
            }
        }
        Ok(entries)
    }

    /// Sets config overrides of `name` (IncrementalAlterConfigs SET).
    pub async fn alter_configs(&self, name: &str, configs: &[(String, String)]) -> Result<()> {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_config_operation(SET)
                                .with_value(Some(StrBytes::from_string(v.clone())))
                        })
                        .collect(),
                ),
        ]);
        let response = self
            .any_broker()
            .await?
            .call(INCREMENTAL_ALTER_CONFIGS_VERSION, &request)
            .await?;
        for r in &response.responses {
            check(
                "IncrementalAlterConfigs",
                name,
                r.error_code,
                r.error_message.as_deref(),
            )?;
        }
        Ok(())
    }
}

/// An error code (and the broker's message) as a [`ClientError`].
fn check(api: &'static str, topic: &str, code: i16, message: Option<&str>) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    let error = ClientError::kafka(api, topic, -1, code);
    match message {
        Some(message) if !message.is_empty() => Err(ClientError::Refused {
            error: Box::new(error),
            message: message.to_string(),
        }),
        _ => Err(error),
    }
}
