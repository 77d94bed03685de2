//! Replication metrics by Kafka's names (`kafka.server:type=ReplicaManager`
//! and the controller's offline partitions, flattened as Kafka's
//! Prometheus JMX exporter rules flatten them), read when scraped:
//!
//! | metric | what |
//! |---|---|
//! | `kafka_server_replicamanager_leadercount` | partitions this broker leads |
//! | `kafka_server_replicamanager_partitioncount` | partitions this broker hosts |
//! | `kafka_server_replicamanager_underreplicatedpartitions` | led partitions whose ISR is smaller than their replicas |
//! | `kafka_server_replicamanager_underminisrpartitioncount` | led partitions whose ISR is below `min.insync.replicas` |
//! | `kafka_server_replicamanager_atminisrpartitioncount` | led partitions whose ISR is at `min.insync.replicas` |
//! | `kafka_server_replicamanager_isrshrinks_total`, `_isrexpands_total` | ISR changes this broker's leaders made |
//! | `kafka_server_replicafetchermanager_maxlag` | the largest lag, in records, of a follower behind a leader here |
//! | `kafka_controller_kafkacontroller_offlinepartitionscount` | partitions with no leader (on the active controller; 0 elsewhere) |
//!
//! The readiness of a broker that replicates partitions is here too:
//! [`catching_up`] names those it is not in the ISR of yet.

use std::sync::Weak;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use runnel_metadata::MetadataImage;

use super::IsrUpdates;
use crate::cluster_metadata::ClusterMetadata;
use crate::replica_manager::ReplicaManager;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Figures {
    leaders: i64,
    partitions: i64,
    under_replicated: i64,
    under_min_isr: i64,
    at_min_isr: i64,
    max_lag: i64,
    offline: i64,
}

fn figures(replicas: &ReplicaManager, metadata: &ClusterMetadata) -> Figures {
    let mut figures = Figures::default();
    let image = metadata.image();
    for partition in replicas.all_partitions() {
        figures.partitions += 1;
        if !partition.is_leader() {
            continue;
        }
        figures.leaders += 1;
        let Some((isr, _)) = partition.isr() else {
            continue;
        };
        let replicas = image
            .partition(partition.topic(), partition.index())
            .map_or(1, |p| p.replicas.len());
        let min = usize::try_from(partition.log().config().min_insync_replicas).unwrap_or(1);
        figures.under_replicated += i64::from(isr.len() < replicas);
        figures.under_min_isr += i64::from(isr.len() < min);
        figures.at_min_isr += i64::from(isr.len() == min);
        figures.max_lag = figures.max_lag.max(partition.max_follower_lag());
    }
    let is_controller = metadata
        .quorum()
        .is_some_and(|quorum| quorum.is_controller());
    if is_controller {
        figures.offline = image
            .topics()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.leader < 0)
            .count() as i64;
    }
    figures
}

/// The partitions broker `node_id` replicates and is not in the ISR of
/// while they have a leader to catch up from, as `topic-partition`.
pub fn catching_up(image: &MetadataImage, node_id: i32) -> Vec<String> {
    let mut names = Vec::new();
    for topic in image.topics() {
        for (index, partition) in &topic.partitions {
            if partition.replicas.contains(&node_id)
                && !partition.isr.contains(&node_id)
                && partition.leader >= 0
            {
                names.push(format!("{}-{index}", topic.name));
            }
        }
    }
    names
}

/// Weak: the broker's own metrics hold this collector.
#[derive(Debug)]
pub struct ReplicationCollector {
    pub replicas: Weak<ReplicaManager>,
    pub metadata: Weak<ClusterMetadata>,
    pub updates: Weak<IsrUpdates>,
}

impl Collector for ReplicationCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (Some(replicas), Some(metadata), Some(updates)) = (
            self.replicas.upgrade(),
            self.metadata.upgrade(),
            self.updates.upgrade(),
        ) else {
            return Ok(());
        };
        let figures = figures(&replicas, &metadata);
        let (shrinks, expands) = updates.changes();
        let gauges: [(&str, &str, i64); 7] = [
            (
                "kafka_server_replicamanager_leadercount",
                "Partitions this broker leads.",
                figures.leaders,
            ),
            (
                "kafka_server_replicamanager_partitioncount",
                "Partitions this broker hosts.",
                figures.partitions,
            ),
            (
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Partitions this broker leads whose ISR is smaller than their replicas.",
                figures.under_replicated,
            ),
            (
                "kafka_server_replicamanager_underminisrpartitioncount",
                "Partitions this broker leads whose ISR is below min.insync.replicas.",
                figures.under_min_isr,
            ),
            (
                "kafka_server_replicamanager_atminisrpartitioncount",
                "Partitions this broker leads whose ISR is at min.insync.replicas.",
                figures.at_min_isr,
            ),
            (
                "kafka_server_replicafetchermanager_maxlag",
                "The largest lag, in records, of a follower behind a partition this broker leads.",
                figures.max_lag,
            ),
            (
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions with no leader (on the active controller; 0 elsewhere).",
                figures.offline,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = ConstGauge::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        for (name, help, value) in [
            (
                "kafka_server_replicamanager_isrshrinks",
                "ISR shrinks committed for partitions this broker leads.",
                shrinks,
            ),
            (
                "kafka_server_replicamanager_isrexpands",
                "ISR expansions committed for partitions this broker leads.",
                expands,
            ),
        ] {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        Ok(())
    }
}
