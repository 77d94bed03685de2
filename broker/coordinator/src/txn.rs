//! One transactional id's state machine, as Kafka's
//! `TransactionCoordinator` drives `TransactionMetadata`: InitProducerId,
//! AddPartitionsToTxn, EndTxn and the timeout abort. Sans-io: each step
//! checks the request against the state and returns the state to store in
//! `__transaction_state` and, when a transaction ends, the markers to
//! write; the broker stores, writes, then calls [`Transaction::complete`].
//!
//! ```text
//! Empty ──add──> Ongoing ──end(commit)──> PrepareCommit ──markers──> CompleteCommit
//!                   │    ──end(abort) ──> PrepareAbort  ──markers──> CompleteAbort
//!                   └──timeout / InitProducerId──> PrepareAbort (epoch bumped: fenced)
//! Complete* ──add──> Ongoing;  Empty | Complete* ──InitProducerId──> Empty (epoch + 1)
//! ```

use std::collections::BTreeSet;

use thiserror::Error;

use crate::txn_log::{TxnLogValue, TxnState};

/// Why a transactional request is refused (named as Kafka names the error;
/// the broker's handler chooses the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TxnError {
    #[error("another transaction operation is completing; retry")]
    ConcurrentTransactions,
    #[error("the producer was fenced by a newer epoch of its transactional id")]
    ProducerFenced,
    #[error("the producer id does not belong to this transactional id")]
    InvalidProducerIdMapping,
    #[error("the request does not fit the transaction's state")]
    InvalidTxnState,
    #[error("transaction.timeout.ms must be between 1 and transaction.max.timeout.ms")]
    InvalidTransactionTimeout,
}

/// How a transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Abort,
}

/// Markers to write for an ending transaction: in each partition, a
/// control batch of the producer id and epoch saying `outcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Markers {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub outcome: Outcome,
    pub partitions: Vec<(String, i32)>,
}

/// A transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

/// What InitProducerId asks of a transaction that is still open: abort it
/// (fencing its producer) before the new epoch is handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// Store this state and answer with its producer id and epoch.
    Ready,
    /// Store this state, write these abort markers, [`complete`] it, then
    /// run InitProducerId again.
    ///
    /// [`complete`]: Transaction::complete
    AbortFirst(Markers),
}

