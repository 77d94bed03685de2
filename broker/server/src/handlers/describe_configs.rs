//! DescribeConfigs: a topic's settings (its overrides, else the broker's)
//! and this broker's settings, with Kafka's names, value renderings, config
//! sources and types.
//!
//! A topic lists every topic-level key [`LogConfig`] knows. A cx
//! resource named by this broker's node id lists its settings, read-only
//! since they come from `server.properties`, `RUNNEL_*` variables and
//! `--override` at start; the empty name, which stands for Kafka's
//! cluster-wide dynamic defaults, lists none, as Kafka does when none are
//! set.

use super::Admin;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};
use kafka_protocol::protocol::StrBytes;
use runnel_log::{CleanupPolicy, LogConfig, TimestampType};

use super::str_bytes;
use crate::config::BrokerConfig;
use crate::topics::{Topic, validate_name};
use runnel_http::error_chain;

use crate::level_config as delivery_config;

/// Kafka's `ConfigResource.Type` codes.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// Kafka's `ConfigSource` codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigType` codes (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub(super) enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    List = 7,
}

/// A topic-level setting: its name, the broker setting that gives its
/// default, its type, and its value as Kafka renders it.
#[derive(Debug)]
pub(super) struct TopicKey {
    pub name: &'static str,
    pub broker_name: &'static str,
    pub config_type: ConfigType,
    pub render: fn(&LogConfig) -> String,
}

#[rustfmt::skip]
static TOPIC_KEYS: &[TopicKey] = &[
    TopicKey { name: "cleanup.policy", broker_name: "log.cleanup.policy", config_type: ConfigType::List, render: |c| cleanup_policy(c.cleanup_policy) },
    TopicKey { name: "delete.retention.ms", broker_name: "log.cleaner.delete.retention.ms", config_type: ConfigType::Long, render: |c| c.delete_retention_ms.to_string() },
    TopicKey { name: "file.delete.delay.ms", broker_name: "log.segment.delete.delay.ms", config_type: ConfigType::Long, render: |c| c.file_delete_delay_ms.to_string() },
    TopicKey { name: "flush.messages", broker_name: "log.flush.interval.messages", config_type: ConfigType::Long, render: |c| long(c.flush_messages) },
    TopicKey { name: "flush.ms", broker_name: "log.flush.interval.ms", config_type: ConfigType::Long, render: |c| c.flush_ms.to_string() },
    TopicKey { name: "index.interval.bytes", broker_name: "log.index.interval.bytes", config_type: ConfigType::Int, render: |c| c.index_interval_bytes.to_string() },
    TopicKey { name: "max.message.bytes", broker_name: "message.max.bytes", config_type: ConfigType::Int, render: |c| c.max_message_bytes.to_string() },
    TopicKey { name: "message.timestamp.type", broker_name: "log.message.timestamp.type", config_type: ConfigType::String, render: |c| timestamp_type(c.message_timestamp_type).into() },
    TopicKey { name: "min.insync.replicas", broker_name: "min.insync.replicas", config_type: ConfigType::Int, render: |c| c.min_insync_replicas.to_string() },
    TopicKey { name: "retention.bytes", broker_name: "log.retention.bytes", config_type: ConfigType::Long, render: |c| c.retention_bytes.to_string() },
    TopicKey { name: "retention.ms", broker_name: "log.retention.ms", config_type: ConfigType::Long, render: |c| c.retention_ms.to_string() },
    TopicKey { name: "segment.bytes", broker_name: "log.segment.bytes", config_type: ConfigType::Int, render: |c| c.segment_bytes.to_string() },
    TopicKey { name: "segment.index.bytes", broker_name: "log.index.size.max.bytes", config_type: ConfigType::Int, render: |c| c.segment_index_bytes.to_string() },
    TopicKey { name: "segment.ms", broker_name: "log.roll.ms", config_type: ConfigType::Long, render: |c| c.segment_ms.to_string() },
    TopicKey { name: "unclean.leader.election.enable", broker_name: "unclean.leader.election.enable", config_type: ConfigType::Boolean, render: |c| c.unclean_leader_election_enable.to_string() },
    TopicKey { name: "leader.replication.throttled.replicas", broker_name: "", config_type: ConfigType::List, render: |c| c.leader_replication_throttled_replicas.render() },
    TopicKey { name: "follower.replication.throttled.replicas", broker_name: "", config_type: ConfigType::List, render: |c| c.follower_replication_throttled_replicas.render() },
];

