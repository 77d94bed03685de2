//! The operator's Topic and ConsumerGroup reconcilers end to end, short of
//! Kubernetes: a real broker, and the Kubernetes API mocked at the HTTP
//! level (operator/tests/support/mock_api.rs). A Topic gets its finalizer,
//! creates its topic, grows it, refuses a shrink and deletes it when the
//! resource goes; a ConsumerGroup with a backlog and no consumer crosses
//! its lag threshold, gets partitions added, and its status and the
//! operator's metrics show the lag; an offset reset request is applied once.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;
#[path = "../../../operator/tests/support/mock_api.rs"]
mod mock_api;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use mock_api::{ApiServer, client};
use runnel_client::{Admin, Producer, ProducerConfig, ProducerRecord};
use runnel_operator::crd::{ConsumerGroup, ConsumerGroupStatus, Topic, TopicStatus};
use runnel_operator::metrics::OperatorMetrics;
use runnel_operator::reconcile::{Context, group, topic};
use serde_json::{Value, json};

const NS: &str = "streaming";
const TOPICS: &str = "/apis/runnel.dev/v1alpha1/namespaces/streaming/topics";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/streaming/events";
const CLUSTER: &str = "/apis/runnel.dev/v1alpha1/namespaces/streaming/clusters/demo";

fn cluster_answer(bootstrap: &str) -> Value {
    json!({
        "apiVersion": "runnel.dev/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "demo", "namespace": NS, "uid": "c1"},
        "spec": {"brokers": 1, "image": "runnel:dev", "storage": {"size": "1Gi"}},
        "status": {"readyBrokers": 1, "bootstrap": bootstrap},
    })
}

fn topic_resource(
    partitions: i32,
    version: u32,
    finalizers: &[&str],
    deleting: bool,
    status: Option<&TopicStatus>,
) -> Arc<Topic> {
    let mut metadata = json!({
        "name": "orders", "namespace": NS, "uid": "t1",
        "generation": version, "resourceVersion": version.to_string(),
        "finalizers": finalizers,
    });
    if deleting {
        metadata["deletionTimestamp"] = json!("2026-11-24T00:00:00Z");
    }
    let mut topic: Topic = serde_json::from_value(json!({
        "apiVersion": "runnel.dev/v1alpha1", "kind": "Topic",
        "metadata": metadata,
        "spec": {"cluster": "demo", "partitions": partitions, "config": {"retention.ms": "3600000"}},
    }))
    .expect("topic");
    topic.status = status.cloned();
    Arc::new(topic)
}

async fn answer_cluster(api: &mut ApiServer, bootstrap: &str) {
    api.expect("GET", CLUSTER)
        .await
        .respond(200, &cluster_answer(bootstrap));
}

async fn answer_event(api: &mut ApiServer, reason: &str) -> Value {
    let event = api.expect("POST", EVENTS).await;
    let body = event.body.clone();
    assert_eq!(body["reason"], reason, "{body}");
    event.echo();
    body
}

/// Answers a status apply of `resource` and returns the status sent.
async fn answer_status(api: &mut ApiServer, path: &str, resource: Value) -> Value {
    let apply = api.expect("PATCH", path).await;
    assert!(
        apply.query.contains("fieldManager=runnel-operator"),
        "{}",
        apply.query
    );
    let status = apply.body["status"].clone();
    let mut answer = resource;
    answer["status"] = status.clone();
    apply.respond(200, &answer);
    status
}

fn ready(status: &Value) -> (String, String) {
    let condition = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .expect("a Ready condition");
    (
        condition["status"].as_str().unwrap_or("").to_string(),
        condition["reason"].as_str().unwrap_or("").to_string(),
    )
}

fn context(client: kube::Client, metrics: Arc<OperatorMetrics>) -> Arc<Context> {
    Arc::new(Context::new(client, metrics, Duration::from_secs(30)))
}

