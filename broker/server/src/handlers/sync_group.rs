//! SyncGroup: the leader's assignments reach every member; followers wait
//! for the leader.

use super::GroupPath;
use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use runnel_coordinator::group::{GroupError, SyncRequest, SyncResponse};
use runnel_http::error_chain;

use super::str_bytes;
use crate::error_codes;

pub async fn handle(
    cx: &GroupPath<'_>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group_id = request.group_id.0.to_string();
    if let Some(error) = cx.not_coordinator(&group_id) {
        let mut response = SyncGroupResponse::default();
        response.error_code = error.code();
        return response;
    }
    let sync = SyncRequest {
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|i| i.to_string()),
        generation_id: request.generation_id,
        protocol_type: request.protocol_type.map(|p| p.to_string()),
        protocol_name: request.protocol_name.map(|p| p.to_string()),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let reply = cx
        .groups
        .sync(&group_id, sync)
        // The group went away under the request.
        .wait(|| SyncResponse::error(GroupError::CoordinatorNotAvailable));
    let reply = reply.await;
    let mut store_error = None;
    if reply.error.is_none() {
        // The leader's sync stored the group: on disk and in the ISR before
        // it is answered, as Kafka's storeGroup. A member told of a
        // generation the next coordinator would not know must rejoin
        // instead (NOT_COORDINATOR when leadership moved meanwhile).
        let stored = tokio::task::block_in_place(|| cx.flush_group_stores(super::now_ms()));
        if let Err(err) = stored {
            tracing::warn!(group = group_id, error = %error_chain(&err), "cannot store the group in __consumer_offsets; the member is told to rejoin");
            store_error = Some(error_codes::offsets(&err));
        }
    }
    let mut response = SyncGroupResponse::default();
    response.error_code = match store_error {
        Some(error) => error.code(),
        None => error_codes::group_code(reply.error),
    };
    if store_error.is_some() {
        return response;
    }
    if version >= 5 {
        response.protocol_type = reply.protocol_type.map(str_bytes);
        response.protocol_name = reply.protocol_name.map(str_bytes);
    }
    response.assignment = reply.assignment;
    response
}
