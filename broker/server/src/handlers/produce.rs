//! Produce: each partition's batches are validated and appended as they
//! came (only their headers are read); `acks=0` gets no response, and on
//! one broker `acks=-1` is done when the append is. An idempotent
//! producer's retry of a batch already written is answered with that
//! batch's offsets; a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER and an
//! old epoch INVALID_PRODUCER_EPOCH.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use runnel_log::LogError;
use runnel_log::batch::BatchError;
use runnel_log::manager::lock;
use runnel_log::producer_state::SequenceError;

use super::str_bytes;
use crate::broker::{Broker, error_chain};

/// `None` when the producer asked for no acknowledgement.
pub fn handle(
    broker: &Broker,
    request: ProduceRequest,
    version: i16,
    now_ms: i64,
) -> Option<ProduceResponse> {
    let acks_valid = matches!(request.acks, -1..=1);
    let mut appended = false;
    let mut response = ProduceResponse::default();
    for topic in request.topic_data {
        // Produce is served up to v9; topic ids replace names only from v13.
        let name = topic.name.0.to_string();
        let mut topic_response = TopicProduceResponse::default();
        topic_response.name = topic.name;
        topic_response.topic_id = topic.topic_id;
        for partition in topic.partition_data {
            let mut out = PartitionProduceResponse::default();
            out.index = partition.index;
            out.base_offset = -1;
            out.log_append_time_ms = -1;
            out.log_start_offset = -1;
            let result = if !acks_valid {
                Err((
                    ResponseError::InvalidRequiredAcks,
                    format!("acks must be -1, 0 or 1, not {}", request.acks),
                ))
            } else {
                append(
                    broker,
                    &name,
                    partition.index,
                    partition.records.as_deref(),
                    now_ms,
                )
            };
            match result {
                Ok((info, log_start_offset)) => {
                    appended = true;
                    out.base_offset = info.first_offset;
                    out.log_append_time_ms = info.log_append_time_ms.unwrap_or(-1);
                    if version >= 5 {
                        out.log_start_offset = log_start_offset;
                    }
                    if info.duplicate {
                        tracing::debug!(
                            topic = name,
                            partition = partition.index,
                            base_offset = info.first_offset,
                            "an idempotent producer's retry: answered with the first write's offsets"
                        );
                    } else {
                        broker
                            .metrics
                            .record_produce(&name, info.size_bytes, info.records_count);
                    }
                }
                Err((error, message)) => {
                    tracing::debug!(
                        topic = name,
                        partition = partition.index,
                        code = error.code(),
                        message,
                        "produce refused"
                    );
                    out.error_code = error.code();
                    if version >= 8 {
                        out.error_message = Some(str_bytes(message));
                    }
                }
            }
            topic_response.partition_responses.push(out);
        }
        response.responses.push(topic_response);
    }
    if appended {
        broker.notify_append();
    }
    (request.acks != 0).then_some(response)
}

fn append(
    broker: &Broker,
    topic: &str,
    partition: i32,
    records: Option<&[u8]>,
    now_ms: i64,
) -> Result<(runnel_log::AppendInfo, i64), (ResponseError, String)> {
    let Some(log) = broker.partition(topic, partition) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("this broker has no partition {topic}-{partition}"),
        ));
    };
    let records = records.unwrap_or_default();
    let mut log = lock(&log);
    let appended = if log.config().fsync_before_ack() {
        // An fsync per append (flush.messages=1) takes milliseconds: let
        // the runtime move this worker's other tasks elsewhere meanwhile.
        tokio::task::block_in_place(|| log.append(records, now_ms))
    } else {
        log.append(records, now_ms)
    };
    match appended {
        Ok(info) => {
            broker.storage.write_succeeded(log.dir(), &*broker.metrics);
            Ok((info, log.log_start_offset()))
        }
        Err(err) => {
            let code = error_code(&err);
            if code == ResponseError::KafkaStorageError {
                let dir = log.dir().to_path_buf();
                drop(log);
                broker
                    .storage
                    .write_failed(&dir, &error_chain(&err), &*broker.metrics);
            }
            Err((code, format!("{err}")))
        }
    }
}

/// Kafka's code for an append failure.
fn error_code(err: &LogError) -> ResponseError {
    match err {
        LogError::InvalidBatch { source, .. } => match source {
            BatchError::CrcMismatch { .. }
            | BatchError::TooShort { .. }
            | BatchError::Truncated { .. }
            | BatchError::LengthTooSmall { .. } => ResponseError::CorruptMessage,
            BatchError::UnsupportedMagic { .. }
            | BatchError::InvalidOffsetRange { .. }
            | BatchError::OffsetOutOfOrder { .. }
            | BatchError::UnknownCompression { .. } => ResponseError::InvalidRecord,
        },
        LogError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::EmptyAppend
        | LogError::ProducerBatchNotAlone { .. }
        | LogError::ControlBatchFromClient { .. } => ResponseError::InvalidRecord,
        LogError::Sequence { source, .. } => match source {
            SequenceError::OutOfOrder { .. } => ResponseError::OutOfOrderSequenceNumber,
            SequenceError::StaleEpoch { .. } => ResponseError::InvalidProducerEpoch,
        },
        _ => ResponseError::KafkaStorageError,
    }
}
