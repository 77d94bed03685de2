//! CreatePartitions: a topic's partition count only grows.

use super::Admin;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};

use super::create_topics::error_code;
use super::str_bytes;

pub fn handle(
    cx: &Admin<'_>,
    request: CreatePartitionsRequest,
    now_ms: i64,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut out = CreatePartitionsTopicResult::default();
        out.name = topic.name;
        if let Err(err) =
            cx.topics
                .add_partitions(&name, topic.count, request.validate_only, now_ms)
        {
            out.error_code = error_code(&err).code();
            out.error_message = Some(str_bytes(err.to_string()));
        }
        response.results.push(out);
    }
    response
}
