//! AddPartitionsToTxn v0-3 (the client's form): a transactional producer
//! names the partitions it is about to write. Each partition is answered:
//! UNKNOWN_TOPIC_OR_PARTITION for one that does not exist (and
//! OPERATION_NOT_ATTEMPTED for the rest, as Kafka), else the transaction's
//! answer for all.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};

use crate::broker::Broker;

pub fn handle(
    broker: &Broker,
    request: AddPartitionsToTxnRequest,
    now_ms: i64,
) -> AddPartitionsToTxnResponse {
    let wanted: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let unknown: Vec<&(String, i32)> = wanted
        .iter()
        .filter(|(topic, partition)| broker.partition(topic, *partition).is_none())
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
        match broker.add_partitions_to_txn(
            &request.v3_and_below_transactional_id.0,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            wanted.clone(),
            now_ms,
        ) {
            Ok(()) => 0,
            Err(err) => {
                tracing::debug!(transactional_id = %request.v3_and_below_transactional_id.0, error = %err, "AddPartitionsToTxn refused");
                err.code()
            }
        }
    } else {
        0
    };
    let mut response = AddPartitionsToTxnResponse::default();
    response.results_by_topic_v3_and_below = request
        .v3_and_below_topics
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
                    result.partition_error_code = code_for(&(t.name.0.to_string(), *p), all);
                    result
                })
                .collect();
            topic
        })
        .collect();
    response
}
