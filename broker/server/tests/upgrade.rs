//! Upgrade in place: a data dir written by an older `runnel` starts on this
//! one with everything kept. The fixture `tests/fixtures/upgrade-<commit>.tar.gz`
//! is such a data dir, made by `make_upgrade_fixture.sh` with the binary of
//! that commit and stopped cleanly; `upgrade-<commit>.json` beside it lists
//! what it holds (every topic with its id and configs, every record of every
//! partition with its transaction's outcome, committed offsets, groups,
//! idempotent producers' last batches, transactions, the producer-id block).
//! The tests start this binary on a copy and check all of it through the
//! Kafka protocol, so they hold however the broker keeps its state.
//!
//! Nothing depends on the wall clock: records carry explicit timestamps and
//! their topics `retention.ms=-1` (history: 10 years); the broker is started
//! with offsets, producer ids and transactional ids kept for 10 years, since
//! the fixture's commits and producers are months old when the test runs.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::client::Client;
use common::records::{self, ReadCommitted, Record};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_log::BatchBuilder;
use serde_json::Value;

/// The fixture: made by the binary of this commit.
const FIXTURE: &str = "upgrade-96ed4b0";

/// Kept for 10 years: the fixture's offsets, producers and transactional
/// ids were last touched when it was made, which is months before a run.
const KEEP: &[&str] = &[
    "offsets.retention.minutes=5256000",
    "producer.id.expiration.ms=315360000000",
    "transactional.id.expiration.ms=315360000000",
];

const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

/// The fixture unpacked into a temp dir, with its manifest.
struct Fixture {
    dir: tempfile::TempDir,
    manifest: Value,
}

impl Fixture {
    fn unpack() -> Self {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let manifest = std::fs::read_to_string(fixtures.join(format!("{FIXTURE}.json")))
            .expect("read the manifest");
        let manifest: Value = serde_json::from_str(&manifest).expect("a JSON manifest");
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(fixtures.join(format!("{FIXTURE}.tar.gz")))
            .arg("-C")
            .arg(dir.path())
            .status()
            .expect("run tar");
        assert!(status.success(), "unpacking {FIXTURE}.tar.gz: {status}");
        Self { dir, manifest }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// This binary on the fixture, as the same node of the same cluster.
    fn start(&self, settings: &[&str]) -> common::Broker {
        let node = format!("node.id={}", int(&self.manifest["node_id"]));
        let cluster = format!("cluster.id={}", text(&self.manifest["cluster_id"]));
        let mut all = vec![node.as_str(), cluster.as_str()];
        all.extend_from_slice(KEEP);
        all.extend_from_slice(settings);
        let mut broker = common::Broker::serve_with(&self.data_dir(), &all);
        let ready = broker.wait_ready();
        assert!(ready.contains("clean start"), "{ready}");
        broker
    }

    fn partitions(&self) -> &[Value] {
        self.manifest["partitions"].as_array().expect("partitions")
    }

    fn partition(&self, topic: &str, partition: i64) -> &Value {
        self.partitions()
            .iter()
            .find(|p| p["topic"] == topic && int(&p["partition"]) == partition)
            .unwrap_or_else(|| panic!("{topic}-{partition} in the manifest"))
    }

    fn open_transaction(&self) -> &Value {
        &self.manifest["open_transaction"]
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("an integer: {v}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}"))
}

fn array(v: &Value) -> &[Value] {
    v.as_array().unwrap_or_else(|| panic!("an array: {v}"))
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    v.as_str().map(|s| s.as_bytes().to_vec())
}

/// A manifest record as the decoder returns it.
fn expected_record(r: &Value) -> Record {
    Record {
        offset: int(&r["offset"]),
        timestamp: int(&r["timestamp"]),
        key: bytes_of(&r["key"]),
        value: bytes_of(&r["value"]),
        headers: array(&r["headers"])
            .iter()
            .map(|h| (text(&h[0]).to_string(), bytes_of(&h[1])))
            .collect(),
    }
}

/// Whether a read_committed consumer sees the record once every
/// transaction has ended: not if its transaction aborted or never ended.
fn committed_visible(r: &Value) -> bool {
    !matches!(r["txn"].as_str(), Some("aborted" | "open"))
}

/// One partition read from `from` to its end: (records, last stable
/// offset, high watermark, log start offset). A read_committed read stops
/// at the last stable offset and drops aborted transactions' records as a
/// Kafka consumer does.
fn read(
    client: &mut Client,
    topic: &str,
    partition: i32,
    read_committed: bool,
) -> (Vec<Record>, i64, i64, i64) {
    let mut out = Vec::new();
    let mut filter = ReadCommitted::default();
    let mut next = 0;
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let mut p = fetch_request::FetchPartition::default();
        p.partition = partition;
        p.fetch_offset = next;
        p.partition_max_bytes = 1 << 20;
        let mut t = fetch_request::FetchTopic::default();
        t.topic = topic_name(topic);
        t.partitions = vec![p];
        let mut request = FetchRequest::default();
        request.max_bytes = 1 << 20;
        request.isolation_level = i8::from(read_committed);
        request.session_epoch = -1;
        request.topics = vec![t];
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request);
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch {topic}-{partition} at {next}");
        let end = if read_committed {
            data.last_stable_offset
        } else {
            data.high_watermark
        };
        filter.aborted(
            data.aborted_transactions
                .iter()
                .flatten()
                .map(|a| (a.producer_id.0, a.first_offset)),
        );
        for batch in records::decode(data.records.as_deref().unwrap_or_default()) {
            if batch.last_offset < next {
                continue;
            }
            next = batch.last_offset + 1;
            let kept = if read_committed {
                filter.keep(&batch)
            } else if batch.control {
                Vec::new()
            } else {
                batch.records.clone()
            };
            out.extend(kept);
        }
        if next >= end {
            return (
                out,
                data.last_stable_offset,
                data.high_watermark,
                data.log_start_offset,
            );
        }
        assert!(
            Instant::now() < deadline,
            "{topic}-{partition}: stuck at {next} before {end}"
        );
    }
}

