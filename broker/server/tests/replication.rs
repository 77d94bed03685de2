//! Partition replication on three real nodes (tests/common/cluster.rs):
//! with three replicas, records acknowledged with `acks=all` survive kill
//! -9 of their leader and every replica ends byte for byte the same;
//! `min.insync.replicas` refuses `acks=all` writes while the ISR is too
//! small; a leader that wrote what no follower took (`acks=1`) and was
//! killed cuts that tail when it comes back, so no replica keeps it;
//! OffsetForLeaderEpoch says where an epoch ended and fences a client on
//! an old one; ElectLeaders (through any node) and the controller's
//! automatic rebalance give a partition back to its preferred replica
//! once it is in sync again.
//!
//! Waits are for conditions with a deadline, never sleeps.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::client::Client;
use common::cluster::{
    Cluster, NODES, START_DEADLINE, kcat_produce, kcat_read, metadata, produce_one,
    start_cluster_with, wait_for,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, TopicName, create_topics_request,
};
use kafka_protocol::protocol::StrBytes;

/// Fencing and ISR shrinks within seconds, not Kafka's defaults.
const FAST: &str = "broker.session.timeout.ms=3000\nreplica.lag.time.max.ms=2000\n";
const NOT_ENOUGH_REPLICAS: i16 = 19;
const FENCED_LEADER_EPOCH: i16 = 74;

/// OffsetForLeaderEpoch of `epoch` for `topic`-0 through `bootstrap`
/// (v4): the answer's epoch and end offset, and the error when the
/// request names `epoch` as the current leader epoch.
fn epoch_end(bootstrap: &str, topic: &str, epoch: i32) -> ((i32, i64), i16) {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
    let ask = |current: i32| {
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id((-1).into())
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(current)
                            .with_leader_epoch(epoch),
                    ]),
            ]);
        let response: OffsetForLeaderEpochResponse =
            Client::connect(bootstrap).call(ApiKey::OffsetForLeaderEpoch, 4, &request);
        response.topics[0].partitions[0].clone()
    };
    let answer = ask(-1);
    assert_eq!(answer.error_code, 0, "OffsetForLeaderEpoch");
    let fenced = ask(epoch);
    ((answer.leader_epoch, answer.end_offset), fenced.error_code)
}

/// CreateTopics of `name` with three replicas and `configs`, through
/// `bootstrap`; waits until every node sees each partition's ISR whole.
fn create_replicated(cluster: &Cluster, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut create = CreateTopicsRequest::default();
    create.timeout_ms = 30_000;
    create.topics = vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(3)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string((*k).into()))
                            .with_value(Some(StrBytes::from_string((*v).into())))
                    })
                    .collect(),
            ),
    ];
    let created: CreateTopicsResponse =
        Client::connect(&cluster.bootstrap(1)).call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(created.topics[0].error_code, 0, "create {name}");
    for id in NODES {
        wait_for_isr(cluster, id, name, 3);
    }
}

/// Each partition of `topic` with its leader and ISR, as node `id` sees
/// them.
fn partitions(cluster: &Cluster, id: i32, topic: &str) -> BTreeMap<i32, (i32, Vec<i32>)> {
    metadata(&cluster.bootstrap(id), Some(topic)).topics[0]
        .partitions
        .iter()
        .map(|p| {
            let isr = p.isr_nodes.iter().map(|b| b.0).collect();
            (p.partition_index, (p.leader_id.0, isr))
        })
        .collect()
}

fn wait_for_isr(cluster: &Cluster, id: i32, topic: &str, size: usize) {
    wait_for(
        &format!("node {id} sees every ISR of {topic} with {size} members"),
        START_DEADLINE,
        || {
            let seen = partitions(cluster, id, topic);
            !seen.is_empty() && seen.values().all(|(l, isr)| *l >= 0 && isr.len() == size)
        },
    );
}

fn bootstrap_of(cluster: &Cluster, ids: &[i32]) -> String {
    ids.iter()
        .map(|id| cluster.bootstrap(*id))
        .collect::<Vec<_>>()
        .join(",")
}

