//! InitProducerId: without a transactional id, a new producer id at epoch
//! 0 for every request, as Kafka does (a producer that asks with its
//! current id and epoch, KIP-360, gets a new id too); with one, the
//! transaction coordinator's id and next epoch (txn_coordinator/), fencing the
//! previous producer of that transactional id.

use super::TxnPath;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::ProducerId;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use runnel_http::error_chain;

use crate::error_codes;

pub fn handle(
    cx: &TxnPath<'_>,
    request: InitProducerIdRequest,
    now_ms: i64,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(transactional_id) = &request.transactional_id {
        if let Err(err) = cx.internal.ensure_transactions(now_ms) {
            tracing::error!(error = %error_chain(&err), "cannot create the transaction state topic");
            response.error_code = ResponseError::CoordinatorNotAvailable.code();
            return response;
        }
        return match cx.txn_coordinator.init_producer(
            &transactional_id.0,
            request.transaction_timeout_ms,
            now_ms,
        ) {
            Ok(initialized) => {
                cx.group_coordinator.txns_ended(initialized.ended);
                response
                    .with_producer_id(ProducerId(initialized.producer_id))
                    .with_producer_epoch(initialized.producer_epoch)
            }
            Err(err) => {
                tracing::debug!(transactional_id = %transactional_id.0, error = %error_chain(&err), "InitProducerId refused");
                response.error_code = error_codes::txn_request(&err).code();
                response
            }
        };
    }
    match cx.producer_ids.next(cx.metadata, now_ms) {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "cannot hand out a producer id");
            response.error_code = producer_ids_error(&err).code();
            response
        }
    }
}

/// The error a client gets when no producer id block could be taken: a
/// controller that can't be reached or has not committed in time is
/// retriable (Kafka answers the same), a failing metadata log is a
/// storage error.
fn producer_ids_error(err: &crate::cluster_metadata::MetadataError) -> ResponseError {
    use crate::cluster_metadata::MetadataError;
    match err {
        MetadataError::NotController { .. }
        | MetadataError::Forward(_)
        | MetadataError::ControllerRefused { .. }
        | MetadataError::CommitTimeout { .. }
        | MetadataError::Propose(_) => ResponseError::CoordinatorLoadInProgress,
        _ => ResponseError::KafkaStorageError,
    }
}
