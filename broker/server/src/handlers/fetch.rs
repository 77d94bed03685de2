//! Fetch: for each partition a file region of its log, from the batch
//! holding the fetch offset, within the partition and response byte limits
//! (the first batch goes whole even past them, as Kafka's "at least one
//! message" rule). While fewer than `min.bytes` are ready it waits, up to
//! `max.wait.ms`, woken by appends to the partitions it reads (and no
//! others). Consumers read below the high watermark. Fetch sessions are answered as
//! sessionless (session id 0), which every client accepts.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_request::FetchRequest;
use runnel_http::error_chain;
use runnel_log::{FileRegion, LogError, ReadInfo};
use runnel_protocol::fetch_writer::{
    self, AbortedTransaction, Chunk, DivergingEpoch, FetchPartitionData, FetchResponseData,
    FetchTopicData,
};
use runnel_protocol::request::Request;
use std::sync::Arc;
use tokio::time::Instant;

use super::{DataPath, HandlerError, Reply};
use crate::replica_manager::{Partition, Waiter};
use crate::replication::throttle;

/// Kafka's `FETCH_SESSION_ID_NOT_FOUND`: an incremental fetch on a session
/// this broker never created.
const NO_SESSION_EPOCH: i32 = -1;
const INITIAL_EPOCH: i32 = 0;

pub async fn handle(
    path: &DataPath<'_>,
    request: &Request,
    fetch: FetchRequest,
) -> Result<Reply, HandlerError> {
    let version = request.api_version;
    let correlation_id = request.header.correlation_id;
    if version >= 7 && !matches!(fetch.session_epoch, NO_SESSION_EPOCH | INITIAL_EPOCH) {
        let response = FetchResponseData {
            throttle_time_ms: 0,
            error_code: ResponseError::FetchSessionIdNotFound.code(),
            session_id: 0,
            topics: Vec::new(),
        };
        return write(version, correlation_id, response);
    }
    let deadline = Instant::now() + Duration::from_millis(fetch.max_wait_ms.max(0) as u64);
    let enough = |bytes: u64| bytes >= fetch.min_bytes.max(0) as u64;
    // A follower's fetch (Fetch up to v14 carries its replica id).
    let reader = match fetch.replica_id.0 {
        id if id >= 0 => Reader::Follower(id),
        _ => Reader::Consumer,
    };
    // The first look registers nowhere: most fetches of a busy partition
    // are answered by it.
    let (response, bytes, has_error) = read(path, &fetch, (version, reader), None);
    if enough(bytes) || has_error || Instant::now() >= deadline {
        return write(version, correlation_id, response);
    }
    let _waiting = path.metrics.fetch_waiting();
    let waiter = Waiter::new();
    loop {
        // Registered with each partition before it is read again, so an
        // append between this read and the sleep still wakes it.
        let (response, bytes, has_error) = read(path, &fetch, (version, reader), Some(&waiter));
        if enough(bytes) || has_error || Instant::now() >= deadline {
            return write(version, correlation_id, response);
        }
        if tokio::time::timeout_at(deadline, waiter.changed())
            .await
            .is_err()
        {
            let (response, _, _) = read(path, &fetch, (version, reader), None);
            return write(version, correlation_id, response);
        }
    }
}

/// Who fetches: a consumer reads below the high watermark; a follower
/// (its broker id) reads to the log end, and its fetch offset tells the
/// leader how far its log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Consumer,
    Follower(i32),
}

fn write(
    version: i16,
    correlation_id: i32,
    response: FetchResponseData<FileRegion>,
) -> Result<Reply, HandlerError> {
    fetch_writer::write(version, correlation_id, response)
        .map(Reply::Fetch)
        .map_err(|source| HandlerError::EncodeFetch { source })
}

