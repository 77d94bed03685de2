//! Throughput of the real `runnel serve` process over the Kafka protocol, as
//! a program that prints figures, next to the local limits it is bounded by.
//!
//! One run starts the `runnel` binary (built by Cargo for this bench, in the
//! bench profile) on free ports of 127.0.0.1 with a temporary log dir, and
//! measures:
//!
//! - produce: a raw load generator, one connection per partition, sends
//!   Produce v9 requests (acks=1) that each carry one prebuilt ~16 KiB
//!   RecordBatch of 15 x 1 KiB records, as a producer with `batch.size` =
//!   16 KiB sends them, with up to `in flight` requests pipelined per
//!   connection (responses come back in order);
//! - fetch: one connection per partition reads it all back with Fetch v12
//!   (max_bytes 50 MiB, partition_max_bytes 8 MiB), following offsets batch
//!   header by batch header; only headers are parsed;
//! - the broker's CPU time (user + system, all threads, from
//!   /proc/<pid>/stat) per GB in and per GB out, and the load generator's;
//! - the local limits, in the same run: sequential `write(2)` calls of the
//!   same 16 KiB batches to a file in the same temporary directory (fsync
//!   timed on its own), and loopback TCP with 1 MiB writes to a thread that
//!   reads and discards.
//!
//! Then two steps, each on a broker of its own, print how the broker's
//! work scales with what it holds rather than with the bytes it moves,
//! and a last one what replication costs:
//!
//! - parked fetches (`broker/parked_fetches.rs`): the produce load above on
//!   one partition, for an eighth of SIZE, first with no fetch waiting and
//!   then while 10,000 fetches (`RUNNEL_BENCH_PARKED_FETCHES`; 50 without
//!   `--bench`) wait on the partitions of another, empty topic, one per
//!   connection (the open files limit is raised for them, the broker's
//!   too). Printed: MB/s and broker CPU s/GB appended for each, and their
//!   ratios; appends should cost the same whether or not fetches wait on
//!   other partitions;
//! - topic creation (`broker/topic_creation.rs`): a producer sends one
//!   16 KiB batch at a time (acks=1, one request in flight) while a topic
//!   of 1,000 partitions (`RUNNEL_BENCH_CREATE_PARTITIONS`; 20 without
//!   `--bench`) is created on another connection. Printed: the producer's
//!   p50, p99 and max latency in a 3 s window before the CreateTopics and
//!   over the requests that overlap it, the ratio of the p99s, and how long
//!   the CreateTopics took; creating a topic should barely move the p99 of
//!   a producer to another;
//! - replicated produce (`broker/replicated.rs`): the produce load above
//!   with acks=all, for a quarter of SIZE (`RUNNEL_BENCH_REPLICATED_BYTES`),
//!   first on one broker (replication factor 1), then on a cluster of three
//!   combined nodes on this machine (replication factor 3,
//!   min.insync.replicas=2), each partition's requests sent to its leader
//!   once every node shows its ISR whole. Printed: MB/s, records/s, the
//!   brokers' CPU s/GB in (for three, their sum and each one's, with the
//!   partitions it leads), the load generator's, and the ratios; each
//!   partition's high watermark is checked afterwards (ListOffsets on its
//!   leader) to be the end of what was produced.
//!
//! Before anything is timed, a file of the benchmark's size is written and
//! deleted: on a VM the first touch of guest memory costs a host page fault
//! per page, which would otherwise be billed to whichever step ran first.
//! The disk and loopback limits are measured before the broker starts, so
//! its dirty pages do not slow the plain write down.
//!
//! Usage: `cargo bench -p runnel-broker --bench broker_bench [-- SIZE]`,
//! where SIZE (or `RUNNEL_BENCH_BYTES`) is the bytes to produce, e.g.
//! `512M`, `4G`; default 2 GiB (16 MiB when run without `--bench`, as
//! `cargo test --benches` does, to check it still works). Cargo builds the
//! `runnel` binary with the bench and passes its path in
//! `CARGO_BIN_EXE_runnel`; `RUNNEL_BENCH_BINARY` runs another one.
//! `RUNNEL_BENCH_PARTITIONS` (default 4) sets partitions and so connections,
//! `RUNNEL_BENCH_IN_FLIGHT` (default 8) the produce requests in flight per
//! connection, `RUNNEL_BENCH_REPLICATED_BYTES` (default SIZE / 4) the bytes
//! of each run of the replicated step, `RUNNEL_BENCH_DIR` the parent of the
//! temporary directory.
//! To compare two builds in one session, run the bench once per binary:
//! `RUNNEL_BENCH_BINARY=/path/to/old/runnel cargo bench -p runnel-broker
//! --bench broker_bench -- 512M`, then again with the new one.
//! A size past the kernel's dirty-page thresholds (`vm.dirty_background_ratio`
//! of memory) measures writeback to the device rather than the page cache,
//! for the broker and the plain write alike.
//!
//! Units: MB = 10^6 bytes, GB = 10^9 bytes. Broker, load generator and
//! kernel share the machine's cores, so on a small machine the load
//! generator's CPU is part of what limits the figures; both are printed.
//!
//! Code: what this bench shares with the others (the broker process, a
//! cluster of three, CPU meters, Kafka frames) is `support/`; the last
//! three steps are in `broker/`.

