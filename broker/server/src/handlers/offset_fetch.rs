//! OffsetFetch: a group's committed offsets, -1 where none; all of them
//! when no topics are named; several groups at once from v8. With
//! `require_stable` (v7+, KIP-447) a partition that an open transaction has
//! committed an offset for answers UNSTABLE_OFFSET_COMMIT, so that the client
//! retries once the transaction ended.

use super::GroupPath;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};

use super::{str_bytes, topic_name};

/// One group's wanted partitions, `None` for all it has committed.
type Wanted = Option<Vec<(String, Vec<i32>)>>;

/// A partition's committed offset as OffsetFetch reports it.
struct Committed {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error_code: i16,
}

pub fn handle(
    cx: &GroupPath<'_>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        for group in request.groups {
            let id = group.group_id.0.to_string();
            let wanted: Wanted = group.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut out = OffsetFetchResponseGroup::default();
            out.group_id = group.group_id;
            for (topic, partitions) in committed(cx, &id, wanted, request.require_stable) {
                let mut t = OffsetFetchResponseTopics::default();
                t.name = topic_name(&topic);
                t.partitions = partitions
                    .into_iter()
                    .map(|c| {
                        let mut p = OffsetFetchResponsePartitions::default();
                        p.partition_index = c.partition;
                        p.committed_offset = c.offset;
                        p.committed_leader_epoch = c.leader_epoch;
                        p.metadata = Some(str_bytes(c.metadata));
                        p.error_code = c.error_code;
                        p
                    })
                    .collect();
                out.topics.push(t);
            }
            response.groups.push(out);
        }
        return response;
    }
    let id = request.group_id.0.to_string();
    let wanted: Wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    if id.is_empty() && version >= 2 {
        response.error_code = ResponseError::InvalidGroupId.code();
    }
    let require_stable = version >= 7 && request.require_stable;
    for (topic, partitions) in committed(cx, &id, wanted, require_stable) {
        let mut t = OffsetFetchResponseTopic::default();
        t.name = topic_name(&topic);
        t.partitions = partitions
            .into_iter()
            .map(|c| {
                let mut p = OffsetFetchResponsePartition::default();
                p.partition_index = c.partition;
                p.committed_offset = c.offset;
                if version >= 5 {
                    p.committed_leader_epoch = c.leader_epoch;
                }
                p.metadata = Some(str_bytes(c.metadata));
                p.error_code = c.error_code;
                p
            })
            .collect();
        response.topics.push(t);
    }
    response
}

/// The wanted partitions by topic, -1 offsets where nothing is committed;
/// with `require_stable`, -1 and UNSTABLE_OFFSET_COMMIT where an open
/// transaction has committed one.
fn committed(
    cx: &GroupPath<'_>,
    group: &str,
    wanted: Wanted,
    require_stable: bool,
) -> Vec<(String, Vec<Committed>)> {
    let wanted = wanted.unwrap_or_else(|| cx.group_coordinator.committed_partitions(group));
    wanted
        .into_iter()
        .map(|(topic, partitions)| {
            let found = partitions
                .into_iter()
                .map(|partition| {
                    let unstable = require_stable
                        && cx
                            .group_coordinator
                            .has_pending_txn_offset(group, &topic, partition);
                    match cx.group_coordinator.committed(group, &topic, partition) {
                        Some(c) if !unstable => Committed {
                            partition,
                            offset: c.offset,
                            leader_epoch: c.leader_epoch,
                            metadata: c.metadata,
                            error_code: 0,
                        },
                        _ => Committed {
                            partition,
                            offset: -1,
                            leader_epoch: -1,
                            metadata: String::new(),
                            error_code: if unstable {
                                ResponseError::UnstableOffsetCommit.code()
                            } else {
                                0
                            },
                        },
                    }
                })
                .collect();
            (topic, found)
        })
        .collect()
}
