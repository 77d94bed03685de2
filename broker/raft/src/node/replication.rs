//! Fetch and FetchSnapshot on both sides: the leader validates a follower's
//! position (answering records, a DivergingEpoch to truncate to, or the
//! snapshot id to fetch when the position is below the log start) and
//! moves the high watermark; a follower pulls, appends, syncs, truncates and
//! installs snapshots.
//!
//! A follower reports only synced offsets (it syncs before each Fetch), so
//! the leader's high watermark counts only entries that survive a crash.

use crate::error::RaftError;
use crate::log::ReplicatedLog;
use crate::message::{
    ErrorCode, FetchRequest, FetchResponse, FetchSnapshotRequest, FetchSnapshotResponse, Message,
};
use crate::node::{Effect, RaftNode};
use crate::state::{EpochState, InFlightFetch};
use crate::types::{Entry, NodeId, OffsetAndEpoch};

/// What the leader makes of a fetch position.
enum FetchPosition {
    Valid,
    Diverging(OffsetAndEpoch),
    Snapshot(Option<OffsetAndEpoch>),
}

impl RaftNode {
    /// The error for a request in `request_epoch`, if this node can't serve
    /// it as the leader of that epoch.
    fn leader_epoch_error(&self, request_epoch: u32) -> Option<ErrorCode> {
        let epoch = self.state.epoch();
        if request_epoch < epoch {
            Some(ErrorCode::FencedLeaderEpoch)
        } else if request_epoch > epoch {
            Some(ErrorCode::UnknownLeaderEpoch)
        } else if !matches!(self.state, EpochState::Leader(_)) {
            Some(ErrorCode::NotLeaderOrFollower)
        } else {
            None
        }
    }

    pub(crate) fn handle_fetch_request(
        &mut self,
        log: &impl ReplicatedLog,
        from: NodeId,
        request: FetchRequest,
        now_ms: u64,
    ) {
        let request_position =
            OffsetAndEpoch::new(request.fetch_offset, request.last_fetched_epoch);
        let mut response = FetchResponse {
            error: self.leader_epoch_error(request.current_leader_epoch),
            current_leader: self.leader_and_epoch(),
            high_watermark: self.high_watermark,
            log_start_offset: log.log_start_offset(),
            records: Vec::new(),
            diverging_epoch: None,
            snapshot_id: None,
            request_position,
        };
        if response.error.is_none() {
            match validate_position(log, &request) {
                FetchPosition::Valid => {
                    self.record_fetch(
                        from,
                        Some(request.fetch_offset.min(log.end_offset())),
                        now_ms,
                    );
                    response.high_watermark = self.high_watermark;
                    response.records =
                        log.read(request.fetch_offset, self.config.max_fetch_entries);
                }
                FetchPosition::Diverging(end) => {
                    self.record_fetch(from, None, now_ms);
                    response.diverging_epoch = Some(end);
                }
                FetchPosition::Snapshot(id) => {
                    self.record_fetch(from, None, now_ms);
                    response.snapshot_id = id;
                }
            }
        }
        self.send(from, Message::FetchResponse(response));
    }

    /// The leader heard from `from`; `end_offset` is its synced log end if
    /// its position was valid.
    fn record_fetch(&mut self, from: NodeId, end_offset: Option<u64>, now_ms: u64) {
        let EpochState::Leader(leader) = &mut self.state else {
            return;
        };
        let Some(voter) = leader.voter_states.get_mut(&from) else {
            // An observer: served, but it counts for nothing.
            return;
        };
        voter.last_fetch_ms = Some(now_ms);
        voter.has_acknowledged_leader = true;
        if end_offset.is_some() {
            voter.end_offset = end_offset;
        }
        leader.fetched_since_check.insert(from);
        self.maybe_advance_leader_high_watermark();
    }

