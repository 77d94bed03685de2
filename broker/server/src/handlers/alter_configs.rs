//! AlterConfigs: replaces the whole set of a topic's config overrides (a
//! key left out goes back to the broker's setting), checked as a whole
//! before it is stored, and applied to the live partition logs. Broker
//! settings are static here: they come from the broker's own configuration
//! at start, so altering them is INVALID_REQUEST.
//!
//! The checks shared with IncrementalAlterConfigs live here too.

use super::Admin;
use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};

use super::create_topics::error_code;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::str_bytes;
use crate::topic_admin::TopicOpError;
use runnel_http::error_chain;

/// Why a resource was not altered: the error and its message.
pub(super) type Failure = (ResponseError, String);

/// Checks that a resource names a topic, the one kind whose configs can
/// change here.
pub(super) fn check_topic_resource(resource_type: i8, name: &str) -> Result<(), Failure> {
    match resource_type {
        RESOURCE_TOPIC if name.is_empty() => Err((
            ResponseError::InvalidRequest,
            "default topic resources are not allowed".into(),
        )),
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER => Err((
            ResponseError::InvalidRequest,
            "broker configs are static here: set them in server.properties, RUNNEL_* \
             variables or --override, and restart the broker"
                .into(),
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!(
                "resource type {other} is not supported; only topic (2) configs can be altered"
            ),
        )),
    }
}

/// The resources named more than once in one request; Kafka fails each of
/// them rather than apply them in some order.
pub(super) fn duplicated<'a>(
    resources: impl IntoIterator<Item = (i8, &'a str)>,
) -> BTreeSet<(i8, &'a str)> {
    let mut seen = BTreeSet::new();
    resources
        .into_iter()
        .filter(|resource| !seen.insert(*resource))
        .collect()
}

pub(super) fn duplicate_failure() -> Failure {
    (
        ResponseError::InvalidRequest,
        "each resource must appear at most once in a request".into(),
    )
}

/// The error of a failed topic config change; the message carries the
/// causes, so an invalid value is named with its key.
pub(super) fn topic_failure(err: &TopicOpError) -> Failure {
    (error_code(err), error_chain(err))
}

pub fn handle(cx: &Admin<'_>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let duplicates = duplicated(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut response = AlterConfigsResponse::default();
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let result = if duplicates.contains(&(resource.resource_type, name)) {
            Err(duplicate_failure())
        } else {
            check_topic_resource(resource.resource_type, name).and_then(|()| {
                // As in Kafka, an entry without a value sets nothing.
                let configs: BTreeMap<String, String> = resource
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                cx.topics
                    .alter_topic_configs(name, request.validate_only, |current| {
                        *current = configs;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_topics_can_be_altered() {
        assert!(check_topic_resource(RESOURCE_TOPIC, "orders").is_ok());
        let code = |t, name| check_topic_resource(t, name).map_err(|(e, _)| e.code());
        let invalid_request = ResponseError::InvalidRequest.code();
        assert_eq!(code(RESOURCE_TOPIC, ""), Err(invalid_request));
        assert_eq!(code(RESOURCE_BROKER, "1"), Err(invalid_request));
        assert_eq!(code(8, "root"), Err(invalid_request));
        let (_, message) = check_topic_resource(RESOURCE_BROKER, "").expect_err("static");
        assert!(message.contains("static"), "{message}");
    }

    #[test]
    fn replaces_every_override() {
        use kafka_protocol::messages::alter_configs_request::{
            AlterConfigsResource, AlterableConfig,
        };

        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::broker::open_for_test(dir.path());
        let flush = BTreeMap::from([("flush.ms".to_string(), "10".to_string())]);
        broker
            .topics
            .create_topic("t", 1, 1, flush, false, 0)
            .expect("create");
        let entry = |name: &str, value: Option<&str>| {
            let mut c = AlterableConfig::default();
            c.name = str_bytes(name);
            c.value = value.map(str_bytes);
            c
        };
        let mut resource = AlterConfigsResource::default();
        resource.resource_type = RESOURCE_TOPIC;
        resource.resource_name = str_bytes("t");
        resource.configs = vec![
            entry("retention.ms", Some("1000")),
            entry("segment.ms", None),
        ];
        let mut request = AlterConfigsRequest::default();
        request.resources = vec![resource.clone(), resource];
        let response = handle(&super::Admin::of(&broker), request.clone());
        let duplicate = ResponseError::InvalidRequest.code();
        assert!(response.responses.iter().all(|r| r.error_code == duplicate));

        request.resources.truncate(1);
        let response = handle(&super::Admin::of(&broker), request);
        assert_eq!(response.responses[0].error_code, 0);
        let configs = broker.topics.topic("t").expect("t").configs.clone();
        let expected = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        assert_eq!(configs, expected);
        let partition = broker.partition("t", 0).expect("log");
        let log_config = partition.log().config().clone();
        assert_eq!(
            (log_config.retention_ms, log_config.flush_ms),
            (1000, i64::MAX)
        );
        for version in 0..=2 {
            let encoded = runnel_protocol::response::encode(
                kafka_protocol::messages::ApiKey::AlterConfigs,
                version,
                1,
                &response,
            );
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
        }
    }

    #[test]
    fn finds_duplicated_resources() {
        let resources = [(2, "a"), (4, "a"), (2, "b"), (2, "a"), (2, "a")];
        assert_eq!(duplicated(resources), BTreeSet::from([(2, "a")]));
        assert!(duplicated([(2, "a"), (2, "b")]).is_empty());
    }
}