#[allow(dead_code)] // each bench uses a part of the support
#[path = "support/mod.rs"]
mod support;

#[path = "broker/parked_fetches.rs"]
mod parked_fetches;
#[path = "broker/replicated.rs"]
mod replicated;
#[path = "broker/topic_creation.rs"]
mod topic_creation;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream as StdTcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::produce_response::ProduceResponse;
use kafka_protocol::protocol::StrBytes;
use runnel_log::BatchHeader;
use runnel_log::{BatchBuilder, batch::HEADER_SIZE};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;

use support::cpu::{Cost, Meter};
use support::env_positive;
use support::process::BrokerProcess;
use support::wire::{Connection, connect, create_topic, read_response, request_frame};

const DEFAULT_BYTES: u64 = 2 << 30;
const SMOKE_TEST_BYTES: u64 = 16 << 20;
const DEFAULT_PARTITIONS: i32 = 4;
const DEFAULT_IN_FLIGHT: usize = 8;
/// The parked fetches step appends this share of the bytes produced.
const PARKED_STEP_SHARE: u64 = 8;
/// The replicated step produces this share of them, twice, by default.
const REPLICATED_STEP_SHARE: u64 = 4;
const DEFAULT_PARKED_FETCHES: usize = 10_000;
const SMOKE_TEST_PARKED_FETCHES: usize = 50;
const DEFAULT_CREATE_PARTITIONS: i32 = 1000;
const SMOKE_TEST_CREATE_PARTITIONS: i32 = 20;
const BASELINE_WINDOW: Duration = Duration::from_secs(3);
const SMOKE_TEST_BASELINE_WINDOW: Duration = Duration::from_millis(300);
const RECORD_BYTES: usize = 1024;
/// 15 records of 1 KiB plus record and batch overhead stay under 16 KiB.
const RECORDS_PER_BATCH: usize = 15;
const PRODUCE_VERSION: i16 = 9;
/// Produce `acks`: the leader's append, or the whole ISR's (`acks=all`).
const ACKS_LEADER: i16 = 1;
const ACKS_ALL: i16 = -1;
const FETCH_VERSION: i16 = 12;
const FETCH_MAX_BYTES: i32 = 50 << 20;
const FETCH_PARTITION_MAX_BYTES: i32 = 8 << 20;
const LOOPBACK_WRITE_BYTES: usize = 1 << 20;
const TOPIC: &str = "bench";
const BENCH: &str = "broker_bench";
const CLIENT_ID: &str = "broker-bench";
/// Where the correlation id sits in a request frame: after the size prefix
/// (4 bytes), api key (2) and api version (2).
const CORRELATION_ID_AT: usize = 8;