/// ListOffsets v7 of one partition at `timestamp` (-1 latest, -2 earliest).
fn list_offset(
    client: &mut Client,
    topic: &str,
    partition: i32,
    timestamp: i64,
    read_committed: bool,
) -> i64 {
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = topic_name(topic);
    t.partitions = vec![p];
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    request.isolation_level = i8::from(read_committed);
    request.topics = vec![t];
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0, "list offsets {topic}-{partition}");
    p.offset
}

/// Every topic: name, id, partition count and internal flag by Metadata
/// v12; the cluster id and this node.
fn check_metadata(client: &mut Client, f: &Fixture) {
    let mut request = MetadataRequest::default();
    request.topics = None; // all
    let response: MetadataResponse = client.call(ApiKey::Metadata, 12, &request);
    assert_eq!(
        response.cluster_id.as_deref(),
        Some(text(&f.manifest["cluster_id"]))
    );
    assert_eq!(
        response
            .brokers
            .iter()
            .map(|b| b.node_id.0)
            .collect::<Vec<_>>(),
        [int(&f.manifest["node_id"]) as i32]
    );
    let listed: BTreeMap<String, &metadata_response::MetadataResponseTopic> = response
        .topics
        .iter()
        .map(|t| (t.name.as_ref().expect("a name").0.to_string(), t))
        .collect();
    let expected = array(&f.manifest["topics"]);
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        expected
            .iter()
            .map(|t| text(&t["name"]))
            .collect::<Vec<_>>(),
        "the same topics"
    );
    for topic in expected {
        let name = text(&topic["name"]);
        let got = listed[name];
        assert_eq!(got.error_code, 0, "{name}");
        assert_eq!(got.topic_id.to_string(), text(&topic["id"]), "{name}'s id");
        assert_eq!(got.is_internal, name.starts_with("__"), "{name} internal");
        let mut indexes: Vec<i64> = got
            .partitions
            .iter()
            .map(|p| i64::from(p.partition_index))
            .collect();
        indexes.sort_unstable();
        assert_eq!(
            indexes,
            (0..int(&topic["partitions"])).collect::<Vec<_>>(),
            "{name}'s partitions"
        );
    }
}

