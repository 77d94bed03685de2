//! The coordinator's answers to a transactional producer: InitProducerId,
//! AddPartitionsToTxn (and AddOffsetsToTxn), EndTxn, and the checks of
//! TxnOffsetCommit and AddPartitionsToTxn v4's `verify_only`. Each step
//! works on a copy of the id's state and keeps it only once its records
//! are written.

use runnel_coordinator::txn::{InitStep, Outcome, Transaction, TxnError};
use runnel_coordinator::txn_log::TxnState;

use super::{TxnCoordinator, TxnEnded, TxnRequestError};

/// InitProducerId's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initialized {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The open transaction that was aborted first, fencing its producer.
    pub ended: Option<TxnEnded>,
}

impl TxnCoordinator {
    /// InitProducerId with a transactional id: a new id gets a fresh
    /// producer id at epoch 0; a known one is fenced (its open transaction
    /// aborted) and gets the next epoch.
    pub fn init_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        now_ms: i64,
    ) -> Result<Initialized, TxnRequestError> {
        if timeout_ms <= 0 || i64::from(timeout_ms) > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout.into());
        }
        self.with_slot(transactional_id, true, |partition, slot| {
            let Some(mut txn) = slot.clone() else {
                let id = self.producer_ids.next(now_ms)?;
                let txn = Transaction::new(id, timeout_ms, now_ms);
                self.store
                    .store(partition, transactional_id, &txn, now_ms)?;
                let answer = Initialized {
                    producer_id: txn.producer_id,
                    producer_epoch: txn.producer_epoch,
                    ended: None,
                };
                *slot = Some(txn);
                return Ok(answer);
            };
            // A fresh producer id is needed only at the last epoch (the
            // abort of an open transaction takes one epoch more).
            let fresh_id = if txn.producer_epoch >= i16::MAX - 2 {
                self.producer_ids.next(now_ms)?
            } else {
                -1
            };
            let mut ended = None;
            if let InitStep::AbortFirst(markers) = txn.init(timeout_ms, || fresh_id, now_ms)? {
                ended = Some(self.store.finish(
                    partition,
                    transactional_id,
                    &mut txn,
                    &markers,
                    now_ms,
                )?);
                *slot = Some(txn.clone());
                txn.init(timeout_ms, || fresh_id, now_ms)?;
            }
            self.store
                .store(partition, transactional_id, &txn, now_ms)?;
            let answer = Initialized {
                producer_id: txn.producer_id,
                producer_epoch: txn.producer_epoch,
                ended,
            };
            *slot = Some(txn);
            Ok(answer)
        })
    }

    /// AddPartitionsToTxn for partitions that exist (the handler answers
    /// UNKNOWN_TOPIC_OR_PARTITION for the others).
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: Vec<(String, i32)>,
        now_ms: i64,
    ) -> Result<(), TxnRequestError> {
        self.with_slot(transactional_id, false, |partition, slot| {
            let Some(before) = slot.as_ref() else {
                return Err(TxnError::InvalidProducerIdMapping.into());
            };
            let mut txn = before.clone();
            txn.add_partitions(producer_id, producer_epoch, partitions, now_ms)?;
            if txn != *before {
                self.store
                    .store(partition, transactional_id, &txn, now_ms)?;
                *slot = Some(txn);
            }
            Ok(())
        })
    }

    /// Whether `producer_id` at `producer_epoch` is the current producer of
    /// an open transaction of `transactional_id` (TxnOffsetCommit).
    pub fn check_producer(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(), TxnRequestError> {
        self.with_slot(transactional_id, false, |_, slot| {
            current_producer(slot.as_ref(), producer_id, producer_epoch)?;
            Ok(())
        })
    }

    /// AddPartitionsToTxn v4's `verify_only`: whether each partition is in
    /// the producer's open transaction (see [`Transaction::verify`]); the
    /// producer's refusal if it is not that transaction's producer.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnRequestError> {
        self.with_slot(transactional_id, false, |_, slot| {
            let txn = slot.as_ref().ok_or(TxnError::InvalidProducerIdMapping)?;
            Ok(txn.verify(producer_id, producer_epoch, partitions)?)
        })
    }

    /// EndTxn: commits or aborts the open transaction, markers written
    /// before the answer. `None` for a retry of an EndTxn that completed.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<TxnEnded>, TxnRequestError> {
        let outcome = if commit {
            Outcome::Commit
        } else {
            Outcome::Abort
        };
        self.with_slot(transactional_id, false, |partition, slot| {
            let Some(mut txn) = slot.clone() else {
                return Err(TxnError::InvalidProducerIdMapping.into());
            };
            let Some(markers) = txn.end(producer_id, producer_epoch, outcome, now_ms)? else {
                return Ok(None);
            };
            let ended =
                self.store
                    .finish(partition, transactional_id, &mut txn, &markers, now_ms)?;
            *slot = Some(txn);
            Ok(Some(ended))
        })
    }
}

/// The state of an open transaction whose producer is `producer_id` at
/// `producer_epoch`.
fn current_producer(
    txn: Option<&Transaction>,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<&Transaction, TxnError> {
    let txn = txn.ok_or(TxnError::InvalidProducerIdMapping)?;
    if txn.producer_id != producer_id {
        return Err(TxnError::InvalidProducerIdMapping);
    }
    if txn.producer_epoch != producer_epoch {
        return Err(TxnError::ProducerFenced);
    }
    if txn.state != TxnState::Ongoing {
        return Err(TxnError::InvalidTxnState);
    }
    Ok(txn)
}
