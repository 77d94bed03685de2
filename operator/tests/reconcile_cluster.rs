//! The Cluster reconciler against a mocked API server: what it applies
//! (server-side, one field manager, owner references), how it scales and
//! rolls, the Events it records and the status it writes.

#[path = "support/mock_api.rs"]
mod mock_api;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use mock_api::{ApiServer, client};
use runnel_operator::crd::{Cluster, ClusterStatus};
use runnel_operator::metrics::OperatorMetrics;
use runnel_operator::reconcile::{Context, cluster};
use serde_json::{Value, json};

const NS: &str = "streaming";

fn demo(brokers: i32, image: &str, generation: i64, status: Option<ClusterStatus>) -> Arc<Cluster> {
    let mut cluster: Cluster = serde_json::from_value(json!({
        "apiVersion": "runnel.dev/v1alpha1",
        "kind": "Cluster",
        "metadata": {
            "name": "demo", "namespace": NS, "uid": "0e6f3a3c-1111-4222-8333-944455556666",
            "generation": generation,
            // Events about different versions are different events (the
            // recorder folds repeats of one version into a series).
            "resourceVersion": format!("{generation}00"),
        },
        "spec": {
            "brokers": brokers, "image": image, "storage": {"size": "10Gi"},
            "config": {"num.partitions": "3"},
        },
    }))
    .expect("cluster");
    cluster.status = status;
    Arc::new(cluster)
}

/// Answers the applies of the ConfigMap, both Services and the PDB, and
/// checks they are server-side applies by runnel-operator, owned by the
/// Cluster.
async fn answer_owned_applies(api: &mut ApiServer) {
    for path in [
        "/api/v1/namespaces/streaming/configmaps/demo-config",
        "/api/v1/namespaces/streaming/services/demo-brokers",
        "/api/v1/namespaces/streaming/services/demo-bootstrap",
        "/apis/policy/v1/namespaces/streaming/poddisruptionbudgets/demo",
    ] {
        let apply = api.expect("PATCH", path).await;
        assert_applied_by_us(&apply.query, &apply.body);
        apply.echo();
    }
}

fn assert_applied_by_us(query: &str, body: &Value) {
    assert!(query.contains("fieldManager=runnel-operator"), "{query}");
    assert!(query.contains("force=true"), "{query}");
    let owner = &body["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Cluster", "{body}");
    assert_eq!(owner["name"], "demo");
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
}

/// Answers the StatefulSet apply with `status`, returning what was applied.
async fn answer_statefulset(api: &mut ApiServer, status: Value) -> Value {
    let apply = api
        .expect(
            "PATCH",
            "/apis/apps/v1/namespaces/streaming/statefulsets/demo",
        )
        .await;
    assert_applied_by_us(&apply.query, &apply.body);
    let applied = apply.body.clone();
    let mut answer = applied.clone();
    answer["metadata"]["generation"] = json!(1);
    answer["status"] = status;
    apply.respond(200, &answer);
    applied
}

async fn answer_event(api: &mut ApiServer, reason: &str) -> Value {
    let event = api
        .expect("POST", "/apis/events.k8s.io/v1/namespaces/streaming/events")
        .await;
    let body = event.body.clone();
    assert_eq!(body["reason"], reason, "{body}");
    assert_eq!(body["regarding"]["name"], "demo");
    event.echo();
    body
}

/// Answers the status apply of `cluster` and returns the status sent.
async fn answer_status(api: &mut ApiServer, cluster: &Cluster) -> ClusterStatus {
    let apply = api
        .expect(
            "PATCH",
            "/apis/runnel.dev/v1alpha1/namespaces/streaming/clusters/demo/status",
        )
        .await;
    assert!(apply.query.contains("fieldManager=runnel-operator"));
    assert_eq!(apply.body["kind"], "Cluster");
    let status: ClusterStatus =
        serde_json::from_value(apply.body["status"].clone()).expect("status");
    let mut answer = serde_json::to_value(cluster).expect("JSON");
    answer["status"] = apply.body["status"].clone();
    apply.respond(200, &answer);
    status
}

fn conditions(status: &ClusterStatus) -> Vec<(String, String, String)> {
    status
        .conditions
        .iter()
        .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
        .collect()
}

