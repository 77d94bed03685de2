//! The Fetch response writer against the `kafka-protocol` crate: for every
//! version it serves, the chunks, with regions replaced by their bytes, are
//! byte for byte the frame `kafka-protocol` encodes for the same response.

mod common;

use bytes::{Bytes, BytesMut};
use common::{TestRegion, XorShift, flatten};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction as KafkaAbortedTransaction, EpochEndOffset, FetchableTopicResponse,
    PartitionData,
};
use kafka_protocol::messages::{ApiKey, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};
use runnel_protocol::fetch_writer::{
    self, AbortedTransaction, Chunk, DivergingEpoch, FetchPartitionData, FetchResponseData,
    FetchTopicData,
};
use runnel_protocol::frame::SIZE_PREFIX_BYTES;
use runnel_protocol::response;

const VERSIONS: std::ops::RangeInclusive<i16> =
    fetch_writer::MIN_VERSION..=fetch_writer::MAX_VERSION;

/// `kafka-protocol` topics carry a `uuid::Uuid`, which this crate does not
/// depend on; decoding a v13 topic from its bytes makes one.
fn kafka_topic(topic_id: [u8; 16]) -> FetchableTopicResponse {
    let mut raw = BytesMut::from(&topic_id[..]);
    raw.extend_from_slice(&[1, 0]); // no partitions, no tags
    FetchableTopicResponse::decode(&mut raw.freeze(), 13).expect("decode topic id")
}

/// The same response as `kafka-protocol` types, records flattened to bytes.
/// Fields the version lacks are set to the defaults `kafka-protocol`
/// insists on; the writer leaves them out.
fn to_kafka(response: &FetchResponseData<TestRegion>, version: i16) -> FetchResponse {
    let topics = response.topics.iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| {
            let records = p
                .records
                .as_ref()
                .map(|chunks| Bytes::from(flatten(chunks)));
            let aborted = p.aborted_transactions.as_ref().map(|txns| {
                txns.iter()
                    .map(|txn| {
                        KafkaAbortedTransaction::default()
                            .with_producer_id(ProducerId(txn.producer_id))
                            .with_first_offset(txn.first_offset)
                    })
                    .collect()
            });
            PartitionData::default()
                .with_partition_index(p.partition_index)
                .with_error_code(p.error_code)
                .with_high_watermark(p.high_watermark)
                .with_last_stable_offset(p.last_stable_offset)
                .with_log_start_offset(p.log_start_offset)
                .with_aborted_transactions(aborted)
                .with_preferred_read_replica(if version >= 11 {
                    p.preferred_read_replica.into()
                } else {
                    (-1).into()
                })
                .with_records(records)
                .with_diverging_epoch(match p.diverging_epoch.filter(|_| version >= 12) {
                    Some(d) => EpochEndOffset::default()
                        .with_epoch(d.epoch)
                        .with_end_offset(d.end_offset),
                    None => EpochEndOffset::default(),
                })
        });
        kafka_topic(t.topic_id)
            .with_topic(TopicName(t.name.clone()))
            .with_partitions(partitions.collect())
    });
    FetchResponse::default()
        .with_throttle_time_ms(response.throttle_time_ms)
        .with_error_code(response.error_code)
        .with_session_id(if version >= 7 { response.session_id } else { 0 })
        .with_responses(topics.collect())
}

fn assert_same_bytes(response: &FetchResponseData<TestRegion>, correlation_id: i32) {
    for version in VERSIONS {
        let expected = response::encode(
            ApiKey::Fetch,
            version,
            correlation_id,
            &to_kafka(response, version),
        )
        .expect("kafka-protocol encodes");
        let chunks =
            fetch_writer::write(version, correlation_id, response.clone()).expect("writer encodes");
        assert_eq!(flatten(&chunks), &expected[..], "Fetch v{version}");
        assert!(
            matches!(chunks.first(), Some(Chunk::Bytes(head)) if head.len() >= 4),
            "v{version}: the first chunk carries the size prefix"
        );
    }
}

fn region(bytes: &'static [u8]) -> Chunk<TestRegion> {
    Chunk::Region(TestRegion(Bytes::from_static(bytes)))
}

fn topic(
    name: &'static str,
    id: u8,
    partitions: Vec<FetchPartitionData<TestRegion>>,
) -> FetchTopicData<TestRegion> {
    FetchTopicData {
        name: StrBytes::from_static_str(name),
        topic_id: [id; 16],
        partitions,
    }
}

fn response(topics: Vec<FetchTopicData<TestRegion>>) -> FetchResponseData<TestRegion> {
    FetchResponseData {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        topics,
    }
}

