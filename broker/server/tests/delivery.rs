//! Delayed delivery survives kill -9: records acknowledged by a delay
//! level are produced round after round, and the broker is killed while
//! its mover is moving them (at a different point of the moves each
//! round); after the last restart a read_committed consumer of the target
//! finds every acknowledged record exactly once. Rounds:
//! `RUNNEL_DELIVERY_KILL_ROUNDS` (20 by default).

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use runnel_client::{Admin, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};

use common::Broker;

const LEVEL: &str = "moves_300ms";
const TARGET: &str = "moved";
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
    for (i, value) in values.iter().enumerate() {
        let key = format!("k{}", i % 13);
        let record = ProducerRecord::new(LEVEL, value.as_bytes()).key(key.as_bytes());
        deliveries.push(producer.send(record).await.expect("queued"));
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