fn context(client: kube::Client) -> Arc<Context> {
    Arc::new(Context::new(
        client,
        Arc::new(OperatorMetrics::new()),
        Duration::from_secs(30),
    ))
}

#[tokio::test]
async fn a_cluster_is_created_scaled_rolled_and_its_status_kept() {
    let (client, mut api) = client();
    let ctx = context(client);

    // Created: one broker, none ready yet.
    let resource = demo(1, "runnel:1", 1, None);
    let reconcile = tokio::spawn(cluster::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
    answer_owned_applies(&mut api).await;
    let set = answer_statefulset(
        &mut api,
        json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 0, "updatedReplicas": 1}),
    )
    .await;
    assert_eq!(set["spec"]["replicas"], 1);
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["image"],
        "runnel:1"
    );
    let event = answer_event(&mut api, "Applied").await;
    assert_eq!(event["type"], "Normal");
    let created = answer_status(&mut api, &resource).await;
    assert_eq!(
        conditions(&created),
        [
            ("Ready".into(), "False".into(), "BrokersNotReady".into()),
            (
                "Progressing".into(),
                "True".into(),
                "BrokersStarting".into()
            ),
            ("Degraded".into(), "False".into(), "AsExpected".into()),
        ]
    );
    assert_eq!(
        created.bootstrap.as_deref(),
        Some("demo-bootstrap.streaming.svc:9092")
    );
    assert_eq!(created.observed_generation, Some(1));
    let action = reconcile.await.expect("no panic").expect("reconciled");
    assert_eq!(action, Action::requeue(Duration::from_secs(10)));

    // Scaled to 3 brokers (generation 2): replicas 3 applied; the
    // StatefulSet reports all ready.
    let resource = demo(3, "runnel:1", 2, Some(created));
    let reconcile = tokio::spawn(cluster::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
    answer_owned_applies(&mut api).await;
    let set = answer_statefulset(
        &mut api,
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
               "currentRevision": "r1", "updateRevision": "r1"}),
    )
    .await;
    assert_eq!(set["spec"]["replicas"], 3);
    answer_event(&mut api, "Applied").await;
    let scaled = answer_status(&mut api, &resource).await;
    assert_eq!(scaled.ready_brokers, 3);
    assert_eq!(
        conditions(&scaled)[0],
        ("Ready".into(), "True".into(), "AllBrokersReady".into())
    );
    let action = reconcile.await.expect("no panic").expect("reconciled");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));

    // Nothing changed: the same applies, no Event and no status write.
    let resource = demo(3, "runnel:1", 2, Some(scaled.clone()));
    let reconcile = tokio::spawn(cluster::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
    answer_owned_applies(&mut api).await;
    answer_statefulset(
        &mut api,
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
               "currentRevision": "r1", "updateRevision": "r1"}),
    )
    .await;
    reconcile.await.expect("no panic").expect("reconciled");
    api.expect_nothing_more();

    // A new image (generation 3): the template changes and the
    // StatefulSet rolls one broker at a time.
    let resource = demo(3, "runnel:2", 3, Some(scaled));
    let reconcile = tokio::spawn(cluster::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
    answer_owned_applies(&mut api).await;
    let set = answer_statefulset(
        &mut api,
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 1,
               "currentRevision": "r1", "updateRevision": "r2"}),
    )
    .await;
    assert_eq!(
        set["spec"]["template"]["spec"]["containers"][0]["image"],
        "runnel:2"
    );
    assert_eq!(set["spec"]["podManagementPolicy"], "OrderedReady");
    answer_event(&mut api, "Applied").await;
    let rolling = answer_status(&mut api, &resource).await;
    assert_eq!(
        conditions(&rolling),
        [
            ("Ready".into(), "False".into(), "BrokersNotReady".into()),
            ("Progressing".into(), "True".into(), "RollingUpdate".into()),
            ("Degraded".into(), "False".into(), "AsExpected".into()),
        ]
    );
    reconcile.await.expect("no panic").expect("reconciled");
    api.expect_nothing_more();

    // Scaled down to 1 (generation 4): replicas 1 applied; the highest
    // brokers go first (the StatefulSet's order), their volumes stay.
    let resource = demo(1, "runnel:2", 4, Some(rolling));
    let reconcile = tokio::spawn(cluster::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
    answer_owned_applies(&mut api).await;
    let set = answer_statefulset(
        &mut api,
        json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
               "currentRevision": "r2", "updateRevision": "r2"}),
    )
    .await;
    assert_eq!(set["spec"]["replicas"], 1);
    answer_event(&mut api, "Applied").await;
    let scaling_down = answer_status(&mut api, &resource).await;
    assert_eq!(
        conditions(&scaling_down)[1],
        ("Progressing".into(), "True".into(), "Scaling".into())
    );
    assert!(
        scaling_down.conditions[1]
            .message
            .contains("3 brokers, scaling to 1")
    );
    reconcile.await.expect("no panic").expect("reconciled");
    api.expect_nothing_more();
}

