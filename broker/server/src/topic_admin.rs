//! Topic changes on this broker: creating, deleting and growing topics
//! and altering their configs. Each is checked, written to the metadata
//! log as records, replayed, and applied here: the replica manager creates
//! or deletes the partition logs, then every listener (the coordinators)
//! follows this broker's share, and only then is the new image published.
//! One change runs at a time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use runnel_log::LogConfig;
use thiserror::Error;
use uuid::Uuid;

use runnel_metadata::changes::{self, NewTopic};
use runnel_metadata::reassignment::{self, ReassignError, Reassignment};
use runnel_metadata::{ChangeError, MetadataImage, MetadataRecord};

mod forward;

use crate::cluster_metadata::{Applied, ApplyLocal, ClusterMetadata, MetadataError};
use crate::level_config::{
    DELAY_MS, DeliveryConfig, EntryConfig, LevelConfig, LevelConfigError, TARGET,
};
use crate::replica_manager::ReplicaManager;
use crate::topics::{Topic, TopicError, effective_config, validate_name};

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
    #[error(
        "replication factor {0} is invalid: it must be at least 1 (or -1 for default.replication.factor)"
    )]
    InvalidReplicationFactor(i16),
    #[error(transparent)]
    InvalidConfig(TopicError),
    #[error("invalid delay level config for topic {topic}")]
    InvalidDelivery {
        topic: String,
        #[source]
        source: LevelConfigError,
    },
    #[error(
        "entry topic {entry} hops through level {level}, but that topic exists and is not a level of {target} with a delay of {delay_ms} ms"
    )]
    LevelConflict {
        entry: String,
        level: String,
        target: String,
        delay_ms: i64,
    },
    #[error("the metadata change for topic {topic} failed")]
    Metadata {
        topic: String,
        #[source]
        source: Box<crate::cluster_metadata::MetadataError>,
    },
    #[error("the controller refused the change to topic {topic} with {error:?}: {message}")]
    Forwarded {
        topic: String,
        error: kafka_protocol::error::ResponseError,
        message: String,
    },
    #[error("storage failed for topic {topic}")]
    Storage {
        topic: String,
        #[source]
        source: runnel_log::LogError,
    },
}

/// Follows this broker's share of each metadata change, after the
/// partition logs it needs exist and before the new image is published
/// (the coordinators load and unload their partitions here).
pub trait LocalChangesListener: Send + Sync + std::fmt::Debug {
    fn changed(&self, applied: &Applied, now_ms: i64);
}

/// Makes topic changes; shared by the admin handlers and the internal
/// topics' creation.
#[derive(Debug)]
pub struct TopicAdmin {
    /// The broker's log settings, under every topic's overrides.
    log_defaults: LogConfig,
    /// `num.partitions`: a topic created with -1 partitions gets these.
    num_partitions: i32,
    /// `default.replication.factor`: a topic created with -1 replicas
    /// gets these.
    default_replication_factor: i16,
    metadata: Arc<ClusterMetadata>,
    /// This broker's share of every change; `metadata` holds it weakly.
    _applier: Arc<LocalApplier>,
    /// Held for a whole topic creation, deletion or growth: its checks,
    /// its records and the logs they create or delete.
    changes: Mutex<()>,
}

/// The brokers new partitions are placed on: the unfenced registered
/// brokers, or `alone` when none registered (a quorum of one, whose
/// broker does not register; on a cluster with no broker there is
/// nowhere to place a partition).
fn placement_brokers(image: &MetadataImage, alone: Option<i32>) -> Vec<i32> {
    let mut brokers: Vec<(Option<&str>, i32)> = image
        .brokers()
        .filter(|b| !b.fenced)
        .map(|b| (b.rack.as_deref(), b.id))
        .collect();
    if brokers.is_empty() {
        return alone.into_iter().collect();
    }
    brokers.sort_unstable_by_key(|(_, id)| *id);
    rack_alternated(&brokers)
}

/// The brokers in an order whose neighbours are on different racks, as
/// Kafka's `getRackAlternatedBrokerList`: the first of each rack (racks by
/// name), then the second of each, and so on. Round-robin placement over
/// it puts a partition's consecutive replicas on different racks. Brokers
/// without a rack keep their id order.
fn rack_alternated(brokers: &[(Option<&str>, i32)]) -> Vec<i32> {
    if brokers.iter().all(|(rack, _)| rack.is_none()) {
        return brokers.iter().map(|(_, id)| *id).collect();
    }
    let mut by_rack: std::collections::BTreeMap<Option<&str>, std::collections::VecDeque<i32>> =
        std::collections::BTreeMap::new();
    for (rack, id) in brokers {
        by_rack.entry(*rack).or_default().push_back(*id);
    }
    let mut order = Vec::with_capacity(brokers.len());
    while order.len() < brokers.len() {
        for ids in by_rack.values_mut() {
            if let Some(id) = ids.pop_front() {
                order.push(id);
            }
        }
    }
    order
}

