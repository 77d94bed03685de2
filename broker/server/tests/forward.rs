//! `runnel forward` with real clients: a group with two partitions lags by
//! 100,000 records; the forwarder moves them into a 24-partition overflow
//! topic that twelve librdkafka consumers (read_committed) work off, while
//! the forwarder and the broker are killed with SIGKILL in turns. Every
//! record must come out of the overflow exactly once, with its key, value,
//! headers and timestamp, and a key's records in order.
//!
//! `RUNNEL_FORWARD_ROUNDS` (default 10) sets the kills of each kind.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;
use runnel_client::{Admin, Producer, ProducerConfig, ProducerRecord};

const SOURCE: &str = "orders";
const OVERFLOW: &str = "orders.overflow";
const GROUP: &str = "orders-workers";
const SOURCE_PARTITIONS: i32 = 2;
const OVERFLOW_PARTITIONS: i32 = 24;
const RECORDS: usize = 100_000;
const KEYS: usize = 1_000;
const WORKERS: usize = 12;
const ROUND_DEADLINE: Duration = Duration::from_secs(90);
/// The overflow's consumers give up (and write what they saw) after this.
const WORKERS_DEADLINE: Duration = Duration::from_secs(300);

/// Group sessions short enough that a killed forwarder's partitions move
/// on in seconds.
const BROKER_SETTINGS: &[&str] = &[
    "group.initial.rebalance.delay.ms=0",
    "group.min.session.timeout.ms=1000",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000",
];

/// The scenarios below each run twelve consumers, forwarders and brokers:
/// one at a time, so that two of them do not starve each other on a small
/// machine (their deadlines are for one).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A `runnel forward` process; its stderr goes to a file shown when the
/// test fails.
struct Forwarder {
    child: Child,
    log: PathBuf,
}

impl Forwarder {
    fn start(bootstrap: &str, log: &Path, id: &str) -> Self {
        Self::start_with_session(bootstrap, log, id, 2_000)
    }

    /// With `session.timeout.ms` (Kafka's lowest is 6000 by default; the
    /// Runnel brokers here allow 1000).
    fn start_with_session(bootstrap: &str, log: &Path, id: &str, session_ms: u32) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("forwarder log");
        let child = Command::new(env!("CARGO_BIN_EXE_runnel"))
            .args(["forward", "--bootstrap-server", bootstrap])
            .args(["--group", GROUP, "--topic", SOURCE, "--to", OVERFLOW])
            .args(["--transactional-id", id])
            // Small fetches: many transactions, so kills land inside the move.
            .args(["--consumer-property", "max.partition.fetch.bytes=4096"])
            .args([
                "--consumer-property".to_string(),
                format!("session.timeout.ms={session_ms}"),
            ])
            .args(["--consumer-property", "heartbeat.interval.ms=300"])
            .env(
                "RUST_LOG",
                std::env::var("RUNNEL_FORWARD_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn runnel forward");
        Self {
            child,
            log: log.to_path_buf(),
        }
    }

    fn kill(&mut self) {
        self.child.kill().expect("kill -9 the forwarder");
        self.child.wait().expect("wait for the forwarder");
    }

