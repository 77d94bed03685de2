//! The client subcommands of the `runnel` binary against a real broker,
//! read back with kcat.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::Broker;

fn runnel(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runnel");
    // A run that fails on its arguments may exit before reading stdin:
    // the broken pipe is not the test's concern, the exit status is.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    child.wait_with_output().expect("runnel")
}

#[test]
fn produce_sends_each_line_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    let lines: String = (0..50)
        .map(|i| format!("user{}:event {i}\n", i % 5))
        .collect();
    let output = runnel(
        &[
            "produce",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "events",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--producer-property",
            "linger.ms=10",
        ],
        &lines,
    );
    assert!(output.status.success(), "{output:?}");
    let read = common::kcat()
        .args([
            "-b",
            &broker.bootstrap,
            "-C",
            "-t",
            "events",
            "-o",
            "beginning",
            "-e",
        ])
        .args(["-f", "%k:%s\\n"])
        .output()
        .expect("kcat");
    assert!(read.status.success(), "{read:?}");
    assert_eq!(String::from_utf8_lossy(&read.stdout), lines);
}

#[test]
fn produce_says_what_is_wrong_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["--producer-property", "acks=2"],
            "a\n",
            "invalid setting acks=\"2\": must be all, -1, 0 or 1",
        ),
        (
            &["--property", "parse.key=true"],
            "no-tab-here\n",
            "line 1 has no key separator \"\\t\": \"no-tab-here\"",
        ),
        (
            &["--producer-property", "max.request.size=10"],
            "far more than ten bytes\n",
            "cannot send line 1",
        ),
    ];
    for (extra, stdin, expected) in cases {
        let mut args = vec![
            "produce",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "t",
        ];
        args.extend_from_slice(extra);
        let output = runnel(&args, stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?} succeeded");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
}

#[test]
fn forward_says_what_is_wrong_and_fails() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--topic", "orders", "--to", "orders"],
            "--to orders: the overflow topic must not be one the group reads",
        ),
        (
            &[
                "--topic",
                "orders",
                "--to",
                "o",
                "--consumer-property",
                "group.id=x",
            ],
            "--consumer-property group.id: set by the forwarder",
        ),
        (
            &[
                "--topic",
                "orders",
                "--to",
                "o",
                "--producer-property",
                "transactional.id=x",
            ],
            "--producer-property transactional.id: use --transactional-id",
        ),
        (
            &[
                "--topic",
                "orders",
                "--to",
                "o",
                "--producer-property",
                "acks=2",
            ],
            "invalid setting acks=\"2\": must be all, -1, 0 or 1",
        ),
    ];
    for (extra, expected) in cases {
        let mut args = vec![
            "forward",
            "--bootstrap-server",
            "127.0.0.1:1",
            "--group",
            "g",
        ];
        args.extend_from_slice(extra);
        let output = runnel(&args, "");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?} succeeded");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
}

