//! The producer's sender task: drains batches from the accumulator as
//! they fill or their linger runs out, groups them by partition leader and
//! sends one Produce request per broker, at most
//! `max.in.flight.requests.per.connection` at a time per broker; answers
//! each record's delivery from the response.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Semaphore;

use super::Shared;
use super::accumulator::{Batch, RecordMetadata};
use crate::error::ClientError;

const PRODUCE_VERSION: i16 = 9;
/// Errors after which the partition's leader must be looked up again.
const STALE_METADATA: &[i16] = &[3, 5, 6];

pub(super) async fn run(shared: Arc<Shared>) {
    let mut in_flight: HashMap<i32, Arc<Semaphore>> = HashMap::new();
    loop {
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
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                send(&shared, node_id, batches).await;
                drop(permit);
            });
        }
    }
}

/// Groups batches by the broker leading their partition; a batch whose
/// leader cannot be learned fails.
async fn by_leader(shared: &Shared, batches: Vec<Batch>) -> HashMap<i32, Vec<Batch>> {
    let mut grouped: HashMap<i32, Vec<Batch>> = HashMap::new();
    for batch in batches {
        let mut leader = leader_of(shared, &batch);
        if leader.is_none() {
            let _ = shared.cluster.refresh(&[batch.topic.as_str()], true).await;
            leader = leader_of(shared, &batch);
        }
        match leader {
            Some(node_id) => grouped.entry(node_id).or_default().push(batch),
            None => {
                // LEADER_NOT_AVAILABLE: no broker leads the partition.
                let (topic, partition) = (batch.topic.clone(), batch.partition);
                fail(shared, batch, || {
                    ClientError::kafka("Produce", &topic, partition, 5)
                });
            }
        }
    }
    grouped
}

fn leader_of(shared: &Shared, batch: &Batch) -> Option<i32> {
    let topic = shared.cluster.topic(&batch.topic)?;
    let leader = *topic.leaders.get(usize::try_from(batch.partition).ok()?)?;
    (leader >= 0).then_some(leader)
}

/// One Produce request with `batches` (one per partition) to `node_id`.
async fn send(shared: &Shared, node_id: i32, batches: Vec<Batch>) {
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for batch in &batches {
        let data = PartitionProduceData::default()
            .with_index(batch.partition)
            .with_records(Some(Bytes::from(batch.builder.build())));
        match topics.iter_mut().find(|t| t.name.0.as_str() == batch.topic) {
            Some(topic) => topic.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(batch.topic.clone())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let request = ProduceRequest::default()
        .with_acks(shared.config.acks)
        .with_timeout_ms(shared.config.timeout_ms())
        .with_topic_data(topics);
    let connection = match shared.cluster.connection(node_id).await {
        Ok(connection) => connection,
        Err(err) => return fail_all(shared, batches, &err),
    };
    if shared.config.acks == 0 {
        if let Err(err) = connection.send_only(PRODUCE_VERSION, &request).await {
            return fail_all(shared, batches, &err);
        }
        for batch in batches {
            complete(shared, batch, -1);
        }
        return;
    }
    let response = match connection.call(PRODUCE_VERSION, &request).await {
        Ok(response) => response,
        Err(err) => return fail_all(shared, batches, &err),
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
                if STALE_METADATA.contains(&code) {
                    shared.cluster.invalidate(&batch.topic);
                }
                let (topic, partition) = (batch.topic.clone(), batch.partition);
                fail(shared, batch, || {
                    ClientError::kafka("Produce", &topic, partition, code)
                });
            }
            None => {
                let (topic, partition) = (batch.topic.clone(), batch.partition);
                fail(shared, batch, || {
                    ClientError::kafka("Produce", &topic, partition, -1)
                });
            }
        }
    }
}

/// Answers each record of `batch` with its offset.
fn complete(shared: &Shared, batch: Batch, base_offset: i64) {
    let count = batch.deliveries.len();
    for (i, delivery) in batch.deliveries.into_iter().enumerate() {
        let offset = if base_offset < 0 {
            -1
        } else {
            base_offset + i as i64
        };
        let _ = delivery.send(Ok(RecordMetadata {
            partition: batch.partition,
            offset,
        }));
    }
    shared.delivered(count);
}

fn fail(shared: &Shared, batch: Batch, error: impl Fn() -> ClientError) {
    let count = batch.deliveries.len();
    for delivery in batch.deliveries {
        let _ = delivery.send(Err(error()));
    }
    shared.delivered(count);
}

fn fail_all(shared: &Shared, batches: Vec<Batch>, error: &ClientError) {
    tracing::debug!(error = %error, "produce request failed");
    for batch in batches {
        let (topic, partition) = (batch.topic.clone(), batch.partition);
        let message = error.to_string();
        fail(shared, batch, || ClientError::Send {
            topic: topic.clone(),
            partition,
            reason: message.clone(),
        });
    }
}
