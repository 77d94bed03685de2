//! IncrementalAlterConfigs: changes a topic's config overrides key by key.
//! SET and DELETE work on any topic-level key; APPEND and SUBTRACT on list
//! keys (`cleanup.policy`), starting from the topic's effective value when
//! it has no override. The resulting overrides are checked as a whole, so
//! a bad value changes nothing. Of a broker's settings (or the cluster
//! default's) only the replication throttles are dynamic
//! (`leader|follower.replication.throttled.rate`); the rest are static.

use super::Admin;
use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterableConfig, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use runnel_log::LogConfig;

use super::alter_configs::{
    Failure, check_topic_resource, duplicate_failure, duplicated, topic_failure,
};
use super::describe_configs::{ConfigType, RESOURCE_BROKER, topic_key};
use super::str_bytes;
use crate::replication::throttle;

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ConfigOp {
    key: String,
    op: Op,
}

/// Reads the changes of one resource, refusing what no state could make
/// valid: a key given twice, an unknown operation, a missing value, a list
/// operation on a key that holds no list.
fn parse_ops(configs: &[AlterableConfig]) -> Result<Vec<ConfigOp>, Failure> {
    let mut keys = BTreeSet::new();
    let mut ops = Vec::with_capacity(configs.len());
    for config in configs {
        let key = config.name.to_string();
        if !keys.insert(key.clone()) {
            let message = format!("config key {key} is given more than once");
            return Err((ResponseError::InvalidRequest, message));
        }
        let value = || {
            config
                .value
                .as_ref()
                .map(ToString::to_string)
                .ok_or_else(|| {
                    let message = format!("a null value is not supported for {key}");
                    (ResponseError::InvalidRequest, message)
                })
        };
        let list_value = |verb: &str| {
            if topic_key(&key).is_none_or(|k| k.config_type != ConfigType::List) {
                let message = format!("{verb} is only allowed for list configs, not for {key}");
                return Err((ResponseError::InvalidConfig, message));
            }
            value()
        };
        let op = match config.config_operation {
            0 => Op::Set(value()?),
            1 => Op::Delete,
            2 => Op::Append(list_value("APPEND")?),
            3 => Op::Subtract(list_value("SUBTRACT")?),
            other => {
                let message = format!(
                    "unknown config operation {other} for {key}; expected SET (0), DELETE (1), \
                     APPEND (2) or SUBTRACT (3)"
                );
                return Err((ResponseError::InvalidRequest, message));
            }
        };
        ops.push(ConfigOp { key, op });
    }
    Ok(ops)
}

/// Applies `ops` to a topic's overrides. A list without an override starts
/// from the value the topic has now, the broker's.
fn apply_ops(configs: &mut BTreeMap<String, String>, ops: &[ConfigOp], broker: &LogConfig) {
    let list = |configs: &BTreeMap<String, String>, key: &str| -> Vec<String> {
        let current = configs
            .get(key)
            .cloned()
            .unwrap_or_else(|| topic_key(key).map_or_else(String::new, |k| (k.render)(broker)));
        split(&current)
    };
    for ConfigOp { key, op } in ops {
        match op {
            Op::Set(value) => {
                configs.insert(key.clone(), value.clone());
            }
            Op::Delete => {
                configs.remove(key);
            }
            Op::Append(value) => {
                let mut items = list(configs, key);
                for item in split(value) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                configs.insert(key.clone(), items.join(","));
            }
            Op::Subtract(value) => {
                let remove = split(value);
                let mut items = list(configs, key);
                items.retain(|item| !remove.contains(item));
                configs.insert(key.clone(), items.join(","));
            }
        }
    }
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn handle(
    cx: &Admin<'_>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let duplicates = duplicated(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let result = if duplicates.contains(&(resource.resource_type, name)) {
            Err(duplicate_failure())
        } else if resource.resource_type == RESOURCE_BROKER {
            parse_ops(&resource.configs)
                .and_then(|ops| alter_broker(cx, name, &ops, request.validate_only))
        } else {
            check_topic_resource(resource.resource_type, name)
                .and_then(|()| parse_ops(&resource.configs))
                .and_then(|ops| {
                    cx.topics
                        .alter_topic_configs(name, request.validate_only, |configs| {
                            apply_ops(configs, &ops, &cx.config.log);
                        })
                        .map(drop)
                        .map_err(|err| topic_failure(&err))
                })
        };
        let mut out = AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name.clone();
        match result {
            Ok(()) => out.error_message = None,
            Err((error, message)) => {
                out.error_code = error.code();
                out.error_message = Some(str_bytes(message));
            }
        }
        response.responses.push(out);
    }
    response
}

