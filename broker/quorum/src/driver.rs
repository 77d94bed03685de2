//! The quorum driver: a tokio task that owns one [`RaftNode`], its
//! [`DiskLog`] and its `quorum-state` file, and carries the core's effects
//! out over TCP ([`QuorumDriver::start`]).
//!
//! - Inputs, one at a time: a peer's request or response from the
//!   transport, a proposal from a [`QuorumHandle`], and the clock (the task
//!   wakes at [`RaftNode::next_poll_ms`], on a monotonic clock started with
//!   the task).
//! - Effects are carried out in order by `effects::carry_out` (plain code,
//!   tested without tokio): `PersistQuorumState` writes and syncs the file
//!   before any later `Send`; `FlushLog` syncs the [`DiskLog`]; a request
//!   goes to the peer's connection task; an answer goes back on the
//!   connection its request came in on; `HighWatermark` and `RoleChanged`
//!   update the [`QuorumStatus`] watch.
//! - Hooks ([`QuorumDriver::start_with_hooks`], module `hooks`): after each
//!   call into the core, the entries the high watermark passed go to the
//!   broker's committed feed; requests of other Kafka APIs on the
//!   listener go to the broker ([`ControllerRequest`]).
//! - Matching answers to requests: the core answers a request within the
//!   call that handles it, with one response `Send` to the requester (see
//!   `runnel-raft`'s `node/election` and `node/replication`). So the driver
//!   hands the core one inbound request at a time with its reply slot, and
//!   the response of that API to that node among the effects is the
//!   answer; no per-peer queue of pending requests is needed. A request the
//!   core does not answer (none today) has its connection closed.
//! - Transport (`transport`): Kafka frames over TCP, a connection per peer
//!   for our requests (correlation ids, reconnect with backoff, requests
//!   to a down peer dropped), and the listener's connections for theirs.
//! - A failed persist, flush or log write stops the task with a
//!   [`DriverError`] (Kafka's raft client exits too); proposals then fail
//!   with [`ProposeError::Stopped`].
//!
//! The file and log syncs run on the task's runtime thread (they block
//! it for the length of an fsync); the quorum's rate is a few syncs per
//! election or batch of proposals, so it is not worth a blocking pool yet.

mod effects;
pub(crate) mod frames;
mod hooks;
mod in_flight;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use runnel_raft::{
    Epoch, LeaderAndEpoch, Message, NodeId, OffsetAndEpoch, Proposal, QuorumStateData, RaftConfig,
    RaftError, RaftNode, ReplicatedLog, Role,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::disk_log::{DiskLog, DiskLogError};
use crate::quorum_state_file::{self, QuorumStateFile, QuorumStateFileError};
use crate::wire::WireContext;
use effects::{Awaiting, EffectSink, carry_out};
pub use frames::FrameError;
use hooks::Feed;
pub use hooks::{CommittedFeed, ControllerRequest, DriverHooks};
use transport::{Inbound, Listener};

/// Requests queued for one peer's connection; past it they are dropped.
const PEER_QUEUE: usize = 64;
/// Inbound messages and proposals queued for the driver.
const DRIVER_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("reading the quorum-state file")]
    ReadQuorumState(#[source] QuorumStateFileError),
    #[error("writing the quorum-state file")]
    PersistQuorumState(#[source] QuorumStateFileError),
    #[error("flushing the metadata log to offset {end_offset}")]
    FlushLog {
        end_offset: u64,
        #[source]
        source: DiskLogError,
    },
    #[error("the quorum core failed")]
    Core(#[source] RaftError),
    #[error("the quorum driver has stopped")]
    Stopped,
}

#[derive(Debug, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader (current leader {current:?})")]
    NotLeader { current: LeaderAndEpoch },
    #[error("the proposal was refused")]
    Refused(#[source] RaftError),
    #[error("the quorum driver has stopped")]
    Stopped,
}

/// What the node is, as the broker needs it: its role and epoch, the
/// leader it knows, how far entries are committed and how far its log
/// goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumStatus {
    pub role: Role,
    pub epoch: Epoch,
    pub leader_id: Option<NodeId>,
    /// Entries below it are committed.
    pub high_watermark: u64,
    /// The local log's end (synced or not), for catching-up checks and
    /// DescribeQuorum.
    pub log_end_offset: u64,
}

/// How to run one node.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    pub raft: RaftConfig,
    pub wire: WireContext,
    /// The other voters' controller listeners.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// The core's random seed (election timeouts).
    pub seed: u64,
}