/// Every topic's config overrides by DescribeConfigs v4: the same value,
/// set on the topic (DYNAMIC_TOPIC_CONFIG).
fn check_configs(client: &mut Client, f: &Fixture) {
    for topic in array(&f.manifest["topics"]) {
        let name = text(&topic["name"]);
        let mut resource = describe_configs_request::DescribeConfigsResource::default();
        resource.resource_type = 2;
        resource.resource_name = str_bytes(name);
        resource.configuration_keys = None; // all
        let mut request = DescribeConfigsRequest::default();
        request.resources = vec![resource];
        let response: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, 4, &request);
        let result = &response.results[0];
        assert_eq!(result.error_code, 0, "describe {name}");
        let configs = topic["configs"].as_object().expect("configs");
        for (key, value) in configs {
            let got = result
                .configs
                .iter()
                .find(|c| c.name.as_str() == key)
                .unwrap_or_else(|| panic!("{name}: {key} described"));
            assert_eq!(got.value.as_deref(), value.as_str(), "{name}: {key}");
            assert_eq!(got.config_source, 1, "{name}: {key} is a topic override");
        }
    }
}

/// Every record of every user partition, read_uncommitted; the offsets
/// (log start, high watermark) and the history topic's time index.
fn check_records(client: &mut Client, f: &Fixture) {
    for p in f.partitions() {
        let (topic, partition) = (text(&p["topic"]), int(&p["partition"]) as i32);
        let expected: Vec<Record> = array(&p["records"]).iter().map(expected_record).collect();
        let (got, _, high_watermark, log_start) = read(client, topic, partition, false);
        assert_eq!(got, expected, "{topic}-{partition} read_uncommitted");
        assert_eq!(
            high_watermark,
            int(&p["high_watermark"]),
            "{topic}-{partition}"
        );
        assert_eq!(
            log_start,
            int(&p["log_start_offset"]),
            "{topic}-{partition}"
        );
        assert_eq!(
            list_offset(client, topic, partition, -2, false),
            int(&p["log_start_offset"])
        );
        assert_eq!(
            list_offset(client, topic, partition, -1, false),
            high_watermark
        );
    }
    // history spans several segments: each record's timestamp finds it.
    let history = f.partition("history", 0);
    assert!(int(&history["segments"]) > 2, "several segments");
    for r in array(&history["records"]) {
        assert_eq!(
            list_offset(client, "history", 0, int(&r["timestamp"]), false),
            int(&r["offset"]),
            "offset for time {}",
            r["timestamp"]
        );
    }
}

/// Every user partition read_committed: aborted transactions' records
/// never; with `open_ended` false, the open transaction holds the last
/// stable offset at its first offset, else it ended and hides its records.
/// Records past the manifest's (written by this test) are not compared.
fn check_read_committed(client: &mut Client, f: &Fixture, open_ended: bool) {
    for p in f.partitions() {
        let (topic, partition) = (text(&p["topic"]), int(&p["partition"]) as i32);
        let stable = int(&p["last_stable_offset"]);
        let limit = if open_ended {
            int(&p["high_watermark"])
        } else {
            stable
        };
        let expected: Vec<Record> = array(&p["records"])
            .iter()
            .filter(|r| committed_visible(r) && int(&r["offset"]) < limit)
            .map(expected_record)
            .collect();
        let (got, last_stable, high_watermark, _) = read(client, topic, partition, true);
        let got: Vec<Record> = got
            .into_iter()
            .filter(|r| r.offset < int(&p["high_watermark"]))
            .collect();
        assert_eq!(got, expected, "{topic}-{partition} read_committed");
        if open_ended {
            assert_eq!(
                last_stable, high_watermark,
                "{topic}-{partition}: no open transaction"
            );
        } else {
            assert_eq!(
                last_stable, stable,
                "{topic}-{partition}'s last stable offset"
            );
            assert_eq!(list_offset(client, topic, partition, -1, true), stable);
        }
    }
}

