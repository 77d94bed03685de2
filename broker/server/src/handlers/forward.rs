//! Admin requests that reach a broker which is not the active controller
//! are sent on to it as they came, as Kafka's brokers forward them
//! (KIP-590): DeleteTopics, CreatePartitions, ElectLeaders,
//! AlterPartitionReassignments, AlterConfigs and IncrementalAlterConfigs. The controller's answer goes back to the
//! client as it is, once this broker's image holds what the controller
//! committed (when the answer says something changed), so the client's
//! next Metadata here sees it. CreateTopics is forwarded by `topic_admin`
//! (auto-created and internal topics take that path too).
//!
//! When the controller can't be reached in time the request is answered
//! here, where each resource gets NOT_CONTROLLER, which clients retry.

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsResponse, AlterPartitionReassignmentsResponse, ApiKey, CreatePartitionsResponse,
    DeleteTopicsResponse, ElectLeadersResponse, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::Decodable;
use runnel_http::error_chain;
use runnel_protocol::request::Request;

use super::{HandlerError, Reply};
use crate::broker::Broker;

/// Whether `api` is forwarded to the controller by this module.
pub fn is_forwarded(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::ElectLeaders
            | ApiKey::AlterPartitionReassignments
            | ApiKey::AlterConfigs
            | ApiKey::IncrementalAlterConfigs
    )
}

/// The controller's answer to `request`; `None` when this node is the
/// controller (or no quorum runs), or the controller could not answer:
/// the request is then handled here.
pub async fn to_controller(
    broker: &Broker,
    request: &Request,
) -> Result<Option<Reply>, HandlerError> {
    let Some(quorum) = broker.metadata.quorum() else {
        return Ok(None);
    };
    if quorum.is_controller() {
        return Ok(None);
    }
    let (api, version) = (request.api_key, request.api_version);
    let before = quorum.handle().status().high_watermark;
    let answer = match quorum
        .forward_encoded(api, version, request.body.clone())
        .await
    {
        Ok(answer) => answer,
        Err(err) => {
            tracing::warn!(?api, error = %error_chain(&err), "cannot forward a request to the controller; answering here");
            return Ok(None);
        }
    };
    if changed_something(api, version, &answer) && !quorum.wait_applied_past(before).await {
        tracing::warn!(
            ?api,
            "the controller made the change, but this node's image does not hold it yet"
        );
    }
    Ok(Some(Reply::Frame(frame(request, &answer)?)))
}

/// Whether the controller's answer reports a success for any resource.
fn changed_something(api: ApiKey, version: i16, answer: &Bytes) -> bool {
    let mut body = answer.clone();
    match api {
        ApiKey::DeleteTopics => DeleteTopicsResponse::decode(&mut body, version)
            .is_ok_and(|r| r.responses.iter().any(|t| t.error_code == 0)),
        ApiKey::CreatePartitions => CreatePartitionsResponse::decode(&mut body, version)
            .is_ok_and(|r| r.results.iter().any(|t| t.error_code == 0)),
        ApiKey::AlterPartitionReassignments => {
            AlterPartitionReassignmentsResponse::decode(&mut body, version).is_ok_and(|r| {
                r.error_code == 0
                    && r.responses
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .any(|p| p.error_code == 0)
            })
        }
        ApiKey::ElectLeaders => ElectLeadersResponse::decode(&mut body, version).is_ok_and(|r| {
            r.replica_election_results
                .iter()
                .flat_map(|t| &t.partition_result)
                .any(|p| p.error_code == 0)
        }),
        ApiKey::AlterConfigs => AlterConfigsResponse::decode(&mut body, version)
            .is_ok_and(|r| r.responses.iter().any(|t| t.error_code == 0)),
        ApiKey::IncrementalAlterConfigs => {
            IncrementalAlterConfigsResponse::decode(&mut body, version)
                .is_ok_and(|r| r.responses.iter().any(|t| t.error_code == 0))
        }
        _ => false,
    }
}

/// The response frame for `request` around the controller's `answer`.
fn frame(request: &Request, answer: &Bytes) -> Result<bytes::BytesMut, HandlerError> {
    use bytes::BufMut;
    use runnel_protocol::response::{header_bytes, put_header};
    let header_version = request.api_key.response_header_version(request.api_version);
    let size = header_bytes(header_version) + answer.len();
    let prefix = i32::try_from(size).map_err(|_| HandlerError::ForwardedTooLarge { size })?;
    let mut buf = bytes::BytesMut::with_capacity(runnel_protocol::frame::SIZE_PREFIX_BYTES + size);
    buf.put_i32(prefix);
    put_header(&mut buf, header_version, request.header.correlation_id);
    buf.extend_from_slice(answer);
    Ok(buf)
}
