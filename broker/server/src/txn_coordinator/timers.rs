//! The coordinator's own steps, run by the broker's timer: aborting open
//! transactions past `transaction.timeout.ms` (fencing their producer) and
//! forgetting transactional ids idle past `transactional.id.expiration.ms`.
//! A failure is logged and the pass goes on with the next id; the id
//! failed is tried again at the next pass.

use runnel_coordinator::txn_log::TxnState;
use runnel_http::error_chain;

use super::shards::lock_slot;
use super::{TxnCoordinator, TxnEnded};

impl TxnCoordinator {
    /// Aborts every open transaction of the loaded shards past its
    /// timeout; returns the transactions ended.
    pub fn abort_timed_out(&self, now_ms: i64) -> Vec<TxnEnded> {
        let mut ended = Vec::new();
        for (partition, shard) in self.shards.all() {
            for (id, entry) in shard.entries() {
                let mut slot = lock_slot(&entry);
                if slot.removed {
                    continue;
                }
                let Some(mut txn) = slot.txn.clone().filter(|t| t.timed_out(now_ms)) else {
                    continue;
                };
                let markers = txn.begin_abort_fenced(now_ms);
                tracing::info!(
                    transactional_id = id,
                    producer_id = txn.producer_id,
                    "aborting a transaction past transaction.timeout.ms"
                );
                match self
                    .store
                    .finish(partition, &id, &mut txn, &markers, now_ms)
                {
                    Ok(done) => {
                        slot.txn = Some(txn);
                        ended.push(done);
                    }
                    Err(err) => tracing::error!(
                        transactional_id = id,
                        error = %error_chain(&err),
                        "aborting a timed-out transaction failed"
                    ),
                }
            }
        }
        ended
    }

    /// Forgets transactional ids with no open transaction whose last
    /// change is older than `transactional.id.expiration.ms`, with a
    /// tombstone in `__transaction_state`; returns how many.
    pub fn expire_ids(&self, now_ms: i64) -> usize {
        let max_idle_ms = self.config.id_expiration_ms;
        let mut expired = 0;
        for (partition, shard) in self.shards.all() {
            for (id, entry) in shard.entries() {
                let mut slot = lock_slot(&entry);
                if slot.txn.is_none() && !slot.removed {
                    // An InitProducerId that could not store the id's
                    // first state left the slot empty: nothing to forget.
                    slot.removed = true;
                    shard.remove(&id, &entry);
                    continue;
                }
                let due = slot.txn.as_ref().is_some_and(|t| {
                    matches!(
                        t.state,
                        TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    ) && now_ms.saturating_sub(t.last_update_ms) >= max_idle_ms
                });
                if slot.removed || !due {
                    continue;
                }
                if let Err(err) = self.store.forget(partition, &id, now_ms) {
                    tracing::error!(
                        transactional_id = id,
                        error = %error_chain(&err),
                        "expiring a transactional id failed"
                    );
                    continue;
                }
                slot.removed = true;
                shard.remove(&id, &entry);
                expired += 1;
                tracing::info!(transactional_id = id, "transactional id expired");
            }
        }
        expired
    }
}
