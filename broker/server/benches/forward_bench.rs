//! Backlog forwarding on the real processes, as a program that prints
//! figures: a group's backlog of `RUNNEL_BENCH_RECORDS` records of 1 KiB
//! (default 1,000,000, 1 GiB; 20,000 without `--bench`) in 2 partitions
//! is moved by one `runnel forward` into a 24-partition overflow topic.
//! Printed: the time from the forwarder's start to its first committed
//! transaction (joining the group, the transactional id, the first
//! fetch), then records/s and MB/s from there until the group's committed
//! offsets reach the end, and the CPU seconds per GB of the broker and of
//! the forwarder.
//!
//! Usage: `cargo bench -p runnel-broker --bench forward_bench`;
//! `RUNNEL_BENCH_BINARY` runs another `runnel` binary,
//! `RUNNEL_BENCH_DIR` sets the parent of the temporary directory.

#[allow(dead_code)] // each bench uses a part of the support
#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use runnel_client::{Admin, Producer, ProducerConfig, ProducerRecord};

use support::cpu::Meter;
use support::process::BrokerProcess;

const BENCH: &str = "forward_bench";
const SOURCE: &str = "backlog";
const OVERFLOW: &str = "backlog.overflow";
const GROUP: &str = "backlog-workers";
const RECORD_BYTES: usize = 1024;
const KEYS: u64 = 10_000;
const DEADLINE: Duration = Duration::from_secs(1800);

/// The forwarder process, killed if dropped while running.
struct ForwarderProcess(Child);

impl Drop for ForwarderProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    support::exit_on_error(BENCH, run());
}

fn run() -> Result<()> {
    let full = support::full_size();
    let records: u64 = support::env_positive(
        "RUNNEL_BENCH_RECORDS",
        if full { 1_000_000 } else { 20_000 },
    )?;
    let dir = support::temp_dir("runnel-forward-bench-")?;
    let mut broker = BrokerProcess::start(
        BENCH,
        &dir.path().join("data"),
        &["group.initial.rebalance.delay.ms=0".to_string()],
    )?;
    let bootstrap = broker.addr.to_string();
    let runtime = support::load_generator_runtime()?;
    runtime.block_on(fill_backlog(&bootstrap, records))?;
    println!(
        "{BENCH}: backlog of {records} records of {RECORD_BYTES} bytes in 2 partitions; forwarding into 24"
    );

    let binary = std::env::var_os("RUNNEL_BENCH_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_runnel").into());
    let started = Instant::now();
    let forwarder = ForwarderProcess(
        Command::new(binary)
            .args(["forward", "--bootstrap-server", &bootstrap])
            .args(["--group", GROUP, "--topic", SOURCE, "--to", OVERFLOW])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start runnel forward")?,
    );
    let meter = Meter::start_brokers(&[broker.pid(), forwarder.0.id()])?;
    let admin = runtime.block_on(Admin::new(&bootstrap, BENCH))?;
    let first = wait_for_committed(&runtime, &admin, 1)?;
    let to_first = started.elapsed();
    let from = Instant::now();
    wait_for_committed(&runtime, &admin, records)?;
    let moving = from.elapsed();
    let (cost, cpu) = meter.stop_per_broker()?;
    drop(forwarder);
    broker.stop()?;

    let moved = records - first.min(records);
    let seconds = moving.as_secs_f64().max(1e-9);
    let gb = (records * RECORD_BYTES as u64) as f64 / 1e9;
    println!(
        "{BENCH}: first transaction committed {:.0} ms after the forwarder started ({first} records in it)",
        to_first.as_secs_f64() * 1e3
    );
    println!(
        "{BENCH}: forwarded {moved} records in {seconds:.2} s after it: {:.0} records/s, {:.1} MB/s",
        moved as f64 / seconds,
        (moved * RECORD_BYTES as u64) as f64 / seconds / 1e6,
    );
    println!(
        "{BENCH}: CPU per GB forwarded: broker {:.2} s, forwarder {:.2} s (machine busy {:.0}%)",
        cpu[0] / gb,
        cpu[1] / gb,
        cost.machine_busy * 100.0
    );
    Ok(())
}

async fn fill_backlog(bootstrap: &str, records: u64) -> Result<()> {
    let admin = Admin::new(bootstrap, BENCH).await?;
    admin.create_topic(SOURCE, 2, 1, &[]).await?;
    admin.create_topic(OVERFLOW, 24, 1, &[]).await?;
    let config = ProducerConfig::new(bootstrap)
        .set("linger.ms", "10")?
        .set("batch.size", "262144")?;
    let producer = Producer::new(config).await?;
    let value = vec![b'x'; RECORD_BYTES - 8];
    for i in 0..records {
        let key = format!("{:08}", i % KEYS);
        drop(
            producer
                .send(ProducerRecord::new(SOURCE, &value).key(key.as_bytes()))
                .await?,
        );
    }
    producer.flush().await;
    producer.close().await;
    Ok(())
}

/// Waits until the group's committed offsets sum to `at_least`; returns
/// the sum then.
fn wait_for_committed(
    runtime: &tokio::runtime::Runtime,
    admin: &Admin,
    at_least: u64,
) -> Result<u64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let offsets = runtime.block_on(admin.group_offsets(GROUP))?;
        let total: i64 = offsets
            .iter()
            .filter(|(topic, _, _)| topic == SOURCE)
            .map(|(_, _, offset)| *offset)
            .sum();
        if total as u64 >= at_least {
            return Ok(total as u64);
        }
        ensure!(
            Instant::now() < deadline,
            "the forwarder committed {total} of {at_least} within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
