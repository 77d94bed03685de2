//! `runnel-operator run`: the three controllers, the metrics and probes
//! port, and leader election.
//!
//! The controllers (kube-runtime) watch Clusters (and the StatefulSets
//! they own), Topics and ConsumerGroups, in one namespace or all. With
//! leader election, a replica reconciles only while it holds the Lease;
//! one that loses it stops with an error so that Kubernetes restarts it as
//! a standby. `/healthz` answers while the process runs and `/readyz` once
//! it is up (standbys too, so a rolling update of the operator proceeds).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use runnel_http::error_chain;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::crd::{Cluster, ConsumerGroup, Topic};
use crate::leader::{Elector, LeaseConfig, LeaseError};
use crate::metrics::OperatorMetrics;
use crate::reconcile::{self, Context, ReconcileError};

/// What `runnel-operator run` was asked for.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Watch only this namespace (all when `None`).
    pub namespace: Option<String>,
    pub http_addr: SocketAddr,
    pub lag_interval: Duration,
    /// `None`: no leader election (a single replica).
    pub lease: Option<LeaseConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr} for /metrics and the probes")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("leadership lost, stopping")]
    Leadership(#[from] LeaseError),
}

/// Runs until `shutdown` completes (then stops cleanly and gives the Lease
/// up) or leadership is lost.
pub async fn run(
    client: Client,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let metrics = Arc::new(OperatorMetrics::new());
    let listener = TcpListener::bind(options.http_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: options.http_addr,
            source,
        })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let http_state = Arc::new(runnel_http::HttpState::new(
        Arc::clone(&metrics) as Arc<dyn runnel_http::EncodeMetrics>
    ));
    let http = tokio::spawn(runnel_http::serve(
        listener,
        Arc::clone(&http_state),
        stopped(stop_rx.clone()),
    ));
    http_state.set_ready(true);
    tracing::info!(addr = %options.http_addr, namespace = ?options.namespace, "runnel-operator started");

    tokio::pin!(shutdown);
    let elector = options
        .lease
        .clone()
        .map(|config| Elector::new(client.clone(), config));
    let mut result = Ok(());
    let lead = async {
        if let Some(elector) = &elector {
            elector.acquire().await;
            tracing::info!("leading: reconciling");
        }
        metrics.set_leader(true);
        let ctx = Arc::new(Context::new(
            client.clone(),
            Arc::clone(&metrics),
            options.lag_interval,
        ));
        let controllers = controllers(
            client.clone(),
            options.namespace.as_deref(),
            ctx,
            stop_rx.clone(),
        );
        match &elector {
            Some(elector) => {
                tokio::select! {
                    () = controllers => Ok(()),
                    lost = elector.hold() => Err(lost),
                }
            }
            None => {
                controllers.await;
                Ok(())
            }
        }
    };
    tokio::select! {
        () = &mut shutdown => {
            tracing::info!("stopping");
            let _ = stop_tx.send(true);
        }
        led = lead => {
            let _ = stop_tx.send(true);
            if let Err(lost) = led {
                result = Err(RunError::Leadership(lost));
            }
        }
    }
    metrics.set_leader(false);
    if let Some(elector) = &elector
        && result.is_ok()
    {
        elector.release().await;
    }
    let _ = http.await;
    result
}

/// Completes when `stop` turns true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// The three controllers, until `stop` completes.
async fn controllers(
    client: Client,
    namespace: Option<&str>,
    ctx: Arc<Context>,
    stop: watch::Receiver<bool>,
) {
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=runnel-operator");
    let clusters = Controller::new(
        api::<Cluster>(&client, namespace),
        watcher::Config::default(),
    )
    .owns(api::<StatefulSet>(&client, namespace), owned)
    .graceful_shutdown_on(stopped(stop.clone()))
    .run(
        |cluster, ctx| instrumented("cluster", cluster, ctx, reconcile::cluster::reconcile),
        error_policy,
        Arc::clone(&ctx),
    )
    .for_each(|result| report("cluster", result));
    // A change of a Cluster (its brokers becoming ready, say) wakes the
    // Topics and ConsumerGroups on it, instead of leaving them to their
    // backoff.
    let topic_controller =
        Controller::new(api::<Topic>(&client, namespace), watcher::Config::default());
    let topic_store = topic_controller.store();
    let topics = topic_controller
        .watches(
            api::<Cluster>(&client, namespace),
            watcher::Config::default(),
            move |cluster| on_cluster(&topic_store, &cluster, |t: &Topic| &t.spec.cluster),
        )
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(
            |topic, ctx| instrumented("topic", topic, ctx, reconcile::topic::reconcile),
            error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|result| report("topic", result));
    let group_controller = Controller::new(
        api::<ConsumerGroup>(&client, namespace),
        watcher::Config::default(),
    );
    let groups_store = group_controller.store();
    let groups_of_cluster = groups_store.clone();
    let groups = group_controller
        .watches(
            api::<Cluster>(&client, namespace),
            watcher::Config::default(),
            move |cluster| {
                on_cluster(&groups_of_cluster, &cluster, |g: &ConsumerGroup| {
                    &g.spec.cluster
                })
            },
        )
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(
            |group, ctx| instrumented("consumergroup", group, ctx, reconcile::group::reconcile),
            error_policy,
            Arc::clone(&ctx),
        )
        .for_each(|result| report("consumergroup", result));
    // Lag series of ConsumerGroups that were deleted go away.
    let metrics = Arc::clone(&ctx.metrics);
    let interval = ctx.lag_interval;
    let sweep = async move {
        loop {
            tokio::time::sleep(interval).await;
            metrics.retain_groups(|namespace, name| {
                groups_store
                    .get(&ObjectRef::<ConsumerGroup>::new(name).within(namespace))
                    .is_some()
            });
        }
    };
    tokio::select! {
        _ = futures::future::join3(clusters, topics, groups) => {}
        () = sweep => {}
    }
}

