//! Three quorum drivers on loopback ports, each with its own dir and real
//! disk log: they elect one leader; what it is given commits on all three;
//! with the leader stopped the other two elect a new one in a later epoch
//! and go on committing; the stopped node restarted from its dir catches
//! up, and every node holds the same committed entries at the same offsets.
//!
//! Waits are for conditions with a deadline, never sleeps.

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
use runnel_quorum::{DriverConfig, QuorumDriver, QuorumHandle, QuorumStatus};
use runnel_raft::{Entry, NodeId, Payload, Proposal, RaftConfig, ReplicatedLog, Role};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::time::Instant;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const VOTERS: [NodeId; 3] = [1, 2, 3];
const DEADLINE: Duration = Duration::from_secs(20);
/// Bytes of a batch header before the CRC-covered part: base offset,
/// length, partition leader epoch, magic, CRC. The leader stamps the first
/// and third; the rest is the proposal as built.
const STAMPED_HEADER_BYTES: usize = 21;

struct Node {
    id: NodeId,
    addr: SocketAddr,
    dir: TempDir,
    driver: Option<QuorumDriver>,
}

impl Node {
    fn handle(&self) -> Option<QuorumHandle> {
        self.driver.as_ref().map(QuorumDriver::handle)
    }
}

fn log_dir(dir: &Path) -> PathBuf {
    dir.join("__cluster_metadata-0")
}

fn open_log(dir: &Path) -> Result<DiskLog, Box<dyn std::error::Error>> {
    let path = log_dir(dir);
    std::fs::create_dir_all(&path)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let log = PartitionLog::open(&path, LogConfig::default(), LoadState::default(), now)?;
    Ok(DiskLog::new(log, VOTERS.to_vec())?)
}

fn start(
    id: NodeId,
    listener: TcpListener,
    dir: &Path,
    addrs: &BTreeMap<NodeId, SocketAddr>,
) -> Result<QuorumDriver, Box<dyn std::error::Error>> {
    let mut raft = RaftConfig::new(id, VOTERS);
    raft.election_timeout_ms = 300;
    raft.election_backoff_max_ms = 300;
    raft.fetch_timeout_ms = 1000;
    raft.request_timeout_ms = 500;
    raft.fetch_backoff_ms = 50;
    let port = listener.local_addr()?.port();
    let wire = WireContext {
        cluster_id: "cnVubmVsLXF1b3J1bS10ZQ".to_owned(),
        local_id: id,
        voters: VOTERS.to_vec(),
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
    Ok(QuorumDriver::start(
        config,
        listener,
        open_log(dir)?,
        state_path,
    )?)
}

/// Checks `condition` until it gives a value or `DEADLINE` passes.
async fn wait_for<T>(
    what: &str,
    mut condition: impl FnMut() -> Option<T>,
) -> Result<T, Box<dyn std::error::Error>> {
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

fn statuses(nodes: &[Node]) -> Vec<(usize, QuorumStatus)> {
    nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| n.handle().map(|h| (i, h.status())))
        .collect()
}

/// The index of the one leader every running node follows.
fn one_leader(nodes: &[Node]) -> Option<(usize, QuorumStatus)> {
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

fn batch(n: u32) -> Bytes {
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
async fn propose(
    leader: &QuorumHandle,
    first: u32,
    count: u32,
    proposed: &mut Vec<(u64, Bytes)>,
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut end = 0;
    for n in first..first + count {
        let data = batch(n);
        let at = leader.propose([Proposal::from(data.clone())]).await?;
        proposed.push((at.offset - 1, data));
        end = at.offset;
    }
    Ok(end)
}

fn all_reach(nodes: &[Node], high_watermark: u64) -> Option<()> {
    statuses(nodes)
        .iter()
        .all(|(_, s)| s.high_watermark >= high_watermark)
        .then_some(())
}

/// Every entry of the log in `dir` below `end`.
fn entries_below(dir: &Path, end: u64) -> Result<Vec<Entry>, Box<dyn std::error::Error>> {
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

fn with_timeout<F: Future>(f: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(DEADLINE, f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_commit_fail_over_and_catch_up() -> TestResult {
    let mut listeners = Vec::new();
    let mut addrs = BTreeMap::new();
    for id in VOTERS {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        addrs.insert(id, listener.local_addr()?);
        listeners.push(listener);
    }
    let mut nodes = Vec::new();
    for (id, listener) in VOTERS.into_iter().zip(listeners) {
        let dir = TempDir::new()?;
        let driver = start(id, listener, dir.path(), &addrs)?;
        nodes.push(Node {
            id,
            addr: addrs[&id],
            dir,
            driver: Some(driver),
        });
    }

    // One leader, followed by both others.
    let (first, first_status) = wait_for("a leader", || one_leader(&nodes)).await?;
    assert!(first_status.epoch >= 1);
    let leader = nodes[first].handle().ok_or("leader stopped")?;
    let mut proposed = Vec::new();
    let end = with_timeout(propose(&leader, 0, 5, &mut proposed)).await??;
    wait_for("the first proposals committed everywhere", || {
        all_reach(&nodes, end)
    })
    .await?;

    // The leader stops; the other two elect a new one in a later epoch.
    let stopped = nodes[first].driver.take().ok_or("no driver")?;
    stopped.shutdown().await;
    let (second, _) = wait_for("a new leader", || {
        one_leader(&nodes).filter(|(_, s)| s.epoch > first_status.epoch)
    })
    .await?;
    assert_ne!(second, first);
    let leader = nodes[second].handle().ok_or("leader stopped")?;
    let end = with_timeout(propose(&leader, 5, 5, &mut proposed)).await??;
    wait_for("the later proposals committed by the two", || {
        all_reach(&nodes, end)
    })
    .await?;

    // The stopped node comes back from its dir and catches up.
    let listener = TcpListener::bind(nodes[first].addr).await?;
    let restarted = start(nodes[first].id, listener, nodes[first].dir.path(), &addrs)?;
    let back = restarted.handle();
    nodes[first].driver = Some(restarted);
    wait_for("the restarted node caught up", || {
        let leader_hw = leader.status().high_watermark;
        let status = back.status();
        (status.log_end_offset >= leader_hw && status.high_watermark >= end).then_some(())
    })
    .await?;
    let committed = leader.status().high_watermark;
    assert!(committed >= end);

    // Every node holds the same committed entries, the proposals at the
    // offsets they were given.
    for node in &mut nodes {
        if let Some(driver) = node.driver.take() {
            driver.shutdown().await;
        }
    }
    let logs = nodes
        .iter()
        .map(|n| entries_below(n.dir.path(), committed))
        .collect::<Result<Vec<_>, _>>()?;
    assert_eq!(logs[0], logs[1]);
    assert_eq!(logs[0], logs[2]);
    let leader_changes = logs[0]
        .iter()
        .filter(|e| matches!(e.payload, Payload::LeaderChange { .. }))
        .count();
    assert!(leader_changes >= 2, "a leader change per elected epoch");
    for (offset, data) in &proposed {
        let entry = logs[0]
            .iter()
            .find(|e| e.offset == *offset)
            .ok_or(format!("no entry at offset {offset}"))?;
        let Payload::Data(stored) = &entry.payload else {
            return Err(format!("offset {offset} holds a leader change").into());
        };
        assert_eq!(
            stored[STAMPED_HEADER_BYTES..],
            data[STAMPED_HEADER_BYTES..],
            "offset {offset}"
        );
    }
    Ok(())
}
