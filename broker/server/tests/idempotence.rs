//! Idempotent produce through lost responses: with the broker's
//! fault-injection switch closing the connection after every 5th Produce
//! is appended (before its response), a runnel-client producer retries,
//! and the broker recognises the retries: every message is in the log
//! exactly once and in order. The same run without idempotence writes
//! duplicates, which shows the faults happen.
//!
//! Needs the `fault-injection` feature (scripts/test.sh turns it on).
#![cfg(feature = "fault-injection")]

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::time::Duration;

use runnel_client::{Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};

use common::Broker;

const MESSAGES: usize = 2000;

/// Sends `MESSAGES` values to a 1-partition topic, all in flight together;
/// returns the values the log holds, in offset order.
async fn produce_through_faults(bootstrap: &str, topic: &str, idempotence: bool) -> Vec<String> {
    let admin = runnel_client::Admin::new(bootstrap, "test")
        .await
        .expect("admin");
    admin.create_topic(topic, 1, 1, &[]).await.expect("create");
    let config = ProducerConfig::new(bootstrap)
        .set(
            "enable.idempotence",
            if idempotence { "true" } else { "false" },
        )
        .and_then(|c| c.set("linger.ms", "1"))
        .and_then(|c| c.set("batch.size", "2000"))
        .and_then(|c| c.set("retry.backoff.ms", "10"))
        .expect("valid");
    let producer = Producer::new(config).await.expect("producer");
    let mut deliveries = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let value = format!("m{i:05}");
        let record = ProducerRecord::new(topic, value.as_bytes()).partition(0);
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for delivery in deliveries {
        tokio::time::timeout(common::DEADLINE, delivery)
            .await
            .expect("answered within the deadline")
            .expect("delivered");
    }
    producer.close().await;

    let config = ConsumerConfig::new(bootstrap)
        .set("auto.offset.reset", "earliest")
        .expect("valid");
    let mut consumer = Consumer::new(config).await.expect("consumer");
    consumer.assign(&[(topic, 0)]).await.expect("assign");
    let end = admin
        .end_offsets(&[(topic.to_string(), 0)])
        .await
        .expect("end offsets")[0];
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while (values.len() as i64) < end && tokio::time::Instant::now() < deadline {
        for record in consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll")
        {
            let value = record.value.expect("a value");
            values.push(String::from_utf8(value.to_vec()).expect("utf-8"));
        }
    }
    values
}

#[test]
fn lost_responses_do_not_duplicate_an_idempotent_producers_messages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with_env(
        dir.path(),
        &[],
        &[("FAULT_DROP_PRODUCE_RESPONSE_EVERY", "5")],
    );
    broker.wait_ready();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("m{i:05}")).collect();

    let idempotent = rt.block_on(produce_through_faults(
        &broker.bootstrap,
        "exactly-once",
        true,
    ));
    assert_eq!(
        idempotent.len(),
        MESSAGES,
        "every message once (first extra: {:?})",
        idempotent.get(MESSAGES)
    );
    assert_eq!(idempotent, expected, "in send order");

    let plain = rt.block_on(produce_through_faults(
        &broker.bootstrap,
        "at-least-once",
        false,
    ));
    assert!(
        plain.len() > MESSAGES,
        "without idempotence the retries of appended batches are written again: {} records",
        plain.len()
    );
}