/// The objects in `store` on `cluster` (same namespace, named in their
/// spec).
fn on_cluster<K>(
    store: &Store<K>,
    cluster: &Cluster,
    cluster_of: impl Fn(&K) -> &str,
) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    let name = cluster.name_any();
    let namespace = cluster.namespace();
    store
        .state()
        .iter()
        .filter(|o| o.namespace() == namespace && cluster_of(o) == name)
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

/// Logs what a controller's stream reports, except failed reconciliations
/// (`error_policy` logs those, with their retry).
async fn report<T, Q: std::error::Error + 'static>(
    controller: &'static str,
    result: Result<T, kube::runtime::controller::Error<ReconcileError, Q>>,
) {
    use kube::runtime::controller::Error;
    match result {
        Ok(_) | Err(Error::ReconcilerFailed(..)) => {}
        // A watch event for an object deleted since: expected.
        Err(Error::ObjectNotFound(object)) => {
            tracing::debug!(controller, %object, "object gone before its reconciliation");
        }
        Err(err) => tracing::warn!(controller, error = %error_chain(&err), "controller"),
    }
}

/// `reconcile` with its duration and result counted, and the object's
/// backoff reset by a success.
async fn instrumented<K, F, Fut>(
    controller: &'static str,
    object: Arc<K>,
    ctx: Arc<Context>,
    reconcile: F,
) -> Result<Action, ReconcileError>
where
    K: Resource,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, ReconcileError>>,
{
    let key = backoff_key(object.as_ref());
    let started = Instant::now();
    let result = reconcile(object, Arc::clone(&ctx)).await;
    ctx.metrics
        .record_reconcile(controller, result.is_ok(), started.elapsed());
    if result.is_ok() {
        ctx.backoff.succeeded(&key);
    }
    result
}

fn backoff_key<K: Resource>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        std::any::type_name::<K>(),
        object.meta().namespace.as_deref().unwrap_or(""),
        object.meta().name.as_deref().unwrap_or("")
    )
}

fn error_policy<K: Resource + ResourceExt>(
    object: Arc<K>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let delay = ctx.backoff.failed(&backoff_key(object.as_ref()));
    tracing::warn!(
        name = %object.name_any(),
        namespace = object.namespace().unwrap_or_default(),
        error = %error_chain(error),
        retry_in_seconds = delay.as_secs(),
        "reconciliation failed"
    );
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::reflector::store::Writer;

    fn topic(namespace: &str, name: &str, cluster: &str) -> Topic {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "runnel.dev/v1alpha1", "kind": "Topic",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"cluster": cluster, "partitions": 1},
        }))
        .expect("topic")
    }

    #[test]
    fn a_cluster_change_wakes_the_topics_on_it_only() {
        let mut writer = Writer::<Topic>::default();
        for t in [
            topic("a", "orders", "demo"),
            topic("a", "payments", "demo"),
            topic("a", "logs", "other"),
            topic("b", "orders", "demo"),
        ] {
            writer.apply_watcher_event(&watcher::Event::Apply(t));
        }
        let store = writer.as_reader();
        let cluster: Cluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "runnel.dev/v1alpha1", "kind": "Cluster",
            "metadata": {"name": "demo", "namespace": "a"},
            "spec": {"brokers": 1, "image": "runnel", "storage": {"size": "1Gi"}},
        }))
        .expect("cluster");
        let mut woken: Vec<String> = on_cluster(&store, &cluster, |t: &Topic| &t.spec.cluster)
            .into_iter()
            .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
            .collect();
        woken.sort();
        assert_eq!(woken, ["a/orders", "a/payments"]);
    }
}
