//! Three combined nodes (`process.roles=broker,controller`) on loopback,
//! each with its own Kafka-style server.properties and data dir,
//! formatted with `runnel storage format`, for the tests of a cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::Broker;
use super::client::Client;

pub const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";
pub const NODES: [i32; 3] = [1, 2, 3];
/// A cluster's start waits for a majority and an election.
pub const START_DEADLINE: Duration = Duration::from_secs(60);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Writes node `id`'s server.properties and formats its data dir.
pub fn configure(root: &Path, id: i32, voters: &str, extra: &str) -> PathBuf {
    let dir = root.join(format!("node-{id}"));
    std::fs::create_dir_all(&dir).expect("node dir");
    let controller_port = voters
        .split(',')
        .find_map(|v| v.strip_prefix(&format!("{id}@127.0.0.1:")))
        .expect("own voter entry");
    let config = dir.join("server.properties");
    let text = format!(
        "process.roles=broker,controller\n\
         node.id={id}\n\
         controller.quorum.voters={voters}\n\
         listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:{controller_port}\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         log.dirs={}\n\
         metrics.listen=127.0.0.1:0\n\
         controller.quorum.election.timeout.ms=500\n\
         broker.heartbeat.interval.ms=500\n\
         {extra}",
        dir.join("data").display(),
        extra = extra.replace("{rack}", if id == 3 { "rack-b" } else { "rack-a" }),
    );
    std::fs::write(&config, text).expect("write server.properties");
    let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["storage", "format", "-t", CLUSTER_ID, "-c"])
        .arg(&config)
        .output()
        .expect("runnel storage format");
    assert!(
        output.status.success(),
        "format node {id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    config
}

pub struct Cluster {
    pub root: tempfile::TempDir,
    pub configs: BTreeMap<i32, PathBuf>,
    pub nodes: BTreeMap<i32, Broker>,
}

impl Cluster {
    pub fn bootstrap(&self, id: i32) -> String {
        self.nodes[&id].bootstrap.clone()
    }

    /// Starts node `id` again on its config and data, after it stopped.
    pub fn restart(&mut self, id: i32) {
        let mut node = Broker::serve_config(&self.configs[&id]);
        node.wait_ready_within(START_DEADLINE);
        self.nodes.insert(id, node);
    }
}

pub fn start_cluster() -> Cluster {
    start_cluster_with("")
}

/// Three formatted nodes with `extra` server.properties lines each; a
/// `{rack}` in them is `rack-a` for nodes 1 and 2, `rack-b` for node 3.
pub fn start_cluster_with(extra: &str) -> Cluster {
    let root = tempfile::tempdir().expect("tempdir");
    let voters: Vec<String> = NODES
        .iter()
        .map(|id| format!("{id}@127.0.0.1:{}", free_port()))
        .collect();
    let voters = voters.join(",");
    let configs: Vec<(i32, PathBuf)> = NODES
        .iter()
        .map(|&id| (id, configure(root.path(), id, &voters, extra)))
        .collect();
    // All three start before any is waited on: a node is ready only once
    // a majority elected a controller and it registered.
    let mut nodes: BTreeMap<i32, Broker> = configs
        .iter()
        .map(|(id, config)| (*id, Broker::serve_config(config)))
        .collect();
    for node in nodes.values_mut() {
        node.wait_ready_within(START_DEADLINE);
    }
    Cluster {
        root,
        configs: configs.into_iter().collect(),
        nodes,
    }
}

pub fn metadata(bootstrap: &str, topic: Option<&str>) -> MetadataResponse {
    let mut request = MetadataRequest::default();
    request.topics = topic.map(|t| {
        vec![
            MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(t.into())))),
        ]
    });
    Client::connect(bootstrap).call(ApiKey::Metadata, 12, &request)
}

