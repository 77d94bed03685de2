//! runnel-client consumers in a group with a librdkafka consumer: the
//! group's range assignor splits the partitions between all three, and
//! every message is consumed exactly once across them.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runnel_client::{Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};

use common::Broker;

const TOPIC: &str = "mixed";
const GROUP: &str = "mixed-group";

/// The librdkafka member's process, killed however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

type Seen = Arc<Mutex<BTreeMap<(i32, i64), Vec<&'static str>>>>;

fn record(seen: &Seen, who: &'static str, partition: i32, offset: i64) {
    seen.lock()
        .expect("seen")
        .entry((partition, offset))
        .or_default()
        .push(who);
}

#[test]
fn two_of_ours_and_librdkafka_share_a_group_and_consume_each_message_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let admin = runnel_client::Admin::new(&bootstrap, "test")
            .await
            .expect("admin");
        admin.create_topic(TOPIC, 6, 1, &[]).await.expect("create");
    });

    let seen: Seen = Arc::default();
    let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let mut worker = KillOnDrop(
        Command::new("python3")
            .arg(clients.join("group_worker.py"))
            .args([bootstrap.as_str(), GROUP, TOPIC])
            .current_dir(&clients)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn group_worker.py"),
    );
    let stdout = worker.0.stdout.take().expect("stdout");
    let from_worker = Arc::clone(&seen);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let ["got", p, o] = words[..] {
                record(
                    &from_worker,
                    "librdkafka",
                    p.parse().unwrap_or(-1),
                    o.parse().unwrap_or(-1),
                );
            }
        }
    });

    rt.block_on(async {
        let assigned: Arc<Mutex<[usize; 2]>> = Arc::default();
        let mut members = Vec::new();
        for (index, name) in ["ours-1", "ours-2"].into_iter().enumerate() {
            let config = ConsumerConfig::new(&bootstrap)
                .set("group.id", GROUP)
                .and_then(|c| c.set("enable.auto.commit", "false"))
                .and_then(|c| c.set("auto.offset.reset", "earliest"))
                .and_then(|c| c.set("heartbeat.interval.ms", "300"))
                .and_then(|c| c.set("session.timeout.ms", "6000"))
                .and_then(|c| c.set("fetch.max.wait.ms", "100"))
                .expect("valid");
            let (seen, assigned) = (Arc::clone(&seen), Arc::clone(&assigned));
            members.push(tokio::spawn(async move {
                let mut consumer = Consumer::new(config).await.expect("consumer");
                consumer.subscribe(&[TOPIC]).expect("subscribe");
                let deadline = tokio::time::Instant::now() + common::DEADLINE;
                while tokio::time::Instant::now() < deadline {
                    let records = consumer
                        .poll(Duration::from_millis(200))
                        .await
                        .expect("poll");
                    assigned.lock().expect("assigned")[index] = consumer.assignment().len();
                    for r in &records {
                        record(&seen, name, r.partition, r.offset);
                    }
                    if !records.is_empty() {
                        consumer.commit().await.expect("commit");
                    }
                    if seen.lock().expect("seen").len() >= 60 {
                        break;
                    }
                }
                consumer.close().await;
            }));
        }
        // Produce only once the group has settled: 2 partitions each.
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        while *assigned.lock().expect("assigned") != [2, 2] {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the group never split 2/2/2"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let producer = Producer::new(ProducerConfig::new(&bootstrap))
            .await
            .expect("producer");
        for i in 0..60 {
            let value = format!("m{i}");
            let record = ProducerRecord::new(TOPIC, value.as_bytes()).partition(i % 6);
            producer
                .send(record)
                .await
                .expect("send")
                .await
                .expect("delivered");
        }
        producer.close().await;
        for member in members {
            tokio::time::timeout(common::DEADLINE, member)
                .await
                .expect("a member did not finish within the deadline")
                .expect("member");
        }
    });
    drop(worker);
    let seen = seen.lock().expect("seen");
    assert_eq!(seen.len(), 60, "consumed {} of 60: {seen:?}", seen.len());
    let twice: Vec<_> = seen.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(twice.is_empty(), "consumed more than once: {twice:?}");
    let mut by_member: BTreeMap<&str, usize> = BTreeMap::new();
    for who in seen.values() {
        *by_member.entry(who[0]).or_default() += 1;
    }
    assert_eq!(by_member.len(), 3, "each member read some: {by_member:?}");
    assert!(
        by_member.values().all(|&n| n == 20),
        "2 partitions x 10 each: {by_member:?}"
    );
}

type Assignments = Arc<Mutex<Vec<Vec<(String, i32)>>>>;

/// A member polling in its own task (a join blocks until every member has
/// joined), publishing its assignment in `slot` until `stop`.
fn spawn_member(
    bootstrap: String,
    slot: usize,
    assignments: Assignments,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = ConsumerConfig::new(&bootstrap)
            .set("group.id", "stickies")
            .and_then(|c| c.set("partition.assignment.strategy", "sticky"))
            .and_then(|c| c.set("heartbeat.interval.ms", "100"))
            .and_then(|c| c.set("session.timeout.ms", "6000"))
            .and_then(|c| c.set("fetch.max.wait.ms", "50"))
            .expect("valid");
        let mut consumer = Consumer::new(config).await.expect("consumer");
        consumer.subscribe(&["sticky"]).expect("subscribe");
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            consumer
                .poll(Duration::from_millis(50))
                .await
                .expect("poll");
            assignments.lock().expect("assignments")[slot] = consumer.assignment();
        }
        consumer.close().await;
    })
}

/// Waits until the members' assignment sizes are `sizes`.
async fn settle(assignments: &Assignments, sizes: &[usize]) -> Vec<Vec<(String, i32)>> {
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    loop {
        let now = assignments.lock().expect("assignments").clone();
        if now.iter().map(Vec::len).collect::<Vec<_>>() == sizes {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "assignments {now:?}, expected sizes {sizes:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn the_sticky_assignor_keeps_partitions_with_their_owners() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let admin = runnel_client::Admin::new(&bootstrap, "test")
            .await
            .expect("admin");
        admin
            .create_topic("sticky", 6, 1, &[])
            .await
            .expect("create");
        let assignments: Assignments = Arc::new(Mutex::new(vec![Vec::new(); 3]));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut members = Vec::new();
        for slot in 0..2 {
            members.push(spawn_member(
                bootstrap.clone(),
                slot,
                Arc::clone(&assignments),
                Arc::clone(&stop),
            ));
        }
        let before = settle(&assignments, &[3, 3, 0]).await;
        members.push(spawn_member(
            bootstrap.clone(),
            2,
            Arc::clone(&assignments),
            Arc::clone(&stop),
        ));
        let after = settle(&assignments, &[2, 2, 2]).await;
        for slot in 0..2 {
            assert!(
                after[slot].iter().all(|tp| before[slot].contains(tp)),
                "member {slot} got {:?}, owned {:?}",
                after[slot],
                before[slot]
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Release);
        for member in members {
            tokio::time::timeout(common::DEADLINE, member)
                .await
                .expect("a member did not finish within the deadline")
                .expect("member");
        }
    });
}