#[test]
fn no_topics() {
    assert_same_bytes(&response(vec![]), 1);
}

#[test]
fn null_and_empty_records() {
    let mut null = FetchPartitionData::new(0);
    null.records = None;
    let mut empty = FetchPartitionData::new(1);
    empty.records = Some(vec![]);
    let mut empty_region = FetchPartitionData::new(2);
    empty_region.records = Some(vec![region(b"")]);
    assert_same_bytes(
        &response(vec![topic("t", 1, vec![null, empty, empty_region])]),
        2,
    );
}

#[test]
fn several_topics_partitions_and_errors() {
    let mut p0 = FetchPartitionData::new(0);
    p0.high_watermark = 100;
    p0.last_stable_offset = 90;
    p0.log_start_offset = 10;
    p0.records = Some(vec![
        region(b"batch-one"),
        Chunk::Bytes(Bytes::from_static(b"mem")),
        region(b"batch-two"),
    ]);
    let mut p1 = FetchPartitionData::new(1);
    p1.error_code = 1; // OFFSET_OUT_OF_RANGE
    p1.high_watermark = 7;
    p1.records = Some(vec![]);
    let mut p3 = FetchPartitionData::new(3);
    p3.error_code = 3; // UNKNOWN_TOPIC_OR_PARTITION
    let mut other = FetchPartitionData::new(0);
    other.records = Some(vec![region(b"x")]);
    let mut r = response(vec![
        topic("orders", 1, vec![p0, p1, p3]),
        topic("payments", 2, vec![other]),
        topic("empty", 3, vec![]),
    ]);
    r.throttle_time_ms = 250;
    r.error_code = 0;
    r.session_id = 77;
    assert_same_bytes(&r, 0x7fff_ffff);
}

#[test]
fn aborted_transactions_null_empty_and_listed() {
    let mut listed = FetchPartitionData::new(0);
    listed.last_stable_offset = 40;
    listed.aborted_transactions = Some(vec![
        AbortedTransaction {
            producer_id: 1000,
            first_offset: 12,
        },
        AbortedTransaction {
            producer_id: -5,
            first_offset: 0,
        },
    ]);
    listed.records = Some(vec![region(b"txn batch")]);
    let mut empty = FetchPartitionData::new(1);
    empty.aborted_transactions = Some(vec![]);
    let null = FetchPartitionData::new(2);
    assert_same_bytes(
        &response(vec![topic("txn", 9, vec![listed, empty, null])]),
        3,
    );
}

#[test]
fn a_diverging_epoch_is_tagged_field_zero_from_v12() {
    let mut p = FetchPartitionData::new(3);
    p.diverging_epoch = Some(DivergingEpoch {
        epoch: 7,
        end_offset: 1234,
    });
    p.records = None;
    assert_same_bytes(&response(vec![topic("t", 4, vec![p])]), 9);
}

#[test]
fn top_level_error_and_preferred_replica() {
    let mut p = FetchPartitionData::new(0);
    p.preferred_read_replica = 2; // left out before v11
    let mut r = response(vec![topic("t", 4, vec![p])]);
    r.error_code = 70; // FETCH_SESSION_ID_NOT_FOUND, left out before v7
    r.session_id = 12; // left out before v7
    assert_same_bytes(&r, -1);
}

#[test]
fn multi_byte_varints() {
    // Name, records and partition count past 127 need two varint bytes in
    // flexible versions; records past 16383 need three.
    let name: &'static str = Box::leak("n".repeat(200).into_boxed_str());
    let mut rng = XorShift(7);
    let mut partitions = Vec::new();
    for i in 0..130 {
        let mut p = FetchPartitionData::new(i);
        p.records = Some(vec![Chunk::Region(TestRegion(rng.bytes(if i == 0 {
            20_000
        } else {
            150
        })))]);
        partitions.push(p);
    }
    assert_same_bytes(&response(vec![topic(name, 5, partitions)]), 4);
}

