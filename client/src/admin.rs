//! The admin client: create, delete and grow topics, read and change their
//! configs, list them, with Kafka's admin requests. Each call sends to a
//! broker it knows and maps an error code to a [`ClientError::Kafka`]
//! naming the topic.

use std::sync::Arc;

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
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::{GroupId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// Offsets the admin client reads count every record, as Kafka's do.
const READ_UNCOMMITTED: i8 = 0;
const CREATE_TOPICS_VERSION: i16 = 5;
const DELETE_TOPICS_VERSION: i16 = 4;
const CREATE_PARTITIONS_VERSION: i16 = 2;
const DESCRIBE_CONFIGS_VERSION: i16 = 4;
const INCREMENTAL_ALTER_CONFIGS_VERSION: i16 = 1;
const METADATA_VERSION: i16 = 12;
const LIST_GROUPS_VERSION: i16 = 4;
const DESCRIBE_GROUPS_VERSION: i16 = 5;
const OFFSET_FETCH_VERSION: i16 = 7;
const OFFSET_COMMIT_VERSION: i16 = 8;
/// Kafka's `ConfigResource.Type.TOPIC`.
const TOPIC_RESOURCE: i8 = 2;
/// IncrementalAlterConfigs' SET.
const SET: i8 = 0;
const TIMEOUT_MS: i32 = 30_000;

/// A topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    pub name: String,
    /// The id the brokers gave the topic (Metadata v10+).
    pub topic_id: uuid::Uuid,
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

/// A group as ListGroups lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
}

/// A member as DescribeGroups describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub host: String,
    /// Its partitions, from a ConsumerProtocol assignment.
    pub assignment: Vec<(String, i32)>,
}

/// A group, its members and committed offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
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

    /// The connection to `group`'s coordinator.
    async fn coordinator(&self, group: &str) -> Result<Connection> {
        self.cluster.coordinator(group, 0).await
    }

    /// Every group the brokers know, by id.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let response = self
            .any_broker()
            .await?
            .call(LIST_GROUPS_VERSION, &ListGroupsRequest::default())
            .await?;
        check("ListGroups", "", response.error_code, None)?;
        let mut groups: Vec<GroupListing> = response
            .groups
            .into_iter()
            .map(|g| GroupListing {
                group_id: g.group_id.0.to_string(),
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(groups)
    }

    /// The group's state and members with their assignments.
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
        let response = self
            .coordinator(group)
            .await?
            .call(DESCRIBE_GROUPS_VERSION, &request)
            .await?;
        let described = response
            .groups
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::kafka("DescribeGroups", group, -1, -1))?;
        check(
            "DescribeGroups",
            group,
            described.error_code,
            described.error_message.as_deref(),
        )?;
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: described.group_state.to_string(),
            protocol: described.protocol_data.to_string(),
            members: described
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: crate::consumer::decode_assignment(&m.member_assignment)
                        .unwrap_or_default(),
                })
                .collect(),
        })
    }

    /// The group's committed offsets: (topic, partition, offset), sorted.
    pub async fn group_offsets(&self, group: &str) -> Result<Vec<(String, i32, i64)>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_topics(None);
        let response = self
            .coordinator(group)
            .await?
            .call(OFFSET_FETCH_VERSION, &request)
            .await?;
        check("OffsetFetch", group, response.error_code, None)?;
        let mut offsets: Vec<(String, i32, i64)> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
                    .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
            })
            .collect();
        offsets.sort();
        Ok(offsets)
    }

    /// The log end offset of each partition (ListOffsets latest).
    pub async fn end_offsets(&self, partitions: &[(String, i32)]) -> Result<Vec<i64>> {
        self.offsets_at(partitions, -1).await
    }

    /// Commits offsets for `group` outside any generation (the group must
    /// have no members, as Kafka's offset reset requires).
    pub async fn commit_group_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (topic, partition, offset) in offsets {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(*partition)
                .with_committed_offset(*offset);
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(topics);
        let response = self
            .coordinator(group)
            .await?
            .call(OFFSET_COMMIT_VERSION, &request)
            .await?;
        for t in &response.topics {
            for p in &t.partitions {
                check("OffsetCommit", t.name.0.as_str(), p.error_code, None)?;
            }
        }
        Ok(())
    }

    /// ListOffsets for each partition at `timestamp` (-2 earliest, -1
    /// latest, else the first offset at or after it; -1 when none).
    pub async fn offsets_at(
        &self,
        partitions: &[(String, i32)],
        timestamp: i64,
    ) -> Result<Vec<i64>> {
        let mut offsets = Vec::with_capacity(partitions.len());
        for (topic, partition) in partitions {
            offsets.push(
                self.cluster
                    .list_offset(topic, *partition, timestamp, READ_UNCOMMITTED)
                    .await?,
            );
        }
        Ok(offsets)
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
                    topic_id: t.topic_id,
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
