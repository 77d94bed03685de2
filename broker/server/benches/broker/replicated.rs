//! Replicated produce: the produce step's load with `acks=all`, first on
//! one broker (replication factor 1), then on a cluster of three
//! (replication factor 3, `min.insync.replicas=2`), each on fresh data.
//!
//! The cluster is three combined nodes on this machine
//! (`support/cluster.rs`). The topic is created through node 1; the
//! timed part starts once every node's Metadata shows every partition with
//! a leader and three replicas in sync, and sends each partition's requests
//! to its leader, so the partitions' leaders, and the two followers that
//! fetch each of them, are spread over the three processes. With
//! `acks=all` a response comes back once the ISR holds the batch, so the
//! time is that of replicated data; afterwards (untimed) ListOffsets on
//! each leader must answer a high watermark at the end of what its
//! partition was acknowledged.
//!
//! Every process's CPU time is counted: the brokers' figure is the sum
//! over the three (leaders' appends, followers' fetches and appends, the
//! quorum's heartbeats), per GB produced once, not per GB written to disk.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use runnel_log::BatchHeader;
use tokio::runtime::Runtime;

use super::support::cluster::{Cluster, NODES, wait_for_isr};
use super::support::cpu::{Cost, Meter};
use super::support::process::BrokerProcess;
use super::support::wire::{Connection, create_replicated_topic, create_topic};
use super::{ACKS_ALL, BENCH, CLIENT_ID, Produced, TOPIC, produce_spread, topic_name};

const REPLICATION_FACTOR: i16 = 3;
const MIN_INSYNC_REPLICAS: &str = "2";
/// How long the new topic's replicas may take to join every ISR.
const ISR_DEADLINE: Duration = Duration::from_secs(60);
const LIST_OFFSETS_VERSION: i16 = 7;
const LATEST: i64 = -1;
/// ListOffsets from a consumer, not a follower.
const CONSUMER: i32 = -1;

/// The load of each of the two runs.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Produce requests of one batch each, spread over the partitions.
    pub batches: u64,
    pub partitions: i32,
    /// Produce requests in flight per partition's connection.
    pub in_flight: usize,
}

/// One timed run of the load with `acks=all`.
#[derive(Debug, Clone)]
pub struct Run {
    pub cost: Cost,
    /// On the cluster, each node's part (the cost sums them); empty for
    /// one broker.
    pub brokers: Vec<BrokerShare>,
    /// How long the broker or brokers took to stop (SIGTERM) afterwards.
    pub shutdown: Duration,
}

/// A node's id, its CPU seconds over the run and the partitions it led.
#[derive(Debug, Clone, Copy)]
pub struct BrokerShare {
    pub node_id: i32,
    pub cpu_seconds: f64,
    pub leaders: usize,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub bytes: u64,
    pub records: u64,
    pub one_broker: Run,
    pub three_brokers: Run,
}

pub fn run(dir: &Path, runtime: &Runtime, batch: &Bytes, load: Load) -> Result<Report> {
    let one_broker = one_broker(&dir.join("rf1-data"), runtime, batch, load)?;
    let three_brokers = three_brokers(&dir.join("rf3"), runtime, batch, load)?;
    Ok(Report {
        bytes: load.batches * batch.len() as u64,
        records: load.batches * records_per_batch(batch)?,
        one_broker,
        three_brokers,
    })
}

fn records_per_batch(batch: &[u8]) -> Result<u64> {
    Ok(u64::try_from(BatchHeader::parse(batch)?.records_count)?)
}

/// `runnel serve` alone on `data`, a topic of replication factor 1.
fn one_broker(data: &Path, runtime: &Runtime, batch: &Bytes, load: Load) -> Result<Run> {
    let mut broker = BrokerProcess::start(BENCH, data, &[])?;
    let outcome = runtime.block_on(async {
        let mut admin = Connection::open(broker.addr, CLIENT_ID).await?;
        create_topic(&mut admin, TOPIC, load.partitions).await?;
        let leaders = vec![broker.addr; load.partitions as usize];
        timed_produce(&[broker.pid()], &leaders, batch, load).await
    });
    let shutdown = broker.stop();
    let (cost, _) = outcome?;
    let shutdown = shutdown?;
    remove_dir(data)?;
    Ok(Run {
        cost,
        brokers: Vec::new(),
        shutdown,
    })
}

