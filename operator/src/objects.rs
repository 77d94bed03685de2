//! The Kubernetes objects a [`Cluster`] becomes, built as plain values (no
//! API calls), so they are tested against golden files:
//!
//! - StatefulSet `<name>`: one pod per broker, a `data` volume claim per
//!   pod for the segment logs, the node id from the pod's ordinal (the
//!   `apps.kubernetes.io/pod-index` label) and the advertised listener
//!   from its stable name `<pod>.<name>-brokers.<namespace>.svc`; ready when
//!   the broker's `/readyz` answers.
//! - Service `<name>-brokers`: headless, publishing not-ready pods, for
//!   those stable names.
//! - Service `<name>-bootstrap`: what clients connect to first.
//! - ConfigMap `<name>-config`: the broker settings as `server.properties`.
//! - PodDisruptionBudget `<name>`: at most one broker down at a time.
//!
//! Broker settings reach the `runnel` binary as `RUNNEL_<KEY>` environment
//! variables (its configuration's second source) and the properties file.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SecurityContext, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

use crate::crd::Cluster;

pub const KAFKA_PORT: i32 = 9092;
pub const METRICS_PORT: i32 = 9308;
const DATA_DIR: &str = "/var/lib/runnel";
const CONFIG_DIR: &str = "/etc/runnel";
/// The non-root user the image runs as.
const RUNNEL_UID: i64 = 10001;

/// The labels every object of the cluster carries; the first two select
/// its broker pods.
pub fn labels(cluster: &Cluster) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "runnel".to_string()),
        ("app.kubernetes.io/instance".to_string(), cluster.name_any()),
        (
            "app.kubernetes.io/component".to_string(),
            "broker".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "runnel-operator".to_string(),
        ),
    ])
}

fn selector(cluster: &Cluster) -> BTreeMap<String, String> {
    labels(cluster)
        .into_iter()
        .filter(|(k, _)| k == "app.kubernetes.io/name" || k == "app.kubernetes.io/instance")
        .collect()
}

