//! ListGroups: every group with members or committed offsets, filtered by
//! state from v4 (case-insensitive, as Kafka).

use super::GroupPath;
use std::collections::BTreeMap;

use kafka_protocol::messages::GroupId;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};

use super::str_bytes;

pub fn handle(cx: &GroupPath<'_>, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    // group id -> (protocol type, state)
    let mut groups: BTreeMap<String, (String, String)> = cx
        .group_coordinator
        .committed_groups()
        .into_iter()
        // A group that only commits (an `assign` consumer) has no protocol
        // type, as Kafka lists it; clients call it a "simple" group.
        .map(|g| (g, (String::new(), "Empty".to_string())))
        .collect();
    for described in cx.groups.list() {
        if described.state != "Dead" {
            groups.insert(
                described.group_id,
                (described.protocol_type, described.state.to_string()),
            );
        }
    }
    let wanted: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let mut response = ListGroupsResponse::default();
    for (id, (protocol_type, state)) in groups {
        if version >= 4 && !wanted.is_empty() && !wanted.contains(&state.to_lowercase()) {
            continue;
        }
        let mut listed = ListedGroup::default();
        listed.group_id = GroupId(str_bytes(id));
        listed.protocol_type = str_bytes(protocol_type);
        if version >= 4 {
            listed.group_state = str_bytes(state);
        }
        response.groups.push(listed);
    }
    response
}
