//! A broker started the way the operator's StatefulSet starts one: its
//! container's arguments and environment (RUNNEL_* settings, the node id
//! from the pod index, the advertised listener from the pod's stable name)
//! and the ConfigMap's server.properties, with only the Kubernetes parts
//! (field references, `$(VAR)` expansion, ports) filled in here. The broker
//! starts, takes every setting, and advertises the pod's name.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use runnel_operator::crd::Cluster;
use runnel_operator::objects;

#[test]
fn the_operators_pod_spec_starts_a_broker() {
    starts_a_broker("operator/tests/golden/cluster.yaml");
}

/// The example Cluster users apply first (and e2e/kind applies): its
/// broker settings are ones the broker takes.
#[test]
fn the_example_cluster_starts_a_broker() {
    starts_a_broker("examples/cluster.yaml");
}

/// Starts a broker as the StatefulSet of the Cluster in `sample` (a path
/// from the repository root) would, with the Cluster in namespace
/// `streaming`.
fn starts_a_broker(sample: &str) {
    let path = format!("{}/../../{sample}", env!("CARGO_MANIFEST_DIR"));
    let mut cluster: Cluster =
        serde_saphyr::from_str(&std::fs::read_to_string(&path).expect("sample")).expect("Cluster");
    cluster.metadata.namespace = Some("streaming".into());
    let set = objects::stateful_set(&cluster);
    let pod = set.spec.template.spec.expect("pod spec");
    let container = &pod.containers[0];
    let config_map = objects::config_map(&cluster);
    let properties = &config_map.data.expect("data")["server.properties"];

    let dir = tempfile::tempdir().expect("tempdir");
    let config_dir = dir.path().join("etc");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    std::fs::write(config_dir.join("server.properties"), properties).expect("write");
    let data_dir = dir.path().join("data");
    let pod_name = "demo-2";
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    let (kafka_port, metrics_port) = (free_port(), free_port());

    let mut command = Command::new(env!("CARGO_BIN_EXE_runnel"));
    for arg in container.args.as_ref().expect("args") {
        command.arg(arg.replace("/etc/runnel", config_dir.to_str().expect("utf-8")));
    }
    for (key, _) in std::env::vars() {
        if key.starts_with("RUNNEL_") {
            command.env_remove(key);
        }
    }
    for var in container.env.as_ref().expect("env") {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => value
                .replace("$(POD_NAME)", pod_name)
                .replace("$(POD_NAMESPACE)", "streaming")
                // This machine's ports instead of the pod's own.
                .replace("0.0.0.0:9092", &format!("127.0.0.1:{kafka_port}"))
                .replace("0.0.0.0:9308", &format!("127.0.0.1:{metrics_port}"))
                .replace("/var/lib/runnel", data_dir.to_str().expect("utf-8")),
            (None, Some(from)) => {
                let path = &from.field_ref.as_ref().expect("field ref").field_path;
                match path.as_str() {
                    "metadata.name" => pod_name.to_string(),
                    "metadata.namespace" => "streaming".to_string(),
                    "metadata.labels['apps.kubernetes.io/pod-index']" => "2".to_string(),
                    other => panic!("the pod spec reads {other}, which this test cannot fill in"),
                }
            }
            (None, None) => String::new(),
        };
        command.env(&var.name, value);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn runnel");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = loop {
        match rx.recv_timeout(common::DEADLINE) {
            Ok(line) if line.starts_with("runnel: listening on ") => break line,
            Ok(_) => continue,
            Err(err) => {
                let _ = child.kill();
                panic!("no ready line from a broker started as the pod spec says: {err}");
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ready.contains(&format!(
            "advertised {pod_name}.demo-brokers.streaming.svc:9092"
        )),
        "{sample}: {ready}"
    );
}
