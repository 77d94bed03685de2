//! `runnel serve` as a real process: startup line, SIGTERM, the
//! clean-shutdown marker, the lock that keeps a second broker out, and
//! connections: the per-IP and total caps, and the close that tells an
//! `acks=0` producer its write was refused (on Kafka too).

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use common::Broker;
use common::client::Client;
use common::kafka::{self, KafkaBroker};
use runnel_log::{BatchBuilder, LogConfig, LogManager, ManagerConfig, TopicPartition};

const NOW: i64 = 1_700_000_000_000;

#[test]
fn sigterm_shuts_down_cleanly_and_leaves_the_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut broker = Broker::serve(&data);
    let line = broker.wait_ready();
    assert!(
        line.contains(&format!("data in {} (0 partitions, new)", data.display())),
        "{line}"
    );
    assert!(broker.bootstrap.starts_with("127.0.0.1:"), "{line}");
    assert!(!broker.bootstrap.ends_with(":0"), "{line}");

    broker.terminate();
    let exit = broker.wait_exit();
    assert_eq!(exit.status.code(), Some(0), "stderr:\n{}", exit.stderr);
    assert!(data.join(".kafka_cleanshutdown").exists());
}

#[test]
fn a_second_broker_on_the_same_dir_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = Broker::serve(dir.path());
    first.wait_ready();

    let mut second = Broker::serve(dir.path());
    let exit = second.wait_exit();
    assert!(!exit.status.success(), "second broker: {}", exit.status);
    assert!(
        exit.stderr
            .contains(&format!("log directory {} is in use", dir.path().display())),
        "stderr:\n{}",
        exit.stderr
    );

    first.terminate();
    assert_eq!(first.wait_exit().status.code(), Some(0));
}

#[test]
fn reports_recovery_after_a_crash_and_a_clean_start_after_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || ManagerConfig::new(vec![dir.path().to_path_buf()]);
    let batch = BatchBuilder::new(NOW).record(None, Some(b"v"), NOW).build();
    {
        // Dropped without shutdown(): no marker, as after a crash.
        let manager = LogManager::open(config(), NOW).expect("open");
        for p in 0..3 {
            let log = manager
                .get_or_create(&TopicPartition::new("orders", p), LogConfig::default(), NOW)
                .expect("create");
            runnel_log::manager::lock(&log)
                .append(&batch, NOW)
                .expect("append");
        }
    }

    let mut broker = Broker::serve(dir.path());
    let line = broker.wait_ready();
    assert!(
        line.contains("(3 partitions, recovered after an unclean shutdown)"),
        "{line}"
    );
    broker.terminate();
    assert_eq!(broker.wait_exit().status.code(), Some(0));

    let mut broker = Broker::serve(dir.path());
    let line = broker.wait_ready();
    assert!(line.contains("(3 partitions, clean start)"), "{line}");
    broker.terminate();
    assert_eq!(broker.wait_exit().status.code(), Some(0));

    let manager = LogManager::open(config(), NOW).expect("reopen");
    for p in 0..3 {
        let log = manager
            .get(&TopicPartition::new("orders", p))
            .expect("partition kept");
        assert_eq!(runnel_log::manager::lock(&log).log_end_offset(), 1);
    }
}

#[test]
fn an_unknown_or_invalid_setting_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (setting, expected) in [
        ("no.such.setting=1", "unknown setting \"no.such.setting\""),
        (
            "num.partitions=zero",
            "invalid value \"zero\" for num.partitions",
        ),
    ] {
        let mut broker = Broker::serve_with(dir.path(), &[setting]);
        let exit = broker.wait_exit();
        assert!(!exit.status.success(), "{setting}: {}", exit.status);
        assert!(
            exit.stderr.contains(expected),
            "{setting}: stderr:\n{}",
            exit.stderr
        );
    }
}

#[test]
fn sigterm_does_not_wait_for_a_held_join_group() {
    use kafka_protocol::messages::{
        ApiKey, GroupId, JoinGroupRequest, JoinGroupResponse, join_group_request,
    };
    use kafka_protocol::protocol::StrBytes;

    let dir = tempfile::tempdir().expect("tempdir");
    // The first rebalance of a new group would hold its join for minutes.
    let mut broker = Broker::serve_with(dir.path(), &["group.initial.rebalance.delay.ms=600000"]);
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    let joiner = std::thread::spawn(move || {
        let mut client = common::client::Client::connect(&bootstrap);
        let mut protocol = join_group_request::JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str("range");
        let mut request = JoinGroupRequest::default();
        request.group_id = GroupId(StrBytes::from_static_str("held"));
        request.session_timeout_ms = 10_000;
        request.rebalance_timeout_ms = 300_000;
        request.protocol_type = StrBytes::from_static_str("consumer");
        request.protocols = vec![protocol];
        let response: JoinGroupResponse = client.call(ApiKey::JoinGroup, 3, &request);
        response.error_code
    });
    // Wait until the join is held: the group then shows on ListGroups.
    let mut probe = common::client::Client::connect(&broker.bootstrap);
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let request = kafka_protocol::messages::ListGroupsRequest::default();
        let listed: kafka_protocol::messages::ListGroupsResponse =
            probe.call(ApiKey::ListGroups, 3, &request);
        if listed
            .groups
            .iter()
            .any(|g| g.group_id.0.as_str() == "held")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the join never arrived"
        );
        std::thread::yield_now();
    }
    drop(probe);
    broker.terminate();
    let exit = broker.wait_exit();
    assert_eq!(exit.status.code(), Some(0), "stderr:\n{}", exit.stderr);
    // COORDINATOR_NOT_AVAILABLE: the client looks for the coordinator again.
    assert_eq!(joiner.join().expect("joiner"), 15);
}

