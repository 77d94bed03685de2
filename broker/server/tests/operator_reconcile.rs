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