enum Command {
    Propose {
        proposals: Vec<Proposal>,
        reply: oneshot::Sender<Result<OffsetAndEpoch, ProposeError>>,
    },
    /// The leader's view of its voters; `None` on a node that does not
    /// lead.
    ReplicaStates {
        reply: oneshot::Sender<Option<BTreeMap<NodeId, VoterState>>>,
    },
}

/// The leader's view of one voter, for DescribeQuorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoterState {
    /// Its synced log end, from its last valid Fetch (the leader's own
    /// log end for the leader).
    pub log_end_offset: Option<u64>,
    /// How long ago it last fetched (zero for the leader).
    pub since_last_fetch: Option<Duration>,
}

/// The narrow view of a running driver: propose, and watch the status.
#[derive(Debug, Clone)]
pub struct QuorumHandle {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<QuorumStatus>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Propose { proposals, .. } => f
                .debug_struct("Propose")
                .field("proposals", &proposals.len())
                .finish(),
            Command::ReplicaStates { .. } => f.write_str("ReplicaStates"),
        }
    }
}

impl QuorumHandle {
    /// Appends `proposals` as the leader and syncs them. Returns the log's
    /// end after them and their epoch: they are committed once the high
    /// watermark reaches that offset (in that epoch).
    pub async fn propose(
        &self,
        proposals: impl IntoIterator<Item = Proposal>,
    ) -> Result<OffsetAndEpoch, ProposeError> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Propose {
            proposals: proposals.into_iter().collect(),
            reply,
        };
        self.commands
            .send(command)
            .await
            .map_err(|_| ProposeError::Stopped)?;
        answer.await.map_err(|_| ProposeError::Stopped)?
    }

    /// The leader's view of each voter (its synced log end and last
    /// fetch), for DescribeQuorum; `None` when this node does not lead.
    pub async fn voter_states(&self) -> Result<Option<BTreeMap<NodeId, VoterState>>, ProposeError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::ReplicaStates { reply })
            .await
            .map_err(|_| ProposeError::Stopped)?;
        answer.await.map_err(|_| ProposeError::Stopped)
    }

    pub fn status(&self) -> QuorumStatus {
        *self.status.borrow()
    }

    /// A receiver that wakes on every status change.
    pub fn watch_status(&self) -> watch::Receiver<QuorumStatus> {
        self.status.clone()
    }
}

/// A running driver task. Dropping it (or [`QuorumDriver::shutdown`])
/// stops the task at once, as a crash would: its listener, connections,
/// log and file close; nothing is handed over.
#[derive(Debug)]
pub struct QuorumDriver {
    handle: QuorumHandle,
    task: JoinHandle<Result<(), DriverError>>,
}

impl QuorumDriver {
    /// Starts the driver of the node whose log is `log` and whose
    /// `quorum-state` file is at `quorum_state_path`, serving peers on
    /// `listener`, with no hooks. Must run inside a tokio runtime.
    pub fn start(
        config: DriverConfig,
        listener: TcpListener,
        log: DiskLog,
        quorum_state_path: PathBuf,
    ) -> Result<Self, DriverError> {
        Self::start_with_hooks(
            config,
            listener,
            log,
            quorum_state_path,
            DriverHooks::default(),
        )
    }

    /// [`QuorumDriver::start`], feeding committed entries and non-quorum
    /// requests to the broker through `hooks` (see [`DriverHooks`]).
    pub fn start_with_hooks(
        config: DriverConfig,
        listener: TcpListener,
        log: DiskLog,
        quorum_state_path: PathBuf,
        hooks: DriverHooks,
    ) -> Result<Self, DriverError> {
        let quorum_state = quorum_state_file::read_state(&quorum_state_path)
            .map_err(DriverError::ReadQuorumState)?;
        let voters: Vec<NodeId> = config.raft.voters.iter().copied().collect();
        let node = RaftNode::new(config.raft, quorum_state, &log, config.seed, 0);
        let (status_tx, status) = watch::channel(status_of(&node, &log));
        let (commands_tx, commands) = mpsc::channel(DRIVER_QUEUE);
        let (inbound_tx, inbound) = mpsc::channel(DRIVER_QUEUE);
        let ctx = Arc::new(config.wire);
        let mut tasks = JoinSet::new();
        let mut peers = HashMap::new();
        for (&peer, &addr) in &config.peers {
            let (requests_tx, requests) = mpsc::channel(PEER_QUEUE);
            peers.insert(peer, requests_tx);
            tasks.spawn(transport::run_peer(
                peer,
                addr,
                Arc::clone(&ctx),
                requests,
                inbound_tx.clone(),
            ));
        }
        let mut driver = Driver {
            node,
            log,
            quorum_state_path,
            voters,
            peers,
            status: status_tx,
            start: Instant::now(),
            feed: hooks.committed.map(Feed::new),
        };
        // A no-op with today's core, which starts at 0.
        driver.deliver_committed();
        let io = DriverIo {
            listener,
            commands,
            inbound,
            serving: Listener {
                ctx,
                inbound: inbound_tx,
                controller_requests: hooks.controller_requests,
            },
            tasks,
        };
        let task = tokio::spawn(driver.run(io));
        Ok(QuorumDriver {
            handle: QuorumHandle {
                commands: commands_tx,
                status,
            },
            task,
        })
    }

