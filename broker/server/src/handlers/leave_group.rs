//! LeaveGroup: one member (v0-2) or a batch (v3+) leaves; the group
//! rebalances without them.

use super::GroupPath;
use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use runnel_coordinator::group::LeaveMember;

use crate::error_codes;

pub fn handle(cx: &GroupPath<'_>, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    if let Some(error) = cx.not_coordinator(&request.group_id.0) {
        let mut response = LeaveGroupResponse::default();
        response.error_code = error.code();
        return response;
    }
    let members: Vec<LeaveMember> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| LeaveMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|i| i.to_string()),
            })
            .collect()
    } else {
        vec![LeaveMember {
            member_id: request.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let outcome = cx.groups.leave(&request.group_id.0, &members);
    let mut response = LeaveGroupResponse::default();
    response.error_code = error_codes::group_code(outcome.error);
    if version >= 3 {
        response.members = request
            .members
            .into_iter()
            .zip(outcome.member_errors)
            .map(|(m, error)| {
                let mut out = MemberResponse::default();
                out.member_id = m.member_id;
                out.group_instance_id = m.group_instance_id;
                out.error_code = error_codes::group_code(error);
                out
            })
            .collect();
    } else if let Some(Some(error)) = outcome.member_errors.first().copied() {
        response.error_code = error_codes::group(error).code();
    }
    response
}
