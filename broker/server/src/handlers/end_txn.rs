//! EndTxn v0-3: commits or aborts the producer's open transaction; the
//! markers are in every partition of it before the answer.

use super::TxnPath;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use runnel_http::error_chain;

use crate::error_codes;

pub fn handle(cx: &TxnPath<'_>, request: EndTxnRequest, now_ms: i64) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    match cx.txn_coordinator.end_txn(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
        now_ms,
    ) {
        Ok(ended) => cx.group_coordinator.txns_ended(ended),
        Err(err) => {
            tracing::debug!(transactional_id = %request.transactional_id.0, error = %error_chain(&err), "EndTxn refused");
            response.error_code = error_codes::txn_request(&err).code();
        }
    }
    response
}