/// `lines` (`key:value`) produced by kcat with `acks=all` and idempotence;
/// kcat exits non-zero when a delivery fails.
fn produce_all(bootstrap: &str, topic: &str, lines: &[String]) {
    kcat_produce(
        bootstrap,
        topic,
        lines,
        &["-X", "acks=all", "-X", "enable.idempotence=true"],
    );
}

/// Every `key:value` of `topic`, read by kcat from the start to the end.
fn consume_all(bootstrap: &str, topic: &str) -> BTreeSet<String> {
    kcat_read(bootstrap, topic).into_iter().collect()
}

/// The bytes of a partition's log segments and its leader epoch file on
/// node `id`.
fn replica_files(root: &Path, id: i32, topic: &str, partition: i32) -> (Vec<u8>, String) {
    let dir = root.join(format!("node-{id}/data/{topic}-{partition}"));
    let mut logs: Vec<_> = std::fs::read_dir(&dir)
        .expect("partition dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let bytes = logs
        .iter()
        .flat_map(|p| std::fs::read(p).expect("read segment"))
        .collect();
    let epochs = std::fs::read_to_string(dir.join("leader-epoch-checkpoint")).unwrap_or_default();
    (bytes, epochs)
}

/// Waits until every node holds the same bytes for each partition of
/// `topic` (followers fetch on their own time).
fn wait_for_identical_replicas(cluster: &Cluster, topic: &str, partitions: i32) {
    wait_for(
        &format!("every replica of {topic} holds the same bytes"),
        START_DEADLINE,
        || {
            (0..partitions).all(|p| {
                let files: Vec<_> = NODES
                    .iter()
                    .map(|id| replica_files(cluster.root.path(), *id, topic, p))
                    .collect();
                files.windows(2).all(|w| w[0] == w[1]) && !files[0].0.is_empty()
            })
        },
    );
}

#[test]
fn acks_all_records_survive_kill_of_their_leader_and_replicas_end_byte_identical() {
    let mut cluster = start_cluster_with(FAST);
    let topic = "replicated";
    create_replicated(&cluster, topic, 3, &[("min.insync.replicas", "2")]);
    let first: Vec<String> = (0..300).map(|i| format!("k{i}:before-{i}")).collect();
    produce_all(&bootstrap_of(&cluster, &NODES), topic, &first);

    let (leader, _) = partitions(&cluster, 1, topic)[&0].clone();
    cluster.nodes.get_mut(&leader).expect("leader node").kill();
    let alive: Vec<i32> = NODES.into_iter().filter(|id| *id != leader).collect();
    wait_for("partition 0 has a new leader", START_DEADLINE, || {
        let (now, isr) = partitions(&cluster, alive[0], topic)[&0].clone();
        now >= 0 && now != leader && !isr.contains(&leader)
    });
    // KIP-320: epoch 0 ends where the new leader's epoch began, and a
    // client that still knows epoch 0 as current is fenced.
    let new_leader = partitions(&cluster, alive[0], topic)[&0].0;
    let (end, stale) = epoch_end(&cluster.bootstrap(new_leader), topic, 0);
    assert_eq!(end.0, 0, "epoch 0 is the newest at or below 0");
    assert!(
        end.1 > 0,
        "epoch 0 held the records before the kill: {end:?}"
    );
    assert_eq!(stale, FENCED_LEADER_EPOCH);
    let second: Vec<String> = (300..600).map(|i| format!("k{i}:after-{i}")).collect();
    produce_all(&bootstrap_of(&cluster, &alive), topic, &second);

    let read = consume_all(&cluster.bootstrap(alive[0]), topic);
    let expected: BTreeSet<String> = first.iter().chain(&second).cloned().collect();
    let lost: Vec<_> = expected.difference(&read).take(5).collect();
    assert!(lost.is_empty(), "acknowledged records lost: {lost:?}");
    assert_eq!(read.len(), expected.len(), "nothing else was read");

    // Back, the killed leader catches up, rejoins every ISR, and every
    // replica holds the same bytes and leader epochs.
    cluster.restart(leader);
    for id in NODES {
        wait_for_isr(&cluster, id, topic, 3);
    }
    wait_for_identical_replicas(&cluster, topic, 3);
    let epochs = replica_files(cluster.root.path(), leader, topic, 0).1;
    assert!(
        epochs.lines().count() >= 4,
        "partition 0 moved to a new epoch: {epochs:?}"
    );
}

#[test]
fn acks_all_is_refused_while_the_isr_is_below_min_insync_replicas() {
    let mut cluster = start_cluster_with(FAST);
    let topic = "strict";
    create_replicated(&cluster, topic, 1, &[("min.insync.replicas", "3")]);
    let (leader, isr) = partitions(&cluster, 1, topic)[&0].clone();
    let boot = cluster.bootstrap(leader);
    assert_eq!(produce_one(&boot, topic, 0, -1, "whole"), 0);

    let follower = *isr.iter().find(|id| **id != leader).expect("a follower");
    cluster.nodes.get_mut(&follower).expect("follower").kill();
    wait_for("the ISR shrinks to two", START_DEADLINE, || {
        partitions(&cluster, leader, topic)[&0].1.len() == 2
    });
    assert_eq!(
        produce_one(&boot, topic, 0, -1, "refused"),
        NOT_ENOUGH_REPLICAS,
        "acks=all with two in sync of min.insync.replicas=3"
    );
    assert_eq!(produce_one(&boot, topic, 0, 1, "leader only"), 0, "acks=1");

    cluster.restart(follower);
    wait_for_isr(&cluster, leader, topic, 3);
    assert_eq!(produce_one(&boot, topic, 0, -1, "whole again"), 0);
    wait_for_identical_replicas(&cluster, topic, 1);
}

#[test]
fn a_killed_leader_cuts_the_tail_no_follower_took_when_it_comes_back() {
    // The ISR must not shrink while the followers are paused: the killed
    // leader's tail is then past what the next leader holds. Followers'
    // fetches are never held by the leader (replica.fetch.wait.max.ms=0):
    // a paused follower has no fetch parked there that an append would
    // answer into its socket.
    let mut cluster = start_cluster_with(
        "broker.session.timeout.ms=3000\nreplica.lag.time.max.ms=60000\n\
         replica.fetch.wait.max.ms=0\n",
    );
    let topic = "diverged";
    create_replicated(&cluster, topic, 1, &[("min.insync.replicas", "1")]);
    let (leader, _) = partitions(&cluster, 1, topic)[&0].clone();
    let boot = cluster.bootstrap(leader);
    produce_all(&boot, topic, &["a:kept".to_string()]);
    wait_for_identical_replicas(&cluster, topic, 1);

    let followers: Vec<i32> = NODES.into_iter().filter(|id| *id != leader).collect();
    for id in &followers {
        cluster.nodes[id].pause();
    }
    // Written on the leader alone: acknowledged with acks=1, never taken.
    for i in 0..3 {
        assert_eq!(produce_one(&boot, topic, 0, 1, &format!("lost-{i}")), 0);
    }
    cluster.nodes.get_mut(&leader).expect("leader").kill();
    for id in &followers {
        cluster.nodes[id].resume();
    }
    wait_for("a follower leads partition 0", START_DEADLINE, || {
        let (now, _) = partitions(&cluster, followers[0], topic)[&0].clone();
        followers.contains(&now)
    });
    produce_all(
        &bootstrap_of(&cluster, &followers),
        topic,
        &["b:after".to_string()],
    );

    cluster.restart(leader);
    for id in NODES {
        wait_for_isr(&cluster, id, topic, 3);
    }
    wait_for_identical_replicas(&cluster, topic, 1);
    let read = consume_all(&cluster.bootstrap(leader), topic);
    assert!(
        read.contains("a:kept") && read.contains("b:after"),
        "acknowledged with acks=all: {read:?}"
    );
    assert!(
        !read.contains(":lost-2"),
        "the old leader's own tail is gone: {read:?}"
    );
}

/// ElectLeaders (preferred) of `topic`-`partition` through `bootstrap`:
/// the partition's error code.
fn elect_preferred(bootstrap: &str, topic: &str, partition: i32) -> i16 {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(10_000)
        .with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![partition]),
        ]));
    let response: ElectLeadersResponse =
        Client::connect(bootstrap).call(ApiKey::ElectLeaders, 2, &request);
    assert_eq!(response.error_code, 0, "ElectLeaders");
    response.replica_election_results[0].partition_result[0].error_code
}

