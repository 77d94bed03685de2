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
