//! Transactions of a producer with `transactional.id`, as Java's
//! `KafkaProducer`: `init_transactions` (the coordinator fences any older
//! producer of the id and aborts its open transaction), then repeatedly
//! `begin_transaction`, `send`s (each partition is added to the transaction
//! before its first record), optionally `send_offsets_to_transaction`, and
//! `commit_transaction` or `abort_transaction`. Records of an aborted
//! transaction are never seen by `read_committed` consumers.

use std::collections::{HashMap, HashSet};
use std::sync::{MutexGuard, PoisonError};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use super::Producer;
use crate::connection::Connection;
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{ClientError, Result};

const INIT_PRODUCER_ID_VERSION: i16 = 4;
const ADD_PARTITIONS_VERSION: i16 = 3;
const ADD_OFFSETS_VERSION: i16 = 3;
const TXN_OFFSET_COMMIT_VERSION: i16 = 3;
const END_TXN_VERSION: i16 = 3;
/// Errors the coordinator answers while it finishes something: try again.
const RETRIABLE: &[ResponseError] = &[
    ResponseError::CoordinatorLoadInProgress,
    ResponseError::CoordinatorNotAvailable,
    ResponseError::NotCoordinator,
    ResponseError::ConcurrentTransactions,
];
const ATTEMPTS: usize = 50;

fn coordinator_busy(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| RETRIABLE.contains(&e))
}

/// A transactional producer's side of the transaction.
#[derive(Debug, Default)]
pub(super) struct TxnState {
    producer: Option<(i64, i16)>,
    open: bool,
    /// Partitions added to the open transaction, by topic (looked up by
    /// `&str`: a send allocates nothing to check).
    added: HashMap<String, HashSet<i32>>,
    /// Offsets were sent in the open transaction.
    offsets_sent: bool,
}

fn txn_error(reason: impl Into<String>) -> ClientError {
    ClientError::Transaction {
        reason: reason.into(),
    }
}

