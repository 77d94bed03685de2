//! DescribeQuorum: the KRaft quorum of `__cluster_metadata-0`, which on
//! one broker is this node alone, answered as Kafka's leader of a
//! single-voter quorum answers: this node leads at the epoch of the
//! metadata log's last batch, the high watermark is the log's end offset,
//! the only voter is this node (caught up, its fetch and caught-up times
//! now, as Kafka reports the leader itself), there are no observers, and
//! from v2 the nodes list this node's listeners. Voters are static
//! (`kraft.version` 0), so directory ids are the zero uuid.
//!
//! A request naming anything but that one partition gets Kafka's
//! UNKNOWN_TOPIC_OR_PARTITION on the metadata partition.
//!
//! On a cluster, `cluster` answers from the quorum instead.

pub mod cluster;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use kafka_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState, TopicData,
};

use super::{str_bytes, topic_name};
use crate::cluster_metadata::{ClusterMetadata, METADATA_TOPIC};
use crate::config::BrokerConfig;

/// The metadata log's only partition.
const METADATA_PARTITION: i32 = 0;

pub fn handle(
    config: &BrokerConfig,
    metadata: &ClusterMetadata,
    request: DescribeQuorumRequest,
    version: i16,
    now_ms: i64,
) -> DescribeQuorumResponse {
    let provenance = metadata.image().provenance();
    let quorum = Quorum {
        node_id: config.node_id,
        leader_epoch: provenance.epoch.max(0),
        high_watermark: provenance.offset + 1,
    };
    if !names_the_metadata_partition(&request) {
        return unknown_partition();
    }
    let mut response = DescribeQuorumResponse::default();
    response.topics = vec![metadata_topic(quorum.partition(now_ms))];
    if version >= 2 {
        let mut node = Node::default();
        node.node_id = BrokerId(config.node_id);
        node.listeners = config
            .advertised_listeners
            .iter()
            .map(|l| {
                let mut listener = Listener::default();
                listener.name = str_bytes(l.name.as_str());
                listener.host = str_bytes(l.address.host.as_str());
                listener.port = l.address.port;
                listener
            })
            .collect();
        response.nodes = vec![node];
    }
    response
}

/// Kafka's answer to a request for anything but the metadata partition.
fn unknown_partition() -> DescribeQuorumResponse {
    let mut partition = PartitionData::default();
    partition.partition_index = METADATA_PARTITION;
    partition.error_code = ResponseError::UnknownTopicOrPartition.code();
    let mut response = DescribeQuorumResponse::default();
    response.topics = vec![metadata_topic(partition)];
    response
}

/// What this single-voter quorum reports.
#[derive(Debug, Clone, Copy)]
struct Quorum {
    node_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
}

impl Quorum {
    fn partition(self, now_ms: i64) -> PartitionData {
        let mut leader = ReplicaState::default();
        leader.replica_id = BrokerId(self.node_id);
        leader.log_end_offset = self.high_watermark;
        leader.last_fetch_timestamp = now_ms;
        leader.last_caught_up_timestamp = now_ms;
        let mut partition = PartitionData::default();
        partition.partition_index = METADATA_PARTITION;
        partition.leader_id = BrokerId(self.node_id);
        partition.leader_epoch = self.leader_epoch;
        partition.high_watermark = self.high_watermark;
        partition.current_voters = vec![leader];
        partition
    }
}

/// Kafka serves exactly one topic with exactly one partition: its own.
fn names_the_metadata_partition(request: &DescribeQuorumRequest) -> bool {
    match request.topics.as_slice() {
        [topic] => {
            topic.topic_name.as_str() == METADATA_TOPIC
                && matches!(topic.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION)
        }
        _ => false,
    }
}

fn metadata_topic(partition: PartitionData) -> TopicData {
    let mut topic = TopicData::default();
    topic.topic_name = topic_name(METADATA_TOPIC);
    topic.partitions = vec![partition];
    topic
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::messages::describe_quorum_request;

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn request(topic: &str, partition: i32) -> DescribeQuorumRequest {
        let mut p = describe_quorum_request::PartitionData::default();
        p.partition_index = partition;
        let mut t = describe_quorum_request::TopicData::default();
        t.topic_name = topic_name(topic);
        t.partitions = vec![p];
        let mut request = DescribeQuorumRequest::default();
        request.topics = vec![t];
        request
    }

    #[test]
    fn this_node_leads_alone_at_every_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::broker::open_for_test(dir.path());
        let end = broker.metadata.image().offset() + 1;
        for version in 0..=2 {
            let response = handle(
                &broker.config,
                &broker.metadata,
                request(METADATA_TOPIC, 0),
                version,
                NOW,
            );
            let partition = &response.topics[0].partitions[0];
            assert_eq!(response.topics[0].topic_name.as_str(), METADATA_TOPIC);
            assert_eq!(partition.error_code, 0);
            assert_eq!(partition.leader_id, BrokerId(1));
            assert_eq!(partition.leader_epoch, 0);
            assert_eq!(partition.high_watermark, end);
            let voters: Vec<_> = partition
                .current_voters
                .iter()
                .map(|v| (v.replica_id, v.log_end_offset, v.last_fetch_timestamp))
                .collect();
            assert_eq!(voters, [(BrokerId(1), end, NOW)]);
            assert!(partition.observers.is_empty());
            assert_eq!(response.nodes.len(), usize::from(version >= 2));
            let encoded =
                runnel_protocol::response::encode(ApiKey::DescribeQuorum, version, 1, &response);
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
        }
    }

    #[test]
    fn another_partition_is_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let broker = crate::broker::open_for_test(dir.path());
        for request in [
            request("orders", 0),
            request(METADATA_TOPIC, 1),
            DescribeQuorumRequest::default(),
        ] {
            let response = handle(&broker.config, &broker.metadata, request, 2, NOW);
            let partition = &response.topics[0].partitions[0];
            assert_eq!(
                partition.error_code,
                ResponseError::UnknownTopicOrPartition.code()
            );
            assert_eq!(response.topics[0].topic_name.as_str(), METADATA_TOPIC);
            assert!(partition.current_voters.is_empty());
        }
    }
}
