//! The deterministic simulation: N voters and an observer over a seeded
//! network that drops,
//! delays (and so reorders) and duplicates messages; nodes crash with or
//! without their unsynced tail, also part way through carrying out a step's
//! effects and restart from their `quorum-state` and
//! synced log; partitions come and heal; clients propose at the leader;
//! nodes take snapshots at their high watermark so lagging followers fetch
//! them. Every step is checked by [`Checker`]. After the chaos the network
//! heals and a leader must be elected and commit a new entry within a
//! bounded simulated time.
//!
//! Everything random comes from the seed, so a failure replays exactly.

use std::collections::BTreeMap;

use bytes::Bytes;
use runnel_raft::rng::SplitMix64;
use runnel_raft::{
    Effect, LogError, MemoryLog, Message, Mutation, NodeId, OffsetAndEpoch, Proposal,
    QuorumStateData, RaftConfig, RaftNode, ReplicatedLog, Role, SnapshotChunk,
};

use super::checker::Checker;

const TICK_MS: u64 = 10;
const TRACE_LINES: usize = 60;

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Voters, ids `1..=nodes`.
    pub nodes: usize,
    /// Observers (brokers that fetch but do not vote), the ids after.
    pub observers: usize,
    pub seed: u64,
    pub chaos_ms: u64,
    /// After the heal, a leader must commit a new entry within this.
    pub liveness_ms: u64,
    pub drop_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub max_delay_ms: u64,
    /// Chance per tick, in millionths, of crashing a node.
    pub crash_per_million: u64,
    /// Chance per effect carried out, in millionths, that the node dies
    /// just before it.
    pub crash_mid_effects_per_million: u64,
    pub partition_per_million: u64,
    pub propose_per_mille: u64,
    pub snapshot_per_million: u64,
    pub max_fetch_entries: usize,
    pub mutation: Mutation,
}

impl SimConfig {
    pub fn new(nodes: usize, seed: u64) -> Self {
        SimConfig {
            nodes,
            observers: 1,
            seed,
            chaos_ms: 20_000,
            liveness_ms: 30_000,
            drop_per_mille: 50,
            duplicate_per_mille: 20,
            max_delay_ms: 60,
            crash_per_million: 2_000,
            crash_mid_effects_per_million: 300,
            partition_per_million: 1_500,
            propose_per_mille: 80,
            snapshot_per_million: 1_000,
            max_fetch_entries: 8,
            mutation: Mutation::None,
        }
    }
}

/// What a run saw.
#[derive(Debug, Default)]
pub struct SimReport {
    pub committed: u64,
    pub leaders: usize,
    pub crashes: u64,
    /// Controlled shutdowns of the leader (resign, then stop).
    pub shutdowns: u64,
    pub snapshots_installed: u64,
    pub messages: u64,
    pub healed_commit_ms: u64,
    /// Ticks of the chaos during which some node was leader.
    pub ticks_with_leader: u64,
    pub ticks: u64,
}

/// A [`MemoryLog`] that remembers the lowest offset changed since the
/// checker last looked.
#[derive(Debug, Default)]
struct SimLog {
    inner: MemoryLog,
    dirty_from: Option<u64>,
    snapshot_installed: bool,
}

impl SimLog {
    fn mark(&mut self, offset: u64) {
        self.dirty_from = Some(self.dirty_from.map_or(offset, |d| d.min(offset)));
    }
}

