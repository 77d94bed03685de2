//! OffsetDelete: removes a group's committed offsets for some partitions
//! (tombstones in `__consumer_offsets`), as Kafka's `handleDeleteOffsets`:
//! any of an empty group's, and of a consumer group with members only
//! those of topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for
//! the others); a group with members whose subscriptions cannot be read
//! keeps them all (NON_EMPTY_GROUP); an unknown group is GROUP_ID_NOT_FOUND.

use super::GroupPath;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use runnel_http::error_chain;

use crate::groups::OffsetDeletion;

pub fn handle(
    cx: &GroupPath<'_>,
    request: OffsetDeleteRequest,
    now_ms: i64,
) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let mut response = OffsetDeleteResponse::default();
    let deletion = if group.is_empty() {
        response.error_code = ResponseError::InvalidGroupId.code();
        return response;
    } else {
        match cx.groups.offset_deletion(&group) {
            Some(deletion) => deletion,
            None if cx.group_coordinator.committed_groups().contains(&group) => OffsetDeletion::Any,
            None => OffsetDeletion::NotFound,
        }
    };
    match deletion {
        OffsetDeletion::NotFound => {
            response.error_code = ResponseError::GroupIdNotFound.code();
            return response;
        }
        OffsetDeletion::NonEmpty => {
            response.error_code = ResponseError::NonEmptyGroup.code();
            return response;
        }
        OffsetDeletion::Any | OffsetDeletion::Unsubscribed(_) => {}
    }
    let mut deleting = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let subscribed =
            matches!(&deletion, OffsetDeletion::Unsubscribed(topics) if topics.contains(&name));
        let mut out = OffsetDeleteResponseTopic::default();
        out.name = topic.name;
        for partition in topic.partitions {
            let index = partition.partition_index;
            let mut p = OffsetDeleteResponsePartition::default();
            p.partition_index = index;
            p.error_code = if !cx.partition_exists(&name, index) {
                ResponseError::UnknownTopicOrPartition.code()
            } else if subscribed {
                ResponseError::GroupSubscribedToTopic.code()
            } else {
                deleting.push((name.clone(), index));
                0
            };
            out.partitions.push(p);
        }
        response.topics.push(out);
    }
    if let Err(err) = cx
        .group_coordinator
        .delete_offsets(&group, &deleting, now_ms)
    {
        tracing::error!(group, error = %error_chain(&err), "deleting committed offsets failed");
        response.error_code = ResponseError::CoordinatorNotAvailable.code();
        response.topics.clear();
    }
    response
}
