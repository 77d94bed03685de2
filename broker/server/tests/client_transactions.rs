//! runnel-client's transactional producer and read_committed consumer
//! against the real broker: a committed transaction is read, an aborted
//! one never is (read_uncommitted sees both), offsets sent in a
//! transaction apply when it commits, and a second producer of the same
//! transactional.id fences the first.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::time::Duration;

use runnel_client::{
    ClientError, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord,
};

use common::Broker;

async fn values(bootstrap: &str, isolation: &str, count: usize) -> Vec<String> {
    let config = ConsumerConfig::new(bootstrap)
        .set("auto.offset.reset", "earliest")
        .and_then(|c| c.set("isolation.level", isolation))
        .and_then(|c| c.set("fetch.max.wait.ms", "100"))
        .expect("valid");
    let mut consumer = Consumer::new(config).await.expect("consumer");
    consumer
        .assign(&[("tx", 0), ("tx", 1)])
        .await
        .expect("assign");
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while out.len() < count && tokio::time::Instant::now() < deadline {
        for record in consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
        {
            let value = record.value.expect("value");
            out.push(String::from_utf8(value.to_vec()).expect("utf-8"));
        }
    }
    // Nothing more comes (markers are not records).
    let more = consumer
        .poll(Duration::from_millis(500))
        .await
        .expect("poll");
    assert!(more.is_empty(), "{isolation}: more than {count}: {more:?}");
    out.sort();
    out
}

fn transactional(bootstrap: &str, id: &str) -> ProducerConfig {
    ProducerConfig::new(bootstrap)
        .set("transactional.id", id)
        .and_then(|c| c.set("linger.ms", "2"))
        .expect("valid")
}

#[test]
fn committed_transactions_are_read_and_aborted_ones_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), &["num.partitions=2"]);
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let producer = Producer::new(transactional(&bootstrap, "tx-ours"))
                .await
                .expect("producer");
            let err = producer
                .send(ProducerRecord::new("tx", b"early"))
                .await
                .expect_err("no transaction yet");
            assert!(matches!(err, ClientError::Transaction { .. }), "{err}");
            producer.init_transactions().await.expect("init");

            producer.begin_transaction().expect("begin");
            for i in 0..30 {
                let value = format!("committed-{i:02}");
                let record = ProducerRecord::new("tx", value.as_bytes()).partition(i % 2);
                producer.send(record).await.expect("send");
            }
            producer.commit_transaction().await.expect("commit");

            producer.begin_transaction().expect("begin");
            for i in 0..20 {
                let value = format!("aborted-{i:02}");
                let record = ProducerRecord::new("tx", value.as_bytes()).partition(i % 2);
                producer.send(record).await.expect("send");
            }
            producer.flush().await;
            producer.abort_transaction().await.expect("abort");

            // Offsets in a transaction apply when it commits.
            producer.begin_transaction().expect("begin");
            producer
                .send_offsets_to_transaction(&[("tx", 0, 7), ("tx", 1, 8)], "tx-group")
                .await
                .expect("offsets");
            producer.commit_transaction().await.expect("commit offsets");

            let committed = values(&bootstrap, "read_committed", 30).await;
            let want: Vec<String> = {
                let mut v: Vec<String> = (0..30).map(|i| format!("committed-{i:02}")).collect();
                v.sort();
                v
            };
            assert_eq!(committed, want);
            let everything = values(&bootstrap, "read_uncommitted", 50).await;
            assert_eq!(
                everything
                    .iter()
                    .filter(|v| v.starts_with("aborted-"))
                    .count(),
                20
            );

            let group = ConsumerConfig::new(&bootstrap)
                .set("group.id", "tx-group")
                .expect("valid");
            let reader = Consumer::new(group).await.expect("consumer");
            assert_eq!(reader.committed("tx", 0).await.expect("committed"), Some(7));
            assert_eq!(reader.committed("tx", 1).await.expect("committed"), Some(8));

            // A new producer of the same id fences this one.
            let newer = Producer::new(transactional(&bootstrap, "tx-ours"))
                .await
                .expect("producer");
            newer.init_transactions().await.expect("init");
            producer.begin_transaction().expect("begin");
            let fenced = producer
                .send(ProducerRecord::new("tx", b"zombie").partition(0))
                .await;
            let err = match fenced {
                Err(err) => err,
                Ok(_) => producer
                    .commit_transaction()
                    .await
                    .expect_err("the fenced producer cannot commit"),
            };
            assert!(
                matches!(err, ClientError::Kafka { code: 90, .. }),
                "PRODUCER_FENCED: {err}"
            );
        });
}

