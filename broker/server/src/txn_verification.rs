//! KIP-890's transaction verification, Kafka's
//! `transaction.partition.verification.enable` (true): before a leader
//! takes the first batch of a producer's transaction in a partition, it
//! asks the transaction coordinator whether the producer added that
//! partition to its open transaction (AddPartitionsToTxn v4 with
//! `verify_only`, on the inter-broker listener; a direct call when this
//! broker is the coordinator). A batch whose transaction is not open there
//! gets INVALID_TXN_STATE and is not written: no marker of its own would
//! ever end it, and the producer's next transaction would commit it.
//!
//! Errors are answered as Kafka answers them to produce requests of
//! clients that predate KIP-890: a coordinator that can't be reached, is
//! moving or is between EndTxn and its markers gives NOT_ENOUGH_REPLICAS
//! (retriable), a fenced producer INVALID_PRODUCER_EPOCH.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use runnel_client::connection::Connection;
use runnel_coordinator::txn::TxnError;

use crate::cluster_metadata::ClusterMetadata;
use crate::error_codes;
use crate::txn_coordinator::{TRANSACTION_TOPIC, TxnCoordinator, TxnRequestError};

const ADD_PARTITIONS_TO_TXN_VERSION: i16 = 4;

/// Why a partition's batch was not verified: the code for the producer
/// and a sentence for the log.
pub type Unverified = (ResponseError, String);

/// The transaction a produce request's batches belong to.
#[derive(Debug, Clone, Copy)]
pub struct TxnOf<'a> {
    pub transactional_id: &'a str,
    pub producer_id: i64,
    pub producer_epoch: i16,
}

#[derive(Debug)]
pub struct TxnVerifier {
    enabled: bool,
    node_id: i32,
    /// The listener brokers talk to each other on.
    listener: String,
    metadata: Arc<ClusterMetadata>,
    coordinator: Arc<TxnCoordinator>,
    /// One connection per coordinator broker, opened when first needed
    /// and dropped when a call on it fails.
    connections: Mutex<HashMap<i32, Connection>>,
}

impl TxnVerifier {
    pub fn new(
        (enabled, node_id, listener): (bool, i32, String),
        metadata: Arc<ClusterMetadata>,
        coordinator: Arc<TxnCoordinator>,
    ) -> Self {
        Self {
            enabled,
            node_id,
            listener,
            metadata,
            coordinator,
            connections: Mutex::default(),
        }
    }

    /// Whether transactional batches are verified at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Asks `txn`'s coordinator whether each of `partitions` is in its
    /// open transaction, within `timeout`: one answer per partition.
    pub async fn verify(
        &self,
        txn: TxnOf<'_>,
        partitions: &[(String, i32)],
        timeout: Duration,
    ) -> Vec<Result<(), Unverified>> {
        let coordinator_partition = self.coordinator.partition_for(txn.transactional_id);
        let leader = self
            .metadata
            .image()
            .partition(TRANSACTION_TOPIC, coordinator_partition)
            .map_or(-1, |p| p.leader);
        let codes = if leader < 0 {
            Err(format!(
                "{TRANSACTION_TOPIC} partition {coordinator_partition} has no leader"
            ))
        } else if leader == self.node_id {
            self.verify_here(txn, partitions).await
        } else {
            match tokio::time::timeout(timeout, self.verify_remote(leader, txn, partitions)).await {
                Ok(answer) => answer,
                Err(_) => Err(format!(
                    "the transaction coordinator (broker {leader}) did not answer within {} ms",
                    timeout.as_millis()
                )),
            }
        };
        match codes {
            Ok(codes) => codes
                .into_iter()
                .zip(partitions)
                .map(|(code, (topic, partition))| refusal(txn, code, (topic, *partition)))
                .collect(),
            Err(why) => {
                let sentence = format!(
                    "cannot verify transactional id {}'s transaction: {why}; retry",
                    txn.transactional_id
                );
                vec![Err((ResponseError::NotEnoughReplicas, sentence)); partitions.len()]
            }
        }
    }

    /// This broker is the coordinator: asked off the async workers (an
    /// EndTxn holds the transaction while its markers are written).
    async fn verify_here(
        &self,
        txn: TxnOf<'_>,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, String> {
        let coordinator = Arc::clone(&self.coordinator);
        let (id, pid, epoch) = (
            txn.transactional_id.to_owned(),
            txn.producer_id,
            txn.producer_epoch,
        );
        let wanted = partitions.to_vec();
        let answer = tokio::task::spawn_blocking(move || {
            coordinator.verify_partitions(&id, pid, epoch, &wanted)
        })
        .await
        .map_err(|err| format!("the verification failed: {err}"))?;
        Ok(match answer {
            Ok(held) => held.into_iter().map(held_code).collect(),
            Err(err) => vec![coordinator_code(&err); partitions.len()],
        })
    }

