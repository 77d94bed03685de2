//! Three combined nodes (`process.roles=broker,controller`) on loopback,
//! each with its own Kafka-style server.properties and data dir, formatted
//! with `runnel storage format`: one cluster. Every node lists the same
//! three brokers; a 12-partition topic created through any node spreads
//! over all three; a node answers NOT_LEADER_OR_FOLLOWER for a partition
//! another leads; kcat produces through one node and reads every record
//! back through another. A broker silent past its session timeout
//! (SIGSTOP, kill -9) is fenced and leads again once back; kill -9 of the
//! active controller gives a new one that creates topics.
//!
//! Waits are for conditions with a deadline, never sleeps.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Broker;
use common::client::Client;
use common::cluster::{
    CLUSTER_ID, NODES, START_DEADLINE, free_port, metadata, start_cluster, start_cluster_with,
    wait_for,
};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, MetadataResponse, TopicName,
    create_topics_request,
};
use kafka_protocol::protocol::StrBytes;

fn broker_ids(response: &MetadataResponse) -> Vec<i32> {
    let mut ids: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort_unstable();
    ids
}

#[test]
fn three_nodes_form_one_cluster_and_serve_a_topic_spread_over_all() {
    let cluster = start_cluster_with("broker.rack={rack}\n");
    let bootstraps: BTreeMap<i32, String> = cluster
        .nodes
        .iter()
        .map(|(id, node)| (*id, node.bootstrap.clone()))
        .collect();

    for (id, bootstrap) in &bootstraps {
        wait_for(
            &format!("node {id} lists brokers 1, 2 and 3"),
            common::DEADLINE,
            || broker_ids(&metadata(bootstrap, None)) == NODES.to_vec(),
        );
    }

    describes_three_voters(&bootstraps[&3]);
    let controller = quorum_leader(&bootstraps[&1]).expect("a controller");
    for (id, node) in &cluster.nodes {
        let text = common::scrape_metrics(&node.metrics);
        let expected = if *id == controller { 1.0 } else { 0.0 };
        assert_eq!(
            metric(&text, "runnel_quorum_active_controller"),
            Some(expected),
            "node {id}"
        );
        assert_eq!(
            metric(&text, "runnel_quorum_leader"),
            Some(f64::from(controller))
        );
        assert_eq!(metric(&text, "runnel_controller_active_brokers"), Some(3.0));
        assert_eq!(metric(&text, "runnel_controller_fenced_brokers"), Some(0.0));
        assert!(
            text.contains("runnel_metadata_apply_seconds_count"),
            "node {id}: {text}"
        );
    }
    let leader_metrics = &cluster.nodes[&controller].metrics;
    wait_for(
        "the controller's metrics give each voter's lag",
        common::DEADLINE,
        || {
            let text = common::scrape_metrics(leader_metrics);
            NODES.iter().all(|id| {
                metric(&text, &format!("runnel_quorum_voter_lag{{voter=\"{id}\"}}")).is_some()
            })
        },
    );

    // Created through node 2, whichever node is the controller.
    let topic = "spread";
    assert_eq!(create_topic(&bootstraps[&2], topic, 12), 0);

    let mut leaders_seen = Vec::new();
    for (id, bootstrap) in &bootstraps {
        // Each node's image follows the controller's a moment later.
        wait_for(
            &format!("node {id} has the new topic"),
            common::DEADLINE,
            || metadata(bootstrap, Some(topic)).topics[0].partitions.len() == 12,
        );
        let response = metadata(bootstrap, Some(topic));
        let partitions = &response.topics[0].partitions;
        let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
        for p in partitions {
            *leaders.entry(p.leader_id.0).or_default() += 1;
        }
        assert_eq!(
            leaders,
            BTreeMap::from([(1, 4), (2, 4), (3, 4)]),
            "node {id}: four partitions led by each broker"
        );
        leaders_seen.push(
            partitions
                .iter()
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        leaders_seen.windows(2).all(|w| w[0] == w[1]),
        "every node names the same leaders"
    );
    // Placed round robin over the brokers in rack-alternated order, as
    // Kafka's: 1 (rack-a), 3 (rack-b), 2 (rack-a).
    let first_three: Vec<i32> = leaders_seen[0][..3].iter().map(|(_, l)| *l).collect();
    assert_eq!(first_three, [1, 3, 2]);
    let racks: BTreeMap<i32, Option<String>> = metadata(&bootstraps[&2], None)
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.rack.as_ref().map(|r| r.to_string())))
        .collect();
    assert_eq!(
        racks,
        BTreeMap::from([
            (1, Some("rack-a".to_string())),
            (2, Some("rack-a".to_string())),
            (3, Some("rack-b".to_string())),
        ])
    );

    // A partition led by node 1, produced to on node 2.
    let (&led_by_one, _) = leaders_seen[0]
        .iter()
        .map(|(p, l)| (p, l))
        .find(|(_, l)| **l == 1)
        .expect("a partition led by node 1");
    let refused = produce_one(&bootstraps[&2], topic, led_by_one);
    assert_eq!(
        refused,
        kafka_protocol::error::ResponseError::NotLeaderOrFollower.code(),
        "node 2 does not lead partition {led_by_one}"
    );

    // kcat: produce through node 1 (librdkafka routes each partition to
    // its leader), consume everything back through node 3.
    let lines: Vec<String> = (0..120).map(|i| format!("key-{i}:value {i}")).collect();
    kcat_produce(&bootstraps[&1], topic, &lines);
    let consumed = kcat_consume(&bootstraps[&3], topic, lines.len());
    let mut expected = lines.clone();
    expected.sort();
    let mut consumed = consumed;
    consumed.sort();
    assert_eq!(
        consumed, expected,
        "every record produced is read back once"
    );
}

