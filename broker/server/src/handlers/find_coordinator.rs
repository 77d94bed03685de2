//! FindCoordinator: this broker coordinates every group and every
//! transactional id. v4 answers a batch of keys.

use super::Coordinators;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use runnel_http::error_chain;

use super::str_bytes;

/// Kafka's `CoordinatorType`: 0 group, 1 transaction.
const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub fn handle(
    cx: &Coordinators<'_>,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let (host, port) = cx.config.advertised();
    let node = BrokerId(cx.config.node_id);
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
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let mut c = Coordinator::default();
                c.key = key;
                match error {
                    None => {
                        c.node_id = node;
                        c.host = str_bytes(host);
                        c.port = port as i32;
                    }
                    Some(error) => {
                        c.node_id = BrokerId(-1);
                        c.port = -1;
                        c.error_code = error.code();
                    }
                }
                c
            })
            .collect();
        return response;
    }
    match error {
        None => {
            response.node_id = node;
            response.host = str_bytes(host);
            response.port = port as i32;
        }
        Some(error) => {
            response.node_id = BrokerId(-1);
            response.port = -1;
            response.error_code = error.code();
        }
    }
    response
}
