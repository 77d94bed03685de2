//! `runnel perf produce|consume`: throughput and latency with runnel-client,
//! as Kafka's `kafka-producer-perf-test` / `kafka-consumer-perf-test`: a
//! progress line every 5 s on stderr, then the totals. `--transaction-size
//! N` produces in transactions of N records, each committed before the
//! next begins (the transactional throughput benchmark).
//!
//! Produce latency is from `send` to the delivery being seen answered; a
//! checker task awaits deliveries in send order, so a record answered
//! before an earlier one is counted when that one is.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use runnel_client::{Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};

use super::name_value;

const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Deliveries awaited at once by the checker before `send` waits.
const IN_FLIGHT: usize = 100_000;
/// Deliveries handed to the checker together when not paced (one hand-off,
/// and at most one wake-up, per chunk rather than per record).
const CHUNK: usize = 256;

#[derive(Debug, Subcommand)]
pub enum PerfCommand {
    /// Sends records as fast as allowed and reports throughput and latency
    Produce(ProducePerfArgs),
    /// Reads records from the start of a topic and reports throughput
    Consume(ConsumePerfArgs),
}

#[derive(Debug, Args)]
pub struct ProducePerfArgs {
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    #[arg(long, value_name = "N")]
    num_records: u64,
    /// Bytes per record value
    #[arg(long, value_name = "B")]
    record_size: usize,
    /// Records per second at most; -1 for no limit
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    throughput: i64,
    /// A producer setting by Kafka's name
    #[arg(long, value_name = "NAME=VALUE")]
    producer_property: Vec<String>,
    /// Send in transactions of this many records, committed one after
    /// another (sets transactional.id unless --transactional-id does)
    #[arg(long, value_name = "N")]
    transaction_size: Option<u64>,
    /// The transactional.id with --transaction-size
    #[arg(long, value_name = "ID", default_value = "runnel-perf")]
    transactional_id: String,
}

#[derive(Debug, Args)]
pub struct ConsumePerfArgs {
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    /// Records to read before stopping
    #[arg(long, value_name = "N")]
    num_records: u64,
    /// A consumer setting by Kafka's name
    #[arg(long, value_name = "NAME=VALUE")]
    consumer_property: Vec<String>,
}

pub fn run(command: PerfCommand) -> Result<()> {
    let runtime = super::runtime()?;
    match command {
        PerfCommand::Produce(args) => runtime.block_on(produce(args)),
        PerfCommand::Consume(args) => runtime.block_on(consume(args)),
    }
}

async fn produce(args: ProducePerfArgs) -> Result<()> {
    let mut config = ProducerConfig::new(&args.bootstrap_server);
    for property in &args.producer_property {
        let (name, value) = name_value("--producer-property", property)?;
        config = config.set(&name, &value)?;
    }
    let transaction_size = args.transaction_size.filter(|n| *n > 0);
    if transaction_size.is_some() && config.transactional_id.is_none() {
        config = config.set("transactional.id", &args.transactional_id)?;
    }
    let producer = Producer::new(config)
        .await
        .context("cannot start the producer")?;
    if transaction_size.is_some() {
        producer
            .init_transactions()
            .await
            .context("cannot initialize transactions")?;
    }
    let value = vec![b'x'; args.record_size];
    let (pending, mut answered) =
        tokio::sync::mpsc::channel::<Vec<(Instant, runnel_client::Delivery)>>(IN_FLIGHT / CHUNK);
    // Paced runs hand each delivery over at once, so its latency is not
    // counted from a chunk's hand-off.
    let chunk = if args.throughput > 0 { 1 } else { CHUNK };
    let total = args.num_records;
    let record_size = args.record_size;
    let checker = tokio::spawn(async move {
        let mut latencies_us: Vec<u32> = Vec::with_capacity(total.min(10_000_000) as usize);
        let mut failed = 0u64;
        let started = Instant::now();
        let mut window = Window::new(started);
        while let Some(deliveries) = answered.recv().await {
            for (sent_at, delivery) in deliveries {
                if delivery.await.is_err() {
                    failed += 1;
                }
                let latency = sent_at.elapsed();
                latencies_us.push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
                window.record(latency, record_size);
            }
        }
        (latencies_us, failed, started.elapsed())
    });
    let started = Instant::now();
    let mut batch = Vec::with_capacity(chunk);
    for i in 0..total {
        if args.throughput > 0 {
            // Paced: record i goes no earlier than i / throughput seconds in.
            let due = started + Duration::from_secs_f64(i as f64 / args.throughput as f64);
            tokio::time::sleep_until(due.into()).await;
        }
        if let Some(size) = transaction_size
            && i % size == 0
        {
            if i > 0 {
                producer.commit_transaction().await.with_context(|| {
                    format!("cannot commit the transaction ending at record {i}")
                })?;
            }
            producer.begin_transaction()?;
        }
        let sent_at = Instant::now();
        let delivery = producer
            .send(ProducerRecord::new(&args.topic, &value))
            .await
            .with_context(|| format!("cannot send record {i}"))?;
        batch.push((sent_at, delivery));
        if (batch.len() >= chunk || i + 1 == total)
            && pending
                .send(std::mem::replace(&mut batch, Vec::with_capacity(chunk)))
                .await
                .is_err()
        {
            bail!("the delivery checker stopped");
        }
    }
    drop(pending);
    if transaction_size.is_some() && total > 0 {
        producer
            .commit_transaction()
            .await
            .context("cannot commit the last transaction")?;
    }
    producer.close().await;
    let (mut latencies, failed, elapsed) = checker.await.context("the checker panicked")?;
    latencies.sort_unstable();
    let seconds = elapsed.as_secs_f64().max(f64::EPSILON);
    let records = latencies.len() as f64;
    let percentile = |q: f64| -> f64 {
        let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies
            .get(index)
            .map_or(0.0, |&us| f64::from(us) / 1000.0)
    };
    let avg = latencies.iter().map(|&us| f64::from(us)).sum::<f64>() / records.max(1.0) / 1000.0;
    println!(
        "{} records sent, {:.1} records/sec ({:.2} MB/sec), {avg:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 99th, {:.2} ms 99.9th.",
        latencies.len(),
        records / seconds,
        records * record_size as f64 / seconds / 1e6,
        percentile(1.0),
        percentile(0.5),
        percentile(0.99),
        percentile(0.999),
    );
    if failed > 0 {
        bail!("{failed} records were not delivered");
    }
    Ok(())
}

