//! The broker's shared state: its settings, the partition logs, the topic
//! registry, the append signal long-polling fetches wait on, and metrics.
//! Handlers get `&Broker`; nothing here is held across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use runnel_log::{LogConfig, LogManager, SharedLog, TopicPartition};
use thiserror::Error;
use tokio::sync::watch;
use uuid::Uuid;

/// Logged errors keep their causes; the helper is runnel-http's, shared
/// with the operator, and stays reachable here for existing imports.
pub use runnel_http::error_chain;

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
    /// Log dirs that cannot take writes (storage_health.rs).
    pub storage: crate::storage_health::StorageHealth,
    topics: Mutex<TopicRegistry>,
    /// Held for a whole topic creation, deletion or growth, so that the
    /// disk work happens without `topics`, which requests read, held.
    topic_changes: Mutex<()>,
    /// Committed offsets, mirrored from `__consumer_offsets` (committed.rs).
    pub(crate) offsets: Mutex<runnel_coordinator::OffsetStore>,
    /// Consumer groups and their held requests (groups.rs).
    pub groups: Arc<crate::groups::Groups>,
    /// Held while queued group records are taken and written, so they
    /// reach `__consumer_offsets` in the order they happened.
    pub(crate) group_store: Mutex<()>,
    /// Bumped after every append; fetches waiting for `min.bytes` watch it.
    appended: watch::Sender<u64>,
    /// InitProducerId's ids.
    pub producer_ids: crate::producer_ids::ProducerIds,
    /// The transactional ids this broker coordinates (txns.rs).
    pub(crate) transactions: crate::txns::Transactions,
    /// Offsets of open transactions (TxnOffsetCommit) by producer id,
    /// applied when the transaction commits (committed.rs).
    pub(crate) pending_txn_offsets:
        Mutex<std::collections::HashMap<i64, Vec<runnel_coordinator::OffsetsRecord>>>,
    #[cfg(feature = "fault-injection")]
    pub faults: crate::fault::Faults,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        logs: Arc<LogManager>,
        topics: TopicRegistry,
        metrics: Arc<BrokerMetrics>,
    ) -> Self {
        // The log manager opens every log with the broker's settings; the
        // topics' own overrides live in the registry and are applied here.
        for topic in topics.iter() {
            match topic.log_config(&config.log) {
                Ok(log_config) => apply_log_config(&logs, topic, &log_config),
                Err(err) => tracing::warn!(
                    topic = %topic.name,
                    error = %error_chain(&err),
                    "keeping the broker's log settings: the topic's stored config is invalid"
                ),
            }
        }
        let producer_ids = crate::producer_ids::ProducerIds::new(
            logs.log_dirs()
                .next()
                .unwrap_or(std::path::Path::new("."))
                .join(crate::producer_ids::FILE_NAME),
        );
        let group_config = runnel_coordinator::GroupConfig {
            initial_rebalance_delay_ms: config.group_initial_rebalance_delay_ms,
            group_min_session_timeout_ms: config.group_min_session_timeout_ms,
            group_max_session_timeout_ms: config.group_max_session_timeout_ms,
        };
        Self {
            storage: crate::storage_health::StorageHealth::new(logs.log_dirs()),
            config,
            logs,
            metrics,
            topics: Mutex::new(topics),
            topic_changes: Mutex::new(()),
            offsets: Mutex::new(runnel_coordinator::OffsetStore::new()),
            groups: Arc::new(crate::groups::Groups::new(group_config)),
            group_store: Mutex::new(()),
            appended: watch::channel(0).0,
            producer_ids,
            transactions: Default::default(),
            pending_txn_offsets: Default::default(),
            #[cfg(feature = "fault-injection")]
            faults: crate::fault::Faults::from_env(),
        }
    }

    pub fn topics(&self) -> MutexGuard<'_, TopicRegistry> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn topic_changes(&self) -> MutexGuard<'_, ()> {
        self.topic_changes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
        let log_config = checked_config(name, &self.config.log, &configs)?;
        let _changing = self.topic_changes();
        {
            let topics = self.topics();
            if topics.get(name).is_some() {
                return Err(TopicOpError::AlreadyExists(name.into()));
            }
            if let Some(existing) = topics.colliding(name) {
                tracing::warn!(topic = name, existing = %existing.name, "topic names differ only in '.' and '_'; their metrics will collide");
            }
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
        self.topics()
            .put(topic.clone())
            .map_err(TopicOpError::Registry)?;
        tracing::info!(topic = name, partitions, id = %topic.id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its logs.
    pub fn delete_topic(&self, name: &str) -> Result<Topic, TopicOpError> {
        let _changing = self.topic_changes();
        let topic = self
            .topics()
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
        let _changing = self.topic_changes();
        let mut topic = self
            .topics()
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
        self.topics()
            .put(topic.clone())
            .map_err(TopicOpError::Registry)?;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(topic)
    }

    /// Changes a topic's config overrides: `edit` gets the current ones and
    /// leaves the new ones, all under the registry lock, so concurrent
    /// changes to one topic do not lose each other's keys. The result is
    /// checked as a whole before anything is stored; then it is saved in the
    /// registry and applied to every partition log.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        validate_only: bool,
        edit: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<Topic, TopicOpError> {
        let _changing = self.topic_changes();
        let mut topics = self.topics();
        let mut topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| TopicOpError::Unknown(name.into()))?;
        edit(&mut topic.configs);
        let log_config = checked_config(name, &self.config.log, &topic.configs)?;
        if validate_only {
            return Ok(topic);
        }
        topics.put(topic.clone()).map_err(TopicOpError::Registry)?;
        apply_log_config(&self.logs, &topic, &log_config);
        tracing::info!(topic = name, configs = ?topic.configs, "altered topic configs");
        Ok(topic)
    }
}

/// The log settings of topic `name` with `configs` over the broker's, once
/// every value is known to fit the registry's one-line records: a line break
/// that `LogConfig` would trim away (`delete,\ncompact`) would otherwise be
/// stored and stop the next start.
fn checked_config(
    name: &str,
    broker: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Result<LogConfig, TopicOpError> {
    if let Some((key, value)) = configs
        .iter()
        .find(|(key, value)| key.contains(char::is_control) || value.contains(char::is_control))
    {
        return Err(TopicOpError::InvalidConfig(TopicError::Config {
            topic: name.into(),
            source: runnel_log::LogError::InvalidConfig {
                key: key.clone(),
                value: value.clone(),
                reason: "must not contain control characters".into(),
            },
        }));
    }
    effective_config(name, broker, configs).map_err(TopicOpError::InvalidConfig)
}

/// Gives every partition log of `topic` its settings.
fn apply_log_config(logs: &LogManager, topic: &Topic, config: &LogConfig) {
    for p in 0..topic.partitions {
        if let Some(log) = logs.get(&TopicPartition::new(&topic.name, p)) {
            runnel_log::manager::lock(&log).set_config(config.clone());
        }
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

/// A broker with default settings over the log dir `dir`, for handler tests.
#[cfg(test)]
pub fn open_for_test(dir: &std::path::Path) -> Broker {
    let manager = runnel_log::ManagerConfig::new(vec![dir.to_path_buf()]);
    let logs = LogManager::open(manager, 0).expect("open logs");
    let topics = TopicRegistry::load(dir).expect("load registry");
    let metrics = Arc::new(BrokerMetrics::new());
    Broker::new(BrokerConfig::default(), Arc::new(logs), topics, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Broker {
        open_for_test(dir)
    }

    fn log_config(broker: &Broker, partition: i32) -> LogConfig {
        let log = broker.partition("t", partition).expect("partition");
        runnel_log::manager::lock(&log).config().clone()
    }

    #[test]
    fn altered_configs_reach_the_logs_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        broker
            .create_topic("t", 2, 1, BTreeMap::new(), false, 0)
            .expect("create");
        let set = |configs: &mut BTreeMap<String, String>| {
            configs.insert("retention.ms".into(), "1000".into());
        };
        let checked = broker.alter_topic_configs("t", true, set).expect("valid");
        assert_eq!(checked.configs["retention.ms"], "1000");
        assert_eq!(
            log_config(&broker, 1).retention_ms,
            604_800_000,
            "validate only"
        );

        broker.alter_topic_configs("t", false, set).expect("alter");
        assert_eq!(log_config(&broker, 0).retention_ms, 1000);
        assert_eq!(log_config(&broker, 1).retention_ms, 1000);

        let err = broker
            .alter_topic_configs("t", false, |c| {
                c.insert("cleanup.policy".into(), "forever".into());
            })
            .expect_err("invalid");
        assert!(matches!(err, TopicOpError::InvalidConfig(_)), "{err:?}");
        assert!(error_chain(&err).contains("\"forever\" for log config cleanup.policy"));
        assert!(
            !broker
                .topics()
                .get("t")
                .expect("t")
                .configs
                .contains_key("cleanup.policy")
        );
        let err = broker
            .alter_topic_configs("t", false, |c| {
                c.insert("cleanup.policy".into(), "delete,\ncompact".into());
            })
            .expect_err("a line break would split the registry record");
        assert!(error_chain(&err).contains("control characters"), "{err:?}");
        let unknown = broker.alter_topic_configs("u", false, |_| {});
        assert!(matches!(unknown, Err(TopicOpError::Unknown(_))));
        drop(broker);

        let broker = open(dir.path());
        assert_eq!(
            broker.topics().get("t").expect("t").configs["retention.ms"],
            "1000"
        );
        assert_eq!(log_config(&broker, 0).retention_ms, 1000);
        assert_eq!(log_config(&broker, 1).retention_ms, 1000);
    }
}
