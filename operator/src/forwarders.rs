//! The objects of a ConsumerGroup's backlog-forwarding surge, built as
//! plain values (no API calls):
//!
//! - Deployment `<consumergroup>-forwarder`: `backlogForwarding.forwarders`
//!   pods of the cluster's image running `runnel forward` for the group
//!   (each pod's transactional id is `runnel-forward.<group>.<pod>`),
//!   ready when their `/readyz` answers, with their `/metrics` on port
//!   9404.
//! - Topic `<consumergroup>-overflow`: the overflow topic on the group's
//!   cluster.
//!
//! Both are owned by the ConsumerGroup (deleting it deletes them).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSecurityContext, PodSpec, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::{BacklogForwarding, ConsumerGroup, Topic, TopicSpec};
use crate::objects::{readiness_probe, restricted_security_context};

pub const FORWARDER_METRICS_PORT: i32 = 9404;
/// The non-root user the image runs as.
const RUNNEL_UID: i64 = 10001;

pub fn forwarder_name(group: &ConsumerGroup) -> String {
    format!("{}-forwarder", group.name_any())
}

pub fn overflow_topic_name(group: &ConsumerGroup) -> String {
    format!("{}-overflow", group.name_any())
}

fn owner(group: &ConsumerGroup) -> Option<OwnerReference> {
    group.controller_owner_ref(&()).map(|mut reference| {
        reference.block_owner_deletion = Some(true);
        reference
    })
}

fn labels(group: &ConsumerGroup) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "runnel-forward".to_string(),
        ),
        ("app.kubernetes.io/instance".to_string(), group.name_any()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "runnel-operator".to_string(),
        ),
    ])
}

/// The forwarders' Deployment for `group` (its id `group_id`, its topics)
/// on the cluster at `bootstrap` running `image`.
pub fn forwarder_deployment(
    group: &ConsumerGroup,
    forwarding: &BacklogForwarding,
    group_id: &str,
    bootstrap: &str,
    image: &str,
) -> Deployment {
    let labels = labels(group);
    let mut args = vec![
        "forward".to_string(),
        "--bootstrap-server".into(),
        bootstrap.into(),
        "--group".into(),
        group_id.into(),
    ];
    for topic in &group.spec.topics {
        args.push("--topic".into());
        args.push(topic.clone());
    }
    args.extend([
        "--to".into(),
        forwarding.overflow.name.clone(),
        "--metrics-address".into(),
        format!("0.0.0.0:{FORWARDER_METRICS_PORT}"),
    ]);
    let container = Container {
        name: "forward".into(),
        image: Some(image.into()),
        args: Some(args),
        ports: Some(vec![ContainerPort {
            name: Some("metrics".into()),
            container_port: FORWARDER_METRICS_PORT,
            ..ContainerPort::default()
        }]),
        readiness_probe: Some(readiness_probe()),
        security_context: Some(restricted_security_context()),
        ..Container::default()
    };
    Deployment {
        metadata: ObjectMeta {
            name: Some(forwarder_name(group)),
            namespace: group.namespace(),
            labels: Some(labels.clone()),
            owner_references: owner(group).map(|o| vec![o]),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(forwarding.forwarders),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(RUNNEL_UID),
                        run_as_group: Some(RUNNEL_UID),
                        ..PodSecurityContext::default()
                    }),
                    // SIGTERM ends the open transaction and leaves the group.
                    termination_grace_period_seconds: Some(60),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// The overflow topic as a Topic resource of the group's cluster.
pub fn overflow_topic(group: &ConsumerGroup, forwarding: &BacklogForwarding) -> Topic {
    let mut topic = Topic::new(
        &overflow_topic_name(group),
        TopicSpec {
            cluster: group.spec.cluster.clone(),
            topic_name: Some(forwarding.overflow.name.clone()),
            partitions: forwarding.overflow.partitions,
            replication_factor: forwarding.overflow.replication_factor,
            config: BTreeMap::new(),
            delayed_delivery: None,
        },
    );
    topic.metadata.namespace = group.namespace();
    topic.metadata.owner_references = owner(group).map(|o| vec![o]);
    topic
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> (ConsumerGroup, BacklogForwarding) {
        let group: ConsumerGroup = serde_json::from_value(serde_json::json!({
            "apiVersion": "runnel.dev/v1alpha1", "kind": "ConsumerGroup",
            "metadata": {"name": "orders", "namespace": "shop", "uid": "g1"},
            "spec": {
                "cluster": "demo", "groupId": "orders-workers", "topics": ["orders", "refunds"],
                "backlogForwarding": {
                    "overflow": {"name": "orders.overflow", "partitions": 24, "group": "orders-overflow"},
                    "start": {"lagAbove": 100000, "forSeconds": 60},
                    "stop": {"lagBelow": 1000},
                    "originals": {"scaleTargetRef": {"kind": "Deployment", "name": "workers"}},
                    "overflowConsumers": {
                        "scaleTargetRef": {"kind": "StatefulSet", "name": "overflow-workers"},
                        "replicas": 12
                    },
                    "forwarders": 2
                }
            }
        }))
        .expect("a ConsumerGroup");
        let forwarding = group.spec.backlog_forwarding.clone().expect("set");
        (group, forwarding)
    }

    #[test]
    fn the_forwarders_run_runnel_forward_for_the_group_owned_by_it() {
        let (group, forwarding) = group();
        assert_eq!(forwarding.give_up_after_seconds, 300);
        assert!(forwarding.enabled);
        let deployment = forwarder_deployment(
            &group,
            &forwarding,
            "orders-workers",
            "demo-bootstrap:9092",
            "runnel:1",
        );
        assert_eq!(
            deployment.metadata.name.as_deref(),
            Some("orders-forwarder")
        );
        assert_eq!(deployment.metadata.namespace.as_deref(), Some("shop"));
        let owner = &deployment
            .metadata
            .owner_references
            .as_ref()
            .expect("owned")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ConsumerGroup", "g1")
        );
        let spec = deployment.spec;
        assert_eq!(spec.replicas, Some(2));
        let pod = spec.template.spec.expect("pod");
        let args = pod.containers[0].args.clone().expect("args");
        assert_eq!(
            args.join(" "),
            "forward --bootstrap-server demo-bootstrap:9092 --group orders-workers \
             --topic orders --topic refunds --to orders.overflow --metrics-address 0.0.0.0:9404"
        );
        assert_eq!(pod.containers[0].image.as_deref(), Some("runnel:1"));
    }

    #[test]
    fn the_overflow_is_a_topic_of_the_groups_cluster() {
        let (group, forwarding) = group();
        let topic = overflow_topic(&group, &forwarding);
        assert_eq!(topic.metadata.name.as_deref(), Some("orders-overflow"));
        assert_eq!(topic.spec.topic_name.as_deref(), Some("orders.overflow"));
        assert_eq!(topic.spec.partitions, 24);
        assert_eq!(topic.spec.cluster, "demo");
    }
}
