//! The safety properties the simulation checks after every step:
//!
//! - at most one leader per epoch (election safety);
//! - a committed entry (below the high watermark of any node that believed
//!   it) is the same on every node that has that offset below its own high
//!   watermark, now or later, and in every snapshot; no node truncates below
//!   its high watermark (no committed entry lost or changed);
//! - log matching: two entries with the same (offset, epoch) carry the same
//!   payload and follow entries of the same epoch, so logs that agree on an
//!   entry agree on everything before it;
//! - the `quorum-state` never goes back an epoch, one vote per epoch;
//! - a node's high watermark never moves back while it runs, and never past
//!   its log end;
//! - a new leader's log holds every entry committed in an earlier epoch
//!   (leader completeness).

use std::collections::{BTreeMap, HashMap};

use runnel_raft::{Entry, Epoch, MemoryLog, NodeId, Payload, QuorumStateData, ReplicatedLog};

#[derive(Debug, Default)]
pub struct Checker {
    leaders_by_epoch: BTreeMap<Epoch, NodeId>,
    /// Every committed entry, by offset, with the epoch it was committed
    /// in (the epoch of the first node whose high watermark covered it).
    committed: BTreeMap<u64, (Entry, Epoch)>,
    /// (offset, epoch) -> (payload, epoch of the entry before, if known).
    entries_seen: HashMap<(u64, Epoch), (Payload, Option<Epoch>)>,
}

impl Checker {
    pub fn committed_end(&self) -> u64 {
        self.committed.keys().next_back().map_or(0, |o| o + 1)
    }

    pub fn committed(&self, offset: u64) -> Option<&Entry> {
        self.committed.get(&offset).map(|(entry, _)| entry)
    }

    pub fn leaders(&self) -> usize {
        self.leaders_by_epoch.len()
    }

    pub fn on_leader(&mut self, epoch: Epoch, id: NodeId, log: &MemoryLog) -> Result<(), String> {
        if let Some(other) = self.leaders_by_epoch.insert(epoch, id)
            && other != id
        {
            return Err(format!("two leaders in epoch {epoch}: {other} and {id}"));
        }
        // Leader completeness: a leader of a later epoch than the commit has
        // the entry (one elected late in an earlier epoch need not).
        for (offset, (committed, commit_epoch)) in self.committed.range(log.log_start_offset()..) {
            if *commit_epoch < epoch && log.entry(*offset) != Some(committed) {
                return Err(format!(
                    "node {id} leads epoch {epoch} without committed {committed:?} (has {:?})",
                    log.entry(*offset)
                ));
            }
        }
        Ok(())
    }

    pub fn on_persist(
        &mut self,
        id: NodeId,
        before: QuorumStateData,
        after: QuorumStateData,
    ) -> Result<(), String> {
        if after.leader_epoch < before.leader_epoch {
            return Err(format!(
                "node {id} persisted epoch {after:?} after {before:?}"
            ));
        }
        if after.leader_epoch == before.leader_epoch {
            if let (Some(a), Some(b)) = (before.voted_id, after.voted_id)
                && a != b
            {
                return Err(format!(
                    "node {id} voted twice in epoch {}: {a} then {b}",
                    after.leader_epoch
                ));
            }
            if let (Some(a), Some(b)) = (before.leader_id, after.leader_id)
                && a != b
            {
                return Err(format!(
                    "node {id} knew two leaders in epoch {}: {a} then {b}",
                    after.leader_epoch
                ));
            }
        }
        Ok(())
    }

    /// `id` advanced its high watermark to `high_watermark` (from `from`):
    /// everything below it in its log is committed.
    pub fn on_high_watermark(
        &mut self,
        id: NodeId,
        epoch: Epoch,
        log: &MemoryLog,
        from: u64,
        high_watermark: u64,
    ) -> Result<(), String> {
        if high_watermark > log.end_offset() {
            return Err(format!(
                "node {id} high watermark {high_watermark} past its log end {}",
                log.end_offset()
            ));
        }
        for offset in from.max(log.log_start_offset())..high_watermark {
            let Some(entry) = log.entry(offset) else {
                continue;
            };
            match self.committed.get(&offset) {
                Some((committed, _)) if committed != entry => {
                    return Err(format!(
                        "node {id} commits {entry:?} at offset {offset}, but {committed:?} was committed there"
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.insert(offset, (entry.clone(), epoch));
                }
            }
        }
        Ok(())
    }

    /// Checks the entries of `log` from `from` on (those that changed).
    /// Below the node's high watermark they must be the committed ones; above
    /// it a stale node may hold others until it learns better.
    pub fn check_log(
        &mut self,
        id: NodeId,
        log: &MemoryLog,
        from: u64,
        high_watermark: u64,
    ) -> Result<(), String> {
        if high_watermark > log.end_offset() {
            return Err(format!(
                "node {id} truncated to {} below its high watermark {high_watermark}",
                log.end_offset()
            ));
        }
        let start = from.max(log.log_start_offset());
        for offset in start..log.end_offset() {
            let Some(entry) = log.entry(offset) else {
                continue;
            };
            if offset < high_watermark
                && let Some((committed, _)) = self.committed.get(&offset)
                && committed != entry
            {
                return Err(format!(
                    "node {id} has {entry:?} at committed offset {offset} (committed: {committed:?})"
                ));
            }
            let previous = if offset > log.log_start_offset() {
                log.entry(offset - 1).map(|e| e.epoch)
            } else {
                None
            };
            match self.entries_seen.get_mut(&(offset, entry.epoch)) {
                None => {
                    self.entries_seen
                        .insert((offset, entry.epoch), (entry.payload.clone(), previous));
                }
                Some((payload, seen_previous)) => {
                    if *payload != entry.payload {
                        return Err(format!(
                            "log matching: node {id} has {entry:?}, another node {payload:?} at the same (offset, epoch)"
                        ));
                    }
                    match (*seen_previous, previous) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(format!(
                                "log matching: node {id} has epoch {b} before ({offset}, {}), another node epoch {a}",
                                entry.epoch
                            ));
                        }
                        (None, Some(b)) => *seen_previous = Some(b),
                        _ => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// A snapshot just installed holds only committed entries.
    pub fn check_snapshot(&self, id: NodeId, log: &MemoryLog) -> Result<(), String> {
        let Some(bytes) = log.snapshot_bytes() else {
            return Ok(());
        };
        for entry in MemoryLog::decode_snapshot(bytes) {
            if self.committed(entry.offset) != Some(&entry) {
                return Err(format!(
                    "node {id}'s snapshot holds {entry:?}, not the committed entry"
                ));
            }
        }
        Ok(())
    }
}
