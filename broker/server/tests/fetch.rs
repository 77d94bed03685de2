//! Fetch long-polling: a fetch that finds less than `min.bytes` waits, and
//! an append wakes it with the new data; with no append it answers empty
//! once `max.wait.ms` has passed.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use bytes::Bytes;
use common::client::Client;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_log::BatchBuilder;

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn fetch_request(topic: &str, max_wait_ms: i32) -> FetchRequest {
    let mut partition = fetch_request::FetchPartition::default();
    partition.partition = 0;
    partition.partition_max_bytes = 1 << 20;
    let mut t = fetch_request::FetchTopic::default();
    t.topic = name(topic);
    t.partitions = vec![partition];
    let mut request = FetchRequest::default();
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    request.session_epoch = -1;
    request.topics = vec![t];
    request
}

/// The value of an unlabelled gauge on the metrics port.
fn gauge(metrics: &str, name: &str) -> f64 {
    let mut stream = TcpStream::connect(metrics).expect("metrics port");
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").expect("request");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[test]
fn a_waiting_fetch_is_woken_by_an_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = common::Broker::serve(dir.path());
    broker.wait_ready();
    let mut admin = Client::connect(&broker.bootstrap);
    admin.create_topic("poll");

    let bootstrap = broker.bootstrap.clone();
    let fetcher = std::thread::spawn(move || {
        let mut client = Client::connect(&bootstrap);
        // Far longer than the test: only an append can end this wait early.
        let response: FetchResponse =
            client.call(ApiKey::Fetch, 12, &fetch_request("poll", 600_000));
        response
    });
    // Produce only once the fetch is parked, so the data cannot have been
    // there when it first looked.
    let deadline = Instant::now() + common::DEADLINE;
    while gauge(&broker.metrics, "runnel_fetches_waiting") < 1.0 {
        assert!(Instant::now() < deadline, "the fetch never started waiting");
        std::thread::yield_now();
    }
    let mut partition = produce_request::PartitionProduceData::default();
    partition.records = Some(Bytes::from(
        BatchBuilder::new(1)
            .record(None, Some(b"wake up"), 1)
            .build(),
    ));
    let mut topic = produce_request::TopicProduceData::default();
    topic.name = name("poll");
    topic.partition_data = vec![partition];
    let mut produce = ProduceRequest::default();
    produce.acks = 1;
    produce.timeout_ms = 10_000;
    produce.topic_data = vec![topic];
    let produced: ProduceResponse = admin.call(ApiKey::Produce, 9, &produce);
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    let response = fetcher.join().expect("fetcher thread");
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 1);
    let records = p.records.as_ref().expect("records");
    assert!(
        records.windows(7).any(|w| w == b"wake up"),
        "the appended record came back"
    );
    assert_eq!(gauge(&broker.metrics, "runnel_fetches_waiting"), 0.0);
}

#[test]
fn a_fetch_with_nothing_to_read_answers_empty_after_max_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = common::Broker::serve(dir.path());
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    client.create_topic("idle");
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch_request("idle", 50));
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 0);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
}

#[test]
fn read_committed_stops_at_an_open_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = common::Broker::serve(dir.path());
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    client.create_topic("txn");
    let produce = |client: &mut Client, batch: Vec<u8>| {
        let mut partition = produce_request::PartitionProduceData::default();
        partition.records = Some(Bytes::from(batch));
        let mut topic = produce_request::TopicProduceData::default();
        topic.name = name("txn");
        topic.partition_data = vec![partition];
        let mut request = ProduceRequest::default();
        request.acks = -1;
        request.timeout_ms = 5_000;
        request.topic_data = vec![topic];
        let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    };
    // Two plain records, then a transaction that stays open.
    produce(
        &mut client,
        BatchBuilder::new(0)
            .record(None, Some(b"a"), 0)
            .record(None, Some(b"b"), 0)
            .build(),
    );
    produce(
        &mut client,
        BatchBuilder::new(0)
            .producer(42, 0, 0)
            .transactional()
            .record(None, Some(b"t"), 0)
            .build(),
    );
    let fetch = |client: &mut Client, isolation: i8| {
        let mut request = fetch_request("txn", 0);
        request.isolation_level = isolation;
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request);
        response.responses[0].partitions[0].clone()
    };
    let uncommitted = fetch(&mut client, 0);
    assert_eq!(
        (uncommitted.high_watermark, uncommitted.last_stable_offset),
        (3, 2)
    );
    assert!(uncommitted.aborted_transactions.is_none());
    let records = uncommitted.records.expect("records");
    let committed = fetch(&mut client, 1);
    assert_eq!(committed.last_stable_offset, 2);
    assert_eq!(committed.aborted_transactions, Some(vec![]));
    let stable = committed.records.expect("records");
    assert!(
        stable.len() < records.len(),
        "read_committed stops before the open transaction"
    );
    let last = runnel_log::batch::Batches::new(&stable)
        .filter_map(Result::ok)
        .map(|(header, _)| header.last_offset())
        .max();
    assert_eq!(last, Some(1));
    // ListOffsets: latest is the last stable offset for read_committed.
    let list = |client: &mut Client, isolation: i8| {
        let mut partition = list_offsets_request::ListOffsetsPartition::default();
        partition.timestamp = -1;
        let mut topic = list_offsets_request::ListOffsetsTopic::default();
        topic.name = name("txn");
        topic.partitions = vec![partition];
        let mut request = ListOffsetsRequest::default();
        request.replica_id = BrokerId(-1);
        request.isolation_level = isolation;
        request.topics = vec![topic];
        let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &request);
        response.topics[0].partitions[0].offset
    };
    assert_eq!((list(&mut client, 0), list(&mut client, 1)), (3, 2));
}