    pub fn handle(&self) -> QuorumHandle {
        self.handle.clone()
    }

    /// Stops the task (see the type's doc) and waits until its log, file
    /// and listener are closed.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Waits for the task to stop on its own: only on an error, since it
    /// runs until shut down.
    pub async fn stopped(mut self) -> Result<(), DriverError> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(_) => Err(DriverError::Stopped),
        }
    }
}

impl Drop for QuorumDriver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn status_of(node: &RaftNode, log: &DiskLog) -> QuorumStatus {
    QuorumStatus {
        role: node.role(),
        epoch: node.epoch(),
        leader_id: node.leader_id(),
        high_watermark: node.high_watermark(),
        log_end_offset: log.end_offset(),
    }
}

/// The driver's state: the core and what its effects touch.
struct Driver {
    node: RaftNode,
    log: DiskLog,
    quorum_state_path: PathBuf,
    voters: Vec<NodeId>,
    /// Each peer's queue of our requests.
    peers: HashMap<NodeId, mpsc::Sender<Message>>,
    status: watch::Sender<QuorumStatus>,
    /// The core's clock starts at 0 here.
    start: Instant,
    /// The broker's committed feed.
    feed: Option<Feed>,
}

/// The driver's inputs and the tasks it owns (aborted with it).
struct DriverIo {
    listener: TcpListener,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Receiver<Inbound>,
    /// What each accepted connection is served with.
    serving: Listener,
    tasks: JoinSet<()>,
}

impl Driver {
    async fn run(mut self, mut io: DriverIo) -> Result<(), DriverError> {
        let mut commands_open = true;
        loop {
            let wake = self.start + Duration::from_millis(self.node.next_poll_ms());
            tokio::select! {
                command = io.commands.recv(), if commands_open => match command {
                    Some(Command::Propose { proposals, reply }) => self.propose(proposals, reply)?,
                    Some(Command::ReplicaStates { reply }) => {
                        let _ = reply.send(self.voter_states());
                    }
                    None => commands_open = false,
                },
                Some(inbound) = io.inbound.recv() => self.on_inbound(inbound)?,
                accepted = io.listener.accept() => match accepted {
                    Ok((stream, addr)) => {
                        let serving = io.serving.clone();
                        io.tasks.spawn(async move {
                            if let Err(error) = serving.serve_connection(stream).await {
                                tracing::debug!(%addr, %error, "controller connection closed");
                            }
                        });
                    }
                    Err(error) => tracing::warn!(%error, "accepting a quorum connection failed"),
                },
                () = tokio::time::sleep_until(wake) => self.poll()?,
            }
            while io.tasks.try_join_next().is_some() {}
        }
    }

