//! DescribeTransactions v0 and ListTransactions v0-1, as
//! `kafka-transactions.sh --describe` and `--list` use them: each
//! transactional id's state (Kafka's names), producer id and epoch,
//! timeout, start time and partitions; the list filtered by states,
//! producer ids and (v1) how long the transaction has been running.

use super::TxnPath;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState as ListedState,
};
use kafka_protocol::messages::{ProducerId, TopicName};
use runnel_coordinator::txn_log::TxnState;

use super::str_bytes;

pub fn describe(
    cx: &TxnPath<'_>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let all = cx.txn_coordinator.transactions_now();
    let mut response = DescribeTransactionsResponse::default();
    response.transaction_states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let mut state = TransactionState::default();
            match all
                .iter()
                .find(|(known, _)| known.as_str() == id.0.as_str())
            {
                None => {
                    state.error_code = ResponseError::TransactionalIdNotFound.code();
                    state.transaction_state = str_bytes("");
                    state.producer_id = ProducerId(-1);
                    state.producer_epoch = -1;
                    state.transaction_start_time_ms = -1;
                }
                Some((_, txn)) => {
                    state.transaction_state = str_bytes(txn.state.name());
                    state.transaction_timeout_ms = txn.timeout_ms;
                    state.transaction_start_time_ms = txn.start_ms;
                    state.producer_id = ProducerId(txn.producer_id);
                    state.producer_epoch = txn.producer_epoch;
                    state.topics = txn
                        .to_log()
                        .partitions
                        .into_iter()
                        .map(|(topic, partitions)| {
                            let mut data = TopicData::default();
                            data.topic = TopicName(str_bytes(&topic));
                            data.partitions = partitions;
                            data
                        })
                        .collect();
                }
            }
            state.transactional_id = id;
            state
        })
        .collect();
    response
}

pub fn list(
    cx: &TxnPath<'_>,
    request: ListTransactionsRequest,
    version: i16,
    now_ms: i64,
) -> ListTransactionsResponse {
    let all_states = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];
    let mut response = ListTransactionsResponse::default();
    let mut wanted_states = Vec::new();
    for filter in &request.state_filters {
        match all_states.iter().find(|s| s.name() == filter.as_str()) {
            Some(state) => wanted_states.push(*state),
            None => response.unknown_state_filters.push(filter.clone()),
        }
    }
    let duration = if version >= 1 {
        request.duration_filter
    } else {
        -1
    };
    response.transaction_states = cx
        .txn_coordinator
        .transactions_now()
        .into_iter()
        .filter(|(_, t)| request.state_filters.is_empty() || wanted_states.contains(&t.state))
        .filter(|(_, t)| {
            request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .contains(&ProducerId(t.producer_id))
        })
        .filter(|(_, t)| duration < 0 || now_ms.saturating_sub(t.start_ms) >= duration)
        .map(|(id, t)| {
            let mut listed = ListedState::default();
            listed.transactional_id = kafka_protocol::messages::TransactionalId(str_bytes(&id));
            listed.producer_id = ProducerId(t.producer_id);
            listed.transaction_state = str_bytes(t.state.name());
            listed
        })
        .collect();
    response
}
