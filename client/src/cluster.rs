//! What the client knows of the cluster: its brokers, one connection to
//! each, and the topics it asked about with each partition's leader, from
//! Metadata requests. State sits behind a std mutex that is never held
//! across an await; connections are opened outside it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::connection::Connection;
use crate::error::{ClientError, Result, error_chain};

const METADATA_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 7;
const FIND_COORDINATOR_VERSION: i16 = 3;

/// A topic's partitions, by index: each partition's leader (-1 unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub leaders: Vec<i32>,
}

impl TopicInfo {
    pub fn partitions(&self) -> i32 {
        self.leaders.len() as i32
    }
}

#[derive(Debug, Default)]
struct State {
    /// `host:port` of each broker by node id.
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
    topics: HashMap<String, Arc<TopicInfo>>,
}

/// The cluster as this client sees it; shared as `Arc<Cluster>`.
#[derive(Debug)]
pub struct Cluster {
    bootstrap: Vec<String>,
    client_id: String,
    state: Mutex<State>,
}

impl Cluster {
    /// Learns the brokers from the first of `bootstrap_servers`
    /// (comma-separated `host:port`) that answers.
    pub async fn connect(bootstrap_servers: &str, client_id: &str) -> Result<Arc<Self>> {
        let bootstrap: Vec<String> = bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if bootstrap.is_empty() {
            return Err(ClientError::Config {
                key: "bootstrap.servers".into(),
                value: bootstrap_servers.into(),
                reason: "names no host:port".into(),
            });
        }
        let cluster = Arc::new(Self {
            bootstrap,
            client_id: client_id.to_string(),
            state: Mutex::new(State::default()),
        });
        cluster.refresh(&[], false).await?;
        Ok(cluster)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The topic as last learned, if it was asked about.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicInfo>> {
        self.state().topics.get(name).cloned()
    }

    /// The topic, asking the cluster when it is not known yet (and, with
    /// `auto_create`, letting the broker create it as Kafka's producer does).
    pub async fn topic_or_fetch(&self, name: &str, auto_create: bool) -> Result<Arc<TopicInfo>> {
        if let Some(topic) = self.topic(name) {
            return Ok(topic);
        }
        self.refresh(&[name], auto_create).await?;
        self.topic(name).ok_or_else(|| ClientError::UnknownTopic {
            topic: name.to_string(),
        })
    }

    /// Asks a broker for the metadata of `topics` (none: only brokers).
    pub async fn refresh(&self, topics: &[&str], auto_create: bool) -> Result<()> {
        let request = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                    })
                    .collect(),
            ))
            .with_allow_auto_topic_creation(auto_create);
        let response = self.any_broker(&request).await?;
        let mut state = self.state();
        for broker in &response.brokers {
            state
                .brokers
                .insert(broker.node_id.0, format!("{}:{}", broker.host, broker.port));
        }
        for topic in response.topics {
            let Some(name) = topic.name else { continue };
            let name = name.0.to_string();
            match ResponseError::try_from_code(topic.error_code) {
                None => {}
                // A topic being created answers with these until it is ready.
                Some(
                    ResponseError::UnknownTopicOrPartition | ResponseError::LeaderNotAvailable,
                ) => {
                    state.topics.remove(&name);
                    continue;
                }
                Some(error) => {
                    return Err(ClientError::kafka("Metadata", &name, -1, error.code()));
                }
            }
            let mut leaders = vec![-1; topic.partitions.len()];
            for p in &topic.partitions {
                if let Some(slot) = usize::try_from(p.partition_index)
                    .ok()
                    .and_then(|i| leaders.get_mut(i))
                {
                    *slot = p.leader_id.0;
                }
            }
            state
                .topics
                .insert(name.clone(), Arc::new(TopicInfo { name, leaders }));
        }
        Ok(())
    }

    /// Sends `request` to a known broker, or to a bootstrap address when none
    /// is known or answers.
    async fn any_broker(
        &self,
        request: &MetadataRequest,
    ) -> Result<kafka_protocol::messages::MetadataResponse> {
        let known: Vec<i32> = self.state().brokers.keys().copied().collect();
        for node_id in known {
            if let Ok(connection) = self.open(node_id).await
                && let Ok(response) = connection.call(METADATA_VERSION, request).await
            {
                return Ok(response);
            }
        }
        let mut last = None;
        for address in &self.bootstrap {
            match Connection::open(address, &self.client_id).await {
                Ok(connection) => match connection.call(METADATA_VERSION, request).await {
                    Ok(response) => return Ok(response),
                    Err(err) => last = Some(err),
                },
                Err(err) => last = Some(err),
            }
        }
        if let Some(err) = last {
            tracing::debug!(error = %error_chain(&err), "no bootstrap server answered Metadata");
        }
        Err(ClientError::NoBroker {
            bootstrap: self.bootstrap.join(","),
        })
    }

    /// The connection to broker `node_id`, opened on first use and again
    /// after it failed. When the broker can't be reached at the address
    /// last learned, the brokers' addresses are asked again (a restarted
    /// broker may listen elsewhere) and a changed address is tried.
    pub async fn connection(&self, node_id: i32) -> Result<Connection> {
        match self.open(node_id).await {
            Err(err @ ClientError::Connect { .. }) => {
                let before = self.state().brokers.get(&node_id).cloned();
                if self.refresh(&[], false).await.is_err()
                    || self.state().brokers.get(&node_id) == before.as_ref()
                {
                    return Err(err);
                }
                tracing::debug!(
                    node_id,
                    "a broker's address changed; connecting to the new one"
                );
                self.open(node_id).await
            }
            other => other,
        }
    }

    /// [`connection`](Self::connection) at the address last learned.
    async fn open(&self, node_id: i32) -> Result<Connection> {
        let address = {
            let state = self.state();
            if let Some(connection) = state.connections.get(&node_id)
                && !connection.is_closed()
            {
                return Ok(connection.clone());
            }
            state
                .brokers
                .get(&node_id)
                .cloned()
                .ok_or(ClientError::UnknownNode { node_id })?
        };
        let connection = Connection::open(&address, &self.client_id).await?;
        let mut state = self.state();
        // Another caller may have opened one meanwhile: keep the first.
        let kept = state
            .connections
            .entry(node_id)
            .and_modify(|c| {
                if c.is_closed() {
                    *c = connection.clone();
                }
            })
            .or_insert(connection);
        Ok(kept.clone())
    }

    /// The connection to the coordinator of `key`: a group (`key_type` 0)
    /// or a transactional id (1), asked of any known broker. A refusal is
    /// the Kafka error, with the broker's message when it sent one.
    pub async fn coordinator(&self, key: &str, key_type: i8) -> Result<Connection> {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(key.to_string()))
            .with_key_type(key_type);
        // Any broker answers: the first known one that does (one may be
        // down).
        let known: Vec<i32> = self.state().brokers.keys().copied().collect();
        let mut answer = None;
        for node in known {
            let asked = async {
                self.connection(node)
                    .await?
                    .call(FIND_COORDINATOR_VERSION, &request)
                    .await
            };
            match asked.await {
                Ok(response) => {
                    answer = Some(Ok(response));
                    break;
                }
                Err(err) => answer = Some(Err(err)),
            }
        }
        let response = answer.unwrap_or_else(|| {
            Err(ClientError::NoBroker {
                bootstrap: self.bootstrap.join(","),
            })
        })?;
        if response.error_code != 0 {
            let error = ClientError::kafka("FindCoordinator", key, -1, response.error_code);
            return Err(match response.error_message.as_deref() {
                Some(message) if !message.is_empty() => ClientError::Refused {
                    error: Box::new(error),
                    message: message.to_string(),
                },
                _ => error,
            });
        }
        self.connection(response.node_id.0).await
    }

    /// A known broker's node id, for requests any broker answers.
    pub fn any_node(&self) -> Option<i32> {
        self.state().brokers.keys().min().copied()
    }

    /// The offset ListOffsets gives for a partition at `timestamp` (-2
    /// earliest, -1 latest, else the first at or after it; -1 when none),
    /// asked of its leader. `isolation_level` 1 (read_committed) makes
    /// "latest" the last stable offset.
    pub async fn list_offset(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<i64> {
        let info = self.topic_or_fetch(topic, false).await?;
        let leader = info.leaders.get(partition as usize).copied().unwrap_or(-1);
        let connection = self.connection(leader).await?;
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation_level)
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(timestamp),
                    ]),
            ]);
        let response = connection.call(LIST_OFFSETS_VERSION, &request).await?;
        let answer = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition);
        match answer {
            Some(p) if p.error_code == 0 => Ok(p.offset),
            Some(p) => Err(ClientError::kafka(
                "ListOffsets",
                topic,
                partition,
                p.error_code,
            )),
            None => Err(ClientError::kafka("ListOffsets", topic, partition, -1)),
        }
    }

    /// Forgets what is known of `topic`, so the next use asks again (after a
    /// NOT_LEADER_OR_FOLLOWER and friends).
    pub fn invalidate(&self, topic: &str) {
        self.state().topics.remove(topic);
    }
}
