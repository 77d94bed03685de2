//! Topic creation under load: a producer's request latency while a topic of
//! many partitions is created, against its latency just before.
//!
//! One broker, a topic `bench` of one partition, and a producer sending it
//! Produce requests of one 16 KiB batch (acks=1) back to back with one in
//! flight, so that each request's latency is its own. After a baseline
//! window (from the producer's first response) a CreateTopics of a topic of
//! `partitions` partitions goes out on another connection; the producer
//! stops once it is answered. The baseline is the requests answered before
//! the CreateTopics was sent; "during" is those that overlap it (sent
//! before its response, answered after its request).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::produce_response::ProduceResponse;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

use super::support::process::BrokerProcess;
use super::support::wire::{Connection, connect, create_topic, read_response, request_frame};
use super::{BENCH, CLIENT_ID, CORRELATION_ID_AT, PRODUCE_VERSION, TOPIC, topic_name};

const CREATED_TOPIC: &str = "created";
/// Room for every request of a run without growing the list while timed.
const EXPECTED_REQUESTS: usize = 1 << 20;

/// Latency percentiles of a set of requests.
#[derive(Debug, Clone, Copy)]
pub struct Latencies {
    pub requests: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub partitions: i32,
    pub create: Duration,
    pub baseline: Latencies,
    pub during: Latencies,
}

/// One produce request's send and answer times.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sent: Instant,
    answered: Instant,
}

pub fn run(
    dir: &Path,
    runtime: &Runtime,
    batch: &Bytes,
    partitions: i32,
    baseline_window: Duration,
) -> Result<Report> {
    let mut broker = BrokerProcess::start(BENCH, &dir.join("create-data"), &[])?;
    let outcome = runtime.block_on(create_while_producing(
        &broker,
        batch,
        partitions,
        baseline_window,
    ));
    let stopped = broker.stop();
    let report = outcome?;
    stopped?;
    Ok(report)
}

async fn create_while_producing(
    broker: &BrokerProcess,
    batch: &Bytes,
    partitions: i32,
    baseline_window: Duration,
) -> Result<Report> {
    let mut admin = Connection::open(broker.addr, CLIENT_ID).await?;
    create_topic(&mut admin, TOPIC, 1).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let (first_tx, first_answer) = oneshot::channel();
    let producer = tokio::spawn(produce_until(
        broker.addr,
        batch.clone(),
        Arc::clone(&stop),
        first_tx,
    ));
    let window_start = first_answer
        .await
        .context("the producer ended before its first response")?;
    // The baseline window: a measurement, not a wait for a condition.
    tokio::time::sleep(baseline_window).await;

    let request_sent = Instant::now();
    let created = create_topic(&mut admin, CREATED_TOPIC, partitions).await;
    let answered = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let samples = producer.await.context("the producer panicked")??;
    created?;

    let baseline: Vec<Duration> = samples
        .iter()
        .filter(|s| s.sent >= window_start && s.answered <= request_sent)
        .map(|s| s.answered - s.sent)
        .collect();
    let during: Vec<Duration> = samples
        .iter()
        .filter(|s| s.sent < answered && s.answered > request_sent)
        .map(|s| s.answered - s.sent)
        .collect();
    Ok(Report {
        partitions,
        create: answered - request_sent,
        baseline: latencies(baseline).context("no produce request in the baseline window")?,
        during: latencies(during).context("no produce request during the creation")?,
    })
}

/// Produces one batch at a time to partition 0 of `bench` until `stop`;
/// sends the time of the first answer on `first`.
async fn produce_until(
    addr: std::net::SocketAddr,
    batch: Bytes,
    stop: Arc<AtomicBool>,
    first: oneshot::Sender<Instant>,
) -> Result<Vec<Sample>> {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name())
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch)),
                ]),
        ]);
    let mut frame = request_frame(CLIENT_ID, PRODUCE_VERSION, 0, &request)?;
    let mut stream = connect(addr).await?;
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut samples = Vec::with_capacity(EXPECTED_REQUESTS);
    let mut first = Some(first);
    let mut correlation_id = 0i32;
    while !stop.load(Ordering::Relaxed) {
        frame[CORRELATION_ID_AT..CORRELATION_ID_AT + 4]
            .copy_from_slice(&correlation_id.to_be_bytes());
        let sent = Instant::now();
        stream.write_all(&frame).await?;
        let response: ProduceResponse =
            read_response(&mut stream, &mut buf, PRODUCE_VERSION, correlation_id).await?;
        let answered = Instant::now();
        let error_code = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .context("a produce response without its partition")?
            .error_code;
        ensure!(error_code == 0, "produce failed: error {error_code}");
        samples.push(Sample { sent, answered });
        if let Some(first) = first.take() {
            let _ = first.send(answered);
        }
        correlation_id = correlation_id.wrapping_add(1);
    }
    Ok(samples)
}

/// Nearest-rank percentiles; `None` for no requests.
fn latencies(mut values: Vec<Duration>) -> Option<Latencies> {
    values.sort_unstable();
    let max = *values.last()?;
    let rank = |q: f64| values[((q * values.len() as f64).ceil() as usize).max(1) - 1];
    Some(Latencies {
        requests: values.len(),
        p50: rank(0.50),
        p99: rank(0.99),
        max,
    })
}