/// This broker's share of every metadata change: the replica manager
/// creates or deletes partition logs (with their topics' log settings),
/// then every listener follows.
#[derive(Debug)]
struct LocalApplier {
    node_id: i32,
    log_defaults: LogConfig,
    replicas: Arc<ReplicaManager>,
    listeners: Vec<Arc<dyn LocalChangesListener>>,
}

impl ApplyLocal for LocalApplier {
    fn apply(&self, applied: &Applied, now_ms: i64) -> Result<(), runnel_log::LogError> {
        let image = &applied.image;
        let storage = self
            .replicas
            .apply(self.node_id, &applied.local, now_ms, |name| {
                image
                    .topic(name)
                    .map(|t| Topic::from_image(image, t))
                    .and_then(|t| t.log_config(&self.log_defaults).ok())
                    .unwrap_or_else(|| self.log_defaults.clone())
            });
        for listener in &self.listeners {
            listener.changed(applied, now_ms);
        }
        storage
    }
}

impl TopicAdmin {
    /// Topic changes over `metadata`; registers this broker's share of
    /// every change with it.
    pub fn new(
        log_defaults: LogConfig,
        (num_partitions, default_replication_factor): (i32, i16),
        metadata: Arc<ClusterMetadata>,
        replicas: Arc<ReplicaManager>,
        listeners: Vec<Arc<dyn LocalChangesListener>>,
    ) -> Self {
        let applier = Arc::new(LocalApplier {
            node_id: metadata.node_id(),
            log_defaults: log_defaults.clone(),
            replicas,
            listeners,
        });
        let weak: std::sync::Weak<LocalApplier> = Arc::downgrade(&applier);
        metadata.set_applier(weak);
        Self {
            log_defaults,
            num_partitions,
            default_replication_factor,
            metadata,
            _applier: applier,
            changes: Mutex::new(()),
        }
    }

    /// The current metadata image.
    /// This broker, when it is a quorum of one (see `placement_brokers`).
    fn alone(&self) -> Option<i32> {
        self.metadata
            .quorum()
            .is_none()
            .then(|| self.metadata.node_id())
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// A topic, as the current metadata image has it.
    pub fn topic(&self, name: &str) -> Option<Topic> {
        let image = self.metadata.image();
        image.topic(name).map(|t| Topic::from_image(&image, t))
    }

    /// A topic by its id.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Topic> {
        let image = self.metadata.image();
        image.topic_by_id(&id).map(|t| Topic::from_image(&image, t))
    }

    /// Every topic, by name.
    pub fn topic_list(&self) -> Vec<Topic> {
        let image = self.metadata.image();
        image
            .topics()
            .map(|t| Topic::from_image(&image, t))
            .collect()
    }

    fn topic_changes(&self) -> MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `build`'s records to the metadata log; this broker's share
    /// (logs of new partitions created, deleted ones removed, changed
    /// configs in the logs) is applied by [`LocalApplier`] before the new
    /// image is published.
    fn change_metadata(
        &self,
        topic: &str,
        now_ms: i64,
        build: impl FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, ChangeError>,
    ) -> Result<Arc<MetadataImage>, TopicOpError> {
        let (applied, ()) = self
            .metadata
            .change(now_ms, |image| build(image).map(|records| (records, ())))
            .map_err(|source| match source {
                // The records are in the metadata log either way; a
                // partition whose log could not be made is not served.
                MetadataError::ApplyLocal(source) => TopicOpError::Storage {
                    topic: topic.into(),
                    source,
                },
                source => TopicOpError::Metadata {
                    topic: topic.into(),
                    source: Box::new(source),
                },
            })?;
        Ok(applied.image)
    }