#[test]
fn consume_prints_records_and_a_group_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let overrides = ["num.partitions=1", "group.initial.rebalance.delay.ms=0"];
    let mut broker = Broker::serve_with(dir.path(), &overrides);
    broker.wait_ready();
    let lines: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    let produced = runnel(
        &[
            "produce",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "printed",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
        &lines,
    );
    assert!(produced.status.success(), "{produced:?}");
    let consume = |extra: &[&str]| {
        let mut args = vec![
            "consume",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "printed",
            "--group",
            "printers",
            "--from-beginning",
        ];
        args.extend_from_slice(extra);
        let output = runnel(&args, "");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = consume(&[
        "--max-messages",
        "12",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=:",
    ]);
    let expected: String = (0..12).map(|i| format!("k{i}:v{i}\n")).collect();
    assert_eq!(first, expected);
    // kafka-consumer-groups' view: 12 committed of 20, lag 8, no members.
    let groups = |args: &[&str]| {
        let mut all = vec!["groups", "--bootstrap-server", &broker.bootstrap];
        all.extend_from_slice(args);
        let output = runnel(&all, "");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(groups(&["--list"]), "printers\n");
    let described = groups(&["--describe", "--group", "printers"]);
    assert!(
        described.starts_with("Consumer group 'printers' is Empty with 0 member(s)."),
        "{described}"
    );
    let row: Vec<&str> = described
        .lines()
        .find(|l| l.starts_with("printers "))
        .expect("a partition row")
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..6],
        ["printers", "printed", "0", "12", "20", "8"],
        "{described}"
    );
    // The group committed what was printed: the rest, then nothing new.
    let rest = consume(&["--max-messages", "8"]);
    let expected: String = (12..20).map(|i| format!("v{i}\n")).collect();
    assert_eq!(rest, expected);
    let nothing = consume(&["--timeout-ms", "1000"]);
    assert_eq!(nothing, "");

    // Reset: a dry run changes nothing; --execute moves the group back.
    let reset = |extra: &[&str]| {
        let mut args = vec![
            "--reset-offsets",
            "--group",
            "printers",
            "--topic",
            "printed",
        ];
        args.extend_from_slice(extra);
        groups(&args)
    };
    let plan = reset(&["--to-offset", "15"]);
    assert!(
        plan.contains("printers             printed                      0             15"),
        "{plan}"
    );
    assert_eq!(
        consume(&["--timeout-ms", "1000"]),
        "",
        "the dry run moved nothing"
    );
    reset(&["--to-offset", "15", "--execute"]);
    let from_15: String = (15..20).map(|i| format!("v{i}\n")).collect();
    assert_eq!(consume(&["--max-messages", "5"]), from_15);
    reset(&["--to-earliest", "--execute"]);
    let all: String = (0..20).map(|i| format!("v{i}\n")).collect();
    assert_eq!(consume(&["--max-messages", "20"]), all);
}

#[test]
fn perf_produce_and_consume_report_what_they_did() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), &["num.partitions=2"]);
    broker.wait_ready();
    let produced = runnel(
        &[
            "perf",
            "produce",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "perf",
            "--num-records",
            "5000",
            "--record-size",
            "100",
            "--producer-property",
            "acks=1",
        ],
        "",
    );
    assert!(produced.status.success(), "{produced:?}");
    let report = String::from_utf8_lossy(&produced.stdout);
    assert!(report.starts_with("5000 records sent, "), "{report}");
    assert!(report.contains("ms 99.9th."), "{report}");
    let consumed = runnel(
        &[
            "perf",
            "consume",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "perf",
            "--num-records",
            "5000",
        ],
        "",
    );
    assert!(consumed.status.success(), "{consumed:?}");
    let report = String::from_utf8_lossy(&consumed.stdout);
    assert!(report.starts_with("5000 records read in "), "{report}");
    // In transactions of 1,000: 5 committed transactions, every record
    // readable by a read_committed consumer.
    let transactional = runnel(
        &[
            "perf",
            "produce",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "perf-txn",
            "--num-records",
            "5000",
            "--record-size",
            "100",
            "--transaction-size",
            "1000",
        ],
        "",
    );
    assert!(transactional.status.success(), "{transactional:?}");
    let committed = runnel(
        &[
            "perf",
            "consume",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "perf-txn",
            "--num-records",
            "5000",
            "--consumer-property",
            "isolation.level=read_committed",
        ],
        "",
    );
    assert!(committed.status.success(), "{committed:?}");
    let report = String::from_utf8_lossy(&committed.stdout);
    assert!(report.starts_with("5000 records read in "), "{report}");
}