/// OffsetFetch v7 of `group`'s committed offsets: (topic, partition) ->
/// (offset, leader epoch, metadata, error code).
fn fetch_offsets(
    client: &mut Client,
    group: &str,
    only: Option<(&str, i32)>,
    require_stable: bool,
) -> BTreeMap<(String, i32), (i64, i32, String, i16)> {
    let mut request = OffsetFetchRequest::default();
    request.group_id = GroupId(str_bytes(group));
    request.require_stable = require_stable;
    request.topics = only.map(|(topic, partition)| {
        let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
        t.name = topic_name(topic);
        t.partition_indexes = vec![partition];
        vec![t]
    });
    let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 7, &request);
    assert_eq!(response.error_code, 0, "offset fetch {group}");
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    (t.name.0.to_string(), p.partition_index),
                    (
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.metadata.as_deref().unwrap_or_default().to_string(),
                        p.error_code,
                    ),
                )
            })
        })
        .collect()
}

/// Every group's committed offsets with their leader epoch and metadata
/// (byte for byte: librdkafka's end in a NUL), and the groups' states by
/// DescribeGroups v5.
fn check_groups(client: &mut Client, f: &Fixture) {
    for group in array(&f.manifest["groups"]) {
        let id = text(&group["group"]);
        let expected: BTreeMap<(String, i32), (i64, i32, String, i16)> = array(&group["offsets"])
            .iter()
            .map(|o| {
                (
                    (text(&o["topic"]).to_string(), int(&o["partition"]) as i32),
                    (
                        int(&o["offset"]),
                        int(&o["leader_epoch"]) as i32,
                        text(&o["metadata"]).to_string(),
                        0,
                    ),
                )
            })
            .collect();
        assert!(!expected.is_empty(), "{id} has offsets");
        assert_eq!(fetch_offsets(client, id, None, false), expected, "{id}");

        let mut request = DescribeGroupsRequest::default();
        request.groups = vec![GroupId(str_bytes(id))];
        let response: DescribeGroupsResponse = client.call(ApiKey::DescribeGroups, 5, &request);
        let described = &response.groups[0];
        assert_eq!(described.error_code, 0, "describe {id}");
        assert_eq!(
            described.group_state.as_str(),
            text(&group["state"]),
            "{id}"
        );
        assert_eq!(
            described.members.len() as i64,
            int(&group["members"]),
            "{id}"
        );
        let simple = group["simple"].as_bool().expect("simple");
        assert_eq!(
            described.protocol_type.as_str(),
            if simple { "" } else { "consumer" },
            "{id}'s protocol type"
        );
    }
}

fn describe_transaction(
    client: &mut Client,
    id: &str,
) -> describe_transactions_response::TransactionState {
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = vec![TransactionalId(str_bytes(id))];
    let response: DescribeTransactionsResponse =
        client.call(ApiKey::DescribeTransactions, 0, &request);
    let state = response.transaction_states[0].clone();
    assert_eq!(state.error_code, 0, "describe transaction {id}");
    state
}