/// A broker setting that is not a topic's default.
#[derive(Debug)]
struct BrokerKey {
    name: &'static str,
    config_type: ConfigType,
    render: fn(&BrokerConfig) -> String,
}

#[rustfmt::skip]
static BROKER_KEYS: &[BrokerKey] = &[
    BrokerKey { name: "advertised.listeners", config_type: ConfigType::String, render: |c| join(&c.advertised_listeners) },
    BrokerKey { name: "auto.create.topics.enable", config_type: ConfigType::Boolean, render: |c| c.auto_create_topics_enable.to_string() },
    BrokerKey { name: "default.replication.factor", config_type: ConfigType::Int, render: |c| c.default_replication_factor.to_string() },
    BrokerKey { name: "listeners", config_type: ConfigType::String, render: |c| join(&c.listeners) },
    BrokerKey { name: "log.dirs", config_type: ConfigType::String, render: |c| join(c.log_dirs.iter().map(|d| d.display())) },
    BrokerKey { name: "max.connections", config_type: ConfigType::Int, render: |c| c.connection_quotas.max_connections.to_string() },
    BrokerKey { name: "max.connections.per.ip", config_type: ConfigType::Int, render: |c| c.connection_quotas.max_connections_per_ip.to_string() },
    BrokerKey { name: "node.id", config_type: ConfigType::Int, render: |c| c.node_id.to_string() },
    BrokerKey { name: "num.partitions", config_type: ConfigType::Int, render: |c| c.num_partitions.to_string() },
    BrokerKey { name: "socket.request.max.bytes", config_type: ConfigType::Int, render: |c| c.socket_request_max_bytes.to_string() },
];

/// The topic-level key named `name`.
pub(super) fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// A parsed policy in one fixed order, `compact,delete` (a topic's
/// override is shown as written instead).
fn cleanup_policy(policy: CleanupPolicy) -> String {
    let names = [(policy.compact, "compact"), (policy.delete, "delete")];
    join(names.iter().filter(|(on, _)| *on).map(|(_, name)| name))
}

fn timestamp_type(t: TimestampType) -> &'static str {
    match t {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// A Java long: "never" is `Long.MAX_VALUE`, not `u64::MAX`.
fn long(value: u64) -> String {
    value.min(i64::MAX as u64).to_string()
}

fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    items.join(",")
}

/// One described setting, before it is put in the response's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Described {
    name: &'static str,
    value: String,
    source: i8,
    read_only: bool,
    config_type: ConfigType,
    /// Kafka's synonyms: where the value could come from, highest
    /// precedence first, as `(name, value, source)`.
    synonyms: Vec<(&'static str, String, i8)>,
}

/// A topic's settings: its overrides, else the broker's (from its settings
/// or Kafka's defaults).
fn describe_topic(topic: &Topic, broker: &LogConfig) -> Vec<Described> {
    let mut described = describe_log_keys(topic, broker);
    // Delayed delivery's settings (level_config.rs), when set: they have
    // no broker-wide value.
    for (name, config_type) in [
        (delivery_config::DELAY_MS, ConfigType::Long),
        (delivery_config::TARGET, ConfigType::String),
        (delivery_config::LEVELS, ConfigType::List),
        (delivery_config::MAX_DELIVERY_DELAY, ConfigType::Long),
    ] {
        if let Some(value) = topic.configs.get(name) {
            described.push(Described {
                name,
                value: value.clone(),
                source: DYNAMIC_TOPIC_CONFIG,
                read_only: false,
                config_type,
                synonyms: vec![(name, value.clone(), DYNAMIC_TOPIC_CONFIG)],
            });
        }
    }
    described
}

