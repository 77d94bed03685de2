//! ConsumerGroup → on every lag interval: the group's lag from the brokers
//! ([`crate::lag`]) into status and `/metrics`; the lag policy's decision,
//! and when it says so partitions added to the group's topics (recorded in
//! an Event and in the status of the Topic resources of those topics); an
//! offset reset request applied once; the backlog-forwarding surge's step
//! ([`super::surge`]).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use runnel_http::error_chain;

use super::{Context, ReconcileError, apply_status, cluster_bootstrap, namespace_of};
use crate::crd::{ConsumerGroup, SurgePhase, Topic};

/// How soon a surge that waits in Draining or Returning is looked at again.
const SURGE_WAIT: Duration = Duration::from_secs(2);
use crate::lag::{Decision, decide, group_lag};
use crate::offset_reset::apply_offset_reset;
use crate::reconcile::topic::topic_name;
use crate::status::consumer_group_status;

pub async fn reconcile(
    resource: Arc<ConsumerGroup>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let namespace = namespace_of(resource.as_ref(), "ConsumerGroup")?;
    let spec = &resource.spec;
    let group = spec.group_id.clone().unwrap_or_else(|| resource.name_any());
    let (cluster, bootstrap) = cluster_bootstrap(&ctx.client, &namespace, &spec.cluster).await?;
    let admin = ctx.admins.get(&bootstrap).await?;
    let brokers = |source| ReconcileError::Brokers {
        bootstrap: bootstrap.clone(),
        source,
    };
    let previous = resource.status.as_ref();

    let mut applied_reset = previous.and_then(|s| s.applied_offset_reset.clone());
    if let Some(reset) = &spec.offset_reset
        && applied_reset.as_deref() != Some(reset.id.as_str())
    {
        match apply_offset_reset(&admin, &group, &spec.topics, reset).await {
            Ok(offsets) => {
                ctx.event(
                    resource.as_ref(),
                    EventType::Normal,
                    "OffsetsReset",
                    "ResetOffsets",
                    format!(
                        "offset reset {:?}: group {group} moved to {:?} on {} partitions",
                        reset.id,
                        reset.to,
                        offsets.len()
                    ),
                )
                .await;
                applied_reset = Some(reset.id.clone());
            }
            Err(err) => {
                ctx.event(
                    resource.as_ref(),
                    EventType::Warning,
                    "OffsetResetFailed",
                    "ResetOffsets",
                    format!("offset reset {:?}: {}", reset.id, error_chain(&err)),
                )
                .await;
                return Err(ReconcileError::OffsetReset(err));
            }
        }
    }

    let mut lag = match group_lag(&admin, &group, &spec.topics).await {
        Ok(lag) => lag,
        Err(err) => {
            ctx.admins.forget(&bootstrap);
            return Err(brokers(err));
        }
    };

    let now = Timestamp::now();
    let decision = match &spec.lag_policy {
        Some(policy) => decide(
            now.as_millisecond(),
            lag.total,
            policy,
            spec.partition_scaling.as_ref(),
            previous
                .and_then(|s| s.above_threshold_since.as_ref())
                .map(|t| t.0.as_millisecond()),
            previous
                .and_then(|s| s.last_scaling_time.as_ref())
                .map(|t| t.0.as_millisecond()),
            lag.partition_counts
                .iter()
                .map(|(_, n)| *n)
                .min()
                .unwrap_or(0),
        ),
        None => Decision {
            lagging_since_ms: None,
            lagging: false,
            grow_to: None,
        },
    };
    let mut scaled_to = None;
    if let Some(target) = decision.grow_to {
        let mut grown = Vec::new();
        let mut added = 0;
        for (topic, partitions) in &lag.partition_counts {
            if *partitions < target {
                admin
                    .create_partitions(topic, target)
                    .await
                    .map_err(brokers)?;
                grown.push(format!("{topic} from {partitions} to {target}"));
                added += u64::try_from(target - partitions).unwrap_or(0);
            }
        }
        if !grown.is_empty() {
            ctx.metrics
                .record_partitions_added(&namespace, &resource.name_any(), added);
            let threshold = spec.lag_policy.as_ref().map_or(0, |p| p.threshold_messages);
            ctx.event(
                resource.as_ref(),
                EventType::Normal,
                "PartitionsAdded",
                "ScalePartitions",
                format!(
                    "lag {} stayed above {threshold}: grew {}",
                    lag.total,
                    grown.join(", ")
                ),
            )
            .await;
            record_scaling(
                &ctx,
                &namespace,
                &spec.cluster,
                &lag.partition_counts,
                target,
            )
            .await?;
            scaled_to = Some(target);
            // The status lists the new partitions too.
            lag = group_lag(&admin, &group, &spec.topics)
                .await
                .map_err(brokers)?;
        }
    }
    ctx.metrics
        .set_group_lag(&namespace, &resource.name_any(), &lag.partitions);

    let surge = match &spec.backlog_forwarding {
        Some(forwarding) => Some(
            super::surge::reconcile(
                &ctx,
                &super::surge::Surge {
                    resource: resource.as_ref(),
                    forwarding,
                    namespace: &namespace,
                    group_id: &group,
                    cluster: &cluster,
                    bootstrap: &bootstrap,
                    admin: &admin,
                },
                &lag,
                now.as_millisecond(),
            )
            .await?,
        ),
        None => None,
    };

    let mut status = consumer_group_status(
        previous,
        &lag,
        &decision,
        scaled_to,
        resource.metadata.generation,
        now,
    );
    status.applied_offset_reset = applied_reset;
    let surge_phase = surge.as_ref().map(|s| s.phase);
    status.surge = surge;
    if previous != Some(&status) {
        apply_status(
            &Api::<ConsumerGroup>::namespaced(ctx.client.clone(), &namespace),
            resource.as_ref(),
            &status,
        )
        .await?;
    }
    tracing::info!(
        consumergroup = %resource.name_any(),
        namespace,
        lag = lag.total,
        lagging = decision.lagging,
        "consumer group reconciled"
    );
    Ok(Action::requeue(next_look(surge_phase, ctx.lag_interval)))
}

/// While a surge waits on something quick (the originals leaving, the
/// forwarders leaving, the overflow's last records), the group is looked
/// at again within [`SURGE_WAIT`] rather than the lag interval.
pub fn next_look(phase: Option<SurgePhase>, lag_interval: Duration) -> Duration {
    match phase {
        Some(SurgePhase::Draining | SurgePhase::Returning) => lag_interval.min(SURGE_WAIT),
        _ => lag_interval,
    }
}

/// Records in the status of the Topic resources for the grown topics that
/// partitions up to `target` came from scaling, so that their
/// `spec.partitions` below it is not taken for a shrink request.
async fn record_scaling(
    ctx: &Context,
    namespace: &str,
    cluster: &str,
    grown: &[(String, i32)],
    target: i32,
) -> Result<(), ReconcileError> {
    let topics: Api<Topic> = Api::namespaced(ctx.client.clone(), namespace);
    for topic in topics.list(&Default::default()).await? {
        if topic.spec.cluster != cluster
            || !grown.iter().any(|(name, _)| *name == topic_name(&topic))
        {
            continue;
        }
        // A merge patch, not an apply: the Topic reconciler applies the
        // rest of this status and leaves scaledPartitions out of it, so an
        // apply of its built from an older read cannot drop this field.
        let patch = serde_json::json!({"status": {"scaledPartitions": target}});
        topics
            .patch_status(
                &topic.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
    }
    Ok(())
}