/// One record produced to `topic`-`partition` through `bootstrap`: the
/// partition's error code.
fn produce_one(bootstrap: &str, topic: &str, partition: i32) -> i16 {
    common::cluster::produce_one(bootstrap, topic, partition, 1, "one")
}

/// `lines` (`key:value`) produced by kcat, which waits for every delivery.
fn kcat_produce(bootstrap: &str, topic: &str, lines: &[String]) {
    common::cluster::kcat_produce(bootstrap, topic, lines, &[]);
}

/// Every record of `topic` read by kcat from the beginning to the end of
/// each partition, as `key:value` lines; there are `expected`.
fn kcat_consume(bootstrap: &str, topic: &str, expected: usize) -> Vec<String> {
    let lines = common::cluster::kcat_read(bootstrap, topic);
    assert_eq!(lines.len(), expected, "kcat read {} records", lines.len());
    lines
}

/// CreateTopics of `name` (`partitions` partitions, one replica each)
/// through `bootstrap`: the topic's error code.
fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> i16 {
    let mut create = CreateTopicsRequest::default();
    create.timeout_ms = 30_000;
    create.topics = vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ];
    let created: CreateTopicsResponse =
        Client::connect(bootstrap).call(ApiKey::CreateTopics, 7, &create);
    created.topics[0].error_code
}

/// The active controller, by DescribeQuorum through `bootstrap` (a node
/// that does not lead forwards it).
fn quorum_leader(bootstrap: &str) -> Option<i32> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};
    let mut request = DescribeQuorumRequest::default();
    request.topics = vec![
        TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
    ];
    let response: DescribeQuorumResponse =
        Client::connect(bootstrap).call(ApiKey::DescribeQuorum, 2, &request);
    let partition = &response.topics[0].partitions[0];
    (response.error_code == 0 && partition.error_code == 0 && partition.leader_id.0 >= 0)
        .then_some(partition.leader_id.0)
}

/// Each partition of `topic` and its leader (-1 when it has none), as
/// `bootstrap` sees them.
fn leaders(bootstrap: &str, topic: &str) -> BTreeMap<i32, i32> {
    metadata(bootstrap, Some(topic)).topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id.0))
        .collect()
}

const SESSION_TIMEOUT: Duration = Duration::from_millis(3000);
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);

