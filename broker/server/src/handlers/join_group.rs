//! JoinGroup: held until the group's rebalance answers it (the group's
//! state machine lives in runnel-coordinator; see groups.rs).

use super::GroupPath;
use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use runnel_coordinator::group::{GroupError, JoinRequest, JoinResponse};
use uuid::Uuid;

use super::str_bytes;
use crate::error_codes;

pub async fn handle(
    cx: &GroupPath<'_>,
    request: JoinGroupRequest,
    version: i16,
    client_id: &str,
    peer: std::net::SocketAddr,
) -> JoinGroupResponse {
    let group_id = request.group_id.0.to_string();
    if let Some(error) = cx.not_coordinator(&group_id) {
        let mut response = JoinGroupResponse::default();
        response.error_code = error.code();
        response.member_id = request.member_id;
        if version < 7 {
            response.protocol_name = Some(str_bytes(""));
        }
        return response;
    }
    let rebalance_timeout_ms = if version >= 1 {
        request.rebalance_timeout_ms
    } else {
        request.session_timeout_ms
    };
    let join = JoinRequest {
        api_version: version,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        client_id: client_id.to_string(),
        // As Java's InetAddress.toString(), which Kafka reports.
        client_host: format!("/{}", peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        new_member_id: format!("{client_id}-{}", Uuid::new_v4()),
    };
    let member_id = join.member_id.clone();
    let reply = cx
        .groups
        .join(&group_id, join)
        // The group went away under the request.
        .wait(|| JoinResponse::error(GroupError::CoordinatorNotAvailable, &member_id));
    let reply = reply.await;
    tracing::debug!(
        group = group_id,
        member_id = reply.member_id,
        error = ?reply.error,
        generation = reply.generation_id,
        leader = reply.leader,
        members = reply.members.len(),
        "join answered"
    );
    encode(reply, version)
}

fn encode(reply: JoinResponse, version: i16) -> JoinGroupResponse {
    let mut response = JoinGroupResponse::default();
    response.error_code = error_codes::group_code(reply.error);
    response.generation_id = reply.generation_id;
    if version >= 7 {
        response.protocol_type = reply.protocol_type.map(str_bytes);
    }
    response.protocol_name = reply.protocol_name.map(str_bytes);
    if version < 7 && response.protocol_name.is_none() {
        response.protocol_name = Some(str_bytes(""));
    }
    response.leader = str_bytes(reply.leader);
    if version >= 9 {
        response.skip_assignment = reply.skip_assignment;
    }
    response.member_id = str_bytes(reply.member_id);
    response.members = reply
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = str_bytes(m.member_id);
            if version >= 5 {
                member.group_instance_id = m.group_instance_id.map(str_bytes);
            }
            member.metadata = m.metadata;
            member
        })
        .collect();
    response
}
