//! A model check of the core with `stateright`: three voters, epochs up to
//! 2, one proposal, at most one crash (losing the unsynced tail), a few
//! timeouts per node. Every interleaving of message deliveries (each
//! message may also be delivered twice or never), timeouts, the proposal
//! and the crash is explored breadth-first, and in every state reached:
//! at most one leader per epoch, and every committed entry is the same on
//! every node that holds its offset, now and later.
//!
//! Each node keeps its own clock, moved only by its timeout action, so
//! messages and timers interleave in any order. The bounds keep the run to
//! seconds in debug; `RUNNEL_MODEL_STATES=<n>` explores further.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::time::Duration;

use bytes::Bytes;
use runnel_raft::{
    Effect, Entry, Epoch, MemoryLog, Message, Mutation, NodeId, QuorumStateData, RaftConfig,
    RaftNode, ReplicatedLog, Role,
};
use stateright::{Checker, Model, Property};

const NODES: usize = 3;
const MAX_EPOCH: Epoch = 2;
const MAX_TIMEOUTS_PER_NODE: u8 = 3;
const MAX_CRASHES: u8 = 1;
const MAX_PROPOSALS: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Envelope {
    from: NodeId,
    to: NodeId,
    message: Message,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ModelNode {
    raft: RaftNode,
    log: MemoryLog,
    quorum_state: QuorumStateData,
    now_ms: u64,
    timeouts: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    nodes: Vec<ModelNode>,
    /// In flight, without duplicates, in a canonical order.
    network: Vec<Envelope>,
    leaders: BTreeSet<(Epoch, NodeId)>,
    /// Committed entries and the epoch each was committed in.
    committed: BTreeMap<u64, (Entry, Epoch)>,
    crashes: u8,
    proposals: u8,
    violation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Action {
    Deliver { index: usize, keep: bool },
    Timeout(usize),
    Propose(usize),
    Crash(usize),
}

struct RaftModel {
    mutation: Mutation,
    /// Start from [`RaftModel::warm_state`] rather than a fresh cluster.
    warm: bool,
    /// Also deliver messages twice.
    duplicates: bool,
}

fn config(id: NodeId, mutation: Mutation) -> RaftConfig {
    let mut config = RaftConfig::new(id, 1..=NODES as NodeId);
    config.election_timeout_ms = 100;
    config.election_backoff_max_ms = 0;
    config.fetch_timeout_ms = 200;
    config.request_timeout_ms = 100;
    config.fetch_backoff_ms = 50;
    config.max_fetch_entries = 1;
    config.mutation = mutation;
    config
}

fn envelope_key(envelope: &Envelope) -> u64 {
    let mut hasher = DefaultHasher::new();
    envelope.hash(&mut hasher);
    hasher.finish()
}

impl RaftModel {
    fn apply(state: &mut State, index: usize, effects: Vec<Effect>) {
        let id = (index + 1) as NodeId;
        for effect in effects {
            match effect {
                Effect::PersistQuorumState(data) => state.nodes[index].quorum_state = data,
                Effect::FlushLog { .. } => state.nodes[index].log.flush(),
                Effect::Send { to, message } => state.network.push(Envelope {
                    from: id,
                    to,
                    message,
                }),
                Effect::RoleChanged {
                    role: Role::Leader,
                    epoch,
                    ..
                } => Self::on_elected(state, index, epoch),
                Effect::HighWatermark { .. } | Effect::RoleChanged { .. } => {}
            }
        }
    }

    /// Election safety and leader completeness, checked as a node wins.
    fn on_elected(state: &mut State, index: usize, epoch: Epoch) {
        let id = (index + 1) as NodeId;
        if state.leaders.iter().any(|(e, l)| *e == epoch && *l != id) {
            state.violation = Some(format!("two leaders in epoch {epoch}"));
        }
        state.leaders.insert((epoch, id));
        let log = &state.nodes[index].log;
        for (offset, (entry, commit_epoch)) in state.committed.range(log.log_start_offset()..) {
            if *commit_epoch < epoch && log.entry(*offset) != Some(entry) {
                state.violation = Some(format!(
                    "leader {id} of epoch {epoch} lacks committed {entry:?} at {offset}"
                ));
            }
        }
    }

    /// Records committed entries, and fails a node whose high watermark
    /// covers an offset holding anything but the committed entry there.
    fn observe(state: &mut State) {
        for (index, node) in state.nodes.iter().enumerate() {
            let id = (index + 1) as NodeId;
            let start = node.log.log_start_offset();
            let high_watermark = node.raft.high_watermark();
            if high_watermark > node.log.end_offset() {
                state.violation = Some(format!("node {id} truncated below its high watermark"));
            }
            for offset in start..high_watermark.min(node.log.end_offset()) {
                let Some(entry) = node.log.entry(offset) else {
                    continue;
                };
                let epoch = node.raft.epoch();
                let (committed, _) = state
                    .committed
                    .entry(offset)
                    .or_insert_with(|| (entry.clone(), epoch));
                if committed != entry {
                    state.violation = Some(format!(
                        "node {id} committed {entry:?} at {offset}, {committed:?} was committed there"
                    ));
                }
            }
        }
        state.network.sort_by_key(envelope_key);
        state.network.dedup();
    }

    fn fresh_state(&self) -> State {
        let nodes = (0..NODES)
            .map(|index| {
                let log = MemoryLog::new();
                let id = (index + 1) as NodeId;
                let raft = RaftNode::new(
                    config(id, self.mutation),
                    QuorumStateData::default(),
                    &log,
                    index as u64,
                    0,
                );
                ModelNode {
                    raft,
                    log,
                    quorum_state: QuorumStateData::default(),
                    now_ms: 0,
                    timeouts: 0,
                }
            })
            .collect();
        State {
            nodes,
            network: Vec::new(),
            leaders: BTreeSet::new(),
            committed: BTreeMap::new(),
            crashes: 0,
            proposals: 0,
            violation: None,
        }
    }

    /// Delivers every message in flight, in order, until none is left;
    /// those `keep` refuses are dropped.
    fn settle(&self, mut state: State, keep: impl Fn(&Envelope) -> bool) -> Option<State> {
        while !state.network.is_empty() {
            if keep(&state.network[0]) {
                state = self.next_state(
                    &state,
                    Action::Deliver {
                        index: 0,
                        keep: false,
                    },
                )?;
            } else {
                state.network.remove(0);
            }
        }
        Some(state)
    }

    /// Node 1 leads epoch 1 and has committed one entry with node 2; node 3
    /// heard nothing since the election. Then node 1 is cut off and nodes 2
    /// and 3 stop hearing from it and turn prospective (their pre-votes
    /// lost). The interesting races start here, node 1 back in reach.
    fn warm_state(&self) -> Option<State> {
        let state = self.next_state(&self.fresh_state(), Action::Timeout(0))?;
        let state = self.settle(state, |_| true)?;
        let mut state = self.next_state(&state, Action::Propose(0))?;
        let without_node_3 = |e: &Envelope| e.from != 3 && e.to != 3;
        for _ in 0..3 {
            state = self.next_state(&state, Action::Timeout(1))?;
            state = self.settle(state, without_node_3)?;
        }
        for index in [1, 2] {
            while state.nodes[index].raft.role() != Role::Prospective {
                state = self.next_state(&state, Action::Timeout(index))?;
                if state.nodes[index].timeouts > 10 {
                    return None;
                }
            }
        }
        state.network.clear();
        for node in &mut state.nodes {
            node.timeouts = 0;
        }
        Some(state)
    }
}

impl Model for RaftModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        if self.warm {
            self.warm_state().into_iter().collect()
        } else {
            vec![self.fresh_state()]
        }
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.violation.is_some() {
            return;
        }
        for index in 0..state.network.len() {
            actions.push(Action::Deliver { index, keep: false });
            if self.duplicates {
                actions.push(Action::Deliver { index, keep: true });
            }
        }
        for (index, node) in state.nodes.iter().enumerate() {
            if node.timeouts < MAX_TIMEOUTS_PER_NODE {
                actions.push(Action::Timeout(index));
            }
            if node.raft.role() == Role::Leader && state.proposals < MAX_PROPOSALS {
                actions.push(Action::Propose(index));
            }
            if state.crashes < MAX_CRASHES {
                actions.push(Action::Crash(index));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::Deliver { index, keep } => {
                let envelope = if keep {
                    state.network.get(index)?.clone()
                } else {
                    state.network.remove(index)
                };
                let to = (envelope.to - 1) as usize;
                let node = state.nodes.get_mut(to)?;
                let now_ms = node.now_ms;
                let effects = node
                    .raft
                    .handle(&mut node.log, envelope.from, envelope.message, now_ms)
                    .ok()?;
                Self::apply(&mut state, to, effects);
            }
            Action::Timeout(index) => {
                let node = &mut state.nodes[index];
                node.timeouts += 1;
                node.now_ms = node.now_ms.max(node.raft.next_poll_ms());
                let now_ms = node.now_ms;
                let effects = node.raft.poll(&mut node.log, now_ms).ok()?;
                Self::apply(&mut state, index, effects);
            }
            Action::Propose(index) => {
                state.proposals += 1;
                let node = &mut state.nodes[index];
                node.raft
                    .propose(&mut node.log, [Bytes::from_static(b"x")])
                    .ok()?;
            }
            Action::Crash(index) => {
                state.crashes += 1;
                let node = &mut state.nodes[index];
                node.log.crash();
                let id = (index + 1) as NodeId;
                node.raft = RaftNode::new(
                    config(id, self.mutation),
                    node.quorum_state,
                    &node.log,
                    100 + index as u64,
                    node.now_ms,
                );
            }
        }
        Self::observe(&mut state);
        Some(state)
    }

    fn within_boundary(&self, state: &State) -> bool {
        state.nodes.iter().all(|n| n.raft.epoch() <= MAX_EPOCH)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always("safety", |_, state: &State| state.violation.is_none()),
            Property::sometimes("an entry commits", |_, state: &State| {
                state
                    .committed
                    .values()
                    .any(|(e, _)| matches!(e.payload, runnel_raft::Payload::Data(_)))
            }),
            Property::sometimes("a second leader epoch", |_, state: &State| {
                state.leaders.iter().any(|(epoch, _)| *epoch == 2)
            }),
        ]
    }
}

