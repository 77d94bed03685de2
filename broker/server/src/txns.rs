//! The transaction coordinator: every transactional id's state
//! (runnel-coordinator's `Transaction`), kept in `__transaction_state`
//! (50 compacted partitions, Kafka's records; id T lives in partition
//! `abs(javaHash(T)) % 50`) and loaded back at start. On one broker every
//! partition is local, so EndTxn writes the markers itself before it
//! answers: PrepareCommit/PrepareAbort is stored, the markers appended,
//! then CompleteCommit/CompleteAbort stored. A coordinator that stopped
//! between the two finishes the markers when it loads.
//!
//! Requests of all transactional ids are serialized by one lock, held
//! across the disk writes of a step (off the async workers' turn).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use runnel_coordinator::txn::{InitStep, Markers, Outcome, Transaction, TxnError};
use runnel_coordinator::txn_log::{self, TxnLogValue, TxnState};
use runnel_coordinator::{OffsetsRecordError, coordinator_partition};
use runnel_http::error_chain;
use runnel_log::BatchBuilder;
use runnel_log::control::ControlType;
use thiserror::Error;

use crate::broker::{Broker, TopicOpError};
use crate::error_codes;

pub const TRANSACTION_TOPIC: &str = "__transaction_state";
const SEGMENT_BYTES: u64 = 100 << 20;

