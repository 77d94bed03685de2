//! The broker's Prometheus metrics, exposed in the OpenMetrics text format
//! on the metrics port (see [`crate::http`]).
//!
//! Request, topic and connection figures are counted as they happen; the
//! families are internally locked, so a handler updates them through
//! `&BrokerMetrics` without holding anything across an await. Per-partition
//! offsets and sizes are read from the [`LogManager`] at scrape time, under
//! the names kafka_exporter uses so that existing dashboards work.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use runnel_log::{LogManager, manager};

use crate::cluster_metadata::METADATA_TOPIC;

/// The smallest request-duration bucket; a Produce served from the page
/// cache takes tens of microseconds.
const DURATION_START_SECONDS: f64 = 50e-6;
/// 50 µs doubling 18 times reaches 6.5 s, past Fetch's default long poll
/// (`fetch.max.wait.ms` 500).
const DURATION_BUCKETS: u16 = 18;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct LogDirLabels {
    log_dir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ApiErrorLabels {
    api: &'static str,
    error: &'static str,
}

/// The topic as an escaped label value (see [`label_value`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

impl TopicLabels {
    fn new(topic: &str) -> Self {
        Self {
            topic: label_value(topic),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// `value` escaped for a quoted label value: prometheus-client writes label
/// values as they are. Kafka's topic names (`[a-zA-Z0-9._-]`) never need
/// it, but a name that slipped past validation must not break a scrape.
pub(crate) fn label_value(value: &str) -> String {
    if !value.contains(['\\', '"', '\n']) {
        return value.to_owned();
    }
    let mut escaped = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

type DurationFamily = Family<ApiLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(
        DURATION_START_SECONDS,
        2.0,
        DURATION_BUCKETS,
    ))
}

/// Every metric of the broker and the registry that encodes them. Shared
/// as `Arc<BrokerMetrics>` between the connections and the metrics server.
#[derive(Debug)]
pub struct BrokerMetrics {
    registry: Registry,
    requests: Family<ApiLabels, Counter>,
    request_duration: DurationFamily,
    request_errors: Family<ApiErrorLabels, Counter>,
    topic_bytes_in: Family<TopicLabels, Counter>,
    topic_messages_in: Family<TopicLabels, Counter>,
    topic_bytes_out: Family<TopicLabels, Counter>,
    open_connections: Gauge,
    connections: Counter,
    connections_refused: Family<RefusalLabels, Counter>,
    storage_errors: Family<LogDirLabels, Counter>,
    log_dir_failing: Family<LogDirLabels, Gauge>,
    fetches_waiting: Gauge,
    delivered: Family<TopicLabels, Counter>,
    delivery_pending: Family<TopicLabels, Gauge>,
    delivery_lag: Family<TopicLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    delivery_lateness: Histogram,
    /// A collector that needs the broker (the consumer-group metrics),
    /// attached once the broker exists.
    /// One slot per collector attached later, in [`LateSlot`] order.
    late: [Arc<OnceLock<Box<dyn Collector>>>; LATE_SLOTS],
}

/// Encodes the attached collector's metrics, once there is one.
/// The collectors attached after the registry is built, one per slot.
#[derive(Debug, Clone, Copy)]
pub enum LateSlot {
    /// Consumer groups (`group_metrics`).
    Groups = 0,
    /// The metadata quorum and the controller (`quorum_metrics`).
    Quorum = 1,
    /// Partition replication (`replication::metrics`).
    Replication = 2,
}

const LATE_SLOTS: usize = 3;

#[derive(Debug)]
struct LateCollector(Arc<OnceLock<Box<dyn Collector>>>);

impl Collector for LateCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match self.0.get() {
            Some(collector) => collector.encode(encoder),
            None => Ok(()),
        }
    }
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl BrokerMetrics {
    /// The request, topic and connection metrics, without partition metrics
    /// until [`with_log_manager`](Self::with_log_manager).
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "runnel_requests",
            "Kafka requests handled, by API",
            requests.clone(),
        );
        let request_duration: DurationFamily = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "runnel_request_duration",
            "Time from a request's arrival to its response being ready, by API",
            Unit::Seconds,
            request_duration.clone(),
        );
        let request_errors = Family::<ApiErrorLabels, Counter>::default();
        registry.register(
            "runnel_request_errors",
            "Kafka requests answered with an error, by API and error",
            request_errors.clone(),
        );
        let topic_bytes_in = Family::<TopicLabels, Counter>::default();
        registry.register(
            "runnel_topic_bytes_in",
            "Record batch bytes appended to a topic by Produce",
            topic_bytes_in.clone(),
        );
        let topic_messages_in = Family::<TopicLabels, Counter>::default();
        registry.register(
            "runnel_topic_messages_in",
            "Records appended to a topic by Produce",
            topic_messages_in.clone(),
        );
        let topic_bytes_out = Family::<TopicLabels, Counter>::default();
        registry.register(
            "runnel_topic_bytes_out",
            "Record batch bytes sent from a topic by Fetch",
            topic_bytes_out.clone(),
        );
        let open_connections = Gauge::default();
        registry.register(
            "runnel_open_connections",
            "Kafka client connections open now",
            open_connections.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "runnel_connections",
            "Kafka client connections accepted",
            connections.clone(),
        );
        let connections_refused = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "runnel_connections_refused",
            "Kafka client connections closed at once by max.connections or max.connections.per.ip",
            connections_refused.clone(),
        );
        let storage_errors = Family::<LogDirLabels, Counter>::default();
        registry.register(
            "runnel_storage_errors",
            "Writes to a log dir that failed on storage (answered KAFKA_STORAGE_ERROR)",
            storage_errors.clone(),
        );
        let log_dir_failing = Family::<LogDirLabels, Gauge>::default();
        registry.register(
            "runnel_log_dir_failing",
            "1 while a log dir cannot take writes (its last write failed and no probe has succeeded since)",
            log_dir_failing.clone(),
        );
        let fetches_waiting = Gauge::default();
        registry.register(
            "runnel_fetches_waiting",
            "Fetch requests waiting for min.bytes or max.wait.ms (Kafka's fetch purgatory size)",
            fetches_waiting.clone(),
        );
        let delivered = Family::<TopicLabels, Counter>::default();
        registry.register(
            "runnel_delivery_records_delivered",
            "Records a delay level moved to its target topic, by level topic",
            delivered.clone(),
        );
        let delivery_pending = Family::<TopicLabels, Gauge>::default();
        registry.register(
            "runnel_delivery_pending_records",
            "Records (offsets) in a delay level not moved yet, due or not, by level topic",
            delivery_pending.clone(),
        );
        let delivery_lag =
            Family::<TopicLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register_with_unit(
            "runnel_delivery_mover_lag",
            "How long the oldest due record of a delay level has been waiting to move (0 when none is due)",
            Unit::Seconds,
            delivery_lag.clone(),
        );
        // 1 ms doubling 20 times reaches 17 min.
        let delivery_lateness = Histogram::new(exponential_buckets(0.001, 2.0, 20));
        registry.register_with_unit(
            "runnel_delivery_lateness",
            "Time from a delayed record's due time to its move to the target topic",
            Unit::Seconds,
            delivery_lateness.clone(),
        );
        let late: [Arc<OnceLock<Box<dyn Collector>>>; LATE_SLOTS] = Default::default();
        for slot in &late {
            registry.register_collector(Box::new(LateCollector(Arc::clone(slot))));
        }
        Self {
            registry,
            late,
            requests,
            request_duration,
            request_errors,
            topic_bytes_in,
            topic_messages_in,
            topic_bytes_out,
            open_connections,
            connections,
            connections_refused,
            storage_errors,
            log_dir_failing,
            fetches_waiting,
            delivered,
            delivery_pending,
            delivery_lag,
            delivery_lateness,
        }
    }

    /// Adds the per-partition metrics, read from `logs` at each scrape. The
    /// collector keeps only a weak reference: the shutdown path takes the
    /// manager back with `Arc::into_inner` to close it cleanly, and a
    /// metrics registry must not stand in its way.
    pub fn with_log_manager(mut self, logs: &Arc<LogManager>) -> Self {
        self.registry
            .register_collector(Box::new(PartitionCollector::new(logs)));
        self
    }

    /// Adds a collector made after the registry (one that reads the
    /// broker, which is built with these metrics) in `slot`. Only the
    /// first call per slot counts.
    pub fn attach_collector(&self, slot: LateSlot, collector: Box<dyn Collector>) {
        let _ = self.late[slot as usize].set(collector);
    }

    /// Counts one request of `api` (Kafka's API name, e.g. `"Produce"`),
    /// how long it took, and the error it was answered with, if any (the
    /// Kafka error name, e.g. `"NOT_LEADER_OR_FOLLOWER"`).
    pub fn record_request(
        &self,
        api: &'static str,
        elapsed: Duration,
        error: Option<&'static str>,
    ) {
        let labels = ApiLabels { api };
        self.requests.get_or_create(&labels).inc();
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            self.request_errors
                .get_or_create(&ApiErrorLabels { api, error })
                .inc();
        }
    }

    /// Counts `bytes` of record batches holding `messages` records appended
    /// to `topic`.
    /// A delay level moved `records`; `lateness` holds each moved batch's
    /// seconds past due and its record count.
    pub fn record_delivery(&self, level: &str, records: u64, lateness: &[(f64, u64)]) {
        self.delivered
            .get_or_create(&TopicLabels::new(level))
            .inc_by(records);
        for &(seconds, count) in lateness {
            for _ in 0..count {
                self.delivery_lateness.observe(seconds);
            }
        }
    }

    /// A delay level's records not moved yet, and how long its oldest due
    /// one has waited.
    pub fn set_delivery_backlog(&self, level: &str, pending: i64, lag_seconds: f64) {
        let labels = TopicLabels::new(level);
        self.delivery_pending.get_or_create(&labels).set(pending);
        self.delivery_lag.get_or_create(&labels).set(lag_seconds);
    }

    pub fn record_produce(&self, topic: &str, bytes: u64, messages: u64) {
        let labels = TopicLabels::new(topic);
        self.topic_bytes_in.get_or_create(&labels).inc_by(bytes);
        self.topic_messages_in
            .get_or_create(&labels)
            .inc_by(messages);
    }

    /// Counts `bytes` of record batches sent from `topic`. Records out are
    /// not counted: a fetch sends file regions without reading their batch
    /// headers, as Kafka does (it has no MessagesOut metric either).
    pub fn record_fetch(&self, topic: &str, bytes: u64) {
        let labels = TopicLabels::new(topic);
        self.topic_bytes_out.get_or_create(&labels).inc_by(bytes);
    }

    /// Counts a new connection; it stays open in the metrics until the
    /// guard is dropped, however the connection task ends.
    #[must_use = "the connection counts as closed when the guard is dropped"]
    pub fn connection_opened(&self) -> GaugeGuard {
        self.connections.inc();
        GaugeGuard::new(&self.open_connections)
    }

    /// Counts a connection refused by a connection quota (`reason` is
    /// `max_connections` or `max_connections_per_ip`).
    pub fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&RefusalLabels { reason })
            .inc();
    }

    /// Counts a fetch waiting for data until the guard is dropped.
    #[must_use = "the fetch stops counting as waiting when the guard is dropped"]
    pub fn fetch_waiting(&self) -> GaugeGuard {
        GaugeGuard::new(&self.fetches_waiting)
    }

    /// Every metric in the OpenMetrics text format, ending in `# EOF`.
    ///
    /// Reading the partition metrics locks each partition log in turn, so
    /// an async caller runs this on a blocking thread.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail, and neither do our collectors.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "encoding the metrics failed");
        }
        out
    }
}