/// Reads every requested partition once: the response, its record bytes,
/// and whether a partition had an error (which answers at once). With a
/// `waiter`, it is registered with each partition's high watermark (a
/// follower's: its log end) before the partition is read.
fn read(
    path: &DataPath<'_>,
    fetch: &FetchRequest,
    (version, reader): (i16, Reader),
    waiter: Option<&Waiter>,
) -> (FetchResponseData<FileRegion>, u64, bool) {
    let mut remaining = fetch.max_bytes.max(0) as u64;
    // Kafka's IsolationLevel: 1 is READ_COMMITTED (from v4).
    let read_committed = fetch.isolation_level == 1;
    let mut total = 0u64;
    let mut has_error = false;
    let mut topics = Vec::with_capacity(fetch.topics.len());
    for topic in &fetch.topics {
        let name = if version >= 13 {
            path.metadata
                .image()
                .topic_by_id(&topic.topic_id)
                .map(|t| t.name.clone())
        } else {
            Some(topic.topic.0.to_string())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let mut out = FetchPartitionData::new(wanted.partition);
            let partition = name.as_deref().and_then(|n| path.led(n, wanted.partition));
            let Some(partition) = partition else {
                has_error = true;
                out.error_code = match name.as_deref() {
                    None if version >= 13 => ResponseError::UnknownTopicId.code(),
                    None => ResponseError::UnknownTopicOrPartition.code(),
                    Some(name) => path.not_hosted(name, wanted.partition).code(),
                };
                partitions.push(out);
                continue;
            };
            if let Some(error) = stale_epoch(wanted.current_leader_epoch, partition.leader_epoch())
            {
                has_error = true;
                out.error_code = error.code();
                partitions.push(out);
                continue;
            }
            let max_bytes = (wanted.partition_max_bytes.max(0) as u64).min(remaining);
            let read = if let Reader::Follower(replica) = reader {
                if let Some(waiter) = waiter {
                    partition.watch_log_end(waiter);
                }
                read_for_follower(
                    path,
                    &partition,
                    wanted,
                    (replica, max_bytes, total == 0),
                    &mut out,
                )
            } else {
                if let Some(waiter) = waiter {
                    partition.watch_high_watermark(waiter);
                }
                let log = partition.log();
                // Consumers read below the high watermark; the last stable
                // offset is never past it.
                let high_watermark = partition.high_watermark();
                let last_stable = log.last_stable_offset().min(high_watermark);
                out.high_watermark = high_watermark;
                out.last_stable_offset = last_stable;
                out.log_start_offset = log.log_start_offset();
                if read_committed {
                    // Up to the last stable offset, with the aborted
                    // transactions the read overlaps for the consumer to
                    // drop.
                    out.aborted_transactions = Some(
                        log.aborted_transactions(wanted.fetch_offset, last_stable)
                            .into_iter()
                            .map(|t| AbortedTransaction {
                                producer_id: t.producer_id,
                                first_offset: t.first_offset,
                            })
                            .collect(),
                    );
                    log.read(
                        wanted.fetch_offset,
                        max_bytes,
                        Some(last_stable),
                        total == 0,
                    )
                } else {
                    log.read(
                        wanted.fetch_offset,
                        max_bytes,
                        Some(high_watermark),
                        total == 0,
                    )
                }
            };
            match read {
                Ok(info) => {
                    if let Some(region) = info.region {
                        total += region.length;
                        remaining = remaining.saturating_sub(region.length);
                        if let (Some(name), Reader::Consumer) = (&name, reader) {
                            path.metrics.record_fetch(name, region.length);
                        }
                        out.records = Some(vec![Chunk::Region(region)]);
                    }
                }
                Err(LogError::OffsetOutOfRange {
                    log_start_offset, ..
                }) => {
                    has_error = true;
                    out.error_code = ResponseError::OffsetOutOfRange.code();
                    // A follower starts over from the leader's log start
                    // or cuts back to its high watermark.
                    out.log_start_offset = log_start_offset;
                    out.high_watermark = partition.high_watermark();
                }
                Err(err) => {
                    has_error = true;
                    tracing::error!(topic = ?name, partition = wanted.partition, error = %error_chain(&err), "fetch read failed");
                    out.error_code = ResponseError::KafkaStorageError.code();
                }
            }
            partitions.push(out);
        }
        topics.push(FetchTopicData {
            name: topic.topic.0.clone(),
            topic_id: topic.topic_id.into_bytes(),
            partitions,
        });
    }
    let response = FetchResponseData {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        topics,
    };
    (response, total, has_error)
}