impl ReplicatedLog for SimLog {
    fn log_start_offset(&self) -> u64 {
        self.inner.log_start_offset()
    }
    fn end_offset(&self) -> u64 {
        self.inner.end_offset()
    }
    fn last_fetched_epoch(&self) -> u32 {
        self.inner.last_fetched_epoch()
    }
    fn end_offset_for_epoch(&self, epoch: u32) -> Option<OffsetAndEpoch> {
        self.inner.end_offset_for_epoch(epoch)
    }
    fn read(&self, from: u64, max_entries: usize) -> Vec<runnel_raft::Entry> {
        self.inner.read(from, max_entries)
    }
    fn append(&mut self, entries: &[runnel_raft::Entry]) -> Result<(), LogError> {
        if let Some(first) = entries.first() {
            self.mark(first.offset);
        }
        self.inner.append(entries)
    }
    fn truncate_to(&mut self, offset: u64) -> Result<(), LogError> {
        self.mark(offset);
        self.inner.truncate_to(offset)
    }
    fn latest_snapshot_id(&self) -> Option<OffsetAndEpoch> {
        self.inner.latest_snapshot_id()
    }
    fn read_snapshot(
        &self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        max_bytes: usize,
    ) -> Option<SnapshotChunk> {
        self.inner.read_snapshot(snapshot_id, position, max_bytes)
    }
    fn write_snapshot_chunk(
        &mut self,
        snapshot_id: OffsetAndEpoch,
        position: u64,
        bytes: &[u8],
        complete: bool,
    ) -> Result<(), LogError> {
        if complete {
            self.snapshot_installed = true;
            self.mark(snapshot_id.offset);
        }
        self.inner
            .write_snapshot_chunk(snapshot_id, position, bytes, complete)
    }
}

#[derive(Debug)]
struct SimNode {
    id: NodeId,
    raft: Option<RaftNode>,
    log: SimLog,
    quorum_state: QuorumStateData,
    /// The high watermark seen in this run of the node.
    high_watermark: u64,
    restart_at_ms: u64,
    restarts: u64,
}

#[derive(Debug)]
struct InFlight {
    deliver_at_ms: u64,
    from: NodeId,
    to: NodeId,
    message: Message,
}

pub struct Sim {
    config: SimConfig,
    rng: SplitMix64,
    now_ms: u64,
    nodes: Vec<SimNode>,
    network: Vec<InFlight>,
    /// Each node's side when partitioned.
    partition: Option<Vec<u8>>,
    chaos: bool,
    checker: Checker,
    trace: Vec<String>,
    next_payload: u64,
    report: SimReport,
}