/// Every transactional id's state, producer id, epoch and timeout. The
/// open one is still Ongoing, with its partitions: today's broker loads an
/// Ongoing transaction as it was (it only finishes the ones a stop left in
/// PrepareCommit / PrepareAbort) and aborts it later, by its timeout or
/// when its transactional id is initialised again.
fn check_transactions(client: &mut Client, f: &Fixture) {
    for txn in array(&f.manifest["transactions"]) {
        let id = text(&txn["transactional_id"]);
        let got = describe_transaction(client, id);
        assert_eq!(got.transaction_state.as_str(), text(&txn["state"]), "{id}");
        assert_eq!(got.producer_id.0, int(&txn["producer_id"]), "{id}");
        assert_eq!(
            i64::from(got.producer_epoch),
            int(&txn["producer_epoch"]),
            "{id}"
        );
        assert_eq!(
            i64::from(got.transaction_timeout_ms),
            int(&txn["timeout_ms"]),
            "{id}"
        );
        let topics: Vec<(String, Vec<i32>)> = got
            .topics
            .iter()
            .map(|t| {
                let mut partitions = t.partitions.clone();
                partitions.sort_unstable();
                (t.topic.0.to_string(), partitions)
            })
            .collect();
        let expected: Vec<(String, Vec<i32>)> = array(&txn["topics"])
            .iter()
            .map(|t| {
                let partitions = array(&t["partitions"]).iter().map(|p| int(p) as i32);
                (text(&t["topic"]).to_string(), partitions.collect())
            })
            .collect();
        assert_eq!(topics, expected, "{id}'s partitions");
    }
    assert_eq!(f.open_transaction()["state"], "Ongoing");
}

