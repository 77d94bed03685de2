//! WriteTxnMarkers v1 (Kafka 4 has no v0): a transaction coordinator on another broker has
//! a transaction's markers written in the partitions this broker leads
//! (Kafka's coordinators send them to each partition's leader). A marker
//! in a `__consumer_offsets` partition also settles the transaction's
//! pending offsets in this broker's group coordinator.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::WriteTxnMarkersRequest;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
    WriteTxnMarkersResponse,
};
use runnel_http::error_chain;
use runnel_log::control::ControlType;

use super::{DataPath, GroupPath};
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::replica_manager::{Awaited, Wait, wait_replicated};
use crate::txn_coordinator::TxnEnded;

/// How long the markers may wait for the ISR.
const REPLICATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub fn handle(
    data: &DataPath<'_>,
    groups: &GroupPath<'_>,
    request: WriteTxnMarkersRequest,
    now_ms: i64,
) -> WriteTxnMarkersResponse {
    let mut response = WriteTxnMarkersResponse::default();
    for marker in request.markers {
        let kind = if marker.transaction_result {
            ControlType::Commit
        } else {
            ControlType::Abort
        };
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        let mut settles_offsets = false;
        // (topic index, partition index) in the result, and the wait for
        // the ISR to hold the marker.
        let mut written: Vec<((usize, usize), Wait)> = Vec::new();
        for topic in marker.topics {
            let name = topic.name.0.to_string();
            let mut out = WritableTxnMarkerTopicResult::default();
            out.name = topic.name;
            for partition in topic.partition_indexes {
                let error = match data.led(&name, partition) {
                    None => Some(data.not_hosted(&name, partition)),
                    Some(led) => match led.append_marker(
                        marker.producer_id.0,
                        marker.producer_epoch,
                        kind,
                        marker.coordinator_epoch,
                        now_ms,
                    ) {
                        Ok(appended) => {
                            settles_offsets |= name == OFFSETS_TOPIC;
                            let slot = (result.topics.len(), out.partitions.len());
                            let wait = (led, appended.info.last_offset + 1, appended.leader_epoch);
                            written.push((slot, wait));
                            None
                        }
                        Err(err) => {
                            tracing::error!(topic = %name, partition, error = %error_chain(&err), "cannot write a transaction marker");
                            Some(ResponseError::KafkaStorageError)
                        }
                    },
                };
                let mut p = WritableTxnMarkerPartitionResult::default();
                p.partition_index = partition;
                p.error_code = error.map_or(0, |e| e.code());
                out.partitions.push(p);
            }
            result.topics.push(out);
        }
        // Answered once the ISR holds them, as Kafka appends markers with
        // acks=-1: the coordinator sends those that were not again.
        let waits: Vec<Wait> = written.iter().map(|(_, w)| w.clone()).collect();
        for (((t, p), _), outcome) in written
            .iter()
            .zip(wait_replicated(&waits, REPLICATION_TIMEOUT))
        {
            let error = match outcome {
                Awaited::Reached => continue,
                Awaited::LeadershipLost => ResponseError::NotLeaderOrFollower,
                Awaited::TimedOut => ResponseError::RequestTimedOut,
            };
            result.topics[*t].partitions[*p].error_code = error.code();
        }
        if settles_offsets {
            groups.group_coordinator.txns_ended([TxnEnded {
                producer_id: marker.producer_id.0,
                committed: marker.transaction_result,
            }]);
        }
        response.markers.push(result);
    }
    response
}