/// Kills partition 0's leader (its preferred replica), waits until another
/// leads, restarts it and waits until it is back in every ISR: the
/// preferred leader, which no longer leads.
fn move_leadership_away(cluster: &mut Cluster, topic: &str) -> i32 {
    let (preferred, _) = partitions(cluster, 1, topic)[&0].clone();
    cluster.nodes.get_mut(&preferred).expect("leader").kill();
    let alive: Vec<i32> = NODES.into_iter().filter(|id| *id != preferred).collect();
    wait_for("partition 0 has another leader", START_DEADLINE, || {
        let (now, _) = partitions(cluster, alive[0], topic)[&0].clone();
        now >= 0 && now != preferred
    });
    cluster.restart(preferred);
    for id in NODES {
        wait_for_isr(cluster, id, topic, 3);
    }
    preferred
}

#[test]
fn elect_leaders_gives_a_partition_back_to_its_preferred_replica() {
    let mut cluster = start_cluster_with(&format!("{FAST}auto.leader.rebalance.enable=false\n"));
    let topic = "preferred";
    create_replicated(&cluster, topic, 1, &[]);
    let preferred = move_leadership_away(&mut cluster, topic);
    let leader = partitions(&cluster, preferred, topic)[&0].0;
    assert_ne!(leader, preferred, "no automatic rebalance");
    // Through a node that is not the controller too: forwarded.
    let through = NODES
        .into_iter()
        .find(|id| *id != preferred)
        .expect("a node");
    assert_eq!(elect_preferred(&cluster.bootstrap(through), topic, 0), 0);
    wait_for("the preferred replica leads again", START_DEADLINE, || {
        partitions(&cluster, through, topic)[&0].0 == preferred
    });
    const ELECTION_NOT_NEEDED: i16 = 84;
    assert_eq!(
        elect_preferred(&cluster.bootstrap(through), topic, 0),
        ELECTION_NOT_NEEDED
    );
    produce_all(&cluster.bootstrap(preferred), topic, &["k:v".to_string()]);
    wait_for_identical_replicas(&cluster, topic, 1);
}

