//! OffsetForLeaderEpoch (v2-v4): where a leader epoch ends in this
//! leader's log (KIP-101, KIP-320): the largest epoch at or below the one
//! asked and the first offset after it (the log end for the latest). A
//! consumer whose leader changed asks it for the epoch of its position,
//! and a position past the answer was truncated (the consumer resets, or
//! reports it). As Kafka: the leader answers, with the asked-for current
//! leader epoch checked (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH); an
//! epoch older than the log's oldest answers -1, -1.

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};

use super::DataPath;
use super::fetch::stale_epoch;

pub fn handle(
    path: &DataPath<'_>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = topic.topic;
        for asked in topic.partitions {
            let mut p = EpochEndOffset::default();
            p.partition = asked.partition;
            p.leader_epoch = -1;
            p.end_offset = -1;
            match path.led(&name, asked.partition) {
                None => p.error_code = path.not_hosted(&name, asked.partition).code(),
                Some(led) => {
                    if let Some(error) = stale_epoch(asked.current_leader_epoch, led.leader_epoch())
                    {
                        p.error_code = error.code();
                    } else if let Some((epoch, end)) =
                        led.log().end_offset_for_epoch(asked.leader_epoch)
                    {
                        p.leader_epoch = epoch;
                        p.end_offset = end;
                    }
                }
            }
            out.partitions.push(p);
        }
        response.topics.push(out);
    }
    response
}
