//! Metadata: the brokers and each partition's leader, replicas, ISR and
//! leader epoch as the metadata image has them; topics by name or (v10+)
//! id; auto-creation as Kafka does it, except that the topic is ready in
//! the same response. A quorum of one has no registered brokers: this
//! broker is then the only node, controller and leader of every partition.

use super::Admin;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use runnel_http::error_chain;
use std::collections::BTreeMap;
use uuid::Uuid;

use super::{str_bytes, topic_name};
use crate::topic_admin::TopicOpError;
use crate::topics::Topic;

pub fn handle(
    cx: &Admin<'_>,
    request: MetadataRequest,
    version: i16,
    now_ms: i64,
) -> MetadataResponse {
    let node = BrokerId(cx.config.node_id);
    let mut response = MetadataResponse::default();
    response.brokers = brokers(cx);
    if version >= 2 {
        response.cluster_id = Some(str_bytes(cx.config.cluster_id()));
    }
    if version >= 1 {
        // As Kafka's KRaft brokers: a live broker, for admin requests the
        // brokers forward; this one.
        response.controller_id = node;
    }

    let auto_create =
        cx.config.auto_create_topics_enable && (version < 4 || request.allow_auto_topic_creation);
    let wanted: Option<Vec<(Option<String>, Uuid)>> = match request.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => Some(
            topics
                .into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    response.topics = match wanted {
        None => cx
            .topics
            .topic_list()
            .iter()
            .map(|t| describe(cx, t, version))
            .collect(),
        Some(wanted) => wanted
            .into_iter()
            .map(|(name, id)| lookup(cx, name, id, auto_create, version, now_ms))
            .collect(),
    };
    response
}

/// The unfenced registered brokers by the listener this broker serves
/// clients on, or this broker alone when none registered (a quorum of
/// one).
pub(super) fn brokers(cx: &Admin<'_>) -> Vec<MetadataResponseBroker> {
    let (host, port) = cx.config.advertised();
    let listener = cx.config.client_listener_name();
    let image = cx.topics.image();
    let mut brokers: Vec<MetadataResponseBroker> = image
        .brokers()
        .filter(|b| !b.fenced)
        .filter_map(|b| {
            let endpoint = b.endpoints.iter().find(|e| e.name == listener)?;
            let mut r = MetadataResponseBroker::default();
            r.node_id = BrokerId(b.id);
            r.host = str_bytes(&endpoint.host);
            r.port = i32::from(endpoint.port);
            r.rack = b.rack.as_deref().map(str_bytes);
            Some(r)
        })
        .collect();
    if brokers.is_empty() {
        let mut b = MetadataResponseBroker::default();
        b.node_id = BrokerId(cx.config.node_id);
        b.host = str_bytes(host);
        b.port = port as i32;
        brokers.push(b);
    }
    brokers
}

fn lookup(
    cx: &Admin<'_>,
    name: Option<String>,
    id: Uuid,
    auto_create: bool,
    version: i16,
    now_ms: i64,
) -> MetadataResponseTopic {
    // A topic id, when given, is what the topic is looked up by (the Java
    // admin's describeTopics by id sends it with an empty name), as Kafka.
    let name = name.filter(|_| id.is_nil());
    let Some(name) = name else {
        let found = cx.topics.topic_by_id(id);
        return match found {
            Some(topic) => describe(cx, &topic, version),
            None => error_topic(None, id, ResponseError::UnknownTopicId, version),
        };
    };
    let existing = cx.topics.topic(&name);
    if let Some(topic) = existing {
        return describe(cx, &topic, version);
    }
    if !auto_create {
        return error_topic(
            Some(&name),
            id,
            ResponseError::UnknownTopicOrPartition,
            version,
        );
    }
    match cx
        .topics
        .create_topic(&name, -1, -1, BTreeMap::new(), false, now_ms)
    {
        Ok(topic) => describe(cx, &topic, version),
        Err(TopicOpError::AlreadyExists(_)) => match cx.topics.topic(&name) {
            Some(topic) => describe(cx, &topic, version),
            None => error_topic(
                Some(&name),
                id,
                ResponseError::UnknownTopicOrPartition,
                version,
            ),
        },
        Err(TopicOpError::InvalidName(err)) => {
            tracing::debug!(topic = name, %err, "not auto-creating a topic with an invalid name");
            error_topic(
                Some(&name),
                id,
                ResponseError::InvalidTopicException,
                version,
            )
        }
        Err(err) => {
            tracing::error!(topic = name, error = %error_chain(&err), "auto-creating a topic failed");
            error_topic(
                Some(&name),
                id,
                ResponseError::UnknownTopicOrPartition,
                version,
            )
        }
    }
}

/// A topic's entry; fields a version lacks stay at their defaults, which
/// the encoder requires.
fn describe(cx: &Admin<'_>, topic: &Topic, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(cx.config.node_id);
    let image = cx.topics.image();
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&topic.name));
    if version >= 10 {
        t.topic_id = topic.id;
    }
    t.is_internal = version >= 1 && topic.name.starts_with("__");
    t.partitions = (0..topic.partitions)
        .map(|index| {
            let mut p = MetadataResponsePartition::default();
            p.partition_index = index;
            let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
            match image.partition(&topic.name, index) {
                Some(state) => {
                    p.leader_id = BrokerId(state.leader);
                    if version >= 7 {
                        p.leader_epoch = state.leader_epoch;
                    }
                    p.replica_nodes = ids(&state.replicas);
                    p.isr_nodes = ids(&state.isr);
                    if state.leader < 0 {
                        p.error_code = ResponseError::LeaderNotAvailable.code();
                    }
                }
                None => {
                    p.leader_id = node;
                    p.replica_nodes = vec![node];
                    p.isr_nodes = vec![node];
                }
            }
            p
        })
        .collect();
    t
}

fn error_topic(
    name: Option<&str>,
    id: Uuid,
    error: ResponseError,
    version: i16,
) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = name.map(topic_name);
    if version >= 10 {
        t.topic_id = id;
    }
    t.error_code = error.code();
    t
}