#[test]
fn the_controller_gives_leadership_back_to_a_restarted_preferred_replica() {
    let mut cluster = start_cluster_with(&format!(
        "{FAST}leader.imbalance.check.interval.seconds=1\n"
    ));
    let topic = "rebalanced";
    create_replicated(&cluster, topic, 1, &[]);
    let preferred = move_leadership_away(&mut cluster, topic);
    wait_for(
        "the controller rebalances leadership",
        START_DEADLINE,
        || partitions(&cluster, preferred, topic)[&0].0 == preferred,
    );
}

/// AlterPartitionReassignments of `topic`-0 to `target` through
/// `bootstrap`: the partition's error code.
fn reassign(bootstrap: &str, topic: &str, target: &[i32]) -> i16 {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    };
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(Some(target.iter().map(|id| (*id).into()).collect())),
                ]),
        ]);
    let response: AlterPartitionReassignmentsResponse =
        Client::connect(bootstrap).call(ApiKey::AlterPartitionReassignments, 0, &request);
    assert_eq!(response.error_code, 0, "AlterPartitionReassignments");
    response.responses[0].partitions[0].error_code
}

/// How many partitions ListPartitionReassignments shows in progress.
fn reassignments_in_progress(bootstrap: &str) -> usize {
    use kafka_protocol::messages::{
        ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    };
    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000);
    let response: ListPartitionReassignmentsResponse =
        Client::connect(bootstrap).call(ApiKey::ListPartitionReassignments, 0, &request);
    response.topics.iter().map(|t| t.partitions.len()).sum()
}

