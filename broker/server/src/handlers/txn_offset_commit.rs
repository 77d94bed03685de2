//! TxnOffsetCommit v0-3: a transactional producer's offsets for a group,
//! written to `__consumer_offsets` in its transaction; OffsetFetch sees
//! them once the transaction commits, never if it aborts. From v3 a
//! member's generation is checked as OffsetCommit checks it.

use super::TxnPath;
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use runnel_http::error_chain;

use crate::error_codes;
use crate::group_coordinator::Commit;
use crate::txn_coordinator::TxnRequestError;

pub fn handle(
    cx: &TxnPath<'_>,
    request: TxnOffsetCommitRequest,
    now_ms: i64,
) -> TxnOffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let producer = cx.txn_coordinator.check_producer(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
    );
    let checked = match producer {
        // On a cluster the group's coordinator is often not the
        // transaction's; as Kafka's, it takes the producer's word then.
        Err(TxnRequestError::NotCoordinator { .. }) if cx.metadata.quorum().is_some() => Ok(()),
        other => other,
    };
    let checked = checked
        .map_err(|err| error_codes::txn_request(&err).code())
        .and_then(|()| {
            if request.generation_id >= 0 {
                match cx
                    .groups
                    .check_member(&group, &request.member_id, request.generation_id)
                {
                    Some(error) => Err(error_codes::group(error).code()),
                    None => Ok(()),
                }
            } else {
                Ok(())
            }
        });
    let commits: Vec<Commit> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Commit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p
                    .committed_metadata
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
                expire_timestamp_ms: None,
            })
        })
        .collect();
    let code = match checked {
        Err(code) => code,
        Ok(()) => match cx.commit_txn_offsets(
            request.producer_id.0,
            request.producer_epoch,
            &group,
            &commits,
            now_ms,
        ) {
            Ok(()) => 0,
            Err(err) => {
                tracing::error!(group, error = %error_chain(&err), "cannot write transactional offsets");
                crate::error_codes::offsets(&err).code()
            }
        },
    };
    if code != 0 {
        tracing::debug!(group, transactional_id = %request.transactional_id.0, code, "TxnOffsetCommit refused");
    }
    let mut response = TxnOffsetCommitResponse::default();
    response.topics = request
        .topics
        .iter()
        .map(|t| {
            let mut topic = TxnOffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            topic.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = TxnOffsetCommitResponsePartition::default();
                    out.partition_index = p.partition_index;
                    out.error_code = code;
                    out
                })
                .collect();
            topic
        })
        .collect();
    response
}
