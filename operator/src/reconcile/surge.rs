//! The backlog-forwarding surge of a ConsumerGroup, on each reconcile:
//! the overflow Topic applied, what [`crate::surge::step`] needs observed
//! (the originals' scale, the forwarders' Deployment, the overflow's
//! group's lag), its decision taken (workloads scaled through their
//! `scale` subresource, the forwarders' Deployment applied or deleted,
//! Events, metrics), and the surge's next status returned.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use runnel_client::Admin;

use super::{Context, ReconcileError, apply};
use crate::crd::{
    BacklogForwarding, Cluster, ConsumerGroup, ScaleTargetRef, SurgePhase, SurgeStatus, Topic,
    WorkloadKind,
};
use crate::forwarders::{forwarder_deployment, forwarder_name, overflow_topic};
use crate::lag::{GroupLag, group_lag};
use crate::surge::{Action, Observed, step};

/// What the surge reconcile works on.
#[derive(Debug)]
pub struct Surge<'a> {
    pub resource: &'a ConsumerGroup,
    pub forwarding: &'a BacklogForwarding,
    pub namespace: &'a str,
    pub group_id: &'a str,
    pub cluster: &'a Cluster,
    pub bootstrap: &'a str,
    pub admin: &'a Admin,
}

/// Runs one step of the surge and returns its status.
pub async fn reconcile(
    ctx: &Context,
    surge: &Surge<'_>,
    lag: &GroupLag,
    now_ms: i64,
) -> Result<SurgeStatus, ReconcileError> {
    let previous = surge
        .resource
        .status
        .as_ref()
        .and_then(|s| s.surge.clone())
        .unwrap_or_default();
    let client = &ctx.client;
    let forwarding = surge.forwarding;
    apply(
        &Api::<Topic>::namespaced(client.clone(), surge.namespace),
        &overflow_topic(surge.resource, forwarding),
    )
    .await?;
    let brokers = |source| ReconcileError::Brokers {
        bootstrap: surge.bootstrap.to_string(),
        source,
    };
    let deployments = Api::<Deployment>::namespaced(client.clone(), surge.namespace);
    let forwarders = deployments.get_opt(&forwarder_name(surge.resource)).await?;
    let overflow_topics = [forwarding.overflow.name.clone()];
    let overflow_exists = surge
        .admin
        .list_topics()
        .await
        .map_err(brokers)?
        .iter()
        .any(|t| t.name == forwarding.overflow.name);
    let overflow_lag = if previous.phase == SurgePhase::Normal || !overflow_exists {
        0
    } else {
        group_lag(surge.admin, &forwarding.overflow.group, &overflow_topics)
            .await
            .map_err(brokers)?
            .total
    };
    let seen = Observed {
        now_ms,
        lag: lag.total,
        members: lag.members,
        committed: lag.committed,
        overflow_lag,
        overflow_exists,
        original_replicas: replicas(
            client,
            surge.namespace,
            &forwarding.originals.scale_target_ref,
        )
        .await?,
        forwarders_exist: forwarders.is_some(),
        forwarders_ready: forwarders
            .as_ref()
            .and_then(|d| d.status.as_ref())
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0),
    };
    let next = step(forwarding, &previous, &seen);
    let name = surge.resource.name_any();
    for action in next.actions {
        match action {
            Action::ScaleOriginals(replicas) => {
                scale(
                    client,
                    surge.namespace,
                    &forwarding.originals.scale_target_ref,
                    replicas,
                )
                .await?;
            }
            Action::ScaleOverflowConsumers(replicas) => {
                scale(
                    client,
                    surge.namespace,
                    &forwarding.overflow_consumers.scale_target_ref,
                    replicas,
                )
                .await?;
            }
            Action::RunForwarders => {
                apply(
                    &deployments,
                    &forwarder_deployment(
                        surge.resource,
                        forwarding,
                        surge.group_id,
                        surge.bootstrap,
                        &surge.cluster.spec.image,
                    ),
                )
                .await?;
            }
            Action::StopForwarders => {
                match deployments
                    .delete(&forwarder_name(surge.resource), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(status)) if status.code == 404 => {}
                    Err(err) => return Err(err.into()),
                }
            }
            Action::Event {
                warning,
                reason,
                note,
            } => {
                let kind = if warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                };
                ctx.event(surge.resource, kind, reason, "BacklogSurge", note)
                    .await;
            }
            Action::Forwarded(records) => {
                ctx.metrics
                    .record_forwarded(surge.namespace, &name, records);
            }
            Action::Ended { seconds } => {
                ctx.metrics
                    .record_surge_ended(surge.namespace, &name, seconds);
            }
        }
    }
    ctx.metrics.set_surge_active(
        surge.namespace,
        &name,
        next.status.phase != SurgePhase::Normal,
    );
    Ok(next.status)
}

/// The replicas a workload's `scale` subresource asks for now.
async fn replicas(
    client: &kube::Client,
    namespace: &str,
    target: &ScaleTargetRef,
) -> Result<i32, ReconcileError> {
    let scale = match target.kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .get_scale(&target.name)
                .await?
        }
        WorkloadKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .get_scale(&target.name)
                .await?
        }
    };
    Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
}

/// Sets a workload's replicas through its `scale` subresource.
async fn scale(
    client: &kube::Client,
    namespace: &str,
    target: &ScaleTargetRef,
    replicas: i32,
) -> Result<(), ReconcileError> {
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    let params = PatchParams::default();
    match target.kind {
        WorkloadKind::Deployment => {
            Api::<Deployment>::namespaced(client.clone(), namespace)
                .patch_scale(&target.name, &params, &Patch::Merge(&patch))
                .await?;
        }
        WorkloadKind::StatefulSet => {
            Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .patch_scale(&target.name, &params, &Patch::Merge(&patch))
                .await?;
        }
    }
    tracing::info!(
        kind = ?target.kind,
        name = %target.name,
        namespace,
        replicas,
        "scaled a workload for the backlog surge"
    );
    Ok(())
}