#[test]
fn topics_creates_describes_grows_lists_and_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    let topics = |args: &[&str]| {
        let mut all = vec!["topics", "--bootstrap-server", &broker.bootstrap];
        all.extend_from_slice(args);
        runnel(&all, "")
    };
    let ok = |output: Output| {
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let created = ok(topics(&[
        "--create",
        "--topic",
        "orders",
        "--partitions",
        "3",
        "--config",
        "retention.ms=60000",
    ]));
    assert_eq!(created, "Created topic orders.\n");
    let described = ok(topics(&["--describe", "--topic", "orders"]));
    assert!(
        described.starts_with(
            "Topic: orders\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=60000\n"
        ),
        "{described}"
    );
    assert!(
        described.contains("\tTopic: orders\tPartition: 2\tLeader: 1\t"),
        "{described}"
    );
    ok(topics(&[
        "--alter",
        "--topic",
        "orders",
        "--partitions",
        "5",
        "--config",
        "cleanup.policy=compact",
    ]));
    let described = ok(topics(&["--describe", "--topic", "orders"]));
    assert!(described.contains("PartitionCount: 5"), "{described}");
    assert!(described.contains("cleanup.policy=compact"), "{described}");
    ok(topics(&["--create", "--topic", "audit"]));
    assert_eq!(ok(topics(&["--list"])), "audit\norders\n");

    let shrink = topics(&["--alter", "--topic", "orders", "--partitions", "2"]);
    assert!(!shrink.status.success());
    let stderr = String::from_utf8_lossy(&shrink.stderr);
    assert!(
        stderr.contains("cannot grow topic orders to 2 partitions"),
        "{stderr}"
    );
    assert!(
        stderr.contains("INVALID_PARTITIONS") || stderr.contains("InvalidPartitions"),
        "{stderr}"
    );
    let again = topics(&["--create", "--topic", "orders"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("TopicAlreadyExists"),
        "{again:?}"
    );

    ok(topics(&["--delete", "--topic", "audit"]));
    assert_eq!(ok(topics(&["--list"])), "orders\n");
    let missing = topics(&["--describe", "--topic", "audit"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("topic audit does not exist"));
}

#[test]
fn topics_makes_delay_levels_and_produce_sends_through_the_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), &["num.partitions=2"]);
    broker.wait_ready();
    let created = runnel(
        &[
            "topics",
            "--bootstrap-server",
            &broker.bootstrap,
            "--create",
            "--topic",
            "orders",
            "--delay-levels",
            "1s,30m",
        ],
        "",
    );
    assert!(created.status.success(), "{created:?}");
    let printed = String::from_utf8_lossy(&created.stdout);
    assert!(
        printed.contains(
            "Created entry topic orders_delayed (any delay up to 604800000 ms to orders)."
        ) && printed.contains("Created delay level orders_1s (1000 ms to orders).")
            && printed.contains("Created delay level orders_30m (1800000 ms to orders)."),
        "{printed}"
    );
    let bad = runnel(
        &[
            "topics",
            "--bootstrap-server",
            &broker.bootstrap,
            "--create",
            "--topic",
            "other",
            "--delay-levels",
            "1w",
        ],
        "",
    );
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("--delay-levels: \"1w\"") && said.contains("ms, s, m, h or d"),
        "{said}"
    );

    let sent_at = std::time::Instant::now();
    let produced = runnel(
        &[
            "produce",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "orders",
            "--delay",
            "1s",
        ],
        "later\n",
    );
    assert!(produced.status.success(), "{produced:?}");
    // kcat waits for the record on orders (-c 1), with a deadline.
    let read = common::kcat()
        .args(["-b", &broker.bootstrap, "-C", "-t", "orders", "-c", "1"])
        .args(["-X", "isolation.level=read_committed", "-f", "%s %h\\n"])
        .output()
        .expect("kcat");
    assert!(read.status.success(), "{read:?}");
    let line = String::from_utf8_lossy(&read.stdout);
    assert!(
        line.starts_with("later ") && line.contains("runnel-delivery-source=orders_delayed-"),
        "{line}"
    );
    assert!(
        sent_at.elapsed() >= std::time::Duration::from_millis(900),
        "delivered after {:?}, before its delay",
        sent_at.elapsed()
    );
    let bad_time = runnel(
        &[
            "produce",
            "--bootstrap-server",
            &broker.bootstrap,
            "--topic",
            "orders",
            "--deliver-at",
            "noon",
        ],
        "never\n",
    );
    assert!(!bad_time.status.success());
    let said = String::from_utf8_lossy(&bad_time.stderr);
    assert!(
        said.contains("--deliver-at \"noon\" is neither epoch ms nor a time"),
        "{said}"
    );
}

