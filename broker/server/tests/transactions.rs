//! Transactions across a broker `kill -9`: one transaction committed
//! before the kill stays visible; one left open (records and group offsets
//! written, no EndTxn) is aborted after the restart when its
//! `transaction.timeout.ms` passes, so `read_committed` readers never see
//! it and its offsets never take effect.
//!
//! KIP-890's verification, on Runnel and on Kafka: a transactional batch
//! for a partition the producer did not add to its open transaction (or
//! after that transaction ended) is refused with INVALID_TXN_STATE and
//! never written.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use bytes::Bytes;
use common::client::Client;
use common::kafka::{self, KafkaBroker};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_log::BatchBuilder;

const SETTINGS: &[&str] = &[
    "transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
    "group.initial.rebalance.delay.ms=0",
];

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn txn_id(text: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(text.to_string()))
}

/// InitProducerId for `id`: (producer id, epoch). COORDINATOR_NOT_AVAILABLE
/// and the like are retried: Kafka answers them while it creates
/// `__transaction_state`.
fn init(client: &mut Client, id: &str, timeout_ms: i32) -> (ProducerId, i16) {
    const RETRIABLE: [i16; 3] = [14, 15, 16];
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let mut find = FindCoordinatorRequest::default();
        find.key = StrBytes::from_string(id.to_string());
        find.key_type = 1;
        let found: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, 3, &find);
        let mut request = InitProducerIdRequest::default();
        request.transactional_id = Some(txn_id(id));
        request.transaction_timeout_ms = timeout_ms;
        let response: InitProducerIdResponse = client.call(ApiKey::InitProducerId, 1, &request);
        if found.error_code == 0 && response.error_code == 0 {
            return (response.producer_id, response.producer_epoch);
        }
        assert!(
            RETRIABLE.contains(&found.error_code) && RETRIABLE.contains(&response.error_code)
                || found.error_code == 0 && RETRIABLE.contains(&response.error_code),
            "FindCoordinator {}, InitProducerId {}",
            found.error_code,
            response.error_code
        );
        assert!(
            std::time::Instant::now() < deadline,
            "InitProducerId kept answering {}",
            response.error_code
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// AddPartitionsToTxn(topic 0), AddOffsetsToTxn(group) and a transactional
/// produce of `values` with `offset` committed for the group.
fn write_in_transaction(
    client: &mut Client,
    id: &str,
    (producer_id, epoch): (ProducerId, i16),
    values: &[&[u8]],
    offset: i64,
) {
    add_t0(client, id, (producer_id, epoch));
    let mut add_offsets = AddOffsetsToTxnRequest::default();
    add_offsets.transactional_id = txn_id(id);
    add_offsets.producer_id = producer_id;
    add_offsets.producer_epoch = epoch;
    add_offsets.group_id = GroupId(StrBytes::from_string(format!("g-{id}")));
    let added: AddOffsetsToTxnResponse = client.call(ApiKey::AddOffsetsToTxn, 3, &add_offsets);
    assert_eq!(added.error_code, 0);
    assert_eq!(produce_txn(client, id, (producer_id, epoch), 0, values), 0);
    let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    let mut topic = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
    topic.name = name("t");
    topic.partitions = vec![p];
    let mut commit = TxnOffsetCommitRequest::default();
    commit.transactional_id = txn_id(id);
    commit.group_id = GroupId(StrBytes::from_string(format!("g-{id}")));
    commit.producer_id = producer_id;
    commit.producer_epoch = epoch;
    commit.generation_id = -1;
    commit.topics = vec![topic];
    let committed: TxnOffsetCommitResponse = client.call(ApiKey::TxnOffsetCommit, 3, &commit);
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
}

fn committed_offset(client: &mut Client, group: &str) -> i64 {
    let mut topic = offset_fetch_request::OffsetFetchRequestTopic::default();
    topic.name = name("t");
    topic.partition_indexes = vec![0];
    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(StrBytes::from_string(group.to_string()));
    fetch.topics = Some(vec![topic]);
    let fetched: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 5, &fetch);
    fetched.topics[0].partitions[0].committed_offset
}

/// OffsetFetch v7 of t-0 with `require_stable`: (offset, error code).
fn stable_offset(client: &mut Client, group: &str) -> (i64, i16) {
    let mut topic = offset_fetch_request::OffsetFetchRequestTopic::default();
    topic.name = name("t");
    topic.partition_indexes = vec![0];
    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(StrBytes::from_string(group.to_string()));
    fetch.topics = Some(vec![topic]);
    fetch.require_stable = true;
    let fetched: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 7, &fetch);
    let p = &fetched.topics[0].partitions[0];
    (p.committed_offset, p.error_code)
}

