//! The operator's Prometheus metrics, served on its `/metrics`:
//!
//! | Metric | Labels |
//! |---|---|
//! | `runnel_operator_reconciliations_total` | `controller`, `result` (`ok` / `error`) |
//! | `runnel_operator_reconcile_duration_seconds` | `controller` |
//! | `runnel_operator_consumergroup_lag` | `namespace`, `consumergroup`, `topic`, `partition` |
//! | `runnel_operator_consumergroup_lag_sum` | `namespace`, `consumergroup` |
//! | `runnel_operator_partitions_added_total` | `namespace`, `consumergroup` |
//! | `runnel_operator_backlog_surge_active` | `namespace`, `consumergroup` (1 outside Normal) |
//! | `runnel_operator_backlog_records_forwarded_total` | `namespace`, `consumergroup` |
//! | `runnel_operator_backlog_surge_duration_seconds` | `namespace`, `consumergroup` |
//! | `runnel_operator_leader` | (1 while this replica holds the lease) |

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::crd::PartitionLag;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    namespace: String,
    consumergroup: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    namespace: String,
    consumergroup: String,
    topic: String,
    partition: i32,
}

type DurationFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;
type SurgeDurationFamily = Family<GroupLabels, Histogram, fn() -> Histogram>;

fn surge_histogram() -> Histogram {
    // 10 s to about 11 hours.
    Histogram::new(exponential_buckets(10.0, 2.0, 13))
}

fn duration_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn group_labels(namespace: &str, group: &str) -> GroupLabels {
    GroupLabels {
        namespace: namespace.to_string(),
        consumergroup: group.to_string(),
    }
}

