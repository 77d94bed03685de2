//! Parked fetches: what appends to one partition cost the broker while
//! fetches wait on other partitions, against the same appends with none
//! waiting.
//!
//! One broker, a topic `bench` of one partition that the produce step's
//! load (16 KiB batches, acks=1, pipelined) appends to, and a topic
//! `parked` of `PARKED_TOPIC_PARTITIONS` empty partitions. The appends run
//! twice: first alone, then while `parked` Fetch requests (min_bytes 1,
//! max_wait_ms one hour) wait on `parked`, one per connection: a connection
//! answers its requests in order (connection.rs), so a second fetch
//! pipelined on it would not wait until the first is answered. The parked
//! side is plain blocking sockets that are written once and never read, so
//! it costs no CPU while the appends are timed. The timed part starts once
//! the broker's `runnel_fetches_waiting` gauge counts them all.
//!
//! The broker is killed at the end rather than stopped: on SIGTERM it lets
//! each connection finish its request, which for a parked fetch is an hour.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::protocol::StrBytes;
use tokio::runtime::Runtime;

use super::support::cpu::{Cost, Meter};
use super::support::limits::raise_open_files;
use super::support::metrics::{gauge, wait_for_gauge};
use super::support::process::BrokerProcess;
use super::support::wire::{Connection, create_topic, request_frame};
use super::{ACKS_LEADER, BENCH, CLIENT_ID, FETCH_VERSION, TOPIC, produce_partition};

const PARKED_TOPIC: &str = "parked";
const PARKED_TOPIC_PARTITIONS: i32 = 16;
/// Far past any timed part, so no parked fetch is answered during it.
const PARKED_MAX_WAIT_MS: i32 = 3_600_000;
const FETCHES_WAITING: &str = "runnel_fetches_waiting";
/// Open files the bench and the broker need besides the parked connections.
const SPARE_OPEN_FILES: u64 = 1024;

/// The load of one run of the scenario.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Fetches to park, one connection each.
    pub parked: usize,
    /// Produce requests of one batch each, per timed part.
    pub batches: u64,
    /// Produce requests in flight on the producer's connection.
    pub in_flight: usize,
}

/// The appends' cost with no fetch parked and with `parked` parked.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub bytes: u64,
    pub parked: usize,
    pub alone: Cost,
    pub with_parked: Cost,
    /// The gauge at the end of the timed part with fetches parked.
    pub still_parked: f64,
}

pub fn run(dir: &Path, runtime: &Runtime, batch: &Bytes, load: Load) -> Result<Report> {
    // Before the broker starts, so that it inherits the limit.
    raise_open_files(load.parked as u64 + SPARE_OPEN_FILES)?;
    let broker = BrokerProcess::start(BENCH, &dir.join("parked-data"), &[])?;
    let metrics = broker
        .metrics_addr
        .context("the broker's ready line names no metrics address")?;
    runtime.block_on(async {
        let mut admin = Connection::open(broker.addr, CLIENT_ID).await?;
        create_topic(&mut admin, TOPIC, 1).await?;
        create_topic(&mut admin, PARKED_TOPIC, PARKED_TOPIC_PARTITIONS).await
    })?;
    let bytes = load.batches * batch.len() as u64;

    let alone = runtime.block_on(timed_appends(&broker, batch, load))?;

    let parked = park_fetches(broker.addr, load.parked)?;
    // Connecting is quick; the broker's accepting and reading 10,000
    // requests on a busy machine may take a while.
    let deadline = Duration::from_secs(60) + Duration::from_millis(load.parked as u64 * 10);
    wait_for_gauge(metrics, FETCHES_WAITING, load.parked as f64, deadline)
        .context("the fetches did not all park")?;
    let with_parked = runtime.block_on(timed_appends(&broker, batch, load))?;
    let still_parked = gauge(metrics, FETCHES_WAITING)?;

    drop(parked);
    // Killed: see the module doc.
    drop(broker);
    Ok(Report {
        bytes,
        parked: load.parked,
        alone,
        with_parked,
        still_parked,
    })
}

/// Appends `load.batches` batches to partition 0 of `bench`, timed.
async fn timed_appends(broker: &BrokerProcess, batch: &Bytes, load: Load) -> Result<Cost> {
    let meter = Meter::start(broker.pid())?;
    let produced = produce_partition(
        broker.addr,
        0,
        batch.clone(),
        load.batches,
        load.in_flight,
        ACKS_LEADER,
    )
    .await?;
    let cost = meter.stop()?;
    let bytes = load.batches * batch.len() as u64;
    ensure!(
        produced.bytes == bytes,
        "appended {} bytes, meant {bytes}",
        produced.bytes
    );
    Ok(cost)
}

/// Opens `count` connections and sends one fetch on each, at offset 0 of a
/// partition of the empty `parked` topic (spread round-robin); the
/// connections are returned unread, to be closed by dropping them.
fn park_fetches(addr: SocketAddr, count: usize) -> Result<Vec<TcpStream>> {
    let frames = (0..PARKED_TOPIC_PARTITIONS)
        .map(parked_fetch_frame)
        .collect::<Result<Vec<_>>>()?;
    let mut connections = Vec::with_capacity(count);
    for (n, frame) in frames.iter().cycle().take(count).enumerate() {
        let mut stream = TcpStream::connect(addr)
            .with_context(|| format!("cannot open parked connection {n} to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.write_all(frame)?;
        connections.push(stream);
    }
    Ok(connections)
}

fn parked_fetch_frame(partition: i32) -> Result<Vec<u8>> {
    let request = FetchRequest::default()
        .with_max_wait_ms(PARKED_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str(PARKED_TOPIC)))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    request_frame(CLIENT_ID, FETCH_VERSION, 0, &request)
}
