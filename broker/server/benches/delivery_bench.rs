//! Delayed delivery on the real `runnel serve` process, as a program that
//! prints figures:
//!
//! 1. **Pending records.** `RUNNEL_BENCH_PENDING` records (default 10
//!    million; 100,000 without `--bench`) of 100 bytes go to a level of one
//!    hour, so none falls due; printed: the broker's anonymous resident
//!    memory (RssAnon: the heap, not the page cache or mapped indexes)
//!    before and after, and its growth.
//! 2. **Lateness.** `RUNNEL_BENCH_DUE_RATE` records per second (default
//!    10,000) for `RUNNEL_BENCH_DUE_SECONDS` (default 30; 3 without
//!    `--bench`) go to a level of 2 s, so as many fall due per second; a
//!    read_committed consumer of the target measures each record's
//!    lateness (its arrival minus its `runnel-delivery-due-ms` header: the
//!    mover's delay plus the fetch's). Printed: p50, p99 and max lateness,
//!    moves per second, and the broker's CPU per million moves (the
//!    broker also took the produce load meanwhile).
//! 3. **Any delay.** As many records per second for as long go to the
//!    entry topic `target_delayed` (levels 100ms, 1s, 10s, beside the two
//!    above) with `runnel-deliver-at` 1 to 6 s ahead, so each hops through
//!    the levels; printed as in 2, lateness measured from each record's own
//!    time.
//!
//! Usage: `cargo bench -p runnel-broker --bench delivery_bench`;
//! `RUNNEL_BENCH_BINARY` runs another `runnel` binary,
//! `RUNNEL_BENCH_DIR` sets the parent of the temporary directory.

#[allow(dead_code)] // each bench uses a part of the support
#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use runnel_client::{Admin, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};

use support::cpu::Meter;
use support::process::BrokerProcess;

const BENCH: &str = "delivery_bench";
const TARGET: &str = "target";
const HOLDING: &str = "target_1h";
const MOVING: &str = "target_2s";
const ENTRY: &str = "target_delayed";
const PARTITIONS: i32 = 4;
const VALUE_BYTES: usize = 100;

fn main() {
    support::exit_on_error(BENCH, run());
}

fn run() -> Result<()> {
    let full = support::full_size();
    let pending: u64 = support::env_positive(
        "RUNNEL_BENCH_PENDING",
        if full { 10_000_000 } else { 100_000 },
    )?;
    let rate: u64 = support::env_positive("RUNNEL_BENCH_DUE_RATE", 10_000)?;
    let seconds: u64 =
        support::env_positive("RUNNEL_BENCH_DUE_SECONDS", if full { 30 } else { 3 })?;
    let dir = support::temp_dir("runnel-delivery-bench-")?;
    let mut broker = BrokerProcess::start(BENCH, &dir.path().join("data"), &[])?;
    let runtime = support::load_generator_runtime()?;
    let outcome = runtime.block_on(async {
        let bootstrap = broker.addr.to_string();
        let admin = Admin::new(&bootstrap, BENCH).await?;
        admin.create_topic(TARGET, PARTITIONS, 1, &[]).await?;
        for (level, delay_ms) in [(HOLDING, 3_600_000), (MOVING, 2_000)] {
            let configs = [
                ("delivery.delay.ms".to_string(), delay_ms.to_string()),
                ("delivery.target".to_string(), TARGET.to_string()),
            ];
            admin.create_topic(level, PARTITIONS, 1, &configs).await?;
        }
        let entry = [
            ("delivery.levels".to_string(), "100ms,1s,10s".to_string()),
            ("delivery.target".to_string(), TARGET.to_string()),
        ];
        admin.create_topic(ENTRY, PARTITIONS, 1, &entry).await?;
        let before = rss_anon_kib(broker.pid())?;
        let started = Instant::now();
        produce(&bootstrap, HOLDING, pending, None, None).await?;
        let produced_in = started.elapsed();
        // One mover pass at least, with the level full.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_anon_kib(broker.pid())?;
        println!(
            "pending: {pending} records of {VALUE_BYTES} B in a 1 h level (produced in {:.1} s); broker RssAnon {:.1} MiB before, {:.1} MiB after: {:+.1} MiB",
            produced_in.as_secs_f64(),
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after as f64 - before as f64) / 1024.0,
        );
        lateness(&bootstrap, broker.pid(), rate, seconds, None).await?;
        lateness(&bootstrap, broker.pid(), rate, seconds, Some(5_000)).await
    });
    drop(runtime);
    let stopped = broker.stop();
    outcome?;
    stopped?;
    Ok(())
}