fn main() {
    support::exit_on_error(BENCH, run());
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    target_bytes: u64,
    replicated_bytes: u64,
    partitions: i32,
    in_flight: usize,
    parked_fetches: usize,
    create_partitions: i32,
    baseline_window: Duration,
}

fn run() -> Result<()> {
    let settings = settings()?;
    let dir = support::temp_dir("runnel-broker-bench-")?;

    let batch = one_batch();
    let batches = settings.target_bytes.div_ceil(batch.len() as u64);
    let total_bytes = batches * batch.len() as u64;
    let total_records = batches * RECORDS_PER_BATCH as u64;
    eprintln!(
        "broker_bench: {batches} batches of {} bytes ({:.2} GB) over {} partitions in {}",
        batch.len(),
        total_bytes as f64 / 1e9,
        settings.partitions,
        dir.path().display()
    );

    let warm_up_path = dir.path().join("warm-up.bin");
    plain_writes(&warm_up_path, &batch, batches)?;
    std::fs::remove_file(&warm_up_path)?;

    let plain_path = dir.path().join("plain.bin");
    let (disk, disk_fsync) = plain_writes(&plain_path, &batch, batches)?;
    std::fs::remove_file(&plain_path)?;
    let loopback = loopback_tcp(total_bytes)?;

    let log_dir = dir.path().join("data");
    let mut broker = BrokerProcess::start(BENCH, &log_dir, &[])?;
    let runtime = support::load_generator_runtime()?;
    let phases = runtime.block_on(produce_and_fetch(
        &broker,
        settings,
        Bytes::from(batch.clone()),
        batches,
    ));
    let shutdown = broker.stop();
    let (produce, fetch) = phases?;
    let shutdown = shutdown?;
    ensure!(
        produce.bytes == total_bytes,
        "produced {} bytes, meant {total_bytes}",
        produce.bytes
    );
    ensure!(
        fetch.bytes == total_bytes,
        "fetched {} bytes of whole batches, produced {total_bytes}",
        fetch.bytes
    );

    let gb = total_bytes as f64 / 1e9;
    println!();
    println!(
        "runnel broker benchmark: {gb:.2} GB, {} partitions (one connection each), {} produce requests in flight per connection",
        settings.partitions, settings.in_flight
    );
    println!(
        "({RECORDS_PER_BATCH} x 1 KiB records per {:.1} KiB batch; untimed warm-up write first; MB = 10^6 bytes, GB = 10^9 bytes;",
        batch.len() as f64 / 1024.0
    );
    println!(
        " fetch reads from a warm page cache; broker, load generator and kernel share {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "produce  1KiB records, 16KiB batches, acks=1: {:7.1} MB/s, {:5.0}k records/s, broker {:.2} CPU s/GB in, load generator {:.2} CPU s/GB, machine {:.0}% busy",
        mb_per_s(total_bytes, produce.cost.wall),
        total_records as f64 / produce.cost.wall.as_secs_f64() / 1e3,
        produce.cost.broker_cpu_seconds / gb,
        produce.cost.client_cpu_seconds / gb,
        100.0 * produce.cost.machine_busy,
    );
    println!(
        "fetch    v12, 8MiB per partition, 50MiB max:  {:7.1} MB/s, {:5.0}k records/s, broker {:.2} CPU s/GB out, load generator {:.2} CPU s/GB, machine {:.0}% busy ({} responses)",
        mb_per_s(total_bytes, fetch.cost.wall),
        total_records as f64 / fetch.cost.wall.as_secs_f64() / 1e3,
        fetch.cost.broker_cpu_seconds / gb,
        fetch.cost.client_cpu_seconds / gb,
        100.0 * fetch.cost.machine_busy,
        fetch.responses,
    );
    println!(
        "limit: disk sequential write(2), 16KiB calls: {:7.1} MB/s, + fsync {:.2} s ({:.1} MB/s including it)",
        mb_per_s(total_bytes, disk),
        disk_fsync.as_secs_f64(),
        mb_per_s(total_bytes, disk + disk_fsync)
    );
    println!(
        "limit: loopback TCP, 1MiB writes:             {:7.1} MB/s",
        mb_per_s(total_bytes, loopback)
    );
    println!(
        "produce is {:.0}% of the disk write limit; fetch is {:.0}% of loopback TCP; broker stopped (SIGTERM, flush included) in {:.2} s",
        100.0 * disk.as_secs_f64() / produce.cost.wall.as_secs_f64(),
        100.0 * loopback.as_secs_f64() / fetch.cost.wall.as_secs_f64(),
        shutdown.as_secs_f64()
    );

    // The next steps each start a broker of their own; this one's data
    // would only hold disk and page cache.
    std::fs::remove_dir_all(&log_dir)
        .with_context(|| format!("cannot remove {}", log_dir.display()))?;
    let batch = Bytes::from(batch);
    let load = parked_fetches::Load {
        parked: settings.parked_fetches,
        batches: (batches / PARKED_STEP_SHARE).max(1),
        in_flight: settings.in_flight,
    };
    print_parked(&parked_fetches::run(dir.path(), &runtime, &batch, load)?);
    print_creation(&topic_creation::run(
        dir.path(),
        &runtime,
        &batch,
        settings.create_partitions,
        settings.baseline_window,
    )?);
    let load = replicated::Load {
        batches: settings.replicated_bytes.div_ceil(batch.len() as u64),
        partitions: settings.partitions,
        in_flight: settings.in_flight,
    };
    print_replicated(&replicated::run(dir.path(), &runtime, &batch, load)?);
    Ok(())
}