#[test]
fn a_reassignment_moves_a_partition_to_other_brokers_with_every_record() {
    let cluster = start_cluster_with(FAST);
    let topic = "moved";
    let mut create = CreateTopicsRequest::default();
    create.timeout_ms = 30_000;
    create.topics = vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(2)
            .with_replication_factor(1),
    ];
    let created: CreateTopicsResponse =
        Client::connect(&cluster.bootstrap(1)).call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(created.topics[0].error_code, 0);
    wait_for_isr(&cluster, 1, topic, 1);
    let lines: Vec<String> = (0..200).map(|i| format!("k{i}:v{i}")).collect();
    produce_all(&bootstrap_of(&cluster, &NODES), topic, &lines);

    let (from, _) = partitions(&cluster, 1, topic)[&0].clone();
    let target: Vec<i32> = NODES.into_iter().filter(|id| *id != from).collect();
    let other = partitions(&cluster, 1, topic)[&1].clone();
    let through = target[0];
    assert_eq!(reassign(&cluster.bootstrap(through), topic, &target), 0);
    wait_for("the reassignment completes", START_DEADLINE, || {
        let (leader, isr) = partitions(&cluster, through, topic)[&0].clone();
        let mut isr = isr;
        isr.sort_unstable();
        isr == target
            && target.contains(&leader)
            && reassignments_in_progress(&cluster.bootstrap(through)) == 0
    });
    let dir = |id: i32, p: i32| {
        cluster
            .root
            .path()
            .join(format!("node-{id}/data/{topic}-{p}"))
    };
    wait_for("the old replica's copy is deleted", START_DEADLINE, || {
        !dir(from, 0).exists()
    });
    assert_eq!(
        partitions(&cluster, through, topic)[&1],
        other,
        "partition 1 did not move"
    );
    if other.0 == from {
        assert!(dir(from, 1).exists(), "only partition 0 left broker {from}");
    }
    let read = consume_all(&cluster.bootstrap(through), topic);
    assert_eq!(read.len(), lines.len(), "every record is still there");
    const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    assert_eq!(
        reassign(&cluster.bootstrap(through), topic, &[9]),
        INVALID_REPLICA_ASSIGNMENT
    );
}

/// IncrementalAlterConfigs of the cluster-wide default broker configs
/// (the empty broker name): SET each `(key, Some(value))`, DELETE each
/// `(key, None)`; the resource's error code and message.
fn alter_cluster_default(bootstrap: &str, changes: &[(&str, Option<&str>)]) -> (i16, String) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    use kafka_protocol::messages::{
        IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    };
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_static_str(""))
            .with_configs(
                changes
                    .iter()
                    .map(|(key, value)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string((*key).to_string()))
                            .with_config_operation(if value.is_some() { 0 } else { 1 })
                            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            ),
    ]);
    let response: IncrementalAlterConfigsResponse =
        Client::connect(bootstrap).call(ApiKey::IncrementalAlterConfigs, 1, &request);
    let resource = &response.responses[0];
    (
        resource.error_code,
        resource
            .error_message
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    )
}

/// DescribeConfigs of broker resource `name` through `bootstrap` (the
/// empty name: the cluster default): `key`'s value and source, if listed.
fn described_broker_config(bootstrap: &str, name: &str, key: &str) -> Option<(String, i8)> {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
    let request = DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())])),
    ]);
    let response: DescribeConfigsResponse =
        Client::connect(bootstrap).call(ApiKey::DescribeConfigs, 4, &request);
    let result = &response.results[0];
    assert_eq!(result.error_code, 0, "{:?}", result.error_message);
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .map(|c| {
            (
                c.value
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                c.config_source,
            )
        })
}

