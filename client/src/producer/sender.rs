//! The producer's sender task: drains batches from the accumulator as
//! they fill or their linger runs out, groups them by partition leader and
//! sends one Produce request per broker, at most
//! `max.in.flight.requests.per.connection` at a time per broker; answers
//! each record's delivery from the response.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Semaphore;

use super::Shared;
use super::accumulator::Batch;
use crate::connection::Pending;
use crate::error::{ClientError, error_chain};

const PRODUCE_VERSION: i16 = 9;
const INIT_PRODUCER_ID_VERSION: i16 = 4;
/// Errors after which the partition's leader must be looked up again.
const STALE_METADATA: &[ResponseError] = &[
    ResponseError::UnknownTopicOrPartition,
    ResponseError::LeaderNotAvailable,
    ResponseError::NotLeaderOrFollower,
];
const LEADER_NOT_AVAILABLE: &str = "no leader known (LEADER_NOT_AVAILABLE)";

pub(super) async fn run(shared: Arc<Shared>) {
    let mut in_flight: HashMap<i32, Arc<Semaphore>> = HashMap::new();
    loop {
        if shared.accumulator().needs_producer_id() {
            if shared.closed.load(Ordering::Acquire) && shared.accumulator().is_empty() {
                return;
            }
            if shared.txn.is_some() {
                if shared.closed.load(Ordering::Acquire) {
                    return;
                }
                // init_transactions sets a transactional producer's id.
                let work = shared.work.notified();
                tokio::pin!(work);
                work.as_mut().enable();
                if shared.accumulator().needs_producer_id()
                    && !shared.closed.load(Ordering::Acquire)
                {
                    work.await;
                }
                continue;
            }
            match init_producer_id(&shared).await {
                Ok((producer_id, epoch)) => {
                    tracing::debug!(producer_id, epoch, "idempotent producer id");
                    shared.accumulator().set_producer_id(producer_id, epoch);
                }
                Err(err) => {
                    tracing::warn!(error = %error_chain(&err), "cannot get a producer id; trying again");
                    tokio::time::sleep(shared.config.retry_backoff).await;
                }
            }
            continue;
        }
        let work = shared.work.notified();
        tokio::pin!(work);
        work.as_mut().enable();
        let (batches, next) = shared
            .accumulator()
            .drain(shared.config.linger, Instant::now());
        if batches.is_empty() {
            if shared.closed.load(Ordering::Acquire) && shared.accumulator().is_empty() {
                return;
            }
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = &mut work => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => work.await,
            }
            continue;
        }
        for (node_id, batches) in by_leader(&shared, batches).await {
            let permits = in_flight
                .entry(node_id)
                .or_insert_with(|| Arc::new(Semaphore::new(shared.config.max_in_flight)));
            let Ok(permit) = Arc::clone(permits).acquire_owned().await else {
                continue;
            };
            // The request is queued on the connection here, in drain order
            // (a partition's batches reach the broker in sequence); only
            // the wait for its answer runs apart.
            let Some((pending, batches)) = send(&shared, node_id, batches).await else {
                continue;
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                answered(&shared, pending, batches).await;
                drop(permit);
            });
        }
    }
}

/// A producer id and epoch from any broker (InitProducerId without a
/// transactional id).
async fn init_producer_id(shared: &Shared) -> Result<(i64, i16), ClientError> {
    let node = shared.cluster.any_node().ok_or(ClientError::NoBroker {
        bootstrap: shared.config.bootstrap_servers.clone(),
    })?;
    let connection = shared.cluster.connection(node).await?;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(i32::MAX)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let response = connection.call(INIT_PRODUCER_ID_VERSION, &request).await?;
    if response.error_code != 0 {
        return Err(ClientError::kafka(
            "InitProducerId",
            "",
            -1,
            response.error_code,
        ));
    }
    Ok((response.producer_id.0, response.producer_epoch))
}

/// Groups batches by the broker leading their partition; a batch whose
/// leader cannot be learned fails.
async fn by_leader(shared: &Arc<Shared>, batches: Vec<Batch>) -> HashMap<i32, Vec<Batch>> {
    let mut grouped: HashMap<i32, Vec<Batch>> = HashMap::new();
    for batch in batches {
        let mut leader = leader_of(shared, &batch);
        if leader.is_none() {
            let _ = shared.cluster.refresh(&[batch.topic.as_str()], true).await;
            leader = leader_of(shared, &batch);
        }
        match leader {
            Some(node_id) => grouped.entry(node_id).or_default().push(batch),
            // LEADER_NOT_AVAILABLE: no broker leads the partition (or none
            // answers): retriable.
            None => retry_or_fail(shared, batch, LEADER_NOT_AVAILABLE.to_string()),
        }
    }
    grouped
}

fn leader_of(shared: &Shared, batch: &Batch) -> Option<i32> {
    let topic = shared.cluster.topic(&batch.topic)?;
    let leader = *topic.leaders.get(usize::try_from(batch.partition).ok()?)?;
    (leader >= 0).then_some(leader)
}

