//! AddPartitionsToTxn: a transactional producer names the partitions it is
//! about to write. Each partition is answered: UNKNOWN_TOPIC_OR_PARTITION
//! for one that does not exist (and OPERATION_NOT_ATTEMPTED for the rest,
//! as Kafka), else the transaction's answer for all. v0-3 carry one
//! transaction (clients); v4 a batch of them (brokers), each either added
//! or, with `verify_only`, checked to be in the transaction already.

use super::TxnPath;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnResult,
    AddPartitionsToTxnTopicResult,
};
use runnel_coordinator::txn::TxnError;
use runnel_http::error_chain;

use crate::error_codes;

pub fn handle(
    cx: &TxnPath<'_>,
    request: AddPartitionsToTxnRequest,
    version: i16,
    now_ms: i64,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    if version >= 4 {
        response.results_by_transaction = request
            .transactions
            .into_iter()
            .map(|txn| {
                let topic_results = if txn.verify_only {
                    let wanted = partitions_of(&txn.topics);
                    let codes = verify(
                        cx,
                        &txn.transactional_id.0,
                        txn.producer_id.0,
                        txn.producer_epoch,
                        &wanted,
                    );
                    results(&txn.topics, |tp| {
                        wanted.iter().position(|w| w == tp).map_or(0, |i| codes[i])
                    })
                } else {
                    add(
                        cx,
                        &txn.transactional_id.0,
                        txn.producer_id.0,
                        txn.producer_epoch,
                        &txn.topics,
                        now_ms,
                    )
                };
                let mut result = AddPartitionsToTxnResult::default();
                result.transactional_id = txn.transactional_id;
                result.topic_results = topic_results;
                result
            })
            .collect();
        return response;
    }
    response.results_by_topic_v3_and_below = add(
        cx,
        &request.v3_and_below_transactional_id.0,
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
        &request.v3_and_below_topics,
        now_ms,
    );
    response
}

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

/// `verify_only`: each partition answered 0 when it is in the producer's
/// open transaction, INVALID_TXN_STATE when not, or the producer's error.
fn verify(
    cx: &TxnPath<'_>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    wanted: &[(String, i32)],
) -> Vec<i16> {
    match cx.txn_coordinator.verify_partitions(
        transactional_id,
        producer_id,
        producer_epoch,
        wanted,
    ) {
        Ok(held) => held
            .into_iter()
            .map(|held| {
                if held {
                    0
                } else {
                    error_codes::txn(TxnError::InvalidTxnState).code()
                }
            })
            .collect(),
        Err(err) => vec![error_codes::txn_request(&err).code(); wanted.len()],
    }
}

/// Each partition of `topics` answered with `code_for` it.
fn results(
    topics: &[AddPartitionsToTxnTopic],
    code_for: impl Fn(&(String, i32)) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            let mut topic = AddPartitionsToTxnTopicResult::default();
            topic.name = t.name.clone();
            topic.results_by_partition = t
                .partitions
                .iter()
                .map(|p| {
                    let mut result = AddPartitionsToTxnPartitionResult::default();
                    result.partition_index = *p;
                    result.partition_error_code = code_for(&(t.name.0.to_string(), *p));
                    result
                })
                .collect();
            topic
        })
        .collect()
}

/// Adds the partitions of one transaction; the answer per partition.
fn add(
    cx: &TxnPath<'_>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    now_ms: i64,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let unknown: Vec<&(String, i32)> = wanted
        .iter()
        .filter(|(topic, partition)| cx.metadata.image().partition(topic, *partition).is_none())
        .collect();
    let code_for = |tp: &(String, i32), all: i16| {
        if unknown.is_empty() {
            all
        } else if unknown.contains(&tp) {
            ResponseError::UnknownTopicOrPartition.code()
        } else {
            ResponseError::OperationNotAttempted.code()
        }
    };
    let all = if unknown.is_empty() {
        match cx.txn_coordinator.add_partitions(
            transactional_id,
            producer_id,
            producer_epoch,
            wanted.clone(),
            now_ms,
        ) {
            Ok(()) => 0,
            Err(err) => {
                tracing::debug!(transactional_id, error = %error_chain(&err), "AddPartitionsToTxn refused");
                error_codes::txn_request(&err).code()
            }
        }
    } else {
        0
    };
    results(topics, |tp| code_for(tp, all))
}