/// A read_committed fetch of t-0 from 0: (LSO, high watermark, values,
/// aborted producer ids).
fn read_committed(client: &mut Client) -> (i64, i64, Vec<Vec<u8>>, Vec<i64>) {
    let mut partition = fetch_request::FetchPartition::default();
    partition.partition_max_bytes = 1 << 20;
    let mut topic = fetch_request::FetchTopic::default();
    topic.topic = name("t");
    topic.partitions = vec![partition];
    let mut request = FetchRequest::default();
    request.max_bytes = 1 << 20;
    request.isolation_level = 1;
    request.session_epoch = -1;
    request.topics = vec![topic];
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request);
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0, "fetch of t-0");
    let aborted: Vec<i64> = p
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| a.producer_id.0)
        .collect();
    let mut values = Vec::new();
    let bytes = p.records.clone().unwrap_or_default();

    for batch in runnel_log::batch::Batches::new(&bytes) {
        let Ok((header, batch)) = batch else { break };
        if header.is_control() || aborted.contains(&header.producer_id) {
            continue;
        }
        let records = runnel_log::records::BatchRecords::decode(batch).expect("records");
        for record in &records.records {
            values.push(records.value(record).unwrap_or_default().to_vec());
        }
    }
    (p.last_stable_offset, p.high_watermark, values, aborted)
}

#[test]
fn an_open_transaction_is_aborted_after_a_broker_kill_and_never_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = common::Broker::serve_with(dir.path(), SETTINGS);
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    let mut topic = create_topics_request::CreatableTopic::default();
    topic.name = name("t");
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![topic];
    let created: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(created.topics[0].error_code, 0);

    let done = init(&mut client, "done", 60_000);
    write_in_transaction(&mut client, "done", done, &[b"kept"], 1);
    let mut end = EndTxnRequest::default();
    end.transactional_id = txn_id("done");
    end.producer_id = done.0;
    end.producer_epoch = done.1;
    end.committed = true;
    let ended: EndTxnResponse = client.call(ApiKey::EndTxn, 3, &end);
    assert_eq!(ended.error_code, 0);
    let open = init(&mut client, "open", 1_500);
    write_in_transaction(&mut client, "open", open, &[b"lost-1", b"lost-2"], 3);
    let (lso, hw, values, _) = read_committed(&mut client);
    assert_eq!((lso, hw), (2, 4), "the open transaction holds the LSO");
    assert_eq!(values, [b"kept".to_vec()]);
    assert_eq!(committed_offset(&mut client, "g-open"), -1, "still pending");
    assert_eq!(
        stable_offset(&mut client, "g-open"),
        (-1, 88),
        "require_stable: UNSTABLE_OFFSET_COMMIT while the transaction is open"
    );
    assert_eq!(stable_offset(&mut client, "g-done"), (1, 0));

    broker.kill();
    let mut broker = common::Broker::serve_with(dir.path(), SETTINGS);
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let (lso, hw, values, aborted) = read_committed(&mut client);
        assert_eq!(
            values,
            [b"kept".to_vec()],
            "never the open transaction's records"
        );
        if lso == hw {
            assert_eq!(aborted, [open.0.0], "listed as aborted");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the open transaction was not aborted after its timeout"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(committed_offset(&mut client, "g-done"), 1);
    assert_eq!(
        committed_offset(&mut client, "g-open"),
        -1,
        "aborted offsets never apply"
    );
}

fn listed(client: &mut Client) -> Vec<String> {
    let mut request = ListTransactionsRequest::default();
    request.duration_filter = -1;
    let response: ListTransactionsResponse = client.call(ApiKey::ListTransactions, 1, &request);
    response
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.0.to_string())
        .collect()
}

#[test]
fn idle_transactional_ids_expire_and_stay_expired_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = [
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=100",
        "transactional.id.expiration.ms=300",
    ];
    let mut broker = common::Broker::serve_with(dir.path(), &settings);
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    init(&mut client, "short-lived", 60_000);
    assert_eq!(listed(&mut client), ["short-lived"]);
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while !listed(&mut client).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle transactional id did not expire"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    broker.terminate();
    broker.wait_exit();
    // No expiry pass in the restarted broker's first minute: only the
    // tombstone can keep the id gone.
    let later = [
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=60000",
        "transactional.id.expiration.ms=300",
    ];
    let mut broker = common::Broker::serve_with(dir.path(), &later);
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    assert!(
        listed(&mut client).is_empty(),
        "the tombstone keeps it gone"
    );
}

/// A transactional produce of `values` in one batch at `sequence` to t-0
/// (today's timestamps: records of 1970 would be past retention): its code.
fn produce_txn(
    client: &mut Client,
    id: &str,
    (producer_id, epoch): (ProducerId, i16),
    sequence: i32,
    values: &[&[u8]],
) -> i16 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut batch = BatchBuilder::new(now)
        .producer(producer_id.0, epoch, sequence)
        .transactional();
    for value in values {
        batch.push(None, Some(value), now);
    }
    let mut partition = produce_request::PartitionProduceData::default();
    partition.records = Some(Bytes::from(batch.build()));
    let mut topic = produce_request::TopicProduceData::default();
    topic.name = name("t");
    topic.partition_data = vec![partition];
    let mut produce = ProduceRequest::default();
    produce.transactional_id = Some(txn_id(id));
    produce.acks = -1;
    produce.timeout_ms = 5_000;
    produce.topic_data = vec![topic];
    let produced: ProduceResponse = client.call(ApiKey::Produce, 9, &produce);
    produced.responses[0].partition_responses[0].error_code
}