/// FENCED_LEADER_EPOCH for a fetch that knows an older leader epoch than
/// this leader's, UNKNOWN_LEADER_EPOCH for one that knows a newer one
/// (this broker has not seen it yet); -1 asks for no check (KIP-320).
pub(super) fn stale_epoch(asked: i32, current: i32) -> Option<ResponseError> {
    match asked {
        a if a < 0 => None,
        a if a < current => Some(ResponseError::FencedLeaderEpoch),
        a if a > current => Some(ResponseError::UnknownLeaderEpoch),
        _ => None,
    }
}

/// Reads for follower `replica`: to the log end, unless its last fetched
/// epoch ends earlier in this log than its fetch offset (then only where
/// it diverged, for it to cut its log back). The fetch offset is the
/// follower's log end: the high watermark may move, and a follower that
/// caught up joins the ISR.
fn read_for_follower(
    path: &DataPath<'_>,
    partition: &Arc<Partition>,
    wanted: &FetchPartition,
    (replica, max_bytes, first): (i32, u64, bool),
    out: &mut FetchPartitionData<FileRegion>,
) -> Result<ReadInfo, LogError> {
    let (read, log_end, epoch_start) = {
        let log = partition.log();
        out.log_start_offset = log.log_start_offset();
        let log_end = log.log_end_offset();
        let epoch_start = log
            .epoch_start_offset(partition.leader_epoch())
            .unwrap_or(log_end);
        if wanted.last_fetched_epoch >= 0 {
            let diverged = match log.end_offset_for_epoch(wanted.last_fetched_epoch) {
                Some((epoch, end))
                    if epoch == wanted.last_fetched_epoch && end >= wanted.fetch_offset =>
                {
                    None
                }
                Some((epoch, end)) => Some(DivergingEpoch {
                    epoch,
                    end_offset: end,
                }),
                None => Some(DivergingEpoch {
                    epoch: -1,
                    end_offset: -1,
                }),
            };
            if let Some(diverging) = diverged {
                out.diverging_epoch = Some(diverging);
                out.high_watermark = partition.high_watermark();
                out.last_stable_offset = out.high_watermark;
                return Ok(ReadInfo {
                    region: None,
                    log_start_offset: out.log_start_offset,
                    log_end_offset: log_end,
                });
            }
        }
        // A throttled replica catching up gets nothing while the leader's
        // reassignment throttle is spent (its fetch still counts below).
        let throttled = log
            .config()
            .leader_replication_throttled_replicas
            .contains(partition.index(), replica)
            && !partition
                .isr()
                .is_some_and(|(isr, _)| isr.contains(&replica));
        let read = if throttled {
            let rate = throttle::rate(
                &path.metadata.image(),
                path.metadata.node_id(),
                throttle::LEADER_RATE,
            );
            let now = std::time::Instant::now();
            let read = if path.leader_quota.exceeded(rate, now) {
                Ok(ReadInfo {
                    region: None,
                    log_start_offset: out.log_start_offset,
                    log_end_offset: log_end,
                })
            } else {
                log.read(wanted.fetch_offset, max_bytes, None, first)
            };
            if let Ok(ReadInfo {
                region: Some(region),
                ..
            }) = &read
            {
                path.leader_quota.record(rate, region.length, now);
            }
            read
        } else {
            log.read(wanted.fetch_offset, max_bytes, None, first)
        };
        (read, log_end, epoch_start)
    };
    if read.is_ok() {
        let now_ms = crate::clock::now_ms();
        let fetched = (log_end, epoch_start);
        if let Some(change) =
            partition.follower_fetched(replica, wanted.fetch_offset, fetched, now_ms)
        {
            path.isr_updates
                .propose(partition, change, partition.leader_epoch());
        }
    }
    // Taken after the fetch moved it: the follower learns it at once.
    out.high_watermark = partition.high_watermark();
    out.last_stable_offset = out.high_watermark;
    read
}