/// Checks `condition` until it holds or `deadline` passes.
pub fn wait_for(what: &str, deadline: Duration, mut condition: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !condition() {
        assert!(Instant::now() < until, "{what}: not within {deadline:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Moves leadership around, as a cluster under maintenance does: every
/// `every` until `stop`, each partition of every topic with more than one
/// replica gets its replicas rotated by one (a reassignment that moves no
/// data) and a preferred election, so its next replica leads. The
/// internal topics' partitions (the group and transaction coordinators)
/// move only every `coordinators_every`. Returns how many rounds ran.
pub fn churn_leaders(
    bootstrap: String,
    (every, coordinators_every): (Duration, Duration),
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
        ElectLeadersRequest, ElectLeadersResponse,
    };
    std::thread::spawn(move || {
        let mut rounds = 0;
        let mut coordinators_moved: Option<Instant> = None;
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            let response = metadata(&bootstrap, None);
            let move_coordinators =
                coordinators_moved.is_none_or(|at| at.elapsed() >= coordinators_every);
            if move_coordinators {
                coordinators_moved = Some(Instant::now());
            }
            let topics: Vec<ReassignableTopic> = response
                .topics
                .iter()
                .filter_map(|t| {
                    let name = t.name.clone()?;
                    if name.0.starts_with("__") && !move_coordinators {
                        return None;
                    }
                    let partitions: Vec<ReassignablePartition> = t
                        .partitions
                        .iter()
                        .filter(|p| p.replica_nodes.len() > 1)
                        .map(|p| {
                            let mut rotated = p.replica_nodes.clone();
                            rotated.rotate_left(1);
                            ReassignablePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_replicas(Some(rotated))
                        })
                        .collect();
                    (!partitions.is_empty()).then(|| {
                        ReassignableTopic::default()
                            .with_name(name)
                            .with_partitions(partitions)
                    })
                })
                .collect();
            if !topics.is_empty() {
                let request = AlterPartitionReassignmentsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(topics);
                let _: AlterPartitionReassignmentsResponse = Client::connect(&bootstrap).call(
                    ApiKey::AlterPartitionReassignments,
                    0,
                    &request,
                );
                let elect = ElectLeadersRequest::default()
                    .with_election_type(0)
                    .with_timeout_ms(10_000)
                    .with_topic_partitions(None);
                let _: ElectLeadersResponse =
                    Client::connect(&bootstrap).call(ApiKey::ElectLeaders, 2, &elect);
                rounds += 1;
            }
            // Pacing, not synchronisation: the next round a while later.
            let until = Instant::now() + every;
            while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        rounds
    })
}

/// `lines` (`key:value`) produced by kcat with `settings` (`-X k=v` ...),
/// waiting for every delivery; kcat exits non-zero when one fails.
pub fn kcat_produce(bootstrap: &str, topic: &str, lines: &[String], settings: &[&str]) {
    use std::io::Write;
    let mut child = super::kcat()
        .args(["-b", bootstrap, "-P", "-t", topic, "-K", ":"])
        .args(settings)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn kcat -P");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all((lines.join("\n") + "\n").as_bytes())
            .expect("write to kcat");
    }
    let deadline = Instant::now() + super::DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for kcat") {
            assert!(status.success(), "kcat -P {topic}: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "kcat -P {topic} did not finish within {:?}",
                super::DEADLINE
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every record of `topic` read by kcat from the beginning to the end of
/// each partition, as `key:value` lines.
pub fn kcat_read(bootstrap: &str, topic: &str) -> Vec<String> {
    let output = super::kcat()
        .args([
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .args(["-f", "%k:%s\\n"])
        .output()
        .expect("kcat -C");
    assert!(
        output.status.success(),
        "kcat -C: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One record of `value` to `topic`-`partition` with `acks` (Produce v9):
/// the partition's error code.
pub fn produce_one(bootstrap: &str, topic: &str, partition: i32, acks: i16, value: &str) -> i16 {
    use bytes::Bytes;
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, produce_request};
    // Stamped now: a record from 1970 would be past retention.ms.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut builder = runnel_log::BatchBuilder::new(now_ms);
    builder.push(None, Some(value.as_bytes()), now_ms);
    let mut data = produce_request::PartitionProduceData::default();
    data.index = partition;
    data.records = Some(Bytes::from(builder.build()));
    let mut topic_data = produce_request::TopicProduceData::default();
    topic_data.name = TopicName(StrBytes::from_string(topic.to_string()));
    topic_data.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = acks;
    request.timeout_ms = 10_000;
    request.topic_data = vec![topic_data];
    let response: ProduceResponse = Client::connect(bootstrap).call(ApiKey::Produce, 9, &request);
    response.responses[0].partition_responses[0].error_code
}
