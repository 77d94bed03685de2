//! `runnel metadata-quorum --bootstrap-server HOST:PORT describe --status
//! | --replication`, as kafka-metadata-quorum: the quorum's summary (the
//! cluster id from DescribeCluster, then leader, epoch, high watermark,
//! follower lag, voters and observers), or one table row per replica
//! (leader, followers, observers). The output is Kafka's, line for line.
//!
//! The requests go to the bootstrap server directly: DescribeCluster v1
//! and DescribeQuorum v2 (which Kafka's tool also sends to a broker).

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_quorum_request::{
    DescribeQuorumRequest, PartitionData, TopicData,
};
use kafka_protocol::messages::describe_quorum_response::{
    DescribeQuorumResponse, Node, ReplicaState,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use runnel_client::connection::Connection;

use crate::meta::uuid_string;

const METADATA_TOPIC: &str = "__cluster_metadata";
const DESCRIBE_CLUSTER_VERSION: i16 = 1;
const DESCRIBE_QUORUM_VERSION: i16 = 2;

#[derive(Debug, Args)]
pub struct MetadataQuorumArgs {
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    #[command(subcommand)]
    command: QuorumCommand,
}

#[derive(Debug, Subcommand)]
enum QuorumCommand {
    /// Describe the metadata quorum info
    Describe(DescribeArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["status", "replication"])))]
struct DescribeArgs {
    /// A short summary of the quorum status
    #[arg(long)]
    status: bool,
    /// Detailed information about the status of replication
    #[arg(long)]
    replication: bool,
}

pub fn run(args: MetadataQuorumArgs) -> Result<()> {
    super::runtime()?.block_on(describe(args))
}

async fn describe(args: MetadataQuorumArgs) -> Result<()> {
    let QuorumCommand::Describe(what) = &args.command;
    let address = args.bootstrap_server.split(',').next().unwrap_or_default();
    let connection = Connection::open(address, "runnel-metadata-quorum")
        .await
        .context("cannot reach the cluster")?;
    let quorum = describe_quorum(&connection).await?;
    if what.replication {
        print!("{}", replication(&quorum)?);
        return Ok(());
    }
    let mut request = DescribeClusterRequest::default();
    request.endpoint_type = 1; // brokers
    let cluster = connection
        .call(DESCRIBE_CLUSTER_VERSION, &request)
        .await
        .context("DescribeCluster failed")?;
    if cluster.error_code != 0 {
        bail!(
            "DescribeCluster failed with error code {}",
            cluster.error_code
        );
    }
    print!("{}", status(cluster.cluster_id.as_str(), &quorum)?);
    Ok(())
}

/// The metadata partition's quorum, as the leader describes it.
#[derive(Debug)]
struct Quorum {
    leader_id: i32,
    leader_epoch: i32,
    high_watermark: i64,
    voters: Vec<ReplicaState>,
    observers: Vec<ReplicaState>,
    nodes: Vec<Node>,
}

async fn describe_quorum(connection: &Connection) -> Result<Quorum> {
    let mut partition = PartitionData::default();
    partition.partition_index = 0;
    let mut topic = TopicData::default();
    topic.topic_name = TopicName(StrBytes::from_static_str(METADATA_TOPIC));
    topic.partitions = vec![partition];
    let mut request = DescribeQuorumRequest::default();
    request.topics = vec![topic];
    let response: DescribeQuorumResponse = connection
        .call(DESCRIBE_QUORUM_VERSION, &request)
        .await
        .context("DescribeQuorum failed")?;
    if response.error_code != 0 {
        bail!(
            "DescribeQuorum failed with error code {}",
            response.error_code
        );
    }
    let Some(partition) = response
        .topics
        .into_iter()
        .find(|t| t.topic_name.as_str() == METADATA_TOPIC)
        .and_then(|t| t.partitions.into_iter().find(|p| p.partition_index == 0))
    else {
        bail!("the DescribeQuorum response has no {METADATA_TOPIC}-0");
    };
    if partition.error_code != 0 {
        bail!(
            "DescribeQuorum failed for {METADATA_TOPIC}-0 with error code {}",
            partition.error_code
        );
    }
    Ok(Quorum {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: partition.current_voters,
        observers: partition.observers,
        nodes: response.nodes,
    })
}

impl Quorum {
    fn leader(&self) -> Result<&ReplicaState> {
        self.voters
            .iter()
            .find(|v| v.replica_id == BrokerId(self.leader_id))
            .with_context(|| format!("the leader {} is not among the voters", self.leader_id))
    }
}

/// `describe --status`: Kafka's labels, padded to 24 columns.
fn status(cluster_id: &str, quorum: &Quorum) -> Result<String> {
    let leader = quorum.leader()?;
    // The first voter furthest behind (Kafka's `min` keeps the first).
    let mut behind = leader;
    for voter in &quorum.voters {
        if voter.log_end_offset < behind.log_end_offset {
            behind = voter;
        }
    }
    let max_lag = leader.log_end_offset - behind.log_end_offset;
    let max_lag_time_ms = if std::ptr::eq(behind, leader) {
        0
    } else if leader.last_caught_up_timestamp >= 0 && behind.last_caught_up_timestamp >= 0 {
        leader.last_caught_up_timestamp - behind.last_caught_up_timestamp
    } else {
        -1
    };
    let lines = [
        ("ClusterId:", cluster_id.to_string()),
        ("LeaderId:", quorum.leader_id.to_string()),
        ("LeaderEpoch:", quorum.leader_epoch.to_string()),
        ("HighWatermark:", quorum.high_watermark.to_string()),
        ("MaxFollowerLag:", max_lag.to_string()),
        ("MaxFollowerLagTimeMs:", max_lag_time_ms.to_string()),
        ("CurrentVoters:", replicas(quorum, &quorum.voters)),
        ("CurrentObservers:", replicas(quorum, &quorum.observers)),
    ];
    Ok(lines
        .iter()
        .map(|(label, value)| format!("{label:<24}{value}\n"))
        .collect())
}

