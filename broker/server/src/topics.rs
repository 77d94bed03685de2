//! A topic as handlers see it (name, topic id, partition count and the
//! per-topic config overrides, built from the metadata image), Kafka's
//! topic-name rules, and the reader of `<first log dir>/runnel-topics`,
//! the registry file data dirs kept before the metadata log (read once,
//! by cluster_metadata's upgrade).
//!
//! That file's format, one record per line:
//!
//! ```text
//! runnel-topics 1
//! topic orders 1b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1 6
//! config orders cleanup.policy compact
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runnel_log::LogConfig;
use thiserror::Error;
use uuid::Uuid;

pub const FILE_NAME: &str = "runnel-topics";
const HEADER: &str = "runnel-topics 1";
/// Kafka's limit on topic name length.
pub const MAX_NAME_BYTES: usize = 249;

#[derive(Debug, Error)]
pub enum TopicError {
    #[error("topic name is empty")]
    EmptyName,
    #[error("topic name {name:?} is {len} bytes; the limit is {MAX_NAME_BYTES}")]
    NameTooLong { name: String, len: usize },
    #[error("topic name {name:?} is not allowed")]
    ReservedName { name: String },
    #[error(
        "topic name {name:?} holds {bad:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
    )]
    IllegalCharacter { name: String, bad: char },
    #[error("cannot read topic registry {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("topic registry {path} line {line} is malformed: {text:?}")]
    Malformed {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("invalid config for topic {topic}")]
    Config {
        topic: String,
        #[source]
        source: runnel_log::LogError,
    },
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Topic-level settings that override the broker's, by Kafka name.
    pub configs: BTreeMap<String, String>,
}

impl Topic {
    /// The topic `topic` of `image`, with its config overrides.
    pub fn from_image(
        image: &runnel_metadata::MetadataImage,
        topic: &runnel_metadata::TopicImage,
    ) -> Self {
        Self {
            name: topic.name.clone(),
            id: topic.id,
            partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
            configs: image
                .topic_config(&topic.name)
                .map(|c| (**c).clone())
                .unwrap_or_default(),
        }
    }

    /// The topic's log settings: the broker's with this topic's overrides.
    pub fn log_config(&self, broker: &LogConfig) -> Result<LogConfig, TopicError> {
        effective_config(&self.name, broker, &self.configs)
    }
}

/// Applies `configs` over `broker`'s settings, naming the topic on error.
pub fn effective_config(
    topic: &str,
    broker: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Result<LogConfig, TopicError> {
    let mut config = broker.clone();
    // `delivery.*` configs make a delay level or an entry topic (level_config.rs); they
    // are no log setting.
    for (key, value) in configs.iter().filter(|(k, _)| !k.starts_with("delivery.")) {
        config
            .set(key, value)
            .map_err(|source| TopicError::Config {
                topic: topic.to_string(),
                source,
            })?;
    }
    Ok(config)
}

/// Checks a topic name as Kafka's `Topic.validate` does.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::EmptyName);
    }
    if name == "." || name == ".." {
        return Err(TopicError::ReservedName { name: name.into() });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(TopicError::NameTooLong {
            name: name.into(),
            len: name.len(),
        });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicError::IllegalCharacter {
            name: name.into(),
            bad,
        });
    }
    Ok(())
}

/// The topics of a `runnel-topics` file.
#[derive(Debug)]
pub struct TopicRegistry {
    topics: BTreeMap<String, Topic>,
}

impl TopicRegistry {
    /// Loads the registry from `dir`, or starts empty when there is none.
    pub fn load(dir: &Path) -> Result<Self, TopicError> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(TopicError::Read { path, source }),
        };
        let mut topics: BTreeMap<String, Topic> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let malformed = || TopicError::Malformed {
                path: path.clone(),
                line: i + 1,
                text: line.to_string(),
            };
            let fields: Vec<&str> = line.splitn(4, ' ').collect();
            match fields.as_slice() {
                [] | [""] => {}
                _ if i == 0 && line == HEADER => {}
                ["topic", name, id, partitions] => {
                    let topic = Topic {
                        name: (*name).to_string(),
                        id: Uuid::parse_str(id).map_err(|_| malformed())?,
                        partitions: partitions.parse().map_err(|_| malformed())?,
                        configs: BTreeMap::new(),
                    };
                    topics.insert(topic.name.clone(), topic);
                }
                ["config", name, key, value] => {
                    let topic = topics.get_mut(*name).ok_or_else(malformed)?;
                    topic
                        .configs
                        .insert((*key).to_string(), (*value).to_string());
                }
                _ => return Err(malformed()),
            }
        }
        Ok(Self { topics })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Topic> {
        self.topics.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafkas_rules() {
        assert!(validate_name("orders.v1_eu-2").is_ok());
        assert!(matches!(validate_name(""), Err(TopicError::EmptyName)));
        assert!(matches!(
            validate_name(".."),
            Err(TopicError::ReservedName { .. })
        ));
        assert!(matches!(
            validate_name(&"a".repeat(250)),
            Err(TopicError::NameTooLong { len: 250, .. })
        ));
        assert!(validate_name(&"a".repeat(249)).is_ok());
        let err = validate_name("a b").expect_err("space");
        assert_eq!(
            err.to_string(),
            "topic name \"a b\" holds ' '; only ASCII letters, digits, '.', '_' and '-' are allowed"
        );
    }

    #[test]
    fn reads_a_registry_file_with_configs_and_ids() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            TopicRegistry::load(dir.path())
                .expect("none")
                .iter()
                .count(),
            0
        );
        std::fs::write(
            dir.path().join(FILE_NAME),
            "runnel-topics 1\n\
             topic orders 1b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1 6\n\
             config orders cleanup.policy compact,delete\n\
             topic b 2b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1 1\n",
        )
        .expect("write");
        let registry = TopicRegistry::load(dir.path()).expect("load");
        let topics: Vec<&Topic> = registry.iter().collect();
        assert_eq!(topics.len(), 2);
        let orders = topics.iter().find(|t| t.name == "orders").expect("orders");
        assert_eq!(
            orders.id.to_string(),
            "1b4f0e98-5197-4b6a-9a3e-6a8d52c0e8a1"
        );
        assert_eq!(orders.partitions, 6);
        let config = orders.log_config(&LogConfig::default()).expect("config");
        assert!(config.cleanup_policy.compact && config.cleanup_policy.delete);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(FILE_NAME),
            "runnel-topics 1\ntopic x notauuid 1\n",
        )
        .expect("write");
        let err = TopicRegistry::load(dir.path()).expect_err("malformed");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
