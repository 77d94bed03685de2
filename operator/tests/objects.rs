//! The objects a sample Cluster becomes, against golden YAML files in
//! `tests/golden/`. `UPDATE_GOLDEN=1 cargo test -p runnel-operator` writes
//! them anew after a deliberate change (review the diff).

use runnel_operator::crd::Cluster;
use runnel_operator::objects;

fn golden_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn sample() -> Cluster {
    let yaml = std::fs::read_to_string(golden_dir().join("cluster.yaml")).expect("sample");
    serde_saphyr::from_str(&yaml).expect("a Cluster")
}

#[test]
fn a_cluster_becomes_the_golden_objects() {
    let cluster = sample();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (kind, yaml) in objects::all_yaml(&cluster).expect("render") {
        let path = golden_dir().join(format!("{kind}.yaml"));
        if update {
            std::fs::write(&path, &yaml).expect("write golden");
            continue;
        }
        let golden = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_GOLDEN=1", path.display()));
        assert!(
            golden == yaml,
            "{kind} differs from {}:\n{yaml}",
            path.display()
        );
    }
}

#[test]
fn the_statefulset_wires_identity_storage_and_probes() {
    let cluster = sample();
    let set = objects::stateful_set(&cluster);
    let spec = set.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(spec.service_name.as_deref(), Some("demo-brokers"));
    let owner = &set.metadata.owner_references.expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Cluster", "demo")
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    let pod = spec.template.spec.expect("pod");
    let container = &pod.containers[0];
    let env: Vec<(&str, Option<&str>)> = container
        .env
        .as_ref()
        .expect("env")
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    assert!(env.contains(&(
        "RUNNEL_ADVERTISED_LISTENERS",
        Some("PLAINTEXT://$(POD_NAME).demo-brokers.$(POD_NAMESPACE).svc:9092")
    )));
    let node_id = container
        .env
        .as_ref()
        .and_then(|e| e.iter().find(|e| e.name == "RUNNEL_NODE_ID"))
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.clone());
    assert_eq!(
        node_id.as_deref(),
        Some("metadata.labels['apps.kubernetes.io/pod-index']")
    );
    let claim = &spec.volume_claim_templates.expect("claims")[0];
    let claim_spec = claim.spec.as_ref().expect("claim spec");
    assert_eq!(claim_spec.storage_class_name.as_deref(), Some("fast-ssd"));
    assert_eq!(
        container
            .readiness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.as_deref()),
        Some("/readyz")
    );
    assert_eq!(
        objects::bootstrap_address(&cluster),
        "demo-bootstrap.streaming.svc:9092"
    );
}
