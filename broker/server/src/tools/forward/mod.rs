//! `runnel forward`: moves a lagging group's backlog into a wider overflow
//! topic, exactly once. It joins group G as an ordinary member (G's
//! assignor gives it partitions), reads each partition from G's committed
//! offset (read_committed, with stable offsets) and, per poll, writes every
//! record to the overflow topic and commits G's offsets past them in one
//! transaction (consume-transform-produce, KIP-447): a kill -9 anywhere
//! loses nothing, and read_committed readers of the overflow see each
//! record once.
//!
//! A record keeps its key, value, headers and timestamp and gets three
//! more headers naming where it came from ([`origin`]). A keyed record goes
//! to the overflow partition its key hashes to (the default partitioner),
//! so a key's records stay in order; records without a key are spread.
//!
//! The transactional id is stable per group and host unless given, so a
//! forwarder restarted on the same host fences its previous self and
//! aborts its open transaction at once. Progress and rate go to stderr
//! every 5 s; `--metrics-address` serves `/metrics` ([`metrics`]). SIGTERM
//! or Ctrl-C: the open transaction finishes, the member leaves G, exit 0.

mod metrics;
mod origin;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use runnel_client::{
    ClientError, Consumer, ConsumerConfig, ConsumerRecord, Producer, ProducerConfig, ProducerRecord,
};
use tokio::net::TcpListener;

use super::name_value;
use metrics::ForwardMetrics;
use origin::OriginHeaders;

const POLL: Duration = Duration::from_millis(500);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// A killed forwarder's open transaction is aborted by the coordinator
/// after this (unless a forwarder with its id starts first): readers of the
/// overflow and G's next member wait on it no longer.
const TRANSACTION_TIMEOUT_MS: &str = "10000";
/// Pause before asking a broker again after it did not answer.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// How long an unanswered EndTxn(commit) is retried before the forwarder
/// exits (a restart settles the transaction).
const COMMIT_PATIENCE: Duration = Duration::from_secs(60);
/// Fenced this many times in a row, with no commit between: another
/// forwarder runs with the same transactional id.
const MAX_FENCES: u32 = 5;

#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// The broker(s) to bootstrap from, HOST:PORT[,HOST:PORT...]
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// The lagging group: the forwarder joins it and commits its offsets
    #[arg(long)]
    group: String,
    /// The group's topic to forward (repeat for several)
    #[arg(long, required = true)]
    topic: Vec<String>,
    /// The overflow topic the records go to
    #[arg(long, value_name = "TOPIC")]
    to: String,
    /// The transactional.id (default runnel-forward.GROUP.HOSTNAME)
    #[arg(long, value_name = "ID")]
    transactional_id: Option<String>,
    /// Serve /metrics, /healthz and /readyz here
    #[arg(long, value_name = "HOST:PORT")]
    metrics_address: Option<String>,
    /// A consumer setting by Kafka's name, e.g. max.partition.fetch.bytes=4194304
    #[arg(long, value_name = "NAME=VALUE")]
    consumer_property: Vec<String>,
    /// A producer setting by Kafka's name, e.g. linger.ms=20
    #[arg(long, value_name = "NAME=VALUE")]
    producer_property: Vec<String>,
}

pub fn run(args: ForwardArgs) -> Result<()> {
    if args.topic.contains(&args.to) {
        bail!(
            "--to {}: the overflow topic must not be one the group reads",
            args.to
        );
    }
    let consumer = consumer_config(&args)?;
    let producer = producer_config(&args)?;
    super::runtime()?.block_on(forward(args, consumer, producer))
}

fn consumer_config(args: &ForwardArgs) -> Result<ConsumerConfig> {
    let mut config = ConsumerConfig::new(&args.bootstrap_server)
        .set("group.id", &args.group)?
        .set("enable.auto.commit", "false")?
        .set("isolation.level", "read_committed")?
        .set("auto.offset.reset", "earliest")?
        .set("client.id", "runnel-forward")?;
    for property in &args.consumer_property {
        let (name, value) = name_value("--consumer-property", property)?;
        if matches!(name.as_str(), "group.id" | "enable.auto.commit") {
            bail!("--consumer-property {name}: set by the forwarder");
        }
        config = config.set(&name, &value)?;
    }
    Ok(config)
}