/// Progress over the last few seconds, printed to stderr.
#[derive(Debug)]
struct Window {
    start: Instant,
    records: u64,
    bytes: u64,
    latency_sum: Duration,
    latency_max: Duration,
}

impl Window {
    fn new(start: Instant) -> Self {
        Self {
            start,
            records: 0,
            bytes: 0,
            latency_sum: Duration::ZERO,
            latency_max: Duration::ZERO,
        }
    }

    fn record(&mut self, latency: Duration, bytes: usize) {
        self.records += 1;
        self.bytes += bytes as u64;
        self.latency_sum += latency;
        self.latency_max = self.latency_max.max(latency);
        let elapsed = self.start.elapsed();
        if elapsed >= PROGRESS_EVERY {
            let seconds = elapsed.as_secs_f64();
            eprintln!(
                "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
                self.records,
                self.records as f64 / seconds,
                self.bytes as f64 / seconds / 1e6,
                self.latency_sum.as_secs_f64() * 1000.0 / self.records as f64,
                self.latency_max.as_secs_f64() * 1000.0,
            );
            *self = Self::new(Instant::now());
        }
    }
}

async fn consume(args: ConsumePerfArgs) -> Result<()> {
    let mut config =
        ConsumerConfig::new(&args.bootstrap_server).set("auto.offset.reset", "earliest")?;
    for property in &args.consumer_property {
        let (name, value) = name_value("--consumer-property", property)?;
        config = config.set(&name, &value)?;
    }
    let mut consumer = Consumer::new(config)
        .await
        .context("cannot start the consumer")?;
    let partitions = consumer.partitions_of(&args.topic).await?;
    let assigned: Vec<(&str, i32)> = partitions
        .iter()
        .map(|&p| (args.topic.as_str(), p))
        .collect();
    consumer.assign(&assigned).await?;
    let started = Instant::now();
    let mut last_progress = started;
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut idle_since = Instant::now();
    while records < args.num_records {
        let batch = consumer.poll(Duration::from_secs(1)).await?;
        if batch.is_empty() {
            if idle_since.elapsed() > Duration::from_secs(10) {
                bail!(
                    "no records for 10 s after {records} of {}",
                    args.num_records
                );
            }
            continue;
        }
        idle_since = Instant::now();
        records += batch.len() as u64;
        bytes += batch
            .iter()
            .map(|r| {
                r.value.as_ref().map_or(0, |v| v.len()) + r.key.as_ref().map_or(0, |k| k.len())
            })
            .sum::<usize>() as u64;
        if last_progress.elapsed() >= PROGRESS_EVERY {
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "{records} records read, {:.1} records/sec ({:.2} MB/sec)",
                records as f64 / seconds,
                bytes as f64 / seconds / 1e6
            );
            last_progress = Instant::now();
        }
    }
    let seconds = started.elapsed().as_secs_f64().max(f64::EPSILON);
    println!(
        "{records} records read in {seconds:.2} s: {:.1} records/sec ({:.2} MB/sec)",
        records as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
    Ok(())
}
