//! Topic → the topic on its Cluster's brokers ([`crate::topic_sync`]):
//! created, grown, its configs applied; a shrink is refused in the `Ready`
//! condition. The finalizer [`FINALIZER`] deletes the topic on the brokers
//! before the resource goes (unless its Cluster is gone or going, which
//! takes the brokers with it).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use runnel_http::error_chain;

use super::{Context, ReconcileError, apply_status, cluster_bootstrap, namespace_of};
use crate::crd::{Topic, TopicStatus};
use crate::status::{set_condition, topic_status};
use crate::topic_sync::{TopicOutcome, sync_topic};

pub const FINALIZER: &str = "runnel.dev/topic";

/// How often a synced topic is compared with the brokers again.
const RESYNC: Duration = Duration::from_secs(300);

/// The topic's name on the brokers.
pub fn topic_name(topic: &Topic) -> String {
    topic
        .spec
        .topic_name
        .clone()
        .unwrap_or_else(|| topic.name_any())
}

pub async fn reconcile(topic: Arc<Topic>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let namespace = namespace_of(topic.as_ref(), "Topic")?;
    let topics: Api<Topic> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&topics, FINALIZER, topic, |event| async {
        match event {
            Finalizer::Apply(topic) => apply_topic(&topic, &topics, &namespace, &ctx).await,
            Finalizer::Cleanup(topic) => delete_topic(&topic, &namespace, &ctx).await,
        }
    })
    .await
    .map_err(|err| match err {
        kube::runtime::finalizer::Error::ApplyFailed(err)
        | kube::runtime::finalizer::Error::CleanupFailed(err) => err,
        other => ReconcileError::Finalizer(Box::new(other)),
    })
}

async fn apply_topic(
    topic: &Topic,
    topics: &Api<Topic>,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let name = topic_name(topic);
    let previous = topic.status.as_ref();
    let outcome = match sync(topic, &name, namespace, ctx).await {
        Ok(outcome) => outcome,
        Err(err) => {
            // Say why in the resource before retrying.
            let mut status = previous.cloned().unwrap_or_default();
            set_condition(
                &mut status.conditions,
                "Ready",
                false,
                not_ready_reason(&err),
                error_chain(&err),
                topic.metadata.generation,
                Timestamp::now(),
            );
            apply_topic_status(topics, topic, status).await?;
            return Err(err);
        }
    };
    let status = topic_status(
        previous,
        &outcome,
        topic.metadata.generation,
        Timestamp::now(),
    );
    if outcome.created {
        ctx.event(
            topic,
            EventType::Normal,
            "Created",
            "CreateTopic",
            format!(
                "topic {name} created with {} partitions",
                outcome.partitions
            ),
        )
        .await;
    }
    if outcome.entry_synced {
        ctx.event(
            topic,
            EventType::Normal,
            "DelayedDelivery",
            "SyncEntryTopic",
            format!(
                "entry topic {} takes any delay through the levels {}",
                runnel_client::delivery::entry_topic(&name),
                topic
                    .spec
                    .delayed_delivery
                    .as_ref()
                    .map(|d| d.levels.join(","))
                    .unwrap_or_default()
            ),
        )
        .await;
    }
    if outcome.grown_by > 0 {
        ctx.event(
            topic,
            EventType::Normal,
            "PartitionsAdded",
            "CreatePartitions",
            format!(
                "topic {name} grown by {} to {} partitions",
                outcome.grown_by, outcome.partitions
            ),
        )
        .await;
    }
    if !outcome.configs_set.is_empty() {
        ctx.event(
            topic,
            EventType::Normal,
            "ConfigChanged",
            "AlterConfigs",
            format!("topic {name}: set {}", outcome.configs_set.join(", ")),
        )
        .await;
    }
    if let Some(why) = &outcome.refused
        && previous.is_none_or(|s| s.observed_generation != topic.metadata.generation)
    {
        ctx.event(
            topic,
            EventType::Warning,
            "ShrinkRefused",
            "CreatePartitions",
            why.clone(),
        )
        .await;
    }
    apply_topic_status(topics, topic, status).await?;
    Ok(Action::requeue(RESYNC))
}