fn describe_log_keys(topic: &Topic, broker: &LogConfig) -> Vec<Described> {
    let effective = topic.log_config(broker);
    let defaults = LogConfig::default();
    TOPIC_KEYS
        .iter()
        .map(|key| {
            let broker_value = (key.render)(broker);
            let default_value = (key.render)(&defaults);
            let mut synonyms = Vec::new();
            // The override is rendered from the parsed config so that the
            // value reads the same whichever way it was written; a list
            // keeps the order it was written in, as Kafka's does.
            let overridden = topic.configs.get(key.name);
            if let Some(written) = overridden
                && let Ok(config) = &effective
            {
                let value = match key.config_type {
                    ConfigType::List => join(written.split(',').map(str::trim)),
                    _ => (key.render)(config),
                };
                synonyms.push((key.name, value, DYNAMIC_TOPIC_CONFIG));
            }
            if broker_value != default_value {
                synonyms.push((key.broker_name, broker_value, STATIC_BROKER_CONFIG));
            }
            // A key with no broker-wide name defaults under its own.
            let default_name = if key.broker_name.is_empty() {
                key.name
            } else {
                key.broker_name
            };
            synonyms.push((default_name, default_value, DEFAULT_CONFIG));
            let (value, source) = (synonyms[0].1.clone(), synonyms[0].2);
            Described {
                name: key.name,
                value,
                source,
                read_only: false,
                config_type: key.config_type,
                synonyms,
            }
        })
        .collect()
}

/// This broker's settings, sorted by name.
fn describe_broker(config: &BrokerConfig) -> Vec<Described> {
    let defaults = BrokerConfig::default();
    let source = |value: &str, default: &str| {
        if value == default {
            DEFAULT_CONFIG
        } else {
            STATIC_BROKER_CONFIG
        }
    };
    let broker_keys = BROKER_KEYS.iter().map(|key| {
        let value = (key.render)(config);
        (
            key.name,
            key.config_type,
            source(&value, &(key.render)(&defaults)),
            value,
        )
    });
    // Keys with no broker-wide default (the throttled replicas) are the
    // topic's alone.
    let log_keys = TOPIC_KEYS
        .iter()
        .filter(|key| !key.broker_name.is_empty())
        .map(|key| {
            let value = (key.render)(&config.log);
            let default = (key.render)(&defaults.log);
            (
                key.broker_name,
                key.config_type,
                source(&value, &default),
                value,
            )
        });
    let mut described: Vec<Described> = broker_keys
        .chain(log_keys)
        .map(|(name, config_type, source, value)| Described {
            name,
            synonyms: vec![(name, value.clone(), source)],
            value,
            source,
            read_only: true,
            config_type,
        })
        .collect();
    described.sort_by_key(|d| d.name);
    described
}

/// The dynamic broker configs (the replication throttles) of broker
/// `node_id` (`None`: the cluster default), with Kafka's synonyms: the
/// broker's own value, the cluster default's, Kafka's default (none:
/// Long.MAX_VALUE bytes per second).
fn describe_dynamic(
    image: &runnel_metadata::MetadataImage,
    node_id: Option<i32>,
) -> Vec<Described> {
    use runnel_metadata::ConfigResource;
    let value_of = |broker: Option<i32>, key: &str| {
        image
            .config(&ConfigResource::broker(broker))
            .and_then(|c| c.get(key).cloned())
    };
    crate::replication::throttle::DYNAMIC_BROKER_KEYS
        .iter()
        .map(|&key| {
            let mut synonyms = Vec::new();
            if let Some(value) = node_id.and_then(|id| value_of(Some(id), key)) {
                synonyms.push((key, value, DYNAMIC_BROKER_CONFIG));
            }
            if let Some(value) = value_of(None, key) {
                synonyms.push((key, value, DYNAMIC_DEFAULT_BROKER_CONFIG));
            }
            synonyms.push((key, i64::MAX.to_string(), DEFAULT_CONFIG));
            let (value, source) = (synonyms[0].1.clone(), synonyms[0].2);
            Described {
                name: key,
                value,
                source,
                read_only: false,
                config_type: ConfigType::Long,
                synonyms,
            }
        })
        .collect()
}