    /// Sets (`Some`) or removes (`None`) dynamic config keys of broker
    /// `broker` (`None`: the cluster-wide default), as one metadata
    /// change; the keys and values were checked by the caller.
    pub fn alter_broker_configs(
        &self,
        broker: Option<i32>,
        changes: &BTreeMap<String, Option<String>>,
        now_ms: i64,
    ) -> Result<(), MetadataError> {
        self.metadata.change(now_ms, |image| {
            Ok((changes::alter_broker_configs(image, broker, changes), ()))
        })?;
        tracing::info!(?broker, ?changes, "altered dynamic broker configs");
        Ok(())
    }

    /// Runs leader elections of `kind` for `partitions` (every one that
    /// needs it when `None`), as one metadata change: each partition's
    /// outcome.
    pub fn elect_leaders(
        &self,
        kind: runnel_metadata::elections::ElectionType,
        partitions: Option<&[(String, i32)]>,
        now_ms: i64,
    ) -> Result<Vec<runnel_metadata::elections::Outcome>, MetadataError> {
        let (_, outcomes) = self.metadata.change(now_ms, |image| {
            Ok(runnel_metadata::elections::elect(image, kind, partitions))
        })?;
        Ok(outcomes)
    }

    /// Starts (a target) or cancels (`None`) the reassignment of each
    /// partition, as one metadata change: each partition's outcome.
    pub fn reassign_partitions(
        &self,
        asked: &[Reassignment],
        now_ms: i64,
    ) -> Result<Vec<Result<(), ReassignError>>, MetadataError> {
        let (_, outcomes) = self.metadata.change(now_ms, |image| {
            let mut records = Vec::new();
            let mut outcomes = Vec::new();
            for ((topic, partition), target) in asked {
                let outcome = reassignment::reassign(image, topic, *partition, target.as_deref());
                outcomes.push(outcome.map(|record| records.extend(record)));
            }
            Ok((records, outcomes))
        })?;
        Ok(outcomes)
    }

