//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3) and the first
//! offset at or after a timestamp, found through the time index. Max
//! timestamp answers the record that carries it, not its batch's last
//! offset, as Kafka does since 3.8 (KAFKA-16310).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use runnel_http::error_chain;

use super::DataPath;

const LATEST: i64 = -1;
const READ_COMMITTED: i8 = 1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

pub fn handle(
    path: &DataPath<'_>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    // v2+ carries it; older requests are read_uncommitted.
    let request_isolation = request.isolation_level;
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut out = ListOffsetsTopicResponse::default();
        out.name = topic.name;
        for partition in topic.partitions {
            let mut p = ListOffsetsPartitionResponse::default();
            p.partition_index = partition.partition_index;
            p.timestamp = -1;
            p.offset = -1;
            match path.led(&name, partition.partition_index) {
                None => p.error_code = path.not_hosted(&name, partition.partition_index).code(),
                Some(hosted) => {
                    if version >= 4 {
                        p.leader_epoch = hosted.leader_epoch();
                    }
                    let log = hosted.log();
                    let found = match partition.timestamp {
                        // read_committed consumers end at the last stable
                        // offset.
                        // Consumers end at the high watermark (at the last
                        // stable offset, read_committed ones).
                        LATEST if request_isolation == READ_COMMITTED => Ok(Some((
                            -1,
                            log.last_stable_offset().min(hosted.high_watermark()),
                        ))),
                        LATEST => Ok(Some((-1, hosted.high_watermark()))),
                        EARLIEST => Ok(Some((-1, log.log_start_offset()))),
                        // The first record with the largest timestamp:
                        // the first at or after it.
                        MAX_TIMESTAMP => match log.max_timestamp() {
                            Some((max, _)) => log
                                .offset_for_timestamp(max)
                                .map(|found| found.map(|(offset, ts)| (ts, offset))),
                            None => Ok(None),
                        },
                        timestamp => log
                            .offset_for_timestamp(timestamp)
                            .map(|found| found.map(|(offset, ts)| (ts, offset))),
                    };
                    match found {
                        Ok(Some((timestamp, offset))) => {
                            p.timestamp = timestamp;
                            p.offset = offset;
                        }
                        Ok(None) => {}
                        Err(err) => {
                            tracing::error!(topic = name, partition = partition.partition_index, error = %error_chain(&err), "offset lookup failed");
                            p.error_code = ResponseError::KafkaStorageError.code();
                        }
                    }
                }
            }
            out.partitions.push(p);
        }
        response.topics.push(out);
    }
    response
}