fn raft_config(id: NodeId, sim: &SimConfig) -> RaftConfig {
    let mut config = RaftConfig::new(id, (1..=sim.nodes).map(|i| i as NodeId));
    config.request_timeout_ms = 500;
    config.fetch_backoff_ms = 50;
    config.max_fetch_entries = sim.max_fetch_entries;
    config.max_snapshot_chunk_bytes = 64;
    config.mutation = sim.mutation;
    config
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        let mut rng = SplitMix64::new(config.seed);
        let nodes = (1..=config.nodes + config.observers)
            .map(|i| {
                let id = i as NodeId;
                let log = SimLog::default();
                let raft = RaftNode::new(
                    raft_config(id, &config),
                    QuorumStateData::default(),
                    &log,
                    rng.next_u64(),
                    0,
                );
                SimNode {
                    id,
                    raft: Some(raft),
                    log,
                    quorum_state: QuorumStateData::default(),
                    high_watermark: 0,
                    restart_at_ms: 0,
                    restarts: 0,
                }
            })
            .collect();
        Sim {
            config,
            rng,
            now_ms: 0,
            nodes,
            network: Vec::new(),
            partition: None,
            chaos: true,
            checker: Checker::default(),
            trace: Vec::new(),
            next_payload: 0,
            report: SimReport::default(),
        }
    }

    /// Runs the chaos, the heal and the liveness check. The error names the
    /// violated property and the last events.
    pub fn run(mut self) -> Result<SimReport, String> {
        let seed = self.config.seed;
        self.run_inner().map_err(|violation| {
            let start = self.trace.len().saturating_sub(TRACE_LINES);
            format!(
                "seed {seed}: {violation}\nat {} ms; last events:\n  {}\nreplay: RUNNEL_SIM_SEED={seed} RUNNEL_SIM_NODES={} cargo test -p runnel-raft --test simulation replay -- --nocapture",
                self.now_ms,
                self.trace[start..].join("\n  "),
                self.config.nodes,
            )
        })?;
        self.report.committed = self.checker.committed_end();
        self.report.leaders = self.checker.leaders();
        Ok(self.report)
    }

    fn run_inner(&mut self) -> Result<(), String> {
        while self.now_ms < self.config.chaos_ms {
            self.tick()?;
        }
        self.heal();
        let healed_at_ms = self.now_ms;
        let deadline_ms = healed_at_ms + self.config.liveness_ms;
        let mut pending: Option<(NodeId, OffsetAndEpoch)> = None;
        while self.now_ms < deadline_ms {
            self.tick()?;
            // Committed, and every node (the observer too) knows it.
            if let Some((_, end)) = pending
                && self
                    .checker
                    .committed(end.offset - 1)
                    .is_some_and(|e| e.epoch == end.epoch)
                && self.nodes.iter().all(|n| n.high_watermark >= end.offset)
            {
                self.report.healed_commit_ms = self.now_ms - healed_at_ms;
                return Ok(());
            }
            let leader = self.nodes.iter().find_map(|n| {
                let raft = n.raft.as_ref()?;
                (raft.role() == Role::Leader).then_some((n.id, raft.epoch()))
            });
            if let Some((leader, epoch)) = leader
                && pending.is_none_or(|(id, end)| id != leader || end.epoch != epoch)
            {
                pending = self.propose_at(leader)?.map(|end| (leader, end));
            }
        }
        Err(format!(
            "liveness: no new entry committed and known to every node within {} ms of the heal",
            self.config.liveness_ms
        ))
    }

    fn heal(&mut self) {
        self.chaos = false;
        self.partition = None;
        self.trace("heal: every node up, no partition, no loss".to_string());
        for index in 0..self.nodes.len() {
            if self.nodes[index].raft.is_none() {
                self.restart(index);
            }
        }
    }

    fn chance(&mut self, per_million: u64) -> bool {
        self.rng.below(1_000_000) < per_million
    }

    fn trace(&mut self, line: String) {
        if self.trace.len() > 4 * TRACE_LINES {
            self.trace.drain(..2 * TRACE_LINES);
        }
        self.trace.push(format!("{:>6} {line}", self.now_ms));
    }

    fn tick(&mut self) -> Result<(), String> {
        self.now_ms += TICK_MS;
        if self.chaos {
            self.faults()?;
        }
        for index in 0..self.nodes.len() {
            if self.chaos
                && self.nodes[index].raft.is_none()
                && self.now_ms >= self.nodes[index].restart_at_ms
            {
                self.restart(index);
            }
        }
        let leaders: Vec<NodeId> = self
            .nodes
            .iter()
            .filter(|n| n.raft.as_ref().is_some_and(|r| r.role() == Role::Leader))
            .map(|n| n.id)
            .collect();
        self.report.ticks += 1;
        if !leaders.is_empty() {
            self.report.ticks_with_leader += 1;
        }
        for leader in leaders {
            if self.chance(self.config.propose_per_mille * 1000) {
                self.propose_at(leader)?;
            }
        }
        self.deliver()?;
        for index in 0..self.nodes.len() {
            let now_ms = self.now_ms;
            let node = &mut self.nodes[index];
            let Some(raft) = node.raft.as_mut() else {
                continue;
            };
            let effects = raft
                .poll(&mut node.log, now_ms)
                .map_err(|e| format!("node {} poll failed: {e}", node.id))?;
            self.apply(index, effects)?;
        }
        Ok(())
    }

    fn faults(&mut self) -> Result<(), String> {
        if self.chance(self.config.crash_per_million / 2) {
            // A controlled shutdown: the leader resigns with EndQuorumEpoch,
            // then stops with its log synced.
            let leader = self
                .nodes
                .iter()
                .position(|n| n.raft.as_ref().is_some_and(|r| r.role() == Role::Leader));
            if let Some(index) = leader {
                let now_ms = self.now_ms;
                let effects = self.nodes[index]
                    .raft
                    .as_mut()
                    .map(|r| r.resign(now_ms))
                    .unwrap_or_default();
                let id = self.nodes[index].id;
                self.trace(format!("node {id} resigns and shuts down"));
                self.apply(index, effects)?;
                let node = &mut self.nodes[index];
                node.log.inner.flush();
                node.raft = None;
                node.restart_at_ms = now_ms + 200 + self.rng.below(2_000);
                self.report.shutdowns += 1;
            }
        }
        if self.chance(self.config.crash_per_million) {
            let index = self.rng.below(self.nodes.len() as u64) as usize;
            if self.nodes[index].raft.is_some() {
                let lose_tail = self.rng.below(2) == 0;
                self.crash(index, lose_tail, "");
            }
        }
        // A connection reset while both ends live: a false alarm that may
        // only cost an election, never safety.
        if self.chance(self.config.crash_per_million) {
            let index = self.rng.below(self.nodes.len() as u64) as usize;
            let peer = self.nodes[self.rng.below(self.nodes.len() as u64) as usize].id;
            if let Some(raft) = self.nodes[index].raft.as_mut() {
                raft.peer_unreachable(peer, self.now_ms);
                let id = self.nodes[index].id;
                self.trace(format!("node {id} loses its connection to node {peer}"));
            }
        }
        if self.partition.is_none() && self.chance(self.config.partition_per_million) {
            let sides: Vec<u8> = (0..self.nodes.len())
                .map(|_| (self.rng.below(2)) as u8)
                .collect();
            self.trace(format!("partition {sides:?}"));
            self.partition = Some(sides);
        } else if self.partition.is_some() && self.chance(self.config.partition_per_million * 2) {
            self.trace("partition healed".to_string());
            self.partition = None;
        }
        if self.chance(self.config.snapshot_per_million) {
            let index = self.rng.below(self.nodes.len() as u64) as usize;
            let node = &mut self.nodes[index];
            if let Some(raft) = &node.raft {
                let at = raft
                    .high_watermark()
                    .min(node.log.inner.synced_end_offset());
                if let Some(id) = node.log.inner.take_snapshot(at) {
                    let line = format!("node {} snapshots at {id:?}", node.id);
                    self.trace(line);
                }
            }
        }
        Ok(())
    }

    /// Stops a node; with `lose_tail` what it had not synced is gone.
    fn crash(&mut self, index: usize, lose_tail: bool, when: &str) {
        let down_ms = 200 + self.rng.below(3_000);
        let node = &mut self.nodes[index];
        if !lose_tail {
            node.log.inner.flush();
        }
        node.log.inner.crash();
        node.log.mark(node.log.inner.end_offset());
        node.raft = None;
        node.restart_at_ms = self.now_ms + down_ms;
        let (id, end) = (node.id, node.log.inner.end_offset());
        // The others' connections to it are refused from now on: most
        // notice at once, some only by their timeouts.
        let now_ms = self.now_ms;
        for other in 0..self.nodes.len() {
            if other != index
                && self.rng.below(4) != 0
                && let Some(raft) = self.nodes[other].raft.as_mut()
            {
                raft.peer_unreachable(id, now_ms);
            }
        }
        self.report.crashes += 1;
        let tail = if lose_tail {
            "unsynced tail lost"
        } else {
            "tail synced"
        };
        self.trace(format!("crash node {id}{when} ({tail}), log end now {end}"));
    }

    fn restart(&mut self, index: usize) {
        let seed = self.rng.next_u64();
        let now_ms = self.now_ms;
        let node = &mut self.nodes[index];
        node.restarts += 1;
        node.high_watermark = 0;
        node.raft = Some(RaftNode::new(
            raft_config(node.id, &self.config),
            node.quorum_state,
            &node.log,
            seed,
            now_ms,
        ));
        let line = format!(
            "restart node {} from {:?}, log end {}",
            node.id,
            node.quorum_state,
            node.log.inner.end_offset()
        );
        self.trace(line);
    }

    fn propose_at(&mut self, leader: NodeId) -> Result<Option<OffsetAndEpoch>, String> {
        let index = (leader - 1) as usize;
        let count = 1 + self.rng.below(3);
        // Entries of one to three records, as a metadata batch holds one
        // or several records, each its own offset.
        let payloads: Vec<Proposal> = (0..count)
            .map(|_| {
                self.next_payload += 1;
                Proposal {
                    data: Bytes::from(format!("p{}", self.next_payload)),
                    record_count: 1 + self.rng.below(3) as u32,
                }
            })
            .collect();
        let node = &mut self.nodes[index];
        let Some(raft) = node.raft.as_mut() else {
            return Ok(None);
        };
        match raft.propose(&mut node.log, payloads) {
            Ok(end) => {
                self.trace(format!("node {leader} proposes {count} up to {end:?}"));
                self.check_node_log(index)?;
                Ok(Some(end))
            }
            Err(runnel_raft::RaftError::NotLeader { .. }) => Ok(None),
            Err(e) => Err(format!("propose failed: {e}")),
        }
    }

    fn deliver(&mut self) -> Result<(), String> {
        let now_ms = self.now_ms;
        let mut due = Vec::new();
        let mut index = 0;
        while index < self.network.len() {
            if self.network[index].deliver_at_ms <= now_ms {
                due.push(self.network.swap_remove(index));
            } else {
                index += 1;
            }
        }
        // swap_remove already scrambles the order; shuffle for good measure.
        for i in (1..due.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            due.swap(i, j);
        }
        for message in due {
            let to = (message.to - 1) as usize;
            let from = (message.from - 1) as usize;
            if let Some(sides) = &self.partition
                && sides[to] != sides[from]
            {
                continue;
            }
            let node = &mut self.nodes[to];
            let Some(raft) = node.raft.as_mut() else {
                continue;
            };
            self.report.messages += 1;
            let line = format!(
                "{} -> {}: {:?}",
                message.from,
                message.to,
                short(&message.message)
            );
            let effects = raft
                .handle(&mut node.log, message.from, message.message, now_ms)
                .map_err(|e| format!("node {} failed: {e}", message.to))?;
            self.trace(line);
            self.apply(to, effects)?;
        }
        Ok(())
    }

    fn apply(&mut self, index: usize, effects: Vec<Effect>) -> Result<(), String> {
        for effect in effects {
            if self.chaos && self.chance(self.config.crash_mid_effects_per_million) {
                // The process dies part way: the effects before this one
                // were carried out, this one and the rest never are.
                self.crash(index, true, " part way through its effects");
                break;
            }
            let id = self.nodes[index].id;
            match effect {
                Effect::PersistQuorumState(data) => {
                    let before = self.nodes[index].quorum_state;
                    self.checker.on_persist(id, before, data)?;
                    self.nodes[index].quorum_state = data;
                }
                Effect::FlushLog { .. } => self.nodes[index].log.inner.flush(),
                Effect::Send { to, message } => self.send(id, to, message),
                Effect::HighWatermark { high_watermark } => {
                    let node = &mut self.nodes[index];
                    if high_watermark <= node.high_watermark {
                        return Err(format!(
                            "node {id} high watermark went from {} to {high_watermark}",
                            node.high_watermark
                        ));
                    }
                    let from = node.high_watermark;
                    node.high_watermark = high_watermark;
                    let epoch = node.raft.as_ref().map_or(0, RaftNode::epoch);
                    self.check_node_log(index)?;
                    let node = &self.nodes[index];
                    self.checker.on_high_watermark(
                        id,
                        epoch,
                        &node.log.inner,
                        from,
                        high_watermark,
                    )?;
                }
                Effect::RoleChanged {
                    role,
                    epoch,
                    leader_id,
                } => {
                    self.trace(format!(
                        "node {id} is {role:?} in epoch {epoch} (leader {leader_id:?})"
                    ));
                    if role == Role::Leader {
                        self.check_node_log(index)?;
                        self.checker
                            .on_leader(epoch, id, &self.nodes[index].log.inner)?;
                    }
                }
            }
        }
        self.check_node_log(index)
    }

    fn check_node_log(&mut self, index: usize) -> Result<(), String> {
        let node = &mut self.nodes[index];
        if let Some(from) = node.log.dirty_from.take() {
            self.checker
                .check_log(node.id, &node.log.inner, from, node.high_watermark)?;
        }
        if std::mem::take(&mut node.log.snapshot_installed) {
            self.report.snapshots_installed += 1;
            self.checker.check_snapshot(node.id, &node.log.inner)?;
        }
        Ok(())
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        if self.chaos && self.chance(self.config.drop_per_mille * 1000) {
            return;
        }
        let copies = if self.chaos && self.chance(self.config.duplicate_per_mille * 1000) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay_ms = 1 + self.rng.below(self.config.max_delay_ms);
            self.network.push(InFlight {
                deliver_at_ms: self.now_ms + delay_ms,
                from,
                to,
                message: message.clone(),
            });
        }
    }
}

