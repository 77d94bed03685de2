//! Runnel's log files are Kafka's, checked both ways with Apache Kafka
//! itself (scripts/kafka.sh; the test fails, naming the install command,
//! when Kafka is not installed).
//!
//! - Kafka reads Runnel's files: one Runnel run writes a plain topic that
//!   rolls several segments with index entries, one topic per codec, a
//!   compacted topic the cleaner has rewritten, a transactional topic with a
//!   committed and an aborted transaction, and committed group offsets; the
//!   broker stops cleanly; Kafka's DumpLogSegments reads every `.log`,
//!   `.index`, `.timeindex`, `.txnindex` and `.snapshot` with no error, and
//!   the records it prints are exactly the ones produced. Its offsets and
//!   transaction-log decoders read `__consumer_offsets` and
//!   `__transaction_state`.
//! - Runnel serves Kafka's files: a Kafka broker writes a topic (plain and
//!   compressed batches, keys, headers) and stops; its partition directory
//!   replaces the one of the same topic on a Runnel broker; consumers read
//!   the records, and the batches of a raw Fetch are the bytes of Kafka's
//!   `.log` files.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Broker;
use common::client::Client;
use common::dump_log::{Dump, DumpedBatch, DumpedRecord, Entry, base_offset, data, files_with};
use common::kafka::{self, KafkaBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_client::{Admin, Consumer, ConsumerConfig, Producer, ProducerConfig, ProducerRecord};

/// The codecs of Kafka's batch attributes, by their `compression.type`.
const CODECS: &[&str] = &["gzip", "snappy", "lz4", "zstd"];

/// The partition directories of a log dir, by name.
fn partition_dirs(data: &Path) -> BTreeMap<String, PathBuf> {
    std::fs::read_dir(data)
        .expect("list the log dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .map(|p| {
            (
                p.file_name()
                    .expect("a file name")
                    .to_string_lossy()
                    .into_owned(),
                p,
            )
        })
        .collect()
}