fn add_t0(client: &mut Client, id: &str, (producer_id, epoch): (ProducerId, i16)) {
    let mut topic = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
    topic.name = name("t");
    topic.partitions = vec![0];
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = txn_id(id);
    add.v3_and_below_producer_id = producer_id;
    add.v3_and_below_producer_epoch = epoch;
    add.v3_and_below_topics = vec![topic];
    let added: AddPartitionsToTxnResponse = client.call(ApiKey::AddPartitionsToTxn, 3, &add);
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
}

fn end_txn(client: &mut Client, id: &str, (producer_id, epoch): (ProducerId, i16), commit: bool) {
    let mut end = EndTxnRequest::default();
    end.transactional_id = txn_id(id);
    end.producer_id = producer_id;
    end.producer_epoch = epoch;
    end.committed = commit;
    let ended: EndTxnResponse = client.call(ApiKey::EndTxn, 3, &end);
    assert_eq!(ended.error_code, 0);
}

/// The librdkafka failure the fault harness found: a producer that did
/// not (or no longer) add t-0 to its open transaction writes to it. The
/// batch is refused, and a later commit of the producer never makes it
/// visible.
fn unadded_partitions_refuse_transactional_batches(bootstrap: &str) {
    const INVALID_TXN_STATE: i16 = 48;
    let mut client = Client::connect(bootstrap);
    let mut topic = create_topics_request::CreatableTopic::default();
    topic.name = name("t");
    topic.num_partitions = 1;
    topic.replication_factor = 1;
    let mut create = CreateTopicsRequest::default();
    create.topics = vec![topic];
    let created: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(created.topics[0].error_code, 0);
    let producer = init(&mut client, "kip890", 60_000);

    assert_eq!(
        produce_txn(&mut client, "kip890", producer, 0, &[b"v0"]),
        INVALID_TXN_STATE,
        "t-0 was never added to a transaction"
    );
    add_t0(&mut client, "kip890", producer);
    assert_eq!(produce_txn(&mut client, "kip890", producer, 0, &[b"v0"]), 0);
    end_txn(&mut client, "kip890", producer, false);
    // Kafka answers EndTxn before its markers are written: wait for the
    // abort marker, after which the transaction is closed in t-0.
    wait_for_offsets(&mut client, (2, 2), producer);
    assert_eq!(
        produce_txn(&mut client, "kip890", producer, 1, &[b"v1"]),
        INVALID_TXN_STATE,
        "the transaction that added t-0 was aborted"
    );
    // The next transaction adds only its group's offsets and commits:
    // the refused record must not ride along.
    let mut find = FindCoordinatorRequest::default();
    find.key = StrBytes::from_string("g-kip890".to_string());
    find.key_type = 0;
    let _: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, 3, &find);
    let mut add_offsets = AddOffsetsToTxnRequest::default();
    add_offsets.transactional_id = txn_id("kip890");
    add_offsets.producer_id = producer.0;
    add_offsets.producer_epoch = producer.1;
    add_offsets.group_id = GroupId(StrBytes::from_string("g-kip890".to_string()));
    let added: AddOffsetsToTxnResponse = client.call(ApiKey::AddOffsetsToTxn, 3, &add_offsets);
    assert_eq!(added.error_code, 0);
    end_txn(&mut client, "kip890", producer, true);
    wait_for_offsets(&mut client, (2, 2), producer);
}

/// Waits until t-0's last stable offset and high watermark are
/// `offsets`; then read_committed sees nothing, and `producer` aborted.
fn wait_for_offsets(client: &mut Client, offsets: (i64, i64), producer: (ProducerId, i16)) {
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let (lso, hw, values, aborted) = read_committed(client);
        if (lso, hw) == offsets {
            assert!(values.is_empty(), "{values:?}");
            assert_eq!(aborted, [producer.0.0]);
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "t-0 ended at lso {lso}, hw {hw}, not {offsets:?}: {values:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_batch_outside_its_producers_open_transaction_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = common::Broker::serve_with(dir.path(), SETTINGS);
    broker.wait_ready();
    unadded_partitions_refuse_transactional_batches(&broker.bootstrap);
}

#[test]
fn kafka_refuses_a_batch_outside_its_producers_open_transaction_too() {
    kafka::require_installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = KafkaBroker::start(dir.path());
    unadded_partitions_refuse_transactional_batches(&kafka.bootstrap);
}
