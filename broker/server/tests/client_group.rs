//! runnel-client consumers in groups: with a librdkafka consumer (range
//! and cooperative-sticky split the partitions between all three, and every
//! message is consumed exactly once across them), and among themselves
//! (the sticky assignors keep partitions with their owners; the listener
//! hears eager and cooperative rebalances as Java's does).

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runnel_client::{
    Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord, RebalanceListener,
};

use common::Broker;

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
fn two_of_ours_and_librdkafka_share_a_range_group_and_consume_each_message_once() {
    mixed_group("range", "mixed-range");
}

#[test]
fn two_of_ours_and_librdkafka_share_a_cooperative_sticky_group() {
    mixed_group("cooperative-sticky", "mixed-cooperative");
}

/// One librdkafka consumer and two of ours with `strategy` split a
/// 6-partition topic 2/2/2, and each of 60 messages is consumed once.
fn mixed_group(strategy: &'static str, topic: &'static str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let admin = runnel_client::Admin::new(&bootstrap, "test")
            .await
            .expect("admin");
        admin.create_topic(topic, 6, 1, &[]).await.expect("create");
    });

    let seen: Seen = Arc::default();
    let clients = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let mut worker = KillOnDrop(
        Command::new("python3")
            .arg(clients.join("group_worker.py"))
            .args([bootstrap.as_str(), topic, topic, strategy])
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
                .set("group.id", topic)
                .and_then(|c| c.set("partition.assignment.strategy", strategy))
                .and_then(|c| c.set("enable.auto.commit", "false"))
                .and_then(|c| c.set("auto.offset.reset", "earliest"))
                .and_then(|c| c.set("heartbeat.interval.ms", "300"))
                .and_then(|c| c.set("session.timeout.ms", "6000"))
                .and_then(|c| c.set("fetch.max.wait.ms", "100"))
                .expect("valid");
            let (seen, assigned) = (Arc::clone(&seen), Arc::clone(&assigned));
            members.push(tokio::spawn(async move {
                let mut consumer = Consumer::new(config).await.expect("consumer");
                consumer.subscribe(&[topic]).expect("subscribe");
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
                "the group never split 2/2/2: ours hold {:?}",
                assigned.lock().expect("assigned")
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let producer = Producer::new(ProducerConfig::new(&bootstrap))
            .await
            .expect("producer");
        for i in 0..60 {
            let value = format!("m{i}");
            let record = ProducerRecord::new(topic, value.as_bytes()).partition(i % 6);
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

type Partitions = Vec<(String, i32)>;
type Assignments = Arc<Mutex<Vec<Partitions>>>;

/// What each member's rebalance listener was told, in order.
type Events = Arc<Mutex<Vec<Vec<Event>>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Revoked(Vec<(String, i32)>),
    Assigned(Vec<(String, i32)>),
    Lost(Vec<(String, i32)>),
}

struct Recorder {
    slot: usize,
    events: Events,
}

impl Recorder {
    fn push(&self, event: Event) {
        self.events.lock().expect("events")[self.slot].push(event);
    }
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, partitions: &[(String, i32)]) {
        self.push(Event::Revoked(partitions.to_vec()));
    }
    fn on_partitions_assigned(&mut self, partitions: &[(String, i32)]) {
        self.push(Event::Assigned(partitions.to_vec()));
    }
    fn on_partitions_lost(&mut self, partitions: &[(String, i32)]) {
        self.push(Event::Lost(partitions.to_vec()));
    }
}

/// One test's group of our members, each polling in its own task (a join
/// blocks until every member has joined), publishing its assignment and
/// its listener's events in its slot until `stop`.
#[derive(Clone)]
struct Members {
    bootstrap: String,
    strategy: &'static str,
    assignments: Assignments,
    events: Events,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Members {
    fn new(bootstrap: &str, strategy: &'static str, slots: usize) -> Self {
        Self {
            bootstrap: bootstrap.to_string(),
            strategy,
            assignments: Arc::new(Mutex::new(vec![Vec::new(); slots])),
            events: Arc::new(Mutex::new(vec![Vec::new(); slots])),
            stop: Arc::default(),
        }
    }

    fn spawn(&self, slot: usize) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let config = ConsumerConfig::new(&this.bootstrap)
                .set("group.id", this.strategy)
                .and_then(|c| c.set("partition.assignment.strategy", this.strategy))
                .and_then(|c| c.set("heartbeat.interval.ms", "100"))
                .and_then(|c| c.set("session.timeout.ms", "6000"))
                .and_then(|c| c.set("fetch.max.wait.ms", "50"))
                .expect("valid");
            let mut consumer = Consumer::new(config).await.expect("consumer");
            let recorder = Recorder {
                slot,
                events: Arc::clone(&this.events),
            };
            consumer
                .subscribe_with(&[this.strategy], Box::new(recorder))
                .expect("subscribe");
            while !this.stop.load(std::sync::atomic::Ordering::Acquire) {
                consumer
                    .poll(Duration::from_millis(50))
                    .await
                    .expect("poll");
                this.assignments.lock().expect("assignments")[slot] = consumer.assignment();
            }
            consumer.close().await;
        })
    }

    /// Waits until the members' assignment sizes are `sizes`.
    async fn settle(&self, sizes: &[usize]) -> Vec<Vec<(String, i32)>> {
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        loop {
            let now = self.assignments.lock().expect("assignments").clone();
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

    fn clear_events(&self) {
        for events in self.events.lock().expect("events").iter_mut() {
            events.clear();
        }
    }

    async fn stop(&self, members: Vec<tokio::task::JoinHandle<()>>) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        for member in members {
            tokio::time::timeout(common::DEADLINE, member)
                .await
                .expect("a member did not finish within the deadline")
                .expect("member");
        }
    }
}

/// Two members split a 6-partition topic 3/3, then a third joins; returns
/// the assignments before and after it settled at 2/2/2, with the events
/// the events each member's listener heard meanwhile.
fn third_member_joins(strategy: &'static str) -> (Vec<Vec<Event>>, [Vec<Partitions>; 2]) {
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
            .create_topic(strategy, 6, 1, &[])
            .await
            .expect("create");
        let group = Members::new(&bootstrap, strategy, 3);
        let mut members = vec![group.spawn(0), group.spawn(1)];
        let before = group.settle(&[3, 3, 0]).await;
        group.clear_events();
        members.push(group.spawn(2));
        let after = group.settle(&[2, 2, 2]).await;
        // What the listeners heard of the rebalance (closing revokes all).
        let events = group.events.lock().expect("events").clone();
        group.stop(members).await;
        for slot in 0..2 {
            assert!(
                after[slot].iter().all(|tp| before[slot].contains(tp)),
                "{strategy}: member {slot} got {:?}, owned {:?}",
                after[slot],
                before[slot]
            );
        }
        (events, [before, after])
    })
}