fn print_replicated(report: &replicated::Report) {
    let gb = report.bytes as f64 / 1e9;
    let line = |what: &str, run: &replicated::Run, brokers: &str| {
        let cost = &run.cost;
        println!(
            "produce  {what:<36} {:7.1} MB/s, {:5.0}k records/s, {brokers} {:.2} CPU s/GB in{}, load generator {:.2} CPU s/GB, machine {:.0}% busy",
            mb_per_s(report.bytes, cost.wall),
            report.records as f64 / cost.wall.as_secs_f64() / 1e3,
            cost.broker_cpu_seconds / gb,
            if run.brokers.is_empty() {
                ""
            } else {
                " (sum of three)"
            },
            cost.client_cpu_seconds / gb,
            100.0 * cost.machine_busy,
        );
    };
    let (one, three) = (&report.one_broker, &report.three_brokers);
    line("RF=1 acks=all, one broker:", one, "broker");
    line("RF=3 acks=all, three brokers:", three, "brokers");
    let shares: Vec<String> = three
        .brokers
        .iter()
        .map(|b| {
            format!(
                "node {} {:.2} (leads {})",
                b.node_id,
                b.cpu_seconds / gb,
                b.leaders
            )
        })
        .collect();
    println!(
        "         RF=3 per broker, CPU s/GB in: {}",
        shares.join(", ")
    );
    println!(
        "replication factor 3 (min.insync.replicas=2): {:.2}x the throughput of 1, {:.2}x the broker CPU per GB in ({:.0} MB produced each time; every partition's high watermark on its leader at the end of what was produced; stopped in {:.2} s and {:.2} s)",
        one.cost.wall.as_secs_f64() / three.cost.wall.as_secs_f64(),
        three.cost.broker_cpu_seconds / one.cost.broker_cpu_seconds,
        report.bytes as f64 / 1e6,
        one.shutdown.as_secs_f64(),
        three.shutdown.as_secs_f64(),
    );
}

fn print_parked(report: &parked_fetches::Report) {
    let gb = report.bytes as f64 / 1e9;
    let line = |parked: usize, cost: &Cost| {
        println!(
            "appends to 1 partition, {parked:5} fetches parked on others: {:7.1} MB/s, broker {:.2} CPU s/GB in, load generator {:.2} CPU s/GB, machine {:.0}% busy",
            mb_per_s(report.bytes, cost.wall),
            cost.broker_cpu_seconds / gb,
            cost.client_cpu_seconds / gb,
            100.0 * cost.machine_busy,
        );
    };
    line(0, &report.alone);
    line(report.parked, &report.with_parked);
    println!(
        "{} parked fetches: {:.2}x the broker CPU per GB appended, {:.2}x the throughput ({:.0} MB appended each time; {} fetches still parked at the end)",
        report.parked,
        report.with_parked.broker_cpu_seconds / report.alone.broker_cpu_seconds,
        report.alone.wall.as_secs_f64() / report.with_parked.wall.as_secs_f64(),
        report.bytes as f64 / 1e6,
        report.still_parked,
    );
}

