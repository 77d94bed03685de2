//! What a `Topic` resource asks of the brokers, done through
//! runnel-client's admin API (no Kubernetes involved, so it is tested
//! against real brokers): create the topic, grow its partitions, set its
//! configs; a shrink is refused with a reason for the resource's condition.

use std::collections::BTreeMap;

use runnel_client::{Admin, ClientError};

use crate::crd::TopicSpec;

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicOutcome {
    /// Partitions the topic has now.
    pub partitions: i32,
    /// The topic's id on the brokers.
    pub topic_id: Option<String>,
    pub created: bool,
    /// Partitions added by this sync.
    pub grown_by: i32,
    /// Config keys set by this sync.
    pub configs_set: Vec<String>,
    /// Why the spec could not be applied (a shrink).
    pub refused: Option<String>,
}

/// Brings topic `name` to `spec`. `scaled_partitions` is what a
/// ConsumerGroup's partition scaling grew the topic to: partitions up to
/// it beyond `spec.partitions` are not a shrink request.
pub async fn sync_topic(
    admin: &Admin,
    name: &str,
    spec: &TopicSpec,
    scaled_partitions: Option<i32>,
) -> Result<TopicOutcome, ClientError> {
    let existing = admin
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == name);
    let mut outcome = TopicOutcome::default();
    match existing {
        None => {
            let configs: Vec<(String, String)> = spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let replication = i16::try_from(spec.replication_factor).unwrap_or(i16::MAX);
            admin
                .create_topic(name, spec.partitions, replication, &configs)
                .await?;
            outcome.created = true;
            outcome.partitions = spec.partitions;
            outcome.topic_id = admin
                .list_topics()
                .await?
                .into_iter()
                .find(|t| t.name == name)
                .map(|t| t.topic_id.to_string());
            return Ok(outcome);
        }
        Some(topic) => {
            let current = topic.partitions.len() as i32;
            outcome.partitions = current;
            outcome.topic_id = Some(topic.topic_id.to_string());
            if spec.partitions > current {
                admin.create_partitions(name, spec.partitions).await?;
                outcome.grown_by = spec.partitions - current;
                outcome.partitions = spec.partitions;
            } else if spec.partitions < current && scaled_partitions.is_none_or(|s| s < current) {
                outcome.refused = Some(format!(
                    "spec.partitions is {} but topic {name} has {current}: partitions can only grow",
                    spec.partitions
                ));
            }
        }
    }
    let overrides: BTreeMap<String, Option<String>> = admin
        .describe_configs(name)
        .await?
        .into_iter()
        .filter(|c| c.is_override)
        .map(|c| (c.name, c.value))
        .collect();
    let changes: Vec<(String, String)> = spec
        .config
        .iter()
        .filter(|(k, v)| overrides.get(*k).and_then(|o| o.as_deref()) != Some(v.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !changes.is_empty() {
        admin.alter_configs(name, &changes).await?;
        outcome.configs_set = changes.into_iter().map(|(k, _)| k).collect();
    }
    Ok(outcome)
}
