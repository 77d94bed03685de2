//! DeleteTopics: by name (v0-5) or by name or topic id (v6).

use super::Admin;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use uuid::Uuid;

use super::create_topics::error_code;
use super::{str_bytes, topic_name};

pub fn handle(cx: &Admin<'_>, request: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in wanted {
        let mut out = DeletableTopicResult::default();
        if version >= 6 {
            out.topic_id = id;
        }
        let name = name.or_else(|| cx.topics.topic_by_id(id).map(|t| t.name));
        match name {
            None => out.error_code = ResponseError::UnknownTopicId.code(),
            Some(name) => {
                out.name = Some(topic_name(&name));
                match cx.topics.delete_topic(&name) {
                    Ok(topic) if version >= 6 => out.topic_id = topic.id,
                    Ok(_) => {}
                    Err(err) => {
                        out.error_code = error_code(&err).code();
                        if version >= 5 {
                            out.error_message = Some(str_bytes(err.to_string()));
                        }
                    }
                }
            }
        }
        response.responses.push(out);
    }
    response
}