#[test]
fn v13_golden_bytes() {
    let mut p = FetchPartitionData::new(0);
    p.high_watermark = 1;
    p.aborted_transactions = Some(vec![AbortedTransaction {
        producer_id: 3,
        first_offset: 0,
    }]);
    p.records = Some(vec![Chunk::Bytes(Bytes::from_static(b"R"))]);
    let mut response = response(vec![topic("ignored from v13", 0xAB, vec![p])]);
    response.session_id = 9;
    let chunks: Vec<Chunk<TestRegion>> = fetch_writer::write(13, 1, response).expect("write");
    let mut expected = vec![0, 0, 0, 90, 0, 0, 0, 1, 0]; // size, id, tags
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 9]); // throttle, error, session
    expected.push(2); // one topic
    expected.extend_from_slice(&[0xAB; 16]);
    expected.push(2); // one partition
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // index, error
    expected.extend_from_slice(&1i64.to_be_bytes());
    expected.extend_from_slice(&(-1i64).to_be_bytes()); // last_stable_offset
    expected.extend_from_slice(&(-1i64).to_be_bytes()); // log_start_offset
    expected.push(2); // one aborted transaction
    expected.extend_from_slice(&3i64.to_be_bytes());
    expected.extend_from_slice(&0i64.to_be_bytes());
    expected.push(0); // its tags
    expected.extend_from_slice(&(-1i32).to_be_bytes()); // preferred_read_replica
    expected.extend_from_slice(&[2, b'R']); // records: length + 1, then bytes
    expected.extend_from_slice(&[0, 0, 0]); // partition, topic, response tags
    assert_eq!(expected.len(), 4 + 90);
    assert_eq!(flatten(&chunks), expected);
}

#[test]
fn chunks_split_around_each_records_field() {
    let region = |b: &'static [u8]| Chunk::Region(TestRegion(Bytes::from_static(b)));
    let mut p0 = FetchPartitionData::new(0);
    p0.records = Some(vec![
        region(b"aa"),
        Chunk::Bytes(Bytes::new()),
        region(b"bbb"),
    ]);
    let mut p1 = FetchPartitionData::new(1);
    p1.records = Some(vec![region(b""), region(b"c")]);
    let mut p2 = FetchPartitionData::new(2);
    p2.records = None;
    let mut response = response(vec![topic("t", 1, vec![p0])]);
    response.topics[0].partitions.extend([p1, p2]);
    for version in [4, 12] {
        let chunks = fetch_writer::write(version, 1, response.clone()).expect("write");
        let kinds: Vec<&str> = chunks
            .iter()
            .map(|c| match c {
                Chunk::Bytes(_) => "bytes",
                Chunk::Region(_) => "region",
            })
            .collect();
        // Zero-length chunks are dropped; bytes between records fields
        // are one chunk; partition 2 has null records, so its fields
        // and the closing tags are the last chunk.
        assert_eq!(
            kinds,
            ["bytes", "region", "region", "bytes", "region", "bytes"],
            "v{version}"
        );
        let flat = flatten(&chunks);
        let size = i32::from_be_bytes(flat[..4].try_into().expect("4 bytes"));
        assert_eq!(size as usize, flat.len() - SIZE_PREFIX_BYTES, "v{version}");
    }
}

#[test]
fn random_responses() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    for round in 0..200 {
        let mut topics = Vec::new();
        for t in 0..rng.below(4) {
            let mut partitions = Vec::new();
            for i in 0..rng.below(5) {
                let mut p = FetchPartitionData::new(i as i32);
                p.error_code = [0, 0, 1, 3, 6][rng.below(5) as usize];
                p.high_watermark = rng.below(1 << 40) as i64;
                p.last_stable_offset = rng.below(1 << 40) as i64 - 1;
                p.log_start_offset = rng.below(1000) as i64 - 1;
                p.preferred_read_replica = rng.below(3) as i32 - 1;
                p.aborted_transactions = match rng.below(3) {
                    0 => None,
                    n => Some(
                        (0..n * rng.below(3))
                            .map(|_| AbortedTransaction {
                                producer_id: rng.next() as i64,
                                first_offset: rng.next() as i64,
                            })
                            .collect(),
                    ),
                };
                p.records = match rng.below(4) {
                    0 => None,
                    n => Some(
                        (0..n)
                            .map(|_| {
                                let len = rng.below(300) as usize;
                                let bytes = rng.bytes(len);
                                if rng.below(2) == 0 {
                                    Chunk::Region(TestRegion(bytes))
                                } else {
                                    Chunk::Bytes(bytes)
                                }
                            })
                            .collect(),
                    ),
                };
                partitions.push(p);
            }
            topics.push(FetchTopicData {
                name: StrBytes::from_string(format!("topic-{round}-{t}")),
                topic_id: rng.bytes(16)[..].try_into().expect("16 bytes"),
                partitions,
            });
        }
        let mut r = response(topics);
        r.throttle_time_ms = rng.below(1000) as i32;
        r.error_code = rng.below(2) as i16;
        r.session_id = rng.next() as i32;
        assert_same_bytes(&r, rng.next() as i32);
    }
}