/// Produce v9 of one batch to `topic`-`partition`: (error code, base offset).
fn produce(client: &mut Client, topic: &str, partition: i32, batch: Vec<u8>) -> (i16, i64) {
    let mut data = produce_request::PartitionProduceData::default();
    data.index = partition;
    data.records = Some(Bytes::from(batch));
    let mut t = produce_request::TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 5_000;
    request.topic_data = vec![t];
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Each idempotent producer's state in each partition it wrote: the retry
/// of its last batch (same producer id, epoch and sequences) is answered
/// with the first write's offset and not written again; the next sequence
/// is appended; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER.
fn check_idempotent_producers(client: &mut Client, f: &Fixture) {
    // Explicit, after every fixture record: the wall clock plays no part.
    let ts = int(&f.manifest["base_timestamp_ms"]) + 3_600_000;
    let producers = array(&f.manifest["idempotent_producers"]);
    assert!(producers.len() >= 2, "the fixture has idempotent producers");
    for producer in producers {
        let id = int(&producer["producer_id"]);
        let epoch = int(&producer["producer_epoch"]) as i16;
        for last in array(&producer["partitions"]) {
            let (topic, partition) = (text(&last["topic"]), int(&last["partition"]) as i32);
            let where_ = format!("producer {id} on {topic}-{partition}");
            let first_seq = int(&last["base_sequence"]) as i32;
            let last_seq = int(&last["last_sequence"]) as i32;
            let (first, end) = (int(&last["base_offset"]), int(&last["last_offset"]));
            let records = &f.partition(topic, i64::from(partition))["records"];
            let mut retry = BatchBuilder::new(ts).producer(id, epoch, first_seq);
            for r in array(records)
                .iter()
                .filter(|r| (first..=end).contains(&int(&r["offset"])))
            {
                let (key, value) = (bytes_of(&r["key"]), bytes_of(&r["value"]));
                retry.push(key.as_deref(), value.as_deref(), int(&r["timestamp"]));
            }
            assert_eq!(retry.len() as i32, last_seq - first_seq + 1, "{where_}");
            let before = list_offset(client, topic, partition, -1, false);
            assert_eq!(
                produce(client, topic, partition, retry.build()),
                (0, first),
                "{where_}: the retry is a duplicate"
            );
            assert_eq!(
                list_offset(client, topic, partition, -1, false),
                before,
                "{where_}: the retry is not written again"
            );
            let next = BatchBuilder::new(ts)
                .producer(id, epoch, last_seq + 1)
                .record(Some(b"after-upgrade"), Some(b"next"), ts)
                .build();
            assert_eq!(
                produce(client, topic, partition, next),
                (0, before),
                "{where_}: the next sequence"
            );
            let gap = BatchBuilder::new(ts)
                .producer(id, epoch, last_seq + 5)
                .record(Some(b"after-upgrade"), Some(b"gap"), ts)
                .build();
            assert_eq!(
                produce(client, topic, partition, gap).0,
                OUT_OF_ORDER_SEQUENCE_NUMBER,
                "{where_}: a gap"
            );
        }
    }
}

/// InitProducerId: (error code, producer id, epoch).
fn init_producer_id(client: &mut Client, transactional_id: Option<&str>) -> (i16, i64, i16) {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = transactional_id.map(|id| TransactionalId(str_bytes(id)));
    request.transaction_timeout_ms = 60_000;
    request.producer_id = ProducerId(-1);
    request.producer_epoch = -1;
    let response: InitProducerIdResponse = client.call(ApiKey::InitProducerId, 4, &request);
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// A producer id handed out now is past every id the fixture's broker
/// could have handed out: today's broker reserved ids below the block end
/// it wrote to `producer-id-block`, so even one never seen in a log (a
/// producer that never wrote) is below it.
fn check_new_producer_id(client: &mut Client, f: &Fixture) {
    let (error, id, epoch) = init_producer_id(client, None);
    assert_eq!((error, epoch), (0, 0));
    let block_end = int(&f.manifest["producer_id_block_end"]);
    let seen = array(&f.manifest["producer_ids"]).iter().map(int).max();
    assert!(seen.is_some_and(|max| max < block_end));
    assert!(
        id >= block_end,
        "producer id {id} after the upgrade; the fixture's block ended at {block_end}"
    );
}

/// The committed offset of the consume-transform-produce group for the
/// partition the open transaction also committed: with require_stable,
/// UNSTABLE_OFFSET_COMMIT while it is open; the committed one after.
fn ctp_offset(client: &mut Client, f: &Fixture) -> (i64, i16) {
    let group = array(&f.manifest["groups"])
        .iter()
        .find(|g| g["group"] == "ctp-app")
        .expect("ctp-app");
    let committed = &array(&group["offsets"])[0];
    let (topic, partition) = (
        text(&committed["topic"]),
        int(&committed["partition"]) as i32,
    );
    let got = fetch_offsets(client, "ctp-app", Some((topic, partition)), true);
    let (offset, _, _, error) = got[&(topic.to_string(), partition)];
    if error == 0 {
        assert_eq!(
            offset,
            int(&committed["offset"]),
            "the committed transaction's offset"
        );
    }
    (offset, error)
}

/// InitProducerId of the open transaction's id fences it: the broker aborts
/// it (writes the abort markers at a bumped epoch) before it answers, or
/// answers CONCURRENT_TRANSACTIONS until it has.
fn fence_open_transaction(client: &mut Client, f: &Fixture) {
    let open = f.open_transaction();
    let id = text(&open["transactional_id"]);
    let deadline = Instant::now() + common::DEADLINE;
    let (producer_id, epoch) = loop {
        match init_producer_id(client, Some(id)) {
            (0, producer_id, epoch) => break (producer_id, epoch),
            (CONCURRENT_TRANSACTIONS, ..) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => panic!("InitProducerId of {id}: {other:?}"),
        }
    };
    assert_eq!(
        producer_id,
        int(&open["producer_id"]),
        "the same producer id"
    );
    assert!(
        i64::from(epoch) > int(&open["producer_epoch"]),
        "a bumped epoch"
    );
    let state = describe_transaction(client, id);
    assert_ne!(state.transaction_state.as_str(), "Ongoing");
}

/// A new topic is created and written to after the upgrade.
fn check_new_topic(client: &mut Client, f: &Fixture) {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = topic_name("after-upgrade");
    t.num_partitions = 2;
    t.replication_factor = 1;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![t];
    let created: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &request);
    assert_eq!(created.topics[0].error_code, 0, "create after-upgrade");
    let ts = int(&f.manifest["base_timestamp_ms"]) + 3_600_000;
    let batch = BatchBuilder::new(ts)
        .record(Some(b"k"), Some(b"first after the upgrade"), ts)
        .build();
    assert_eq!(produce(client, "after-upgrade", 1, batch), (0, 0));
    let (got, ..) = read(client, "after-upgrade", 1, false);
    assert_eq!(
        got,
        [Record {
            offset: 0,
            timestamp: ts,
            key: Some(b"k".to_vec()),
            value: Some(b"first after the upgrade".to_vec()),
            headers: Vec::new(),
        }]
    );
}

#[test]
fn a_data_dir_of_the_fixture_commit_starts_with_everything_kept() {
    let fixture = Fixture::unpack();
    // The open transaction passed its timeout long ago; an abort pass an
    // hour away keeps it open for the checks, then the test fences it.
    let broker =
        fixture.start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=3600000"]);
    let mut client = Client::connect(&broker.bootstrap);

    check_metadata(&mut client, &fixture);
    check_configs(&mut client, &fixture);
    check_records(&mut client, &fixture);
    check_read_committed(&mut client, &fixture, false);
    check_groups(&mut client, &fixture);
    check_transactions(&mut client, &fixture);
    assert_eq!(
        ctp_offset(&mut client, &fixture).1,
        UNSTABLE_OFFSET_COMMIT,
        "the open transaction's offset commit is pending"
    );
    check_idempotent_producers(&mut client, &fixture);
    check_new_producer_id(&mut client, &fixture);

    fence_open_transaction(&mut client, &fixture);
    check_read_committed(&mut client, &fixture, true);
    assert_eq!(
        ctp_offset(&mut client, &fixture).1,
        0,
        "the aborted commit never applies"
    );
    check_groups(&mut client, &fixture);
    check_new_topic(&mut client, &fixture);
}

#[test]
fn the_fixtures_open_transaction_is_aborted_by_its_timeout() {
    let fixture = Fixture::unpack();
    let broker =
        fixture.start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=100"]);
    let mut client = Client::connect(&broker.bootstrap);
    let open = fixture.open_transaction();
    let id = text(&open["transactional_id"]);
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let state = describe_transaction(&mut client, id);
        if state.transaction_state.as_str() == "CompleteAbort" {
            assert_eq!(state.producer_id.0, int(&open["producer_id"]));
            assert!(
                i64::from(state.producer_epoch) > int(&open["producer_epoch"]),
                "fenced"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{id} is still {} after its timeout",
            state.transaction_state.as_str()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    check_read_committed(&mut client, &fixture, true);
    assert_eq!(
        ctp_offset(&mut client, &fixture).1,
        0,
        "the aborted commit never applies"
    );
}

#[test]
fn a_second_start_after_the_upgrade_comes_from_the_metadata_log() {
    let fixture = Fixture::unpack();
    let dir = fixture.data_dir();
    let mut broker =
        fixture.start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=3600000"]);
    broker.terminate();
    assert!(broker.wait_exit().status.success());
    // The old files were turned into metadata records and set aside; a
    // snapshot of the image sits beside the metadata log.
    assert!(!dir.join("runnel-topics").exists());
    assert!(dir.join("runnel-topics.migrated").exists());
    assert!(!dir.join("producer-id-block").exists());
    let metadata_dir = dir.join("__cluster_metadata-0");
    let snapshots = std::fs::read_dir(&metadata_dir)
        .expect("the metadata log's dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".checkpoint"))
        .count();
    assert_eq!(snapshots, 1, "one snapshot in {}", metadata_dir.display());

    let broker =
        fixture.start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=3600000"]);
    let mut client = Client::connect(&broker.bootstrap);
    check_metadata(&mut client, &fixture);
    check_configs(&mut client, &fixture);
    check_records(&mut client, &fixture);
    check_groups(&mut client, &fixture);
    check_new_producer_id(&mut client, &fixture);
}