/// A broker silent past `broker.session.timeout.ms` (SIGSTOP, then kill
/// -9) is fenced: every node stops listing it and its partitions lose
/// their leader, so clients get LEADER_NOT_AVAILABLE and other brokers
/// NOT_LEADER_OR_FOLLOWER, never a write that goes nowhere. Not before
/// the timeout; and when it heartbeats again (SIGCONT) or registers again
/// (restart), it leads its partitions again and every record is there.
#[test]
fn a_silent_broker_is_fenced_and_leads_again_when_it_is_back() {
    let mut cluster = start_cluster_with(&format!(
        "broker.session.timeout.ms={}\n",
        SESSION_TIMEOUT.as_millis()
    ));
    for id in NODES {
        let bootstrap = cluster.bootstrap(id);
        wait_for(
            &format!("node {id} lists brokers 1, 2 and 3"),
            common::DEADLINE,
            || broker_ids(&metadata(&bootstrap, None)) == NODES.to_vec(),
        );
    }
    let topic = "fenced";
    assert_eq!(create_topic(&cluster.bootstrap(1), topic, 6), 0);
    let controller = quorum_leader(&cluster.bootstrap(1)).expect("a controller");
    let victim = *NODES
        .iter()
        .find(|id| **id != controller)
        .expect("a victim");
    let witness = cluster.bootstrap(controller);
    let theirs: Vec<i32> = leaders(&witness, topic)
        .into_iter()
        .filter(|(_, leader)| *leader == victim)
        .map(|(p, _)| p)
        .collect();
    assert_eq!(theirs.len(), 2, "broker {victim} leads two of six");
    let fenced = |bootstrap: &str| {
        let response = metadata(bootstrap, Some(topic));
        !broker_ids(&response).contains(&victim)
            && response.topics[0].partitions.iter().all(|p| {
                !theirs.contains(&p.partition_index)
                    || (p.leader_id.0 == -1
                        && p.error_code
                            == kafka_protocol::error::ResponseError::LeaderNotAvailable.code())
            })
    };
    let leads_again = |bootstrap: &str| {
        let now = leaders(bootstrap, topic);
        broker_ids(&metadata(bootstrap, None)) == NODES.to_vec()
            && theirs.iter().all(|p| now[p] == victim)
    };

    // SIGSTOP: alive but silent.
    cluster.nodes[&victim].pause();
    let paused = Instant::now();
    wait_for(
        &format!("broker {victim} fenced after SIGSTOP"),
        SESSION_TIMEOUT + common::DEADLINE,
        || fenced(&witness),
    );
    let fenced_after = paused.elapsed();
    eprintln!(
        "broker {victim} fenced {fenced_after:?} after SIGSTOP \
         (broker.session.timeout.ms={}, broker.heartbeat.interval.ms={})",
        SESSION_TIMEOUT.as_millis(),
        HEARTBEAT_INTERVAL.as_millis()
    );
    assert!(
        fenced_after + HEARTBEAT_INTERVAL >= SESSION_TIMEOUT,
        "fenced after {fenced_after:?}: before its session timed out"
    );
    assert_eq!(
        produce_one(&witness, topic, theirs[0]),
        kafka_protocol::error::ResponseError::NotLeaderOrFollower.code(),
        "a fenced broker's partition is not written elsewhere"
    );
    let controller_metrics = cluster.nodes[&controller].metrics.clone();
    assert_eq!(
        metric(
            &common::scrape_metrics(&controller_metrics),
            "runnel_controller_fenced_brokers"
        ),
        Some(1.0)
    );

    // SIGCONT: its next heartbeat unfences it.
    cluster.nodes[&victim].resume();
    wait_for(
        &format!("broker {victim} leads again after SIGCONT"),
        common::DEADLINE,
        || leads_again(&witness),
    );
    assert_eq!(
        metric(
            &common::scrape_metrics(&controller_metrics),
            "runnel_controller_fenced_brokers"
        ),
        Some(0.0)
    );
    let own = cluster.bootstrap(victim);
    // One record per partition: a partition that took its record is not
    // written again while the other one still refuses.
    let mut unwritten = theirs.clone();
    wait_for(
        &format!("broker {victim} knows it leads again"),
        common::DEADLINE,
        || {
            unwritten.retain(|p| produce_one(&own, topic, *p) != 0);
            unwritten.is_empty()
        },
    );

    // kill -9, then a restart on the same data: registered anew.
    cluster.nodes.get_mut(&victim).expect("victim").kill();
    wait_for(
        &format!("broker {victim} fenced after kill -9"),
        SESSION_TIMEOUT + common::DEADLINE,
        || fenced(&witness),
    );
    cluster.restart(victim);
    wait_for(
        &format!("broker {victim} leads again after its restart"),
        common::DEADLINE,
        || leads_again(&witness),
    );
    let lines: Vec<String> = (0..60).map(|i| format!("key-{i}:value {i}")).collect();
    kcat_produce(&witness, topic, &lines);
    let mut expected = lines.clone();
    expected.extend(theirs.iter().map(|_| ":one".to_string()));
    expected.sort();
    let mut consumed = kcat_consume(&cluster.bootstrap(victim), topic, expected.len());
    consumed.sort();
    assert_eq!(consumed, expected, "every acknowledged record, once");
}