    /// SIGTERM: the forwarder finishes its transaction, leaves the group
    /// and exits 0.
    fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + common::DEADLINE;
        loop {
            if let Some(exit) = self.child.try_wait().expect("forwarder status") {
                assert!(exit.success(), "the forwarder exited with {exit}");
                return;
            }
            assert!(Instant::now() < deadline, "the forwarder ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal}");
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("forwarder status")
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- forwarder's stderr (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A child process killed when the test ends, passed or failed.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The overflow's twelve librdkafka consumers (overflow_workers.py),
/// until they saw `records` forwarded records; what they processed goes to
/// `out`, their stderr to `log`.
fn spawn_workers(bootstrap: &str, out: &Path, log: &Path, records: usize) -> KillOnDrop {
    KillOnDrop(
        Command::new("python3")
            .arg(clients_dir().join("overflow_workers.py"))
            .args([bootstrap, OVERFLOW, "overflow-workers"])
            .args([WORKERS.to_string(), records.to_string()])
            .arg(out)
            .arg(WORKERS_DEADLINE.as_secs().to_string())
            .current_dir(clients_dir())
            .stdout(Stdio::null())
            // A file, not a pipe: librdkafka logs every lost connection,
            // and a full pipe would stop the script.
            .stderr(std::fs::File::create(log).expect("consumers' log"))
            .spawn()
            .expect("spawn the overflow consumers"),
    )
}

/// The consumers' exit status and the last lines of their stderr.
fn wait_for_workers(workers: &mut KillOnDrop, log: &Path) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + WORKERS_DEADLINE + common::DEADLINE;
    let status = loop {
        if let Some(status) = workers.0.try_wait().expect("consumers' status") {
            break status;
        }
        assert!(Instant::now() < deadline, "overflow_workers.py hangs");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
    (
        status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
    )
}

/// Record `i` of the backlog: key, value and header `h`.
fn backlog_record(i: usize) -> (String, String, String) {
    let key = format!("k{}", i % KEYS);
    let value = format!("{key}:{}", i / KEYS);
    (key, value, i.to_string())
}

/// The backlog's first timestamp; record `i` is stamped `base + i` (an
/// hour ago: recent enough for retention.ms).
fn backlog_base_timestamp() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    now - 3_600_000
}

async fn produce_backlog(bootstrap: &str, base: i64, records: usize, replicas: i16) {
    let admin = Admin::new(bootstrap, "forward-test").await.expect("admin");
    admin
        .create_topic(SOURCE, SOURCE_PARTITIONS, replicas, &[])
        .await
        .expect("create the source topic");
    admin
        .create_topic(OVERFLOW, OVERFLOW_PARTITIONS, replicas, &[])
        .await
        .expect("create the overflow topic");
    let config = ProducerConfig::new(bootstrap)
        .set("acks", "all")
        .and_then(|c| c.set("linger.ms", "5"))
        .expect("producer config");
    let producer = Producer::new(config).await.expect("producer");
    for i in 0..records {
        let (key, value, h) = backlog_record(i);
        let headers = [("h", h.as_bytes())];
        let record = ProducerRecord {
            timestamp: Some(base + i as i64),
            ..ProducerRecord::new(SOURCE, value.as_bytes())
                .key(key.as_bytes())
                .headers(&headers)
        };
        // Awaited only at the flush: deliveries of a keyed, idempotent
        // producer land in order.
        drop(producer.send(record).await.expect("send"));
    }
    producer.flush().await;
    producer.close().await;
}

/// The group's committed offsets summed over the source's partitions, or
/// `None` while the broker does not answer.
fn committed_total(runtime: &tokio::runtime::Runtime, bootstrap: &str) -> Option<i64> {
    runtime.block_on(async {
        let admin = Admin::new(bootstrap, "forward-test").await.ok()?;
        let offsets = tokio::time::timeout(Duration::from_secs(5), admin.group_offsets(GROUP))
            .await
            .ok()?
            .ok()?;
        Some(
            offsets
                .iter()
                .filter(|(topic, _, _)| topic == SOURCE)
                .map(|(_, _, offset)| *offset)
                .sum(),
        )
    })
}

fn wait_for_committed(runtime: &tokio::runtime::Runtime, bootstrap: &str, at_least: i64) {
    let deadline = Instant::now() + ROUND_DEADLINE;
    loop {
        if committed_total(runtime, bootstrap).is_some_and(|total| total >= at_least) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group's committed offsets did not reach {at_least} within {ROUND_DEADLINE:?} \
             (now {:?})",
            committed_total(runtime, bootstrap)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The overflow as read_committed kcat reads it, in the consumers' line
/// format.
fn kcat_dump(bootstrap: &str) -> String {
    let output = common::kcat()
        .args(["-b", bootstrap, "-C", "-t", OVERFLOW, "-e", "-q"])
        .args(["-X", "isolation.level=read_committed"])
        .args(["-f", "%p %o %k %s %T %h\\n"])
        .output()
        .expect("run kcat");
    assert!(output.status.success(), "kcat: {}", output.status);
    let mut lines = String::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some((fields, headers)) = line.rsplit_once(' ') else {
            continue;
        };
        let header = |name: &str| {
            headers
                .split(',')
                .find_map(|h| h.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("-")
                .to_string()
        };
        lines += &format!(
            "{fields} {} {} {} {}\n",
            header("h"),
            header("runnel.forward.topic"),
            header("runnel.forward.partition"),
            header("runnel.forward.offset")
        );
    }
    lines
}

/// Each overflow partition's last stable offset and high watermark.
async fn overflow_ends(bootstrap: &str) -> Vec<(i64, i64)> {
    let cluster = runnel_client::cluster::Cluster::connect(bootstrap, "forward-test")
        .await
        .expect("connect");
    let mut ends = Vec::new();
    for partition in 0..OVERFLOW_PARTITIONS {
        let end = |isolation| cluster.list_offset(OVERFLOW, partition, -1, isolation);
        ends.push((end(1).await.unwrap_or(-1), end(0).await.unwrap_or(-1)));
    }
    ends
}

/// Waits until the group has `members` members (a paused forwarder's
/// session timed out and the other one took its partitions).
fn wait_for_members(runtime: &tokio::runtime::Runtime, bootstrap: &str, members: usize) {
    let deadline = Instant::now() + ROUND_DEADLINE;
    loop {
        let now = runtime.block_on(async {
            let admin = Admin::new(bootstrap, "forward-test").await.ok()?;
            let group = admin.describe_group(GROUP).await.ok()?;
            (group.state == "Stable").then_some(group.members.len())
        });
        if now == Some(members) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the group did not settle with {members} members (now {now:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the overflow's consumers processed, checked: counts of records
/// lost, forwarded twice, changed, and out of order within a key.
#[derive(Debug, Default, PartialEq, Eq)]
struct Verdict {
    lost: usize,
    duplicated: usize,
    changed: usize,
    out_of_order: usize,
    keys_split: usize,
}

fn check(lines: &str, base: i64, records: usize) -> Verdict {
    let mut verdict = Verdict::default();
    // Processed twice at the same overflow offset is the consumers'
    // at-least-once after a rebalance, not a forwarding duplicate.
    let mut by_position: BTreeMap<(i32, i64), Vec<&str>> = BTreeMap::new();
    for line in lines.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 9, "a line of 9 fields: {line}");
        let position = (
            fields[0].parse().expect("partition"),
            fields[1].parse().expect("offset"),
        );
        let seen = by_position
            .entry(position)
            .or_insert_with(|| fields.clone());
        assert_eq!(*seen, fields, "one overflow offset, two records");
    }
    let mut origins: HashMap<i64, (i32, i64)> = HashMap::new();
    let mut key_partition: HashMap<&str, i32> = HashMap::new();
    let mut last_seq: HashMap<&str, i64> = HashMap::new();
    for (&(partition, offset), fields) in &by_position {
        let i: usize = fields[5].parse().expect("header h");
        let (key, value, _) = backlog_record(i);
        if fields[2] != key
            || fields[3] != value
            || fields[4] != (base + i as i64).to_string()
            || fields[6] != SOURCE
        {
            verdict.changed += 1;
        }
        let origin_offset: i64 = fields[8].parse().expect("origin offset");
        let origin =
            i64::from(fields[7].parse::<i32>().expect("origin partition")) << 40 | origin_offset;
        if origins.insert(origin, (partition, offset)).is_some() {
            verdict.duplicated += 1;
        }
        if *key_partition.entry(fields[2]).or_insert(partition) != partition {
            verdict.keys_split += 1;
        }
        let seq = (i / KEYS) as i64;
        let last = last_seq.entry(fields[2]).or_insert(-1);
        if seq <= *last {
            verdict.out_of_order += 1;
        }
        *last = seq;
    }
    verdict.lost = records.saturating_sub(origins.len());
    verdict
}

#[test]
fn a_lagging_backlog_is_forwarded_exactly_once_through_kills_of_forwarder_and_broker() {
    let _one = one_at_a_time();
    let rounds: usize = std::env::var("RUNNEL_FORWARD_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut broker = Broker::serve_with(&data, BROKER_SETTINGS);
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    let metrics = broker.metrics.clone();
    let listeners = format!("listeners=PLAINTEXT://{bootstrap}");
    let metrics_listen = format!("metrics.listen={metrics}");
    let restart_settings: Vec<&str> = BROKER_SETTINGS
        .iter()
        .copied()
        .chain([listeners.as_str(), metrics_listen.as_str()])
        .collect();
    let runtime = common::runtime();
    let base = backlog_base_timestamp();
    runtime.block_on(produce_backlog(&bootstrap, base, RECORDS, 1));

    let out = dir.path().join("processed.txt");
    let workers_log = dir.path().join("workers.log");
    let mut workers = spawn_workers(&bootstrap, &out, &workers_log, RECORDS);

    // Two forwarders share the group's partitions: a kill or a pause of
    // one moves its partitions to the other (a rebalance), and a paused
    // one that wakes up is a zombie whose offsets must be refused.
    let ids = ["forward-a", "forward-b"];
    let logs = ids.map(|id| dir.path().join(format!("{id}.log")));
    let mut forwarders: Vec<Forwarder> = ids
        .iter()
        .zip(&logs)
        .map(|(id, log)| Forwarder::start(&bootstrap, log, id))
        .collect();
    let started = Instant::now();
    // Per five faults: two kills of a forwarder, two of the broker, one
    // pause of a forwarder past its session timeout.
    let faults = rounds * 5 / 2;
    let step = (RECORDS / (faults + 2)) as i64;
    let (mut forwarder_kills, mut broker_kills, mut pauses) = (0, 0, 0);
    for fault in 0..faults {
        wait_for_committed(&runtime, &bootstrap, step * (fault as i64 + 1));
        for forwarder in &mut forwarders {
            if let Some(exit) = forwarder.exited() {
                panic!("a forwarder exited by itself: {exit}");
            }
        }
        let which = fault / 5 % 2;
        match fault % 5 {
            0 | 2 => {
                let victim = (which + fault / 2) % 2;
                forwarders[victim].kill();
                forwarder_kills += 1;
                forwarders[victim] = Forwarder::start(&bootstrap, &logs[victim], ids[victim]);
            }
            1 | 3 => {
                broker.kill();
                broker_kills += 1;
                broker = Broker::serve_with(&data, &restart_settings);
                broker.wait_ready();
            }
            _ => {
                forwarders[which].signal("-STOP");
                wait_for_members(&runtime, &bootstrap, 1);
                forwarders[which].signal("-CONT");
                pauses += 1;
            }
        }
    }
    wait_for_committed(&runtime, &bootstrap, RECORDS as i64);
    let moved_in = started.elapsed();

    let status = wait_for_workers(&mut workers, &workers_log);
    // What the overflow holds for read_committed readers, by kcat: tells a
    // forwarding fault from a consumers' one.
    let held = check(&kcat_dump(&bootstrap), base, RECORDS);
    assert!(
        status.0.success(),
        "overflow_workers.py: {}\n{}\nthe overflow holds: {held:?}; \
         (last stable offset, high watermark) of its partitions: {:?}",
        status.0,
        status.1,
        runtime.block_on(overflow_ends(&bootstrap))
    );
    for forwarder in forwarders {
        forwarder.terminate();
    }

    let verdict = check(
        &std::fs::read_to_string(&out).expect("processed records"),
        base,
        RECORDS,
    );
    eprintln!(
        "forward: {RECORDS} records from {SOURCE_PARTITIONS} partitions into {OVERFLOW_PARTITIONS} \
         ({WORKERS} librdkafka consumers) by 2 forwarders in {moved_in:.1?} through \
         {forwarder_kills} forwarder and {broker_kills} broker kills (kill -9) and {pauses} \
         forwarder pauses past the session timeout: {verdict:?}"
    );
    assert_eq!(verdict, Verdict::default());
}

/// The same on three nodes (RF=3, `min.insync.replicas=2`): each node in
/// turn is killed with SIGKILL while two forwarders move the backlog (the
/// leaders of the source, overflow, offsets and transaction partitions
/// move), and started again on its data.
#[test]
#[ignore = "flaky liveness: on three nodes a forwarder sometimes stalls for over 90 s, or \
            ignores SIGTERM for 30 s, after node kills (no loss or duplicate seen in any run); \
            run by hand with --ignored until that is found"]
fn a_backlog_is_forwarded_exactly_once_on_three_nodes_while_nodes_are_killed() {
    let _one = one_at_a_time();
    const CLUSTER_RECORDS: usize = 30_000;
    const NODE_KILLS: usize = 6;
    let settings: String = BROKER_SETTINGS
        .iter()
        .chain(&["default.replication.factor=3", "min.insync.replicas=2"])
        .map(|s| format!("{s}\n"))
        .collect();
    let mut cluster = common::cluster::start_cluster_with(&settings);
    // A restarted node listens on a new port: the clients learn it from
    // metadata; the test asks the nodes where they are now.
    let bootstrap_now = |cluster: &common::cluster::Cluster| {
        common::cluster::NODES
            .iter()
            .map(|id| cluster.bootstrap(*id))
            .collect::<Vec<_>>()
            .join(",")
    };
    let bootstrap = bootstrap_now(&cluster);
    let runtime = common::runtime();
    let base = backlog_base_timestamp();
    runtime.block_on(produce_backlog(&bootstrap, base, CLUSTER_RECORDS, 3));

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("processed.txt");
    let workers_log = dir.path().join("workers.log");
    let mut workers = spawn_workers(&bootstrap, &out, &workers_log, CLUSTER_RECORDS);
    let ids = ["forward-a", "forward-b"];
    let logs = ids.map(|id| dir.path().join(format!("{id}.log")));
    let forwarders: Vec<Forwarder> = ids
        .iter()
        .zip(&logs)
        .map(|(id, log)| Forwarder::start(&bootstrap, log, id))
        .collect();
    let started = Instant::now();
    let step = (CLUSTER_RECORDS / (NODE_KILLS + 2)) as i64;
    for kill in 0..NODE_KILLS {
        wait_for_committed(&runtime, &bootstrap_now(&cluster), step * (kill as i64 + 1));
        let node = common::cluster::NODES[kill % 3];
        cluster.nodes.get_mut(&node).expect("node").kill();
        cluster.restart(node);
    }
    wait_for_committed(&runtime, &bootstrap_now(&cluster), CLUSTER_RECORDS as i64);
    let moved_in = started.elapsed();
    let status = wait_for_workers(&mut workers, &workers_log);
    let held = check(&kcat_dump(&bootstrap_now(&cluster)), base, CLUSTER_RECORDS);
    assert!(
        status.0.success(),
        "overflow_workers.py: {}\n{}\nthe overflow holds: {held:?}",
        status.0,
        status.1
    );
    for forwarder in forwarders {
        forwarder.terminate();
    }
    let verdict = check(
        &std::fs::read_to_string(&out).expect("processed records"),
        base,
        CLUSTER_RECORDS,
    );
    eprintln!(
        "forward on three nodes: {CLUSTER_RECORDS} records by 2 forwarders in {moved_in:.1?} \
         through {NODE_KILLS} node kills (kill -9): {verdict:?}"
    );
    assert_eq!(verdict, Verdict::default());
}

/// The oracle: the same forwarder against Apache Kafka moves a backlog
/// exactly once too (no faults: what Kafka's own restart would test is
/// Kafka's).
#[test]
fn kafka_takes_a_forwarded_backlog_exactly_once_too() {
    let _one = one_at_a_time();
    const KAFKA_RECORDS: usize = 20_000;
    common::kafka::require_installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = common::kafka::KafkaBroker::start(dir.path());
    let bootstrap = kafka.bootstrap.clone();
    let runtime = common::runtime();
    let base = backlog_base_timestamp();
    runtime.block_on(produce_backlog(&bootstrap, base, KAFKA_RECORDS, 1));
    let log = dir.path().join("forward.log");
    let forwarder = Forwarder::start_with_session(&bootstrap, &log, "forward-kafka", 6_000);
    wait_for_committed(&runtime, &bootstrap, KAFKA_RECORDS as i64);
    forwarder.terminate();
    let verdict = check(&kcat_dump(&bootstrap), base, KAFKA_RECORDS);
    eprintln!("forward on Kafka {}: {verdict:?}", common::kafka::version());
    assert_eq!(verdict, Verdict::default());
}

#[test]
fn the_checker_counts_what_it_must() {
    const BASE: i64 = 1_780_000_000_000;
    let line = |p: i32, o: i64, i: usize, origin: i64| {
        let (key, value, h) = backlog_record(i);
        format!(
            "{p} {o} {key} {value} {} {h} {SOURCE} 0 {origin}\n",
            BASE + i as i64
        )
    };
    let mut lines = String::new();
    for i in 0..RECORDS {
        lines += &line(
            (i % KEYS) as i32 % OVERFLOW_PARTITIONS,
            i as i64,
            i,
            i as i64,
        );
    }
    assert_eq!(check(&lines, BASE, RECORDS), Verdict::default());
    // Record 7 lost; records 1 and 1,001 (key k1, seq 0 and 1) swapped;
    // record 9 with another timestamp; one more copy of record 5 at a
    // later offset (also out of order: its key's seq 0 after seq 99).
    let mut bad = String::new();
    for i in 0..RECORDS {
        let (p, o) = ((i % KEYS) as i32 % OVERFLOW_PARTITIONS, i as i64);
        match i {
            7 => {}
            1 => bad += &line(p, o, 1_001, 1_001),
            1_001 => bad += &line(p, o, 1, 1),
            9 => bad += &line(p, o, i, i as i64).replace("1780000000009", "1780000000010"),
            _ => bad += &line(p, o, i, i as i64),
        }
    }
    bad += &line(5, RECORDS as i64 + 1, 5, 5);
    assert_eq!(
        check(&bad, BASE, RECORDS),
        Verdict {
            lost: 1,
            duplicated: 1,
            changed: 1,
            out_of_order: 2,
            keys_split: 0,
        }
    );
}