fn producer_config(args: &ForwardArgs) -> Result<ProducerConfig> {
    let id = match &args.transactional_id {
        Some(id) => id.clone(),
        None => format!("runnel-forward.{}.{}", args.group, hostname()),
    };
    let mut config = ProducerConfig::new(&args.bootstrap_server)
        .set("transactional.id", &id)?
        .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS)?
        .set("linger.ms", "5")?
        .set("batch.size", "262144")?
        .set("client.id", "runnel-forward")?;
    for property in &args.producer_property {
        let (name, value) = name_value("--producer-property", property)?;
        if name == "transactional.id" {
            bail!("--producer-property transactional.id: use --transactional-id");
        }
        config = config.set(&name, &value)?;
    }
    Ok(config)
}

/// This host's name (the pod's name on Kubernetes), or "localhost".
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

async fn forward(
    args: ForwardArgs,
    consumer: ConsumerConfig,
    producer: ProducerConfig,
) -> Result<()> {
    let metrics = Arc::new(ForwardMetrics::new());
    let http = match &args.metrics_address {
        Some(address) => Some(serve_metrics(address, &metrics).await?),
        None => None,
    };
    let stop = stop_signal();
    tokio::pin!(stop);
    // Brokers not reachable yet (they restart, the forwarder's pod came
    // first): try again rather than exit, as Kafka's clients do.
    let started = tokio::select! {
        biased;
        () = &mut stop => None,
        started = start_clients(&args, &consumer, &producer) => Some(started),
    };
    let Some((producer, mut consumer)) = started else {
        return Ok(());
    };
    if let Some(http) = &http {
        http.state.set_ready(true);
    }
    tracing::info!(group = %args.group, topics = ?args.topic, to = %args.to, "forwarding");

    let mut progress = Progress::new();
    let mut fences = 0;
    let outcome = loop {
        let records = tokio::select! {
            biased;
            () = &mut stop => break Ok(()),
            records = consumer.poll(POLL) => records,
        };
        let records = match records {
            Ok(records) => records,
            Err(err) if refused_for_good(&err) => {
                break Err(anyhow::Error::new(err)
                    .context("the group refuses this member; the settings must change"));
            }
            Err(err) => {
                // The broker restarts, a coordinator moves: read on once it
                // answers (Java's consumer retries the same way).
                tracing::warn!(error = %runnel_http::error_chain(&err), "cannot read the group's topics; trying again");
                tokio::select! {
                    () = &mut stop => break Ok(()),
                    () = tokio::time::sleep(RETRY_BACKOFF) => continue,
                }
            }
        };
        if !records.is_empty() {
            match forward_batch(&producer, &consumer, &args.to, &records).await {
                Ok(bytes) => {
                    fences = 0;
                    metrics.forwarded(records.len() as u64, bytes);
                    progress.add(records.len() as u64, bytes);
                }
                Err(BatchError::Aborted { cause, fenced }) => {
                    metrics.aborted();
                    rewind(&mut consumer, &records);
                    tracing::warn!(
                        error = %runnel_http::error_chain(&cause),
                        records = records.len(),
                        "a transaction failed and was aborted; its records are read again"
                    );
                    fences = if fenced { fences + 1 } else { 0 };
                    if fences >= MAX_FENCES {
                        break Err(anyhow::Error::new(cause).context(format!(
                            "fenced {fences} times in a row: another forwarder uses the same \
                             transactional id; give each its own (--transactional-id)"
                        )));
                    }
                }
                Err(BatchError::Unknown(cause)) => {
                    break Err(anyhow::Error::new(cause).context(
                        "cannot learn whether a transaction committed; exiting so that a \
                         restart with the same transactional id settles it",
                    ));
                }
            }
        }
        progress.maybe_report(&consumer.assignment());
    };
    consumer.close().await;
    producer.close().await;
    if let Some(http) = http {
        let _ = http.stop.send(());
        let _ = http.task.await;
    }
    progress.report_total();
    outcome
}