/// Three nodes under `root`, a topic of replication factor 3.
fn three_brokers(root: &Path, runtime: &Runtime, batch: &Bytes, load: Load) -> Result<Run> {
    let mut cluster = Cluster::start(BENCH, root)?;
    let outcome = runtime.block_on(async {
        let mut admin = Connection::open(cluster.addr(NODES[0])?, CLIENT_ID).await?;
        create_replicated_topic(
            &mut admin,
            TOPIC,
            load.partitions,
            REPLICATION_FACTOR,
            &[("min.insync.replicas", MIN_INSYNC_REPLICAS)],
        )
        .await?;
        // Every node, so that each leader knows it leads before it is sent
        // a batch; the leaders are the last node's view.
        let mut seen = Default::default();
        for id in NODES {
            seen = wait_for_isr(
                cluster.addr(id)?,
                CLIENT_ID,
                TOPIC,
                load.partitions,
                REPLICATION_FACTOR as usize,
                ISR_DEADLINE,
            )
            .await?;
        }
        let led_by: Vec<i32> = seen.values().map(|p| p.leader).collect();
        let leaders = led_by
            .iter()
            .map(|&id| cluster.addr(id))
            .collect::<Result<Vec<_>>>()?;
        let (cost, cpu_seconds) = timed_produce(&cluster.pids(), &leaders, batch, load).await?;
        let brokers = cluster
            .nodes
            .keys()
            .zip(cpu_seconds)
            .map(|(&node_id, cpu_seconds)| BrokerShare {
                node_id,
                cpu_seconds,
                leaders: led_by.iter().filter(|&&l| l == node_id).count(),
            })
            .collect();
        anyhow::Ok((cost, brokers))
    });
    let shutdown = cluster.stop();
    let (cost, brokers) = outcome?;
    let shutdown = shutdown?;
    remove_dir(root)?;
    Ok(Run {
        cost,
        brokers,
        shutdown,
    })
}

/// Produces the load with `acks=all`, partition `p` to `leaders[p]`, while
/// metering `pids`; then (untimed) checks each leader's high watermark.
/// The cost and each pid's CPU seconds.
async fn timed_produce(
    pids: &[u32],
    leaders: &[SocketAddr],
    batch: &Bytes,
    load: Load,
) -> Result<(Cost, Vec<f64>)> {
    let meter = Meter::start_brokers(pids)?;
    let produced = produce_spread(leaders, batch, load.batches, load.in_flight, ACKS_ALL).await?;
    let measured = meter.stop_per_broker()?;
    let records_per_batch = records_per_batch(batch)?;
    for (done, &leader) in produced.iter().zip(leaders) {
        check_high_watermark(leader, done, records_per_batch).await?;
    }
    Ok(measured)
}

/// ListOffsets latest on the partition's leader: its high watermark must
/// be the end of every batch acknowledged, and so of every batch sent.
async fn check_high_watermark(
    leader: SocketAddr,
    produced: &Produced,
    records_per_batch: u64,
) -> Result<()> {
    let partition = produced.partition;
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(CONSUMER))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name())
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(LATEST),
                ]),
        ]);
    let mut connection = Connection::open(leader, CLIENT_ID).await?;
    let response = connection.call(LIST_OFFSETS_VERSION, &request).await?;
    let answer = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .context("a ListOffsets response without its partition")?;
    ensure!(
        answer.error_code == 0,
        "ListOffsets of partition {partition} on {leader} failed: error {}",
        answer.error_code
    );
    let sent = i64::try_from(produced.responses * records_per_batch)?;
    ensure!(
        answer.offset == produced.end_offset && produced.end_offset == sent,
        "partition {partition}: high watermark {} on its leader {leader}, last acknowledged offset {} (end), {sent} records sent",
        answer.offset,
        produced.end_offset
    );
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))
}
