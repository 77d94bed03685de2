//! Heartbeat: keeps a member in its group and tells it when to rejoin.

use super::GroupPath;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use runnel_coordinator::group;

use crate::error_codes;

pub fn handle(cx: &GroupPath<'_>, request: HeartbeatRequest) -> HeartbeatResponse {
    if let Some(error) = cx.not_coordinator(&request.group_id.0) {
        let mut response = HeartbeatResponse::default();
        response.error_code = error.code();
        return response;
    }
    let beat = group::HeartbeatRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation_id: request.generation_id,
    };
    let mut response = HeartbeatResponse::default();
    response.error_code =
        error_codes::group_code(cx.groups.heartbeat(&request.group_id.0, &beat).err());
    response
}