/// kill -9 of the active controller: the others elect a new one, which
/// has every committed record, and topic creation through a surviving
/// node works again; the old controller comes back as a follower and
/// catches up. Prints the time from the kill to the first topic created.
#[test]
fn a_new_controller_takes_over_when_the_active_one_is_killed() {
    let mut cluster = start_cluster_with(&format!(
        "broker.session.timeout.ms={}\n",
        SESSION_TIMEOUT.as_millis()
    ));
    assert_eq!(create_topic(&cluster.bootstrap(1), "before", 3), 0);
    let old = quorum_leader(&cluster.bootstrap(1)).expect("a controller");
    let survivor = *NODES.iter().find(|id| **id != old).expect("a survivor");
    let bootstrap = cluster.bootstrap(survivor);
    cluster.nodes.get_mut(&old).expect("controller").kill();
    let killed = Instant::now();
    let mut attempts = 0;
    wait_for(
        "a topic created after the controller's kill -9",
        common::DEADLINE,
        || {
            attempts += 1;
            let code = create_topic(&bootstrap, "after", 3);
            // TOPIC_ALREADY_EXISTS: an attempt that timed out committed.
            code == 0 || code == kafka_protocol::error::ResponseError::TopicAlreadyExists.code()
        },
    );
    let took = killed.elapsed();
    eprintln!(
        "controller failover: topic created {took:?} after kill -9 of controller {old} \
         ({attempts} attempts; controller.quorum.election.timeout.ms=500, \
         controller.quorum.fetch.timeout.ms=2000)"
    );
    let new = quorum_leader(&bootstrap).expect("a new controller");
    assert_ne!(new, old, "the killed controller does not lead");
    for id in NODES.iter().filter(|id| **id != old) {
        let names = || {
            let mut names: Vec<String> = metadata(&cluster.bootstrap(*id), None)
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect();
            names.sort();
            names
        };
        wait_for(
            &format!("node {id} lists both topics"),
            common::DEADLINE,
            || names() == ["after", "before"],
        );
    }
    cluster.restart(old);
    let back = cluster.bootstrap(old);
    wait_for(
        &format!("node {old} is back and has the new topic"),
        common::DEADLINE,
        || {
            metadata(&back, Some("after")).topics[0].error_code == 0
                && quorum_leader(&back) == Some(new)
        },
    );
}

/// Runs `script` of tests/clients (confluent-kafka or kafka-python)
/// against `bootstrap`; its stderr when it fails.
fn client_script(script: &str, bootstrap: &str, leaders_move: bool) -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let output = Command::new("python3")
        .arg(dir.join(script))
        .arg(bootstrap)
        .env("RUNNEL_LEADERS_MOVE", if leaders_move { "1" } else { "0" })
        .current_dir(&dir)
        .output()
        .expect("run python3");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{script}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The real-client scripts of tests/kafka_clients.rs against the three
/// nodes (bootstrap: all three), and runnel-client's tools: admin
/// requests reach any node (forwarded to the controller), topics spread
/// over all, groups and transactions span partitions led by different
/// brokers (markers go to each partition's leader by WriteTxnMarkers).
#[test]
fn real_clients_work_against_three_nodes() {
    real_clients_on_three_nodes(None);
}

/// As [`real_clients_work_against_three_nodes`], while leadership moves:
/// every 3 s each partition's next replica is made its preferred leader
/// and elected; the internal topics' partitions (the group and
/// transaction coordinators) move every 12 s.
///
/// What Kafka promises under moving leaders is what the scripts check
/// (`RUNNEL_LEADERS_MOVE=1`): acks=0 and acks=1 writes may be lost (the
/// old leader took them, the new one never had them), so roundtrip.py
/// checks what came back of them rather than that all did; producers that
/// expect exact counts are idempotent, since a retry after a move writes a
/// batch twice otherwise (librdkafka's default is not idempotent); a
/// watermark query answered NOT_LEADER_FOR_PARTITION is asked again.
/// Coordinators move less often than the scripts' 6 s session timeout:
/// a classic group restarts its members' session timers when a new
/// coordinator loads it (Kafka's `onGroupLoaded` does the same), so a
/// coordinator that moves faster never expires eos.py's killed worker.
#[test]
fn real_clients_work_while_leaders_move() {
    real_clients_on_three_nodes(Some((Duration::from_secs(3), Duration::from_secs(12))));
}