#[test]
fn the_sticky_assignor_keeps_partitions_with_their_owners() {
    let (events, [before, after]) = third_member_joins("sticky");
    // Eager: everything is revoked, then the new share assigned.
    for slot in 0..2 {
        assert_eq!(
            events[slot].get(..2),
            Some(
                &[
                    Event::Revoked(before[slot].clone()),
                    Event::Assigned(after[slot].clone())
                ][..]
            ),
            "member {slot}"
        );
    }
}

#[test]
fn cooperative_sticky_revokes_only_the_partitions_that_move() {
    let (events, [before, after]) = third_member_joins("cooperative-sticky");
    for slot in 0..2 {
        let moved: Vec<(String, i32)> = before[slot]
            .iter()
            .filter(|tp| !after[slot].contains(tp))
            .cloned()
            .collect();
        assert_eq!(moved.len(), 1, "member {slot}: {before:?} -> {after:?}");
        let events = &events[slot];
        assert!(
            events.contains(&Event::Revoked(moved.clone())),
            "member {slot} revokes just {moved:?}: {events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::Revoked(p) if p.len() > 1)
                    || matches!(e, Event::Lost(_))),
            "member {slot} gave up more than it had to: {events:?}"
        );
    }
    // The newcomer is told of its two partitions as they come.
    let added: Vec<(String, i32)> = events[2]
        .iter()
        .cloned()
        .flat_map(|e| match e {
            Event::Assigned(p) => p,
            _ => Vec::new(),
        })
        .collect();
    let mut want = after[2].clone();
    want.sort();
    let mut got = added;
    got.sort();
    assert_eq!(got, want);
}