/// A message without its record payloads, for the trace.
fn short(message: &Message) -> String {
    match message {
        Message::FetchResponse(r) => format!(
            "FetchResponse {{ error: {:?}, leader: {:?}, hw: {}, records: {}..{}, diverging: {:?}, snapshot: {:?}, for: {:?} }}",
            r.error,
            r.current_leader,
            r.high_watermark,
            r.records.first().map_or(0, |e| e.offset),
            r.records.last().map_or(0, |e| e.next_offset()),
            r.diverging_epoch,
            r.snapshot_id,
            r.request_position
        ),
        Message::FetchSnapshotResponse(r) => format!(
            "FetchSnapshotResponse {{ error: {:?}, id: {:?}, position: {}, len: {}, size: {} }}",
            r.error,
            r.snapshot_id,
            r.position,
            r.unaligned_records.len(),
            r.size
        ),
        other => format!("{other:?}"),
    }
}

/// The seeds to run: `RUNNEL_SIM_SEED_RANGE=a..b`, else
/// `RUNNEL_SIM_SEEDS=n` (0..n), else `0..default`.
pub fn seeds(default: u64) -> std::ops::Range<u64> {
    if let Ok(range) = std::env::var("RUNNEL_SIM_SEED_RANGE")
        && let Some((a, b)) = range.split_once("..")
        && let (Ok(a), Ok(b)) = (a.trim().parse(), b.trim().parse())
    {
        return a..b;
    }
    if let Ok(n) = std::env::var("RUNNEL_SIM_SEEDS")
        && let Ok(n) = n.trim().parse()
    {
        return 0..n;
    }
    0..default
}

/// Runs `seeds` and returns the first failure.
pub fn run_seeds(
    nodes: usize,
    seeds: std::ops::Range<u64>,
    mutation: Mutation,
) -> Result<BTreeMap<&'static str, u64>, String> {
    let mut totals = BTreeMap::new();
    for seed in seeds {
        let mut config = SimConfig::new(nodes, seed);
        config.mutation = mutation;
        let report = Sim::new(config).run()?;
        *totals.entry("seeds").or_insert(0) += 1;
        *totals.entry("committed").or_insert(0) += report.committed;
        *totals.entry("leaders").or_insert(0) += report.leaders as u64;
        *totals.entry("crashes").or_insert(0) += report.crashes;
        *totals.entry("shutdowns").or_insert(0) += report.shutdowns;
        *totals.entry("snapshots_installed").or_insert(0) += report.snapshots_installed;
        *totals.entry("messages").or_insert(0) += report.messages;
        *totals.entry("ticks").or_insert(0) += report.ticks;
        *totals.entry("ticks_with_leader").or_insert(0) += report.ticks_with_leader;
        let max = totals.entry("max_healed_commit_ms").or_insert(0);
        *max = (*max).max(report.healed_commit_ms);
    }
    Ok(totals)
}
