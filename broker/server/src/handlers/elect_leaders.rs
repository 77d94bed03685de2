//! ElectLeaders (v0-2): preferred (type 0) or unclean (type 1) leader
//! elections for the partitions asked (all of them when the list is null),
//! run by the controller as one metadata change (another node forwards
//! the request, see `forward`). Each partition gets Kafka's code:
//! ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
//! ELIGIBLE_LEADERS_NOT_AVAILABLE or UNKNOWN_TOPIC_OR_PARTITION.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use runnel_http::error_chain;
use runnel_metadata::elections::{ElectionError, ElectionType};

use super::{Admin, str_bytes, topic_name};

pub fn handle(
    cx: &Admin<'_>,
    request: ElectLeadersRequest,
    version: i16,
    now_ms: i64,
) -> ElectLeadersResponse {
    let mut response = ElectLeadersResponse::default();
    // v0 has no election type: preferred.
    let kind = match request.election_type {
        0 => ElectionType::Preferred,
        1 if version >= 1 => ElectionType::Unclean,
        other => {
            response.error_code = ResponseError::InvalidRequest.code();
            tracing::debug!(
                election_type = other,
                "ElectLeaders with an unknown election type"
            );
            return response;
        }
    };
    let asked: Option<Vec<(String, i32)>> = request.topic_partitions.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let outcomes = match cx.topics.elect_leaders(kind, asked.as_deref(), now_ms) {
        Ok(outcomes) => outcomes,
        Err(err) => {
            tracing::warn!(error = %error_chain(&err), "leader election failed");
            response.error_code = match err {
                crate::cluster_metadata::MetadataError::NotController { .. } => {
                    ResponseError::NotController
                }
                _ => ResponseError::UnknownServerError,
            }
            .code();
            return response;
        }
    };
    let mut by_topic: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
    for ((topic, partition), outcome) in outcomes {
        let mut result = PartitionResult::default();
        result.partition_id = partition;
        if let Err(err) = outcome {
            result.error_code = match err {
                ElectionError::UnknownPartition(..) => ResponseError::UnknownTopicOrPartition,
                ElectionError::NotNeeded(..) => ResponseError::ElectionNotNeeded,
                ElectionError::PreferredNotAvailable(..) => {
                    ResponseError::PreferredLeaderNotAvailable
                }
                ElectionError::EligibleNotAvailable(..) => {
                    ResponseError::EligibleLeadersNotAvailable
                }
            }
            .code();
            result.error_message = Some(str_bytes(err.to_string()));
        }
        by_topic.entry(topic).or_default().push(result);
    }
    response.replica_election_results = by_topic
        .into_iter()
        .map(|(topic, partition_result)| {
            let mut out = ReplicaElectionResult::default();
            out.topic = topic_name(&topic);
            out.partition_result = partition_result;
            out
        })
        .collect();
    response
}