fn print_creation(report: &topic_creation::Report) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let line = |when: &str, l: &topic_creation::Latencies| {
        println!(
            "producer latency, 16KiB batches, one in flight, {when}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} requests)",
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            l.requests,
        );
    };
    line("before creating a topic", &report.baseline);
    line("while creating one     ", &report.during);
    println!(
        "creating a topic of {} partitions took {:.2} s; the producer's p99 latency meanwhile is {:.2}x the baseline",
        report.partitions,
        report.create.as_secs_f64(),
        report.during.p99.as_secs_f64() / report.baseline.p99.as_secs_f64(),
    );
}

fn settings() -> Result<Settings> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size = match args.iter().find(|a| !a.starts_with('-')) {
        Some(arg) => Some(arg.clone()),
        None => std::env::var("RUNNEL_BENCH_BYTES").ok(),
    };
    let target_bytes = match size {
        Some(value) => parse_size(&value).with_context(|| {
            format!("size {value:?} is not a byte count such as 512M, 2G or 1048576")
        })?,
        None if support::full_size() => DEFAULT_BYTES,
        None => SMOKE_TEST_BYTES,
    };
    let replicated_bytes = match std::env::var("RUNNEL_BENCH_REPLICATED_BYTES") {
        Ok(value) => parse_size(&value).with_context(|| {
            format!("RUNNEL_BENCH_REPLICATED_BYTES={value:?} is not a byte count such as 512M")
        })?,
        Err(_) => (target_bytes / REPLICATED_STEP_SHARE).max(1),
    };
    let full = support::full_size();
    Ok(Settings {
        target_bytes,
        replicated_bytes,
        partitions: env_positive("RUNNEL_BENCH_PARTITIONS", DEFAULT_PARTITIONS)?,
        in_flight: env_positive("RUNNEL_BENCH_IN_FLIGHT", DEFAULT_IN_FLIGHT)?,
        parked_fetches: env_positive(
            "RUNNEL_BENCH_PARKED_FETCHES",
            if full {
                DEFAULT_PARKED_FETCHES
            } else {
                SMOKE_TEST_PARKED_FETCHES
            },
        )?,
        create_partitions: env_positive(
            "RUNNEL_BENCH_CREATE_PARTITIONS",
            if full {
                DEFAULT_CREATE_PARTITIONS
            } else {
                SMOKE_TEST_CREATE_PARTITIONS
            },
        )?,
        baseline_window: if full {
            BASELINE_WINDOW
        } else {
            SMOKE_TEST_BASELINE_WINDOW
        },
    })
}

fn parse_size(value: &str) -> Option<u64> {
    let value = value.trim();
    let (digits, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => value.split_at(at),
        None => (value, ""),
    };
    let multiplier: u64 = match unit.trim_end_matches(['B', 'b', 'i']) {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        _ => return None,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|n| *n > 0)
}

fn one_batch() -> Vec<u8> {
    let now = now_ms();
    let value = vec![b'x'; RECORD_BYTES];
    let mut builder = BatchBuilder::new(now);
    for _ in 0..RECORDS_PER_BATCH {
        builder.push(None, Some(&value), now);
    }
    builder.build()
}

/// What one timed phase moved and cost.
#[derive(Debug, Clone, Copy)]
struct Phase {
    bytes: u64,
    responses: u64,
    cost: Cost,
}