/// Why a resource could not be described: the error and its message.
type Failure = (ResponseError, String);

fn describe(cx: &Admin<'_>, resource: &DescribeConfigsResource) -> Result<Vec<Described>, Failure> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        RESOURCE_TOPIC => {
            if let Err(err) = validate_name(name) {
                return Err((ResponseError::InvalidTopicException, error_chain(&err)));
            }
            let Some(topic) = cx.topics.topic(name) else {
                let message = format!("topic {name:?} does not exist");
                return Err((ResponseError::UnknownTopicOrPartition, message));
            };
            Ok(describe_topic(&topic, &cx.config.log))
        }
        RESOURCE_BROKER => {
            let image = cx.topics.image();
            if name.is_empty() {
                // The cluster default: only what is set dynamically on it.
                return Ok(describe_dynamic(&image, None)
                    .into_iter()
                    .filter(|d| d.source == DYNAMIC_DEFAULT_BROKER_CONFIG)
                    .collect());
            }
            if name.parse::<i32>().ok() != Some(cx.config.node_id) {
                let message = format!(
                    "unexpected broker id, expected {} or empty string, but received {name:?}",
                    cx.config.node_id
                );
                return Err((ResponseError::InvalidRequest, message));
            }
            let mut described = describe_broker(cx.config);
            described.extend(describe_dynamic(&image, Some(cx.config.node_id)));
            described.sort_by_key(|d| d.name);
            Ok(described)
        }
        other => Err((
            ResponseError::InvalidRequest,
            format!(
                "resource type {other} is not supported; this broker describes topics (2) and brokers (4)"
            ),
        )),
    }
}

pub fn handle(
    cx: &Admin<'_>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    for resource in request.resources {
        let mut out = DescribeConfigsResult::default();
        match describe(cx, &resource) {
            Ok(described) => {
                out.error_message = None;
                let wanted = |name: &str| {
                    resource
                        .configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
                };
                out.configs = described
                    .into_iter()
                    .filter(|d| wanted(d.name))
                    .map(|d| to_result(d, request.include_synonyms, version))
                    .collect();
            }
            Err((error, message)) => {
                out.error_code = error.code();
                out.error_message = Some(str_bytes(message));
            }
        }
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name;
        response.results.push(out);
    }
    response
}

