use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A topic on a Runnel cluster: created through the admin API, grown when
/// `partitions` goes up (shrinking is refused with a condition), its
/// configs applied, and deleted on the brokers when the resource goes.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "runnel.dev",
    doc = "A topic on a Runnel cluster (see TopicSpec).",
    version = "v1alpha1",
    kind = "Topic",
    namespaced,
    status = "TopicStatus",
    shortname = "rnt",
    printcolumn = r#"{"name":"Cluster","type":"string","jsonPath":".spec.cluster"}"#,
    printcolumn = r#"{"name":"Partitions","type":"integer","jsonPath":".spec.partitions"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TopicSpec {
    /// The name of the `Cluster` (same namespace) the topic lives on.
    #[schemars(length(min = 1))]
    pub cluster: String,
    /// The topic's name on the brokers; the resource's name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-zA-Z0-9._-]{1,249}$"))]
    pub topic_name: Option<String>,
    /// Partitions; may grow, never shrink.
    #[schemars(range(min = 1))]
    pub partitions: i32,
    /// Copies of each partition.
    #[serde(default = "one")]
    #[schemars(range(min = 1))]
    pub replication_factor: i32,
    /// Topic configs by Kafka's names (`retention.ms`, `cleanup.policy`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Delay levels of the topic: records produced to a level reach the
    /// topic that long after they were written, and records produced to
    /// the entry topic `<topic>_delayed` with `runnel-deliver-at` or
    /// `runnel-delay-ms` reach it at that time, hopping through the levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delayed_delivery: Option<DelayedDelivery>,
}

/// The delay levels a Topic gets: one topic `<topic>_<delay>` each, and the
/// entry topic `<topic>_delayed` listing them, made with the topic's
/// partitions and replication factor.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelayedDelivery {
    /// Each level's delay: a whole number and a unit (ms, s, m, h, d),
    /// e.g. `30s`, `30m`, `1h`.
    #[schemars(length(min = 1), inner(regex(pattern = r"^[0-9]+(ms|s|m|h|d)$")))]
    pub levels: Vec<String>,
}

/// One delay level as the operator last saw it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DelayLevelStatus {
    /// The level's topic, `<topic>_<delay>`.
    pub topic: String,
    pub delay_ms: i64,
    /// Records written to the level and not moved to the topic yet.
    pub pending: i64,
}

fn one() -> i32 {
    1
}

/// What the operator observed of the topic.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatus {
    /// The topic id the brokers gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<String>,
    /// Partitions it has on the brokers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<i32>,
    /// Partitions a ConsumerGroup's partition scaling grew the topic to,
    /// beyond `spec.partitions` (which then no longer counts as a shrink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaled_partitions: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The delay levels and their pending records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delay_levels: Vec<DelayLevelStatus>,
    /// `Ready`, and why not (e.g. a refused shrink).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
