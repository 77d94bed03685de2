//! The Grafana dashboard (`charts/runnel/dashboards/runnel-overview.json`):
//! every PromQL expression parses (promtool, from Debian's prometheus
//! package, which scripts/test.sh fetches into $PROMTOOL), and every metric
//! it names is one a running broker really exports once it has topics,
//! records and a consumer group, or one the operator exports once it has
//! reconciled and watched a lagging group.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeSet;
use std::process::Command;

use runnel_client::{Admin, Producer, ProducerConfig, ProducerRecord};

fn dashboard_expressions() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../charts/runnel/dashboards/runnel-overview.json"
    );
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["expr"].as_str().map(str::to_string))
        .collect();
    assert!(!exprs.is_empty(), "the dashboard has no queries");
    exprs
}

/// The metric names an expression reads: identifiers of ours or of
/// kafka_exporter's naming.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            if word.starts_with("runnel_") || word.starts_with("kafka_") {
                names.push(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

#[test]
fn every_dashboard_query_parses() {
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = String::from("groups:\n- name: dashboard\n  rules:\n");
    for (i, expr) in dashboard_expressions().iter().enumerate() {
        rules.push_str(&format!(
            "  - record: dashboard:query{i}\n    expr: {}\n",
            serde_json::to_string(expr).expect("quoted")
        ));
    }
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, rules).expect("write rules");
    let output = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run {promtool} ({err}); scripts/test.sh fetches it and sets PROMTOOL")
        });
    assert!(
        output.status.success(),
        "promtool refused a dashboard query:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What a `runnel forward`'s `/metrics` serves (a real one, for the
/// group `shown-group`).
fn forwarder_metrics(bootstrap: &str) -> String {
    let address = format!("127.0.0.1:{}", common::cluster::free_port());
    let mut forwarder = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args([
            "forward",
            "--bootstrap-server",
            bootstrap,
            "--group",
            "shown-group",
        ])
        .args([
            "--topic",
            "shown",
            "--to",
            "shown.overflow",
            "--metrics-address",
            &address,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runnel forward");
    let deadline = std::time::Instant::now() + common::DEADLINE;
    let text = loop {
        if std::net::TcpStream::connect(&address).is_ok() {
            break common::scrape_metrics(&address);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no /metrics on {address}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = forwarder.kill();
    let _ = forwarder.wait();
    text
}

/// What the operator's `/metrics` serves once it has reconciled and seen a
/// lagging group grow.
fn operator_metrics() -> String {
    let metrics = runnel_operator::metrics::OperatorMetrics::new();
    metrics.record_reconcile("consumergroup", true, std::time::Duration::from_millis(3));
    let lag = runnel_operator::crd::PartitionLag {
        topic: "shown".into(),
        partition: 0,
        lag: 8,
    };
    metrics.set_group_lag("ns", "shown-group", &[lag]);
    metrics.record_partitions_added("ns", "shown-group", 2);
    metrics.set_surge_active("ns", "shown-group", true);
    metrics.record_forwarded("ns", "shown-group", 100);
    metrics.record_surge_ended("ns", "shown-group", 60.0);
    metrics.set_leader(true);
    metrics.encode()
}

#[test]
fn every_metric_the_dashboard_reads_is_exported() {
    let (_dir, broker) = common::started_with(&[]);
    let bootstrap = broker.bootstrap.clone();
    common::runtime().block_on(async {
        let admin = Admin::new(&bootstrap, "dashboard-test")
            .await
            .expect("admin");
        admin
            .create_topic("shown", 2, 1, &[])
            .await
            .expect("create");
        let producer = Producer::new(ProducerConfig::new(&bootstrap))
            .await
            .expect("producer");
        for i in 0..10 {
            let value = format!("v{i}");
            producer
                .send(ProducerRecord::new("shown", value.as_bytes()).partition(i % 2))
                .await
                .expect("send");
        }
        producer.close().await;
        admin
            .commit_group_offsets("shown-group", &[("shown".to_string(), 0, 2)])
            .await
            .expect("commit");
    });
    let scraped = common::scrape_metrics(&broker.metrics);
    // One broker is a quorum of one: its controller and its one voter.
    for line in [
        "runnel_quorum_active_controller 1",
        "runnel_controller_active_brokers 1",
        "runnel_controller_fenced_brokers 0",
        "runnel_quorum_voter_lag{voter=\"1\"} 0",
    ] {
        assert!(
            scraped.lines().any(|l| l == line),
            "no `{line}` in:\n{scraped}"
        );
    }
    let operator = operator_metrics();
    let forwarder = forwarder_metrics(&bootstrap);
    let exported: BTreeSet<&str> = scraped
        .lines()
        .chain(operator.lines())
        .chain(forwarder.lines())
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for expr in dashboard_expressions() {
        for name in metric_names(&expr) {
            assert!(
                exported.contains(name.as_str()),
                "the dashboard reads {name} (in `{expr}`), which neither the broker nor the operator exports"
            );
        }
    }
}
