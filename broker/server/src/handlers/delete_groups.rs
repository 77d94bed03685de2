//! DeleteGroups: an empty group and its committed offsets go (tombstones
//! in `__consumer_offsets`); a group with members stays (NON_EMPTY_GROUP);
//! an unknown one is GROUP_ID_NOT_FOUND.

use super::GroupPath;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use runnel_http::error_chain;

use crate::error_codes;

pub fn handle(
    cx: &GroupPath<'_>,
    request: DeleteGroupsRequest,
    now_ms: i64,
) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for group_id in request.groups_names {
        let id = group_id.0.to_string();
        let mut out = DeletableGroupResult::default();
        out.group_id = group_id;
        let membership = cx.groups.delete(&id);
        out.error_code = match membership {
            Some(Err(error)) => error_codes::group(error).code(),
            _ => match cx.group_coordinator.delete_committed(&id, now_ms) {
                Ok(0) if membership.is_none() => ResponseError::GroupIdNotFound.code(),
                Ok(_) => 0,
                Err(err) => {
                    tracing::error!(group = id, error = %error_chain(&err), "deleting committed offsets failed");
                    ResponseError::CoordinatorNotAvailable.code()
                }
            },
        };
        response.results.push(out);
    }
    response
}
