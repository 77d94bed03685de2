//! Consumer groups kept in `__consumer_offsets` across broker restarts, and
//! committed offsets expiring, against the real binary over the wire.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use common::Broker;
use common::client::Client;

const GROUP: &str = "kept";

fn started(dir: &std::path::Path, overrides: &[&str]) -> Broker {
    let mut broker = Broker::serve_with(dir, overrides);
    broker.wait_ready();
    broker
}

fn create_topic(client: &mut Client, name: &str) {
    let mut topic = create_topics_request::CreatableTopic::default();
    topic.name = TopicName(StrBytes::from_string(name.to_string()));
    topic.num_partitions = 2;
    topic.replication_factor = 1;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![topic];
    request.timeout_ms = 10_000;
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 5, &request);
    assert_eq!(response.topics[0].error_code, 0, "create {name}");
}

/// Joins and syncs as the group's only member; returns (member, generation).
fn join_and_sync(client: &mut Client) -> (String, i32) {
    join_and_sync_with(client, Bytes::from_static(b"subscription"))
}

/// A ConsumerProtocolSubscription v0 of `topics`, no user data.
fn subscription(topics: &[&str]) -> Bytes {
    let mut out = vec![0, 0];
    out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
    for topic in topics {
        out.extend_from_slice(&(topic.len() as i16).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
    }
    out.extend_from_slice(&(-1i32).to_be_bytes());
    Bytes::from(out)
}

fn join_and_sync_with(client: &mut Client, metadata: Bytes) -> (String, i32) {
    let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    protocol.metadata = metadata;
    let mut join = JoinGroupRequest::default();
    join.group_id = GroupId(StrBytes::from_static_str(GROUP));
    join.session_timeout_ms = 30_000;
    join.rebalance_timeout_ms = 30_000;
    join.protocol_type = StrBytes::from_static_str("consumer");
    join.protocols = vec![protocol];
    let first: JoinGroupResponse = client.call(ApiKey::JoinGroup, 7, &join);
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    join.member_id = first.member_id;
    let joined: JoinGroupResponse = client.call(ApiKey::JoinGroup, 7, &join);
    assert_eq!(joined.error_code, 0);

    let mut assignment = sync_group_request::SyncGroupRequestAssignment::default();
    assignment.member_id = joined.member_id.clone();
    assignment.assignment = Bytes::from_static(b"assigned");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(StrBytes::from_static_str(GROUP));
    sync.generation_id = joined.generation_id;
    sync.member_id = joined.member_id.clone();
    sync.protocol_type = Some(StrBytes::from_static_str("consumer"));
    sync.protocol_name = Some(StrBytes::from_static_str("range"));
    sync.assignments = vec![assignment];
    let synced: SyncGroupResponse = client.call(ApiKey::SyncGroup, 5, &sync);
    assert_eq!(synced.error_code, 0);
    (joined.member_id.to_string(), joined.generation_id)
}

fn describe(client: &mut Client) -> describe_groups_response::DescribedGroup {
    let mut request = DescribeGroupsRequest::default();
    request.groups = vec![GroupId(StrBytes::from_static_str(GROUP))];
    let mut response: DescribeGroupsResponse = client.call(ApiKey::DescribeGroups, 5, &request);
    response.groups.remove(0)
}

fn heartbeat(client: &mut Client, member: &str, generation: i32) -> i16 {
    let mut request = HeartbeatRequest::default();
    request.group_id = GroupId(StrBytes::from_static_str(GROUP));
    request.member_id = StrBytes::from_string(member.to_string());
    request.generation_id = generation;
    let response: HeartbeatResponse = client.call(ApiKey::Heartbeat, 4, &request);
    response.error_code
}

/// Commits `offset` for partition 0 of `topic` at OffsetCommit v2, with
/// its own retention when `retention_ms` is not -1.
fn commit(
    client: &mut Client,
    group: &str,
    member: (&str, i32),
    topic: &str,
    offset: i64,
    retention_ms: i64,
) {
    let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
    partition.partition_index = 0;
    partition.committed_offset = offset;
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![partition];
    let mut request = OffsetCommitRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.member_id = StrBytes::from_string(member.0.to_string());
    request.generation_id_or_member_epoch = member.1;
    request.retention_time_ms = retention_ms;
    request.topics = vec![t];
    let response: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 2, &request);
    assert_eq!(response.topics[0].partitions[0].error_code, 0, "commit");
}