    /// Completes the reassignments whose new replicas are all in sync.
    pub fn complete_reassignments(&self, now_ms: i64) -> Result<usize, MetadataError> {
        let (_, completed) = self.metadata.change(now_ms, |image| {
            let records = reassignment::complete(image);
            let count = records.len();
            Ok((records, count))
        })?;
        Ok(completed)
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
            self.num_partitions
        } else {
            partitions
        };
        if partitions < 1 {
            return Err(TopicOpError::InvalidPartitions {
                count: partitions,
                reason: "must be at least 1".into(),
            });
        }
        let replication_factor = match replication_factor {
            -1 => self.default_replication_factor,
            rf if rf >= 1 => rf,
            rf => return Err(TopicOpError::InvalidReplicationFactor(rf)),
        };
        if let Some(quorum) = self.metadata.quorum().filter(|q| !q.is_controller()) {
            return forward::create_topic(
                &self.metadata,
                quorum,
                forward::NewTopicRequest {
                    name,
                    partitions,
                    replication_factor,
                    configs: &configs,
                    validate_only,
                },
            );
        }
        let mut configs = configs;
        LevelConfig::stamp_append_time(&mut configs);
        let delivery = checked_config(name, &self.log_defaults, &configs)?;
        let _changing = self.topic_changes();
        if self.topic(name).is_some() {
            return Err(TopicOpError::AlreadyExists(name.into()));
        }
        let entry = match delivery {
            Some(DeliveryConfig::Entry(entry)) => Some(entry),
            _ => None,
        };
        if let Some(entry) = &entry {
            self.check_levels(name, entry)?;
        }
        let topic = self.create_locked(
            name,
            (partitions, replication_factor),
            configs,
            validate_only,
            now_ms,
        )?;
        if let Some(entry) = &entry
            && !validate_only
        {
            self.create_levels(name, entry, (partitions, replication_factor), now_ms)?;
        }
        Ok(topic)
    }

    /// The levels an entry topic hops through that exist already must be
    /// levels of its target with the delay their name says.
    fn check_levels(&self, entry_name: &str, entry: &EntryConfig) -> Result<(), TopicOpError> {
        let image = self.metadata.image();
        for (level, delay_ms) in entry.level_topics() {
            if image.topic(&level).is_none() {
                continue;
            }
            let configs = image
                .topic_config(&level)
                .map(|c| (**c).clone())
                .unwrap_or_default();
            let is_that_level = configs.get(DELAY_MS) == Some(&delay_ms.to_string())
                && configs.get(TARGET) == Some(&entry.target);
            if !is_that_level {
                return Err(TopicOpError::LevelConflict {
                    entry: entry_name.into(),
                    level,
                    target: entry.target.clone(),
                    delay_ms,
                });
            }
        }
        Ok(())
    }

    /// Creates the levels of an entry topic that do not exist yet, with the
    /// entry's partition count and replication factor.
    fn create_levels(
        &self,
        entry_name: &str,
        entry: &EntryConfig,
        (partitions, replication_factor): (i32, i16),
        now_ms: i64,
    ) -> Result<(), TopicOpError> {
        for (level, delay_ms) in entry.level_topics() {
            if self.topic(&level).is_some() {
                continue;
            }
            let mut configs = BTreeMap::from([
                (DELAY_MS.to_string(), delay_ms.to_string()),
                (TARGET.to_string(), entry.target.clone()),
            ]);
            LevelConfig::stamp_append_time(&mut configs);
            checked_config(&level, &self.log_defaults, &configs)?;
            self.create_locked(
                &level,
                (partitions, replication_factor),
                configs,
                false,
                now_ms,
            )?;
            tracing::info!(
                entry = entry_name,
                level,
                delay_ms,
                "created a delay level of an entry topic"
            );
        }
        Ok(())
    }

    /// Creates a topic once checked, while topic changes are held.
    fn create_locked(
        &self,
        name: &str,
        (partitions, replication_factor): (i32, i16),
        configs: BTreeMap<String, String>,
        validate_only: bool,
        now_ms: i64,
    ) -> Result<Topic, TopicOpError> {
        let folded = name.replace('.', "_");
        if let Some(existing) = self
            .metadata
            .image()
            .topic_names()
            .find(|t| *t != name && t.replace('.', "_") == folded)
        {
            tracing::warn!(
                topic = name,
                existing,
                "topic names differ only in '.' and '_'; their metrics will collide"
            );
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
        let new = NewTopic {
            name: topic.name.clone(),
            id: topic.id,
            partitions,
            replication_factor,
            configs: topic.configs.clone(),
        };
        let alone = self.alone();
        self.change_metadata(name, now_ms, |image| {
            let brokers = placement_brokers(image, alone);
            // Topic names that differ only in '.' and '_' are let in, as
            // before the metadata log: checked against an image without
            // the others' names would refuse them.
            match changes::create_topic(image, &new, &brokers) {
                Err(ChangeError::TopicNameCollision { .. }) => {
                    changes::create_topic(&MetadataImage::empty(), &new, &brokers)
                }
                other => other,
            }
        })?;
        tracing::info!(topic = name, partitions, id = %topic.id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its logs.
    pub fn delete_topic(&self, name: &str) -> Result<Topic, TopicOpError> {
        let _changing = self.topic_changes();
        let topic = self
            .topic(name)
            .ok_or_else(|| TopicOpError::Unknown(name.into()))?;
        self.change_metadata(name, crate::clock::now_ms(), |image| {
            changes::delete_topic(image, name)
        })?;
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
            .topic(name)
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
        topic
            .log_config(&self.log_defaults)
            .map_err(TopicOpError::InvalidConfig)?;
        let alone = self.alone();
        self.change_metadata(name, now_ms, |image| {
            changes::create_partitions(image, name, count, &placement_brokers(image, alone))
        })?;
        topic.partitions = count;
        tracing::info!(topic = name, partitions = count, "added partitions");
        Ok(topic)
    }

    /// Changes a topic's config overrides: `edit` gets the current ones and
    /// leaves the new ones, while topic changes are held, so concurrent
    /// changes to one topic do not lose each other's keys. The result is
    /// checked as a whole before anything is stored; then it is written to
    /// the metadata log and applied to every partition log.
    pub fn alter_topic_configs(
        &self,
        name: &str,
        validate_only: bool,
        edit: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<Topic, TopicOpError> {
        let _changing = self.topic_changes();
        let mut topic = self
            .topic(name)
            .ok_or_else(|| TopicOpError::Unknown(name.into()))?;
        let before = topic.configs.clone();
        edit(&mut topic.configs);
        LevelConfig::stamp_append_time(&mut topic.configs);
        let delivery = checked_config(name, &self.log_defaults, &topic.configs)?;
        if let Some(DeliveryConfig::Entry(entry)) = &delivery {
            self.check_levels(name, entry)?;
        }
        if validate_only {
            return Ok(topic);
        }
        let mut changed: BTreeMap<String, Option<String>> = before
            .keys()
            .filter(|key| !topic.configs.contains_key(*key))
            .map(|key| (key.clone(), None))
            .collect();
        for (key, value) in &topic.configs {
            if before.get(key) != Some(value) {
                changed.insert(key.clone(), Some(value.clone()));
            }
        }
        self.change_metadata(name, crate::clock::now_ms(), |image| {
            changes::alter_topic_configs(image, name, &changed)
        })?;
        tracing::info!(topic = name, configs = ?topic.configs, "altered topic configs");
        if let Some(DeliveryConfig::Entry(entry)) = &delivery {
            let replication_factor = self
                .metadata
                .image()
                .partition(name, 0)
                .and_then(|p| i16::try_from(p.replicas.len()).ok())
                .unwrap_or(self.default_replication_factor);
            self.create_levels(
                name,
                entry,
                (topic.partitions, replication_factor),
                crate::clock::now_ms(),
            )?;
        }
        Ok(topic)
    }
}

/// Checks topic `name`'s `configs` over the broker's log settings, once
/// every value is known to fit the registry's one-line records (a line break
/// that `LogConfig` would trim away, `delete,\ncompact`, would otherwise be
/// stored and stop the next start); returns its delivery role.
fn checked_config(
    name: &str,
    broker: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Result<Option<DeliveryConfig>, TopicOpError> {
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
    let log = effective_config(name, broker, configs).map_err(TopicOpError::InvalidConfig)?;
    DeliveryConfig::from_configs(name, configs, &log).map_err(|source| {
        TopicOpError::InvalidDelivery {
            topic: name.into(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_http::error_chain;

    fn open(dir: &std::path::Path) -> crate::broker::Broker {
        crate::broker::open_for_test(dir)
    }

    #[test]
    fn racks_alternate_so_neighbouring_replicas_differ() {
        let brokers = [
            (Some("a"), 1),
            (Some("a"), 2),
            (Some("b"), 3),
            (Some("b"), 4),
            (Some("c"), 5),
        ];
        assert_eq!(rack_alternated(&brokers), [1, 3, 5, 2, 4]);
        let plain = [(None, 1), (None, 2), (None, 3)];
        assert_eq!(rack_alternated(&plain), [1, 2, 3]);
        let mixed = [(None, 1), (Some("a"), 2), (Some("a"), 3)];
        assert_eq!(rack_alternated(&mixed), [1, 2, 3]);
    }

    fn log_config(broker: &crate::broker::Broker, partition: i32) -> LogConfig {
        let partition = broker.partition("t", partition).expect("partition");
        partition.log().config().clone()
    }

    #[test]
    fn altered_configs_reach_the_logs_and_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = open(dir.path());
        broker
            .topics
            .create_topic("t", 2, 1, BTreeMap::new(), false, 0)
            .expect("create");
        let set = |configs: &mut BTreeMap<String, String>| {
            configs.insert("retention.ms".into(), "1000".into());
        };
        let checked = broker
            .topics
            .alter_topic_configs("t", true, set)
            .expect("valid");
        assert_eq!(checked.configs["retention.ms"], "1000");
        assert_eq!(
            log_config(&broker, 1).retention_ms,
            604_800_000,
            "validate only"
        );

        broker
            .topics
            .alter_topic_configs("t", false, set)
            .expect("alter");
        assert_eq!(log_config(&broker, 0).retention_ms, 1000);
        assert_eq!(log_config(&broker, 1).retention_ms, 1000);

        let err = broker
            .topics
            .alter_topic_configs("t", false, |c| {
                c.insert("cleanup.policy".into(), "forever".into());
            })
            .expect_err("invalid");
        assert!(matches!(err, TopicOpError::InvalidConfig(_)), "{err:?}");
        assert!(error_chain(&err).contains("\"forever\" for log config cleanup.policy"));
        assert!(
            !broker
                .topics
                .topic("t")
                .expect("t")
                .configs
                .contains_key("cleanup.policy")
        );
        let err = broker
            .topics
            .alter_topic_configs("t", false, |c| {
                c.insert("cleanup.policy".into(), "delete,\ncompact".into());
            })
            .expect_err("a line break would split the registry record");
        assert!(error_chain(&err).contains("control characters"), "{err:?}");
        let unknown = broker.topics.alter_topic_configs("u", false, |_| {});
        assert!(matches!(unknown, Err(TopicOpError::Unknown(_))));
        drop(broker);

        let broker = open(dir.path());
        assert_eq!(
            broker.topics.topic("t").expect("t").configs["retention.ms"],
            "1000"
        );
        assert_eq!(log_config(&broker, 0).retention_ms, 1000);
        assert_eq!(log_config(&broker, 1).retention_ms, 1000);
    }
}
