//! The CRDs in `crds/` are what the types generate, and the schemas
//! carry the validation the types declare.

use kube::CustomResourceExt;
use runnel_operator::crd::{Cluster, ConsumerGroup, Topic, crds_yaml};

#[test]
fn crds_directory_is_what_runnel_operator_crd_prints() {
    let generated = crds_yaml().expect("render");
    // crds/ and the Helm chart's copy (Helm installs crds/ of a chart
    // before its templates).
    for relative in ["crds/runnel.dev.yaml", "charts/runnel/crds/runnel.dev.yaml"] {
        let path = format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"));
        let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            stored == generated,
            "{relative} is stale: run `cargo run -p runnel-operator -- crd > {relative}`"
        );
    }
}

#[test]
fn schemas_carry_names_columns_and_validation() {
    let cluster = serde_json::to_value(Cluster::crd()).expect("json");
    assert_eq!(cluster["spec"]["names"]["shortNames"][0], "rnc");
    assert_eq!(cluster["spec"]["scope"], "Namespaced");
    let version = &cluster["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["properties"]["brokers"]["minimum"], 1.0);
    assert!(
        spec["properties"]["storage"]["properties"]["size"]["pattern"]
            .as_str()
            .is_some_and(|p| p.contains("Gi"))
    );
    let required: Vec<&str> = spec["required"]
        .as_array()
        .expect("required")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(required, ["brokers", "image", "storage"]);

    let topic = serde_json::to_value(Topic::crd()).expect("json");
    let columns: Vec<&str> = topic["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, ["Cluster", "Partitions", "Ready", "Age"]);

    let group = serde_json::to_value(ConsumerGroup::crd()).expect("json");
    let reset = &group["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["offsetReset"]["properties"]["to"];
    assert_eq!(
        reset["enum"],
        serde_json::json!(["earliest", "latest", "datetime"])
    );
}

#[test]
fn a_cluster_reads_from_yaml_with_defaults() {
    let yaml = r#"
apiVersion: runnel.dev/v1alpha1
kind: Cluster
metadata:
  name: demo
  namespace: streaming
spec:
  brokers: 3
  image: ghcr.io/runnel-dev/runnel:0.1.0
  storage:
    size: 100Gi
"#;
    let cluster: Cluster = serde_saphyr::from_str(yaml).expect("a Cluster");
    assert_eq!(cluster.spec.brokers, 3);
    assert!(cluster.spec.metrics.enabled, "metrics default to on");
    assert!(cluster.spec.config.is_empty());
}
