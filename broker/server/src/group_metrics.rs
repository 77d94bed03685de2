//! Consumer-group metrics, read from the broker at scrape time under
//! kafka_exporter's names so that existing dashboards and alerts work:
//!
//! - `kafka_consumergroup_current_offset{consumergroup,topic,partition}`:
//!   the committed offset;
//! - `kafka_consumergroup_lag{consumergroup,topic,partition}`: log end
//!   offset minus committed offset (0 when the commit is past the end);
//! - `kafka_consumergroup_current_offset_sum` and `kafka_consumergroup_lag_sum`
//!   `{consumergroup,topic}`: the same summed over a topic's partitions;
//! - `kafka_consumergroup_members{consumergroup}`: members now;
//!
//! and ours: `runnel_consumergroup_rebalances_total{consumergroup}`
//! (rebalances started since this broker loaded the group) and
//! `runnel_consumergroup_state{consumergroup,state}` (1 for the group's
//! state: Empty, PreparingRebalance, CompletingRebalance, Stable).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::broker::Broker;
use crate::groups::GroupFigures;
use crate::metrics::label_value;

/// Where the collector finds the broker once it exists: the metrics
/// registry is built first, and holds the broker weakly so that shutdown
/// can take the log manager back.

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupLabels {
    consumergroup: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupStateLabels {
    consumergroup: String,
    state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupTopicLabels {
    consumergroup: String,
    topic: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct GroupPartitionLabels {
    consumergroup: String,
    topic: String,
    partition: i32,
}

/// One committed offset and its partition's log end offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CommittedFigures {
    labels: GroupPartitionLabels,
    committed: i64,
    lag: i64,
}

#[derive(Debug)]
pub struct GroupCollector {
    /// Weak: the broker's own metrics hold this collector.
    broker: Weak<Broker>,
}

impl GroupCollector {
    pub fn new(broker: &Arc<Broker>) -> Self {
        Self {
            broker: Arc::downgrade(broker),
        }
    }
}

/// Every committed offset with its lag, and the groups' figures (groups
/// with offsets but no membership state count as Empty with no members).
fn snapshot(broker: &Broker) -> (Vec<GroupFigures>, Vec<CommittedFigures>) {
    let mut groups: BTreeMap<String, GroupFigures> = broker
        .groups
        .figures()
        .into_iter()
        .map(|g| (g.group_id.clone(), g))
        .collect();
    let mut committed = Vec::new();
    for (group, topic, partition, offset) in broker.group_coordinator.committed_offsets() {
        let end = broker
            .partition(&topic, partition)
            .map(|p| p.log().log_end_offset());
        // A topic deleted since the commit has no lag to report.
        let Some(end) = end else { continue };
        groups.entry(group.clone()).or_insert_with(|| GroupFigures {
            group_id: group.clone(),
            state: "Empty",
            members: 0,
            rebalances: 0,
        });
        committed.push(CommittedFigures {
            labels: GroupPartitionLabels {
                consumergroup: label_value(&group),
                topic: label_value(&topic),
                partition,
            },
            committed: offset,
            lag: end.saturating_sub(offset).max(0),
        });
    }
    (groups.into_values().collect(), committed)
}

impl Collector for GroupCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(broker) = self.broker.upgrade() else {
            return Ok(());
        };
        let (groups, committed) = snapshot(&broker);
        drop(broker);

        let partition_gauge = |encoder: &mut DescriptorEncoder,
                               name: &str,
                               help: &str,
                               value: fn(&CommittedFigures) -> i64|
         -> Result<(), std::fmt::Error> {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for c in &committed {
                ConstGauge::new(value(c)).encode(family.encode_family(&c.labels)?)?;
            }
            Ok(())
        };
        partition_gauge(
            &mut encoder,
            "kafka_consumergroup_current_offset",
            "Committed offset of a consumer group on a partition.",
            |c| c.committed,
        )?;
        partition_gauge(
            &mut encoder,
            "kafka_consumergroup_lag",
            "Log end offset minus the consumer group's committed offset on a partition.",
            |c| c.lag,
        )?;

        let mut sums: BTreeMap<GroupTopicKey, (i64, i64)> = BTreeMap::new();
        for c in &committed {
            let key = (c.labels.consumergroup.clone(), c.labels.topic.clone());
            let sum = sums.entry(key).or_default();
            sum.0 += c.committed;
            sum.1 += c.lag;
        }
        let topic_gauge = |encoder: &mut DescriptorEncoder,
                           name: &str,
                           help: &str,
                           value: fn(&(i64, i64)) -> i64|
         -> Result<(), std::fmt::Error> {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for ((group, topic), sum) in &sums {
                let labels = GroupTopicLabels {
                    consumergroup: group.clone(),
                    topic: topic.clone(),
                };
                ConstGauge::new(value(sum)).encode(family.encode_family(&labels)?)?;
            }
            Ok(())
        };
        topic_gauge(
            &mut encoder,
            "kafka_consumergroup_current_offset_sum",
            "Sum of a consumer group's committed offsets over a topic's partitions.",
            |s| s.0,
        )?;
        topic_gauge(
            &mut encoder,
            "kafka_consumergroup_lag_sum",
            "Sum of a consumer group's lag over a topic's partitions.",
            |s| s.1,
        )?;

        let labels = |g: &GroupFigures| GroupLabels {
            consumergroup: label_value(&g.group_id),
        };
        let mut family = encoder.encode_descriptor(
            "kafka_consumergroup_members",
            "Members of a consumer group.",
            None,
            MetricType::Gauge,
        )?;
        for g in &groups {
            ConstGauge::new(g.members as i64).encode(family.encode_family(&labels(g))?)?;
        }
        let mut family = encoder.encode_descriptor(
            "runnel_consumergroup_rebalances",
            "Rebalances a consumer group started since this broker loaded it.",
            None,
            MetricType::Counter,
        )?;
        for g in &groups {
            ConstCounter::new(g.rebalances).encode(family.encode_family(&labels(g))?)?;
        }
        let mut family = encoder.encode_descriptor(
            "runnel_consumergroup_state",
            "1 for the state a consumer group is in (Empty, PreparingRebalance, CompletingRebalance, Stable).",
            None,
            MetricType::Gauge,
        )?;
        for g in &groups {
            let labels = GroupStateLabels {
                consumergroup: label_value(&g.group_id),
                state: g.state,
            };
            ConstGauge::new(1).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

type GroupTopicKey = (String, String);
