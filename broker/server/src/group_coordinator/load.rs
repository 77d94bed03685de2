//! Rebuilding one shard from its `__consumer_offsets` partition: every
//! batch from the log start, the last record of each key winning;
//! transactional offsets wait for their producer's marker (applied on
//! commit, dropped on abort, kept pending while the transaction is open);
//! stored groups are handed to the membership state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError};

use runnel_coordinator::{GroupMetadataValue, OffsetStore, OffsetsRecord};
use runnel_http::error_chain;
use runnel_log::control::ControlType;
use runnel_log::records::BatchRecords;

use super::shard::Shard;
use super::{GroupCoordinator, OFFSETS_TOPIC, OffsetsError};
use crate::log_reader::{ReadError, for_each_batch};

/// What loading found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Loaded {
    /// Committed offsets.
    pub offsets: usize,
    /// Groups with stored membership state.
    pub groups: usize,
}

impl GroupCoordinator {
    /// Coordinates the groups of `partition` (this broker became its
    /// leader): reads the partition back and serves its offsets from now.
    pub fn load(&self, partition: i32) -> Result<Loaded, OffsetsError> {
        let hosted = self
            .replicas
            .get(OFFSETS_TOPIC, partition)
            .ok_or(OffsetsError::MissingPartition(partition))?;
        let mut store = OffsetStore::new();
        let mut pending: HashMap<i64, Vec<OffsetsRecord>> = HashMap::new();
        // The last record of each group wins; a tombstone removes it.
        let mut stored_groups: BTreeMap<String, Option<GroupMetadataValue>> = BTreeMap::new();
        {
            let log = hosted.log();
            let start = log.log_start_offset();
            for_each_batch::<ReadError>(&log, start, OFFSETS_TOPIC, |header, batch| {
                let records = BatchRecords::decode(batch).map_err(|source| ReadError::Records {
                    topic: OFFSETS_TOPIC.to_string(),
                    source,
                })?;
                if header.is_control() {
                    let kind = records
                        .records
                        .first()
                        .and_then(|r| records.key(r))
                        .and_then(ControlType::parse);
                    let done = pending.remove(&header.producer_id).unwrap_or_default();
                    if kind == Some(ControlType::Commit) {
                        for record in done {
                            store.apply(record);
                        }
                    }
                    return Ok(());
                }
                for record in &records.records {
                    let Some(key) = records.key(record) else {
                        continue;
                    };
                    match OffsetsRecord::decode(key, records.value(record)) {
                        Ok(OffsetsRecord::GroupMetadata { group, value }) => {
                            stored_groups.insert(group, value);
                        }
                        Ok(decoded) if header.is_transactional() => {
                            pending.entry(header.producer_id).or_default().push(decoded);
                        }
                        Ok(decoded) => store.apply(decoded),
                        Err(err) => tracing::warn!(
                            partition,
                            offset = records.offset(record),
                            error = %error_chain(&err),
                            "skipping an {OFFSETS_TOPIC} record"
                        ),
                    }
                }
                Ok(())
            })?;
        }
        let offsets = store.groups().map(|g| store.offsets_of(g).count()).sum();
        let stored_groups: Vec<(String, GroupMetadataValue)> = stored_groups
            .into_iter()
            .filter_map(|(group, value)| Some((group, value?)))
            .collect();
        let groups = stored_groups.len();
        self.groups.restore(stored_groups);
        self.shards
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(partition, Arc::new(Shard::new(store, pending)));
        Ok(Loaded { offsets, groups })
    }
}