/// `runnel storage` does what kafka-storage does, and each reads the
/// other's work: Kafka's StorageTool finds the metadata `runnel storage
/// format` wrote, and `runnel serve` starts on a dir Kafka formatted, with
/// Kafka's cluster id.
#[test]
fn storage_formats_as_kafka_storage_does() {
    use common::kafka;
    kafka::require_installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let properties = |data: &std::path::Path| {
        let path = data.with_extension("properties");
        let text = format!(
            "process.roles=broker\nnode.id=2\ncontroller.quorum.voters=1@127.0.0.1:19093\n\
             controller.listener.names=CONTROLLER\nlisteners=PLAINTEXT://127.0.0.1:0\n\
             log.dirs={}\n",
            data.display()
        );
        std::fs::write(&path, text).expect("write properties");
        path
    };
    let uuid = runnel(&["storage", "random-uuid"], "");
    assert!(uuid.status.success(), "{uuid:?}");
    let id = String::from_utf8_lossy(&uuid.stdout).trim().to_string();
    assert_eq!(id.len(), 22, "{id}");

    let ours = dir.path().join("ours");
    let ours_config = properties(&ours);
    let config = ours_config.to_str().expect("utf-8");
    let bad = runnel(&["storage", "format", "-t", "not-a-uuid", "-c", config], "");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"not-a-uuid\" is not a valid UUID"),
        "{bad:?}"
    );
    let formatted = runnel(&["storage", "format", "-t", &id, "-c", config], "");
    assert!(formatted.status.success(), "{formatted:?}");
    let again = runnel(
        &["storage", "format", "--cluster-id", &id, "--config", config],
        "",
    );
    assert!(!again.status.success(), "formatted twice");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is formatted already"),
        "{again:?}"
    );
    let ignored = runnel(
        &[
            "storage",
            "format",
            "-t",
            &id,
            "-c",
            config,
            "--ignore-formatted",
            "--standalone",
        ],
        "",
    );
    assert!(ignored.status.success(), "{ignored:?}");
    let info = kafka::tool("kafka.tools.StorageTool", &["info", "-c", config])
        .expect_success("kafka-storage info");
    assert!(
        info.stdout.contains(&format!("cluster.id={id}")) && info.stdout.contains("node.id=2"),
        "{}",
        info.stdout
    );

    let theirs = dir.path().join("theirs");
    let theirs_config = properties(&theirs);
    let config = theirs_config.to_str().expect("utf-8");
    kafka::tool(
        "kafka.tools.StorageTool",
        &["format", "-t", &id, "-c", config],
    )
    .expect_success("kafka-storage format");
    // The node id of the formatted dir: another is refused.
    let mut broker = Broker::serve_with(&theirs, &["node.id=2"]);
    broker.wait_ready();
    let stored = std::fs::read_to_string(theirs.join("meta.properties")).expect("meta");
    assert!(stored.contains(&format!("cluster.id={id}")), "{stored}");
    broker.terminate();
    let exit = broker.wait_exit();
    assert!(exit.status.success(), "{}", common::plain(&exit.stderr));
}

/// The value after `label` in `describe --status`'s output.
fn status_field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .map(str::trim)
}