fn state_limit() -> usize {
    std::env::var("RUNNEL_MODEL_STATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
}

/// What a model check found.
#[derive(Debug)]
struct Outcome {
    /// The safety violation and the number of steps to it.
    violation: Option<(String, usize)>,
    entry_commits: bool,
    second_epoch: bool,
}

fn summarize(checker: &impl Checker<RaftModel>) -> Outcome {
    eprintln!(
        "model check: {} states ({} unique), depth {}",
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth()
    );
    let violation = checker.discovery("safety").map(|path| {
        let reason = path.last_state().violation.clone().unwrap_or_default();
        (reason, path.into_actions().len())
    });
    Outcome {
        violation,
        entry_commits: checker.discovery("an entry commits").is_some(),
        second_epoch: checker.discovery("a second leader epoch").is_some(),
    }
}

fn check(model: RaftModel, dfs_depth: Option<usize>) -> Outcome {
    let builder = model
        .checker()
        .threads(1)
        .target_state_count(state_limit())
        .timeout(Duration::from_secs(240));
    match dfs_depth {
        Some(depth) => summarize(&builder.target_max_depth(depth).spawn_dfs().join()),
        None => summarize(&builder.spawn_bfs().join()),
    }
}

/// From a committed entry on two of three voters, every interleaving (with
/// duplicates and one crash) up to epoch 2.
#[test]
fn races_after_a_commit_are_safe() {
    let model = RaftModel {
        mutation: Mutation::None,
        warm: true,
        duplicates: true,
    };
    assert!(model.warm_state().is_some_and(|s| !s.committed.is_empty()));
    let outcome = check(model, None);
    assert!(outcome.violation.is_none(), "{outcome:?}");
    assert!(outcome.second_epoch, "{outcome:?}");
}

/// From a fresh cluster, deep interleavings (depth-first) through the first
/// elections and commit.
#[test]
fn a_fresh_cluster_is_safe() {
    let model = RaftModel {
        mutation: Mutation::None,
        warm: false,
        duplicates: false,
    };
    let outcome = check(model, Some(40));
    assert!(outcome.violation.is_none(), "{outcome:?}");
    assert!(outcome.entry_commits, "{outcome:?}");
}

#[test]
fn the_model_check_finds_a_vote_granted_without_the_log_check() {
    let model = RaftModel {
        mutation: Mutation::GrantVoteWithoutLogCheck,
        warm: true,
        duplicates: true,
    };
    let outcome = check(model, None);
    let Some((reason, steps)) = outcome.violation else {
        panic!("the planted bug was not found: {outcome:?}");
    };
    eprintln!("model check found the planted bug in {steps} steps: {reason}");
}
