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
//! A transactional producer's first batch of a transaction in a partition
//! is taken only once its coordinator said the partition is in the open
//! transaction (KIP-890, txn_verification.rs); else INVALID_TXN_STATE.
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
use runnel_log::batch::{BatchError, BatchHeader};
use runnel_log::producer_state::SequenceError;
use tokio::time::Instant;

use super::DataPath;
use super::str_bytes;
use crate::delivery::due_time::check_batches;
use crate::level_config::{DEFAULT_MAX_DELIVERY_DELAY_MS, LEVELS, MAX_DELIVERY_DELAY};
use crate::replica_manager::{
    Appended, Awaited, LeaderWriteError, Partition, TxnGuard, Wait, wait_for_high_watermarks,
};
use crate::txn_verification::TxnOf;

/// Why a partition's batches were refused: the code, a sentence, and the
/// index of the record at fault when one is.
type Refusal = (ResponseError, String, Option<i32>);

/// The partitions whose batch opens a transaction: the guard of their
/// verification, or why it failed.
type Verified = Vec<((String, i32), Result<TxnGuard, Refusal>)>;

/// What a produce request gets back.
#[derive(Debug)]
pub enum Answer {
    Response(ProduceResponse),
    /// `acks=0`, every batch written: no response.
    Nothing,
    /// `acks=0` and a partition refused (this broker no longer leads it,
    /// say): no response, and the connection is closed so that the
    /// producer looks its leaders up again, as Kafka does. The sentence
    /// names the first refusal.
    Close(String),
}

/// No response when the producer asked for no acknowledgement. With
/// `acks=all` the answer waits, up to the request's timeout, until every
/// partition's high watermark has passed its batches (at once while this
/// broker is the only replica).
pub async fn handle(
    path: &DataPath<'_>,
    request: ProduceRequest,
    version: i16,
    now_ms: i64,
) -> Answer {
    let acks_valid = matches!(request.acks, -1..=1);
    let deadline = Instant::now() + Duration::from_millis(request.timeout_ms.max(0) as u64);
    // (topic index, partition index) in the response, the partition, the
    // offset its high watermark must reach and the epoch of the append.
    let mut awaited: Vec<((usize, usize), Wait)> = Vec::new();
    let mut response = ProduceResponse::default();
    let mut verified = if path.txn_verifier.enabled() {
        verify_txn_batches(path, &request, deadline).await
    } else {
        Vec::new()
    };
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
                let verification = verified
                    .iter()
                    .position(|((t, p), _)| *t == name && *p == partition.index)
                    .map(|i| verified.swap_remove(i).1);
                match verification {
                    Some(Err(refusal)) => Err(refusal),
                    Some(Ok(guard)) => append(
                        path,
                        (&name, partition.index),
                        partition.records.as_ref(),
                        (entry_max_delay_ms, request.acks == -1, Some(guard)),
                        now_ms,
                    ),
                    None => append(
                        path,
                        (&name, partition.index),
                        partition.records.as_ref(),
                        (entry_max_delay_ms, request.acks == -1, None),
                        now_ms,
                    ),
                }
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
    if request.acks != 0 {
        return Answer::Response(response);
    }
    let refused = response.responses.iter().find_map(|t| {
        t.partition_responses
            .iter()
            .find(|p| p.error_code != 0)
            .map(|p| (&t.name, p))
    });
    match refused {
        None => Answer::Nothing,
        Some((topic, p)) => Answer::Close(format!(
            "an acks=0 produce to {}-{} was refused with error code {}",
            topic.0, p.index, p.error_code
        )),
    }
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

/// KIP-890: each partition of a transactional request whose batch would
/// open its producer's transaction there, verified with the transaction
/// coordinator in one request; nothing for any other request.
async fn verify_txn_batches(
    path: &DataPath<'_>,
    request: &ProduceRequest,
    deadline: Instant,
) -> Verified {
    let Some(transactional_id) = request.transactional_id.as_ref() else {
        return Vec::new();
    };
    let mut pending: Vec<((String, i32), TxnGuard, Arc<Partition>)> = Vec::new();
    for topic in &request.topic_data {
        for partition in &topic.partition_data {
            // A batch that does not parse is refused by the append.
            let Some(Ok(header)) = partition.records.as_deref().map(BatchHeader::parse) else {
                continue;
            };
            if !header.is_transactional() || header.is_control() || header.producer_id < 0 {
                continue;
            }
            let Some(target) = path.led(&topic.name.0, partition.index) else {
                continue;
            };
            if let Some(guard) =
                target.begin_txn_verification(header.producer_id, header.producer_epoch)
            {
                pending.push(((topic.name.0.to_string(), partition.index), guard, target));
            }
        }
    }
    let Some(&(_, first, _)) = pending.first() else {
        return Vec::new();
    };
    let txn = TxnOf {
        transactional_id: transactional_id.0.as_str(),
        producer_id: first.producer_id,
        producer_epoch: first.producer_epoch,
    };
    // One request carries one producer's batches.
    let partitions: Vec<(String, i32)> = pending
        .iter()
        .filter(|(_, guard, _)| same_producer(*guard, first))
        .map(|(tp, _, _)| tp.clone())
        .collect();
    let timeout = deadline.saturating_duration_since(Instant::now());
    let mut answers = path
        .txn_verifier
        .verify(txn, &partitions, timeout)
        .await
        .into_iter();
    pending
        .into_iter()
        .map(|(tp, guard, target)| {
            let answer = if same_producer(guard, first) {
                answers.next().unwrap_or(Ok(()))
            } else {
                Err((
                    ResponseError::InvalidTxnState,
                    format!(
                        "{}-{}: the request's transactional batches come from more than one producer",
                        tp.0, tp.1
                    ),
                ))
            };
            let result = answer.map(|()| guard).map_err(|(error, why)| {
                tracing::debug!(why, "a transactional batch was not verified");
                target.abandon_txn_verification(guard);
                (error, why, None)
            });
            (tp, result)
        })
        .collect()
}

fn same_producer(a: TxnGuard, b: TxnGuard) -> bool {
    (a.producer_id, a.producer_epoch) == (b.producer_id, b.producer_epoch)
}

/// Appends one partition's batches; `entry_max_delay_ms` is set for an
/// entry topic of delayed delivery, whose records' due times are checked
/// first; `acks_all` checks `min.insync.replicas`; `guard` is the
/// verification of a batch that opens a transaction.
fn append(
    path: &DataPath<'_>,
    (topic, partition): (&str, i32),
    records: Option<&Bytes>,
    (entry_max_delay_ms, acks_all, guard): (Option<i64>, bool, Option<TxnGuard>),
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
    match target.append_from_producer(
        records.map_or(&[][..], |r| &r[..]),
        (acks_all, guard),
        now_ms,
    ) {
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
        Err(err @ LeaderWriteError::TxnNotVerified { .. }) => Err((
            ResponseError::InvalidTxnState,
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