/// A broker resource (`name` its id, or empty for the cluster default):
/// only the replication throttles are dynamic here, set or deleted.
fn alter_broker(
    cx: &Admin<'_>,
    name: &str,
    ops: &[ConfigOp],
    validate_only: bool,
) -> Result<(), Failure> {
    let broker = if name.is_empty() {
        None
    } else {
        Some(
            name.parse::<i32>()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| {
                    let message = format!("broker resource name {name:?} is not a broker id");
                    (ResponseError::InvalidRequest, message)
                })?,
        )
    };
    let mut changes = BTreeMap::new();
    for ConfigOp { key, op } in ops {
        let value = match op {
            Op::Set(value) => Some(value.clone()),
            Op::Delete => None,
            Op::Append(_) | Op::Subtract(_) => {
                let message = format!("{key} holds no list");
                return Err((ResponseError::InvalidConfig, message));
            }
        };
        // A static key is an invalid request, as Kafka answers it; a bad
        // rate an invalid config.
        throttle::check_dynamic(key).map_err(|message| (ResponseError::InvalidRequest, message))?;
        throttle::check_rate(key, value.as_deref().unwrap_or("0"))
            .map_err(|message| (ResponseError::InvalidConfig, message))?;
        changes.insert(key.clone(), value);
    }
    if validate_only {
        return Ok(());
    }
    cx.topics
        .alter_broker_configs(broker, &changes, crate::clock::now_ms())
        .map_err(|err| {
            let code = match err {
                crate::cluster_metadata::MetadataError::NotController { .. } => {
                    ResponseError::NotController
                }
                _ => ResponseError::UnknownServerError,
            };
            (code, runnel_http::error_chain(&err))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: &str, operation: i8, value: Option<&str>) -> AlterableConfig {
        let mut c = AlterableConfig::default();
        c.name = str_bytes(key);
        c.config_operation = operation;
        c.value = value.map(str_bytes);
        c
    }

    fn op(key: &str, op: Op) -> ConfigOp {
        ConfigOp {
            key: key.into(),
            op,
        }
    }

    fn failure(configs: &[AlterableConfig]) -> (i16, String) {
        let (error, message) = parse_ops(configs).expect_err("invalid");
        (error.code(), message)
    }

    #[test]
    fn parses_the_four_operations() {
        let ops = parse_ops(&[
            config("retention.ms", 0, Some("1000")),
            config("segment.ms", 1, None),
            config("cleanup.policy", 2, Some("compact")),
        ])
        .expect("valid");
        assert_eq!(
            ops,
            [
                op("retention.ms", Op::Set("1000".into())),
                op("segment.ms", Op::Delete),
                op("cleanup.policy", Op::Append("compact".into())),
            ]
        );
        let subtract = parse_ops(&[config("cleanup.policy", 3, Some("delete"))]).expect("valid");
        assert_eq!(
            subtract,
            [op("cleanup.policy", Op::Subtract("delete".into()))]
        );
    }

    #[test]
    fn refuses_what_no_topic_could_accept() {
        let invalid_request = ResponseError::InvalidRequest.code();
        let invalid_config = ResponseError::InvalidConfig.code();
        let twice = [config("a", 1, None), config("a", 0, Some("1"))];
        assert_eq!(
            failure(&twice),
            (
                invalid_request,
                "config key a is given more than once".into()
            )
        );
        let (code, message) = failure(&[config("retention.ms", 0, None)]);
        assert_eq!(code, invalid_request);
        assert!(message.contains("retention.ms"), "{message}");
        let (code, message) = failure(&[config("retention.ms", 2, Some("1"))]);
        assert_eq!(code, invalid_config);
        assert_eq!(
            message,
            "APPEND is only allowed for list configs, not for retention.ms"
        );
        assert_eq!(
            failure(&[config("no.such", 3, Some("x"))]).0,
            invalid_config
        );
        assert_eq!(
            failure(&[config("retention.ms", 9, Some("1"))]).0,
            invalid_request
        );
    }

    #[test]
    fn changes_a_topic_and_answers_each_resource() {
        use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource;

        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::broker::open_for_test(dir.path());
        broker
            .topics
            .create_topic("t", 1, 1, BTreeMap::new(), false, 0)
            .expect("create");
        let resource = |resource_type, name: &str, configs| {
            let mut r = AlterConfigsResource::default();
            r.resource_type = resource_type;
            r.resource_name = str_bytes(name);
            r.configs = configs;
            r
        };
        let mut request = IncrementalAlterConfigsRequest::default();
        request.resources = vec![
            resource(
                2,
                "t",
                vec![
                    config("retention.ms", 0, Some("1000")),
                    config("cleanup.policy", 2, Some("compact")),
                ],
            ),
            resource(2, "u", vec![config("retention.ms", 0, Some("1"))]),
            resource(4, "1", vec![config("num.partitions", 0, Some("2"))]),
        ];
        let response = handle(&super::Admin::of(&broker), request.clone());
        let codes: Vec<_> = response.responses.iter().map(|r| r.error_code).collect();
        let expected = [
            0,
            ResponseError::UnknownTopicOrPartition.code(),
            // Static: only the replication throttles are dynamic.
            ResponseError::InvalidRequest.code(),
        ];
        assert_eq!(codes, expected);
        assert_eq!(response.responses[0].error_message, None);
        let configs = broker.topics.topic("t").expect("t").configs.clone();
        let expected = BTreeMap::from([
            ("cleanup.policy".to_string(), "delete,compact".to_string()),
            ("retention.ms".to_string(), "1000".to_string()),
        ]);
        assert_eq!(configs, expected);
        let partition = broker.partition("t", 0).expect("log");
        assert!(partition.log().config().cleanup_policy.compact);
        for version in 0..=1 {
            let encoded = runnel_protocol::response::encode(
                kafka_protocol::messages::ApiKey::IncrementalAlterConfigs,
                version,
                1,
                &response,
            );
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
        }

        request.resources.truncate(1);
        request.resources[0].configs = vec![config("retention.ms", 0, Some("-5"))];
        let response = handle(&super::Admin::of(&broker), request);
        assert_eq!(
            response.responses[0].error_code,
            ResponseError::InvalidConfig.code()
        );
        let message = response.responses[0]
            .error_message
            .as_deref()
            .unwrap_or_default();
        assert!(
            message.contains("\"-5\" for log config retention.ms"),
            "{message}"
        );
        assert_eq!(broker.topics.topic("t").expect("t").configs, expected);
    }

    #[test]
    fn set_and_delete_touch_only_their_keys() {
        let mut configs = BTreeMap::from([
            ("retention.ms".to_string(), "1".to_string()),
            ("segment.ms".to_string(), "2".to_string()),
        ]);
        let ops = [
            op("retention.ms", Op::Delete),
            op("flush.ms", Op::Set("3".into())),
            op("not.there", Op::Delete),
        ];
        apply_ops(&mut configs, &ops, &LogConfig::default());
        let expected = BTreeMap::from([
            ("flush.ms".to_string(), "3".to_string()),
            ("segment.ms".to_string(), "2".to_string()),
        ]);
        assert_eq!(configs, expected);
    }

    #[test]
    fn append_and_subtract_start_from_the_effective_list() {
        let policy = |configs: &BTreeMap<String, String>| configs["cleanup.policy"].clone();
        let mut configs = BTreeMap::new();
        let broker = LogConfig::default();
        apply_ops(
            &mut configs,
            &[op("cleanup.policy", Op::Append("compact".into()))],
            &broker,
        );
        assert_eq!(policy(&configs), "delete,compact");
        apply_ops(
            &mut configs,
            &[op("cleanup.policy", Op::Append("delete, compact".into()))],
            &broker,
        );
        assert_eq!(policy(&configs), "delete,compact", "nothing new to append");
        apply_ops(
            &mut configs,
            &[op("cleanup.policy", Op::Subtract("delete".into()))],
            &broker,
        );
        assert_eq!(policy(&configs), "compact");

        let mut compacting = LogConfig::default();
        compacting.set("cleanup.policy", "compact").expect("valid");
        let mut configs = BTreeMap::new();
        apply_ops(
            &mut configs,
            &[op("cleanup.policy", Op::Append("delete".into()))],
            &compacting,
        );
        assert_eq!(policy(&configs), "compact,delete");
        let mut configs = BTreeMap::new();
        apply_ops(
            &mut configs,
            &[op("cleanup.policy", Op::Subtract("compact".into()))],
            &compacting,
        );
        assert_eq!(
            policy(&configs),
            "",
            "an empty list is left for validation to refuse"
        );
    }
}