/// A reassignment under Kafka's replication throttle: the topic names its
/// replicas in `leader|follower.replication.throttled.replicas` and the
/// brokers' dynamic `leader|follower.replication.throttled.rate` is 400
/// KB/s, so the 2 MB take seconds to reach the new replica: a quota lets
/// one second's worth through at once and one fetch (256 KiB here) past
/// it, as Kafka's does, so the rest, 1.4 MB, takes at least 3 s. With the
/// rates deleted the next move is not held. Only the two rates are
/// dynamic broker configs; DescribeConfigs shows them.
#[test]
fn a_throttled_reassignment_moves_no_faster_than_its_rate() {
    const INVALID_CONFIG: i16 = 40;
    const INVALID_REQUEST: i16 = 42;
    let cluster = start_cluster_with(&format!("{FAST}replica.fetch.max.bytes=262144\n"));
    let topic = "throttled";
    let mut create = CreateTopicsRequest::default();
    create.timeout_ms = 30_000;
    create.topics = vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(
                [
                    "leader.replication.throttled.replicas",
                    "follower.replication.throttled.replicas",
                ]
                .iter()
                .map(|key| {
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string((*key).to_string()))
                        .with_value(Some(StrBytes::from_static_str("*")))
                })
                .collect(),
            ),
    ];
    let created: CreateTopicsResponse =
        Client::connect(&cluster.bootstrap(1)).call(ApiKey::CreateTopics, 7, &create);
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0]);
    wait_for_isr(&cluster, 1, topic, 1);
    let value = "x".repeat(1000);
    let lines: Vec<String> = (0..2000).map(|i| format!("k{i}:{value}")).collect();
    produce_all(&bootstrap_of(&cluster, &NODES), topic, &lines);

    let (code, message) =
        alter_cluster_default(&cluster.bootstrap(2), &[("num.partitions", Some("3"))]);
    assert_eq!(code, INVALID_REQUEST, "{message}");
    assert!(
        message.contains("num.partitions is static here"),
        "{message}"
    );
    let (code, message) = alter_cluster_default(
        &cluster.bootstrap(2),
        &[("leader.replication.throttled.rate", Some("fast"))],
    );
    assert_eq!(code, INVALID_CONFIG, "{message}");
    let rates = [
        ("leader.replication.throttled.rate", Some("400000")),
        ("follower.replication.throttled.rate", Some("400000")),
    ];
    assert_eq!(alter_cluster_default(&cluster.bootstrap(2), &rates).0, 0);
    // Described as Kafka describes a dynamic default (source 3), on the
    // default resource and on each broker once its metadata has it.
    const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    let rate = "leader.replication.throttled.rate";
    wait_for("every broker sees the rates", START_DEADLINE, || {
        NODES.iter().all(|id| {
            described_broker_config(&cluster.bootstrap(*id), &id.to_string(), rate)
                == Some(("400000".into(), DYNAMIC_DEFAULT_BROKER_CONFIG))
        })
    });
    assert_eq!(
        described_broker_config(&cluster.bootstrap(1), "", rate),
        Some(("400000".into(), DYNAMIC_DEFAULT_BROKER_CONFIG))
    );

    let (from, _) = partitions(&cluster, 1, topic)[&0].clone();
    let others: Vec<i32> = NODES.into_iter().filter(|id| *id != from).collect();
    let started = std::time::Instant::now();
    assert_eq!(
        reassign(&cluster.bootstrap(1), topic, &[from, others[0]]),
        0
    );
    wait_for("the throttled move completes", START_DEADLINE, || {
        partitions(&cluster, 1, topic)[&0].1.len() == 2
            && reassignments_in_progress(&cluster.bootstrap(1)) == 0
    });
    let throttled = started.elapsed();
    assert!(
        throttled >= std::time::Duration::from_secs(3),
        "2 MB moved at 400 KB/s in {throttled:?}"
    );

    let unthrottled = [
        ("leader.replication.throttled.rate", None),
        ("follower.replication.throttled.rate", None),
    ];
    assert_eq!(
        alter_cluster_default(&cluster.bootstrap(3), &unthrottled).0,
        0
    );
    let started = std::time::Instant::now();
    assert_eq!(
        reassign(&cluster.bootstrap(1), topic, &[from, others[0], others[1]]),
        0
    );
    wait_for("the unthrottled move completes", START_DEADLINE, || {
        partitions(&cluster, 1, topic)[&0].1.len() == 3
            && reassignments_in_progress(&cluster.bootstrap(1)) == 0
    });
    eprintln!(
        "2 MB moved in {throttled:?} at 400 KB/s, in {:?} unthrottled",
        started.elapsed()
    );
    assert_eq!(consume_all(&cluster.bootstrap(1), topic).len(), lines.len());
}