/// The transactional producer (its id's epoch taken) and the group's
/// member, tried every [`RETRY_BACKOFF`] until the brokers answer.
async fn start_clients(
    args: &ForwardArgs,
    consumer: &ConsumerConfig,
    producer: &ProducerConfig,
) -> (Producer, Consumer) {
    let topics: Vec<&str> = args.topic.iter().map(String::as_str).collect();
    loop {
        let started = async {
            let producer = Producer::new(producer.clone())
                .await
                .context("cannot start the producer")?;
            producer
                .init_transactions()
                .await
                .context("cannot get the forwarder's transactional producer id")?;
            let mut consumer = Consumer::new(consumer.clone())
                .await
                .context("cannot start the consumer")?;
            consumer.subscribe(&topics)?;
            anyhow::Ok((producer, consumer))
        };
        match started.await {
            Ok(clients) => return clients,
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "cannot start; trying again");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// How forwarding one poll's records failed.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    /// Nothing of the transaction is committed: its records are read and
    /// forwarded again. `fenced`: the transactional id was taken over (or
    /// the transaction timed out) and the forwarder took it back.
    #[error("the transaction was aborted")]
    Aborted {
        #[source]
        cause: ClientError,
        fenced: bool,
    },
    /// EndTxn(commit) went out and no answer said how it ended.
    #[error("the transaction's outcome is unknown")]
    Unknown(#[source] ClientError),
}

/// One poll's records written to `to` and the group's offsets past them
/// committed, in one transaction: the records' bytes (key and value).
async fn forward_batch(
    producer: &Producer,
    consumer: &Consumer,
    to: &str,
    records: &[ConsumerRecord],
) -> Result<u64, BatchError> {
    if let Err(cause) = producer.begin_transaction() {
        return Err(reset(producer, cause).await);
    }
    let bytes = match send_all(producer, consumer, to, records).await {
        Ok(bytes) => bytes,
        Err(cause) => return Err(abort(producer, cause).await),
    };
    let deadline = Instant::now() + COMMIT_PATIENCE;
    loop {
        match producer.commit_transaction().await {
            Ok(()) => return Ok(bytes),
            // No EndTxn went out.
            Err(cause @ ClientError::TransactionRecordFailed) => {
                return Err(abort(producer, cause).await);
            }
            // The coordinator answered: a commit it answers with an error
            // did not happen (a retry of one that did is answered OK).
            Err(cause @ ClientError::Kafka { .. }) => return Err(reset(producer, cause).await),
            Err(cause) if Instant::now() >= deadline => return Err(BatchError::Unknown(cause)),
            Err(cause) => {
                tracing::debug!(error = %runnel_http::error_chain(&cause), "EndTxn unanswered; asking again");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

async fn send_all(
    producer: &Producer,
    consumer: &Consumer,
    to: &str,
    records: &[ConsumerRecord],
) -> Result<u64, ClientError> {
    let origins = OriginHeaders::for_records(records);
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(8);
    let mut bytes = 0u64;
    for (index, record) in records.iter().enumerate() {
        headers.clear();
        for (key, value) in record.headers() {
            let key = std::str::from_utf8(key).map_err(|_| ClientError::Config {
                key: "header".into(),
                value: format!(
                    "{}-{} offset {}",
                    record.topic, record.partition, record.offset
                ),
                reason: "a header name is not UTF-8; the forwarder cannot write it".into(),
            })?;
            headers.push((key, value.unwrap_or_default()));
        }
        origins.push_for(index, &mut headers);
        let out = ProducerRecord {
            topic: to,
            value: record.value.as_deref(),
            key: record.key.as_deref(),
            timestamp: Some(record.timestamp),
            headers: &headers,
            ..ProducerRecord::default()
        };
        bytes += (record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len())) as u64;
        // The delivery is not awaited: commit_transaction flushes, and
        // fails when any record of the transaction failed.
        producer.send(out).await?;
    }
    let next = next_offsets(records);
    let offsets: Vec<(&str, i32, i64)> = next
        .iter()
        .map(|((topic, partition), offset)| (&**topic, *partition, *offset))
        .collect();
    let group = consumer.group_metadata()?;
    producer
        .send_offsets_to_transaction_with(&offsets, &group)
        .await?;
    Ok(bytes)
}

/// The offset after each partition's last record in `records`.
fn next_offsets(records: &[ConsumerRecord]) -> BTreeMap<(Arc<str>, i32), i64> {
    let mut next = BTreeMap::new();
    for record in records {
        next.insert(
            (Arc::clone(&record.topic), record.partition),
            record.offset + 1,
        );
    }
    next
}

/// Each partition back to its first record in `records`: the aborted
/// transaction's records are read and forwarded again. (A partition the
/// member lost meanwhile is not its own to seek; its next owner starts at
/// the committed offset.)
fn rewind(consumer: &mut Consumer, records: &[ConsumerRecord]) {
    let mut first: BTreeMap<(Arc<str>, i32), i64> = BTreeMap::new();
    for record in records {
        first
            .entry((Arc::clone(&record.topic), record.partition))
            .or_insert(record.offset);
    }
    for ((topic, partition), offset) in first {
        consumer.seek(&topic, partition, offset);
    }
}

/// Aborts the open transaction (no EndTxn(commit) went out for it); when
/// the abort fails, [`reset`] makes sure it ends aborted.
async fn abort(producer: &Producer, cause: ClientError) -> BatchError {
    match producer.abort_transaction().await {
        Ok(()) => BatchError::Aborted {
            fenced: is_fenced(&cause),
            cause,
        },
        Err(err) => {
            tracing::debug!(error = %runnel_http::error_chain(&err), "abort failed; getting the epoch again");
            reset(producer, cause).await
        }
    }
}

/// InitProducerId again: the coordinator aborts whatever transaction of
/// this id is still open (a commit it already prepared completes, but no
/// caller gets here after sending one), and the producer starts clean.
/// Tried until it works: the forwarder cannot go on without it.
async fn reset(producer: &Producer, cause: ClientError) -> BatchError {
    let fenced = is_fenced(&cause);
    loop {
        match producer.init_transactions().await {
            Ok(()) => return BatchError::Aborted { cause, fenced },
            Err(err) => {
                tracing::warn!(error = %runnel_http::error_chain(&err), "cannot get the transactional id's epoch again; retrying");
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }
}

/// The group's answers no retry changes (a session timeout out of the
/// broker's bounds, another protocol, no permission).
fn refused_for_good(err: &ClientError) -> bool {
    use kafka_protocol::error::ResponseError;
    err.kafka_code().is_some_and(|code| {
        [
            ResponseError::InvalidSessionTimeout,
            ResponseError::InconsistentGroupProtocol,
            ResponseError::InvalidGroupId,
            ResponseError::GroupAuthorizationFailed,
            ResponseError::TopicAuthorizationFailed,
        ]
        .iter()
        .any(|e| e.code() == code)
    })
}

fn is_fenced(err: &ClientError) -> bool {
    use kafka_protocol::error::ResponseError;
    matches!(err, ClientError::Kafka { code, .. }
        if [ResponseError::ProducerFenced.code(), ResponseError::InvalidProducerEpoch.code()]
            .contains(code))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The metrics port while the forwarder runs.
struct MetricsServer {
    state: Arc<runnel_http::HttpState>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn serve_metrics(address: &str, metrics: &Arc<ForwardMetrics>) -> Result<MetricsServer> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on --metrics-address {address}"))?;
    let state = Arc::new(runnel_http::HttpState::new(
        Arc::clone(metrics) as Arc<dyn runnel_http::EncodeMetrics>
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runnel_http::serve(listener, Arc::clone(&state), async {
        let _ = stopped.await;
    }));
    Ok(MetricsServer { state, stop, task })
}

/// The progress lines on stderr.
struct Progress {
    started: Instant,
    last: Instant,
    records: u64,
    bytes: u64,
    since_last: (u64, u64),
}

impl Progress {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last: now,
            records: 0,
            bytes: 0,
            since_last: (0, 0),
        }
    }

    fn add(&mut self, records: u64, bytes: u64) {
        self.records += records;
        self.bytes += bytes;
        self.since_last.0 += records;
        self.since_last.1 += bytes;
    }

    fn maybe_report(&mut self, assignment: &[(String, i32)]) {
        let elapsed = self.last.elapsed();
        if elapsed < PROGRESS_EVERY {
            return;
        }
        let seconds = elapsed.as_secs_f64();
        eprintln!(
            "forwarded {} records in all; {:.1} records/s, {:.2} MB/s over the last {:.0} s; partitions {}",
            self.records,
            self.since_last.0 as f64 / seconds,
            self.since_last.1 as f64 / seconds / 1e6,
            seconds,
            describe(assignment),
        );
        self.last = Instant::now();
        self.since_last = (0, 0);
    }

    fn report_total(&self) {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "forwarded {} records ({:.2} MB) in {:.1} s: {:.1} records/s, {:.2} MB/s",
            self.records,
            self.bytes as f64 / 1e6,
            seconds,
            self.records as f64 / seconds,
            self.bytes as f64 / seconds / 1e6,
        );
    }
}

fn describe(assignment: &[(String, i32)]) -> String {
    if assignment.is_empty() {
        return "none".into();
    }
    assignment
        .iter()
        .map(|(t, p)| format!("{t}-{p}"))
        .collect::<Vec<_>>()
        .join(",")
}
