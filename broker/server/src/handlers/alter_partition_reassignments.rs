//! AlterPartitionReassignments (v0) and ListPartitionReassignments (v0):
//! moving a partition's replicas to other brokers (KIP-455), as Kafka's
//! `kafka-reassign-partitions.sh` and the operator's scale-down use them.
//! The controller starts or cancels each reassignment (another node
//! forwards the request, see `forward`); it completes by itself once the
//! new replicas are in sync (`controller::elections`). The list comes
//! from this node's image. Each partition gets Kafka's code:
//! UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT or
//! NO_REASSIGNMENT_IN_PROGRESS.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use kafka_protocol::messages::list_partition_reassignments_response::{
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
};
use runnel_http::error_chain;
use runnel_metadata::reassignment::{self, ReassignError, Reassignment};

use super::{Admin, str_bytes, topic_name};

pub fn alter(
    cx: &Admin<'_>,
    request: AlterPartitionReassignmentsRequest,
    now_ms: i64,
) -> AlterPartitionReassignmentsResponse {
    let mut response = AlterPartitionReassignmentsResponse::default();
    let asked: Vec<Reassignment> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                let target = p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
                ((t.name.0.to_string(), p.partition_index), target)
            })
        })
        .collect();
    let outcomes = match cx.topics.reassign_partitions(&asked, now_ms) {
        Ok(outcomes) => outcomes,
        Err(err) => {
            tracing::warn!(error = %error_chain(&err), "partition reassignment failed");
            response.error_code = match err {
                crate::cluster_metadata::MetadataError::NotController { .. } => {
                    ResponseError::NotController
                }
                _ => ResponseError::UnknownServerError,
            }
            .code();
            response.error_message = Some(str_bytes(err.to_string()));
            return response;
        }
    };
    let mut by_topic: BTreeMap<String, Vec<ReassignablePartitionResponse>> = BTreeMap::new();
    for (((topic, partition), _), outcome) in asked.into_iter().zip(outcomes) {
        let mut out = ReassignablePartitionResponse::default();
        out.partition_index = partition;
        if let Err(err) = outcome {
            out.error_code = match err {
                ReassignError::UnknownPartition(..) => ResponseError::UnknownTopicOrPartition,
                ReassignError::InvalidReplicaAssignment(..) => {
                    ResponseError::InvalidReplicaAssignment
                }
                ReassignError::NoReassignmentInProgress(..) => {
                    ResponseError::NoReassignmentInProgress
                }
            }
            .code();
            out.error_message = Some(str_bytes(err.to_string()));
        }
        by_topic.entry(topic).or_default().push(out);
    }
    response.responses = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut out = ReassignableTopicResponse::default();
            out.name = topic_name(&topic);
            out.partitions = partitions;
            out
        })
        .collect();
    response
}

pub fn list(
    cx: &Admin<'_>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let wanted: Option<Vec<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partition_indexes
                    .into_iter()
                    .map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for ongoing in reassignment::ongoing(&cx.topics.image()) {
        let key = (ongoing.topic.clone(), ongoing.partition);
        if wanted.as_ref().is_some_and(|w| !w.contains(&key)) {
            continue;
        }
        let ids = |ids: &[i32]| ids.iter().map(|id| BrokerId(*id)).collect();
        let mut out = OngoingPartitionReassignment::default();
        out.partition_index = ongoing.partition;
        out.replicas = ids(&ongoing.replicas);
        out.adding_replicas = ids(&ongoing.adding);
        out.removing_replicas = ids(&ongoing.removing);
        by_topic.entry(ongoing.topic).or_default().push(out);
    }
    let mut response = ListPartitionReassignmentsResponse::default();
    response.topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            let mut out = OngoingTopicReassignment::default();
            out.name = topic_name(&topic);
            out.partitions = partitions;
            out
        })
        .collect();
    response
}