/// Holds a gauge one higher while it lives: an open connection, a waiting
/// fetch.
#[derive(Debug)]
pub struct GaugeGuard {
    gauge: Gauge,
}

impl GaugeGuard {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self {
            gauge: gauge.clone(),
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// One partition's figures, copied out under its log's lock.
struct PartitionSnapshot {
    labels: PartitionLabels,
    log_end_offset: i64,
    log_start_offset: i64,
    size_bytes: u64,
}

/// Reads every partition's offsets and size from the log manager at scrape
/// time.
#[derive(Debug)]
struct PartitionCollector {
    logs: Weak<LogManager>,
}

impl PartitionCollector {
    fn new(logs: &Arc<LogManager>) -> Self {
        Self {
            logs: Arc::downgrade(logs),
        }
    }

    fn snapshot(&self) -> Vec<PartitionSnapshot> {
        let Some(logs) = self.logs.upgrade() else {
            return Vec::new();
        };
        logs.partitions()
            .into_iter()
            // The metadata log is the cluster's, not a topic's: Kafka's
            // partition metrics leave it out too.
            .filter(|tp| tp.topic != METADATA_TOPIC)
            .filter_map(|tp| {
                // Deleted since the listing: nothing to report.
                let log = logs.get(&tp)?;
                let log = manager::lock(&log);
                Some(PartitionSnapshot {
                    labels: PartitionLabels {
                        topic: label_value(&tp.topic),
                        partition: tp.partition,
                    },
                    log_end_offset: log.log_end_offset(),
                    log_start_offset: log.log_start_offset(),
                    size_bytes: log.size_bytes(),
                })
            })
            .collect()
    }
}

impl Collector for PartitionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let partitions = self.snapshot();
        encode_gauges(
            &mut encoder,
            ("kafka_topic_partition_current_offset", None),
            "Log end offset of a partition (the offset the next record gets).",
            &partitions,
            |p| p.log_end_offset,
        )?;
        encode_gauges(
            &mut encoder,
            ("kafka_topic_partition_oldest_offset", None),
            "Log start offset of a partition (its oldest retained offset).",
            &partitions,
            |p| p.log_start_offset,
        )?;
        encode_gauges(
            &mut encoder,
            ("runnel_partition_size", Some(&Unit::Bytes)),
            "Bytes of a partition's log segments on disk.",
            &partitions,
            |p| p.size_bytes,
        )
    }
}

