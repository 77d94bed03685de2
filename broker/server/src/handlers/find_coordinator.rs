//! FindCoordinator: the coordinator of a group (a transactional id) is
//! the leader of its `__consumer_offsets` (`__transaction_state`)
//! partition, as the metadata image has it, named by the listener clients
//! use; with no registered brokers (a quorum of one) it is this broker.
//! v4 answers a batch of keys.

use super::Coordinators;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use runnel_http::error_chain;

use runnel_coordinator::partition::coordinator_partition;
use runnel_metadata::MetadataImage;

use super::str_bytes;
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::txn_coordinator::TRANSACTION_TOPIC;

/// Kafka's `CoordinatorType`: 0 group, 1 transaction.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub fn handle(
    cx: &Coordinators<'_>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let error = match request.key_type {
        GROUP => match cx.internal.ensure_offsets(super::now_ms()) {
            Ok(()) => None,
            Err(err) => {
                tracing::error!(error = %error_chain(&err), "cannot create the offsets topic");
                Some(ResponseError::CoordinatorNotAvailable)
            }
        },
        TRANSACTION => match cx.internal.ensure_transactions(super::now_ms()) {
            Ok(()) => None,
            Err(err) => {
                tracing::error!(error = %error_chain(&err), "cannot create the transaction state topic");
                Some(ResponseError::CoordinatorNotAvailable)
            }
        },
        _ => Some(ResponseError::InvalidRequest),
    };
    let topic = if request.key_type == TRANSACTION {
        TRANSACTION_TOPIC
    } else {
        OFFSETS_TOPIC
    };
    let image = cx.metadata.image();
    let locate = |key: &str| -> Result<(i32, String, u16), ResponseError> {
        if let Some(error) = error {
            return Err(error);
        }
        locate(cx, &image, topic, key)
    };
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let mut c = Coordinator::default();
                match locate(key.as_str()) {
                    Ok((node, host, port)) => {
                        c.node_id = BrokerId(node);
                        c.host = str_bytes(&host);
                        c.port = i32::from(port);
                    }
                    Err(error) => {
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = error.code();
                    }
                }
                c.key = key;
                c
            })
            .collect();
        return response;
    }
    match locate(request.key.as_str()) {
        Ok((node, host, port)) => {
            response.node_id = BrokerId(node);
            response.host = str_bytes(&host);
            response.port = i32::from(port);
        }
        Err(error) => {
            response.node_id = BrokerId(-1);
            response.port = -1;
            response.error_code = error.code();
        }
    }
    response
}

/// The leader of `key`'s partition of `topic` and its client address.
fn locate(
    cx: &Coordinators<'_>,
    image: &MetadataImage,
    topic: &str,
    key: &str,
) -> Result<(i32, String, u16), ResponseError> {
    if image.brokers().next().is_none() {
        let (host, port) = cx.config.advertised();
        return Ok((cx.config.node_id, host.to_owned(), port));
    }
    let partitions = image
        .topic(topic)
        .map_or(0, |t| i32::try_from(t.partitions.len()).unwrap_or(i32::MAX));
    if partitions == 0 {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    let partition = coordinator_partition(key, partitions);
    let leader = image.partition(topic, partition).map_or(-1, |p| p.leader);
    let listener = cx.config.client_listener_name();
    image
        .broker(leader)
        .filter(|b| !b.fenced)
        .and_then(|b| b.endpoints.iter().find(|e| e.name == listener))
        .map(|e| (leader, e.host.clone(), e.port))
        .ok_or(ResponseError::CoordinatorNotAvailable)
}
