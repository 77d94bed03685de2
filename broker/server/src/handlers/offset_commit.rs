//! OffsetCommit: committed offsets go to `__consumer_offsets` (the
//! partition `abs(hash(group)) % 50`, as Kafka) before they are answered.
//! A member of a group commits within its generation; a consumer that
//! `assign`s partitions commits outside any (generation -1, no member id)
//! while the group has no members.

use super::GroupPath;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use runnel_http::error_chain;

use crate::error_codes;
use crate::group_coordinator::Commit;

/// Kafka's `offset.metadata.max.bytes`.
const MAX_METADATA_BYTES: usize = 4096;

pub fn handle(
    cx: &GroupPath<'_>,
    request: OffsetCommitRequest,
    now_ms: i64,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let simple = request.generation_id_or_member_epoch < 0 && request.member_id.is_empty();
    let group_error = if group.is_empty() {
        Some(ResponseError::InvalidGroupId)
    } else if simple {
        // A commit outside any generation (an `assign` consumer) is taken
        // only while no member has joined, as Kafka.
        cx.groups
            .exists(&group)
            .then_some(ResponseError::UnknownMemberId)
    } else {
        cx.groups
            .check_member(
                &group,
                &request.member_id,
                request.generation_id_or_member_epoch,
            )
            .map(error_codes::group)
    };
    let mut commits = Vec::new();
    let mut response = OffsetCommitResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut out = OffsetCommitResponseTopic::default();
        out.name = topic.name;
        for partition in topic.partitions {
            let mut p = OffsetCommitResponsePartition::default();
            p.partition_index = partition.partition_index;
            let metadata = partition
                .committed_metadata
                .map(|m| m.to_string())
                .unwrap_or_default();
            let error = if let Some(error) = group_error {
                Some(error)
            } else if !cx.partition_exists(&name, partition.partition_index) {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if metadata.len() > MAX_METADATA_BYTES {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                commits.push(Commit {
                    topic: name.clone(),
                    partition: partition.partition_index,
                    offset: partition.committed_offset,
                    leader_epoch: partition.committed_leader_epoch,
                    metadata,
                    // v2-v4 may ask for a retention of their own, as Kafka honours.
                    expire_timestamp_ms: (request.retention_time_ms != -1)
                        .then(|| now_ms.saturating_add(request.retention_time_ms)),
                });
                None
            };
            p.error_code = error.map_or(0, |e| e.code());
            out.partitions.push(p);
        }
        response.topics.push(out);
    }
    if !commits.is_empty()
        && let Err(err) = cx.commit_offsets(&group, &commits, now_ms)
    {
        tracing::error!(group, error = %error_chain(&err), "storing committed offsets failed");
        let code = crate::error_codes::offsets(&err).code();
        for topic in &mut response.topics {
            for p in &mut topic.partitions {
                if p.error_code == 0 {
                    p.error_code = code;
                }
            }
        }
    }
    response
}
