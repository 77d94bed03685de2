//! The custom resources, group `runnel.dev`, version `v1alpha1`, namespaced:
//! [`Cluster`], [`Topic`] and [`ConsumerGroup`]. Their doc comments become
//! the CRDs' descriptions (`kubectl explain`); validation that can live in
//! the schema (minimums, enums, patterns) lives there.

mod cluster;
mod consumer_group;
mod topic;

pub use cluster::{Cluster, ClusterSpec, ClusterStatus, MetricsSpec, PodOverrides, StorageSpec};
pub use consumer_group::{
    BacklogForwarding, ConsumerGroup, ConsumerGroupSpec, ConsumerGroupStatus, LagPolicy,
    OffsetReset, OffsetResetTarget, OverflowConsumers, OverflowTopic, PartitionLag,
    PartitionScaling, ScaleTargetRef, SurgePhase, SurgeStart, SurgeStatus, SurgeStop, Workload,
    WorkloadKind,
};
pub use topic::{DelayLevelStatus, DelayedDelivery, Topic, TopicSpec, TopicStatus};

use kube::CustomResourceExt;

/// The three CRDs as one YAML stream (what `runnel-operator crd` prints
/// and `crds/` holds).
pub fn crds_yaml() -> Result<String, serde_saphyr::ser::Error> {
    let mut out = String::new();
    for crd in [Cluster::crd(), Topic::crd(), ConsumerGroup::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
