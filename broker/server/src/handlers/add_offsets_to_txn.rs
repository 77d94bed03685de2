//! AddOffsetsToTxn v0-3: a transactional producer will commit a group's
//! offsets in its transaction: the group's `__consumer_offsets` partition
//! joins the transaction, so EndTxn writes its marker there too.

use super::TxnPath;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use runnel_http::error_chain;

use crate::error_codes;
use crate::group_coordinator::OFFSETS_TOPIC;

pub fn handle(
    cx: &TxnPath<'_>,
    request: AddOffsetsToTxnRequest,
    now_ms: i64,
) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    if let Err(err) = cx.internal.ensure_offsets(now_ms) {
        tracing::error!(error = %error_chain(&err), "cannot create the offsets topic");
        // COORDINATOR_NOT_AVAILABLE: the client retries.
        response.error_code = 15;
        return response;
    }
    let partition = cx.group_coordinator.partition_of(&request.group_id.0);
    if let Err(err) = cx.txn_coordinator.add_partitions(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        vec![(OFFSETS_TOPIC.to_string(), partition)],
        now_ms,
    ) {
        tracing::debug!(transactional_id = %request.transactional_id.0, error = %error_chain(&err), "AddOffsetsToTxn refused");
        response.error_code = error_codes::txn_request(&err).code();
    }
    response
}
