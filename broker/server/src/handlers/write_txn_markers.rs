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
use crate::txn_coordinator::TxnEnded;

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
                        Ok(_) => {
                            settles_offsets |= name == OFFSETS_TOPIC;
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