/// The client scripts against three nodes with three replicas per topic;
/// with `churn`, leadership moves around that often meanwhile.
fn real_clients_on_three_nodes(churn: Option<(Duration, Duration)>) {
    let cluster =
        start_cluster_with("group.initial.rebalance.delay.ms=0\ndefault.replication.factor=3\n");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churning = churn.map(|every| {
        common::cluster::churn_leaders(cluster.bootstrap(1), every, std::sync::Arc::clone(&stop))
    });
    let bootstrap = NODES
        .iter()
        .map(|id| cluster.bootstrap(*id))
        .collect::<Vec<_>>()
        .join(",");
    let scripts = [
        "admin.py",
        "roundtrip.py",
        "kafka_python.py",
        "idempotent.py",
        "groups.py",
        "kafka_python_group.py",
        "group_admin.py",
        "transactions.py",
        "eos.py",
    ];
    let mut failures: Vec<String> = scripts
        .iter()
        .filter_map(|script| client_script(script, &bootstrap, churn.is_some()).err())
        .collect();
    failures.extend(runnel_client_round_trip(&bootstrap).err());
    stop.store(true, std::sync::atomic::Ordering::Release);
    if let Some(churning) = churning {
        let rounds = churning.join().expect("the churn thread");
        assert!(
            rounds >= 2,
            "leadership moved {rounds} times during the scripts"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n----\n"));
}

/// runnel-client, through `runnel produce` and `runnel consume` in a
/// group: 60 keyed records over a 6-partition topic, every one read back.
fn runnel_client_round_trip(bootstrap: &str) -> Result<(), String> {
    use std::io::Write;
    let topic = "runnel-client";
    let first = bootstrap.split(',').next().unwrap_or(bootstrap);
    let created = create_topic(first, topic, 6);
    if created != 0 {
        return Err(format!("create {topic}: error {created}"));
    }
    let lines: Vec<String> = (0..60).map(|i| format!("k{i}:v{i}")).collect();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn runnel");
        let _ = child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes());
        child.wait_with_output().expect("runnel")
    };
    let key_props = ["--property", "key.separator=:"];
    let mut produce = vec!["produce", "--bootstrap-server", bootstrap, "--topic", topic];
    produce.extend(["--property", "parse.key=true"]);
    produce.extend(key_props);
    let produced = run(&produce, &(lines.join("\n") + "\n"));
    if !produced.status.success() {
        return Err(format!("runnel produce: {produced:?}"));
    }
    let mut consume = vec!["consume", "--bootstrap-server", bootstrap, "--topic", topic];
    consume.extend(["--group", "runnel-client", "--from-beginning"]);
    consume.extend(["--max-messages", "60", "--property", "print.key=true"]);
    consume.extend(key_props);
    let consumed = run(&consume, "");
    if !consumed.status.success() {
        return Err(format!("runnel consume: {consumed:?}"));
    }
    let mut got: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    got.sort();
    let mut expected = lines;
    expected.sort();
    if got == expected {
        Ok(())
    } else {
        Err(format!("runnel consume read {got:?}"))
    }
}

/// The value after `label` in `describe --status`'s output.
fn status_field<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
}

