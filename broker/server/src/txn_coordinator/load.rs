//! Reading one `__transaction_state` partition back: the last record of
//! each transactional id (a tombstone forgets it), and the transactions a
//! stop left between Prepare* and Complete*, which the coordinator
//! finishes after the load (their markers wait for other brokers, which
//! the metadata apply that loads the partition must not).

use std::collections::HashMap;

use runnel_coordinator::txn::{Markers, Outcome, Transaction};
use runnel_coordinator::txn_log::{self, TxnLogValue, TxnState};
use runnel_http::error_chain;
use runnel_log::records::BatchRecords;

use super::store::TxnLog;
use super::{TRANSACTION_TOPIC, TxnStoreError};
use crate::log_reader::for_each_batch;

/// A partition's ids with their state, and the transactions finished on
/// the way.
#[derive(Debug, Default)]
pub(super) struct LoadedPartition {
    pub ids: Vec<(String, Transaction)>,
    /// Transactions found prepared: their markers are to be written and
    /// their end stored (see `TxnCoordinator::finish_prepared`).
    pub prepared: Vec<(String, Markers)>,
}

pub(super) fn load_partition(
    store: &TxnLog,
    partition: i32,
) -> Result<LoadedPartition, TxnStoreError> {
    let mut last: HashMap<String, Option<TxnLogValue>> = HashMap::new();
    {
        let log = store.state_partition(partition)?;
        let log = log.log();
        let start = log.log_start_offset();
        for_each_batch::<TxnStoreError>(&log, start, TRANSACTION_TOPIC, |header, batch| {
            if header.is_control() {
                return Ok(());
            }
            let records = BatchRecords::decode(batch)?;
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
                        last.insert(id, None);
                    }
                    Some(Ok(value)) => {
                        last.insert(id, Some(value));
                    }
                    Some(Err(err)) => {
                        tracing::warn!(partition, transactional_id = id, error = %error_chain(&err), "skipping a {TRANSACTION_TOPIC} record")
                    }
                }
            }
            Ok(())
        })?;
    }
    let mut loaded = LoadedPartition::default();
    for (id, value) in last {
        let Some(value) = value else { continue };
        let txn = Transaction::from_log(&value);
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
            loaded.prepared.push((id.clone(), markers));
        }
        loaded.ids.push((id, txn));
    }
    Ok(loaded)
}