/// Applies `status` without `scaledPartitions`, which only the
/// ConsumerGroup reconciler writes (by merge patch), when it differs from
/// what the resource has.
async fn apply_topic_status(
    topics: &Api<Topic>,
    topic: &Topic,
    mut status: TopicStatus,
) -> Result<(), ReconcileError> {
    status.scaled_partitions = None;
    let mut current = topic.status.clone().unwrap_or_default();
    current.scaled_partitions = None;
    if current != status || topic.status.is_none() {
        apply_status(topics, topic, &status).await?;
    }
    Ok(())
}

/// The topic brought to the spec on the brokers of the Topic's Cluster.
async fn sync(
    topic: &Topic,
    name: &str,
    namespace: &str,
    ctx: &Context,
) -> Result<TopicOutcome, ReconcileError> {
    let (_cluster, bootstrap) =
        cluster_bootstrap(&ctx.client, namespace, &topic.spec.cluster).await?;
    let admin = ctx.admins.get(&bootstrap).await?;
    let scaled = topic.status.as_ref().and_then(|s| s.scaled_partitions);
    sync_topic(&admin, name, &topic.spec, scaled)
        .await
        .map_err(|source| {
            if source.kafka_code().is_none() {
                ctx.admins.forget(&bootstrap);
            }
            ReconcileError::Brokers { bootstrap, source }
        })
}

/// The `Ready` condition's reason when a sync failed.
fn not_ready_reason(err: &ReconcileError) -> &'static str {
    match err {
        ReconcileError::MissingCluster { .. } => "ClusterNotFound",
        // The brokers answered with a Kafka error (e.g. a replication
        // factor larger than the brokers).
        ReconcileError::Brokers { source, .. } if source.kafka_code().is_some() => "Refused",
        ReconcileError::Brokers { .. } => "BrokersUnavailable",
        _ => "SyncFailed",
    }
}

async fn delete_topic(
    topic: &Topic,
    namespace: &str,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let name = topic_name(topic);
    let (cluster, bootstrap) =
        match cluster_bootstrap(&ctx.client, namespace, &topic.spec.cluster).await {
            Ok(found) => found,
            Err(ReconcileError::MissingCluster { .. }) => {
                tracing::info!(topic = %name, namespace, "cluster gone: nothing to delete");
                return Ok(Action::await_change());
            }
            Err(err) => return Err(err),
        };
    if cluster.metadata.deletion_timestamp.is_some() {
        tracing::info!(topic = %name, namespace, "cluster being deleted: not deleting the topic");
        return Ok(Action::await_change());
    }
    let admin = ctx.admins.get(&bootstrap).await?;
    // Its entry topic and delay levels first: they move records into the
    // topic (the entry into the levels).
    let mut levels: Vec<String> = Vec::new();
    if let Some(delayed) = &topic.spec.delayed_delivery {
        levels.push(runnel_client::delivery::entry_topic(&name));
        for delay in &delayed.levels {
            levels.push(runnel_client::delivery::level_topic(&name, delay));
        }
    }
    for level in levels {
        match admin.delete_topic(&level).await {
            Ok(()) => tracing::info!(topic = %level, namespace, "delay level deleted"),
            Err(err) if err.kafka_code() == Some(3) => {}
            Err(source) => {
                ctx.admins.forget(&bootstrap);
                return Err(ReconcileError::Brokers { bootstrap, source });
            }
        }
    }
    match admin.delete_topic(&name).await {
        Ok(()) => {
            tracing::info!(topic = %name, namespace, "topic deleted");
            Ok(Action::await_change())
        }
        // UNKNOWN_TOPIC_OR_PARTITION: already gone.
        Err(err) if err.kafka_code() == Some(3) => Ok(Action::await_change()),
        Err(source) => {
            ctx.admins.forget(&bootstrap);
            Err(ReconcileError::Brokers { bootstrap, source })
        }
    }
}
