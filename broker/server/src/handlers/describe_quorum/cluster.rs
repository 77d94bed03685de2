//! DescribeQuorum on a node of a cluster (`process.roles` set): the active
//! controller answers from its quorum driver (its epoch, high watermark
//! and each voter's log end and last fetch as it last saw them); any
//! other node forwards the request to it, as Kafka's brokers do, and a
//! request on the CONTROLLER listener of a node that does not lead gets
//! NOT_LEADER_OR_FOLLOWER naming the leader it knows.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::describe_quorum_request::DescribeQuorumRequest;
use kafka_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Listener, Node, PartitionData, ReplicaState,
};
use runnel_http::error_chain;
use runnel_quorum::QuorumHandle;

use super::{METADATA_PARTITION, metadata_topic, names_the_metadata_partition, unknown_partition};
use crate::cluster_metadata::QuorumBackend;
use crate::config::BrokerConfig;
use crate::handlers::str_bytes;

/// Whether a node that does not lead sends the request on to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotLeader {
    Forward,
    Refuse,
}

pub async fn handle(
    config: &BrokerConfig,
    quorum: &QuorumBackend,
    request: DescribeQuorumRequest,
    version: i16,
    now_ms: i64,
    not_leader: NotLeader,
) -> DescribeQuorumResponse {
    if !names_the_metadata_partition(&request) {
        return unknown_partition();
    }
    let handle = quorum.handle();
    match describe_as_leader(config, handle, version, now_ms).await {
        Some(response) => response,
        None if not_leader == NotLeader::Forward => {
            match quorum.forward_async(request, version).await {
                Ok(response) => response,
                Err(err) => {
                    tracing::debug!(error = %error_chain(&err), "cannot forward DescribeQuorum to the controller");
                    refused(handle, ResponseError::RequestTimedOut)
                }
            }
        }
        None => refused(handle, ResponseError::NotLeaderOrFollower),
    }
}

/// The answer of the leader; `None` when this node does not lead.
async fn describe_as_leader(
    config: &BrokerConfig,
    handle: &QuorumHandle,
    version: i16,
    now_ms: i64,
) -> Option<DescribeQuorumResponse> {
    let status = handle.status();
    let voters = handle.voter_states().await.ok()??;
    let quorum = config.quorum.as_ref()?;
    let high_watermark = i64::try_from(status.high_watermark).unwrap_or(i64::MAX);
    let mut partition = PartitionData::default();
    partition.partition_index = METADATA_PARTITION;
    partition.leader_id = BrokerId(config.node_id);
    partition.leader_epoch = i32::try_from(status.epoch).unwrap_or(i32::MAX);
    partition.high_watermark = high_watermark;
    partition.current_voters = quorum
        .voters
        .iter()
        .map(|voter| {
            let mut state = ReplicaState::default();
            state.replica_id = BrokerId(voter.id);
            state.log_end_offset = -1;
            state.last_fetch_timestamp = -1;
            state.last_caught_up_timestamp = -1;
            if let Some(seen) = voters.get(&voter.id) {
                let end = seen.log_end_offset.map_or(-1, |e| e as i64);
                state.log_end_offset = end;
                if let Some(ago) = seen.since_last_fetch {
                    let at = now_ms - i64::try_from(ago.as_millis()).unwrap_or(i64::MAX);
                    state.last_fetch_timestamp = at;
                    if end >= high_watermark {
                        state.last_caught_up_timestamp = at;
                    }
                }
            }
            state
        })
        .collect();
    let mut response = DescribeQuorumResponse::default();
    response.topics = vec![metadata_topic(partition)];
    if version >= 2 {
        let listener_name = quorum
            .controller_listener_names
            .first()
            .map_or("CONTROLLER", String::as_str);
        response.nodes = quorum
            .voters
            .iter()
            .map(|voter| {
                let mut listener = Listener::default();
                listener.name = str_bytes(listener_name);
                listener.host = str_bytes(voter.host.as_str());
                listener.port = voter.port;
                let mut node = Node::default();
                node.node_id = BrokerId(voter.id);
                node.listeners = vec![listener];
                node
            })
            .collect();
    }
    Some(response)
}

/// A refusal naming the leader this node knows.
fn refused(handle: &QuorumHandle, error: ResponseError) -> DescribeQuorumResponse {
    let status = handle.status();
    let mut partition = PartitionData::default();
    partition.partition_index = METADATA_PARTITION;
    partition.error_code = error.code();
    partition.leader_id = BrokerId(status.leader_id.unwrap_or(-1));
    partition.leader_epoch = i32::try_from(status.epoch).unwrap_or(i32::MAX);
    let mut response = DescribeQuorumResponse::default();
    response.topics = vec![metadata_topic(partition)];
    response
}
