//! Delayed delivery survives kill -9: records acknowledged by a delay
//! level, and records sent through the entry topic with their own due
//! times (hopping through two levels), are produced round after round, and
//! the broker is killed while its mover is moving them (at a different
//! point of the moves each round); after the last restart a read_committed
//! consumer of the target finds every acknowledged record exactly once.
//! Rounds: `RUNNEL_DELIVERY_KILL_ROUNDS` (20 by default).
//!
//! Also: a batch for an entry topic with a due time that can't be taken
//! gets INVALID_RECORD naming the record and the header.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_client::{Admin, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};
use runnel_log::BatchBuilder;

use common::Broker;
use common::client::Client;

const LEVEL: &str = "moved_300ms";
const TARGET: &str = "moved";
const ENTRY: &str = "moved_delayed";
const DELAY_MS: u64 = 300;
const PER_ROUND: usize = 200;

/// Small internal topics: each restart loads them.
const OVERRIDES: &[&str] = &[
    "offsets.topic.num.partitions=2",
    "transaction.state.log.num.partitions=2",
];

fn start(dir: &Path) -> Broker {
    let mut broker = Broker::serve_with(dir, OVERRIDES);
    broker.wait_ready();
    broker
}

async fn produce_round(bootstrap: &str, round: usize) {
    let config = ProducerConfig::new(bootstrap)
        .set("acks", "all")
        .and_then(|c| c.set("linger.ms", "5"))
        .expect("valid");
    let producer = Producer::new(config).await.expect("producer");
    let mut deliveries = Vec::with_capacity(PER_ROUND);
    let values: Vec<String> = (0..PER_ROUND)
        .map(|i| format!("r{round:02}-{i:04}"))
        .collect();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{}", i % 13);
        // Every other record through the entry topic, due from 200 to
        // 800 ms from now: one to four hops through the 100 ms and 300 ms
        // levels.
        let record = if i % 2 == 0 {
            ProducerRecord::new(LEVEL, value.as_bytes())
        } else {
            ProducerRecord::new(TARGET, value.as_bytes())
                .deliver_at(now_ms + 200 + (i as i64 % 7) * 100)
        };
        deliveries.push(
            producer
                .send(record.key(key.as_bytes()))
                .await
                .expect("queued"),
        );
    }
    for delivery in deliveries {
        delivery.await.expect("acknowledged by the level");
    }
}

/// The target's end offsets, summed.
async fn target_offsets(bootstrap: &str) -> i64 {
    let admin = Admin::new(bootstrap, "delivery-test").await.expect("admin");
    let partitions: Vec<(String, i32)> = (0..3).map(|p| (TARGET.to_string(), p)).collect();
    admin
        .end_offsets(&partitions)
        .await
        .expect("end offsets")
        .into_iter()
        .sum()
}

async fn read_target(bootstrap: &str, expected: usize) -> BTreeMap<String, usize> {
    let config = ConsumerConfig::new(bootstrap)
        .set("auto.offset.reset", "earliest")
        .and_then(|c| c.set("isolation.level", "read_committed"))
        .and_then(|c| c.set("fetch.max.wait.ms", "100"))
        .expect("valid");
    let mut consumer = Consumer::new(config).await.expect("consumer");
    consumer
        .assign(&[(TARGET, 0), (TARGET, 1), (TARGET, 2)])
        .await
        .expect("assign");
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    while total < expected && tokio::time::Instant::now() < deadline {
        for record in consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
        {
            let value = String::from_utf8(record.value.expect("value").to_vec()).expect("utf-8");
            *seen.entry(value).or_default() += 1;
            total += 1;
        }
    }
    // Nothing more comes.
    for record in consumer
        .poll(Duration::from_millis(1_000))
        .await
        .expect("poll")
    {
        let value = String::from_utf8(record.value.expect("value").to_vec()).expect("utf-8");
        *seen.entry(value).or_default() += 1;
    }
    seen
}