    pub(crate) fn maybe_send_fetch(&mut self, log: &impl ReplicatedLog, now_ms: u64) {
        let request_timeout_ms = self.config.request_timeout_ms;
        let EpochState::Follower(follower) = &self.state else {
            return;
        };
        if let Some(in_flight) = follower.in_flight
            && now_ms < in_flight.sent_ms + request_timeout_ms
        {
            return;
        }
        if now_ms < follower.next_fetch_ms {
            return;
        }
        // Report only what a crash cannot take back.
        self.flush_log(log);
        let EpochState::Follower(follower) = &mut self.state else {
            return;
        };
        let (leader_id, epoch) = (follower.leader_id, follower.epoch);
        let message = match follower.snapshot_fetch {
            Some((snapshot_id, position)) => {
                follower.in_flight = Some(InFlightFetch {
                    sent_ms: now_ms,
                    position: snapshot_id,
                    snapshot_position: Some(position),
                });
                Message::FetchSnapshotRequest(FetchSnapshotRequest {
                    current_leader_epoch: epoch,
                    snapshot_id,
                    position,
                })
            }
            None => {
                let position = Self::log_end(log);
                follower.in_flight = Some(InFlightFetch {
                    sent_ms: now_ms,
                    position,
                    snapshot_position: None,
                });
                Message::FetchRequest(FetchRequest {
                    current_leader_epoch: epoch,
                    fetch_offset: position.offset,
                    last_fetched_epoch: position.epoch,
                })
            }
        };
        self.send(leader_id, message);
    }

    pub(crate) fn handle_fetch_response(
        &mut self,
        log: &mut impl ReplicatedLog,
        from: NodeId,
        response: FetchResponse,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        if self.observe_leader(response.current_leader, now_ms) {
            return Ok(());
        }
        let fetch_timeout_ms = self.config.fetch_timeout_ms;
        let fetch_backoff_ms = self.config.fetch_backoff_ms;
        let EpochState::Follower(follower) = &mut self.state else {
            return Ok(());
        };
        let expected = follower.in_flight.filter(|f| f.snapshot_position.is_none());
        if follower.leader_id != from
            || response.current_leader.epoch != follower.epoch
            || expected.map(|f| f.position) != Some(response.request_position)
        {
            return Ok(());
        }
        follower.in_flight = None;
        if response.error.is_some() {
            follower.next_fetch_ms = now_ms + fetch_backoff_ms;
            if response.current_leader.leader_id != Some(from) {
                // Our leader says it leads no more (it resigned or restarted
                // in this epoch): look for the next one now, and grant
                // pre-votes to others doing the same.
                follower.leader_resigned = true;
                follower.fetch_deadline_ms = follower.fetch_deadline_ms.min(now_ms);
            }
            return Ok(());
        }
        follower.fetch_deadline_ms = now_ms + fetch_timeout_ms;
        follower.has_fetched_from_leader = true;
        let epoch = follower.epoch;
        if let Some(diverging) = response.diverging_epoch {
            follower.next_fetch_ms = now_ms;
            let local = log.end_offset_for_epoch(diverging.epoch);
            let offset = local
                .map_or(diverging.offset, |l| l.offset.min(diverging.offset))
                .min(log.end_offset())
                .max(log.log_start_offset());
            log.truncate_to(offset)
                .map_err(|source| RaftError::Truncate { offset, source })?;
            self.synced_end_offset = self.synced_end_offset.min(log.end_offset());
            return Ok(());
        }
        if let Some(snapshot_id) = response.snapshot_id {
            follower.next_fetch_ms = now_ms;
            follower.snapshot_fetch = Some((snapshot_id, 0));
            return Ok(());
        }
        follower.next_fetch_ms = if response.records.is_empty() {
            now_ms + fetch_backoff_ms
        } else {
            now_ms
        };
        if !continues_log(log, &response.records, epoch) {
            return Ok(());
        }
        let offset = log.end_offset();
        log.append(&response.records)
            .map_err(|source| RaftError::AppendAsFollower { offset, source })?;
        self.flush_log(log);
        self.follow_high_watermark(log, response.high_watermark);
        Ok(())
    }

    /// A follower's high watermark: the leader's, as far as its own log goes.
    fn follow_high_watermark(&mut self, log: &impl ReplicatedLog, leader_high_watermark: u64) {
        let high_watermark = leader_high_watermark.min(log.end_offset());
        if high_watermark > self.high_watermark {
            self.high_watermark = high_watermark;
            self.effects.push(Effect::HighWatermark { high_watermark });
        }
    }