/// Queues one Produce request with `batches` (one per partition) on the
/// connection to `node_id`; returns what is waiting for an answer (nothing
/// with `acks=0`, or when the batches were already retried or failed).
async fn send(
    shared: &Arc<Shared>,
    node_id: i32,
    batches: Vec<Batch>,
) -> Option<(Pending<ProduceRequest>, Vec<Batch>)> {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    let mut encoded = Vec::with_capacity(batches.len());
    for mut batch in batches {
        match batch.encode(shared.config.compression) {
            Ok(bytes) => encoded.push((batch, bytes)),
            Err(err) => {
                let reason = err.to_string();
                let (topic, partition) = (batch.topic.clone(), batch.partition);
                fail(shared, batch, move || ClientError::Send {
                    topic: topic.clone(),
                    partition,
                    reason: reason.clone(),
                });
            }
        }
    }
    let mut batches = Vec::with_capacity(encoded.len());
    for (batch, bytes) in encoded {
        let data = PartitionProduceData::default()
            .with_index(batch.partition)
            .with_records(Some(bytes));
        match topics.iter_mut().find(|t| t.name.0.as_str() == batch.topic) {
            Some(topic) => topic.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(batch.topic.clone())))
                    .with_partition_data(vec![data]),
            ),
        }
        batches.push(batch);
    }
    if batches.is_empty() {
        return None;
    }
    // Kafka refuses transactional batches in a request that does not name
    // its transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    let transactional_id = shared
        .config
        .transactional_id
        .as_ref()
        .map(|id| TransactionalId(StrBytes::from_string(id.clone())));
    let request = ProduceRequest::default()
        .with_transactional_id(transactional_id)
        .with_acks(shared.config.acks)
        .with_timeout_ms(shared.config.timeout_ms())
        .with_topic_data(topics);
    let connection = match shared.cluster.connection(node_id).await {
        Ok(connection) => connection,
        Err(err) => {
            retry_all(shared, batches, &err);
            return None;
        }
    };
    if shared.config.acks == 0 {
        if let Err(err) = connection.send_only(PRODUCE_VERSION, &request).await {
            retry_all(shared, batches, &err);
            return None;
        }
        for batch in batches {
            complete(shared, batch, -1);
        }
        return None;
    }
    match connection.send(PRODUCE_VERSION, &request).await {
        Ok(pending) => Some((pending, batches)),
        Err(err) => {
            retry_all(shared, batches, &err);
            None
        }
    }
}

/// The broker's answer for the batches of one Produce request.
async fn answered(shared: &Arc<Shared>, pending: Pending<ProduceRequest>, batches: Vec<Batch>) {
    let response = match pending.response().await {
        Ok(response) => response,
        // The connection failed: the request may or may not have been
        // written; send it again (an idempotent producer's broker spots a
        // batch it already has).
        Err(err) => return retry_all(shared, batches, &err),
    };
    for batch in batches {
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == batch.topic)
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == batch.partition);
        match answer {
            Some(p) if p.error_code == 0 => complete(shared, batch, p.base_offset),
            Some(p) => {
                let code = p.error_code;
                let error = ResponseError::try_from_code(code);
                if error.is_some_and(|e| STALE_METADATA.contains(&e)) {
                    shared.cluster.invalidate(&batch.topic);
                }
                let retriable = error.is_some_and(|e| e.is_retriable())
                    || (error == Some(ResponseError::OutOfOrderSequenceNumber)
                        && shared.accumulator().has_earlier_unresolved(&batch));
                let (topic, partition) = (batch.topic.clone(), batch.partition);
                let error = ClientError::kafka("Produce", &topic, partition, code);
                if retriable {
                    retry_or_fail(shared, batch, error.to_string());
                } else {
                    fail(shared, batch, move || {
                        ClientError::kafka("Produce", &topic, partition, code)
                    });
                }
            }
            None => {
                let (topic, partition) = (batch.topic.clone(), batch.partition);
                fail(shared, batch, move || {
                    ClientError::kafka("Produce", &topic, partition, -1)
                });
            }
        }
    }
}

/// Answers each record of `batch` with its offset.
fn complete(shared: &Shared, batch: Batch, base_offset: i64) {
    batch.outcome.delivered(base_offset);
    shared.accumulator().resolved(&batch);
    shared.delivered(batch.records, batch.buffered);
    // A later batch of the partition may have been held back for this one.
    shared.work.notify_one();
}

/// Fails each record of `batch`. An idempotent producer's sequence cannot
/// go on past a batch that may or may not have been written: it takes a
/// new producer id before sending more.
fn fail(shared: &Shared, batch: Batch, error: impl Fn() -> ClientError + Send + Sync + 'static) {
    batch.outcome.failed(error);
    shared.accumulator().failed_for_good(&batch);
    if batch.transactional {
        shared.txn_failed.store(true, Ordering::Release);
    }
    shared.delivered(batch.records, batch.buffered);
    shared.work.notify_one();
}

fn retry_all(shared: &Arc<Shared>, batches: Vec<Batch>, error: &ClientError) {
    tracing::debug!(error = %error_chain(error), "produce request failed");
    for batch in batches {
        shared.cluster.invalidate(&batch.topic);
        retry_or_fail(shared, batch, error.to_string());
    }
}

/// Sends `batch` again after `retry.backoff.ms` when `retries` and
/// `delivery.timeout.ms` allow, else fails its records with `reason`.
fn retry_or_fail(shared: &Arc<Shared>, mut batch: Batch, reason: String) {
    let config = &shared.config;
    let in_time = batch.created.elapsed() + config.retry_backoff < config.delivery_timeout;
    if batch.attempts < config.retries && in_time {
        batch.attempts += 1;
        tracing::debug!(
            topic = batch.topic,
            partition = batch.partition,
            attempt = batch.attempts,
            reason,
            "retrying a batch"
        );
        shared.accumulator().landed(&batch);
        shared.work.notify_one();
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            tokio::time::sleep(shared.config.retry_backoff).await;
            shared.accumulator().retry(batch);
            shared.work.notify_one();
        });
        return;
    }
    let (topic, partition, attempts) = (batch.topic.clone(), batch.partition, batch.attempts);
    let reason = format!("{reason} (after {attempts} retries)");
    fail(shared, batch, move || ClientError::Send {
        topic: topic.clone(),
        partition,
        reason: reason.clone(),
    });
}