/// `runnel metadata-quorum describe` through a node, and Kafka's
/// kafka-metadata-quorum against the same node: the active controller,
/// the three voters, one leader and two followers.
fn describes_three_voters(bootstrap: &str) {
    use common::kafka;
    let leader = quorum_leader(bootstrap).expect("a controller");
    let run = |mode: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
            .args(["metadata-quorum", "--bootstrap-server", bootstrap])
            .args(["describe", mode])
            .output()
            .expect("runnel metadata-quorum");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let status = run("--status");
    let leader_text = leader.to_string();
    assert_eq!(
        status_field(&status, "LeaderId:"),
        Some(leader_text.as_str()),
        "{status}"
    );
    let voters = status_field(&status, "CurrentVoters:").expect("voters");
    for id in NODES {
        assert!(voters.contains(&format!("{{\"id\": {id}, ")), "{status}");
    }
    let replication = run("--replication");
    let statuses: Vec<&str> = replication
        .lines()
        .skip(1)
        .filter_map(|l| l.trim_end().rsplit('\t').next().map(str::trim))
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["Follower", "Follower", "Leader"], "{replication}");

    kafka::require_installed();
    let theirs = kafka::tool(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        &["--bootstrap-server", bootstrap, "describe", "--status"],
    )
    .expect_success("kafka-metadata-quorum describe --status");
    assert_eq!(
        status_field(&theirs.stdout, "LeaderId:"),
        Some(leader_text.as_str()),
        "{theirs:?}"
    );
    assert_eq!(
        status_field(&theirs.stdout, "CurrentVoters:"),
        Some(voters),
        "{theirs:?}"
    );
}

/// SIGSTOP of the active controller past the quorum's timeouts: the others
/// elect a new one and go on. After SIGCONT the old one finds itself
/// deposed: a topic it is asked to create at once is either refused or
/// created by the new controller (then every node has it), never
/// acknowledged in its old epoch alone; it follows the new controller and
/// holds what was committed meanwhile.
#[test]
fn a_paused_controller_is_deposed_and_never_commits_in_its_old_epoch() {
    let cluster = start_cluster();
    let old = quorum_leader(&cluster.bootstrap(1)).expect("a controller");
    let survivor = *NODES.iter().find(|id| **id != old).expect("a survivor");
    let bootstrap = cluster.bootstrap(survivor);
    cluster.nodes[&old].pause();
    wait_for(
        "a new controller while the old one is paused",
        common::DEADLINE,
        || quorum_leader(&bootstrap).is_some_and(|leader| leader != old),
    );
    wait_for(
        "a topic created while the old controller is paused",
        common::DEADLINE,
        || create_topic(&bootstrap, "meanwhile", 3) == 0,
    );
    let new = quorum_leader(&bootstrap).expect("the new controller");
    cluster.nodes[&old].resume();
    let zombie = cluster.bootstrap(old);
    let answered = create_topic(&zombie, "zombie", 1);
    let exists_everywhere = |topic: &str| {
        NODES.iter().all(|id| {
            let response = metadata(&cluster.bootstrap(*id), Some(topic));
            response.topics[0].error_code == 0
        })
    };
    if answered == 0 {
        wait_for(
            "a topic the old controller acknowledged is on every node",
            common::DEADLINE,
            || exists_everywhere("zombie"),
        );
    }
    wait_for(
        &format!("node {old} follows controller {new} and has what it committed"),
        common::DEADLINE,
        || {
            quorum_leader(&zombie) == Some(new)
                && metadata(&zombie, None)
                    .topics
                    .iter()
                    .any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "meanwhile"))
        },
    );
    if answered != 0 {
        // Refused: nothing was written in the old epoch.
        let listed = metadata(&cluster.bootstrap(new), None);
        assert!(
            !listed
                .topics
                .iter()
                .any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "zombie")),
            "a refused topic exists: {listed:?}"
        );
    }
    eprintln!("the resumed controller answered error {answered} to CreateTopics");
}

/// The value of the sample `name` (with its labels, if any) in a
/// Prometheus text exposition.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// SIGTERM of a broker is Kafka's controlled shutdown: it asks the
/// controller to fence it (a heartbeat with want_shut_down) and its
/// partitions lose their leader at once, not after its 30 s session
/// timeout; it exits cleanly, and back, it leads them again.
#[test]
fn a_broker_that_shuts_down_is_fenced_at_once() {
    let session = Duration::from_secs(30);
    let mut cluster = start_cluster_with(&format!(
        "broker.session.timeout.ms={}\n",
        session.as_millis()
    ));
    let topic = "shutdown";
    assert_eq!(create_topic(&cluster.bootstrap(1), topic, 3), 0);
    let controller = quorum_leader(&cluster.bootstrap(1)).expect("a controller");
    let victim = *NODES
        .iter()
        .find(|id| **id != controller)
        .expect("a victim");
    let witness = cluster.bootstrap(controller);
    wait_for("the witness has the topic", common::DEADLINE, || {
        leaders(&witness, topic).values().any(|l| *l == victim)
    });
    let theirs: Vec<i32> = leaders(&witness, topic)
        .into_iter()
        .filter(|(_, leader)| *leader == victim)
        .map(|(p, _)| p)
        .collect();
    let node = cluster.nodes.get_mut(&victim).expect("victim");
    node.terminate();
    let stopped = Instant::now();
    let exit = node.wait_exit();
    assert!(exit.status.success(), "{}", common::plain(&exit.stderr));
    wait_for(
        &format!("broker {victim} fenced after its shutdown"),
        common::DEADLINE,
        || {
            let now = leaders(&witness, topic);
            !broker_ids(&metadata(&witness, None)).contains(&victim)
                && theirs.iter().all(|p| now[p] == -1)
        },
    );
    let fenced_after = stopped.elapsed();
    eprintln!(
        "broker {victim} fenced {fenced_after:?} after SIGTERM (session timeout {session:?})"
    );
    assert!(fenced_after < session, "fenced only by its session timeout");
    cluster.restart(victim);
    wait_for(
        &format!("broker {victim} leads again after its restart"),
        common::DEADLINE,
        || {
            let now = leaders(&witness, topic);
            theirs.iter().all(|p| now[p] == victim)
        },
    );
}