    pub(crate) fn handle_fetch_snapshot_request(
        &mut self,
        log: &impl ReplicatedLog,
        from: NodeId,
        request: FetchSnapshotRequest,
        now_ms: u64,
    ) {
        let mut response = FetchSnapshotResponse {
            error: self.leader_epoch_error(request.current_leader_epoch),
            current_leader: self.leader_and_epoch(),
            snapshot_id: request.snapshot_id,
            size: 0,
            position: request.position,
            unaligned_records: bytes::Bytes::new(),
        };
        if response.error.is_none() {
            self.record_fetch(from, None, now_ms);
            let max_bytes = self.config.max_snapshot_chunk_bytes;
            match log.read_snapshot(request.snapshot_id, request.position, max_bytes) {
                None => response.error = Some(ErrorCode::SnapshotNotFound),
                Some(chunk) if request.position > chunk.size => {
                    response.error = Some(ErrorCode::PositionOutOfRange);
                }
                Some(chunk) => {
                    response.size = chunk.size;
                    response.unaligned_records = chunk.bytes;
                }
            }
        }
        self.send(from, Message::FetchSnapshotResponse(response));
    }

    pub(crate) fn handle_fetch_snapshot_response(
        &mut self,
        log: &mut impl ReplicatedLog,
        from: NodeId,
        response: FetchSnapshotResponse,
        now_ms: u64,
    ) -> Result<(), RaftError> {
        if self.observe_leader(response.current_leader, now_ms) {
            return Ok(());
        }
        let fetch_timeout_ms = self.config.fetch_timeout_ms;
        let fetch_backoff_ms = self.config.fetch_backoff_ms;
        let EpochState::Follower(follower) = &mut self.state else {
            return Ok(());
        };
        let expected = (response.snapshot_id, response.position);
        let waited_for = follower
            .in_flight
            .and_then(|f| f.snapshot_position.map(|p| (f.position, p)));
        if follower.leader_id != from
            || response.current_leader.epoch != follower.epoch
            || waited_for != Some(expected)
            || follower.snapshot_fetch != Some(expected)
        {
            return Ok(());
        }
        follower.in_flight = None;
        let len = response.unaligned_records.len() as u64;
        if response.error.is_some() || (len == 0 && response.position < response.size) {
            // The leader has moved on to a newer snapshot: fetch again to
            // learn its id.
            follower.snapshot_fetch = None;
            follower.next_fetch_ms = now_ms + fetch_backoff_ms;
            return Ok(());
        }
        follower.fetch_deadline_ms = now_ms + fetch_timeout_ms;
        follower.has_fetched_from_leader = true;
        follower.next_fetch_ms = now_ms;
        let next_position = response.position.saturating_add(len);
        let complete = next_position >= response.size;
        follower.snapshot_fetch = if complete {
            None
        } else {
            Some((response.snapshot_id, next_position))
        };
        log.write_snapshot_chunk(
            response.snapshot_id,
            response.position,
            &response.unaligned_records,
            complete,
        )
        .map_err(|source| RaftError::WriteSnapshot {
            snapshot_id: response.snapshot_id,
            position: response.position,
            source,
        })?;
        if complete {
            self.synced_end_offset = log.end_offset();
        }
        Ok(())
    }
}

/// Kafka's `validateOffsetAndEpoch`: is the fetcher's log a prefix of ours?
fn validate_position(log: &impl ReplicatedLog, request: &FetchRequest) -> FetchPosition {
    if request.fetch_offset < log.log_start_offset() {
        return FetchPosition::Snapshot(log.latest_snapshot_id());
    }
    match log.end_offset_for_epoch(request.last_fetched_epoch) {
        None => FetchPosition::Snapshot(log.latest_snapshot_id()),
        Some(end) if end.offset < log.log_start_offset() => {
            FetchPosition::Snapshot(log.latest_snapshot_id())
        }
        Some(end)
            if end.epoch < request.last_fetched_epoch || end.offset < request.fetch_offset =>
        {
            FetchPosition::Diverging(end)
        }
        Some(_) => FetchPosition::Valid,
    }
}

/// Whether fetched records continue the local log, each entry starting
/// where the one before ends, none empty, and epochs not past the
/// follower's.
fn continues_log(log: &impl ReplicatedLog, records: &[Entry], epoch: u32) -> bool {
    let mut last_epoch = log.last_fetched_epoch();
    let mut expected_offset = log.end_offset();
    for entry in records {
        if entry.offset != expected_offset
            || entry.record_count == 0
            || entry.epoch < last_epoch
            || entry.epoch > epoch
        {
            return false;
        }
        last_epoch = entry.epoch;
        expected_offset = entry.next_offset();
    }
    true
}
