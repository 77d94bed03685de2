//! Helpers of the tests that run three quorum drivers on loopback ports,
//! each with its own dir and real disk log. Waits are for conditions with
//! a deadline, never sleeps.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use runnel_log::{BatchBuilder, LoadState, LogConfig, PartitionLog};
use runnel_quorum::disk_log::DiskLog;
use runnel_quorum::quorum_state_file;
use runnel_quorum::wire::{Endpoint, WireContext};
use runnel_quorum::{DriverConfig, DriverHooks, QuorumDriver, QuorumHandle, QuorumStatus};
use runnel_raft::{Entry, NodeId, Proposal, RaftConfig, ReplicatedLog, Role};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::Instant;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type Error = Box<dyn std::error::Error>;

pub const VOTERS: [NodeId; 3] = [1, 2, 3];
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Bytes of a batch header before the CRC-covered part: base offset,
/// length, partition leader epoch, magic, CRC. The leader stamps the first
/// and third; the rest is the proposal as built.
pub const STAMPED_HEADER_BYTES: usize = 21;

pub struct Node {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub driver: Option<QuorumDriver>,
}

impl Node {
    pub fn handle(&self) -> Option<QuorumHandle> {
        self.driver.as_ref().map(QuorumDriver::handle)
    }
}

/// A listener for each voter on a free loopback port, and their
/// addresses.
pub async fn bind_all() -> Result<(Vec<TcpListener>, BTreeMap<NodeId, SocketAddr>), Error> {
    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    for id in VOTERS {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        addrs.insert(id, listener.local_addr()?);
        listeners.push(listener);
    }
    Ok((listeners, addrs))
}

pub fn log_dir(dir: &Path) -> PathBuf {
    dir.join("__cluster_metadata-0")
}

pub fn open_log(dir: &Path) -> Result<DiskLog, Error> {
    open_log_of(dir, &VOTERS)
}

pub fn open_log_of(dir: &Path, voters: &[NodeId]) -> Result<DiskLog, Error> {
    let path = log_dir(dir);
    std::fs::create_dir_all(&path)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let log = PartitionLog::open(&path, LogConfig::default(), LoadState::default(), now)?;
    Ok(DiskLog::new(log, voters.to_vec())?)
}

/// Starts node `id` of [`VOTERS`] on `listener` with its state in `dir`.
pub fn start(
    id: NodeId,
    listener: TcpListener,
    dir: &Path,
    addrs: &BTreeMap<NodeId, SocketAddr>,
    hooks: DriverHooks,
) -> Result<QuorumDriver, Error> {
    start_of(&VOTERS, id, listener, dir, addrs, hooks)
}

/// Starts node `id` of `voters`, whose listeners are at `addrs`.
pub fn start_of(
    voters: &[NodeId],
    id: NodeId,
    listener: TcpListener,
    dir: &Path,
    addrs: &BTreeMap<NodeId, SocketAddr>,
    hooks: DriverHooks,
) -> Result<QuorumDriver, Error> {
    let mut raft = RaftConfig::new(id, voters.iter().copied());
    raft.election_timeout_ms = 300;
    raft.election_backoff_max_ms = 300;
    raft.fetch_timeout_ms = 1000;
    raft.request_timeout_ms = 500;
    raft.fetch_backoff_ms = 50;
    let port = listener.local_addr()?.port();
    let wire = WireContext {
        cluster_id: "cnVubmVsLXF1b3J1bS10ZQ".to_owned(),
        local_id: id,
        voters: voters.to_vec(),
        endpoints: vec![Endpoint {
            listener: "CONTROLLER".to_owned(),
            host: "127.0.0.1".to_owned(),
            port,
        }],
    };
    let peers = addrs
        .iter()
        .filter(|(peer, _)| **peer != id)
        .map(|(peer, addr)| (*peer, *addr))
        .collect();
    let config = DriverConfig {
        raft,
        wire,
        peers,
        seed: 0x5eed_0000 + id as u64,
    };
    let state_path = quorum_state_file::path_in(dir);
    Ok(QuorumDriver::start_with_hooks(
        config,
        listener,
        open_log_of(dir, voters)?,
        state_path,
        hooks,
    )?)
}

/// Checks `condition` until it gives a value or `DEADLINE` passes.
pub async fn wait_for<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> Result<T, Error> {
    let deadline = Instant::now() + DEADLINE;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        if let Some(value) = condition() {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tick.tick().await;
    }
}

pub fn statuses(nodes: &[Node]) -> Vec<(usize, QuorumStatus)> {
    nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.handle().map(|h| (i, h.status())))
        .collect()
}

/// The index of the one leader every running node follows.
pub fn one_leader(nodes: &[Node]) -> Option<(usize, QuorumStatus)> {
    let statuses = statuses(nodes);
    let leaders: Vec<_> = statuses
        .iter()
        .filter(|(_, s)| s.role == Role::Leader)
        .collect();
    let [(index, leader)] = leaders[..] else {
        return None;
    };
    let all_follow = statuses.iter().all(|(i, s)| {
        *i == *index
            || (s.role == Role::Follower
                && s.epoch == leader.epoch
                && s.leader_id == Some(nodes[*index].id))
    });
    all_follow.then_some((*index, *leader))
}

pub fn batch(n: u32) -> Bytes {
    let mut builder = BatchBuilder::new(1_700_000_000_000);
    builder.push(
        None,
        Some(format!("metadata record {n}").as_bytes()),
        1_700_000_000_000,
    );
    Bytes::from(builder.build())
}

/// Proposes `count` single-record batches one at a time on `leader`;
/// returns each one's offset and bytes, and the log end after them.
pub async fn propose(
    leader: &QuorumHandle,
    first: u32,
    count: u32,
    proposed: &mut Vec<(u64, Bytes)>,
) -> Result<u64, Error> {
    let mut end = 0;
    for n in first..first + count {
        let data = batch(n);
        let at = leader.propose([Proposal::from(data.clone())]).await?;
        proposed.push((at.offset - 1, data));
        end = at.offset;
    }
    Ok(end)
}

pub fn all_reach(nodes: &[Node], high_watermark: u64) -> Option<()> {
    statuses(nodes)
        .iter()
        .all(|(_, s)| s.high_watermark >= high_watermark)
        .then_some(())
}

/// Every entry of the log in `dir` below `end`.
pub fn entries_below(dir: &Path, end: u64) -> Result<Vec<Entry>, Error> {
    let log = open_log(dir)?;
    let mut entries = Vec::new();
    let mut next = log.log_start_offset();
    while next < end {
        let read = log.read(next, 64);
        let Some(last) = read.last() else {
            return Err(format!("no entry at {next} in {}", dir.display()).into());
        };
        next = last.next_offset();
        entries.extend(read.into_iter().filter(|e| e.offset < end));
    }
    Ok(entries)
}

pub fn with_timeout<F: Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(DEADLINE, f)
}