fn to_result(d: Described, include_synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default();
    out.name = StrBytes::from_static_str(d.name);
    out.value = Some(str_bytes(d.value));
    out.read_only = d.read_only;
    out.config_source = d.source;
    out.is_sensitive = false;
    if include_synonyms {
        out.synonyms = d
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                let mut s = DescribeConfigsSynonym::default();
                s.name = StrBytes::from_static_str(name);
                s.value = Some(str_bytes(value));
                s.source = source;
                s
            })
            .collect();
    }
    if version >= 3 {
        out.config_type = d.config_type as i8;
        out.documentation = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::config::{ConfigSources, load};

    fn topic(configs: &[(&str, &str)]) -> Topic {
        Topic {
            name: "t".into(),
            id: Uuid::nil(),
            partitions: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn find<'a>(described: &'a [Described], name: &str) -> &'a Described {
        described
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} is not described"))
    }

    #[test]
    fn defaults_render_as_kafka_renders_them() {
        let described = describe_topic(&topic(&[]), &LogConfig::default());
        let value = |name| find(&described, name).value.as_str();
        assert_eq!(value("cleanup.policy"), "delete");
        assert_eq!(value("flush.messages"), "9223372036854775807");
        assert_eq!(value("flush.ms"), "9223372036854775807");
        assert_eq!(value("retention.ms"), "604800000");
        assert_eq!(value("retention.bytes"), "-1");
        assert_eq!(value("segment.bytes"), "1073741824");
        assert_eq!(value("max.message.bytes"), "1048588");
        assert_eq!(value("message.timestamp.type"), "CreateTime");
        assert_eq!(value("min.insync.replicas"), "1");
        assert_eq!(value("unclean.leader.election.enable"), "false");
        assert_eq!(value("leader.replication.throttled.replicas"), "");
        assert_eq!(described.len(), 17);
        for d in &described {
            assert_eq!(d.source, DEFAULT_CONFIG, "{}", d.name);
            assert!(!d.read_only);
            assert_eq!(d.synonyms.len(), 1, "{}", d.name);
        }
        assert_eq!(
            find(&described, "cleanup.policy").config_type,
            ConfigType::List
        );
        assert_eq!(
            find(&described, "retention.ms").config_type,
            ConfigType::Long
        );
        assert_eq!(
            find(&described, "segment.bytes").config_type,
            ConfigType::Int
        );
    }

    #[test]
    fn overrides_are_dynamic_topic_configs_and_broker_settings_static() {
        let mut broker = LogConfig::default();
        broker.set("retention.ms", "1000").expect("valid");
        let t = topic(&[
            ("cleanup.policy", "delete, compact"),
            ("flush.messages", "1"),
        ]);
        let described = describe_topic(&t, &broker);
        let policy = find(&described, "cleanup.policy");
        assert_eq!(
            (policy.value.as_str(), policy.source),
            ("delete,compact", DYNAMIC_TOPIC_CONFIG)
        );
        assert_eq!(
            policy.synonyms,
            [
                (
                    "cleanup.policy",
                    "delete,compact".to_string(),
                    DYNAMIC_TOPIC_CONFIG
                ),
                ("log.cleanup.policy", "delete".to_string(), DEFAULT_CONFIG),
            ]
        );
        assert_eq!(find(&described, "flush.messages").value, "1");
        let retention = find(&described, "retention.ms");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("1000", STATIC_BROKER_CONFIG)
        );
        assert_eq!(
            retention.synonyms[1],
            ("log.retention.ms", "604800000".into(), DEFAULT_CONFIG)
        );
        assert_eq!(find(&described, "segment.ms").source, DEFAULT_CONFIG);
    }

    #[test]
    fn rendered_values_parse_back_under_both_names() {
        let mut config = LogConfig::default();
        config
            .set("cleanup.policy", "compact,delete")
            .expect("valid");
        config
            .set("message.timestamp.type", "LogAppendTime")
            .expect("valid");
        for key in TOPIC_KEYS {
            let value = (key.render)(&config);
            let mut parsed = LogConfig::default();
            parsed.set(key.name, &value).expect(key.name);
            assert_eq!((key.render)(&parsed), value, "{}", key.name);
            if key.broker_name.is_empty() {
                continue;
            }
            let sources = ConfigSources {
                overrides: vec![(key.broker_name.to_string(), value.clone())],
                ..ConfigSources::default()
            };
            let broker = load(&sources).unwrap_or_else(|e| panic!("{}: {e}", key.broker_name));
            assert_eq!((key.render)(&broker.log), value, "{}", key.broker_name);
        }
        let mut names: Vec<_> = TOPIC_KEYS.iter().map(|k| k.name).collect();
        names.dedup();
        assert_eq!(names.len(), TOPIC_KEYS.len());
        assert!(topic_key("retention.ms").is_some() && topic_key("retention.hours").is_none());
    }

    #[test]
    fn broker_settings_are_read_only_and_sourced() {
        let sources = ConfigSources {
            overrides: vec![
                ("num.partitions".into(), "3".into()),
                ("log.dirs".into(), "/a,/b".into()),
                ("log.retention.hours".into(), "1".into()),
            ],
            ..ConfigSources::default()
        };
        let config = load(&sources).expect("valid");
        let described = describe_broker(&config);
        let names: Vec<_> = described.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for name in [
            "num.partitions",
            "auto.create.topics.enable",
            "default.replication.factor",
            "log.dirs",
            "log.segment.bytes",
            "log.retention.ms",
            "message.max.bytes",
            "socket.request.max.bytes",
            "node.id",
            "listeners",
            "advertised.listeners",
        ] {
            assert!(find(&described, name).read_only, "{name}");
        }
        let entry = |name| {
            let d = find(&described, name);
            (d.value.as_str(), d.source)
        };
        assert_eq!(entry("num.partitions"), ("3", STATIC_BROKER_CONFIG));
        assert_eq!(entry("log.dirs"), ("/a,/b", STATIC_BROKER_CONFIG));
        assert_eq!(entry("log.retention.ms"), ("3600000", STATIC_BROKER_CONFIG));
        assert_eq!(entry("node.id"), ("1", DEFAULT_CONFIG));
        assert_eq!(entry("auto.create.topics.enable"), ("true", DEFAULT_CONFIG));
        assert_eq!(
            entry("listeners"),
            ("PLAINTEXT://127.0.0.1:9092", DEFAULT_CONFIG)
        );
        assert_eq!(entry("log.cleanup.policy"), ("delete", DEFAULT_CONFIG));
    }

    #[test]
    fn resources_are_filtered_checked_and_answered_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::broker::open_for_test(dir.path());
        broker
            .topics
            .create_topic("t", 1, 1, Default::default(), false, 0)
            .expect("create");
        let resource = |resource_type, name: &str, keys: Option<&[&str]>| {
            let mut r = DescribeConfigsResource::default();
            r.resource_type = resource_type;
            r.resource_name = str_bytes(name);
            r.configuration_keys = keys.map(|keys| keys.iter().map(|k| str_bytes(*k)).collect());
            r
        };
        let mut request = DescribeConfigsRequest::default();
        request.resources = vec![
            resource(
                RESOURCE_TOPIC,
                "t",
                Some(&["retention.ms", "no.such", "segment.ms"]),
            ),
            resource(RESOURCE_TOPIC, "u", None),
            resource(RESOURCE_BROKER, "1", Some(&["node.id"])),
            resource(RESOURCE_BROKER, "", None),
            resource(RESOURCE_BROKER, "2", None),
            resource(8, "root", None),
        ];
        for version in 1..=4 {
            let response = handle(&super::Admin::of(&broker), request.clone(), version);
            let encoded = runnel_protocol::response::encode(
                kafka_protocol::messages::ApiKey::DescribeConfigs,
                version,
                1,
                &response,
            );
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
        }
        let response = handle(&super::Admin::of(&broker), request, 4);
        let answered: Vec<_> = response
            .results
            .iter()
            .map(|r| {
                let names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
                (r.resource_name.as_str(), r.error_code, names)
            })
            .collect();
        let (unknown, invalid) = (
            ResponseError::UnknownTopicOrPartition.code(),
            ResponseError::InvalidRequest.code(),
        );
        assert_eq!(
            answered,
            [
                ("t", 0, vec!["retention.ms", "segment.ms"]),
                ("u", unknown, vec![]),
                ("1", 0, vec!["node.id"]),
                ("", 0, vec![]),
                ("2", invalid, vec![]),
                ("root", invalid, vec![]),
            ]
        );
        assert_eq!(response.results[0].error_message, None);
        let message = response.results[4]
            .error_message
            .as_deref()
            .expect("message");
        assert!(message.contains("expected 1 or empty string"), "{message}");
    }

    #[test]
    fn result_fields_follow_the_version() {
        let d = describe_topic(&topic(&[]), &LogConfig::default()).remove(0);
        let v1 = to_result(d.clone(), false, 1);
        assert_eq!(v1.config_type, 0);
        assert!(v1.synonyms.is_empty());
        assert_eq!(v1.config_source, DEFAULT_CONFIG);
        let v4 = to_result(d, true, 4);
        assert_eq!(v4.config_type, ConfigType::List as i8);
        assert_eq!(v4.documentation, None);
        assert_eq!(v4.synonyms.len(), 1);
    }
}