#[derive(Debug, Error)]
pub enum TxnStoreError {
    #[error("the {TRANSACTION_TOPIC} partition {0} is missing")]
    MissingPartition(i32),
    #[error("cannot encode a {TRANSACTION_TOPIC} record")]
    Encode(#[from] OffsetsRecordError),
    #[error("cannot read or write {TRANSACTION_TOPIC} or a transaction marker")]
    Log(#[from] runnel_log::LogError),
    #[error("cannot decode a {TRANSACTION_TOPIC} batch")]
    Records(#[from] runnel_log::records::RecordsError),
    #[error("cannot copy a {TRANSACTION_TOPIC} region")]
    Read(#[from] std::io::Error),
    #[error("cannot create {TRANSACTION_TOPIC}")]
    Create(#[from] TopicOpError),
    #[error("cannot hand out a producer id")]
    ProducerId(#[from] crate::cluster_metadata::MetadataError),
    #[error(transparent)]
    Load(#[from] crate::log_reader::ReadError),
}

/// Why a transactional request fails: a state-machine refusal (Kafka's
/// code) or the coordinator's storage.
#[derive(Debug, Error)]
pub enum TxnRequestError {
    #[error(transparent)]
    Refused(#[from] TxnError),
    #[error(transparent)]
    Store(#[from] TxnStoreError),
}

impl TxnRequestError {
    /// The Kafka error code to answer with.
    pub fn code(&self) -> i16 {
        match self {
            Self::Refused(err) => error_codes::txn(*err).code(),
            // Retriable: the client tries again.
            Self::Store(_) => ResponseError::CoordinatorNotAvailable.code(),
        }
    }
}

impl Broker {
    /// Every transactional id with its state, sorted by id
    /// (DescribeTransactions, ListTransactions).
    pub fn transactions_now(&self) -> Vec<(String, Transaction)> {
        let mut all: Vec<(String, Transaction)> = self
            .transactions
            .lock()
            .iter()
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn transaction_partitions(&self) -> i32 {
        self.topic(TRANSACTION_TOPIC)
            .map_or(self.config.transaction_state_log_num_partitions, |t| {
                t.partitions
            })
    }

    /// Creates `__transaction_state` if it does not exist yet.
    pub fn ensure_transaction_topic(&self, now_ms: i64) -> Result<(), TxnStoreError> {
        if self.topic(TRANSACTION_TOPIC).is_some() {
            return Ok(());
        }
        let mut configs = BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("segment.bytes".to_string(), SEGMENT_BYTES.to_string());
        match self.create_topic(
            TRANSACTION_TOPIC,
            self.config.transaction_state_log_num_partitions,
            1,
            configs,
            false,
            now_ms,
        ) {
            Ok(_) | Err(TopicOpError::AlreadyExists(_)) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Stores a transaction's state in its `__transaction_state` partition.
    fn store_transaction(
        &self,
        transactional_id: &str,
        txn: &Transaction,
        now_ms: i64,
    ) -> Result<(), TxnStoreError> {
        self.ensure_transaction_topic(now_ms)?;
        let partition = coordinator_partition(transactional_id, self.transaction_partitions());
        let log = self
            .partition(TRANSACTION_TOPIC, partition)
            .ok_or(TxnStoreError::MissingPartition(partition))?;
        let key = txn_log::encode_key(transactional_id)?;
        let value = txn.to_log().encode()?;
        let batch = BatchBuilder::new(now_ms)
            .record(Some(&key), Some(&value), now_ms)
            .build();
        log.append(&batch, now_ms)?;
        Ok(())
    }

    /// Writes a transaction's markers in each of its partitions. A
    /// partition deleted meanwhile is skipped.
    fn write_markers(&self, markers: &Markers, now_ms: i64) -> Result<(), TxnStoreError> {
        let kind = match markers.outcome {
            Outcome::Commit => ControlType::Commit,
            Outcome::Abort => ControlType::Abort,
        };
        for (topic, partition) in &markers.partitions {
            let Some(log) = self.partition(topic, *partition) else {
                tracing::warn!(topic, partition, "no partition for a transaction marker");
                continue;
            };
            log.append_marker(markers.producer_id, markers.producer_epoch, kind, 0, now_ms)?;
        }
        Ok(())
    }

    /// Stores Prepare*, writes the markers, stores Complete*.
    fn finish_transaction(
        &self,
        transactional_id: &str,
        txn: &mut Transaction,
        markers: &Markers,
        now_ms: i64,
    ) -> Result<(), TxnStoreError> {
        self.store_transaction(transactional_id, txn, now_ms)?;
        self.write_markers(markers, now_ms)?;
        self.complete_txn_offsets(markers.producer_id, markers.outcome == Outcome::Commit);
        txn.complete(now_ms);
        self.store_transaction(transactional_id, txn, now_ms)
    }

    /// InitProducerId with a transactional id: a new id gets a fresh
    /// producer id at epoch 0; a known one is fenced (its open transaction
    /// aborted) and gets the next epoch. Returns (producer id, epoch).
    pub fn init_transactional_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<(i64, i16), TxnRequestError> {
        if timeout_ms <= 0 || i64::from(timeout_ms) > self.config.transaction_max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout.into());
        }
        let mut all = self.transactions.lock();
        let mut txn = match all.get(transactional_id) {
            Some(txn) => txn.clone(),
            None => {
                let id = self
                    .producer_ids
                    .next(&self.metadata, now_ms)
                    .map_err(TxnStoreError::from)?;
                let txn = Transaction::new(id, timeout_ms, now_ms);
                self.store_transaction(transactional_id, &txn, now_ms)?;
                all.insert(transactional_id.to_string(), txn.clone());
                return Ok((txn.producer_id, txn.producer_epoch));
            }
        };
        // A fresh producer id is needed only at the last epoch (the abort
        // of an open transaction takes one epoch more).
        let fresh_id = if txn.producer_epoch >= i16::MAX - 2 {
            self.producer_ids
                .next(&self.metadata, now_ms)
                .map_err(TxnStoreError::from)?
        } else {
            -1
        };
        if let InitStep::AbortFirst(markers) = txn.init(timeout_ms, || fresh_id, now_ms)? {
            self.finish_transaction(transactional_id, &mut txn, &markers, now_ms)?;
            all.insert(transactional_id.to_string(), txn.clone());
            txn.init(timeout_ms, || fresh_id, now_ms)?;
        }
        self.store_transaction(transactional_id, &txn, now_ms)?;
        let answer = (txn.producer_id, txn.producer_epoch);
        all.insert(transactional_id.to_string(), txn);
        Ok(answer)
    }

    /// AddPartitionsToTxn for partitions that exist (the handler answers
    /// UNKNOWN_TOPIC_OR_PARTITION for the others).
    pub fn add_partitions_to_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<(String, i32)>,
        now_ms: i64,
    ) -> Result<(), TxnRequestError> {
        let mut all = self.transactions.lock();
        let Some(txn) = all.get(transactional_id) else {
            return Err(TxnError::InvalidProducerIdMapping.into());
        };
        let mut txn = txn.clone();
        let before = txn.clone();
        txn.add_partitions(producer_id, producer_epoch, partitions, now_ms)?;
        if txn != before {
            self.store_transaction(transactional_id, &txn, now_ms)?;
            all.insert(transactional_id.to_string(), txn);
        }
        Ok(())
    }

    /// Whether `producer_id` at `producer_epoch` is the current producer of
    /// an open transaction of `transactional_id` (for TxnOffsetCommit).
    pub fn check_txn_producer(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), TxnError> {
        let all = self.transactions.lock();
        let txn = all
            .get(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if txn.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if txn.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if txn.state != TxnState::Ongoing {
            return Err(TxnError::InvalidTxnState);
        }
        Ok(())
    }

    /// AddPartitionsToTxn v4's verify_only: whether each partition is in
    /// the producer's open transaction (0, else INVALID_TXN_STATE or the
    /// producer's error).
    pub fn verify_partitions_in_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Vec<i16> {
        let checked = self.check_txn_producer(transactional_id, producer_id, producer_epoch);
        let all = self.transactions.lock();
        partitions
            .iter()
            .map(|tp| match checked {
                Err(err) => error_codes::txn(err).code(),
                Ok(()) => {
                    let held = all
                        .get(transactional_id)
                        .is_some_and(|t| t.partitions.contains(tp));
                    if held {
                        0
                    } else {
                        error_codes::txn(TxnError::InvalidTxnState).code()
                    }
                }
            })
            .collect()
    }

    /// EndTxn: commits or aborts the open transaction, markers written
    /// before the answer.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<(), TxnRequestError> {
        let outcome = if commit {
            Outcome::Commit
        } else {
            Outcome::Abort
        };
        let mut all = self.transactions.lock();
        let Some(txn) = all.get(transactional_id) else {
            return Err(TxnError::InvalidProducerIdMapping.into());
        };
        let mut txn = txn.clone();
        if let Some(markers) = txn.end(producer_id, producer_epoch, outcome, now_ms)? {
            self.finish_transaction(transactional_id, &mut txn, &markers, now_ms)?;
            all.insert(transactional_id.to_string(), txn);
        }
        Ok(())
    }

    /// Aborts every open transaction past its `transaction.timeout.ms`,
    /// fencing its producer; returns how many.
    pub fn abort_timed_out_transactions(&self, now_ms: i64) -> Result<usize, TxnStoreError> {
        let mut all = self.transactions.lock();
        let due: Vec<String> = all
            .iter()
            .filter(|(_, t)| t.timed_out(now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &due {
            let Some(mut txn) = all.get(id).cloned() else {
                continue;
            };
            let markers = txn.begin_abort_fenced(now_ms);
            tracing::info!(
                transactional_id = id,
                producer_id = txn.producer_id,
                "aborting a transaction past transaction.timeout.ms"
            );
            self.finish_transaction(id, &mut txn, &markers, now_ms)?;
            all.insert(id.clone(), txn);
        }
        Ok(due.len())
    }

    /// Forgets transactional ids with no open transaction whose last change
    /// is older than `transactional.id.expiration.ms`, with a tombstone in
    /// `__transaction_state`; returns how many.
    pub fn expire_transactional_ids(&self, now_ms: i64) -> Result<usize, TxnStoreError> {
        let max_idle_ms = self.config.transactional_id_expiration_ms;
        let mut all = self.transactions.lock();
        let due: Vec<String> = all
            .iter()
            .filter(|(_, t)| {
                matches!(
                    t.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                ) && now_ms.saturating_sub(t.last_update_ms) >= max_idle_ms
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &due {
            let partition = coordinator_partition(id, self.transaction_partitions());
            let log = self
                .partition(TRANSACTION_TOPIC, partition)
                .ok_or(TxnStoreError::MissingPartition(partition))?;
            let key = txn_log::encode_key(id)?;
            let tombstone = BatchBuilder::new(now_ms)
                .record(Some(&key), None, now_ms)
                .build();
            log.append(&tombstone, now_ms)?;
            all.remove(id);
            tracing::info!(transactional_id = id, "transactional id expired");
        }
        Ok(due.len())
    }

    /// Loads every transactional id from `__transaction_state` and
    /// finishes the transactions a stop left between Prepare* and
    /// Complete*. Returns how many ids there are.
    pub fn load_transactions(&self, now_ms: i64) -> Result<usize, TxnStoreError> {
        if self.topic(TRANSACTION_TOPIC).is_none() {
            return Ok(0);
        }
        let mut loaded: HashMap<String, Option<TxnLogValue>> = HashMap::new();
        let partitions = self.transaction_partitions();
        self.read_internal_topic(TRANSACTION_TOPIC, partitions, |partition, header, records| {
            if header.is_control() {
                return;
            }
            for record in &records.records {
                let Some(key) = records.key(record) else {
                    continue;
                };
                let id = match txn_log::decode_key(key) {
                    Ok(id) => id,
                    Err(err) => {
                        tracing::warn!(partition, error = %error_chain(&err), "skipping a {TRANSACTION_TOPIC} record");
                        continue;
                    }
                };
                match records.value(record).map(TxnLogValue::decode) {
                    None => {
                        loaded.insert(id, None);
                    }
                    Some(Ok(value)) => {
                        loaded.insert(id, Some(value));
                    }
                    Some(Err(err)) => {
                        tracing::warn!(partition, transactional_id = id, error = %error_chain(&err), "skipping a {TRANSACTION_TOPIC} record")
                    }
                }
            }
        })?;
        let mut all = self.transactions.lock();
        all.clear();
        for (id, value) in loaded {
            let Some(value) = value else { continue };
            let mut txn = Transaction::from_log(&value);
            let outcome = match txn.state {
                TxnState::PrepareCommit => Some(Outcome::Commit),
                TxnState::PrepareAbort => Some(Outcome::Abort),
                _ => None,
            };
            if let Some(outcome) = outcome {
                let markers = Markers {
                    producer_id: txn.producer_id,
                    producer_epoch: txn.producer_epoch,
                    outcome,
                    partitions: txn.partitions.iter().cloned().collect(),
                };
                tracing::info!(
                    transactional_id = id,
                    ?outcome,
                    "finishing a transaction the last stop left prepared"
                );
                self.write_markers(&markers, now_ms)?;
                self.complete_txn_offsets(markers.producer_id, outcome == Outcome::Commit);
                txn.complete(now_ms);
                self.store_transaction(&id, &txn, now_ms)?;
            }
            all.insert(id, txn);
        }
        Ok(all.len())
    }
}