/// Connects and checks the broker answers ApiVersions on the connection.
fn answered(bootstrap: &str, correlation_id: i32) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(bootstrap).expect("connect");
    if let Err(err) = common::raw::probe(&mut stream, correlation_id) {
        panic!("connection {correlation_id} was not served: {err}");
    }
    stream
}

/// Whether the broker closes `stream` without a word.
fn refused(stream: &mut std::net::TcpStream) -> bool {
    let _ = common::raw::send(stream, &common::raw::api_versions_v0(99));
    matches!(
        common::raw::read_reply(stream),
        Ok(common::raw::Reply::Closed) | Err(_)
    )
}

fn refusals(metrics: &str, reason: &str) -> String {
    let name = format!("runnel_connections_refused_total{{reason=\"{reason}\"}} ");
    common::scrape_metrics(metrics)
        .lines()
        .find_map(|line| line.strip_prefix(&name).map(str::to_string))
        .unwrap_or_else(|| "none".into())
}

#[test]
fn connections_past_max_connections_per_ip_and_max_connections_are_refused() {
    let (_dir, mut broker) = common::started_with(&["max.connections.per.ip=2"]);
    let first = answered(&broker.bootstrap, 1);
    let _second = answered(&broker.bootstrap, 2);
    let mut third = std::net::TcpStream::connect(&broker.bootstrap).expect("connect");
    assert!(
        refused(&mut third),
        "a third connection from 127.0.0.1 was served"
    );
    assert_eq!(refusals(&broker.metrics, "max_connections_per_ip"), "1");
    // A closed connection gives its place back once the broker sees it go.
    drop(first);
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let mut stream = std::net::TcpStream::connect(&broker.bootstrap).expect("connect");
        if common::raw::probe(&mut stream, 3).is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no place came free within {:?} of closing a connection",
            common::DEADLINE
        );
    }
    broker.terminate();
    let exit = broker.wait_exit();
    let stderr = common::plain(&exit.stderr);
    assert!(
        stderr.contains(
            "connection refused: this address has max.connections.per.ip open ip=127.0.0.1 limit=2"
        ),
        "stderr:\n{stderr}"
    );

    let (_dir, mut broker) = common::started_with(&["max.connections=1"]);
    let _only = answered(&broker.bootstrap, 1);
    let mut second = std::net::TcpStream::connect(&broker.bootstrap).expect("connect");
    assert!(
        refused(&mut second),
        "a second connection past max.connections=1 was served"
    );
    assert_eq!(refusals(&broker.metrics, "max_connections"), "1");
    broker.terminate();
    let exit = broker.wait_exit();
    assert!(
        exit.stderr
            .contains("connection refused: the broker has max.connections open"),
        "stderr:\n{}",
        exit.stderr
    );
}

#[test]
fn a_bad_connection_override_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker =
        Broker::serve_with(dir.path(), &["max.connections.per.ip.overrides=broker-0:3"]);
    let exit = broker.wait_exit();
    assert_ne!(exit.status.code(), Some(0));
    let stderr = common::plain(&exit.stderr);
    assert!(
        stderr.contains("max.connections.per.ip.overrides")
            && stderr.contains("\"broker-0\" is not an IP address"),
        "stderr:\n{stderr}"
    );
}

/// An `acks=0` produce to `partition` of `topic` (one record).
fn produce_acks_zero(client: &mut Client, topic: &str, partition: i32, acks: i16) -> Option<i16> {
    use kafka_protocol::messages::{
        ApiKey, ProduceRequest, ProduceResponse, TopicName, produce_request,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut batch = BatchBuilder::new(now);
    batch.push(None, Some(b"v"), now);
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_string(
                    topic.to_string(),
                )))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(bytes::Bytes::from(batch.build()))),
                ]),
        ]);
    if acks == 0 {
        client.send_only(ApiKey::Produce, 9, &request);
        return None;
    }
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request);
    Some(response.responses[0].partition_responses[0].error_code)
}

/// Kafka's answer to an `acks=0` producer whose write was refused: no
/// response (none is expected), and the connection closed, so that the
/// producer looks its leaders up again instead of writing into the void.
fn refused_acks_zero_closes_the_connection(bootstrap: &str) {
    use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
    let mut client = Client::connect(bootstrap);
    client.create_topic("acks0");
    let deadline = std::time::Instant::now() + common::DEADLINE;
    // Kafka elects the new partition's leader a moment later.
    while produce_acks_zero(&mut client, "acks0", 0, 1) != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "acks0-0 got no leader"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Taken: the connection stays open.
    produce_acks_zero(&mut client, "acks0", 0, 0);
    let _: MetadataResponse = client.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    // Refused (no partition 7): closed without a response.
    produce_acks_zero(&mut client, "acks0", 7, 0);
    assert!(client.closed(), "the connection stayed open");
}

#[test]
fn a_refused_acks_zero_produce_closes_the_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut broker = Broker::serve(dir.path());
    broker.wait_ready();
    refused_acks_zero_closes_the_connection(&broker.bootstrap);
}

#[test]
fn kafka_closes_the_connection_of_a_refused_acks_zero_produce_too() {
    kafka::require_installed();
    let dir = tempfile::tempdir().expect("tempdir");
    let kafka = KafkaBroker::start(dir.path());
    refused_acks_zero_closes_the_connection(&kafka.bootstrap);
}