/// Every metric of the operator and the registry that encodes them.
#[derive(Debug)]
pub struct OperatorMetrics {
    registry: Registry,
    reconciliations: Family<ReconcileLabels, Counter>,
    reconcile_duration: DurationFamily,
    lag: Family<PartitionLabels, Gauge>,
    lag_sum: Family<GroupLabels, Gauge>,
    partitions_added: Family<GroupLabels, Counter>,
    surge_active: Family<GroupLabels, Gauge>,
    records_forwarded: Family<GroupLabels, Counter>,
    surge_duration: SurgeDurationFamily,
    leader: Gauge,
    /// The lag series of each group, to remove them when they go.
    lag_series: Mutex<HashMap<GroupLabels, Vec<PartitionLabels>>>,
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OperatorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconciliations = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "runnel_operator_reconciliations",
            "Reconciliations run, by controller and result",
            reconciliations.clone(),
        );
        let reconcile_duration: DurationFamily = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "runnel_operator_reconcile_duration",
            "Time one reconciliation took, by controller",
            Unit::Seconds,
            reconcile_duration.clone(),
        );
        let lag = Family::<PartitionLabels, Gauge>::default();
        registry.register(
            "runnel_operator_consumergroup_lag",
            "Messages a ConsumerGroup's group is behind the log end, by partition",
            lag.clone(),
        );
        let lag_sum = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "runnel_operator_consumergroup_lag_sum",
            "Messages a ConsumerGroup's group is behind over all its partitions",
            lag_sum.clone(),
        );
        let partitions_added = Family::<GroupLabels, Counter>::default();
        registry.register(
            "runnel_operator_partitions_added",
            "Partitions the lag policy added to a ConsumerGroup's topics",
            partitions_added.clone(),
        );
        let surge_active = Family::<GroupLabels, Gauge>::default();
        registry.register(
            "runnel_operator_backlog_surge_active",
            "1 while a ConsumerGroup's backlog-forwarding surge runs (any phase but Normal)",
            surge_active.clone(),
        );
        let records_forwarded = Family::<GroupLabels, Counter>::default();
        registry.register(
            "runnel_operator_backlog_records_forwarded",
            "Records the surges' forwarders moved into the overflow topic (the group's committed \
             offsets over each Forwarding phase)",
            records_forwarded.clone(),
        );
        let surge_duration: SurgeDurationFamily = Family::new_with_constructor(surge_histogram);
        registry.register_with_unit(
            "runnel_operator_backlog_surge_duration",
            "Time from a surge's start to the overflow drained and the group handed back",
            Unit::Seconds,
            surge_duration.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "runnel_operator_leader",
            "1 while this replica holds the leader lease and reconciles",
            leader.clone(),
        );
        Self {
            registry,
            reconciliations,
            reconcile_duration,
            lag,
            lag_sum,
            partitions_added,
            surge_active,
            records_forwarded,
            surge_duration,
            leader,
            lag_series: Mutex::default(),
        }
    }

    pub fn record_reconcile(&self, controller: &'static str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.reconciliations
            .get_or_create(&ReconcileLabels { controller, result })
            .inc();
        self.reconcile_duration
            .get_or_create(&ControllerLabels { controller })
            .observe(took.as_secs_f64());
    }

    /// Replaces the group's lag series with `partitions` (partitions that
    /// went away lose their series).
    pub fn set_group_lag(&self, namespace: &str, group: &str, partitions: &[PartitionLag]) {
        let group_labels = GroupLabels {
            namespace: namespace.to_string(),
            consumergroup: group.to_string(),
        };
        let mut series = self.lag_series.lock().unwrap_or_else(|e| e.into_inner());
        let current = series.entry(group_labels.clone()).or_default();
        for old in current.drain(..) {
            self.lag.remove(&old);
        }
        let mut total = 0;
        for p in partitions {
            total += p.lag;
            let labels = PartitionLabels {
                namespace: namespace.to_string(),
                consumergroup: group.to_string(),
                topic: p.topic.clone(),
                partition: p.partition,
            };
            self.lag.get_or_create(&labels).set(p.lag);
            current.push(labels);
        }
        self.lag_sum.get_or_create(&group_labels).set(total);
    }

    /// Drops the lag series of a group (its resource was deleted).
    pub fn forget_group(&self, namespace: &str, group: &str) {
        let group_labels = GroupLabels {
            namespace: namespace.to_string(),
            consumergroup: group.to_string(),
        };
        let mut series = self.lag_series.lock().unwrap_or_else(|e| e.into_inner());
        for old in series.remove(&group_labels).unwrap_or_default() {
            self.lag.remove(&old);
        }
        self.lag_sum.remove(&group_labels);
        self.surge_active.remove(&group_labels);
    }

    /// Keeps the lag series of the groups for which `keep(namespace, name)`
    /// holds.
    pub fn retain_groups(&self, keep: impl Fn(&str, &str) -> bool) {
        let gone: Vec<GroupLabels> = {
            let series = self.lag_series.lock().unwrap_or_else(|e| e.into_inner());
            series
                .keys()
                .filter(|g| !keep(&g.namespace, &g.consumergroup))
                .cloned()
                .collect()
        };
        for group in gone {
            self.forget_group(&group.namespace, &group.consumergroup);
        }
    }

    pub fn record_partitions_added(&self, namespace: &str, group: &str, added: u64) {
        self.partitions_added
            .get_or_create(&GroupLabels {
                namespace: namespace.to_string(),
                consumergroup: group.to_string(),
            })
            .inc_by(added);
    }

    pub fn set_surge_active(&self, namespace: &str, group: &str, active: bool) {
        self.surge_active
            .get_or_create(&group_labels(namespace, group))
            .set(i64::from(active));
    }

    pub fn record_forwarded(&self, namespace: &str, group: &str, records: u64) {
        self.records_forwarded
            .get_or_create(&group_labels(namespace, group))
            .inc_by(records);
    }

    pub fn record_surge_ended(&self, namespace: &str, group: &str, seconds: f64) {
        self.surge_duration
            .get_or_create(&group_labels(namespace, group))
            .observe(seconds);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Every metric in the OpenMetrics text format, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "encoding the metrics failed");
        }
        out
    }
}

impl runnel_http::EncodeMetrics for OperatorMetrics {
    fn encode(&self) -> String {
        OperatorMetrics::encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_series_follow_the_group_s_partitions() {
        let metrics = OperatorMetrics::new();
        let lag = |topic: &str, partition, lag| PartitionLag {
            topic: topic.into(),
            partition,
            lag,
        };
        metrics.set_group_lag("ns", "g", &[lag("t", 0, 5), lag("t", 1, 7)]);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"runnel_operator_consumergroup_lag{namespace="ns",consumergroup="g",topic="t",partition="1"} 7"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"runnel_operator_consumergroup_lag_sum{namespace="ns",consumergroup="g"} 12"#
        ));
        metrics.set_group_lag("ns", "g", &[lag("t", 0, 1)]);
        let text = metrics.encode();
        assert!(!text.contains(r#"partition="1""#), "{text}");
        metrics.forget_group("ns", "g");
        assert!(!metrics.encode().contains("consumergroup=\"g\""));
        metrics.record_reconcile("topic", true, Duration::from_millis(3));
        assert!(metrics.encode().contains(
            r#"runnel_operator_reconciliations_total{controller="topic",result="ok"} 1"#
        ));
    }
}