fn meta(cluster: &Cluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: cluster.namespace(),
        labels: Some(labels(cluster)),
        owner_references: owner(cluster).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// The controller reference to the Cluster (when it has a uid, as
/// anything read from the API does), blocking the Cluster's foreground
/// deletion until the garbage collector has deleted the object (kube's
/// `controller_owner_ref` leaves `blockOwnerDeletion` unset, and a
/// `kubectl delete --cascade=foreground` of the Cluster would then return
/// while its StatefulSet still ran).
fn owner(cluster: &Cluster) -> Option<OwnerReference> {
    cluster
        .controller_owner_ref(&())
        .map(|owner| OwnerReference {
            block_owner_deletion: Some(true),
            ..owner
        })
}

pub fn headless_service_name(cluster: &Cluster) -> String {
    format!("{}-brokers", cluster.name_any())
}

pub fn bootstrap_service_name(cluster: &Cluster) -> String {
    format!("{}-bootstrap", cluster.name_any())
}

/// `host:port` clients bootstrap from.
pub fn bootstrap_address(cluster: &Cluster) -> String {
    format!(
        "{}.{}.svc:{KAFKA_PORT}",
        bootstrap_service_name(cluster),
        cluster.namespace().unwrap_or_else(|| "default".into())
    )
}

/// FNV-1a of the brokers' `server.properties`, stable across builds (the
/// pod template carries it, so a new value rolls the brokers).
fn config_hash(cluster: &Cluster) -> String {
    let properties = server_properties(cluster);
    let hash = properties.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The ConfigMap's `server.properties`.
fn server_properties(cluster: &Cluster) -> String {
    let mut properties =
        String::from("# Written by runnel-operator from the Cluster's spec.config.\n");
    for (key, value) in &cluster.spec.config {
        properties.push_str(&format!("{key}={value}\n"));
    }
    properties
}

pub fn config_map(cluster: &Cluster) -> ConfigMap {
    let properties = server_properties(cluster);
    ConfigMap {
        metadata: meta(cluster, format!("{}-config", cluster.name_any())),
        data: Some(BTreeMap::from([(
            "server.properties".to_string(),
            properties,
        )])),
        ..ConfigMap::default()
    }
}

fn service(cluster: &Cluster, name: String, headless: bool) -> Service {
    let mut ports = vec![ServicePort {
        name: Some("kafka".into()),
        port: KAFKA_PORT,
        target_port: Some(IntOrString::String("kafka".into())),
        ..ServicePort::default()
    }];
    if headless && cluster.spec.metrics.enabled {
        ports.push(ServicePort {
            name: Some("metrics".into()),
            port: METRICS_PORT,
            target_port: Some(IntOrString::String("metrics".into())),
            ..ServicePort::default()
        });
    }
    Service {
        metadata: meta(cluster, name),
        spec: Some(ServiceSpec {
            cluster_ip: headless.then(|| "None".to_string()),
            // Brokers find each other by name before they are ready.
            publish_not_ready_addresses: headless.then_some(true),
            selector: Some(selector(cluster)),
            ports: Some(ports),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub fn headless_service(cluster: &Cluster) -> Service {
    service(cluster, headless_service_name(cluster), true)
}

pub fn bootstrap_service(cluster: &Cluster) -> Service {
    service(cluster, bootstrap_service_name(cluster), false)
}

pub fn pod_disruption_budget(cluster: &Cluster) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(cluster, cluster.name_any()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(cluster)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// Ready once `/readyz` on the container's `metrics` port answers (the
/// brokers' and the forwarders' metrics port serves it).
pub(crate) fn readiness_probe() -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some("/readyz".into()),
            port: IntOrString::String("metrics".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(5),
        ..Probe::default()
    }
}

/// No privilege escalation, a read-only root filesystem, not root.
pub(crate) fn restricted_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn env_from_field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

pub fn stateful_set(cluster: &Cluster) -> StatefulSet {
    let spec = &cluster.spec;
    let headless = headless_service_name(cluster);
    let mut ports = vec![ContainerPort {
        name: Some("kafka".into()),
        container_port: KAFKA_PORT,
        ..ContainerPort::default()
    }];
    ports.push(ContainerPort {
        name: Some("metrics".into()),
        container_port: METRICS_PORT,
        ..ContainerPort::default()
    });
    let container = Container {
        name: "runnel".into(),
        image: Some(spec.image.clone()),
        args: Some(vec![
            "serve".into(),
            "--config".into(),
            format!("{CONFIG_DIR}/server.properties"),
        ]),
        env: Some(vec![
            env_from_field("POD_NAME", "metadata.name"),
            env_from_field("POD_NAMESPACE", "metadata.namespace"),
            // node.id from the pod's ordinal.
            env_from_field(
                "RUNNEL_NODE_ID",
                "metadata.labels['apps.kubernetes.io/pod-index']",
            ),
            env(
                "RUNNEL_LISTENERS",
                &format!("PLAINTEXT://0.0.0.0:{KAFKA_PORT}"),
            ),
            env(
                "RUNNEL_ADVERTISED_LISTENERS",
                &format!("PLAINTEXT://$(POD_NAME).{headless}.$(POD_NAMESPACE).svc:{KAFKA_PORT}"),
            ),
            env("RUNNEL_LOG_DIRS", DATA_DIR),
            env("RUNNEL_METRICS_LISTEN", &format!("0.0.0.0:{METRICS_PORT}")),
        ]),
        ports: Some(ports),
        readiness_probe: Some(readiness_probe()),
        liveness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: IntOrString::String("metrics".into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            failure_threshold: Some(6),
            ..Probe::default()
        }),
        resources: spec.resources.clone(),
        security_context: Some(restricted_security_context()),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "data".into(),
                mount_path: DATA_DIR.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "config".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let pod = spec.pod.clone().unwrap_or_default();
    // A config change rolls the brokers: they read it at start.
    let mut annotations =
        BTreeMap::from([("runnel.dev/config-hash".to_string(), config_hash(cluster))]);
    if spec.metrics.enabled {
        annotations.insert("prometheus.io/scrape".to_string(), "true".to_string());
        annotations.insert("prometheus.io/port".to_string(), METRICS_PORT.to_string());
    }
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(cluster)),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            affinity: pod.affinity,
            tolerations: (!pod.tolerations.is_empty()).then_some(pod.tolerations),
            node_selector: (!pod.node_selector.is_empty()).then_some(pod.node_selector),
            security_context: Some(PodSecurityContext {
                run_as_user: Some(RUNNEL_UID),
                run_as_group: Some(RUNNEL_UID),
                fs_group: Some(RUNNEL_UID),
                ..PodSecurityContext::default()
            }),
            // Time to close the logs cleanly on SIGTERM.
            termination_grace_period_seconds: Some(60),
            volumes: Some(vec![Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: format!("{}-config", cluster.name_any()),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            ..PodSpec::default()
        }),
    };
    let claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            labels: Some(labels(cluster)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: spec.storage.storage_class.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(spec.storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    };
    StatefulSet {
        metadata: meta(cluster, cluster.name_any()),
        spec: StatefulSetSpec {
            replicas: Some(spec.brokers),
            service_name: Some(headless),
            selector: LabelSelector {
                match_labels: Some(selector(cluster)),
                ..LabelSelector::default()
            },
            // One broker at a time, each only after the previous is ready.
            pod_management_policy: Some("OrderedReady".into()),
            template,
            volume_claim_templates: Some(vec![claim]),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

/// Every object of the cluster, as `(kind, name, YAML)`, in the order they
/// are applied.
pub fn all_yaml(
    cluster: &Cluster,
) -> Result<Vec<(&'static str, String)>, serde_saphyr::ser::Error> {
    Ok(vec![
        ("configmap", serde_saphyr::to_string(&config_map(cluster))?),
        (
            "service-headless",
            serde_saphyr::to_string(&headless_service(cluster))?,
        ),
        (
            "service-bootstrap",
            serde_saphyr::to_string(&bootstrap_service(cluster))?,
        ),
        (
            "statefulset",
            serde_saphyr::to_string(&stateful_set(cluster))?,
        ),
        (
            "pdb",
            serde_saphyr::to_string(&pod_disruption_budget(cluster))?,
        ),
    ])
}