/// A voter whose data dir was wiped does not come back as a new voter
/// with an empty log and a forgotten vote: it refuses to start until it
/// is formatted again (on purpose, by an operator), saying so; the other
/// two go on.
#[test]
fn a_wiped_voter_refuses_to_start() {
    let mut cluster = start_cluster();
    let wiped = 3;
    cluster.nodes.get_mut(&wiped).expect("node 3").kill();
    let data = cluster.configs[&wiped]
        .parent()
        .expect("node dir")
        .join("data");
    std::fs::remove_dir_all(&data).expect("wipe node 3");
    let mut node = Broker::serve_config(&cluster.configs[&wiped]);
    let exit = node.wait_exit();
    assert!(!exit.status.success(), "a wiped voter started");
    let said = common::plain(&exit.stderr);
    assert!(
        said.contains("meta.properties") && said.contains("storage format"),
        "{said}"
    );
    wait_for(
        "the two others still take changes",
        common::DEADLINE,
        || create_topic(&cluster.bootstrap(1), "after-wipe", 1) == 0,
    );
}

/// A broker-only node (`process.roles=broker`, no controller listener):
/// an observer of the quorum that registers as a broker. Every node
/// lists four brokers, a topic created through it spreads over all four,
/// and kcat produces through it and reads back through a voter.
#[test]
fn a_broker_only_node_joins_three_voters() {
    let cluster = start_cluster();
    let root = cluster.root.path();
    let voters = std::fs::read_to_string(&cluster.configs[&1])
        .expect("node 1's config")
        .lines()
        .find_map(|l| {
            l.strip_prefix("controller.quorum.voters=")
                .map(str::to_owned)
        })
        .expect("voters");
    let config = configure_role(root, 4, &voters, "broker");
    let mut broker = Broker::serve_config(&config);
    broker.wait_ready_within(START_DEADLINE);
    let four = vec![1, 2, 3, 4];
    for bootstrap in [broker.bootstrap.clone(), cluster.bootstrap(1)] {
        wait_for("four brokers listed", common::DEADLINE, || {
            broker_ids(&metadata(&bootstrap, None)) == four
        });
    }
    let topic = "observed";
    assert_eq!(create_topic(&broker.bootstrap, topic, 8), 0);
    wait_for("the topic on node 4", common::DEADLINE, || {
        metadata(&broker.bootstrap, Some(topic)).topics[0]
            .partitions
            .len()
            == 8
    });
    let mut per_broker: BTreeMap<i32, usize> = BTreeMap::new();
    for leader in leaders(&broker.bootstrap, topic).values() {
        *per_broker.entry(*leader).or_default() += 1;
    }
    assert_eq!(per_broker, BTreeMap::from([(1, 2), (2, 2), (3, 2), (4, 2)]));
    assert!(quorum_leader(&broker.bootstrap).is_some_and(|l| NODES.contains(&l)));
    let lines: Vec<String> = (0..40).map(|i| format!("key-{i}:value {i}")).collect();
    kcat_produce(&broker.bootstrap, topic, &lines);
    let mut consumed = kcat_consume(&cluster.bootstrap(1), topic, lines.len());
    consumed.sort();
    let mut expected = lines;
    expected.sort();
    assert_eq!(consumed, expected);
}