/// The committed offset of partition 0 of `topic`, -1 when none.
fn committed(client: &mut Client, group: &str, topic: &str) -> i64 {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_indexes = vec![0];
    let mut request = OffsetFetchRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.topics = Some(vec![t]);
    let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 5, &request);
    response.topics[0].partitions[0].committed_offset
}

#[test]
fn a_group_and_its_member_survive_a_broker_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let overrides = ["group.initial.rebalance.delay.ms=0"];
    let mut broker = started(dir.path(), &overrides);
    let mut client = Client::connect(&broker.bootstrap);
    create_topic(&mut client, "kept-topic");
    let (member, generation) = join_and_sync(&mut client);
    commit(
        &mut client,
        GROUP,
        (&member, generation),
        "kept-topic",
        17,
        -1,
    );
    drop(client);
    broker.kill();

    let mut broker = started(dir.path(), &overrides);
    let mut client = Client::connect(&broker.bootstrap);
    let group = describe(&mut client);
    assert_eq!(group.error_code, 0);
    assert_eq!(group.group_state.as_str(), "Stable");
    assert_eq!(group.protocol_type.as_str(), "consumer");
    assert_eq!(group.protocol_data.as_str(), "range");
    assert_eq!(group.members.len(), 1);
    let stored = &group.members[0];
    assert_eq!(stored.member_id.as_str(), member);
    assert_eq!(stored.client_host.as_str(), "/127.0.0.1");
    assert_eq!(stored.member_metadata, Bytes::from_static(b"subscription"));
    assert_eq!(stored.member_assignment, Bytes::from_static(b"assigned"));
    // The member carries on in its generation: no rebalance after the restart.
    assert_eq!(heartbeat(&mut client, &member, generation), 0);
    assert_eq!(committed(&mut client, GROUP, "kept-topic"), 17);

    // Leaving empties the group; an orderly restart keeps it Empty.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(StrBytes::from_static_str(GROUP));
    leave.member_id = StrBytes::from_string(member.clone());
    let left: LeaveGroupResponse = client.call(ApiKey::LeaveGroup, 0, &leave);
    assert_eq!(left.error_code, 0);
    drop(client);
    broker.terminate();
    assert!(broker.wait_exit().status.success());

    let broker = started(dir.path(), &overrides);
    let mut client = Client::connect(&broker.bootstrap);
    let group = describe(&mut client);
    assert_eq!(group.group_state.as_str(), "Empty");
    assert!(group.members.is_empty());
    assert_eq!(
        heartbeat(&mut client, &member, generation),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(committed(&mut client, GROUP, "kept-topic"), 17);
}