async fn produce_and_fetch(
    broker: &BrokerProcess,
    settings: Settings,
    batch: Bytes,
    batches: u64,
) -> Result<(Phase, Phase)> {
    let mut admin = Connection::open(broker.addr, CLIENT_ID).await?;
    create_topic(&mut admin, TOPIC, settings.partitions).await?;

    let leaders = vec![broker.addr; settings.partitions as usize];
    let meter = Meter::start(broker.pid())?;
    let produced =
        produce_spread(&leaders, &batch, batches, settings.in_flight, ACKS_LEADER).await?;
    let produce = Phase {
        cost: meter.stop()?,
        bytes: produced.iter().map(|p| p.bytes).sum(),
        responses: produced.iter().map(|p| p.responses).sum(),
    };

    let meter = Meter::start(broker.pid())?;
    let mut tasks = tokio::task::JoinSet::new();
    for done in &produced {
        tasks.spawn(fetch_partition(
            broker.addr,
            done.partition,
            done.end_offset,
        ));
    }
    let (mut fetched, mut responses) = (0u64, 0u64);
    while let Some(done) = tasks.join_next().await {
        let (bytes, count) = done.context("a fetch task panicked")??;
        fetched += bytes;
        responses += count;
    }
    let fetch = Phase {
        bytes: fetched,
        responses,
        cost: meter.stop()?,
    };
    Ok((produce, fetch))
}

/// Spreads `batches` Produce requests over the partitions, the remainder
/// over the first ones: partition `p` gets its share on one connection to
/// `leaders[p]`. What each partition took, in partition order.
async fn produce_spread(
    leaders: &[SocketAddr],
    batch: &Bytes,
    batches: u64,
    in_flight: usize,
    acks: i16,
) -> Result<Vec<Produced>> {
    let partitions = leaders.len() as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for (partition, &addr) in leaders.iter().enumerate() {
        let requests = batches / partitions + u64::from((partition as u64) < batches % partitions);
        tasks.spawn(produce_partition(
            addr,
            partition as i32,
            batch.clone(),
            requests,
            in_flight,
            acks,
        ));
    }
    let mut produced = Vec::with_capacity(leaders.len());
    while let Some(done) = tasks.join_next().await {
        produced.push(done.context("a produce task panicked")??);
    }
    produced.sort_by_key(|p| p.partition);
    Ok(produced)
}

#[derive(Debug)]
struct Produced {
    partition: i32,
    bytes: u64,
    responses: u64,
    end_offset: i64,
}

/// Sends `requests` Produce requests of one batch each with `acks` on one
/// connection, keeping up to `in_flight` unanswered: a writer task takes a
/// permit per request, the reader gives one back per response.
async fn produce_partition(
    addr: SocketAddr,
    partition: i32,
    batch: Bytes,
    requests: u64,
    in_flight: usize,
    acks: i16,
) -> Result<Produced> {
    let batch_bytes = batch.len() as u64;
    let records_per_batch = BatchHeader::parse(&batch)?.records_count as i64;
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name())
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch)),
                ]),
        ]);
    let mut frame = request_frame(CLIENT_ID, PRODUCE_VERSION, 0, &request)?;
    let (mut reader, mut writer) = connect(addr).await?.into_split();
    let window = Arc::new(Semaphore::new(in_flight));
    let sender = tokio::spawn({
        let window = Arc::clone(&window);
        async move {
            for correlation_id in 0..requests {
                window.acquire().await?.forget();
                frame[CORRELATION_ID_AT..CORRELATION_ID_AT + 4]
                    .copy_from_slice(&(correlation_id as i32).to_be_bytes());
                writer.write_all(&frame).await?;
            }
            // Handed back so the connection stays open until every response
            // has been read.
            anyhow::Ok(writer)
        }
    });
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut end_offset = 0;
    for correlation_id in 0..requests {
        let response: ProduceResponse = read_response(
            &mut reader,
            &mut buf,
            PRODUCE_VERSION,
            correlation_id as i32,
        )
        .await?;
        let answer = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .context("a produce response without its partition")?;
        ensure!(
            answer.error_code == 0,
            "produce to partition {partition} failed: error {} {:?}",
            answer.error_code,
            answer.error_message
        );
        end_offset = answer.base_offset + records_per_batch;
        window.add_permits(1);
    }
    let _writer = sender.await.context("a produce writer panicked")??;
    Ok(Produced {
        partition,
        bytes: requests * batch_bytes,
        responses: requests,
        end_offset,
    })
}