#[tokio::test]
async fn an_api_error_fails_the_reconciliation_with_its_reason() {
    let (client, mut api) = client();
    let ctx = context(client);
    let resource = demo(1, "runnel:1", 1, None);
    let reconcile = tokio::spawn(cluster::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
    api.expect(
        "PATCH",
        "/api/v1/namespaces/streaming/configmaps/demo-config",
    )
    .await
    .fail(403, "Forbidden");
    let err = reconcile.await.expect("no panic").expect_err("refused");
    let err = runnel_http::error_chain(&err);
    assert!(err.contains("Forbidden"), "{err}");
    api.expect_nothing_more();
}

#[tokio::test]
async fn a_config_change_rolls_the_brokers() {
    let mut before = (*demo(1, "runnel:1", 1, None)).clone();
    let hash = |cluster: &Cluster| {
        runnel_operator::objects::stateful_set(cluster)
            .spec
            .template
            .metadata
            .and_then(|m| m.annotations)
            .and_then(|a| a.get("runnel.dev/config-hash").cloned())
            .expect("config hash")
    };
    let first = hash(&before);
    assert_eq!(first, hash(&before.clone()), "stable");
    before
        .spec
        .config
        .insert("log.retention.hours".into(), "24".into());
    assert_ne!(hash(&before), first);
}

#[tokio::test]
async fn a_storage_change_the_statefulset_refuses_is_reported_in_the_cluster() {
    let (client, mut api) = client();
    let ctx = context(client);
    let resource = demo(1, "runnel:1", 4, None);
    let reconcile = tokio::spawn(cluster::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
    answer_owned_applies(&mut api).await;
    api.expect("PATCH", "/apis/apps/v1/namespaces/streaming/statefulsets/demo")
        .await
        .fail(
            422,
            "StatefulSet.apps \"demo\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        );
    let event = answer_event(&mut api, "SpecRefused").await;
    assert_eq!(event["type"], "Warning");
    let status = answer_status(&mut api, &resource).await;
    let degraded = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "SpecRefused")
    );
    assert!(
        degraded.message.contains("storage size and class"),
        "{}",
        degraded.message
    );
    assert!(
        degraded.message.contains("Forbidden"),
        "{}",
        degraded.message
    );
    reconcile.await.expect("no panic").expect_err("refused");
    api.expect_nothing_more();
}

/// A foreground deletion of the Cluster: the garbage collector deletes
/// the StatefulSet, whose watch event wakes the reconciler. Applying again
/// would recreate the StatefulSet and the deletion would never end (a real
/// API server showed it, e2e/local/run.sh).
#[tokio::test]
async fn a_cluster_being_deleted_is_not_applied_again() {
    let (client, mut api) = client();
    let ctx = context(client);
    let mut resource = (*demo(1, "runnel:1", 1, None)).clone();
    resource.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    resource.metadata.finalizers = Some(vec!["foregroundDeletion".to_string()]);
    // Without an answer from the mock, a request would hang it: bounded.
    let action = tokio::time::timeout(
        Duration::from_secs(5),
        cluster::reconcile(Arc::new(resource), ctx),
    )
    .await
    .expect("the reconciler sent a request (it applied the deleted Cluster)")
    .expect("reconcile");
    assert_eq!(action, Action::await_change());
    api.expect_nothing_more();
}
