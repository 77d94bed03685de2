//! The broker's shared state: its settings, the partition logs, the topic
//! registry, the append signal long-polling fetches wait on, and metrics.
//! Handlers get `&Broker`; nothing here is held across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use runnel_log::{LogManager, SharedLog, TopicPartition};
use thiserror::Error;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::metrics::BrokerMetrics;
use crate::topics::{Topic, TopicError, TopicRegistry, effective_config, validate_name};

#[derive(Debug, Error)]
pub enum TopicOpError {
    #[error(transparent)]
    InvalidName(TopicError),
    #[error("topic {0:?} already exists")]
    AlreadyExists(String),
    #[error("topic {0:?} does not exist")]
    Unknown(String),
    #[error("partition count {count} is invalid: {reason}")]
    InvalidPartitions { count: i32, reason: String },
    #[error("replication factor {0} is invalid: this cluster has one broker")]
    InvalidReplicationFactor(i16),
    #[error(transparent)]
    InvalidConfig(TopicError),
    #[error(transparent)]
    Registry(TopicError),
    #[error("storage failed for topic {topic}")]
    Storage {
        topic: String,
        #[source]
        source: runnel_log::LogError,
    },
}

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub logs: Arc<LogManager>,
    pub metrics: Arc<BrokerMetrics>,
    topics: Mutex<TopicRegistry>,
    /// Bumped after every append; fetches waiting for `min.bytes` watch it.
    appended: watch::Sender<u64>,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        logs: Arc<LogManager>,
        topics: TopicRegistry,
        metrics: Arc<BrokerMetrics>,
    ) -> Self {
        Self {
            config,
            logs,
            metrics,
            topics: Mutex::new(topics),
            appended: watch::channel(0).0,
        }
    }

    pub fn topics(&self) -> MutexGuard<'_, TopicRegistry> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    pub fn notify_append(&self) {
        self.appended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The log of a partition of an existing topic.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<SharedLog> {
        let known = self
            .topics()
            .get(topic)
            .is_some_and(|t| (0..t.partitions).contains(&partition));
        if !known {
            return None;
        }
        self.logs.get(&TopicPartition::new(topic, partition))
    }

    /// Creates a topic with its partition logs. `partitions` of -1 takes
    /// `num.partitions`; a replication factor of -1 or 1 is accepted.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Topic, TopicOpError> {
        validate_name(name).map_err(TopicOpError::InvalidName)?;
        let partitions = if partitions == -1 {
            self.config.num_partitions
        } else {
            partitions
        };
        if partitions < 1 {
            return Err(TopicOpError::InvalidPartitions {
                count: partitions,
                reason: "must be at least 1".into(),
            });
        }
        if !matches!(replication_factor, -1 | 1) {
            return Err(TopicOpError::InvalidReplicationFactor(replication_factor));
        }
        let log_config = effective_config(name, &self.config.log, &configs)
            .map_err(TopicOpError::InvalidConfig)?;
        let mut topics = self.topics();
        if topics.get(name).is_some() {
            return Err(TopicOpError::AlreadyExists(name.into()));
        }
        if let Some(existing) = topics.colliding(name) {
            tracing::warn!(topic = name, existing = %existing.name, "topic names differ only in '.' and '_'; their metrics will collide");
        }
        let topic = Topic {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        if validate_only {
            return Ok(topic);
        }
        for p in 0..partitions {
            self.logs
                .get_or_create(&TopicPartition::new(name, p), log_config.clone(), now_ms)
                .map_err(|source| TopicOpError::Storage {
                    topic: name.into(),
                    source,
                })?;
        }
        topics.put(topic.clone()).map_err(TopicOpError::Registry)?;
        tracing::info!(topic = name, partitions, id = %topic.id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its logs.
    pub fn delete_topic(&self, name: &str) -> Result<Topic, TopicOpError> {
        let mut topics = self.topics();
        let topic = topics
            .remove(name)
            .map_err(TopicOpError::Registry)?
            .ok_or_else(|| TopicOpError::Unknown(name.into()))?;
        for p in 0..topic.partitions {
            self.logs
                .delete(&TopicPartition::new(name, p))
                .map_err(|source| TopicOpError::Storage {
                    topic: name.into(),
                    source,
                })?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic)
    }

    /// Grows a topic to `count` partitions.
    pub fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Topic, TopicOpError> {
        let mut topics = self.topics();
        let mut topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| TopicOpError::Unknown(name.into()))?;
        if count <= topic.partitions {
            return Err(TopicOpError::InvalidPartitions {
                count,
                reason: format!(
                    "topic {name} has {} partitions; the count can only grow",
                    topic.partitions
                ),
            });
        }
        if validate_only {
            topic.partitions = count;
            return Ok(topic);
        }
        let log_config = topic
            .log_config(&self.config.log)
            .map_err(TopicOpError::InvalidConfig)?;
        for p in topic.partitions..count {
            self.logs
                .get_or_create(&TopicPartition::new(name, p), log_config.clone(), now_ms)
                .map_err(|source| TopicOpError::Storage {
                    topic: name.into(),
                    source,
                })?;
        }
        topic.partitions = count;
        topics.put(topic.clone()).map_err(TopicOpError::Registry)?;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(topic)
    }
}

impl BrokerConfig {
    /// The host and port clients are told to connect to: the first
    /// advertised listener, or the first listener.
    pub fn advertised(&self) -> (&str, u16) {
        let listener = self
            .advertised_listeners
            .first()
            .or(self.listeners.first())
            .map(|l| (l.address.host.as_str(), l.address.port));
        listener.unwrap_or(("127.0.0.1", 9092))
    }

    /// Set from `meta.properties` at start.
    pub fn cluster_id(&self) -> &str {
        self.cluster_id.as_deref().unwrap_or_default()
    }
}
