//! The reconcilers: what the operator does when a `Cluster`, `Topic` or
//! `ConsumerGroup` (or something it owns) changes, and on a timer.
//!
//! - [`cluster`]: a Cluster's objects, applied server-side, and its status
//!   from the StatefulSet.
//! - [`topic`]: a Topic's topic on the brokers, behind a finalizer that
//!   deletes it.
//! - [`group`]: a ConsumerGroup's lag, partition scaling and offset reset.
//! - [`surge`]: a ConsumerGroup's backlog-forwarding surge.
//!
//! Every write is a server-side apply by [`FIELD_MANAGER`]; failures
//! requeue with a per-object exponential backoff ([`Backoff`]).

pub mod cluster;
pub mod group;
pub mod surge;
pub mod topic;

mod admins;
mod backoff;

pub use admins::Admins;
pub use backoff::Backoff;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use runnel_client::ClientError;
use runnel_http::error_chain;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::Cluster;
use crate::metrics::OperatorMetrics;
use crate::offset_reset::ResetError;

/// The one field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "runnel-operator";

/// What a reconciliation can fail on; each requeues with backoff.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{kind} {name} has no namespace; the runnel.dev kinds are namespaced")]
    NoNamespace { kind: &'static str, name: String },
    #[error("Kubernetes API request failed")]
    Kube(#[from] kube::Error),
    #[error("spec.cluster names Cluster {name:?}, which does not exist in namespace {namespace}")]
    MissingCluster { namespace: String, name: String },
    #[error("brokers at {bootstrap}")]
    Brokers {
        bootstrap: String,
        source: ClientError,
    },
    #[error("offset reset")]
    OffsetReset(#[source] ResetError),
    #[error("finalizer")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<ReconcileError>>),
}

/// What every reconciler shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<OperatorMetrics>,
    pub admins: Admins,
    pub backoff: Backoff,
    /// How often a ConsumerGroup's lag is read.
    pub lag_interval: Duration,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("lag_interval", &self.lag_interval)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, metrics: Arc<OperatorMetrics>, lag_interval: Duration) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            admins: Admins::default(),
            backoff: Backoff::default(),
            lag_interval,
        }
    }

    /// Publishes an Event about `object`; a failure is logged, not
    /// returned (events are best effort).
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        // With the resourceVersion, the recorder folds only repeats about
        // one version of the object into a series; without it, a later
        // event of the same reason would show the first one's note.
        let mut reference = object.object_ref(&());
        reference
            .resource_version
            .clone_from(&object.meta().resource_version);
        if let Err(err) = self.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %error_chain(&err), reason, "publishing an event failed");
        }
    }
}

/// The namespace of a namespaced resource.
fn namespace_of<K: Resource>(object: &K, kind: &'static str) -> Result<String, ReconcileError> {
    object
        .meta()
        .namespace
        .clone()
        .ok_or_else(|| ReconcileError::NoNamespace {
            kind,
            name: object.meta().name.clone().unwrap_or_default(),
        })
}

/// Server-side applies `object` (which carries its apiVersion and kind)
/// and returns what the API server made of it.
async fn apply<K>(api: &Api<K>, object: &K) -> Result<K, ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(object)).await?)
}

/// Server-side applies `status` to `object`'s status subresource.
async fn apply_status<K, S>(api: &Api<K>, object: &K, status: &S) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&object.name_any(), &params, &Patch::Apply(&body))
        .await?;
    Ok(())
}

/// The Cluster a Topic or ConsumerGroup names, and its bootstrap address
/// (its status's, else the bootstrap Service's name).
async fn cluster_bootstrap(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(Cluster, String), ReconcileError> {
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), namespace);
    let cluster = clusters
        .get_opt(name)
        .await?
        .ok_or_else(|| ReconcileError::MissingCluster {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
    let bootstrap = cluster
        .status
        .as_ref()
        .and_then(|s| s.bootstrap.clone())
        .unwrap_or_else(|| crate::objects::bootstrap_address(&cluster));
    Ok((cluster, bootstrap))
}