#[test]
fn offsets_past_their_retention_expire_and_stay_expired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let overrides = ["offsets.retention.check.interval.ms=100"];
    let mut broker = started(dir.path(), &overrides);
    let mut client = Client::connect(&broker.bootstrap);
    create_topic(&mut client, "expiring");
    // OffsetCommit v2 asks for 2 s of retention (long enough that a loaded
    // machine still reads it back first); the other group keeps the
    // broker's default (7 days).
    commit(&mut client, "short", ("", -1), "expiring", 5, 2_000);
    commit(&mut client, "long", ("", -1), "expiring", 6, -1);
    assert_eq!(committed(&mut client, "short", "expiring"), 5);
    let deadline = Instant::now() + common::DEADLINE;
    while committed(&mut client, "short", "expiring") != -1 {
        assert!(
            Instant::now() < deadline,
            "the short retention never expired"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(committed(&mut client, "long", "expiring"), 6);
    drop(client);
    broker.kill();

    // The expiry was written as a tombstone: a restart does not bring it back.
    let broker = started(dir.path(), &overrides);
    let mut client = Client::connect(&broker.bootstrap);
    assert_eq!(committed(&mut client, "short", "expiring"), -1);
    assert_eq!(committed(&mut client, "long", "expiring"), 6);
}

#[test]
fn offset_delete_spares_the_topics_members_subscribe_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = started(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let mut client = Client::connect(&broker.bootstrap);
    create_topic(&mut client, "subscribed");
    create_topic(&mut client, "left-behind");
    let member = join_and_sync_with(&mut client, subscription(&["subscribed"]));
    commit(
        &mut client,
        GROUP,
        (&member.0, member.1),
        "subscribed",
        3,
        -1,
    );
    commit(
        &mut client,
        GROUP,
        (&member.0, member.1),
        "left-behind",
        4,
        -1,
    );

    let mut request = OffsetDeleteRequest::default();
    request.group_id = GroupId(StrBytes::from_static_str(GROUP));
    request.topics = ["subscribed", "left-behind"]
        .map(|topic| {
            let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
            t.name = TopicName(StrBytes::from_static_str(topic));
            t.partitions = vec![offset_delete_request::OffsetDeleteRequestPartition::default()];
            t
        })
        .to_vec();
    let response: OffsetDeleteResponse = client.call(ApiKey::OffsetDelete, 0, &request);
    assert_eq!(response.error_code, 0);
    let codes: Vec<i16> = response
        .topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect();
    assert_eq!(codes, [86, 0], "GROUP_SUBSCRIBED_TO_TOPIC, then deleted");
    assert_eq!(committed(&mut client, GROUP, "subscribed"), 3);
    assert_eq!(committed(&mut client, GROUP, "left-behind"), -1);
}

/// Appends `count` records to partition 0 of `topic` in one batch.
fn produce(client: &mut Client, topic: &str, count: usize) {
    let mut builder = runnel_log::BatchBuilder::new(1_700_000_000_000);
    for _ in 0..count {
        builder.push(None, Some(b"v"), 1_700_000_000_000);
    }
    let mut partition = produce_request::PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(Bytes::from(builder.build()));
    let mut t = produce_request::TopicProduceData::default();
    t.name = TopicName(StrBytes::from_string(topic.to_string()));
    t.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = 1;
    request.timeout_ms = 10_000;
    request.topic_data = vec![t];
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

#[test]
fn lag_members_and_group_state_are_exported_under_kafka_exporter_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = started(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    let mut client = Client::connect(&broker.bootstrap);
    create_topic(&mut client, "lagging");
    produce(&mut client, "lagging", 10);
    let (member, generation) = join_and_sync(&mut client);
    commit(&mut client, GROUP, (&member, generation), "lagging", 4, -1);
    commit(&mut client, "offsets-only", ("", -1), "lagging", 9, -1);

    let text = common::scrape_metrics(&broker.metrics);
    for line in [
        "kafka_consumergroup_current_offset{consumergroup=\"kept\",topic=\"lagging\",partition=\"0\"} 4",
        "kafka_consumergroup_lag{consumergroup=\"kept\",topic=\"lagging\",partition=\"0\"} 6",
        "kafka_consumergroup_lag{consumergroup=\"offsets-only\",topic=\"lagging\",partition=\"0\"} 1",
        "kafka_consumergroup_lag_sum{consumergroup=\"kept\",topic=\"lagging\"} 6",
        "kafka_consumergroup_current_offset_sum{consumergroup=\"kept\",topic=\"lagging\"} 4",
        "kafka_consumergroup_members{consumergroup=\"kept\"} 1",
        "kafka_consumergroup_members{consumergroup=\"offsets-only\"} 0",
        "runnel_consumergroup_state{consumergroup=\"kept\",state=\"Stable\"} 1",
        "runnel_consumergroup_state{consumergroup=\"offsets-only\",state=\"Empty\"} 1",
        "runnel_consumergroup_rebalances_total{consumergroup=\"kept\"} 1",
        "kafka_topic_partition_current_offset{topic=\"lagging\",partition=\"0\"} 10",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

/// Partitions of `topic` from Metadata.
fn partitions_of(client: &mut Client, topic: &str) -> usize {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.to_string())));
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![t]);
    let response: MetadataResponse = client.call(ApiKey::Metadata, 12, &request);
    response.topics[0].partitions.len()
}

#[test]
fn the_offsets_topic_takes_its_partition_count_from_the_setting_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = started(dir.path(), &["offsets.topic.num.partitions=3"]);
    let mut client = Client::connect(&broker.bootstrap);
    create_topic(&mut client, "few");
    for group in ["a", "b", "c", "d", "e"] {
        commit(&mut client, group, ("", -1), "few", 7, -1);
    }
    assert_eq!(partitions_of(&mut client, "__consumer_offsets"), 3);
    drop(client);
    broker.kill();

    // A changed setting does not move groups: the topic keeps its count.
    let broker = started(dir.path(), &["offsets.topic.num.partitions=50"]);
    let mut client = Client::connect(&broker.bootstrap);
    assert_eq!(partitions_of(&mut client, "__consumer_offsets"), 3);
    for group in ["a", "b", "c", "d", "e"] {
        assert_eq!(committed(&mut client, group, "few"), 7, "{group}");
    }
}
