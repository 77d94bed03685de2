//! Every API at every version the broker advertises, sent to the real
//! binary with kafka-protocol's client encoding and its response decoded at
//! the same version: a field a version lacks, or a wrong layout, fails here
//! by name and version. An advertised API with no case below fails too, so
//! the table cannot promise what is not served.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_log::BatchBuilder;
use runnel_protocol::versions::SUPPORTED;
use uuid::Uuid;

use common::client::Client;

/// Kafka's `ConfigResource.Type.TOPIC`.
const TOPIC_RESOURCE: i8 = 2;

/// Joins `group` as a new member at `version`, through the member-id
/// handshake from v4; returns (member id, generation).
fn join(client: &mut Client, group: &str, version: i16) -> (String, i32) {
    let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
    protocol.name = StrBytes::from_static_str("range");
    protocol.metadata = Bytes::from_static(b"meta");
    let mut request = JoinGroupRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.session_timeout_ms = 10_000;
    request.rebalance_timeout_ms = 10_000;
    request.protocol_type = StrBytes::from_static_str("consumer");
    request.protocols = vec![protocol];
    let mut response: JoinGroupResponse = client.call(ApiKey::JoinGroup, version, &request);
    if version >= 4 {
        assert_eq!(response.error_code, 79, "MEMBER_ID_REQUIRED first");
        request.member_id = response.member_id.clone();
        response = client.call(ApiKey::JoinGroup, version, &request);
    }
    assert_eq!(response.error_code, 0, "JoinGroup v{version}");
    assert_eq!(response.leader, response.member_id);
    assert_eq!(response.members.len(), 1);
    (response.member_id.to_string(), response.generation_id)
}

fn sync(
    client: &mut Client,
    group: &str,
    member: &str,
    generation: i32,
    version: i16,
) -> SyncGroupResponse {
    let mut assignment = sync_group_request::SyncGroupRequestAssignment::default();
    assignment.member_id = StrBytes::from_string(member.to_string());
    assignment.assignment = Bytes::from_static(b"assigned");
    let mut request = SyncGroupRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_string()));
    request.generation_id = generation;
    request.member_id = StrBytes::from_string(member.to_string());
    if version >= 5 {
        request.protocol_type = Some(StrBytes::from_static_str("consumer"));
        request.protocol_name = Some(StrBytes::from_static_str("range"));
    }
    request.assignments = vec![assignment];
    client.call(ApiKey::SyncGroup, version, &request)
}

fn name(text: &str) -> TopicName {
    TopicName(StrBytes::from_string(text.to_string()))
}

fn create_topic(client: &mut Client, topic: &str, partitions: i32, version: i16) -> i16 {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut request = CreateTopicsRequest::default();
    request.topics = vec![t];
    request.timeout_ms = 10_000;
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, version, &request);
    response.topics[0].error_code
}

fn topic_id(client: &mut Client, topic: &str) -> Uuid {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(name(topic));
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![t]);
    let response: MetadataResponse = client.call(ApiKey::Metadata, 12, &request);
    response.topics[0].topic_id
}