/// `[{"id": 1, "endpoints": ["PLAINTEXT://host:9092"]}, ...]`; a zero
/// directory id and an empty endpoint list are left out, as Kafka does.
fn replicas(quorum: &Quorum, replicas: &[ReplicaState]) -> String {
    let entries: Vec<String> = replicas
        .iter()
        .map(|r| {
            let mut entry = format!("{{\"id\": {}", r.replica_id.0);
            if !r.replica_directory_id.is_nil() {
                entry += &format!(
                    ", \"directoryId\": \"{}\"",
                    uuid_string(r.replica_directory_id)
                );
            }
            let endpoints: Vec<String> = quorum
                .nodes
                .iter()
                .filter(|n| n.node_id == r.replica_id)
                .flat_map(|n| &n.listeners)
                .map(|l| {
                    let host = l.host.as_str();
                    if host.contains(':') {
                        format!("\"{}://[{host}]:{}\"", l.name.as_str(), l.port)
                    } else {
                        format!("\"{}://{host}:{}\"", l.name.as_str(), l.port)
                    }
                })
                .collect();
            if !endpoints.is_empty() {
                entry += &format!(", \"endpoints\": [{}]", endpoints.join(", "));
            }
            entry + "}"
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

/// `describe --replication`: one row per replica, the leader first, then
/// the other voters, then the observers.
fn replication(quorum: &Quorum) -> Result<String> {
    let leader = quorum.leader()?;
    let row = |r: &ReplicaState, role: &str| {
        let timestamp = |t: i64| if t < 0 { -1 } else { t };
        vec![
            r.replica_id.0.to_string(),
            uuid_string(r.replica_directory_id),
            r.log_end_offset.to_string(),
            (leader.log_end_offset - r.log_end_offset).to_string(),
            timestamp(r.last_fetch_timestamp).to_string(),
            timestamp(r.last_caught_up_timestamp).to_string(),
            role.to_string(),
        ]
    };
    let mut rows = vec![row(leader, "Leader")];
    rows.extend(
        quorum
            .voters
            .iter()
            .filter(|v| v.replica_id != leader.replica_id)
            .map(|v| row(v, "Follower")),
    );
    rows.extend(quorum.observers.iter().map(|o| row(o, "Observer")));
    let header = [
        "NodeId",
        "DirectoryId",
        "LogEndOffset",
        "Lag",
        "LastFetchTimestamp",
        "LastCaughtUpTimestamp",
        "Status",
    ]
    .map(String::from)
    .to_vec();
    Ok(table(&header, &rows))
}

/// Kafka's `prettyPrintTable`: every cell left-aligned to its column's
/// widest and followed by a tab.
fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(header)
                .chain(rows.iter().map(Vec::as_slice))
                .map(|r| r.get(i).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        for (cell, width) in row.iter().zip(&widths) {
            out += &format!("{cell:<width$}\t");
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_quorum_response::Listener;

    use super::*;

    fn one_node() -> Quorum {
        let mut leader = ReplicaState::default();
        leader.replica_id = BrokerId(1);
        leader.log_end_offset = 7;
        leader.last_fetch_timestamp = 1_700_000_000_000;
        leader.last_caught_up_timestamp = 1_700_000_000_000;
        let mut listener = Listener::default();
        listener.name = StrBytes::from_static_str("PLAINTEXT");
        listener.host = StrBytes::from_static_str("127.0.0.1");
        listener.port = 9092;
        let mut node = Node::default();
        node.node_id = BrokerId(1);
        node.listeners = vec![listener];
        Quorum {
            leader_id: 1,
            leader_epoch: 0,
            high_watermark: 7,
            voters: vec![leader],
            observers: vec![],
            nodes: vec![node],
        }
    }

    #[test]
    fn status_is_kafkas_summary() {
        let text = status("abc", &one_node()).expect("status");
        assert_eq!(
            text,
            "ClusterId:              abc\n\
             LeaderId:               1\n\
             LeaderEpoch:            0\n\
             HighWatermark:          7\n\
             MaxFollowerLag:         0\n\
             MaxFollowerLagTimeMs:   0\n\
             CurrentVoters:          [{\"id\": 1, \"endpoints\": [\"PLAINTEXT://127.0.0.1:9092\"]}]\n\
             CurrentObservers:       []\n"
        );
    }

    #[test]
    fn replication_is_kafkas_table() {
        let text = replication(&one_node()).expect("replication");
        assert_eq!(
            text,
            "NodeId\tDirectoryId           \tLogEndOffset\tLag\tLastFetchTimestamp\tLastCaughtUpTimestamp\tStatus\t\n\
             1     \tAAAAAAAAAAAAAAAAAAAAAA\t7           \t0  \t1700000000000     \t1700000000000        \tLeader\t\n"
        );
    }
}