/// Produces `count` records to `level`, at `rate` per second when given;
/// with `spread_ms`, through the entry topic instead, each due 1 s plus up
/// to `spread_ms` after it is sent.
async fn produce(
    bootstrap: &str,
    level: &str,
    count: u64,
    rate: Option<u64>,
    spread_ms: Option<u64>,
) -> Result<()> {
    let config = ProducerConfig::new(bootstrap)
        .set("acks", "1")
        .and_then(|c| c.set("linger.ms", "5"))
        .and_then(|c| c.set("batch.size", "262144"))
        .context("producer settings")?;
    let producer = Producer::new(config).await?;
    let value = [b'v'; VALUE_BYTES];
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(50_000);
    for i in 0..count {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        let partition = (i % PARTITIONS as u64) as i32;
        let record = match spread_ms {
            None => ProducerRecord::new(level, &value).partition(partition),
            Some(spread) => ProducerRecord::new(TARGET, &value)
                .partition(partition)
                .deliver_at(now_ms() + 1_000 + ((i * 7_919) % spread) as i64),
        };
        deliveries.push(producer.send(record).await?);
        if deliveries.len() == deliveries.capacity() {
            for delivery in deliveries.drain(..) {
                delivery.await?;
            }
        }
    }
    for delivery in deliveries {
        delivery.await?;
    }
    producer.close().await;
    Ok(())
}

async fn lateness(
    bootstrap: &str,
    broker_pid: u32,
    rate: u64,
    seconds: u64,
    spread_ms: Option<u64>,
) -> Result<()> {
    let count = rate * seconds;
    let config = ConsumerConfig::new(bootstrap)
        .set("auto.offset.reset", "earliest")
        .and_then(|c| c.set("isolation.level", "read_committed"))
        .and_then(|c| c.set("fetch.max.wait.ms", "10"))
        .context("consumer settings")?;
    let mut consumer = Consumer::new(config).await?;
    let partitions: Vec<(&str, i32)> = (0..PARTITIONS).map(|p| (TARGET, p)).collect();
    consumer.assign(&partitions).await?;
    // Start from the end: the records of an earlier phase are not these.
    let admin = Admin::new(bootstrap, BENCH).await?;
    let owned: Vec<(String, i32)> = (0..PARTITIONS).map(|p| (TARGET.to_string(), p)).collect();
    for ((topic, partition), end) in partitions.iter().zip(admin.end_offsets(&owned).await?) {
        consumer.seek(topic, *partition, end);
    }
    let meter = Meter::start(broker_pid)?;
    let bootstrap_owned = bootstrap.to_string();
    let producing = tokio::spawn(async move {
        produce(&bootstrap_owned, MOVING, count, Some(rate), spread_ms).await
    });
    let mut late_ms: Vec<i64> = Vec::with_capacity(count as usize);
    let deadline = Instant::now() + Duration::from_secs(seconds + 60);
    while (late_ms.len() as u64) < count && Instant::now() < deadline {
        for record in consumer.poll(Duration::from_millis(100)).await? {
            let arrived = now_ms();
            let due = record
                .headers()
                .find(|(k, _)| *k == b"runnel-delivery-due-ms")
                .and_then(|(_, v)| std::str::from_utf8(v?).ok()?.parse::<i64>().ok())
                .context("a moved record without its due header")?;
            late_ms.push(arrived - due);
        }
    }
    let cost = meter.stop()?;
    producing.await.context("the producer panicked")??;
    ensure!(
        late_ms.len() as u64 == count,
        "{} of {count} records arrived",
        late_ms.len()
    );
    late_ms.sort_unstable();
    let at = |q: f64| late_ms[((late_ms.len() - 1) as f64 * q) as usize];
    // The moves span the producing time, from the first due time on.
    let moving_seconds = (cost.wall.as_secs_f64() - 2.0).max(seconds as f64);
    let what = match spread_ms {
        None => "lateness".to_string(),
        Some(spread) => format!(
            "any delay (entry {ENTRY}, due 1 to {} s after sending)",
            (1_000 + spread) / 1_000
        ),
    };
    println!(
        "{what}: {count} records falling due at {rate}/s: p50 {} ms, p99 {} ms, max {} ms (arrival at a read_committed consumer minus due time)",
        at(0.5),
        at(0.99),
        late_ms[late_ms.len() - 1],
    );
    println!(
        "moves: {:.0} records/s; broker CPU {:.2} s per million moved (produce load included), machine busy {:.0}%",
        count as f64 / moving_seconds,
        cost.broker_cpu_seconds / (count as f64 / 1e6),
        cost.machine_busy * 100.0,
    );
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The broker's anonymous resident memory, in KiB.
fn rss_anon_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no RssAnon in /proc/<pid>/status")
}
