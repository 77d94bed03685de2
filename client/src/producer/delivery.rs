//! Delivery reports: one outcome per batch, shared by its records. A
//! record's [`Delivery`] is the batch's outcome and the record's place in
//! it, so sending a record allocates nothing for its report, and a batch's
//! answer wakes only the tasks that were waiting for one of its records.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use super::accumulator::RecordMetadata;
use crate::error::{ClientError, Result};

/// How a batch ended.
enum Outcome {
    /// Written at `base_offset` (-1 when the broker did not say, `acks=0`).
    Delivered { base_offset: i64 },
    /// Not written; the error each of its records reports.
    Failed(Box<dyn Fn() -> ClientError + Send + Sync>),
}

/// The outcome of one batch, once known, and who waits for it.
pub(crate) struct BatchOutcome {
    partition: i32,
    outcome: OnceLock<Outcome>,
    waiters: Mutex<Vec<Waker>>,
}

impl std::fmt::Debug for BatchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.outcome.get() {
            None => "pending".to_string(),
            Some(Outcome::Delivered { base_offset }) => format!("delivered at {base_offset}"),
            Some(Outcome::Failed(error)) => format!("failed: {}", error()),
        };
        f.debug_struct("BatchOutcome")
            .field("partition", &self.partition)
            .field("outcome", &state)
            .finish()
    }
}

impl BatchOutcome {
    pub fn new(partition: i32) -> Arc<Self> {
        Arc::new(Self {
            partition,
            outcome: OnceLock::new(),
            waiters: Mutex::new(Vec::new()),
        })
    }

    /// The batch was written at `base_offset` (-1: not known).
    pub fn delivered(&self, base_offset: i64) {
        self.finish(Outcome::Delivered { base_offset });
    }

    /// The batch was not written; each record reports `error()`.
    pub fn failed(&self, error: impl Fn() -> ClientError + Send + Sync + 'static) {
        self.finish(Outcome::Failed(Box::new(error)));
    }

    pub fn is_finished(&self) -> bool {
        self.outcome.get().is_some()
    }

    /// The first outcome stands; waiters are woken once.
    fn finish(&self, outcome: Outcome) {
        if self.outcome.set(outcome).is_err() {
            return;
        }
        let waiters = std::mem::take(&mut *self.lock());
        for waker in waiters {
            waker.wake();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn report(&self, index: u32) -> Option<Result<RecordMetadata>> {
        Some(match self.outcome.get()? {
            Outcome::Delivered { base_offset } => Ok(RecordMetadata {
                partition: self.partition,
                offset: if *base_offset < 0 {
                    -1
                } else {
                    base_offset + i64::from(index)
                },
            }),
            Outcome::Failed(error) => Err(error()),
        })
    }
}

/// Resolves to where the record landed, or why it did not.
#[derive(Debug)]
pub struct Delivery {
    batch: Arc<BatchOutcome>,
    index: u32,
}

impl Delivery {
    pub(crate) fn new(batch: Arc<BatchOutcome>, index: u32) -> Self {
        Self { batch, index }
    }
}

impl std::future::Future for Delivery {
    type Output = Result<RecordMetadata>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(report) = self.batch.report(self.index) {
            return Poll::Ready(report);
        }
        let mut waiters = self.batch.lock();
        // Checked again under the lock: `finish` sets the outcome before it
        // takes the waiters, so either this sees it or its waker is woken.
        if let Some(report) = self.batch.report(self.index) {
            return Poll::Ready(report);
        }
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_record_of_a_batch_learns_its_offset_from_one_answer() {
        let batch = BatchOutcome::new(3);
        let first = Delivery::new(Arc::clone(&batch), 0);
        let third = Delivery::new(Arc::clone(&batch), 2);
        let waiting = tokio::spawn(third);
        tokio::task::yield_now().await;
        batch.delivered(40);
        assert_eq!(
            waiting.await.expect("joined").expect("delivered"),
            RecordMetadata {
                partition: 3,
                offset: 42
            }
        );
        assert_eq!(first.await.expect("delivered").offset, 40);
        // The first outcome stands.
        batch.failed(|| ClientError::ProducerClosed);
        assert!(Delivery::new(batch, 1).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_record() {
        let batch = BatchOutcome::new(0);
        batch.failed(|| ClientError::ProducerClosed);
        for index in 0..3 {
            let report = Delivery::new(Arc::clone(&batch), index).await;
            assert!(matches!(report, Err(ClientError::ProducerClosed)));
        }
    }
}
