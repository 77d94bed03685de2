//! DescribeGroups: state, protocol and members of each group. A group that
//! only has committed offsets is `Empty`; one unknown is `Dead`, as Kafka
//! answers up to v5.

use super::GroupPath;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};

use super::str_bytes;

pub fn handle(
    cx: &GroupPath<'_>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for group_id in request.groups {
        let id = group_id.0.to_string();
        let mut out = DescribedGroup::default();
        out.group_id = group_id;
        match cx.groups.describe(&id) {
            Some(described) => {
                out.group_state = str_bytes(described.state);
                out.protocol_type = str_bytes(described.protocol_type);
                out.protocol_data = str_bytes(described.protocol);
                out.members = described
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = str_bytes(m.member_id);
                        if version >= 4 {
                            member.group_instance_id = m.group_instance_id.map(str_bytes);
                        }
                        member.client_id = str_bytes(m.client_id);
                        member.client_host = str_bytes(m.client_host);
                        member.member_metadata = m.metadata;
                        member.member_assignment = m.assignment;
                        member
                    })
                    .collect();
            }
            None if !cx.group_coordinator.committed_partitions(&id).is_empty() => {
                // No protocol type: a "simple" group, as Kafka describes it.
                out.group_state = str_bytes("Empty");
            }
            None => out.group_state = str_bytes("Dead"),
        }
        response.groups.push(out);
    }
    response
}
