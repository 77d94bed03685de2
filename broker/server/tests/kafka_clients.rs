//! The real `runnel` binary driven by real Kafka clients: kcat, librdkafka
//! through Python's confluent-kafka, and kafka-python (installed by
//! scripts/test.sh). Each Python script under tests/clients/ checks one
//! area and exits non-zero with the reason when a check fails.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Broker;

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run client");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn python(script: &str, args: &[&str]) -> Output {
    run(Command::new("python3")
        .arg(clients_dir().join(script))
        .args(args)
        .current_dir(clients_dir()))
}

/// Answers a group's first join at once instead of waiting for more
/// members, so group tests take seconds.
const QUICK_GROUPS: &[&str] = &["group.initial.rebalance.delay.ms=0"];

#[test]
fn kcat_lists_metadata_produces_and_consumes() {
    let (_dir, broker) = common::started_with(&[]);
    let lines: Vec<String> = (0..50).map(|i| format!("k{}:value {i}", i % 5)).collect();
    let mut produce = common::kcat()
        .args(["-b", &broker.bootstrap, "-P", "-t", "kcat-topic", "-K", ":"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kcat -P");
    {
        use std::io::Write;
        let mut stdin = produce.stdin.take().expect("stdin");
        stdin
            .write_all((lines.join("\n") + "\n").as_bytes())
            .expect("write to kcat");
    }
    let status = produce.wait().expect("kcat -P");
    assert!(status.success(), "kcat -P: {status}");

    let metadata = run(common::kcat().args(["-b", &broker.bootstrap, "-L", "-t", "kcat-topic"]));
    let metadata = String::from_utf8_lossy(&metadata.stdout);
    assert!(
        metadata.contains("topic \"kcat-topic\" with 1 partitions"),
        "{metadata}"
    );
    assert!(metadata.contains("leader 1"), "{metadata}");

    let consumed = run(common::kcat().args([
        "-b",
        &broker.bootstrap,
        "-C",
        "-t",
        "kcat-topic",
        "-o",
        "beginning",
        "-e",
        "-f",
        "%k:%s\\n",
    ]));
    let consumed: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(consumed, lines);
}

#[test]
fn admin_client_creates_grows_and_deletes_topics() {
    let (_dir, broker) = common::started_with(&[]);
    python("admin.py", &[&broker.bootstrap]);
}

#[test]
fn kafka_python_produces_consumes_and_manages_topics() {
    let (_dir, broker) = common::started_with(&[]);
    python("kafka_python.py", &[&broker.bootstrap]);
}

#[test]
fn messages_round_trip_with_every_codec_and_acks() {
    let (_dir, broker) = common::started_with(&[]);
    python("roundtrip.py", &[&broker.bootstrap]);
}

#[test]
fn librdkafkas_idempotent_producer_writes_each_message_once() {
    let (_dir, broker) = common::started_with(&[]);
    python("idempotent.py", &[&broker.bootstrap]);
}

#[test]
fn librdkafka_transactions_commit_abort_and_fence() {
    let (_dir, broker) = common::started_with(&[]);
    python("transactions.py", &[&broker.bootstrap]);
}

#[test]
fn consume_transform_produce_is_exactly_once_across_a_killed_worker() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("eos.py", &[&broker.bootstrap]);
}

#[test]
fn delayed_records_reach_their_target_on_time_exactly_once() {
    let (_dir, broker) = common::started_with(&[]);
    python("delayed.py", &[&broker.bootstrap]);
}

#[test]
fn any_delay_hops_through_the_levels_and_arrives_on_time() {
    let (_dir, broker) = common::started_with(&[]);
    python("delayed_any.py", &[&broker.bootstrap]);
}

#[test]
fn offsets_for_times_seek_reset_and_large_messages() {
    let (_dir, broker) = common::started_with(&[]);
    python("times.py", &[&broker.bootstrap]);
}

#[test]
fn three_consumers_share_six_partitions_with_each_assignor() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("groups.py", &[&broker.bootstrap]);
}

#[test]
fn kafka_python_consumers_in_one_group_split_the_partitions() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("kafka_python_group.py", &[&broker.bootstrap]);
}

#[test]
fn a_killed_group_member_hands_its_partitions_over() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("group_failover.py", &[&broker.bootstrap]);
}

#[test]
fn a_member_that_stops_polling_loses_its_partitions() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("max_poll.py", &[&broker.bootstrap]);
}

#[test]
fn auto_commit_commits_what_a_member_consumed() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("auto_commit.py", &[&broker.bootstrap]);
}

#[test]
fn auto_offset_reset_applies_only_without_a_committed_offset() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("offset_reset.py", &[&broker.bootstrap]);
}

#[test]
fn admin_clients_list_and_describe_groups_and_read_their_offsets_and_lag() {
    let (_dir, broker) = common::started_with(QUICK_GROUPS);
    python("group_admin.py", &[&broker.bootstrap]);
}

#[test]
fn committed_offsets_survive_a_broker_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    python("offsets.py", &[&broker.bootstrap, "commit"]);
    broker.kill();
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    python("offsets.py", &[&broker.bootstrap, "resume"]);
}

#[test]
fn a_broker_killed_and_restarted_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    // The producer runs on while the broker is killed under it: every
    // message it saw acknowledged before that must be there afterwards.
    let mut producer = Command::new("python3")
        .arg(clients_dir().join("restart.py"))
        .args([&broker.bootstrap, "produce", "200000", "restart"])
        .current_dir(clients_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn producer");
    let stdout = producer.stdout.take().expect("stdout");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked_lines = Vec::new();
    while acked_lines.len() < 2000 {
        match lines.recv_timeout(common::DEADLINE) {
            Ok(line) => acked_lines.push(line),
            Err(e) => panic!("producer gave {} acks, then {e}", acked_lines.len()),
        }
    }
    broker.kill();
    producer.kill().expect("kill producer");
    producer.wait().expect("producer exit");
    // Acks the producer printed before it died count too.
    acked_lines.extend(lines.iter());
    let acked = dir.path().join("acked.txt");
    std::fs::write(&acked, acked_lines.join("\n") + "\n").expect("write acked");

    let mut broker = Broker::serve(dir.path());
    let line = broker.wait_ready();
    assert!(
        line.contains("recovered after an unclean shutdown"),
        "{line}"
    );
    python(
        "restart.py",
        &[
            &broker.bootstrap,
            "verify",
            "restart",
            acked.to_str().expect("utf-8 path"),
        ],
    );
}

#[test]
fn topic_configs_are_described_altered_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    let altered = python("configs.py", &[&broker.bootstrap, "alter"]);
    let stdout = String::from_utf8_lossy(&altered.stdout);
    let cluster_id = stdout
        .lines()
        .find_map(|line| line.strip_prefix("cluster "))
        .unwrap_or_else(|| panic!("no cluster id in {stdout}"))
        .to_string();
    broker.terminate();
    let exit = broker.wait_exit();
    assert!(exit.status.success(), "{}: {}", exit.status, exit.stderr);

    let mut broker = Broker::serve(dir.path());
    let line = broker.wait_ready();
    assert!(line.contains("clean start"), "{line}");
    python("configs.py", &[&broker.bootstrap, "verify", &cluster_id]);
}