#[test]
fn kill_9_during_moves_loses_and_duplicates_nothing() {
    let rounds: usize = std::env::var("RUNNEL_DELIVERY_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = common::runtime();
    let mut broker = start(dir.path());
    runtime.block_on(async {
        let admin = Admin::new(&broker.bootstrap, "delivery-test")
            .await
            .expect("admin");
        admin
            .create_topic(TARGET, 3, 1, &[])
            .await
            .expect("create the target");
        let level = [
            ("delivery.delay.ms".to_string(), DELAY_MS.to_string()),
            ("delivery.target".to_string(), TARGET.to_string()),
        ];
        admin
            .create_topic(LEVEL, 2, 1, &level)
            .await
            .expect("create the level");
        let entry = [
            ("delivery.levels".to_string(), "100ms,300ms".to_string()),
            ("delivery.target".to_string(), TARGET.to_string()),
        ];
        admin
            .create_topic(ENTRY, 2, 1, &entry)
            .await
            .expect("create the entry");
    });
    let mut killed_before_all_moved = 0;
    for round in 0..rounds {
        runtime.block_on(produce_round(&broker.bootstrap, round));
        // The records fall due DELAY_MS after their append: kill the
        // broker at a different point of their moves each round (fault
        // injection timing, not synchronisation).
        let into_moves = DELAY_MS - 50 + (round as u64 * 37) % 200;
        std::thread::sleep(Duration::from_millis(into_moves));
        let written = runtime.block_on(target_offsets(&broker.bootstrap));
        let exit = broker.kill();
        // Offsets of the target include markers: fewer than the records
        // acknowledged so far means moves were still to come at the kill.
        if written < ((round + 1) * PER_ROUND) as i64 {
            killed_before_all_moved += 1;
        }
        let stderr = common::plain(&exit.stderr);
        assert!(
            !stderr.contains("panicked"),
            "round {round}: the broker panicked:\n{stderr}"
        );
        broker = start(dir.path());
    }
    assert!(
        killed_before_all_moved > 0,
        "every kill came after the moves: the test did not test them"
    );
    eprintln!("delivery: {killed_before_all_moved} of {rounds} kills came with moves still to do");
    let expected = rounds * PER_ROUND;
    let seen = runtime.block_on(read_target(&broker.bootstrap, expected));
    let duplicated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let missing: Vec<String> = (0..rounds)
        .flat_map(|round| (0..PER_ROUND).map(move |i| format!("r{round:02}-{i:04}")))
        .filter(|value| !seen.contains_key(value))
        .collect();
    assert!(
        missing.is_empty() && duplicated.is_empty(),
        "{} of {expected} missing (first: {:?}), {} duplicated (first: {:?})",
        missing.len(),
        missing.first(),
        duplicated.len(),
        duplicated.first()
    );
    broker.terminate();
    let exit = broker.wait_exit();
    assert!(exit.status.success(), "{}", common::plain(&exit.stderr));
}

/// A record's headers: (name, value).
type Headers<'a> = &'a [(&'a str, &'a [u8])];

/// Produces one batch of `records` (value, due time headers) to
/// `topic`-0 with the raw client: the partition's answer.
fn produce_raw(
    client: &mut Client,
    topic: &str,
    records: &[(&str, Headers<'_>)],
) -> produce_response::PartitionProduceResponse {
    let mut builder = BatchBuilder::new(0);
    for (value, headers) in records {
        builder.push_with_headers(None, Some(value.as_bytes()), 0, (0, &[]), headers);
    }
    let mut partition = produce_request::PartitionProduceData::default();
    partition.records = Some(Bytes::from(builder.build()));
    let mut data = produce_request::TopicProduceData::default();
    data.name = TopicName(StrBytes::from_string(topic.to_string()));
    data.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![data];
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].clone()
}

#[test]
fn an_entry_refuses_a_due_time_it_cannot_take_naming_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = common::runtime();
    let mut broker = start(dir.path());
    runtime.block_on(async {
        let admin = Admin::new(&broker.bootstrap, "delivery-test")
            .await
            .expect("admin");
        admin.create_topic(TARGET, 1, 1, &[]).await.expect("target");
        let entry = [
            ("delivery.levels".to_string(), "1s".to_string()),
            ("delivery.target".to_string(), TARGET.to_string()),
            ("delivery.max.delay.ms".to_string(), "60000".to_string()),
        ];
        admin
            .create_topic(ENTRY, 1, 1, &entry)
            .await
            .expect("entry");
    });
    let mut client = Client::connect(&broker.bootstrap);
    for (headers, header, says) in [
        (
            &[("runnel-deliver-at", &b"soon"[..])][..],
            "runnel-deliver-at",
            "not a whole number",
        ),
        (
            &[("runnel-delay-ms", &b"120000"[..])][..],
            "runnel-delay-ms",
            "past delivery.max.delay.ms=60000",
        ),
        (
            &[
                ("runnel-delay-ms", &b"1"[..]),
                ("runnel-deliver-at", &b"1"[..]),
            ][..],
            "runnel-deliver-at",
            "both set",
        ),
    ] {
        let answer = produce_raw(&mut client, ENTRY, &[("fine", &[]), ("bad", headers)]);
        let message = answer
            .error_message
            .as_deref()
            .unwrap_or_default()
            .to_string();
        assert_eq!(answer.error_code, 87, "INVALID_RECORD: {message}");
        assert!(
            message.contains(header) && message.contains(says) && message.contains("record 1"),
            "the message names the record, {header} and why: {message}"
        );
        assert_eq!(answer.record_errors.len(), 1, "{:?}", answer.record_errors);
        assert_eq!(answer.record_errors[0].batch_index, 1);
    }
    // Nothing of the refused batches was written; a good batch is.
    let answer = produce_raw(
        &mut client,
        ENTRY,
        &[("due", &[("runnel-delay-ms", &b"10"[..])])],
    );
    assert_eq!(answer.error_code, 0, "{:?}", answer.error_message);
    assert_eq!(answer.base_offset, 0, "the refused batches left nothing");
    broker.terminate();
    let exit = broker.wait_exit();
    assert!(exit.status.success(), "{}", common::plain(&exit.stderr));
}
