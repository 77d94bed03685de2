//! What a `Topic` resource asks of the brokers, done through
//! runnel-client's admin API (no Kubernetes involved, so it is tested
//! against real brokers): create the topic, grow its partitions, set its
//! configs; a shrink is refused with a reason for the resource's condition.
//! Its delay levels (`<topic>_<delay>`) are created with it, and their
//! pending records counted: each level partition's end offset minus the
//! position its mover committed (the group `__runnel-delivery`).

use std::collections::BTreeMap;

use runnel_client::delivery::{
    DELAY_MS, DELIVERY_GROUP, LEVELS, TARGET, entry_topic, level_topic, parse_delay,
};
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
    /// Why the spec could not be applied (a shrink, a delay that is no
    /// delay).
    pub refused: Option<String>,
    /// The topic's delay levels.
    pub levels: Vec<LevelOutcome>,
    /// The entry topic (`<topic>_delayed`) was created, or its levels
    /// changed, by this sync.
    pub entry_synced: bool,
}

/// One delay level after a sync.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LevelOutcome {
    pub topic: String,
    pub delay_ms: i64,
    pub created: bool,
    /// Records in the level not moved yet.
    pub pending: i64,
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
            sync_levels(admin, name, spec, &mut outcome).await?;
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
    sync_levels(admin, name, spec, &mut outcome).await?;
    Ok(outcome)
}

/// Creates the delay levels `spec` names that are missing and counts each
/// level's pending records.
async fn sync_levels(
    admin: &Admin,
    name: &str,
    spec: &TopicSpec,
    outcome: &mut TopicOutcome,
) -> Result<(), ClientError> {
    let Some(delayed) = &spec.delayed_delivery else {
        return Ok(());
    };
    let topics = admin.list_topics().await?;
    let positions: BTreeMap<(String, i32), i64> = admin
        .group_offsets(DELIVERY_GROUP)
        .await?
        .into_iter()
        .map(|(topic, partition, offset)| ((topic, partition), offset))
        .collect();
    for delay in &delayed.levels {
        let delay_ms = match parse_delay(delay) {
            Ok(ms) => ms,
            Err(err) => {
                outcome.refused = Some(format!("spec.delayedDelivery.levels: {err}"));
                continue;
            }
        };
        let topic = level_topic(name, delay);
        let mut level = LevelOutcome {
            topic: topic.clone(),
            delay_ms,
            ..LevelOutcome::default()
        };
        let partitions = match topics.iter().find(|t| t.name == topic) {
            Some(existing) => existing.partitions.len() as i32,
            None => {
                let configs = [
                    (DELAY_MS.to_string(), delay_ms.to_string()),
                    (TARGET.to_string(), name.to_string()),
                ];
                let replication = i16::try_from(spec.replication_factor).unwrap_or(i16::MAX);
                admin
                    .create_topic(&topic, outcome.partitions, replication, &configs)
                    .await?;
                level.created = true;
                outcome.partitions
            }
        };
        let wanted: Vec<(String, i32)> = (0..partitions).map(|p| (topic.clone(), p)).collect();
        let ends = admin.end_offsets(&wanted).await?;
        let starts = admin.offsets_at(&wanted, -2).await?;
        level.pending = wanted
            .iter()
            .zip(ends.iter().zip(&starts))
            .map(|(tp, (end, start))| {
                let moved_to = positions.get(tp).copied().unwrap_or(*start);
                (end - moved_to).max(0)
            })
            .sum();
        outcome.levels.push(level);
    }
    sync_entry(admin, name, spec, &topics, &delayed.levels, outcome).await
}

/// Creates the entry topic `<topic>_delayed` (any delay, through the
/// levels) or brings its `delivery.levels` to the spec's.
async fn sync_entry(
    admin: &Admin,
    name: &str,
    spec: &TopicSpec,
    topics: &[runnel_client::admin::TopicDescription],
    levels: &[String],
    outcome: &mut TopicOutcome,
) -> Result<(), ClientError> {
    if outcome.refused.is_some() {
        return Ok(());
    }
    let entry = entry_topic(name);
    let wanted = levels.join(",");
    if topics.iter().any(|t| t.name == entry) {
        let current = admin
            .describe_configs(&entry)
            .await?
            .into_iter()
            .find(|c| c.name == LEVELS)
            .and_then(|c| c.value);
        if current.as_deref() != Some(wanted.as_str()) {
            admin
                .alter_configs(
                    &entry,
                    &[
                        (LEVELS.to_string(), wanted),
                        (TARGET.to_string(), name.to_string()),
                    ],
                )
                .await?;
            outcome.entry_synced = true;
        }
        return Ok(());
    }
    let configs = [
        (LEVELS.to_string(), wanted),
        (TARGET.to_string(), name.to_string()),
    ];
    let replication = i16::try_from(spec.replication_factor).unwrap_or(i16::MAX);
    admin
        .create_topic(&entry, outcome.partitions, replication, &configs)
        .await?;
    outcome.entry_synced = true;
    Ok(())
}