/// `runnel metadata-quorum describe` shows this node leading its quorum of
/// one, after a topic has put records in the metadata log; Kafka's own
/// tool reads the same from our broker.
#[test]
fn metadata_quorum_describes_this_node_as_the_leader() {
    use common::kafka;
    kafka::require_installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(dir.path(), &["node.id=3"]);
    broker.wait_ready();
    let created = runnel(
        &[
            "topics",
            "--bootstrap-server",
            &broker.bootstrap,
            "--create",
            "--topic",
            "orders",
            "--partitions",
            "2",
        ],
        "",
    );
    assert!(created.status.success(), "{created:?}");

    let status = runnel(
        &[
            "metadata-quorum",
            "--bootstrap-server",
            &broker.bootstrap,
            "describe",
            "--status",
        ],
        "",
    );
    assert!(status.status.success(), "{status:?}");
    let text = String::from_utf8_lossy(&status.stdout).to_string();
    let labels: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(':').map_or(l, |(label, _)| label))
        .collect();
    assert_eq!(
        labels,
        [
            "ClusterId",
            "LeaderId",
            "LeaderEpoch",
            "HighWatermark",
            "MaxFollowerLag",
            "MaxFollowerLagTimeMs",
            "CurrentVoters",
            "CurrentObservers",
        ],
        "{text}"
    );
    let cluster_id = status_field(&text, "ClusterId:").expect("cluster id");
    assert_eq!(cluster_id.len(), 22, "{text}");
    assert_eq!(status_field(&text, "LeaderId:"), Some("3"), "{text}");
    assert_eq!(status_field(&text, "LeaderEpoch:"), Some("0"), "{text}");
    let high_watermark: i64 = status_field(&text, "HighWatermark:")
        .and_then(|v| v.parse().ok())
        .expect("high watermark");
    assert!(high_watermark > 0, "{text}");
    assert_eq!(status_field(&text, "MaxFollowerLag:"), Some("0"), "{text}");
    assert_eq!(
        status_field(&text, "MaxFollowerLagTimeMs:"),
        Some("0"),
        "{text}"
    );
    let voters = format!(
        "[{{\"id\": 3, \"endpoints\": [\"PLAINTEXT://{}\"]}}]",
        broker.bootstrap
    );
    assert_eq!(
        status_field(&text, "CurrentVoters:"),
        Some(voters.as_str()),
        "{text}"
    );
    assert_eq!(
        status_field(&text, "CurrentObservers:"),
        Some("[]"),
        "{text}"
    );

    let replication = runnel(
        &[
            "metadata-quorum",
            "--bootstrap-server",
            &broker.bootstrap,
            "describe",
            "--replication",
        ],
        "",
    );
    assert!(replication.status.success(), "{replication:?}");
    let table = String::from_utf8_lossy(&replication.stdout).to_string();
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| {
            let l = l.strip_suffix('\t').unwrap_or(l);
            l.split('\t').map(str::trim).collect()
        })
        .collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert_eq!(
        rows[0],
        [
            "NodeId",
            "DirectoryId",
            "LogEndOffset",
            "Lag",
            "LastFetchTimestamp",
            "LastCaughtUpTimestamp",
            "Status"
        ]
    );
    let high_watermark = high_watermark.to_string();
    assert_eq!(
        rows[1][..4],
        ["3", "AAAAAAAAAAAAAAAAAAAAAA", &high_watermark, "0"]
    );
    assert_eq!(rows[1][6], "Leader", "{table}");

    // Kafka's tool against our broker: the same summary.
    let kafka = kafka::tool(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        &[
            "--bootstrap-server",
            &broker.bootstrap,
            "describe",
            "--status",
        ],
    )
    .expect_success("kafka-metadata-quorum describe --status");
    assert_eq!(
        status_field(&kafka.stdout, "LeaderId:"),
        Some("3"),
        "{kafka:?}"
    );
    assert_eq!(
        status_field(&kafka.stdout, "ClusterId:"),
        Some(cluster_id),
        "{kafka:?}"
    );
    let kafka_lines: Vec<&str> = kafka.stdout.lines().collect();
    assert_eq!(kafka_lines, text.lines().collect::<Vec<_>>(), "{kafka:?}");
    let kafka_table = kafka::tool(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        &[
            "--bootstrap-server",
            &broker.bootstrap,
            "describe",
            "--replication",
        ],
    )
    .expect_success("kafka-metadata-quorum describe --replication");
    // The same table but for the times, which are when each was asked.
    let without_times = |text: &str| -> Vec<String> {
        text.lines()
            .map(|line| {
                let mut cells: Vec<&str> = line.split('\t').collect();
                if cells[0].trim() != "NodeId" {
                    cells[4] = "";
                    cells[5] = "";
                }
                cells.join("\t")
            })
            .collect()
    };
    assert_eq!(
        without_times(&kafka_table.stdout),
        without_times(&table),
        "{kafka_table:?}"
    );
}
