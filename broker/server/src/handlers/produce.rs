//! Produce: each partition's batches are validated and appended as they
//! came (only their headers are read); `acks=0` gets no response, and
//! `acks=-1` waits for the high watermark (on one broker it is there when
//! the append is; on a cluster, when the ISR has the batch), is refused
//! with NOT_ENOUGH_REPLICAS while the ISR is smaller than
//! `min.insync.replicas`, and gets NOT_LEADER_OR_FOLLOWER when this broker
//! stops leading before the ISR took the batch. An idempotent
//! producer's retry of a batch already written is answered with that
//! batch's offsets; a sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER and an
//! old epoch INVALID_PRODUCER_EPOCH.
//!
//! An entry topic of delayed delivery (`delivery.levels`) is the one place
//! records are read on the way in: each record's due time header is
//! checked, and a batch with one that can't be taken gets INVALID_RECORD
//! naming the record and the header.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::ProduceRequest;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use runnel_log::LogError;
use runnel_log::batch::BatchError;
use runnel_log::producer_state::SequenceError;
use tokio::time::Instant;

use super::DataPath;
use super::str_bytes;
use crate::delivery::due_time::check_batches;
use crate::level_config::{DEFAULT_MAX_DELIVERY_DELAY_MS, LEVELS, MAX_DELIVERY_DELAY};
use crate::replica_manager::{
    Appended, Awaited, LeaderWriteError, Partition, Wait, wait_for_high_watermarks,
};

/// Why a partition's batches were refused: the code, a sentence, and the
/// index of the record at fault when one is.
type Refusal = (ResponseError, String, Option<i32>);

/// `None` when the producer asked for no acknowledgement. With `acks=all`
/// the answer waits, up to the request's timeout, until every partition's
/// high watermark has passed its batches (at once while this broker is
/// the only replica).
pub async fn handle(
    path: &DataPath<'_>,
    request: ProduceRequest,
    version: i16,
    now_ms: i64,
) -> Option<ProduceResponse> {
    let acks_valid = matches!(request.acks, -1..=1);
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    // (topic index, partition index) in the response, the partition, the
    // offset its high watermark must reach and the epoch of the append.
    let mut awaited: Vec<((usize, usize), Wait)> = Vec::new();
    let mut response = ProduceResponse::default();
    let image = path.metadata.image();
    for topic in request.topic_data {
        // Produce is served up to v9; topic ids replace names only from v13.
        let name = topic.name.0.to_string();
        let entry_max_delay_ms = image.topic_config(&name).and_then(|configs| {
            configs.get(LEVELS)?;
            Some(
                configs
                    .get(MAX_DELIVERY_DELAY)
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(DEFAULT_MAX_DELIVERY_DELAY_MS),
            )
        });
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
                    None,
                ))
            } else {
                append(
                    path,
                    (&name, partition.index),
                    partition.records.as_ref(),
                    (entry_max_delay_ms, request.acks == -1),
                    now_ms,
                )
            };
            match result {
                Ok((target, appended)) => {
                    let info = appended.info;
                    out.base_offset = info.first_offset;
                    out.log_append_time_ms = info.log_append_time_ms.unwrap_or(-1);
                    if version >= 5 {
                        out.log_start_offset = appended.log_start_offset;
                    }
                    if info.duplicate {
                        tracing::debug!(
                            topic = name,
                            partition = partition.index,
                            base_offset = info.first_offset,
                            "an idempotent producer's retry: answered with the first write's offsets"
                        );
                    } else {
                        path.metrics
                            .record_produce(&name, info.size_bytes, info.records_count);
                    }
                    if request.acks == -1 {
                        let slot = (
                            response.responses.len(),
                            topic_response.partition_responses.len(),
                        );
                        awaited.push((slot, (target, info.last_offset + 1, appended.leader_epoch)));
                    }
                }
                Err((error, message, record)) => {
                    tracing::debug!(
                        topic = name,
                        partition = partition.index,
                        code = error.code(),
                        message,
                        "produce refused"
                    );
                    out.error_code = error.code();
                    if version >= 8 {
                        if let Some(index) = record {
                            let mut record_error = BatchIndexAndErrorMessage::default();
                            record_error.batch_index = index;
                            record_error.batch_index_error_message =
                                Some(str_bytes(message.clone()));
                            out.record_errors.push(record_error);
                        }
                        out.error_message = Some(str_bytes(message));
                    }
                }
            }
            topic_response.partition_responses.push(out);
        }
        response.responses.push(topic_response);
    }
    if !awaited.is_empty() {
        let waits: Vec<Wait> = awaited.iter().map(|(_, wait)| wait.clone()).collect();
        let outcomes = wait_for_high_watermarks(&waits, deadline).await;
        for (((t, p), (partition, _, _)), outcome) in awaited.iter().zip(outcomes) {
            let refusal = match outcome {
                Awaited::Reached => not_enough_after_append(partition),
                Awaited::TimedOut => Some((
                    ResponseError::RequestTimedOut,
                    "the in-sync replicas did not take the batch within the request's timeout",
                )),
                Awaited::LeadershipLost => Some((
                    ResponseError::NotLeaderOrFollower,
                    "this broker stopped leading the partition before the in-sync replicas took the batch",
                )),
            };
            if let Some((error, why)) = refusal {
                let out = &mut response.responses[*t].partition_responses[*p];
                out.error_code = error.code();
                if version >= 8 {
                    out.error_message = Some(str_bytes(format!(
                        "{}-{}: {why}",
                        partition.topic(),
                        partition.index()
                    )));
                }
            }
        }
    }
    (request.acks != 0).then_some(response)
}

/// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below
/// `min.insync.replicas` while an `acks=all` batch waited, as Kafka's
/// `DelayedProduce`.
fn not_enough_after_append(partition: &Partition) -> Option<(ResponseError, &'static str)> {
    let min = partition.log().config().min_insync_replicas;
    (partition.in_sync_replicas() < usize::try_from(min).unwrap_or(usize::MAX)).then_some((
        ResponseError::NotEnoughReplicasAfterAppend,
        "the batch was written, but the ISR shrank below min.insync.replicas before it was acknowledged",
    ))
}

/// Appends one partition's batches; `entry_max_delay_ms` is set for an
/// entry topic of delayed delivery, whose records' due times are checked
/// first; `acks_all` checks `min.insync.replicas`.
fn append(
    path: &DataPath<'_>,
    (topic, partition): (&str, i32),
    records: Option<&Bytes>,
    (entry_max_delay_ms, acks_all): (Option<i64>, bool),
    now_ms: i64,
) -> Result<(Arc<Partition>, Appended), Refusal> {
    let Some(target) = path.led(topic, partition) else {
        return Err((
            path.not_hosted(topic, partition),
            format!("this broker does not lead partition {topic}-{partition}"),
            None,
        ));
    };
    if let (Some(max_delay_ms), Some(records)) = (entry_max_delay_ms, records) {
        check_batches(records, max_delay_ms, now_ms).map_err(|err| {
            (
                ResponseError::InvalidRecord,
                format!("entry topic {topic}: {err}"),
                Some(err.index),
            )
        })?;
    }
    // A storage failure marks the log dir failing in Partition::append.
    match target.append_from_producer(records.map_or(&[][..], |r| &r[..]), acks_all, now_ms) {
        Ok(appended) => Ok((target, appended)),
        Err(LeaderWriteError::NotLeader) => Err((
            ResponseError::NotLeaderOrFollower,
            format!("this broker no longer leads partition {topic}-{partition}"),
            None,
        )),
        Err(err @ LeaderWriteError::NotEnoughReplicas { .. }) => Err((
            ResponseError::NotEnoughReplicas,
            format!("{topic}-{partition}: {err}"),
            None,
        )),
        Err(LeaderWriteError::Log(err)) => Err((error_code(&err), format!("{err}"), None)),
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
