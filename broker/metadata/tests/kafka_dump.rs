//! Kafka reads what this crate writes: a metadata log segment and a
//! snapshot file, dumped by Kafka's own `kafka.tools.DumpLogSegments
//! --cluster-metadata-decoder`, print every record and no damage.
//! Skipped, with the reason printed, when Kafka's jars are not installed
//! (`bash scripts/kafka.sh install`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use runnel_metadata::changes::{self, NewTopic};
use runnel_metadata::log_batch::encode_batch;
use runnel_metadata::records::{NoOpRecord, PartitionChangeRecord};
use runnel_metadata::snapshot::{METADATA_LOG_DIR, SnapshotId, write_snapshot};
use runnel_metadata::{BrokerRegistration, MetadataDelta, MetadataImage, MetadataRecord};
use uuid::Uuid;

/// What DumpLogSegments prints for a damaged file or an unreadable record
/// (as broker/server/tests/common/dump_log.rs lists them).
const ERROR_MARKERS: &[&str] = &[
    "isvalid: false",
    "invalid bytes at the end",
    "Non-consecutive offsets",
    "Snapshot is corrupt",
    "Ignoring unknown file",
    "Error at offset",
    "Unknown record type",
    "Exception",
    "corrupt",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kafka_installed() -> bool {
    let pom =
        std::fs::read_to_string(repo_root().join("scripts/kafka/pom.xml")).unwrap_or_default();
    let Some(version) = pom
        .split("<kafka.version>")
        .nth(1)
        .and_then(|rest| rest.split("</kafka.version>").next())
    else {
        return false;
    };
    let cache = std::env::var_os("RUNNEL_TOOLS_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/runnel-test-tools"))
        });
    cache.is_some_and(|c| c.join(format!("kafka-{version}/libs/.complete")).is_file())
}

/// The metadata a small cluster writes: a broker, features, two topics
/// (one deleted), configs, a leader change, producer ids.
fn records() -> Vec<MetadataRecord> {
    let mut image = MetadataImage::empty();
    let mut all = Vec::new();
    let mut step = |image: &mut MetadataImage, records: Vec<MetadataRecord>| {
        let mut delta = MetadataDelta::new(Arc::new(image.clone()));
        for record in &records {
            let offset = delta.apply().offset() + 1;
            delta.replay(offset, 1, record).expect("replays");
        }
        *image = delta.apply();
        all.extend(records);
    };
    step(
        &mut image,
        changes::set_feature_level("metadata.version", 27).expect("ok"),
    );
    let broker = BrokerRegistration {
        id: 1,
        incarnation_id: Uuid::from_u64_pair(7, 7),
        epoch: 1,
        endpoints: vec![],
        supported_features: vec![],
        rack: None,
        fenced: false,
        in_controlled_shutdown: false,
        is_migrating_zk_broker: false,
        log_dirs: vec![],
    };
    step(&mut image, changes::register_broker(&broker));
    for (name, id) in [
        ("orders", Uuid::from_u64_pair(1, 1)),
        ("gone", Uuid::from_u64_pair(2, 2)),
    ] {
        let topic = NewTopic {
            name: name.into(),
            id,
            partitions: 3,
            replication_factor: 1,
            configs: BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
        };
        let records = changes::create_topic(&image, &topic, &[1]).expect("valid");
        step(&mut image, records);
    }
    let change = PartitionChangeRecord {
        partition_id: 1,
        topic_id: Uuid::from_u64_pair(1, 1),
        leader: 1,
        isr: Some(vec![1]),
        ..PartitionChangeRecord::default()
    };
    step(&mut image, vec![change.into()]);
    let records = changes::delete_topic(&image, "gone").expect("exists");
    step(&mut image, records);
    let (records, _) = changes::allocate_producer_ids(&image, 1, 1).expect("ids");
    step(&mut image, records);
    step(&mut image, vec![NoOpRecord::default().into()]);
    all
}

#[test]
fn kafkas_dump_log_segments_reads_our_log_and_snapshot() {
    if !kafka_installed() {
        println!("skipped: Kafka is not installed (run bash scripts/kafka.sh install)");
        return;
    }
    let records = records();
    let dir = tempfile::tempdir().expect("temp dir");
    let log_dir = dir.path().join(METADATA_LOG_DIR);
    std::fs::create_dir(&log_dir).expect("mkdir");

    // The log: batches of up to 4 records, epoch 1.
    let mut segment = Vec::new();
    let mut image = MetadataImage::empty();
    let mut delta = MetadataDelta::new(Arc::new(image.clone()));
    let mut offset = 0;
    for chunk in records.chunks(4) {
        segment.extend(encode_batch(offset, 1, 1_700_000_000_000, chunk).expect("encode"));
        for record in chunk {
            delta.replay(offset, 1, record).expect("replays");
            offset += 1;
        }
    }
    image = delta.apply();
    let log = log_dir.join("00000000000000000000.log");
    std::fs::write(&log, &segment).expect("write log");

    let snapshot = log_dir.join(SnapshotId::of(&image).file_name());
    let bytes = write_snapshot(&image, 1_700_000_000_000, 1_700_000_000_500).expect("snapshot");
    std::fs::write(&snapshot, &bytes).expect("write snapshot");

    let files = format!("{},{}", log.display(), snapshot.display());
    let output = Command::new(repo_root().join("scripts/kafka.sh"))
        .args([
            "run",
            "kafka.tools.DumpLogSegments",
            "--cluster-metadata-decoder",
            "--files",
        ])
        .arg(&files)
        .output()
        .expect("run DumpLogSegments");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for marker in ERROR_MARKERS {
        assert!(
            !stdout.contains(marker),
            "{marker:?} in\n{stdout}\nstderr:\n{stderr}"
        );
    }
    let (log_part, snapshot_part) = stdout
        .split_once(".checkpoint")
        .unwrap_or_else(|| panic!("no snapshot in\n{stdout}"));
    let payloads = |text: &str| text.matches("payload: {\"type\":").count();
    assert_eq!(
        payloads(log_part),
        records.len(),
        "log records in\n{stdout}"
    );
    assert_eq!(
        payloads(snapshot_part),
        image.to_records().len(),
        "snapshot records in\n{stdout}"
    );
    for name in [
        "TopicRecord",
        "PartitionRecord",
        "ConfigRecord",
        "RemoveTopicRecord",
    ] {
        let kafka_name =
            name.trim_end_matches("Record")
                .chars()
                .fold(String::new(), |mut out, c| {
                    if c.is_uppercase() && !out.is_empty() {
                        out.push('_');
                    }
                    out.push(c.to_ascii_uppercase());
                    out
                });
        assert!(
            stdout.contains(&format!("\"{kafka_name}_RECORD\"")),
            "{kafka_name} in\n{stdout}"
        );
    }
    assert!(
        stdout.contains("SnapshotHeader"),
        "snapshot header in\n{stdout}"
    );
    assert!(
        stdout.contains("SnapshotFooter"),
        "snapshot footer in\n{stdout}"
    );
}