    fn voter_states(&self) -> Option<BTreeMap<NodeId, VoterState>> {
        let now_ms = self.now_ms();
        let own = self.node.node_id();
        let states = self.node.replica_states()?;
        let mut voters: BTreeMap<NodeId, VoterState> = states
            .iter()
            .map(|(id, state)| {
                let view = VoterState {
                    log_end_offset: state.end_offset,
                    since_last_fetch: state
                        .last_fetch_ms
                        .map(|at| Duration::from_millis(now_ms.saturating_sub(at))),
                };
                (*id, view)
            })
            .collect();
        voters.insert(
            own,
            VoterState {
                log_end_offset: Some(self.log.end_offset()),
                since_last_fetch: Some(Duration::ZERO),
            },
        );
        Some(voters)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn poll(&mut self) -> Result<(), DriverError> {
        let now_ms = self.now_ms();
        let effects = self
            .node
            .poll(&mut self.log, now_ms)
            .map_err(DriverError::Core)?;
        self.carry_out(effects, None)
    }

    fn on_inbound(&mut self, inbound: Inbound) -> Result<(), DriverError> {
        let now_ms = self.now_ms();
        let (from, message, awaiting) = match inbound {
            Inbound::Request {
                from,
                message,
                reply,
            } => {
                let api = message.api_name();
                (from, message, Some(Awaiting { from, api, reply }))
            }
            Inbound::Response { from, message } => (from, message, None),
            Inbound::Unreachable { peer } => {
                self.node.peer_unreachable(peer, now_ms);
                return Ok(());
            }
        };
        let effects = self
            .node
            .handle(&mut self.log, from, message, now_ms)
            .map_err(DriverError::Core)?;
        self.carry_out(effects, awaiting)
    }

    fn propose(
        &mut self,
        proposals: Vec<Proposal>,
        reply: oneshot::Sender<Result<OffsetAndEpoch, ProposeError>>,
    ) -> Result<(), DriverError> {
        let end = match self.node.propose(&mut self.log, proposals) {
            Ok(end) => end,
            Err(RaftError::NotLeader { current }) => {
                let _ = reply.send(Err(ProposeError::NotLeader { current }));
                return Ok(());
            }
            Err(refused @ RaftError::EmptyProposal { .. }) => {
                let _ = reply.send(Err(ProposeError::Refused(refused)));
                return Ok(());
            }
            // The log failed: the reply is dropped (Stopped) with the task.
            Err(failed) => return Err(DriverError::Core(failed)),
        };
        // The core syncs what was proposed at the next poll.
        self.poll()?;
        let _ = reply.send(Ok(end));
        Ok(())
    }

    /// Sends the entries the high watermark passed to the committed feed.
    fn deliver_committed(&mut self) {
        if let Some(feed) = &mut self.feed {
            feed.deliver(&self.log, self.node.high_watermark());
        }
    }

    fn carry_out(
        &mut self,
        effects: Vec<runnel_raft::Effect>,
        awaiting: Option<Awaiting<oneshot::Sender<Message>>>,
    ) -> Result<(), DriverError> {
        let mut sink = Effects {
            log: &mut self.log,
            quorum_state_path: &self.quorum_state_path,
            voters: &self.voters,
            peers: &self.peers,
            status: &self.status,
        };
        // An unanswered request's reply slot is dropped here, which closes
        // its connection.
        carry_out(effects, awaiting, &mut sink)?;
        self.deliver_committed();
        let log_end_offset = self.log.end_offset();
        self.status.send_if_modified(|status| {
            let changed = status.log_end_offset != log_end_offset;
            status.log_end_offset = log_end_offset;
            changed
        });
        Ok(())
    }
}

/// The driver's [`EffectSink`]: its file, log, peers and status.
struct Effects<'a> {
    log: &'a mut DiskLog,
    quorum_state_path: &'a Path,
    voters: &'a [NodeId],
    peers: &'a HashMap<NodeId, mpsc::Sender<Message>>,
    status: &'a watch::Sender<QuorumStatus>,
}

impl EffectSink for Effects<'_> {
    type Reply = oneshot::Sender<Message>;

    fn persist(&mut self, state: QuorumStateData) -> Result<(), DriverError> {
        // Static voters (kraft.version 0): Kafka's v0 file.
        let file = QuorumStateFile::v0(state, self.voters.iter().copied());
        quorum_state_file::write(self.quorum_state_path, &file)
            .map_err(DriverError::PersistQuorumState)
    }

    fn flush(&mut self, end_offset: u64) -> Result<(), DriverError> {
        self.log
            .flush()
            .map_err(|source| DriverError::FlushLog { end_offset, source })
    }

    fn send_request(&mut self, to: NodeId, message: Message) {
        let Some(peer) = self.peers.get(&to) else {
            tracing::warn!(to, api = message.api_name(), "no address for quorum peer");
            return;
        };
        if peer.try_send(message).is_err() {
            tracing::debug!(to, "quorum peer queue full; request dropped");
        }
    }

    fn answer(&mut self, reply: Self::Reply, message: Message) {
        // The connection may be gone already; the peer retries.
        let _ = reply.send(message);
    }

    fn high_watermark(&mut self, high_watermark: u64) {
        self.status
            .send_modify(|status| status.high_watermark = high_watermark);
    }

    fn role_changed(&mut self, role: Role, epoch: Epoch, leader_id: Option<NodeId>) {
        self.status.send_modify(|status| {
            status.role = role;
            status.epoch = epoch;
            status.leader_id = leader_id;
        });
    }
}
