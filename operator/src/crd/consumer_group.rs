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
    /// Backlog forwarding into a wider topic (applied by a later release).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarding: Option<ForwardingSpec>,
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

/// Backlog forwarding settings (kept in the resource now).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardingSpec {
    #[serde(default)]
    pub enabled: bool,
    /// The wider topic the backlog moves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_topic: Option<String>,
    /// Forwarder members to run.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub forwarders: i32,
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
}