/// KIP-447, as `runnel forward` relies on it: offsets sent with a member's
/// group metadata are refused once a rebalance ended its generation (the
/// member's partitions may be someone else's now), and a read_committed
/// member starting on a partition waits until an open transaction that
/// commits its offset has ended, then starts where it committed.
#[test]
fn offsets_of_an_ended_generation_are_refused_and_open_ones_are_waited_for() {
    let (_dir, broker) =
        common::started_with(&["num.partitions=1", "group.initial.rebalance.delay.ms=0"]);
    ended_generations_and_open_offsets(&broker.bootstrap);
}

#[test]
fn kafka_refuses_offsets_of_an_ended_generation_and_holds_open_ones_too() {
    common::kafka::require_installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = common::kafka::KafkaBroker::start(dir.path());
    ended_generations_and_open_offsets(&kafka.bootstrap);
}

fn ended_generations_and_open_offsets(bootstrap: &str) {
    let bootstrap = bootstrap.to_string();
    common::runtime().block_on(async {
        runnel_client::Admin::new(&bootstrap, "test")
            .await
            .expect("admin")
            .create_topic("eos", 1, 1, &[])
            .await
            .expect("create eos");
        let member = |id: &str| {
            ConsumerConfig::new(&bootstrap)
                .set("group.id", "eos-group")
                .and_then(|c| c.set("client.id", id))
                .and_then(|c| c.set("enable.auto.commit", "false"))
                .and_then(|c| c.set("isolation.level", "read_committed"))
                .and_then(|c| c.set("auto.offset.reset", "earliest"))
                .expect("valid")
        };
        let producer = Producer::new(transactional(&bootstrap, "eos-forwarder"))
            .await
            .expect("producer");
        producer.init_transactions().await.expect("init");
        producer.begin_transaction().expect("begin");
        let delivery = producer
            .send(ProducerRecord::new("eos", b"one"))
            .await
            .expect("send");
        producer.flush().await;
        delivery.await.expect("delivered");
        producer.commit_transaction().await.expect("commit");

        let mut first = Consumer::new(member("first")).await.expect("consumer");
        first.subscribe(&["eos"]).expect("subscribe");
        while first.assignment().is_empty() {
            first.poll(Duration::from_millis(100)).await.expect("poll");
        }
        let stale = first.group_metadata().expect("metadata");
        assert!(stale.generation_id >= 0, "{stale:?}");

        // The member joins again (as after any rebalance): the generation
        // its metadata names is over.
        first.subscribe(&["eos"]).expect("subscribe again");
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        while first.group_metadata().expect("metadata").generation_id == stale.generation_id {
            first.poll(Duration::from_millis(100)).await.expect("poll");
            assert!(tokio::time::Instant::now() < deadline, "no new generation");
        }
        producer.begin_transaction().expect("begin");
        let refused = producer
            .send_offsets_to_transaction_with(&[("eos", 0, 1)], &stale)
            .await
            .expect_err("an ended generation commits nothing");
        assert!(
            matches!(refused, ClientError::Kafka { code: 22, .. }),
            "ILLEGAL_GENERATION: {refused}"
        );
        producer.abort_transaction().await.expect("abort");
        first.close().await;

        // An open transaction holds offset 1 for the group: a new
        // read_committed member asks for a stable offset and waits.
        producer.begin_transaction().expect("begin");
        producer
            .send_offsets_to_transaction(&[("eos", 0, 1)], "eos-group")
            .await
            .expect("offsets");
        let reader = Consumer::new(member("reader")).await.expect("consumer");
        let waiting = tokio::time::timeout(Duration::from_millis(500), reader.committed("eos", 0));
        assert!(
            waiting.await.is_err(),
            "answered while the offset is unstable"
        );
        let committed = tokio::spawn(async move { reader.committed("eos", 0).await });
        producer.commit_transaction().await.expect("commit");
        let offset = tokio::time::timeout(common::DEADLINE, committed)
            .await
            .expect("answered once the transaction ended")
            .expect("task")
            .expect("committed");
        assert_eq!(offset, Some(1));
    });
}
