//! Three combined nodes (`process.roles=broker,controller`) of `runnel
//! serve` on 127.0.0.1, as `tests/common/cluster.rs` starts them: each with
//! its own Kafka-style server.properties and data dir, formatted by `runnel
//! storage format`, with a free controller port each and client ports
//! chosen by the kernel. And what Metadata says of a topic's partitions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::protocol::StrBytes;

use super::process::BrokerProcess;
use super::wire::Connection;

pub const NODES: [i32; 3] = [1, 2, 3];
/// 16 bytes in URL-safe base64, as `runnel storage format -t` takes them.
const CLUSTER_ID: &str = "QnJva2VyQmVuY2hDbHVzdA";
const METADATA_VERSION: i16 = 12;
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The three running nodes, killed if dropped before `stop`.
#[derive(Debug)]
pub struct Cluster {
    pub nodes: BTreeMap<i32, BrokerProcess>,
}

/// One partition as a node's Metadata answer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub isr: Vec<i32>,
}

impl Cluster {
    /// Formats the three nodes under `root` and starts them all before
    /// waiting for any: a node is ready only once a majority elected a
    /// controller and it registered.
    pub fn start(bench: &str, root: &Path) -> Result<Self> {
        let started = Instant::now();
        let voters = NODES
            .iter()
            .map(|id| Ok(format!("{id}@127.0.0.1:{}", free_port()?)))
            .collect::<Result<Vec<_>>>()?
            .join(",");
        let configs = NODES
            .iter()
            .map(|&id| Ok((id, configure(root, id, &voters)?)))
            .collect::<Result<Vec<_>>>()?;
        let nodes = std::thread::scope(|scope| {
            let starting: Vec<_> = configs
                .iter()
                .map(|(id, config)| {
                    let start = scope.spawn(|| BrokerProcess::start_config(bench, config));
                    (*id, start)
                })
                .collect();
            // A node started beside one that failed is dropped, so killed,
            // when the scope joins its thread.
            starting
                .into_iter()
                .map(|(id, start)| {
                    let node = start
                        .join()
                        .map_err(|_| anyhow::anyhow!("starting node {id} panicked"))?
                        .with_context(|| format!("starting node {id}"))?;
                    Ok((id, node))
                })
                .collect::<Result<BTreeMap<_, _>>>()
        })?;
        let listeners: Vec<String> = nodes
            .iter()
            .map(|(id, node)| format!("node {id} on {}", node.addr))
            .collect();
        eprintln!(
            "{bench}: a cluster of three ready in {:.2} s: {}",
            started.elapsed().as_secs_f64(),
            listeners.join(", ")
        );
        Ok(Self { nodes })
    }

    /// The nodes' pids in node id order, for `Meter::start_brokers`.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.values().map(BrokerProcess::pid).collect()
    }

    /// The client listener of node `id`.
    pub fn addr(&self, id: i32) -> Result<SocketAddr> {
        self.nodes
            .get(&id)
            .map(|node| node.addr)
            .with_context(|| format!("no node {id} in the cluster"))
    }

    /// Sends SIGTERM to every node at once and waits for them all; the
    /// time until the last one exited.
    pub fn stop(&mut self) -> Result<Duration> {
        let started = Instant::now();
        std::thread::scope(|scope| {
            let stopping: Vec<_> = self
                .nodes
                .iter_mut()
                .map(|(id, node)| (*id, scope.spawn(|| node.stop())))
                .collect();
            for (id, stop) in stopping {
                stop.join()
                    .map_err(|_| anyhow::anyhow!("stopping node {id} panicked"))?
                    .with_context(|| format!("stopping node {id}"))?;
            }
            anyhow::Ok(())
        })?;
        Ok(started.elapsed())
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Writes node `id`'s server.properties under `root` and formats its data
/// dir; the metrics port is left to `BrokerProcess`.
fn configure(root: &Path, id: i32, voters: &str) -> Result<PathBuf> {
    let dir = root.join(format!("node-{id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let controller_port = voters
        .split(',')
        .find_map(|v| v.strip_prefix(&format!("{id}@127.0.0.1:")))
        .context("own voter entry")?;
    let config = dir.join("server.properties");
    let text = format!(
        "process.roles=broker,controller\n\
         node.id={id}\n\
         controller.quorum.voters={voters}\n\
         listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{controller_port}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         log.dirs={}\n",
        dir.join("data").display(),
    );
    std::fs::write(&config, text).with_context(|| format!("cannot write {}", config.display()))?;
    let binary = std::env::var_os("RUNNEL_BENCH_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_runnel").into());
    let output = Command::new(&binary)
        .args(["storage", "format", "-t", CLUSTER_ID, "-c"])
        .arg(&config)
        .output()
        .with_context(|| format!("cannot run {} storage format", binary.to_string_lossy()))?;
    ensure!(
        output.status.success(),
        "formatting node {id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(config)
}

/// Each partition of `topic` (by index) as the node at `addr` sees it.
pub async fn partitions(
    addr: SocketAddr,
    client_id: &'static str,
    topic: &'static str,
) -> Result<BTreeMap<i32, PartitionState>> {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str(topic)))),
    ]));
    let mut connection = Connection::open(addr, client_id).await?;
    let response = connection.call(METADATA_VERSION, &request).await?;
    let Some(answer) = response.topics.first() else {
        bail!("Metadata from {addr} has no topic {topic}");
    };
    if answer.error_code != 0 {
        // Not known there yet: no partitions.
        return Ok(BTreeMap::new());
    }
    Ok(answer
        .partitions
        .iter()
        .map(|p| {
            let state = PartitionState {
                leader: p.leader_id.0,
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
            };
            (p.partition_index, state)
        })
        .collect())
}

/// Polls Metadata at `addr` until `topic` has `partitions` partitions, each
/// with a leader and `isr` replicas in sync, or fails at the deadline;
/// returns what it saw last.
pub async fn wait_for_isr(
    addr: SocketAddr,
    client_id: &'static str,
    topic: &'static str,
    partitions_expected: i32,
    isr: usize,
    deadline: Duration,
) -> Result<BTreeMap<i32, PartitionState>> {
    let started = Instant::now();
    loop {
        let seen = partitions(addr, client_id, topic).await?;
        if seen.len() == partitions_expected as usize
            && seen.values().all(|p| p.leader >= 0 && p.isr.len() == isr)
        {
            return Ok(seen);
        }
        if started.elapsed() > deadline {
            bail!(
                "{addr} does not see {partitions_expected} partitions of {topic} with {isr} in sync within {deadline:?}: {seen:?}"
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