fn sweep(client: &mut Client, api: ApiKey, version: i16, sweep_id: Uuid) {
    let batch = Bytes::from(
        BatchBuilder::new(1_700_000_000_000)
            .record(Some(b"k"), Some(b"v"), 1_700_000_000_000)
            .build(),
    );
    match api {
        ApiKey::ApiVersions => {
            let mut request = ApiVersionsRequest::default();
            if version >= 3 {
                request.client_software_name = StrBytes::from_static_str("sweep");
                request.client_software_version = StrBytes::from_static_str("1.0");
            }
            let response: ApiVersionsResponse = client.call(api, version, &request);
            assert_eq!(response.error_code, 0);
            assert_eq!(response.api_keys.len(), SUPPORTED.len());
        }
        ApiKey::Metadata => {
            let mut t = metadata_request::MetadataRequestTopic::default();
            t.name = Some(name("sweep"));
            let mut request = MetadataRequest::default();
            request.topics = Some(vec![t]);
            let response: MetadataResponse = client.call(api, version, &request);
            assert_eq!(response.brokers.len(), 1);
            assert_eq!(response.topics[0].error_code, 0);
            assert_eq!(response.topics[0].partitions.len(), 1);
        }
        ApiKey::Produce => {
            let mut partition = produce_request::PartitionProduceData::default();
            partition.index = 0;
            partition.records = Some(batch);
            let mut topic = produce_request::TopicProduceData::default();
            topic.name = name("sweep");
            topic.partition_data = vec![partition];
            let mut request = ProduceRequest::default();
            request.acks = 1;
            request.timeout_ms = 10_000;
            request.topic_data = vec![topic];
            let response: ProduceResponse = client.call(api, version, &request);
            let p = &response.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "{:?}", p.error_message);
            assert!(p.base_offset >= 0);
        }
        ApiKey::Fetch => {
            let mut partition = fetch_request::FetchPartition::default();
            partition.partition = 0;
            partition.fetch_offset = 0;
            partition.partition_max_bytes = 1 << 20;
            let mut topic = fetch_request::FetchTopic::default();
            if version >= 13 {
                topic.topic_id = sweep_id;
            } else {
                topic.topic = name("sweep");
            }
            topic.partitions = vec![partition];
            let mut request = FetchRequest::default();
            request.max_wait_ms = 0;
            request.min_bytes = 1;
            request.max_bytes = 1 << 20;
            if version >= 7 {
                request.session_epoch = -1;
            }
            request.topics = vec![topic];
            let response: FetchResponse = client.call(api, version, &request);
            let p = &response.responses[0].partitions[0];
            assert_eq!(p.error_code, 0);
            assert!(p.high_watermark >= 1);
            assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));
        }
        ApiKey::ListOffsets => {
            let mut partition = list_offsets_request::ListOffsetsPartition::default();
            partition.partition_index = 0;
            partition.timestamp = -1;
            let mut topic = list_offsets_request::ListOffsetsTopic::default();
            topic.name = name("sweep");
            topic.partitions = vec![partition];
            let mut request = ListOffsetsRequest::default();
            request.topics = vec![topic];
            let response: ListOffsetsResponse = client.call(api, version, &request);
            let p = &response.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            assert!(p.offset >= 1);
        }
        ApiKey::AlterPartitionReassignments => {
            use kafka_protocol::messages::alter_partition_reassignments_request::{
                ReassignablePartition, ReassignableTopic,
            };
            use kafka_protocol::messages::{
                AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
            };
            // Onto the replicas it has: nothing moves.
            let request = AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(10_000)
                .with_topics(vec![
                    ReassignableTopic::default()
                        .with_name(name("sweep"))
                        .with_partitions(vec![
                            ReassignablePartition::default()
                                .with_partition_index(0)
                                .with_replicas(Some(vec![1.into()])),
                        ]),
                ]);
            let response: AlterPartitionReassignmentsResponse = client.call(api, version, &request);
            assert_eq!(response.error_code, 0);
            assert_eq!(response.responses[0].partitions[0].error_code, 0);
        }
        ApiKey::ListPartitionReassignments => {
            use kafka_protocol::messages::{
                ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
            };
            let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000);
            let response: ListPartitionReassignmentsResponse = client.call(api, version, &request);
            assert_eq!(response.error_code, 0);
            assert!(response.topics.is_empty(), "nothing is being moved");
        }
        ApiKey::ElectLeaders => {
            use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
            use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
            // One broker leads every partition it has: nothing to elect.
            let request = ElectLeadersRequest::default()
                .with_election_type(0)
                .with_timeout_ms(10_000)
                .with_topic_partitions(Some(vec![
                    TopicPartitions::default()
                        .with_topic(name("sweep"))
                        .with_partitions(vec![0]),
                ]));
            let response: ElectLeadersResponse = client.call(api, version, &request);
            let p = &response.replica_election_results[0].partition_result[0];
            assert_eq!(p.error_code, 84, "ELECTION_NOT_NEEDED");
        }
        ApiKey::OffsetForLeaderEpoch => {
            use kafka_protocol::messages::offset_for_leader_epoch_request::{
                OffsetForLeaderPartition, OffsetForLeaderTopic,
            };
            use kafka_protocol::messages::{
                OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
            };
            // A single broker's partitions are all in epoch 0, which ends
            // at the log end.
            let request = OffsetForLeaderEpochRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![
                    OffsetForLeaderTopic::default()
                        .with_topic(name("sweep"))
                        .with_partitions(vec![
                            OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_current_leader_epoch(0)
                                .with_leader_epoch(0),
                        ]),
                ]);
            let response: OffsetForLeaderEpochResponse = client.call(api, version, &request);
            let p = &response.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            assert_eq!(p.leader_epoch, 0);
            assert!(p.end_offset >= 1);
        }
        ApiKey::CreateTopics => {
            assert_eq!(
                create_topic(client, &format!("sweep-create-{version}"), 1, version),
                0
            );
        }
        ApiKey::DeleteTopics => {
            let topic = format!("sweep-delete-{version}");
            assert_eq!(create_topic(client, &topic, 1, 7), 0);
            let mut request = DeleteTopicsRequest::default();
            if version >= 6 {
                let mut t = delete_topics_request::DeleteTopicState::default();
                t.name = Some(name(&topic));
                request.topics = vec![t];
            } else {
                request.topic_names = vec![name(&topic)];
            }
            request.timeout_ms = 10_000;
            let response: DeleteTopicsResponse = client.call(api, version, &request);
            assert_eq!(response.responses[0].error_code, 0);
        }
        ApiKey::CreatePartitions => {
            let topic = format!("sweep-grow-{version}");
            assert_eq!(create_topic(client, &topic, 1, 7), 0);
            let mut t = create_partitions_request::CreatePartitionsTopic::default();
            t.name = name(&topic);
            t.count = 3;
            let mut request = CreatePartitionsRequest::default();
            request.topics = vec![t];
            request.timeout_ms = 10_000;
            let response: CreatePartitionsResponse = client.call(api, version, &request);
            assert_eq!(response.results[0].error_code, 0);
        }
        ApiKey::DescribeConfigs => {
            let mut resource = describe_configs_request::DescribeConfigsResource::default();
            resource.resource_type = TOPIC_RESOURCE;
            resource.resource_name = StrBytes::from_static_str("sweep");
            resource.configuration_keys = None; // all keys
            let mut request = DescribeConfigsRequest::default();
            request.resources = vec![resource];
            let response: DescribeConfigsResponse = client.call(api, version, &request);
            assert_eq!(response.results[0].error_code, 0);
            assert!(
                response.results[0]
                    .configs
                    .iter()
                    .any(|c| c.name.as_str() == "retention.ms")
            );
        }
        ApiKey::AlterConfigs => {
            let mut config = alter_configs_request::AlterableConfig::default();
            config.name = StrBytes::from_static_str("retention.ms");
            config.value = Some(StrBytes::from_string(format!(
                "{}",
                86_400_000 + version as i64
            )));
            let mut resource = alter_configs_request::AlterConfigsResource::default();
            resource.resource_type = TOPIC_RESOURCE;
            resource.resource_name = StrBytes::from_static_str("sweep");
            resource.configs = vec![config];
            let mut request = AlterConfigsRequest::default();
            request.resources = vec![resource];
            let response: AlterConfigsResponse = client.call(api, version, &request);
            assert_eq!(
                response.responses[0].error_code, 0,
                "{:?}",
                response.responses[0].error_message
            );
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut config = incremental_alter_configs_request::AlterableConfig::default();
            config.name = StrBytes::from_static_str("retention.ms");
            config.config_operation = 0; // SET
            config.value = Some(StrBytes::from_string(format!(
                "{}",
                86_400_100 + version as i64
            )));
            let mut resource = incremental_alter_configs_request::AlterConfigsResource::default();
            resource.resource_type = TOPIC_RESOURCE;
            resource.resource_name = StrBytes::from_static_str("sweep");
            resource.configs = vec![config];
            let mut request = IncrementalAlterConfigsRequest::default();
            request.resources = vec![resource];
            let response: IncrementalAlterConfigsResponse = client.call(api, version, &request);
            assert_eq!(
                response.responses[0].error_code, 0,
                "{:?}",
                response.responses[0].error_message
            );
        }
        ApiKey::DescribeCluster => {
            let mut request = DescribeClusterRequest::default();
            request.endpoint_type = 1; // brokers
            let response: DescribeClusterResponse = client.call(api, version, &request);
            assert_eq!(response.error_code, 0, "{:?}", response.error_message);
            assert_eq!(response.brokers.len(), 1);
        }
        ApiKey::DescribeQuorum => {
            let mut partition = describe_quorum_request::PartitionData::default();
            partition.partition_index = 0;
            let mut topic = describe_quorum_request::TopicData::default();
            topic.topic_name = TopicName(StrBytes::from_static_str("__cluster_metadata"));
            topic.partitions = vec![partition];
            let mut request = DescribeQuorumRequest::default();
            request.topics = vec![topic];
            let response: DescribeQuorumResponse = client.call(api, version, &request);
            let partition = &response.topics[0].partitions[0];
            assert_eq!(partition.error_code, 0);
            assert_eq!(partition.leader_id.0, 1);
            assert_eq!(partition.current_voters.len(), 1);
        }
        ApiKey::FindCoordinator => {
            let mut request = FindCoordinatorRequest::default();
            if version >= 4 {
                request.coordinator_keys = vec![StrBytes::from_static_str("sweep-group")];
            } else {
                request.key = StrBytes::from_static_str("sweep-group");
            }
            let response: FindCoordinatorResponse = client.call(api, version, &request);
            if version >= 4 {
                assert_eq!(response.coordinators[0].error_code, 0);
                assert_eq!(response.coordinators[0].node_id.0, 1);
            } else {
                assert_eq!(response.error_code, 0);
                assert_eq!(response.node_id.0, 1);
            }
        }
        ApiKey::OffsetCommit => {
            let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
            partition.partition_index = 0;
            partition.committed_offset = version as i64;
            partition.committed_metadata = Some(StrBytes::from_static_str("m"));
            let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
            topic.name = name("sweep");
            topic.partitions = vec![partition];
            let mut request = OffsetCommitRequest::default();
            request.group_id = GroupId(StrBytes::from_static_str("sweep-group"));
            request.generation_id_or_member_epoch = -1;
            request.topics = vec![topic];
            let response: OffsetCommitResponse = client.call(api, version, &request);
            assert_eq!(response.topics[0].partitions[0].error_code, 0);
        }
        ApiKey::OffsetFetch => {
            let mut request = OffsetFetchRequest::default();
            if version >= 8 {
                let mut topic = offset_fetch_request::OffsetFetchRequestTopics::default();
                topic.name = name("sweep");
                topic.partition_indexes = vec![0];
                let mut group = offset_fetch_request::OffsetFetchRequestGroup::default();
                group.group_id = GroupId(StrBytes::from_static_str("sweep-group"));
                group.topics = Some(vec![topic]);
                request.groups = vec![group];
            } else {
                let mut topic = offset_fetch_request::OffsetFetchRequestTopic::default();
                topic.name = name("sweep");
                topic.partition_indexes = vec![0];
                request.group_id = GroupId(StrBytes::from_static_str("sweep-group"));
                request.topics = Some(vec![topic]);
            }
            let response: OffsetFetchResponse = client.call(api, version, &request);
            let committed = if version >= 8 {
                &response.groups[0].topics[0].partitions[0].committed_offset
            } else {
                &response.topics[0].partitions[0].committed_offset
            };
            // The last OffsetCommit of the sweep (its highest version).
            assert_eq!(*committed, 9);
        }
        ApiKey::JoinGroup => {
            let (_, generation) = join(client, &format!("sweep-join-{version}"), version);
            assert_eq!(generation, 1);
        }
        ApiKey::SyncGroup => {
            let group = format!("sweep-sync-{version}");
            let (member, generation) = join(client, &group, 5);
            let response = sync(client, &group, &member, generation, version);
            assert_eq!(response.error_code, 0);
            assert_eq!(&response.assignment[..], b"assigned");
        }
        ApiKey::Heartbeat => {
            let group = format!("sweep-heartbeat-{version}");
            let (member, generation) = join(client, &group, 5);
            assert_eq!(sync(client, &group, &member, generation, 5).error_code, 0);
            let mut request = HeartbeatRequest::default();
            request.group_id = GroupId(StrBytes::from_string(group));
            request.generation_id = generation;
            request.member_id = StrBytes::from_string(member);
            let response: HeartbeatResponse = client.call(api, version, &request);
            assert_eq!(response.error_code, 0);
        }
        ApiKey::LeaveGroup => {
            let group = format!("sweep-leave-{version}");
            let (member, _) = join(client, &group, 5);
            let mut request = LeaveGroupRequest::default();
            request.group_id = GroupId(StrBytes::from_string(group));
            if version >= 3 {
                let mut identity = leave_group_request::MemberIdentity::default();
                identity.member_id = StrBytes::from_string(member);
                request.members = vec![identity];
            } else {
                request.member_id = StrBytes::from_string(member);
            }
            let response: LeaveGroupResponse = client.call(api, version, &request);
            assert_eq!(response.error_code, 0);
            if version >= 3 {
                assert_eq!(response.members[0].error_code, 0);
            }
        }
        ApiKey::DescribeGroups => {
            // Joined and synced by the Heartbeat sweep, which runs before.
            let mut request = DescribeGroupsRequest::default();
            request.groups = vec![
                GroupId(StrBytes::from_static_str("sweep-heartbeat-4")),
                GroupId(StrBytes::from_static_str("no-such-group")),
            ];
            let response: DescribeGroupsResponse = client.call(api, version, &request);
            assert_eq!(response.groups[0].group_state.as_str(), "Stable");
            assert_eq!(response.groups[0].members.len(), 1);
            assert_eq!(response.groups[1].group_state.as_str(), "Dead");
        }
        ApiKey::ListGroups => {
            let mut request = ListGroupsRequest::default();
            if version >= 4 {
                request.states_filter = vec![StrBytes::from_static_str("stable")];
            }
            let response: ListGroupsResponse = client.call(api, version, &request);
            assert_eq!(response.error_code, 0);
            let ids: Vec<&str> = response
                .groups
                .iter()
                .map(|g| g.group_id.0.as_str())
                .collect();
            assert!(ids.contains(&"sweep-heartbeat-4"), "{ids:?}");
            if version >= 4 {
                assert!(
                    response
                        .groups
                        .iter()
                        .all(|g| g.group_state.as_str() == "Stable")
                );
            } else {
                assert!(
                    ids.contains(&"sweep-group"),
                    "offset-only groups listed: {ids:?}"
                );
            }
        }
        ApiKey::DeleteGroups => {
            let group = format!("sweep-delete-group-{version}");
            let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
            partition.committed_offset = 1;
            let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
            topic.name = name("sweep");
            topic.partitions = vec![partition];
            let mut commit = OffsetCommitRequest::default();
            commit.group_id = GroupId(StrBytes::from_string(group.clone()));
            commit.generation_id_or_member_epoch = -1;
            commit.topics = vec![topic];
            let committed: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &commit);
            assert_eq!(committed.topics[0].partitions[0].error_code, 0);
            let mut request = DeleteGroupsRequest::default();
            request.groups_names = vec![
                GroupId(StrBytes::from_string(group.clone())),
                GroupId(StrBytes::from_string(group)),
                GroupId(StrBytes::from_static_str("sweep-heartbeat-4")),
            ];
            let response: DeleteGroupsResponse = client.call(api, version, &request);
            let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
            // Deleted; then not found; a group with a member is not empty.
            assert_eq!(codes, [0, 69, 68]);
        }
        ApiKey::OffsetDelete => {
            let group = format!("sweep-offset-delete-{version}");
            let mut partition = offset_commit_request::OffsetCommitRequestPartition::default();
            partition.committed_offset = 1;
            let mut topic = offset_commit_request::OffsetCommitRequestTopic::default();
            topic.name = name("sweep");
            topic.partitions = vec![partition];
            let mut commit = OffsetCommitRequest::default();
            commit.group_id = GroupId(StrBytes::from_string(group.clone()));
            commit.generation_id_or_member_epoch = -1;
            commit.topics = vec![topic];
            let committed: OffsetCommitResponse = client.call(ApiKey::OffsetCommit, 8, &commit);
            assert_eq!(committed.topics[0].partitions[0].error_code, 0);
            let delete = |group: &str| {
                let mut topic = offset_delete_request::OffsetDeleteRequestTopic::default();
                topic.name = name("sweep");
                topic.partitions = [0, 99]
                    .map(|p| {
                        offset_delete_request::OffsetDeleteRequestPartition::default()
                            .with_partition_index(p)
                    })
                    .to_vec();
                let mut request = OffsetDeleteRequest::default();
                request.group_id = GroupId(StrBytes::from_string(group.to_string()));
                request.topics = vec![topic];
                request
            };
            let response: OffsetDeleteResponse = client.call(api, version, &delete(&group));
            assert_eq!(response.error_code, 0);
            let codes: Vec<i16> = response.topics[0]
                .partitions
                .iter()
                .map(|p| p.error_code)
                .collect();
            // Deleted; partition 99 does not exist.
            assert_eq!(codes, [0, 3]);
            let mut fetch_topic = offset_fetch_request::OffsetFetchRequestTopic::default();
            fetch_topic.name = name("sweep");
            fetch_topic.partition_indexes = vec![0];
            let mut fetch = OffsetFetchRequest::default();
            fetch.group_id = GroupId(StrBytes::from_string(group));
            fetch.topics = Some(vec![fetch_topic]);
            let fetched: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 5, &fetch);
            assert_eq!(fetched.topics[0].partitions[0].committed_offset, -1);
            // A member whose subscription is not ConsumerProtocol: NON_EMPTY_GROUP.
            let response: OffsetDeleteResponse =
                client.call(api, version, &delete("sweep-heartbeat-4"));
            assert_eq!(response.error_code, 68);
            let response: OffsetDeleteResponse =
                client.call(api, version, &delete("sweep-no-such-group"));
            assert_eq!(response.error_code, 69);
        }
        ApiKey::InitProducerId => {
            let mut request = InitProducerIdRequest::default();
            request.transactional_id = None;
            request.transaction_timeout_ms = 60_000;
            if version >= 3 {
                request.producer_id = ProducerId(-1);
                request.producer_epoch = -1;
            }
            let first: InitProducerIdResponse = client.call(api, version, &request);
            let second: InitProducerIdResponse = client.call(api, version, &request);
            assert_eq!((first.error_code, second.error_code), (0, 0));
            assert!(
                first.producer_id.0 >= 0 && first.producer_epoch == 0,
                "{first:?}"
            );
            assert!(
                second.producer_id.0 > first.producer_id.0,
                "ids are not reused"
            );
            // A transactional id: its producer id, then the next epoch.
            let id = format!("sweep-init-{version}");
            request.transactional_id = Some(TransactionalId(StrBytes::from_string(id)));
            let first: InitProducerIdResponse = client.call(api, version, &request);
            let again: InitProducerIdResponse = client.call(api, version, &request);
            assert_eq!((first.error_code, again.error_code), (0, 0));
            assert_eq!(first.producer_id, again.producer_id);
            assert_eq!(again.producer_epoch, first.producer_epoch + 1);
        }
        ApiKey::AddPartitionsToTxn
        | ApiKey::EndTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::TxnOffsetCommit => {
            // A transactional id of its own per API and version: init, add
            // the sweep topic's partition, then commit.
            let id = format!("sweep-{api:?}-{version}");
            let mut find = FindCoordinatorRequest::default();
            find.key = StrBytes::from_string(id.clone());
            find.key_type = 1;
            let found: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, 3, &find);
            assert_eq!(found.error_code, 0, "transaction coordinator");
            let mut init = InitProducerIdRequest::default();
            init.transactional_id = Some(TransactionalId(StrBytes::from_string(id.clone())));
            init.transaction_timeout_ms = 60_000;
            let init: InitProducerIdResponse = client.call(ApiKey::InitProducerId, 1, &init);
            assert_eq!(init.error_code, 0);
            let add_version = if api == ApiKey::AddPartitionsToTxn {
                version
            } else {
                1
            };
            // The partitions' codes, in the client form (v0-3) or the
            // brokers' batched form (v4, optionally verify_only).
            let add_partitions = |client: &mut Client, partitions: Vec<i32>, verify_only: bool| {
                let mut topic = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
                topic.name = name("sweep");
                topic.partitions = partitions;
                let mut add = AddPartitionsToTxnRequest::default();
                if add_version >= 4 {
                    let mut txn =
                        add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default();
                    txn.transactional_id = TransactionalId(StrBytes::from_string(id.clone()));
                    txn.producer_id = init.producer_id;
                    txn.producer_epoch = init.producer_epoch;
                    txn.verify_only = verify_only;
                    txn.topics = vec![topic];
                    add.transactions = vec![txn];
                } else {
                    add.v3_and_below_transactional_id =
                        TransactionalId(StrBytes::from_string(id.clone()));
                    add.v3_and_below_producer_id = init.producer_id;
                    add.v3_and_below_producer_epoch = init.producer_epoch;
                    add.v3_and_below_topics = vec![topic];
                }
                let added: AddPartitionsToTxnResponse =
                    client.call(ApiKey::AddPartitionsToTxn, add_version, &add);
                let topics = if add_version >= 4 {
                    added.results_by_transaction[0].topic_results.clone()
                } else {
                    added.results_by_topic_v3_and_below
                };
                topics[0]
                    .results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
                    .collect::<Vec<i16>>()
            };
            // Partition 99 does not exist, so nothing is added.
            assert_eq!(
                add_partitions(client, vec![0, 99], false),
                [55, 3],
                "OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION"
            );
            if add_version >= 4 {
                assert_eq!(add_partitions(client, vec![0], true), [48], "not in it yet");
            }
            assert_eq!(add_partitions(client, vec![0], false), [0]);
            if add_version >= 4 {
                assert_eq!(add_partitions(client, vec![0], true), [0], "in it now");
            }
            // The group's offsets join the transaction.
            let group = format!("sweep-txn-group-{api:?}-{version}");
            let mut add_offsets = AddOffsetsToTxnRequest::default();
            add_offsets.transactional_id = TransactionalId(StrBytes::from_string(id.clone()));
            add_offsets.producer_id = init.producer_id;
            add_offsets.producer_epoch = init.producer_epoch;
            add_offsets.group_id = GroupId(StrBytes::from_string(group.clone()));
            let offsets_version = if api == ApiKey::AddOffsetsToTxn {
                version
            } else {
                0
            };
            let added: AddOffsetsToTxnResponse =
                client.call(ApiKey::AddOffsetsToTxn, offsets_version, &add_offsets);
            assert_eq!(added.error_code, 0);
            let mut partition =
                txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
            partition.partition_index = 0;
            partition.committed_offset = 5;
            let mut topic = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
            topic.name = name("sweep");
            topic.partitions = vec![partition];
            let mut commit = TxnOffsetCommitRequest::default();
            commit.transactional_id = TransactionalId(StrBytes::from_string(id.clone()));
            commit.group_id = GroupId(StrBytes::from_string(group.clone()));
            commit.producer_id = init.producer_id;
            commit.producer_epoch = init.producer_epoch;
            commit.generation_id = -1;
            commit.topics = vec![topic];
            let commit_version = if api == ApiKey::TxnOffsetCommit {
                version
            } else {
                0
            };
            let committed: TxnOffsetCommitResponse =
                client.call(ApiKey::TxnOffsetCommit, commit_version, &commit);
            assert_eq!(committed.topics[0].partitions[0].error_code, 0);
            let fetch_committed = |client: &mut Client| {
                let mut fetch_topic = offset_fetch_request::OffsetFetchRequestTopic::default();
                fetch_topic.name = name("sweep");
                fetch_topic.partition_indexes = vec![0];
                let mut fetch = OffsetFetchRequest::default();
                fetch.group_id = GroupId(StrBytes::from_string(group.clone()));
                fetch.topics = Some(vec![fetch_topic]);
                let fetched: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 5, &fetch);
                fetched.topics[0].partitions[0].committed_offset
            };
            assert_eq!(fetch_committed(client), -1, "not before the commit");
            let mut end = EndTxnRequest::default();
            end.transactional_id = TransactionalId(StrBytes::from_string(id));
            end.producer_id = init.producer_id;
            end.producer_epoch = init.producer_epoch;
            end.committed = true;
            let end_version = if api == ApiKey::EndTxn { version } else { 0 };
            let ended: EndTxnResponse = client.call(ApiKey::EndTxn, end_version, &end);
            assert_eq!(ended.error_code, 0);
            assert_eq!(fetch_committed(client), 5, "committed with the transaction");
            // A retry of the same EndTxn is answered the same; an old epoch
            // is fenced.
            let again: EndTxnResponse = client.call(ApiKey::EndTxn, end_version, &end);
            assert_eq!(again.error_code, 0);
            end.producer_epoch -= 1;
            let fenced: EndTxnResponse = client.call(ApiKey::EndTxn, end_version, &end);
            assert_eq!(fenced.error_code, 90, "PRODUCER_FENCED");
        }
        ApiKey::DescribeTransactions => {
            // The earlier cases left transactional ids behind.
            let mut request = DescribeTransactionsRequest::default();
            request.transactional_ids = vec![
                TransactionalId(StrBytes::from_static_str("sweep-EndTxn-0")),
                TransactionalId(StrBytes::from_static_str("sweep-no-such-txn")),
            ];
            let response: DescribeTransactionsResponse = client.call(api, version, &request);
            let known = &response.transaction_states[0];
            assert_eq!(known.error_code, 0);
            assert_eq!(known.transaction_state.as_str(), "CompleteCommit");
            // A complete transaction lists no partitions, as in Kafka.
            assert!(known.topics.is_empty(), "{:?}", known.topics);
            assert_eq!(response.transaction_states[1].error_code, 105);
        }
        ApiKey::ListTransactions => {
            let mut request = ListTransactionsRequest::default();
            request.duration_filter = -1;
            let all: ListTransactionsResponse = client.call(api, version, &request);
            let ids: Vec<&str> = all
                .transaction_states
                .iter()
                .map(|t| t.transactional_id.0.as_str())
                .collect();
            assert!(ids.contains(&"sweep-EndTxn-0"), "{ids:?}");
            request.state_filters = vec![
                StrBytes::from_static_str("CompleteCommit"),
                StrBytes::from_static_str("Bogus"),
            ];
            let filtered: ListTransactionsResponse = client.call(api, version, &request);
            assert_eq!(
                filtered.unknown_state_filters,
                [StrBytes::from_static_str("Bogus")]
            );
            assert!(
                filtered
                    .transaction_states
                    .iter()
                    .all(|t| t.transaction_state.as_str() == "CompleteCommit")
            );
            assert!(!filtered.transaction_states.is_empty());
            if version >= 1 {
                // Nothing here has run for ten hours.
                request.state_filters = vec![StrBytes::from_static_str("CompleteCommit")];
                request.duration_filter = 36_000_000;
                let long: ListTransactionsResponse = client.call(api, version, &request);
                assert!(long.transaction_states.is_empty(), "{long:?}");
            }
        }
        ApiKey::WriteTxnMarkers => {
            use kafka_protocol::messages::write_txn_markers_request::{
                WritableTxnMarker, WritableTxnMarkerTopic,
            };
            use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
            let marker = WritableTxnMarker::default()
                .with_producer_id(kafka_protocol::messages::ProducerId(4242))
                .with_producer_epoch(0)
                .with_transaction_result(false)
                .with_topics(vec![
                    WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_static_str("no-such-topic")))
                        .with_partition_indexes(vec![0]),
                ]);
            let request = WriteTxnMarkersRequest::default().with_markers(vec![marker]);
            let response: WriteTxnMarkersResponse = client.call(api, version, &request);
            let partition = &response.markers[0].topics[0].partitions[0];
            assert_eq!(response.markers[0].producer_id.0, 4242);
            assert_eq!(partition.partition_index, 0);
            assert_eq!(partition.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
        }
        other => panic!("{other:?} is advertised but the sweep has no case for it"),
    }
}

#[test]
fn every_advertised_api_version_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker =
        common::Broker::serve_with(dir.path(), &["group.initial.rebalance.delay.ms=0"]);
    broker.wait_ready();
    let mut client = Client::connect(&broker.bootstrap);
    assert_eq!(create_topic(&mut client, "sweep", 1, 7), 0);
    let sweep_id = topic_id(&mut client, "sweep");
    // Produce first so that fetches and offset lookups find data.
    let mut order: Vec<_> = SUPPORTED.to_vec();
    order.sort_by_key(|(api, _, _)| *api != ApiKey::Produce);
    for (api, min, max) in order {
        for version in min..=max {
            sweep(&mut client, api, version, sweep_id);
        }
    }
}