async fn partitions_of(admin: &Admin, name: &str) -> Option<usize> {
    admin
        .list_topics()
        .await
        .expect("list topics")
        .into_iter()
        .find(|t| t.name == name)
        .map(|t| t.partitions.len())
}

#[test]
fn a_topic_resource_creates_grows_guards_and_deletes_its_topic() {
    let (_dir, broker) = common::started_with(&[]);
    let bootstrap = broker.bootstrap.clone();
    common::runtime().block_on(async {
        let admin = Admin::new(&bootstrap, "test").await.expect("admin");
        let (client, mut api) = client();
        let ctx = context(client, Arc::new(OperatorMetrics::new()));

        // A new Topic first gets the finalizer, and nothing else.
        let reconcile = tokio::spawn(topic::reconcile(
            topic_resource(3, 1, &[], false, None),
            Arc::clone(&ctx),
        ));
        let patch = api.expect("PATCH", &format!("{TOPICS}/orders")).await;
        assert!(
            patch.body.to_string().contains("runnel.dev/topic"),
            "{}",
            patch.body
        );
        patch.respond(
            200,
            &serde_json::to_value(&*topic_resource(3, 1, &[topic::FINALIZER], false, None))
                .expect("JSON"),
        );
        assert_eq!(
            reconcile.await.expect("no panic").expect("reconciled"),
            Action::await_change()
        );
        assert_eq!(partitions_of(&admin, "orders").await, None);

        // With it: the topic is created on the broker.
        let resource = topic_resource(3, 2, &[topic::FINALIZER], false, None);
        let reconcile = tokio::spawn(topic::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
        answer_cluster(&mut api, &bootstrap).await;
        let event = answer_event(&mut api, "Created").await;
        assert!(
            event["note"]
                .as_str()
                .is_some_and(|n| n.contains("3 partitions"))
        );
        let status = answer_status(
            &mut api,
            &format!("{TOPICS}/orders/status"),
            serde_json::to_value(&*resource).expect("JSON"),
        )
        .await;
        assert_eq!(status["partitions"], 3);
        assert!(
            status["topicId"].as_str().is_some_and(|id| id.len() == 36),
            "{status}"
        );
        assert_eq!(ready(&status), ("True".into(), "Synced".into()));
        reconcile.await.expect("no panic").expect("reconciled");
        api.expect_nothing_more();
        assert_eq!(partitions_of(&admin, "orders").await, Some(3));
        let created: TopicStatus = serde_json::from_value(status).expect("status");

        // Raising partitions grows it.
        let resource = topic_resource(5, 3, &[topic::FINALIZER], false, Some(&created));
        let reconcile = tokio::spawn(topic::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
        answer_cluster(&mut api, &bootstrap).await;
        answer_event(&mut api, "PartitionsAdded").await;
        let status = answer_status(
            &mut api,
            &format!("{TOPICS}/orders/status"),
            serde_json::to_value(&*resource).expect("JSON"),
        )
        .await;
        assert_eq!(status["partitions"], 5);
        reconcile.await.expect("no panic").expect("reconciled");
        assert_eq!(partitions_of(&admin, "orders").await, Some(5));
        let grown: TopicStatus = serde_json::from_value(status).expect("status");

        // A shrink is refused, with the reason in the condition and an
        // Event; the topic keeps its partitions.
        let resource = topic_resource(2, 4, &[topic::FINALIZER], false, Some(&grown));
        let reconcile = tokio::spawn(topic::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
        answer_cluster(&mut api, &bootstrap).await;
        let event = answer_event(&mut api, "ShrinkRefused").await;
        assert_eq!(event["type"], "Warning");
        let status = answer_status(
            &mut api,
            &format!("{TOPICS}/orders/status"),
            serde_json::to_value(&*resource).expect("JSON"),
        )
        .await;
        assert_eq!(ready(&status), ("False".into(), "ShrinkRefused".into()));
        let message = status["conditions"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains("can only grow"), "{message}");
        reconcile.await.expect("no panic").expect("reconciled");
        assert_eq!(partitions_of(&admin, "orders").await, Some(5));

        // Deleted: the finalizer deletes the topic, then lets the
        // resource go.
        let resource = topic_resource(5, 5, &[topic::FINALIZER], true, Some(&grown));
        let reconcile = tokio::spawn(topic::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
        answer_cluster(&mut api, &bootstrap).await;
        let patch = api.expect("PATCH", &format!("{TOPICS}/orders")).await;
        let ops = patch.body.to_string();
        assert!(
            ops.contains("\"remove\"") && ops.contains("/metadata/finalizers/0"),
            "{ops}"
        );
        patch.respond(
            200,
            &serde_json::to_value(&*topic_resource(5, 5, &[], true, None)).expect("JSON"),
        );
        reconcile.await.expect("no panic").expect("cleaned up");
        api.expect_nothing_more();
        assert_eq!(partitions_of(&admin, "orders").await, None);

        // A Topic naming a Cluster that does not exist fails, and says
        // so in its Ready condition.
        let resource = topic_resource(3, 6, &[topic::FINALIZER], false, None);
        let reconcile = tokio::spawn(topic::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
        api.expect("GET", CLUSTER).await.fail(404, "NotFound");
        let status = answer_status(
            &mut api,
            &format!("{TOPICS}/orders/status"),
            serde_json::to_value(&*resource).expect("JSON"),
        )
        .await;
        assert_eq!(ready(&status), ("False".into(), "ClusterNotFound".into()));
        let err = reconcile.await.expect("no panic").expect_err("no cluster");
        assert!(err.to_string().contains("Cluster \"demo\""), "{err}");

        // A replication factor the brokers cannot give: refused by the
        // brokers with Kafka's error, named in the condition.
        let mut three = (*topic_resource(3, 7, &[topic::FINALIZER], false, None)).clone();
        three.spec.replication_factor = 3;
        let resource = Arc::new(three);
        let reconcile = tokio::spawn(topic::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
        answer_cluster(&mut api, &bootstrap).await;
        let status = answer_status(
            &mut api,
            &format!("{TOPICS}/orders/status"),
            serde_json::to_value(&*resource).expect("JSON"),
        )
        .await;
        assert_eq!(ready(&status), ("False".into(), "Refused".into()));
        let message = status["conditions"][0]["message"].as_str().unwrap_or("");
        assert!(message.contains("InvalidReplicationFactor"), "{message}");
        reconcile.await.expect("no panic").expect_err("refused");
        assert_eq!(partitions_of(&admin, "orders").await, None);
    });
}

fn group_resource(
    version: u32,
    reset: Option<Value>,
    status: Option<&ConsumerGroupStatus>,
) -> Arc<ConsumerGroup> {
    let mut spec = json!({
        "cluster": "demo", "groupId": "billing", "topics": ["orders"],
        "lagPolicy": {"thresholdMessages": 100, "forSeconds": 0},
        "partitionScaling": {"maxPartitions": 8, "step": 2, "cooldownSeconds": 300},
    });
    if let Some(reset) = reset {
        spec["offsetReset"] = reset;
    }
    let mut resource: ConsumerGroup = serde_json::from_value(json!({
        "apiVersion": "runnel.dev/v1alpha1", "kind": "ConsumerGroup",
        "metadata": {"name": "billing", "namespace": NS, "uid": "g1",
                     "generation": version, "resourceVersion": version.to_string()},
        "spec": spec,
    }))
    .expect("consumer group");
    resource.status = status.cloned();
    Arc::new(resource)
}

#[test]
fn a_lagging_group_gets_partitions_and_reports_its_lag() {
    let (_dir, broker) = common::started_with(&[]);
    let bootstrap = broker.bootstrap.clone();
    common::runtime().block_on(async {
            let admin = Admin::new(&bootstrap, "test").await.expect("admin");
            admin.create_topic("orders", 5, 1, &[]).await.expect("topic");
            // A backlog: a producer and no consumer.
            let producer = Producer::new(ProducerConfig::new(&bootstrap)).await.expect("producer");
            for i in 0..120 {
                let value = format!("order {i}");
                producer
                    .send(ProducerRecord::new("orders", value.as_bytes()).partition(i % 5))
                    .await
                    .expect("send");
            }
            producer.close().await;

            let (client, mut api) = client();
            let metrics = Arc::new(OperatorMetrics::new());
            let ctx = context(client, Arc::clone(&metrics));
            let resource = group_resource(1, None, None);
            let reconcile = tokio::spawn(group::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
            answer_cluster(&mut api, &bootstrap).await;
            let event = answer_event(&mut api, "PartitionsAdded").await;
            let note = event["note"].as_str().unwrap_or("");
            assert!(note.contains("lag 120 stayed above 100") && note.contains("orders from 5 to 7"), "{note}");
            // The Topic resource of the grown topic learns that partitions
            // up to 7 came from scaling.
            let topic_status = TopicStatus { partitions: Some(5), ..TopicStatus::default() };
            let orders = topic_resource(5, 1, &[topic::FINALIZER], false, Some(&topic_status));
            let list = api.expect("GET", TOPICS).await;
            list.respond(200, &json!({
                "apiVersion": "runnel.dev/v1alpha1", "kind": "TopicList", "metadata": {},
                "items": [serde_json::to_value(&*orders).expect("JSON")],
            }));
            // A merge patch (the Topic reconciler's applies leave the
            // field out, so they cannot drop it).
            let scaled = api.expect("PATCH", &format!("{TOPICS}/orders/status")).await;
            assert!(!scaled.query.contains("fieldManager"), "{}", scaled.query);
            assert_eq!(scaled.body, json!({"status": {"scaledPartitions": 7}}));
            let mut answer = serde_json::to_value(&*orders).expect("JSON");
            answer["status"]["scaledPartitions"] = json!(7);
            scaled.respond(200, &answer);
            let status = answer_status(
                &mut api,
                "/apis/runnel.dev/v1alpha1/namespaces/streaming/consumergroups/billing/status",
                serde_json::to_value(&*resource).expect("JSON"),
            )
            .await;
            assert_eq!(status["lagTotal"], 120);
            assert_eq!(status["lag"].as_array().map(Vec::len), Some(7), "{status}");
            assert_eq!(status["members"], 0);
            let kinds: Vec<(String, String)> = status["conditions"]
                .as_array()
                .expect("conditions")
                .iter()
                .map(|c| (c["type"].as_str().unwrap_or("").into(), c["status"].as_str().unwrap_or("").into()))
                .collect();
            assert_eq!(kinds, [("Lagging".into(), "True".into()), ("Scaling".into(), "True".into())]);
            assert!(status["lastScalingTime"].is_string());
            let action = reconcile.await.expect("no panic").expect("reconciled");
            assert_eq!(action, Action::requeue(Duration::from_secs(30)));
            api.expect_nothing_more();
            assert_eq!(partitions_of(&admin, "orders").await, Some(7));
            let text = metrics.encode();
            assert!(text.contains(r#"runnel_operator_consumergroup_lag_sum{namespace="streaming",consumergroup="billing"} 120"#), "{text}");
            assert!(text.contains(r#"runnel_operator_partitions_added_total{namespace="streaming",consumergroup="billing"} 2"#), "{text}");
            let lagging: ConsumerGroupStatus = serde_json::from_value(status).expect("status");

            // Within the cool-down: still lagging, nothing added; then an
            // offset reset to latest clears the lag, applied once.
            let reset = json!({"id": "skip-backlog", "to": "latest"});
            let resource = group_resource(2, Some(reset.clone()), Some(&lagging));
            let reconcile = tokio::spawn(group::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
            answer_cluster(&mut api, &bootstrap).await;
            answer_event(&mut api, "OffsetsReset").await;
            let status = answer_status(
                &mut api,
                "/apis/runnel.dev/v1alpha1/namespaces/streaming/consumergroups/billing/status",
                serde_json::to_value(&*resource).expect("JSON"),
            )
            .await;
            assert_eq!(status["lagTotal"], 0);
            assert_eq!(status["appliedOffsetReset"], "skip-backlog");
            reconcile.await.expect("no panic").expect("reconciled");
            api.expect_nothing_more();
            assert_eq!(partitions_of(&admin, "orders").await, Some(7), "not grown again");
            let reset_done: ConsumerGroupStatus = serde_json::from_value(status).expect("status");

            // More records: the reset is not applied again.
            let producer = Producer::new(ProducerConfig::new(&bootstrap)).await.expect("producer");
            for _ in 0..10 {
                producer.send(ProducerRecord::new("orders", b"more".as_slice()).partition(0)).await.expect("send");
            }
            producer.close().await;
            let resource = group_resource(2, Some(reset), Some(&reset_done));
            let reconcile = tokio::spawn(group::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
            answer_cluster(&mut api, &bootstrap).await;
            let status = answer_status(
                &mut api,
                "/apis/runnel.dev/v1alpha1/namespaces/streaming/consumergroups/billing/status",
                serde_json::to_value(&*resource).expect("JSON"),
            )
            .await;
            assert_eq!(status["lagTotal"], 10);
            reconcile.await.expect("no panic").expect("reconciled");
            api.expect_nothing_more();
        });
}

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/streaming/deployments";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/streaming/statefulsets";
const GROUP_STATUS: &str =
    "/apis/runnel.dev/v1alpha1/namespaces/streaming/consumergroups/surging/status";

fn surge_resource(status: Option<&ConsumerGroupStatus>) -> Arc<ConsumerGroup> {
    let mut resource: ConsumerGroup = serde_json::from_value(json!({
        "apiVersion": "runnel.dev/v1alpha1", "kind": "ConsumerGroup",
        "metadata": {"name": "surging", "namespace": NS, "uid": "g2",
                     "generation": 1, "resourceVersion": "1"},
        "spec": {
            "cluster": "demo", "groupId": "surging", "topics": ["backlog"],
            "backlogForwarding": {
                "overflow": {"name": "backlog.overflow", "partitions": 6, "group": "overflow-readers"},
                "start": {"lagAbove": 100, "forSeconds": 0},
                "stop": {"lagBelow": 1},
                "originals": {"scaleTargetRef": {"kind": "Deployment", "name": "workers"}},
                "overflowConsumers": {
                    "scaleTargetRef": {"kind": "StatefulSet", "name": "overflow-workers"},
                    "replicas": 6
                }
            }
        },
    }))
    .expect("consumer group");
    resource.status = status.cloned();
    Arc::new(resource)
}

/// The surging group's topic, and the overflow as the Topic reconciler
/// makes it of the overflow Topic.
async fn surge_topics(bootstrap: &str) -> Admin {
    let admin = Admin::new(bootstrap, "test").await.expect("admin");
    admin
        .create_topic("backlog", 2, 1, &[])
        .await
        .expect("topic");
    admin
        .create_topic("backlog.overflow", 6, 1, &[])
        .await
        .expect("topic");
    admin
}

fn scale_answer(name: &str, replicas: i32) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas}, "status": {"replicas": replicas},
    })
}

/// The requests every surge step starts with: the Cluster, the overflow
/// Topic applied, the forwarders' Deployment (`forwarders`: its ready
/// replicas, `None`: absent) and the originals' scale.
async fn surge_observed(
    api: &mut ApiServer,
    bootstrap: &str,
    forwarders: Option<i32>,
    originals: i32,
) {
    answer_cluster(api, bootstrap).await;
    let topic = api
        .expect("PATCH", &format!("{TOPICS}/surging-overflow"))
        .await;
    assert_eq!(topic.body["spec"]["topicName"], "backlog.overflow");
    assert_eq!(topic.body["metadata"]["ownerReferences"][0]["uid"], "g2");
    topic.echo();
    let deployment = api
        .expect("GET", &format!("{DEPLOYMENTS}/surging-forwarder"))
        .await;
    match forwarders {
        None => deployment.fail(404, "NotFound"),
        Some(ready) => deployment.respond(
            200,
            &json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "surging-forwarder", "namespace": NS},
                "spec": {"replicas": 1, "selector": {}, "template": {}},
                "status": {"readyReplicas": ready},
            }),
        ),
    }
    api.expect("GET", &format!("{DEPLOYMENTS}/workers/scale"))
        .await
        .respond(200, &scale_answer("workers", originals));
}

async fn expect_scale(api: &mut ApiServer, path: &str, replicas: i32) {
    let patch = api.expect("PATCH", path).await;
    assert_eq!(
        patch.body,
        json!({"spec": {"replicas": replicas}}),
        "{path}"
    );
    let name = path.rsplit('/').nth(1).unwrap_or_default().to_string();
    patch.respond(200, &scale_answer(&name, replicas));
}

/// The surge on a real broker, Kubernetes mocked: a backlog above the
/// threshold stops the originals (Draining); with the group empty the
/// forwarders' Deployment is applied and the overflow consumers scaled up
/// (Forwarding); a real `runnel forward` (what the Deployment runs) moves
/// the backlog, the low lag stops the forwarders (Returning); once the
/// overflow is drained the originals come back (Normal). Events, status
/// and metrics at each step.
#[test]
fn a_lagging_group_surges_through_every_phase_and_hands_back() {
    let (_dir, broker) = common::started_with(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap.clone();
    common::runtime().block_on(async {
        let admin = surge_topics(&bootstrap).await;
        let producer = Producer::new(ProducerConfig::new(&bootstrap)).await.expect("producer");
        for i in 0..300 {
            let (key, value) = (format!("k{}", i % 7), format!("record {i}"));
            producer
                .send(ProducerRecord::new("backlog", value.as_bytes()).key(key.as_bytes()))
                .await
                .expect("send");
        }
        producer.close().await;
        let (client, mut api) = client();
        let metrics = Arc::new(OperatorMetrics::new());
        let ctx = context(client, Arc::clone(&metrics));
        let run = |status: Option<ConsumerGroupStatus>| {
            let resource = surge_resource(status.as_ref());
            let handle = tokio::spawn(group::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
            (resource, handle)
        };

        // Normal → Draining.
        let (resource, reconcile) = run(None);
        surge_observed(&mut api, &bootstrap, None, 3).await;
        expect_scale(&mut api, &format!("{DEPLOYMENTS}/workers/scale"), 0).await;
        let event = answer_event(&mut api, "SurgeStarted").await;
        assert!(event["note"].as_str().unwrap_or("").contains("lag 300 above 100"), "{event}");
        let status = answer_status(&mut api, GROUP_STATUS, serde_json::to_value(&*resource).expect("JSON")).await;
        assert_eq!(status["surge"]["phase"], "Draining", "{status}");
        assert_eq!(status["surge"]["originalReplicas"], 3);
        // Waiting on the originals: looked at again within 2 s, not 30.
        let action = reconcile.await.expect("no panic").expect("reconciled");
        assert_eq!(action, Action::requeue(Duration::from_secs(2)));
        api.expect_nothing_more();
        assert!(metrics.encode().contains(r#"runnel_operator_backlog_surge_active{namespace="streaming",consumergroup="surging"} 1"#));
        let draining: ConsumerGroupStatus = serde_json::from_value(status).expect("status");

        // Draining → Forwarding: the group has no members.
        let (resource, reconcile) = run(Some(draining));
        surge_observed(&mut api, &bootstrap, None, 0).await;
        let apply = api.expect("PATCH", &format!("{DEPLOYMENTS}/surging-forwarder")).await;
        assert!(apply.query.contains("fieldManager=runnel-operator"), "{}", apply.query);
        let args: Vec<String> = serde_json::from_value(
            apply.body["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
        )
        .expect("args");
        assert_eq!(args[..6], ["forward", "--bootstrap-server", &bootstrap, "--group", "surging", "--topic"]);
        apply.echo();
        expect_scale(&mut api, &format!("{STATEFULSETS}/overflow-workers/scale"), 6).await;
        answer_event(&mut api, "ForwardingStarted").await;
        let status = answer_status(&mut api, GROUP_STATUS, serde_json::to_value(&*resource).expect("JSON")).await;
        assert_eq!(status["surge"]["phase"], "Forwarding", "{status}");
        reconcile.await.expect("no panic").expect("reconciled");
        api.expect_nothing_more();
        let forwarding: ConsumerGroupStatus = serde_json::from_value(status).expect("status");

        // What the Deployment runs, run here: the backlog moves.
        let mut forwarder = std::process::Command::new(env!("CARGO_BIN_EXE_runnel"))
            .args(["forward", "--bootstrap-server", &bootstrap, "--group", "surging"])
            .args(["--topic", "backlog", "--to", "backlog.overflow"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("runnel forward");
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        while admin
            .group_offsets("surging")
            .await
            .expect("offsets")
            .iter()
            .map(|(_, _, o)| *o)
            .sum::<i64>()
            < 300
        {
            assert!(tokio::time::Instant::now() < deadline, "the forwarder moved nothing");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Forwarding → Returning: the lag is below 1.
        let (resource, reconcile) = run(Some(forwarding));
        surge_observed(&mut api, &bootstrap, Some(1), 0).await;
        api.expect("DELETE", &format!("{DEPLOYMENTS}/surging-forwarder"))
            .await
            .respond(200, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}));
        let event = answer_event(&mut api, "ForwardingStopped").await;
        assert!(event["note"].as_str().unwrap_or("").contains("300 records forwarded"), "{event}");
        let status = answer_status(&mut api, GROUP_STATUS, serde_json::to_value(&*resource).expect("JSON")).await;
        assert_eq!(status["surge"]["phase"], "Returning", "{status}");
        reconcile.await.expect("no panic").expect("reconciled");
        api.expect_nothing_more();
        let returning: ConsumerGroupStatus = serde_json::from_value(status).expect("status");
        // The Deployment's deletion stops the forwarder: SIGTERM.
        let _ = std::process::Command::new("kill").args(["-TERM", &forwarder.id().to_string()]).status();
        assert!(forwarder.wait().expect("forwarder exit").success());

        // Returning, the overflow not drained: nothing changes.
        let (resource, reconcile) = run(Some(returning.clone()));
        surge_observed(&mut api, &bootstrap, None, 0).await;
        let status = answer_status(&mut api, GROUP_STATUS, serde_json::to_value(&*resource).expect("JSON")).await;
        assert_eq!(status["surge"]["phase"], "Returning", "{status}");
        reconcile.await.expect("no panic").expect("reconciled");
        api.expect_nothing_more();

        // The overflow's consumers work it off and commit: Normal again.
        let ends = admin
            .end_offsets(&(0..6).map(|p| ("backlog.overflow".to_string(), p)).collect::<Vec<_>>())
            .await
            .expect("ends");
        let drained: Vec<(String, i32, i64)> =
            ends.iter().enumerate().map(|(p, e)| ("backlog.overflow".to_string(), p as i32, *e)).collect();
        admin.commit_group_offsets("overflow-readers", &drained).await.expect("commit");
        let (resource, reconcile) = run(Some(returning));
        surge_observed(&mut api, &bootstrap, None, 0).await;
        expect_scale(&mut api, &format!("{STATEFULSETS}/overflow-workers/scale"), 0).await;
        expect_scale(&mut api, &format!("{DEPLOYMENTS}/workers/scale"), 3).await;
        answer_event(&mut api, "SurgeEnded").await;
        let status = answer_status(&mut api, GROUP_STATUS, serde_json::to_value(&*resource).expect("JSON")).await;
        assert_eq!(status["surge"]["phase"], "Normal", "{status}");
        reconcile.await.expect("no panic").expect("reconciled");
        api.expect_nothing_more();
        let text = metrics.encode();
        for line in [
            r#"runnel_operator_backlog_surge_active{namespace="streaming",consumergroup="surging"} 0"#,
            r#"runnel_operator_backlog_records_forwarded_total{namespace="streaming",consumergroup="surging"} 300"#,
            r#"runnel_operator_backlog_surge_duration_seconds_count{namespace="streaming",consumergroup="surging"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    });
}

/// The give-up path over the mocked API: the group still has a member
/// (its consumers are not what `originals` scales) long after Draining
/// began: the originals are scaled back, a Warning Event says why, and
/// the surge is Normal again.
#[test]
fn a_surge_whose_originals_never_leave_gives_up_and_scales_them_back() {
    let (_dir, broker) = common::started_with(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap.clone();
    common::runtime().block_on(async {
        surge_topics(&bootstrap).await;
        // A member the operator's scaling does not stop.
        let config = runnel_client::ConsumerConfig::new(&bootstrap)
            .set("group.id", "surging")
            .expect("config");
        let mut member = runnel_client::Consumer::new(config).await.expect("consumer");
        member.subscribe(&["backlog"]).expect("subscribe");
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        while member.assignment().is_empty() {
            member.poll(Duration::from_millis(100)).await.expect("poll");
            assert!(tokio::time::Instant::now() < deadline, "never joined");
        }
        let polling = tokio::spawn(async move {
            loop {
                let _ = member.poll(Duration::from_millis(100)).await;
            }
        });

        let draining: ConsumerGroupStatus = serde_json::from_value(json!({
            "surge": {"phase": "Draining", "reason": "lag 300 above 100",
                      "since": "2026-01-01T00:00:00Z", "started": "2026-01-01T00:00:00Z",
                      "originalReplicas": 3}
        }))
        .expect("status");
        let (client, mut api) = client();
        let metrics = Arc::new(OperatorMetrics::new());
        let ctx = context(client, Arc::clone(&metrics));
        let resource = surge_resource(Some(&draining));
        let reconcile = tokio::spawn(group::reconcile(Arc::clone(&resource), Arc::clone(&ctx)));
        surge_observed(&mut api, &bootstrap, None, 0).await;
        expect_scale(&mut api, &format!("{DEPLOYMENTS}/workers/scale"), 3).await;
        let event = answer_event(&mut api, "SurgeGaveUp").await;
        assert_eq!(event["type"], "Warning", "{event}");
        assert!(
            event["note"].as_str().unwrap_or("").contains("still has 1 members"),
            "{event}"
        );
        let status = answer_status(&mut api, GROUP_STATUS, serde_json::to_value(&*resource).expect("JSON")).await;
        assert_eq!(status["surge"]["phase"], "Normal", "{status}");
        assert!(status["surge"]["reason"].as_str().unwrap_or("").starts_with("gave up"), "{status}");
        reconcile.await.expect("no panic").expect("reconciled");
        api.expect_nothing_more();
        assert!(metrics.encode().contains(r#"runnel_operator_backlog_surge_active{namespace="streaming",consumergroup="surging"} 0"#));
        polling.abort();
    });
}