impl Producer {
    fn txn(&self) -> Result<MutexGuard<'_, TxnState>> {
        let txn = self
            .shared
            .txn
            .as_ref()
            .ok_or_else(|| txn_error("the producer has no transactional.id"))?;
        Ok(txn.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn transactional_id(&self) -> Result<TransactionalId> {
        let id = self
            .shared
            .config
            .transactional_id
            .as_ref()
            .ok_or_else(|| txn_error("the producer has no transactional.id"))?;
        Ok(TransactionalId(StrBytes::from_string(id.clone())))
    }

    /// The coordinator of `key` (`key_type` 0 group, 1 transaction),
    /// asking again while the brokers answer that it is not ready.
    async fn coordinator_for(&self, key: &str, key_type: i8) -> Result<Connection> {
        for _ in 0..ATTEMPTS {
            match self.shared.cluster.coordinator(key, key_type).await {
                Err(err) if err.kafka_code().is_some_and(coordinator_busy) => self.backoff().await,
                found => return found,
            }
        }
        Err(txn_error(format!("no coordinator for {key}")))
    }

    async fn backoff(&self) {
        tokio::time::sleep(self.shared.config.retry_backoff).await;
    }

    /// Gets the transactional id's producer id and epoch from its
    /// coordinator, fencing older producers of the id; call once before
    /// the first transaction (and again after a failure aborted one).
    pub async fn init_transactions(&self) -> Result<()> {
        let id = self.transactional_id()?;
        let coordinator = self.coordinator_for(&id.0, 1).await?;
        let timeout_ms =
            i32::try_from(self.shared.config.transaction_timeout.as_millis()).unwrap_or(i32::MAX);
        for _ in 0..ATTEMPTS {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(Some(id.clone()))
                .with_transaction_timeout_ms(timeout_ms)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let response = coordinator.call(INIT_PRODUCER_ID_VERSION, &request).await?;
            match response.error_code {
                0 => {
                    let producer = (response.producer_id.0, response.producer_epoch);
                    {
                        let mut txn = self.txn()?;
                        txn.producer = Some(producer);
                        txn.open = false;
                        txn.added.clear();
                    }
                    self.shared
                        .accumulator()
                        .set_producer_id(producer.0, producer.1);
                    self.shared.work.notify_one();
                    return Ok(());
                }
                code if coordinator_busy(code) => self.backoff().await,
                code => return Err(ClientError::kafka("InitProducerId", &id.0, -1, code)),
            }
        }
        Err(txn_error(
            "InitProducerId kept answering that the coordinator is busy",
        ))
    }

    /// Starts a transaction: the records sent until it commits or aborts
    /// belong to it.
    pub fn begin_transaction(&self) -> Result<()> {
        let mut txn = self.txn()?;
        if txn.producer.is_none() {
            return Err(txn_error("call init_transactions before begin_transaction"));
        }
        if txn.open {
            return Err(txn_error("a transaction is already open"));
        }
        txn.open = true;
        txn.added.clear();
        txn.offsets_sent = false;
        self.shared
            .txn_failed
            .store(false, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// For `send`: the partition joins the open transaction before its
    /// first record (AddPartitionsToTxn).
    pub(super) async fn add_to_transaction(&self, topic: &str, partition: i32) -> Result<()> {
        let producer = {
            let txn = self.txn()?;
            if !txn.open {
                return Err(txn_error(
                    "send in a transactional producer needs begin_transaction first",
                ));
            }
            if txn.added.get(topic).is_some_and(|p| p.contains(&partition)) {
                return Ok(());
            }
            txn.producer
                .ok_or_else(|| txn_error("call init_transactions first"))?
        };
        let id = self.transactional_id()?;
        let coordinator = self.coordinator_for(&id.0, 1).await?;
        for _ in 0..ATTEMPTS {
            let request = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(id.clone())
                .with_v3_and_below_producer_id(ProducerId(producer.0))
                .with_v3_and_below_producer_epoch(producer.1)
                .with_v3_and_below_topics(vec![
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(vec![partition]),
                ]);
            let response = coordinator.call(ADD_PARTITIONS_VERSION, &request).await?;
            let code = response
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| &t.results_by_partition)
                .map(|p| p.partition_error_code)
                .find(|c| *c != 0)
                .unwrap_or(0);
            match code {
                0 => {
                    self.txn()?
                        .added
                        .entry(topic.to_string())
                        .or_default()
                        .insert(partition);
                    return Ok(());
                }
                code if coordinator_busy(code) => self.backoff().await,
                code => {
                    return Err(ClientError::kafka(
                        "AddPartitionsToTxn",
                        topic,
                        partition,
                        code,
                    ));
                }
            }
        }
        Err(txn_error(
            "AddPartitionsToTxn kept answering that the coordinator is busy",
        ))
    }

    /// Commits a consumer group's offsets (`(topic, partition, next
    /// offset)`) in the open transaction: they take effect when it commits.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(&str, i32, i64)],
        group_id: &str,
    ) -> Result<()> {
        let group = ConsumerGroupMetadata {
            group_id: group_id.to_string(),
            generation_id: -1,
            member_id: String::new(),
        };
        self.send_offsets_to_transaction_with(offsets, &group).await
    }

    /// [`send_offsets_to_transaction`](Self::send_offsets_to_transaction)
    /// as a member of the group (`Consumer::group_metadata`): the
    /// coordinator refuses the offsets (ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID) once the member's generation is over, so a member
    /// whose partitions moved on cannot commit them (KIP-447).
    pub async fn send_offsets_to_transaction_with(
        &self,
        offsets: &[(&str, i32, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let group_id = group.group_id.as_str();
        let producer = {
            let txn = self.txn()?;
            if !txn.open {
                return Err(txn_error(
                    "send_offsets_to_transaction needs an open transaction",
                ));
            }
            txn.producer
                .ok_or_else(|| txn_error("call init_transactions first"))?
        };
        let id = self.transactional_id()?;
        let coordinator = self.coordinator_for(&id.0, 1).await?;
        let member = group;
        let group = GroupId(StrBytes::from_string(group_id.to_string()));
        let add = AddOffsetsToTxnRequest::default()
            .with_transactional_id(id.clone())
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_group_id(group.clone());
        let response = coordinator.call(ADD_OFFSETS_VERSION, &add).await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                "AddOffsetsToTxn",
                group_id,
                -1,
                response.error_code,
            ));
        }
        let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for &(topic, partition, offset) in offsets {
            let p = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::default()));
            match topics.iter_mut().find(|t| t.name.0.as_str() == topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(vec![p]),
                ),
            }
        }
        self.txn()?.offsets_sent = true;
        let group_coordinator = self.coordinator_for(group_id, 0).await?;
        let commit = TxnOffsetCommitRequest::default()
            .with_transactional_id(id)
            .with_group_id(group)
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_generation_id(member.generation_id)
            .with_member_id(StrBytes::from_string(member.member_id.clone()))
            .with_topics(topics);
        let response = group_coordinator
            .call(TXN_OFFSET_COMMIT_VERSION, &commit)
            .await?;
        for t in &response.topics {
            if let Some(p) = t.partitions.iter().find(|p| p.error_code != 0) {
                return Err(ClientError::kafka(
                    "TxnOffsetCommit",
                    t.name.0.as_str(),
                    p.partition_index,
                    p.error_code,
                ));
            }
        }
        Ok(())
    }

    /// Sends what is queued, then commits the open transaction. A record
    /// that failed makes this an error: the transaction must be aborted.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.flush().await;
        if self
            .shared
            .txn_failed
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(ClientError::TransactionRecordFailed);
        }
        self.end_transaction(true).await
    }

    /// Waits for what is in flight, then aborts the open transaction: its
    /// records are never read by `read_committed` consumers.
    pub async fn abort_transaction(&self) -> Result<()> {
        if self.shared.accumulator().needs_producer_id() {
            // A record failed and the producer lost its epoch: what still
            // waits cannot be sent; it fails with the transaction.
            let dropped = self.shared.accumulator().take_all();
            for batch in dropped {
                batch
                    .outcome
                    .failed(|| txn_error("the transaction was aborted"));
                self.shared.delivered(batch.records, batch.buffered);
            }
        }
        self.flush().await;
        self.end_transaction(false).await?;
        // After a failed record the producer needs its epoch again.
        if self.shared.accumulator().needs_producer_id() {
            self.init_transactions().await?;
        }
        Ok(())
    }

    async fn end_transaction(&self, commit: bool) -> Result<()> {
        let (producer, anything) = {
            let txn = self.txn()?;
            if !txn.open {
                return Err(txn_error("no transaction is open"));
            }
            let producer = txn
                .producer
                .ok_or_else(|| txn_error("call init_transactions first"))?;
            (producer, !txn.added.is_empty() || txn.offsets_sent)
        };
        let id = self.transactional_id()?;
        // Nothing was added: the coordinator has nothing to end.
        if anything {
            let coordinator = self.coordinator_for(&id.0, 1).await?;
            let mut done = false;
            for _ in 0..ATTEMPTS {
                let request = EndTxnRequest::default()
                    .with_transactional_id(id.clone())
                    .with_producer_id(ProducerId(producer.0))
                    .with_producer_epoch(producer.1)
                    .with_committed(commit);
                let response = coordinator.call(END_TXN_VERSION, &request).await?;
                match response.error_code {
                    0 => {
                        done = true;
                        break;
                    }
                    code if coordinator_busy(code) => self.backoff().await,
                    code => return Err(ClientError::kafka("EndTxn", &id.0, -1, code)),
                }
            }
            if !done {
                return Err(txn_error(
                    "EndTxn kept answering that the coordinator is busy",
                ));
            }
        }
        let mut txn = self.txn()?;
        txn.open = false;
        txn.added.clear();
        Ok(())
    }
}