/// Writes and formats node `id` of `roles` (`controller` or `broker`):
/// a controller listens on its voter port only, a broker for clients only.
fn configure_role(root: &Path, id: i32, voters: &str, roles: &str) -> PathBuf {
    let dir = root.join(format!("node-{id}"));
    std::fs::create_dir_all(&dir).expect("node dir");
    let listeners = if roles == "controller" {
        let port = voters
            .split(',')
            .find_map(|v| v.strip_prefix(&format!("{id}@127.0.0.1:")))
            .expect("own voter entry");
        format!("CONTROLLER://127.0.0.1:{port}")
    } else {
        "PLAINTEXT://127.0.0.1:0".to_string()
    };
    let config = dir.join("server.properties");
    std::fs::write(
        &config,
        format!(
            "process.roles={roles}\n\
             node.id={id}\n\
             controller.quorum.voters={voters}\n\
             listeners={listeners}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             log.dirs={}\n\
             metrics.listen=127.0.0.1:0\n\
             controller.quorum.election.timeout.ms=500\n\
             broker.heartbeat.interval.ms=500\n",
            dir.join("data").display()
        ),
    )
    .expect("write server.properties");
    let formatted = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["storage", "format", "-t", CLUSTER_ID, "-c"])
        .arg(&config)
        .output()
        .expect("runnel storage format");
    assert!(formatted.status.success(), "{formatted:?}");
    config
}

/// Three controller-only nodes and two broker-only nodes, as Kafka's
/// dedicated controllers run: the brokers alone are listed and hold the
/// partitions, clients work through them, and kill -9 of the active
/// controller leaves a cluster that creates topics again.
#[test]
fn dedicated_controllers_serve_two_brokers() {
    let root = tempfile::tempdir().expect("tempdir");
    let voters = NODES
        .iter()
        .map(|id| format!("{id}@127.0.0.1:{}", free_port()))
        .collect::<Vec<_>>()
        .join(",");
    let mut controllers: BTreeMap<i32, Broker> = NODES
        .iter()
        .map(|&id| {
            let config = configure_role(root.path(), id, &voters, "controller");
            (id, Broker::serve_config(&config))
        })
        .collect();
    let mut brokers: BTreeMap<i32, Broker> = [4, 5]
        .into_iter()
        .map(|id| {
            let config = configure_role(root.path(), id, &voters, "broker");
            (id, Broker::serve_config(&config))
        })
        .collect();
    for node in controllers.values_mut().chain(brokers.values_mut()) {
        node.wait_ready_within(START_DEADLINE);
    }
    let first = brokers[&4].bootstrap.clone();
    wait_for(
        "brokers 4 and 5 listed, and no controller",
        common::DEADLINE,
        || broker_ids(&metadata(&first, None)) == [4, 5],
    );
    let topic = "dedicated";
    assert_eq!(create_topic(&first, topic, 4), 0);
    wait_for("the topic on broker 4", common::DEADLINE, || {
        metadata(&first, Some(topic)).topics[0].partitions.len() == 4
    });
    let mut per_broker: BTreeMap<i32, usize> = BTreeMap::new();
    for leader in leaders(&first, topic).values() {
        *per_broker.entry(*leader).or_default() += 1;
    }
    assert_eq!(per_broker, BTreeMap::from([(4, 2), (5, 2)]));
    let lines: Vec<String> = (0..40).map(|i| format!("key-{i}:value {i}")).collect();
    kcat_produce(&first, topic, &lines);
    let mut consumed = kcat_consume(&brokers[&5].bootstrap, topic, lines.len());
    consumed.sort();
    let mut expected = lines;
    expected.sort();
    assert_eq!(consumed, expected);

    let controller = quorum_leader(&first).expect("a controller");
    assert!(NODES.contains(&controller), "controller {controller}");
    controllers.get_mut(&controller).expect("controller").kill();
    wait_for(
        "a topic created after the controller's kill -9",
        common::DEADLINE,
        || {
            let code = create_topic(&first, "after-kill", 2);
            code == 0 || code == kafka_protocol::error::ResponseError::TopicAlreadyExists.code()
        },
    );
    let new = quorum_leader(&first).expect("a new controller");
    assert!(
        new != controller && NODES.contains(&new),
        "controller {new}"
    );
}