impl Transaction {
    /// A new transactional id with a fresh producer id.
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        Self {
            producer_id,
            producer_epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            start_ms: -1,
        }
    }

    /// The state as stored.
    pub fn from_log(value: &TxnLogValue) -> Self {
        Self {
            producer_id: value.producer_id,
            producer_epoch: value.producer_epoch,
            timeout_ms: value.timeout_ms,
            state: value.state,
            partitions: value
                .partitions
                .iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                .collect(),
            last_update_ms: value.last_update_ms,
            start_ms: value.start_ms,
        }
    }

    /// The record to store.
    pub fn to_log(&self) -> TxnLogValue {
        let mut partitions: Vec<(String, Vec<i32>)> = Vec::new();
        for (topic, partition) in &self.partitions {
            match partitions.last_mut() {
                Some((t, ps)) if t == topic => ps.push(*partition),
                _ => partitions.push((topic.clone(), vec![*partition])),
            }
        }
        TxnLogValue {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions,
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }

    /// InitProducerId for an existing transactional id: an open
    /// transaction is aborted first (its producer fenced by the epoch
    /// bump); otherwise the epoch goes up by one, or, when it would pass
    /// `i16::MAX - 1`, a `fresh_producer_id` starts again at epoch 0.
    pub fn init(
        &mut self,
        timeout_ms: i32,
        fresh_producer_id: impl FnOnce() -> i64,
        now_ms: i64,
    ) -> Result<InitStep, TxnError> {
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Ongoing => Ok(InitStep::AbortFirst(self.begin_abort_fenced(now_ms))),
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                if self.producer_epoch >= i16::MAX - 1 {
                    self.producer_id = fresh_producer_id();
                    self.producer_epoch = 0;
                } else {
                    self.producer_epoch += 1;
                }
                self.timeout_ms = timeout_ms;
                self.state = TxnState::Empty;
                self.partitions.clear();
                self.last_update_ms = now_ms;
                self.start_ms = -1;
                Ok(InitStep::Ready)
            }
        }
    }

    fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if producer_epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the group's
    /// `__consumer_offsets` partition): the transaction is open from now.
    pub fn add_partitions(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: impl IntoIterator<Item = (String, i32)>,
        now_ms: i64,
    ) -> Result<(), TxnError> {
        self.check_producer(producer_id, producer_epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Dead => Err(TxnError::InvalidTxnState),
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Ongoing => {
                if self.state != TxnState::Ongoing {
                    self.partitions.clear();
                    self.start_ms = now_ms;
                }
                self.partitions.extend(partitions);
                self.state = TxnState::Ongoing;
                self.last_update_ms = now_ms;
                Ok(())
            }
        }
    }

    /// KIP-890's verification (AddPartitionsToTxn v4 `verify_only`, asked
    /// by a partition leader before it takes a transaction's first batch):
    /// whether each partition is in this producer's open transaction. A
    /// transaction between EndTxn and its markers answers
    /// CONCURRENT_TRANSACTIONS; one not open holds no partition.
    pub fn verify(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<bool>, TxnError> {
        self.check_producer(producer_id, producer_epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Ongoing => Ok(partitions
                .iter()
                .map(|tp| self.partitions.contains(tp))
                .collect()),
            _ => Ok(vec![false; partitions.len()]),
        }
    }

    /// EndTxn: an open transaction moves to Prepare* and its markers are
    /// returned; a retry of an EndTxn that already completed answers
    /// `Ok(None)`.
    pub fn end(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        outcome: Outcome,
        now_ms: i64,
    ) -> Result<Option<Markers>, TxnError> {
        self.check_producer(producer_id, producer_epoch)?;
        match (self.state, outcome) {
            (TxnState::Ongoing, _) => {
                self.state = match outcome {
                    Outcome::Commit => TxnState::PrepareCommit,
                    Outcome::Abort => TxnState::PrepareAbort,
                };
                self.last_update_ms = now_ms;
                Ok(Some(self.markers(outcome)))
            }
            (TxnState::CompleteCommit, Outcome::Commit)
            | (TxnState::CompleteAbort, Outcome::Abort) => Ok(None),
            (TxnState::PrepareCommit, Outcome::Commit)
            | (TxnState::PrepareAbort, Outcome::Abort) => Err(TxnError::ConcurrentTransactions),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The markers are written: PrepareCommit → CompleteCommit,
    /// PrepareAbort → CompleteAbort, with no partitions left in the
    /// transaction (Kafka's `prepareComplete`: DescribeTransactions and
    /// the stored record list none).
    pub fn complete(&mut self, now_ms: i64) {
        self.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            other => other,
        };
        if matches!(
            self.state,
            TxnState::CompleteCommit | TxnState::CompleteAbort
        ) {
            self.partitions.clear();
        }
        self.last_update_ms = now_ms;
    }

    /// Whether an open transaction has run past its timeout.
    pub fn timed_out(&self, now_ms: i64) -> bool {
        self.state == TxnState::Ongoing
            && now_ms.saturating_sub(self.start_ms) > i64::from(self.timeout_ms)
    }

    /// Aborts an open transaction on the coordinator's own account
    /// (timeout, or InitProducerId from a newer producer): the epoch goes
    /// up first, so the producer still writing is fenced, and the markers
    /// carry the new epoch.
    pub fn begin_abort_fenced(&mut self, now_ms: i64) -> Markers {
        self.producer_epoch = self.producer_epoch.saturating_add(1);
        self.state = TxnState::PrepareAbort;
        self.last_update_ms = now_ms;
        self.markers(Outcome::Abort)
    }

    fn markers(&self, outcome: Outcome) -> Markers {
        Markers {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            outcome,
            partitions: self.partitions.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> (String, i32) {
        ("t".to_string(), p)
    }

    #[test]
    fn a_transaction_commits_through_prepare_and_complete() {
        let mut txn = Transaction::new(7, 60_000, 0);
        txn.add_partitions(7, 0, [tp(0), tp(1)], 10).expect("add");
        assert_eq!(txn.state, TxnState::Ongoing);
        assert_eq!(txn.start_ms, 10);
        let markers = txn
            .end(7, 0, Outcome::Commit, 20)
            .expect("end")
            .expect("markers");
        assert_eq!(markers.partitions, [tp(0), tp(1)]);
        assert_eq!(markers.outcome, Outcome::Commit);
        assert_eq!(txn.state, TxnState::PrepareCommit);
        assert_eq!(
            txn.add_partitions(7, 0, [tp(2)], 21),
            Err(TxnError::ConcurrentTransactions)
        );
        txn.complete(30);
        assert_eq!(txn.state, TxnState::CompleteCommit);
        assert!(txn.partitions.is_empty(), "{:?}", txn.partitions);
        // A retried EndTxn is answered without markers; the other outcome
        // is refused.
        assert_eq!(txn.end(7, 0, Outcome::Commit, 31), Ok(None));
        assert_eq!(
            txn.end(7, 0, Outcome::Abort, 31),
            Err(TxnError::InvalidTxnState)
        );
        // The next transaction starts afresh.
        txn.add_partitions(7, 0, [tp(2)], 40).expect("add");
        assert_eq!(txn.partitions.len(), 1);
        assert_eq!(txn.start_ms, 40);
    }

    #[test]
    fn verification_holds_only_an_open_transactions_partitions() {
        let mut txn = Transaction::new(7, 60_000, 0);
        // Nothing open yet: no partition is held.
        assert_eq!(txn.verify(7, 0, &[tp(0)]), Ok(vec![false]));
        txn.add_partitions(7, 0, [tp(0)], 10).expect("add");
        assert_eq!(txn.verify(7, 0, &[tp(0), tp(1)]), Ok(vec![true, false]));
        assert_eq!(
            txn.verify(8, 0, &[tp(0)]),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert_eq!(txn.verify(7, 1, &[tp(0)]), Err(TxnError::ProducerFenced));
        txn.end(7, 0, Outcome::Abort, 20).expect("end");
        // Between EndTxn and the markers: the leader must not take a batch.
        assert_eq!(
            txn.verify(7, 0, &[tp(0)]),
            Err(TxnError::ConcurrentTransactions)
        );
        txn.complete(30);
        // The aborted transaction's partition is not held by the next one
        // until the producer adds it again.
        assert_eq!(txn.verify(7, 0, &[tp(0)]), Ok(vec![false]));
    }

    #[test]
    fn init_fences_an_open_transaction_and_bumps_the_epoch() {
        let mut txn = Transaction::new(7, 60_000, 0);
        txn.add_partitions(7, 0, [tp(0)], 10).expect("add");
        let step = txn.init(60_000, || 99, 20).expect("init");
        let InitStep::AbortFirst(markers) = step else {
            panic!("{step:?}");
        };
        assert_eq!(
            (markers.producer_epoch, markers.outcome),
            (1, Outcome::Abort)
        );
        // The old producer is fenced.
        assert_eq!(
            txn.add_partitions(7, 0, [tp(0)], 21),
            Err(TxnError::ProducerFenced)
        );
        txn.complete(22);
        assert_eq!(txn.init(60_000, || 99, 23), Ok(InitStep::Ready));
        assert_eq!(
            (txn.producer_id, txn.producer_epoch, txn.state),
            (7, 2, TxnState::Empty)
        );
        assert_eq!(
            txn.add_partitions(8, 2, [tp(0)], 24),
            Err(TxnError::InvalidProducerIdMapping)
        );
        // At the last epoch a fresh producer id starts at 0.
        txn.producer_epoch = i16::MAX - 1;
        assert_eq!(txn.init(60_000, || 99, 25), Ok(InitStep::Ready));
        assert_eq!((txn.producer_id, txn.producer_epoch), (99, 0));
    }

    #[test]
    fn an_open_transaction_times_out_and_round_trips_through_the_log() {
        let mut txn = Transaction::new(7, 1_000, 0);
        txn.add_partitions(7, 0, [tp(3), ("u".into(), 0), tp(1)], 100)
            .expect("add");
        assert!(!txn.timed_out(1_100));
        assert!(txn.timed_out(1_101));
        let stored = txn.to_log();
        assert_eq!(
            stored.partitions,
            [("t".to_string(), vec![1, 3]), ("u".to_string(), vec![0])]
        );
        assert_eq!(Transaction::from_log(&stored), txn);
        let markers = txn.begin_abort_fenced(1_200);
        assert_eq!(markers.partitions.len(), 3);
        assert_eq!(txn.state, TxnState::PrepareAbort);
        assert_eq!(
            txn.end(7, 0, Outcome::Abort, 1_201),
            Err(TxnError::ProducerFenced)
        );
    }
}
