//! Cluster → its ConfigMap, Services, PodDisruptionBudget and StatefulSet
//! (built by [`crate::objects`]), applied server-side with owner
//! references, then its status from the StatefulSet the API returned.
//!
//! Scaling and rolling updates are the StatefulSet's: `OrderedReady` pods
//! and the `RollingUpdate` strategy replace one broker at a time, each
//! only after the previous one answers `/readyz`. A change of the broker
//! config changes the pod template's `runnel.dev/config-hash`, so it rolls
//! the brokers too. Deleting the Cluster deletes what it owns through the
//! owner references; the data volumes stay (the StatefulSet's retention
//! policy is the default, Retain). A Cluster being deleted is left alone:
//! applying its objects again would recreate what the garbage collector has
//! just deleted, and a foreground deletion would never end.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;

use super::{Context, ReconcileError, apply, apply_status, namespace_of};
use crate::crd::Cluster;
use crate::objects;
use crate::status::{cluster_status, is_true, set_condition};

/// How often a settled cluster is looked at again (changes to what it
/// owns wake it up sooner).
const SETTLED_REQUEUE: Duration = Duration::from_secs(300);
/// How often a cluster in a rollout is looked at again.
const ROLLOUT_REQUEUE: Duration = Duration::from_secs(10);

pub async fn reconcile(cluster: Arc<Cluster>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if cluster.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = namespace_of(cluster.as_ref(), "Cluster")?;
    let client = &ctx.client;
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), &namespace),
        &objects::config_map(&cluster),
    )
    .await?;
    let services = Api::<Service>::namespaced(client.clone(), &namespace);
    apply(&services, &objects::headless_service(&cluster)).await?;
    apply(&services, &objects::bootstrap_service(&cluster)).await?;
    apply(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), &namespace),
        &objects::pod_disruption_budget(&cluster),
    )
    .await?;
    let set = match apply(
        &Api::<StatefulSet>::namespaced(client.clone(), &namespace),
        &objects::stateful_set(&cluster),
    )
    .await
    {
        Ok(set) => set,
        Err(ReconcileError::Kube(kube::Error::Api(refusal))) if refusal.code == 422 => {
            // A change the StatefulSet cannot take (its volume claim
            // templates are immutable): say so in the Cluster.
            let message = format!(
                "the StatefulSet refused the spec (storage size and class cannot change after creation): {}",
                refusal.message
            );
            let mut status = cluster.status.clone().unwrap_or_default();
            set_condition(
                &mut status.conditions,
                "Degraded",
                true,
                "SpecRefused",
                message.clone(),
                cluster.metadata.generation,
                Timestamp::now(),
            );
            ctx.event(
                cluster.as_ref(),
                EventType::Warning,
                "SpecRefused",
                "Apply",
                message,
            )
            .await;
            if cluster.status.as_ref() != Some(&status) {
                apply_status(
                    &Api::<Cluster>::namespaced(client.clone(), &namespace),
                    cluster.as_ref(),
                    &status,
                )
                .await?;
            }
            return Err(ReconcileError::Kube(kube::Error::Api(refusal)));
        }
        Err(err) => return Err(err),
    };

    let previous = cluster.status.as_ref();
    let generation_changed =
        previous.and_then(|s| s.observed_generation) != cluster.metadata.generation;
    let status = cluster_status(
        &cluster,
        &set,
        objects::bootstrap_address(&cluster),
        Timestamp::now(),
    );
    if generation_changed {
        ctx.event(
            cluster.as_ref(),
            EventType::Normal,
            "Applied",
            "Apply",
            format!(
                "generation {} applied: {} brokers of {}",
                cluster.metadata.generation.unwrap_or_default(),
                cluster.spec.brokers,
                cluster.spec.image
            ),
        )
        .await;
    }
    let became_degraded = is_true(&status.conditions, "Degraded")
        && !previous.is_some_and(|s| is_true(&s.conditions, "Degraded"));
    if became_degraded {
        ctx.event(
            cluster.as_ref(),
            EventType::Warning,
            "BrokersDown",
            "Observe",
            format!(
                "{} of {} brokers ready",
                status.ready_brokers, cluster.spec.brokers
            ),
        )
        .await;
    }
    let settled = is_true(&status.conditions, "Ready");
    if previous != Some(&status) {
        apply_status(
            &Api::<Cluster>::namespaced(client.clone(), &namespace),
            cluster.as_ref(),
            &status,
        )
        .await?;
    }
    tracing::info!(
        cluster = %cluster.name_any(),
        namespace,
        ready = status.ready_brokers,
        brokers = cluster.spec.brokers,
        "cluster reconciled"
    );
    Ok(Action::requeue(if settled {
        SETTLED_REQUEUE
    } else {
        ROLLOUT_REQUEUE
    }))
}