fn total_log_bytes(dir: &Path) -> u64 {
    files_with(dir, &["log"])
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

// ---------------------------------------------------------------------------
// Producing

/// `lines` (`key:value`) produced by kcat to partition 0 of `topic`, with
/// `extra` kcat arguments (headers, codec, batching); kcat waits for every
/// delivery before it exits.
fn kcat_produce(bootstrap: &str, topic: &str, lines: &[String], extra: &[&str]) {
    use std::io::Write;
    let mut child = common::kcat()
        .args(["-b", bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":"])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kcat -P");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all((lines.join("\n") + "\n").as_bytes())
            .expect("write to kcat");
    }
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for kcat") {
            assert!(status.success(), "kcat -P {topic} {extra:?}: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "kcat -P {topic} did not finish within {:?}",
                common::DEADLINE
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn producer_config(bootstrap: &str, settings: &[(&str, &str)]) -> ProducerConfig {
    settings
        .iter()
        .try_fold(ProducerConfig::new(bootstrap), |c, (k, v)| c.set(k, v))
        .expect("valid producer settings")
}

/// Sends `(key, value)` records to partition 0 of `topic` and returns the
/// offset each landed at.
async fn produce(
    producer: &Producer,
    topic: &str,
    records: &[(String, Option<String>)],
) -> Vec<i64> {
    let mut deliveries = Vec::new();
    for (key, value) in records {
        let record = ProducerRecord {
            topic,
            partition: Some(0),
            key: Some(key.as_bytes()),
            value: value.as_ref().map(|v| v.as_bytes()),
            ..ProducerRecord::default()
        };
        deliveries.push(producer.send(record).await.expect("send"));
    }
    let mut offsets = Vec::new();
    for delivery in deliveries {
        let landed = tokio::time::timeout(common::DEADLINE, delivery)
            .await
            .expect("delivered in time")
            .expect("delivered");
        offsets.push(landed.offset);
    }
    offsets
}

fn expected(records: &[(String, Option<String>)], offsets: &[i64]) -> Vec<Entry> {
    records
        .iter()
        .zip(offsets)
        .map(|((k, v), o)| data(*o, Some(k), v.as_deref()))
        .collect()
}

fn kcat_lines_as_records(lines: &[String]) -> Vec<(String, Option<String>)> {
    lines
        .iter()
        .map(|l| {
            let (k, v) = l.split_once(':').expect("key:value");
            (k.to_string(), Some(v.to_string()))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Kafka reads Runnel's files

#[test]
fn kafka_reads_the_files_runnel_writes() {
    kafka::require_installed();
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve_with(
        dir.path(),
        &[
            "log.index.interval.bytes=256",
            "group.initial.rebalance.delay.ms=0",
            "log.segment.delete.delay.ms=0",
        ],
    );
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    let runtime = common::runtime();

    // Compacted: ten keys written 30 times over small segments, one key
    // deleted by a tombstone. Written first, right after the start: the
    // cleaner's first pass comes CLEANER_INTERVAL (15 s) later, so it sees
    // all of it.
    // key-03 is deleted half way and never written again.
    let mut compact_records: Vec<(String, Option<String>)> = Vec::new();
    for round in 0..30 {
        if round == 15 {
            compact_records.push(("key-03".into(), None));
        }
        for k in 0..10 {
            if k == 3 && round >= 15 {
                continue;
            }
            let value = format!("round-{round:02}-{}", "c".repeat(24));
            compact_records.push((format!("key-{k:02}"), Some(value)));
        }
    }
    let tombstone_at = compact_records
        .iter()
        .position(|(_, v)| v.is_none())
        .expect("a tombstone") as i64;
    let (compact_offsets, produced_at) = runtime.block_on(async {
        let admin = Admin::new(&bootstrap, "kafka-files").await.expect("admin");
        let topic_configs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        admin
            .create_topic(
                "compacted",
                1,
                1,
                &topic_configs(&[("cleanup.policy", "compact"), ("segment.bytes", "2048")]),
            )
            .await
            .expect("create compacted");
        admin
            .create_topic("plain", 1, 1, &topic_configs(&[("segment.bytes", "4096")]))
            .await
            .expect("create plain");
        for topic in ["txn"]
            .into_iter()
            .map(String::from)
            .chain(CODECS.iter().map(|c| format!("codec-{c}")))
            .chain(CODECS.iter().map(|c| format!("kcat-{c}")))
        {
            admin
                .create_topic(&topic, 1, 1, &[])
                .await
                .expect("create topic");
        }
        let producer = Producer::new(producer_config(&bootstrap, &[("linger.ms", "0")]))
            .await
            .expect("producer");
        // One batch per record, so that the records span many segments.
        let mut offsets = Vec::new();
        for record in compact_records.chunks(1) {
            offsets.extend(produce(&producer, "compacted", record).await);
        }
        producer.close().await;
        (offsets, Instant::now())
    });
    assert_eq!(
        compact_offsets,
        (0..compact_records.len() as i64).collect::<Vec<i64>>()
    );
    assert!(
        produced_at.duration_since(started) < Duration::from_secs(12),
        "the compacted topic took {:?} to write: the cleaner may have run in the middle",
        produced_at.duration_since(started)
    );
    let compacted_dir = dir.path().join("compacted-0");
    let compacted_bytes_before = total_log_bytes(&compacted_dir);

    // Plain: kcat with headers, in batches of 4 records, over segments of
    // 4 KiB with an index entry every 256 bytes.
    let plain_lines: Vec<String> = (0..400)
        .map(|i| format!("key-{}:value-{i:04}-{}", i % 7, "p".repeat(i % 13)))
        .collect();
    kcat_produce(
        &bootstrap,
        "plain",
        &plain_lines,
        &[
            "-H",
            "trace=runnel",
            "-H",
            "seq=1",
            "-X",
            "batch.num.messages=4",
            "-X",
            "linger.ms=0",
        ],
    );
    // Each codec from librdkafka too (kcat 1.7 / librdkafka 2.0 compresses
    // gzip, snappy and lz4 only for a broker that advertises Produce v0,
    // librdkafka#4956, which Runnel does as Kafka does).
    let kcat_codec_lines = |codec: &str| -> Vec<String> {
        (0..100)
            .map(|i| format!("z-{}:kcat-{codec}-{i:03}-{}", i % 5, "z".repeat(40)))
            .collect()
    };
    for codec in CODECS {
        let topic = format!("kcat-{codec}");
        kcat_produce(&bootstrap, &topic, &kcat_codec_lines(codec), &["-z", codec]);
    }

    let codec_records = |codec: &str| -> Vec<(String, Option<String>)> {
        (0..200)
            .map(|i| {
                (
                    format!("{codec}-key-{}", i % 10),
                    Some(format!("{codec}-value-{i:04}-{}", "abcdefgh".repeat(8))),
                )
            })
            .collect()
    };
    let txn_values: Vec<Vec<String>> = vec![
        (0..10).map(|i| format!("committed-{i:02}")).collect(),
        (0..5).map(|i| format!("aborted-{i:02}")).collect(),
        (10..13).map(|i| format!("committed-{i:02}")).collect(),
    ];
    let (codec_offsets, txn_offsets, group_offset) = runtime.block_on(async {
        let mut codec_offsets = BTreeMap::new();
        for codec in CODECS {
            let producer = Producer::new(producer_config(
                &bootstrap,
                &[("compression.type", codec), ("linger.ms", "5")],
            ))
            .await
            .expect("producer");
            let offsets =
                produce(&producer, &format!("codec-{codec}"), &codec_records(codec)).await;
            producer.close().await;
            codec_offsets.insert(*codec, offsets);
        }

        // Transactional: committed (with group offsets sent in it),
        // aborted, committed.
        let producer = Producer::new(producer_config(
            &bootstrap,
            &[("transactional.id", "files-txn"), ("linger.ms", "2")],
        ))
        .await
        .expect("transactional producer");
        producer.init_transactions().await.expect("init");
        let mut txn_offsets = Vec::new();
        for (i, values) in txn_values.iter().enumerate() {
            producer.begin_transaction().expect("begin");
            let records: Vec<(String, Option<String>)> = values
                .iter()
                .map(|v| ("txn-key".to_string(), Some(v.clone())))
                .collect();
            txn_offsets.push(produce(&producer, "txn", &records).await);
            if i == 0 {
                producer
                    .send_offsets_to_transaction(&[("txn", 0, 10)], "files-txn-group")
                    .await
                    .expect("offsets in the transaction");
            }
            if i == 1 {
                producer.abort_transaction().await.expect("abort");
            } else {
                producer.commit_transaction().await.expect("commit");
            }
        }
        producer.close().await;

        // A consumer group reads the plain topic and commits.
        let config = ConsumerConfig::new(&bootstrap)
            .set("group.id", "files-group")
            .and_then(|c| c.set("auto.offset.reset", "earliest"))
            .and_then(|c| c.set("fetch.max.wait.ms", "100"))
            .expect("valid consumer settings");
        let mut consumer = Consumer::new(config).await.expect("consumer");
        consumer.subscribe(&["plain"]).expect("subscribe");
        let mut read = 0;
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        while read < plain_lines.len() && tokio::time::Instant::now() < deadline {
            read += consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll")
                .len();
        }
        assert_eq!(read, plain_lines.len(), "the group read the plain topic");
        consumer.commit().await.expect("commit");
        let committed = consumer
            .committed("plain", 0)
            .await
            .expect("committed")
            .expect("an offset");
        consumer.close().await;
        (codec_offsets, txn_offsets, committed)
    });
    assert_eq!(group_offset, plain_lines.len() as i64);

    // The cleaner has rewritten the compacted topic's closed segments.
    let deadline = Instant::now() + Duration::from_secs(60);
    while total_log_bytes(&compacted_dir) >= compacted_bytes_before {
        assert!(
            Instant::now() < deadline,
            "the cleaner did not compact {} within 60 s ({} bytes of .log)",
            compacted_dir.display(),
            compacted_bytes_before
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    broker.terminate();
    let exit = broker.wait_exit();
    assert!(exit.status.success(), "{}: {}", exit.status, exit.stderr);
    assert!(
        dir.path().join(".kafka_cleanshutdown").exists(),
        "no clean-shutdown marker"
    );
    let produced_by = started.elapsed();

    // Every file Kafka's tool knows, of every partition, in one run.
    let partitions = partition_dirs(dir.path());
    let every_file: Vec<PathBuf> = partitions
        .values()
        .flat_map(|d| files_with(d, &["log", "index", "timeindex", "txnindex", "snapshot"]))
        .collect();
    let full = Dump::run(
        &[
            "--deep-iteration",
            "--index-sanity-check",
            "--print-data-log",
        ],
        &every_file,
        // Offsets left by compaction are Kafka's own behaviour; the
        // records are compared exactly below.
        &[&format!(
            "Non-consecutive offsets in {}",
            compacted_dir.display()
        )],
    );
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for file in &every_file {
        let kind = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        *kinds.entry(kind).or_default() += 1;
        let lines = full.lines_of(file);
        match kind {
            "index" | "timeindex" => {
                let sane = format!("{} passed sanity check.", file.display());
                let empty = format!("{} is empty.", file.display());
                assert!(
                    lines.len() == 1 && (lines[0] == sane || lines[0] == empty),
                    "{}: {lines:?}",
                    file.display()
                );
            }
            "snapshot" => {
                for line in lines {
                    assert!(
                        line.starts_with("producerId: "),
                        "{}: {line}",
                        file.display()
                    );
                }
            }
            "txnindex" => {
                for line in lines {
                    assert!(line.starts_with("version: "), "{}: {line}", file.display());
                }
            }
            _ => {}
        }
    }
    eprintln!("files dumped, by kind: {kinds:?}");
    for kind in ["log", "index", "timeindex", "txnindex", "snapshot"] {
        assert!(kinds.contains_key(kind), "no .{kind} file was written");
    }

    let mut checked = BTreeMap::new();

    // plain: every record, in order, with its headers; several segments,
    // none of whose offset indexes is empty but the active one's.
    let plain_dir = &partitions["plain-0"];
    let (_, records) = full.log_of(plain_dir, false);
    let want = expected(
        &kcat_lines_as_records(&plain_lines),
        &(0..plain_lines.len() as i64).collect::<Vec<_>>(),
    );
    let got: Vec<Entry> = records.iter().map(DumpedRecord::entry).collect();
    assert_eq!(got, want, "plain-0 as Kafka reads it");
    for record in &records {
        assert_eq!(
            record.header_keys,
            ["trace", "seq"],
            "offset {}",
            record.offset
        );
    }
    checked.insert("plain", records.len());
    let plain_logs = files_with(plain_dir, &["log"]);
    assert!(
        plain_logs.len() >= 3,
        "plain-0 should have rolled: {plain_logs:?}"
    );
    for log in &plain_logs[..plain_logs.len() - 1] {
        let index = log.with_extension("index");
        assert_eq!(
            full.lines_of(&index),
            [format!("{} passed sanity check.", index.display())],
            "a closed segment of 4 KiB with an entry every 256 bytes has index entries"
        );
    }

    // One topic per codec: every batch carries the codec.
    for codec in CODECS {
        let topic = format!("codec-{codec}");
        let (batches, records) = full.log_of(&partitions[&format!("{topic}-0")], false);
        let want = expected(&codec_records(codec), &codec_offsets[codec]);
        let got: Vec<Entry> = records.iter().map(DumpedRecord::entry).collect();
        assert_eq!(got, want, "{topic}-0 as Kafka reads it");
        assert!(
            batches.iter().all(|b| b.get("compresscodec") == *codec),
            "{topic}: {:?}",
            batches
                .iter()
                .map(|b| b.get("compresscodec"))
                .collect::<Vec<_>>()
        );
        checked.insert(codec, records.len());
    }
    for codec in CODECS {
        let topic = format!("kcat-{codec}");
        let lines = kcat_codec_lines(codec);
        let (batches, records) = full.log_of(&partitions[&format!("{topic}-0")], false);
        let want = expected(
            &kcat_lines_as_records(&lines),
            &(0..lines.len() as i64).collect::<Vec<_>>(),
        );
        let got: Vec<Entry> = records.iter().map(DumpedRecord::entry).collect();
        assert_eq!(got, want, "{topic}-0 as Kafka reads it");
        assert!(
            batches.iter().all(|b| b.get("compresscodec") == *codec),
            "{topic}: librdkafka's batches are not all {codec}: {:?}",
            batches
                .iter()
                .map(|b| b.get("compresscodec"))
                .collect::<Vec<_>>()
        );
        checked.insert(
            match *codec {
                "gzip" => "kcat gzip",
                "snappy" => "kcat snappy",
                "lz4" => "kcat lz4",
                _ => "kcat zstd",
            },
            records.len(),
        );
    }

    // compacted: the closed segments keep only each key's latest record
    // (the tombstone included, delete.retention.ms being a day); the active
    // segment is never cleaned.
    let compacted_logs = files_with(&compacted_dir, &["log"]);
    let active_base = base_offset(compacted_logs.last().expect("a segment"));
    let latest: HashMap<&str, i64> = compact_records
        .iter()
        .zip(&compact_offsets)
        .map(|((k, _), o)| (k.as_str(), *o))
        .collect();
    let want: Vec<Entry> = compact_records
        .iter()
        .zip(&compact_offsets)
        .filter(|((k, _), o)| **o >= active_base || latest[k.as_str()] == **o)
        .map(|((k, v), o)| data(*o, Some(k), v.as_deref()))
        .collect();
    assert!(want.len() < compact_records.len());
    let (_, records) = full.log_of(&compacted_dir, true);
    let got: Vec<Entry> = records.iter().map(DumpedRecord::entry).collect();
    assert_eq!(got, want, "compacted-0 as Kafka reads it after cleaning");
    assert!(
        got.contains(&data(tombstone_at, Some("key-03"), None)),
        "the tombstone is kept"
    );
    checked.insert("compacted (kept)", records.len());

    // txn: data, COMMIT, data, ABORT, data, COMMIT; transactional batches
    // of one producer; the aborted range in the .txnindex; the producer in
    // the snapshot.
    let txn_dir = &partitions["txn-0"];
    let mut want = Vec::new();
    let mut next = 0;
    for (values, offsets) in txn_values.iter().zip(&txn_offsets) {
        assert_eq!(
            *offsets,
            (next..next + values.len() as i64).collect::<Vec<_>>()
        );
        for (value, offset) in values.iter().zip(offsets) {
            want.push(data(*offset, Some("txn-key"), Some(value)));
        }
        next += values.len() as i64;
        let kind = if values[0].starts_with("aborted") {
            "ABORT"
        } else {
            "COMMIT"
        };
        want.push(Entry::Marker {
            offset: next,
            kind: kind.into(),
        });
        next += 1;
    }
    let (batches, records) = full.log_of(txn_dir, false);
    let got: Vec<Entry> = records.iter().map(DumpedRecord::entry).collect();
    assert_eq!(got, want, "txn-0 as Kafka reads it");
    let producer_id = batches[0].get("producerId").to_string();
    let epoch = batches[0].get("producerEpoch").to_string();
    assert_ne!(producer_id, "-1");
    for b in &batches {
        assert_eq!(b.get("isTransactional"), "true", "{:?}", b.fields);
        assert_eq!(b.get("producerId"), producer_id);
        assert_eq!(b.get("producerEpoch"), epoch);
    }
    for record in &records {
        let control = record.batch.get("isControl") == "true";
        assert_eq!(control, record.marker.is_some(), "offset {}", record.offset);
    }
    checked.insert("txn (with markers)", records.len());
    let aborted_first = txn_offsets[1][0];
    let abort_marker = txn_offsets[1].last().expect("aborted records") + 1;
    let txn_index_lines: Vec<&String> = files_with(txn_dir, &["txnindex"])
        .iter()
        .flat_map(|f| full.lines_of(f))
        .collect();
    assert_eq!(
        txn_index_lines,
        [&format!(
            "version: 0 producerId: {producer_id} firstOffset: {aborted_first} lastOffset: {abort_marker} lastStableOffset: {}",
            abort_marker + 1
        )],
        "txn-0's aborted transactions"
    );
    let last_data = batches
        .iter()
        .rfind(|b| b.get("isControl") == "false")
        .expect("a data batch");
    let snapshots = files_with(txn_dir, &["snapshot"]);
    let latest_snapshot = snapshots.last().expect("a producer snapshot in txn-0");
    assert_eq!(
        base_offset(latest_snapshot),
        next,
        "snapshot at the log end"
    );
    let snapshot_lines = full.lines_of(latest_snapshot);
    assert_eq!(snapshot_lines.len(), 1, "{snapshot_lines:?}");
    let entry = DumpedBatch::parse(&snapshot_lines[0]);
    assert_eq!(entry.get("producerId"), producer_id);
    assert_eq!(entry.get("producerEpoch"), epoch);
    // No transaction open at the stop.
    assert_eq!(entry.get("currentTxnFirstOffset"), "OptionalLong.empty");
    assert_eq!(entry.get("lastSequence"), last_data.get("lastSequence"));
    assert_eq!(entry.get("lastOffset"), last_data.get("lastOffset"));

    // The entries of every offset and time index, checked by Kafka against
    // the log (mismatches go to stderr, which must stay empty).
    let indexes: Vec<PathBuf> = every_file
        .iter()
        .filter(|f| {
            matches!(
                f.extension().and_then(|e| e.to_str()),
                Some("index" | "timeindex")
            )
        })
        .cloned()
        .collect();
    let entries = Dump::run(&["--deep-iteration", "--print-data-log"], &indexes, &[]);
    let mut index_entries = 0;
    let mut time_entries = 0;
    for file in &indexes {
        for line in entries.lines_of(file) {
            if line.starts_with("offset: ") {
                index_entries += 1;
            } else if line.starts_with("timestamp: ") {
                time_entries += 1;
            } else {
                assert!(line.ends_with("is empty."), "{}: {line}", file.display());
            }
        }
    }
    assert!(index_entries >= 10, "{index_entries} offset index entries");
    assert!(
        time_entries >= plain_logs.len(),
        "{time_entries} time index entries"
    );
    checked.insert("offset index entries", index_entries);
    checked.insert("time index entries", time_entries);

    // __consumer_offsets through Kafka's offsets decoder.
    let with_data = |prefix: &str| -> Vec<PathBuf> {
        partitions
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .flat_map(|(_, d)| files_with(d, &["log"]))
            .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
            .collect()
    };
    let offsets_logs = with_data("__consumer_offsets-");
    let offsets = Dump::run(&["--offsets-decoder"], &offsets_logs, &[]);
    let decoded = &offsets.stdout;
    let commit_key =
        r#"key: {"type":"1","data":{"group":"files-group","topic":"plain","partition":0}}"#;
    let line = decoded
        .lines()
        .find(|l| l.contains(commit_key))
        .unwrap_or_else(|| panic!("no offset commit of files-group in:\n{decoded}"));
    assert!(
        line.contains(&format!(r#""offset":{group_offset},"#)),
        "{line}"
    );
    let txn_commit_key =
        r#"key: {"type":"1","data":{"group":"files-txn-group","topic":"txn","partition":0}}"#;
    let line = decoded
        .lines()
        .find(|l| l.contains(txn_commit_key))
        .unwrap_or_else(|| panic!("no transactional offset commit in:\n{decoded}"));
    assert!(line.contains(r#""offset":10,"#), "{line}");
    let group_line = decoded
        .lines()
        .find(|l| l.contains(r#"key: {"type":"2","data":{"group":"files-group"}}"#))
        .unwrap_or_else(|| panic!("no group metadata of files-group in:\n{decoded}"));
    assert!(
        group_line.contains(r#""protocolType":"consumer""#),
        "{group_line}"
    );
    assert!(group_line.contains(r#""topics":["plain"]"#), "{group_line}");
    assert!(
        decoded.contains("endTxnMarker: COMMIT"),
        "the transactional offset commit's marker:\n{decoded}"
    );
    checked.insert(
        "__consumer_offsets records",
        decoded
            .lines()
            .filter(|l| l.starts_with("| offset: "))
            .count(),
    );

    // __transaction_state through Kafka's transaction-log decoder.
    let txn_logs = with_data("__transaction_state-");
    let states = Dump::run(&["--transaction-log-decoder"], &txn_logs, &[]);
    let decoded = &states.stdout;
    // Kafka's TransactionState ids, as its decoder prints them.
    let state_name = |id: &str| match id {
        "0" => "Empty",
        "1" => "Ongoing",
        "2" => "PrepareCommit",
        "3" => "PrepareAbort",
        "4" => "CompleteCommit",
        "5" => "CompleteAbort",
        other => panic!("files-txn in transaction state {other}"),
    };
    let key = r#"key: {"type":"0","data":{"transactionalId":"files-txn"}}"#;
    let transitions: Vec<&str> = decoded
        .lines()
        .filter(|l| l.contains(key))
        .map(|l| {
            assert!(
                l.contains(&format!(
                    r#""producerId":{producer_id},"producerEpoch":{epoch},"#
                )),
                "{l}"
            );
            l.split(r#""transactionStatus":"#)
                .nth(1)
                .and_then(|s| s.split(',').next())
                .map(state_name)
                .unwrap_or_else(|| panic!("no transactionStatus in {l}"))
        })
        .collect();
    assert_eq!(
        transitions,
        [
            "Empty",
            // AddPartitionsToTxn, then AddOffsetsToTxn: each adds a partition.
            "Ongoing",
            "Ongoing",
            "PrepareCommit",
            "CompleteCommit",
            "Ongoing",
            "PrepareAbort",
            "CompleteAbort",
            "Ongoing",
            "PrepareCommit",
            "CompleteCommit"
        ],
        "files-txn's states in __transaction_state:\n{decoded}"
    );
    checked.insert("__transaction_state records", transitions.len());

    // __cluster_metadata (its segment and the snapshot the clean stop
    // wrote) through Kafka's metadata decoder: every topic made here is a
    // TopicRecord with its PartitionRecords, in Kafka's formats.
    let metadata_dir = &partitions["__cluster_metadata-0"];
    let snapshots = std::fs::read_dir(metadata_dir)
        .expect("list the metadata log's dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "checkpoint"));
    let metadata_files: Vec<PathBuf> = files_with(metadata_dir, &["log"])
        .into_iter()
        .chain(snapshots)
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .collect();
    assert!(
        metadata_files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "checkpoint")),
        "a metadata snapshot in {}: {metadata_files:?}",
        metadata_dir.display()
    );
    let metadata = Dump::run(&["--cluster-metadata-decoder"], &metadata_files, &[]);
    let decoded = &metadata.stdout;
    for topic in ["plain", "txn", "__consumer_offsets", "__transaction_state"] {
        assert!(
            decoded.contains(&format!(
                r#""type":"TOPIC_RECORD","version":0,"data":{{"name":"{topic}","#
            )),
            "no TopicRecord of {topic} in:\n{decoded}"
        );
    }
    assert!(
        decoded.contains(r#""type":"PARTITION_RECORD""#),
        "{decoded}"
    );
    assert!(
        decoded.contains(r#""type":"PRODUCER_IDS_RECORD""#),
        "{decoded}"
    );
    assert!(decoded.contains("SnapshotHeader"), "{decoded}");
    checked.insert(
        "__cluster_metadata records",
        decoded.matches(r#"payload: {"type":"#).count(),
    );

    eprintln!(
        "records checked: {checked:?}; produced in {produced_by:.1?}, all in {:.1?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// Runnel serves Kafka's files

/// The complete batches at the start of `records` (a fetch may end in a
/// partial one) and the offset after the last.
fn whole_batches(records: &[u8]) -> (&[u8], Option<i64>) {
    let mut at = 0;
    let mut next = None;
    while records.len() >= at + 12 {
        let size =
            i32::from_be_bytes(records[at + 8..at + 12].try_into().expect("in bounds")) as usize;
        if records.len() < at + 12 + size {
            break;
        }
        let base = i64::from_be_bytes(records[at..at + 8].try_into().expect("in bounds"));
        let last_delta =
            i32::from_be_bytes(records[at + 23..at + 27].try_into().expect("in bounds"));
        next = Some(base + i64::from(last_delta) + 1);
        at += 12 + size;
    }
    (&records[..at], next)
}

/// Every batch of `topic`-0 from offset 0, fetched raw (Fetch v12).
fn fetch_all_bytes(bootstrap: &str, topic: &str) -> Vec<u8> {
    let mut client = Client::connect(bootstrap);
    let mut out = Vec::new();
    let mut offset = 0;
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "fetching {topic} took too long");
        let mut partition = fetch_request::FetchPartition::default();
        partition.fetch_offset = offset;
        partition.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(StrBytes::from_string(topic.to_string()));
        t.partitions = vec![partition];
        let mut request = FetchRequest::default();
        request.max_bytes = 4 << 20;
        request.max_wait_ms = 0;
        request.session_epoch = -1;
        request.replica_id = BrokerId(-1);
        request.topics = vec![t];
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request);
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch of {topic} at {offset}");
        if offset >= p.high_watermark {
            return out;
        }
        let records: Bytes = p.records.clone().unwrap_or_default();
        let (whole, next) = whole_batches(&records);
        let next = next.unwrap_or_else(|| panic!("no whole batch at {offset}"));
        out.extend_from_slice(whole);
        offset = next;
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

#[test]
fn runnel_serves_the_files_kafka_writes() {
    kafka::require_installed();
    let started = Instant::now();
    let kafka_dir = tempfile::tempdir().expect("tempdir");
    let mut kafka = KafkaBroker::start(kafka_dir.path());
    const TOPIC: &str = "from-kafka";

    // Kafka writes: kcat batches with keys and two headers over segments
    // of 1 MiB (Kafka's least), runnel-client batches in each codec, kcat
    // zstd batches with a header.
    let big_lines: Vec<String> = (0..2600)
        .map(|i| format!("big-{}:big-{i:05}-{}", i % 11, "k".repeat(850 + i % 50)))
        .collect();
    let codec_records = |codec: &str| -> Vec<(String, Option<String>)> {
        (0..40)
            .map(|i| {
                (
                    format!("{codec}-{}", i % 4),
                    Some(format!("{codec}-from-kafka-{i:03}-{}", "xy".repeat(30))),
                )
            })
            .collect()
    };
    let zstd_lines: Vec<String> = (0..60)
        .map(|i| format!("zk-{}:kcat-zstd-{i:03}-{}", i % 3, "q".repeat(30)))
        .collect();
    // (offset, key, value, headers as kcat prints them)
    let mut want: Vec<(i64, String, String, String)> = Vec::new();
    let runtime = common::runtime();
    runtime.block_on(async {
        let admin = Admin::new(&kafka.bootstrap, "kafka-files")
            .await
            .expect("admin");
        admin
            .create_topic(TOPIC, 1, 1, &[("segment.bytes".into(), "1048576".into())])
            .await
            .expect("create the topic on Kafka");
    });
    kcat_produce(
        &kafka.bootstrap,
        TOPIC,
        &big_lines,
        &["-H", "origin=kafka", "-H", "part=big"],
    );
    for (i, line) in big_lines.iter().enumerate() {
        let (k, v) = line.split_once(':').expect("key:value");
        want.push((i as i64, k.into(), v.into(), "origin=kafka,part=big".into()));
    }
    runtime.block_on(async {
        for codec in CODECS {
            let producer = Producer::new(producer_config(
                &kafka.bootstrap,
                &[("compression.type", codec), ("linger.ms", "5")],
            ))
            .await
            .expect("producer");
            let records = codec_records(codec);
            let offsets = produce(&producer, TOPIC, &records).await;
            producer.close().await;
            for ((k, v), o) in records.iter().zip(offsets) {
                want.push((o, k.clone(), v.clone().expect("a value"), String::new()));
            }
        }
    });
    let zstd_from = want.len() as i64;
    kcat_produce(
        &kafka.bootstrap,
        TOPIC,
        &zstd_lines,
        &["-z", "zstd", "-H", "origin=kafka-zstd"],
    );
    for (i, line) in zstd_lines.iter().enumerate() {
        let (k, v) = line.split_once(':').expect("key:value");
        want.push((
            zstd_from + i as i64,
            k.into(),
            v.into(),
            "origin=kafka-zstd".into(),
        ));
    }
    assert_eq!(
        want.iter().map(|w| w.0).collect::<Vec<_>>(),
        (0..want.len() as i64).collect::<Vec<_>>()
    );
    kafka.stop();
    let kafka_partition = kafka.data_dir().join(format!("{TOPIC}-0"));
    let kafka_logs = files_with(&kafka_partition, &["log"]);
    assert!(
        kafka_logs.len() >= 2,
        "Kafka should have rolled {TOPIC}-0: {kafka_logs:?}"
    );
    let kafka_bytes: Vec<u8> = kafka_logs
        .iter()
        .flat_map(|f| std::fs::read(f).expect("read Kafka's segment"))
        .collect();
    // Kafka's batches are what was produced: each codec, kcat's zstd.
    let kafka_dump = Dump::run(&["--deep-iteration", "--print-data-log"], &kafka_logs, &[]);
    let kafka_batches: Vec<DumpedBatch> = kafka_dump
        .stdout
        .lines()
        .filter(|l| l.starts_with("baseOffset: "))
        .map(DumpedBatch::parse)
        .collect();
    // Kafka stamps its leader epoch (0 for a new topic) on every batch,
    // whatever the producer put there (librdkafka 0, Java clients and
    // runnel-client -1).
    for batch in &kafka_batches {
        assert_eq!(batch.get("partitionLeaderEpoch"), "0", "{:?}", batch.fields);
    }
    let codecs: std::collections::BTreeSet<&str> = kafka_batches
        .iter()
        .map(|b| b.get("compresscodec"))
        .collect();
    assert_eq!(
        codecs,
        ["gzip", "lz4", "none", "snappy", "zstd"]
            .into_iter()
            .collect(),
        "the codecs of Kafka's batches"
    );

    // A Runnel broker with the same topic, stopped; its partition directory
    // replaced by Kafka's.
    let runnel_dir = tempfile::tempdir().expect("tempdir");
    let mut runnel = Broker::serve(runnel_dir.path());
    runnel.wait_ready();
    runtime.block_on(async {
        let admin = Admin::new(&runnel.bootstrap, "kafka-files")
            .await
            .expect("admin");
        admin
            .create_topic(TOPIC, 1, 1, &[])
            .await
            .expect("create the topic on Runnel");
    });
    runnel.terminate();
    let exit = runnel.wait_exit();
    assert!(exit.status.success(), "{}: {}", exit.status, exit.stderr);
    let runnel_partition = runnel_dir.path().join(format!("{TOPIC}-0"));
    for entry in std::fs::read_dir(&runnel_partition).expect("Runnel's partition dir") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove Runnel's file");
    }
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(&kafka_partition).expect("Kafka's partition dir") {
        let from = entry.expect("entry").path();
        let name = from.file_name().expect("a file name").to_owned();
        std::fs::copy(&from, runnel_partition.join(&name)).expect("copy Kafka's file");
        copied.push(name.to_string_lossy().into_owned());
    }
    copied.sort();
    eprintln!("copied from Kafka: {copied:?}");

    let mut runnel = Broker::serve(runnel_dir.path());
    let ready = runnel.wait_ready();
    assert!(ready.contains("clean start"), "{ready}");

    // runnel-client reads every record: offsets, keys, values.
    let consumed = runtime.block_on(async {
        let config = ConsumerConfig::new(&runnel.bootstrap)
            .set("auto.offset.reset", "earliest")
            .and_then(|c| c.set("fetch.max.wait.ms", "100"))
            .expect("valid consumer settings");
        let mut consumer = Consumer::new(config).await.expect("consumer");
        consumer.assign(&[(TOPIC, 0)]).await.expect("assign");
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        while out.len() < want.len() && tokio::time::Instant::now() < deadline {
            for r in consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll")
            {
                let text =
                    |b: Option<Bytes>| String::from_utf8(b.expect("set").to_vec()).expect("utf-8");
                out.push((r.offset, text(r.key), text(r.value)));
            }
        }
        out
    });
    let want_records: Vec<(i64, String, String)> = want
        .iter()
        .map(|(o, k, v, _)| (*o, k.clone(), v.clone()))
        .collect();
    assert_eq!(
        consumed.len(),
        want_records.len(),
        "records runnel-client read"
    );
    assert!(
        consumed == want_records,
        "runnel-client read other records than Kafka wrote"
    );

    // kcat (librdkafka) reads them with their headers.
    let kcat = kafka::run(
        common::kcat().args([
            "-b",
            &runnel.bootstrap,
            "-C",
            "-t",
            TOPIC,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o|%k|%h|%s\\n",
        ]),
        common::DEADLINE,
    )
    .expect_success("kcat -C");
    let read: Vec<String> = kcat.stdout.lines().map(str::to_string).collect();
    let want_lines: Vec<String> = want
        .iter()
        .map(|(o, k, v, h)| format!("{o}|{k}|{h}|{v}"))
        .collect();
    assert_eq!(read.len(), want_lines.len(), "records kcat read");
    if let Some(i) = (0..read.len()).find(|&i| read[i] != want_lines[i]) {
        panic!("kcat read {:?}\nKafka wrote {:?}", read[i], want_lines[i]);
    }

    // A raw Fetch returns Kafka's bytes.
    let fetched = fetch_all_bytes(&runnel.bootstrap, TOPIC);
    if let Some(at) = first_difference(&fetched, &kafka_bytes) {
        panic!(
            "the fetched batches ({} bytes) differ from Kafka's .log files ({} bytes) at byte {at}",
            fetched.len(),
            kafka_bytes.len()
        );
    }

    runnel.terminate();
    let exit = runnel.wait_exit();
    assert!(exit.status.success(), "{}: {}", exit.status, exit.stderr);
    // Serving them left Kafka's segments as they were.
    for log in &kafka_logs {
        let ours = runnel_partition.join(log.file_name().expect("a file name"));
        assert!(
            std::fs::read(&ours).expect("segment") == std::fs::read(log).expect("segment"),
            "Runnel changed {}",
            ours.display()
        );
    }
    eprintln!(
        "{} records and {} bytes of Kafka's segments served as written, in {:.1?}",
        want.len(),
        kafka_bytes.len(),
        started.elapsed()
    );
}
