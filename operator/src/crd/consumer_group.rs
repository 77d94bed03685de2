use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A consumer group the operator watches: its lag goes to status and
/// `/metrics`; lag above the policy's threshold for long enough adds
/// partitions to its topics (bounded, one step per cool-down); an offset
/// reset request is applied once.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "runnel.dev",
    doc = "A consumer group on a Runnel cluster, its lag and scaling (see ConsumerGroupSpec).",
    version = "v1alpha1",
    kind = "ConsumerGroup",
    namespaced,
    status = "ConsumerGroupStatus",
    shortname = "rncg",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.state"}"#,
    printcolumn = r#"{"name":"Lag","type":"integer","jsonPath":".status.lagTotal"}"#,
    printcolumn = r#"{"name":"Surge","type":"string","jsonPath":".status.surge.phase"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupSpec {
    /// The name of the `Cluster` (same namespace) the group consumes from.
    #[schemars(length(min = 1))]
    pub cluster: String,
    /// The group id; the resource's name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// The topics whose lag counts and which may get partitions.
    #[schemars(length(min = 1))]
    pub topics: Vec<String>,
    /// When the group counts as lagging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_policy: Option<LagPolicy>,
    /// How partitions are added while it lags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_scaling: Option<PartitionScaling>,
    /// The backlog-forwarding surge: when the group lags too far, its
    /// consumers stop, forwarders move the backlog into a wider overflow
    /// topic that more consumers read, and the group gets it back once the
    /// lag is low and the overflow drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog_forwarding: Option<BacklogForwarding>,
    /// An offset reset to apply once (the group must be empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_reset: Option<OffsetReset>,
}

/// Lag above `thresholdMessages` for `forSeconds` makes the group lagging.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LagPolicy {
    /// Total lag (messages) over the group's topics.
    #[schemars(range(min = 1))]
    pub threshold_messages: i64,
    /// How long the lag must stay above the threshold.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub for_seconds: i64,
}

/// Partitions added while the group lags.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionScaling {
    /// Never more partitions than this per topic.
    #[schemars(range(min = 1))]
    pub max_partitions: i32,
    /// Partitions added at a time.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub step: i32,
    /// Time between two additions.
    #[serde(default = "five_minutes")]
    #[schemars(range(min = 0))]
    pub cooldown_seconds: i64,
}

fn one() -> i32 {
    1
}

fn five_minutes() -> i64 {
    300
}

/// The backlog-forwarding surge of a group (README, "Backlog forwarding").
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BacklogForwarding {
    /// Turns the surge off without deleting the settings (a running surge
    /// hands back first).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The overflow topic, created as a Topic of the same cluster.
    pub overflow: OverflowTopic,
    /// A surge starts when the group's lag stays above this.
    pub start: SurgeStart,
    /// A surge ends when the group's lag is below this and the overflow
    /// is drained.
    pub stop: SurgeStop,
    /// The group's own consumers: scaled to 0 for the surge, back after.
    pub originals: Workload,
    /// The overflow's consumers: scaled to `replicas` for the surge, to 0
    /// after.
    pub overflow_consumers: OverflowConsumers,
    /// `runnel forward` pods (a Deployment of the cluster's image).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub forwarders: i32,
    /// How long the originals may take to leave the group, and the
    /// forwarders to become ready, before the operator gives up and
    /// scales the originals back.
    #[serde(default = "five_minutes")]
    #[schemars(range(min = 1))]
    pub give_up_after_seconds: i64,
}

fn yes() -> bool {
    true
}

/// The overflow topic of a surge.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverflowTopic {
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(range(min = 1))]
    pub partitions: i32,
    /// Copies of each partition (as a Topic's `replicationFactor`).
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub replication_factor: i32,
    /// The consumer group of the overflow's consumers (its lag says when
    /// the overflow is drained).
    #[schemars(length(min = 1))]
    pub group: String,
}

/// Lag above `lagAbove` for `forSeconds` starts a surge.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SurgeStart {
    #[schemars(range(min = 1))]
    pub lag_above: i64,
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub for_seconds: i64,
}

/// Lag below `lagBelow` (and the overflow drained) ends a surge.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SurgeStop {
    #[schemars(range(min = 0))]
    pub lag_below: i64,
}

/// A Deployment or StatefulSet the operator scales (through its `scale`
/// subresource).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    pub scale_target_ref: ScaleTargetRef,
}

/// The overflow's consumers and how many run during a surge.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OverflowConsumers {
    pub scale_target_ref: ScaleTargetRef,
    #[schemars(range(min = 1))]
    pub replicas: i32,
}

/// As KEDA's and the HPA's `scaleTargetRef`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTargetRef {
    /// `Deployment` or `StatefulSet`.
    pub kind: WorkloadKind,
    #[schemars(length(min = 1))]
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
}

/// Where a surge is.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum SurgePhase {
    /// No surge: the group's own consumers read it.
    #[default]
    Normal,
    /// The originals are scaled to 0; waiting until they left the group.
    Draining,
    /// Forwarders move the backlog; the overflow's consumers read it.
    Forwarding,
    /// Forwarders stopped; waiting until the overflow is drained.
    Returning,
}

/// The surge's state in the ConsumerGroup's status.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SurgeStatus {
    pub phase: SurgePhase,
    /// Why it is in this phase.
    #[serde(default)]
    pub reason: String,
    /// When it entered this phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
    /// When the surge started (Draining).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Time>,
    /// Since when the lag has been above `start.lagAbove` (Normal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above_since: Option<Time>,
    /// The originals' replicas before the surge, given back after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_replicas: Option<i32>,
    /// The group's committed offsets, summed, when forwarding started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at_start: Option<i64>,
    /// Since when fewer forwarders than wanted are ready (Forwarding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unready_since: Option<Time>,
    /// The surge gave up: the originals are back while the overflow
    /// drains.
    #[serde(default)]
    pub gave_up: bool,
}

/// Where to move the group's offsets.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OffsetResetTarget {
    Earliest,
    Latest,
    Datetime,
}

/// A one-time offset reset, applied once per `id` and recorded in status.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OffsetReset {
    /// Changing it requests another reset.
    #[schemars(length(min = 1))]
    pub id: String,
    pub to: OffsetResetTarget,
    /// With `to: datetime`: RFC 3339, e.g. `2026-01-01T00:00:00Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datetime: Option<String>,
}

/// One partition's lag.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// Log end offset minus the committed offset.
    pub lag: i64,
}

/// What the operator observed of the group.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupStatus {
    #[serde(default)]
    pub lag_total: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lag: Vec<PartitionLag>,
    /// The group's state on the brokers (Stable, Empty, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default)]
    pub members: i32,
    /// `Lagging` and `Scaling`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Since when the lag has been above the policy's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above_threshold_since: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scaling_time: Option<Time>,
    /// The `offsetReset.id` last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_offset_reset: Option<String>,
    /// The backlog-forwarding surge, with `backlogForwarding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surge: Option<SurgeStatus>,
}