/// Reads one partition from offset 0 to `end_offset` with Fetch requests,
/// one at a time as a consumer sends them. Returns the bytes of whole
/// batches read and the number of responses.
async fn fetch_partition(addr: SocketAddr, partition: i32, end_offset: i64) -> Result<(u64, u64)> {
    let (mut reader, mut writer) = connect(addr).await?.into_split();
    // Room for a whole response from the start: one allocation, reused.
    let mut buf = BytesMut::with_capacity(FETCH_PARTITION_MAX_BYTES as usize + (1 << 20));
    let (mut offset, mut bytes, mut responses) = (0i64, 0u64, 0u64);
    while offset < end_offset {
        let request = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_MAX_BYTES)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic_name())
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(FETCH_PARTITION_MAX_BYTES),
                    ]),
            ]);
        let correlation_id = responses as i32;
        let frame = request_frame(CLIENT_ID, FETCH_VERSION, correlation_id, &request)?;
        writer.write_all(&frame).await?;
        let response: FetchResponse =
            read_response(&mut reader, &mut buf, FETCH_VERSION, correlation_id).await?;
        responses += 1;
        ensure!(
            response.error_code == 0,
            "fetch failed: error {}",
            response.error_code
        );
        let data = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .context("a fetch response without its partition")?;
        ensure!(
            data.error_code == 0,
            "fetch from partition {partition} at offset {offset} failed: error {}",
            data.error_code
        );
        let records = data.records.as_deref().unwrap_or_default();
        let (whole_bytes, next_offset) = whole_batches(records, offset)?;
        ensure!(
            next_offset > offset,
            "no whole batch at offset {offset} of partition {partition} (high watermark {})",
            data.high_watermark
        );
        bytes += whole_bytes;
        offset = next_offset;
    }
    Ok((bytes, responses))
}

/// Walks the batch headers of fetched records: the bytes of the whole
/// batches (the last one may be cut by the byte limit) and the offset after
/// the last of them.
fn whole_batches(records: &[u8], mut next_offset: i64) -> Result<(u64, i64)> {
    let mut position = 0;
    while records.len() - position >= HEADER_SIZE {
        let header = BatchHeader::parse(&records[position..])?;
        if position + header.size_bytes() > records.len() {
            break;
        }
        position += header.size_bytes();
        next_offset = header.next_offset();
    }
    Ok((position as u64, next_offset))
}

fn topic_name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// Writes `batches` copies of `batch` with one `write` call each, then
/// fsyncs: the wall time of the writes and of the fsync.
fn plain_writes(path: &Path, batch: &[u8], batches: u64) -> Result<(Duration, Duration)> {
    let mut file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let started = Instant::now();
    for _ in 0..batches {
        file.write_all(batch)?;
    }
    let written = started.elapsed();
    let started = Instant::now();
    file.sync_all()?;
    Ok((written, started.elapsed()))
}

/// Sends `total_bytes` over a loopback connection in 1 MiB writes to a
/// thread that reads and discards them; the time until it has read them all.
fn loopback_tcp(total_bytes: u64) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sink = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; LOOPBACK_WRITE_BYTES];
        let mut received = 0u64;
        loop {
            match stream.read(&mut buf)? {
                0 => return Ok(received),
                n => received += n as u64,
            }
        }
    });
    let mut stream = StdTcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let chunk = vec![b'x'; LOOPBACK_WRITE_BYTES];
    let started = Instant::now();
    let mut left = total_bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    let received = sink
        .join()
        .map_err(|_| anyhow::anyhow!("the loopback reader panicked"))??;
    let wall = started.elapsed();
    ensure!(
        received == total_bytes,
        "loopback received {received} of {total_bytes} bytes"
    );
    Ok(wall)
}

fn mb_per_s(bytes: u64, wall: Duration) -> f64 {
    bytes as f64 / 1e6 / wall.as_secs_f64()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