    async fn verify_remote(
        &self,
        leader: i32,
        txn: TxnOf<'_>,
        partitions: &[(String, i32)],
    ) -> Result<Vec<i16>, String> {
        let connection = self.connection(leader).await?;
        let request = request(txn, partitions);
        let response = match connection
            .call(ADD_PARTITIONS_TO_TXN_VERSION, &request)
            .await
        {
            Ok(response) => response,
            Err(err) => {
                self.connections().remove(&leader);
                return Err(format!(
                    "AddPartitionsToTxn to broker {leader} failed: {}",
                    runnel_http::error_chain(&err)
                ));
            }
        };
        if response.error_code != 0 {
            return Ok(vec![response.error_code; partitions.len()]);
        }
        let mut codes: HashMap<(&str, i32), i16> = HashMap::new();
        for result in &response.results_by_transaction {
            for topic in &result.topic_results {
                for p in &topic.results_by_partition {
                    codes.insert(
                        (topic.name.0.as_str(), p.partition_index),
                        p.partition_error_code,
                    );
                }
            }
        }
        // A partition the coordinator did not answer for is not verified.
        let missing = ResponseError::InvalidTxnState.code();
        Ok(partitions
            .iter()
            .map(|(t, p)| codes.get(&(t.as_str(), *p)).copied().unwrap_or(missing))
            .collect())
    }

    async fn connection(&self, broker: i32) -> Result<Connection, String> {
        if let Some(connection) = self.connections().get(&broker) {
            return Ok(connection.clone());
        }
        let address = self
            .metadata
            .image()
            .broker_address(broker, &self.listener)
            .ok_or_else(|| format!("broker {broker} has no {} listener", self.listener))?;
        let connection = Connection::open(&address, "runnel-txn-verification")
            .await
            .map_err(|err| runnel_http::error_chain(&err))?;
        self.connections().insert(broker, connection.clone());
        Ok(connection)
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Connection>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn held_code(held: bool) -> i16 {
    if held {
        0
    } else {
        error_codes::txn(TxnError::InvalidTxnState).code()
    }
}

fn coordinator_code(err: &TxnRequestError) -> i16 {
    error_codes::txn_request(err).code()
}

/// The coordinator's answer for one partition, as the producer gets it.
fn refusal(txn: TxnOf<'_>, code: i16, (topic, partition): (&str, i32)) -> Result<(), Unverified> {
    let error = match ResponseError::try_from_code(code) {
        None => return Ok(()),
        Some(error) => error,
    };
    let (answer, why) = match error {
        ResponseError::InvalidTxnState => (
            ResponseError::InvalidTxnState,
            "the partition is not in the producer's open transaction: it was not added, or its transaction ended".to_owned(),
        ),
        ResponseError::ProducerFenced | ResponseError::InvalidProducerEpoch => (
            ResponseError::InvalidProducerEpoch,
            "a newer producer epoch fenced this one".to_owned(),
        ),
        ResponseError::InvalidProducerIdMapping => (
            ResponseError::InvalidProducerIdMapping,
            "the producer id does not belong to the transactional id".to_owned(),
        ),
        other => (
            ResponseError::NotEnoughReplicas,
            format!("the transaction coordinator answered {other:?}; retry"),
        ),
    };
    Err((
        answer,
        format!(
            "{topic}-{partition}: transactional id {} (producer {} epoch {}): {why}",
            txn.transactional_id, txn.producer_id, txn.producer_epoch
        ),
    ))
}

/// One verify-only AddPartitionsToTxn of `partitions`.
fn request(txn: TxnOf<'_>, partitions: &[(String, i32)]) -> AddPartitionsToTxnRequest {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, partition) in partitions {
        match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
            Some(t) => t.partitions.push(*partition),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(vec![*partition]),
            ),
        }
    }
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(
            txn.transactional_id.to_owned(),
        )))
        .with_producer_id(ProducerId(txn.producer_id))
        .with_producer_epoch(txn.producer_epoch)
        .with_verify_only(true)
        .with_topics(topics);
    AddPartitionsToTxnRequest::default().with_transactions(vec![transaction])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXN: TxnOf<'static> = TxnOf {
        transactional_id: "t-id",
        producer_id: 7,
        producer_epoch: 2,
    };

    #[test]
    fn coordinator_answers_become_what_old_producers_understand() {
        assert!(refusal(TXN, 0, ("t", 0)).is_ok());
        let code = |c: ResponseError| refusal(TXN, c.code(), ("t", 0)).expect_err("refused").0;
        assert_eq!(
            code(ResponseError::InvalidTxnState),
            ResponseError::InvalidTxnState
        );
        assert_eq!(
            code(ResponseError::ProducerFenced),
            ResponseError::InvalidProducerEpoch
        );
        for retriable in [
            ResponseError::NotCoordinator,
            ResponseError::CoordinatorNotAvailable,
            ResponseError::CoordinatorLoadInProgress,
            ResponseError::ConcurrentTransactions,
        ] {
            assert_eq!(code(retriable), ResponseError::NotEnoughReplicas);
        }
        let (_, sentence) =
            refusal(TXN, ResponseError::InvalidTxnState.code(), ("t", 3)).expect_err("refused");
        assert!(
            sentence.starts_with("t-3: transactional id t-id (producer 7 epoch 2)"),
            "{sentence}"
        );
    }

    #[test]
    fn one_request_names_each_topic_once() {
        let request = request(TXN, &[("a".into(), 0), ("b".into(), 1), ("a".into(), 2)]);
        let txn = &request.transactions[0];
        assert!(txn.verify_only);
        let topics: Vec<(&str, &[i32])> = txn
            .topics
            .iter()
            .map(|t| (t.name.0.as_str(), &t.partitions[..]))
            .collect();
        assert_eq!(topics, [("a", &[0, 2][..]), ("b", &[1][..])]);
    }
}