/// One gauge family with a sample per partition.
fn encode_gauges<V>(
    encoder: &mut DescriptorEncoder,
    (name, unit): (&str, Option<&Unit>),
    help: &str,
    partitions: &[PartitionSnapshot],
    value: impl Fn(&PartitionSnapshot) -> V,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<V>: EncodeMetric,
{
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    for partition in partitions {
        let sample = family.encode_family(&partition.labels)?;
        ConstGauge::new(value(partition)).encode(sample)?;
    }
    Ok(())
}

impl runnel_http::EncodeMetrics for BrokerMetrics {
    fn encode(&self) -> String {
        BrokerMetrics::encode(self)
    }
}

impl crate::storage_health::StorageMetrics for BrokerMetrics {
    fn storage_error(&self, log_dir: &str) {
        self.storage_errors
            .get_or_create(&LogDirLabels {
                log_dir: log_dir.to_string(),
            })
            .inc();
    }

    fn log_dir_failing(&self, log_dir: &str, failing: bool) {
        self.log_dir_failing
            .get_or_create(&LogDirLabels {
                log_dir: log_dir.to_string(),
            })
            .set(i64::from(failing));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_log::{BatchBuilder, LogConfig, ManagerConfig, TopicPartition};

    #[test]
    fn records_requests_topics_and_connections() {
        let metrics = BrokerMetrics::new();
        metrics.record_request("Produce", Duration::from_micros(120), None);
        metrics.record_request("Produce", Duration::from_millis(3), Some("CORRUPT_MESSAGE"));
        metrics.record_produce("orders", 300, 4);
        metrics.record_fetch("orders", 150);
        let guard = metrics.connection_opened();
        let _second = metrics.connection_opened();
        drop(guard);

        let text = metrics.encode();
        for line in [
            "# TYPE runnel_requests counter",
            "runnel_requests_total{api=\"Produce\"} 2",
            "# TYPE runnel_request_duration_seconds histogram",
            "# UNIT runnel_request_duration_seconds seconds",
            "runnel_request_duration_seconds_count{api=\"Produce\"} 2",
            "runnel_request_duration_seconds_bucket{le=\"0.00005\",api=\"Produce\"} 0",
            "runnel_request_duration_seconds_bucket{le=\"0.0002\",api=\"Produce\"} 1",
            "runnel_request_errors_total{api=\"Produce\",error=\"CORRUPT_MESSAGE\"} 1",
            "runnel_topic_bytes_in_total{topic=\"orders\"} 300",
            "runnel_topic_messages_in_total{topic=\"orders\"} 4",
            "runnel_topic_bytes_out_total{topic=\"orders\"} 150",
            "runnel_open_connections 1",
            "runnel_connections_total 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains(METADATA_TOPIC),
            "the metadata log is no topic:\n{text}"
        );
        assert!(!text.contains("messages_out"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn topic_names_are_escaped_in_labels() {
        let metrics = BrokerMetrics::new();
        metrics.record_produce("a\"b\\c\nd", 1, 1);
        let text = metrics.encode();
        let line = r#"runnel_topic_bytes_in_total{topic="a\"b\\c\nd"} 1"#;
        assert!(text.lines().any(|l| l == line), "{text}");
    }

    #[test]
    fn collector_reports_partition_offsets_and_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = LogManager::open(ManagerConfig::new(vec![dir.path().to_path_buf()]), 0)
            .expect("open the log manager");
        let logs = Arc::new(logs);
        let tp = TopicPartition::new("orders", 3);
        let log = logs
            .get_or_create(&tp, LogConfig::default(), 0)
            .expect("create the partition");
        let batch = BatchBuilder::new(1_000)
            .record(Some(b"k"), Some(b"v1"), 1_000)
            .record(Some(b"k"), Some(b"v2"), 1_001)
            .build();
        manager::lock(&log).append(&batch, 1_000).expect("append");
        let size = manager::lock(&log).size_bytes();
        assert_eq!(size, batch.len() as u64);
        logs.get_or_create(
            &TopicPartition::new(METADATA_TOPIC, 0),
            LogConfig::default(),
            0,
        )
        .expect("create the metadata log");

        let metrics = BrokerMetrics::new().with_log_manager(&logs);
        let text = metrics.encode();
        let labels = "{topic=\"orders\",partition=\"3\"}";
        for line in [
            "# TYPE kafka_topic_partition_current_offset gauge".to_owned(),
            format!("kafka_topic_partition_current_offset{labels} 2"),
            format!("kafka_topic_partition_oldest_offset{labels} 0"),
            "# UNIT runnel_partition_size_bytes bytes".to_owned(),
            format!("runnel_partition_size_bytes{labels} {size}"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains(METADATA_TOPIC),
            "the metadata log is no topic:\n{text}"
        );

        // Dropping the manager must not be blocked by the registry; the
        // partition families are then empty.
        drop(log);
        let logs = Arc::into_inner(logs).expect("the collector holds no strong reference");
        logs.shutdown().expect("shutdown");
        let text = metrics.encode();
        assert!(!text.contains("partition=\"3\""), "{text}");
    }
}
