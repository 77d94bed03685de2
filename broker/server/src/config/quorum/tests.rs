//! The quorum settings: Kafka 4's own files load, and each rule refuses
//! with its sentence.

use super::super::{ConfigSources, load};
use super::*;

/// Loads `text` as server.properties.
fn try_load(text: &str) -> Result<BrokerConfig, ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("server.properties");
    std::fs::write(&path, text).expect("write");
    let sources = ConfigSources {
        file: Some(path),
        ..ConfigSources::default()
    };
    load(&sources)
}

fn loads(text: &str) -> BrokerConfig {
    try_load(text).unwrap_or_else(|err| panic!("{err}"))
}

fn refused(text: &str) -> ConfigError {
    try_load(text).expect_err("refused")
}

/// Its message, the file's path left out.
fn message(err: &ConfigError) -> String {
    let text = err.to_string();
    match text.find("server.properties line ") {
        Some(at) => {
            let start = text[..at].rfind([' ', '(']).map_or(0, |i| i + 1);
            format!("{}{}", &text[..start], &text[at..])
        }
        None => text,
    }
}

/// Apache Kafka 4's config/server.properties, as shipped.
const KAFKA_COMBINED: &str = "process.roles=broker,controller\nnode.id=1\n\
    controller.quorum.bootstrap.servers=localhost:9093\n\
    listeners=PLAINTEXT://:9092,CONTROLLER://:9093\ninter.broker.listener.name=PLAINTEXT\n\
    advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n\
    controller.listener.names=CONTROLLER\n\
    listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,\
    SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
    num.network.threads=3\nnum.io.threads=8\nsocket.send.buffer.bytes=102400\n\
    socket.receive.buffer.bytes=102400\nsocket.request.max.bytes=104857600\n\
    log.dirs=/tmp/kraft-combined-logs\nnum.partitions=1\n\
    num.recovery.threads.per.data.dir=1\noffsets.topic.replication.factor=1\n\
    share.coordinator.state.topic.replication.factor=1\n\
    share.coordinator.state.topic.min.isr=1\ntransaction.state.log.replication.factor=1\n\
    transaction.state.log.min.isr=1\nlog.retention.hours=168\n\
    log.segment.bytes=1073741824\nlog.retention.check.interval.ms=300000\n";

/// Apache Kafka 4's config/broker.properties, as shipped.
const KAFKA_BROKER: &str = "process.roles=broker\nnode.id=2\n\
    controller.quorum.bootstrap.servers=localhost:9093\n\
    listeners=PLAINTEXT://localhost:9092\ninter.broker.listener.name=PLAINTEXT\n\
    advertised.listeners=PLAINTEXT://localhost:9092\ncontroller.listener.names=CONTROLLER\n\
    listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,\
    SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\nlog.dirs=/tmp/kraft-broker-logs\n";

/// A controller of a static three-voter quorum, with its own metadata
/// dir and faster elections.
const CONTROLLER: &str = "process.roles=controller\nnode.id=3\n\
    controller.quorum.voters=1@c-1.svc:9093,2@c-2.svc:9093,3@[fd00::3]:9093\n\
    listeners=CONTROLLER://:9093\nadvertised.listeners=CONTROLLER://c-3.svc:9093\n\
    controller.listener.names=CONTROLLER\nlog.dirs=/data/a,/data/b\n\
    metadata.log.dir=/data/meta\ncontroller.quorum.election.timeout.ms=500\n\
    controller.quorum.election.backoff.max.ms=400\ncontroller.quorum.fetch.timeout.ms=1500\n\
    controller.quorum.request.timeout.ms=1000\nbroker.session.timeout.ms=6000\n\
    broker.heartbeat.interval.ms=1000\n";

/// A combined node of a static quorum with the least Kafka needs: no
/// protocol map (controller names are PLAINTEXT then), no
/// advertised.listeners.
fn combined(extra: &str) -> String {
    format!(
        "process.roles=broker,controller\nnode.id=1\n\
         controller.quorum.voters=1@b-1:9093,2@b-2:9093,3@b-3:9093\n\
         listeners=PLAINTEXT://b-1:9092,CONTROLLER://:9093\n\
         controller.listener.names=CONTROLLER\n{extra}"
    )
}

fn names(listeners: impl IntoIterator<Item = impl std::fmt::Display>) -> Vec<String> {
    listeners.into_iter().map(|l| l.to_string()).collect()
}

#[test]
fn kafkas_combined_server_properties_loads() {
    let c = loads(KAFKA_COMBINED);
    let q = c.quorum.as_ref().expect("a quorum");
    assert_eq!(
        q.roles,
        ProcessRoles {
            broker: true,
            controller: true
        }
    );
    assert!(q.voters.is_empty());
    assert_eq!(names(&q.bootstrap_servers), ["localhost:9093"]);
    assert_eq!(q.controller_listener_names, ["CONTROLLER"]);
    assert_eq!(q.inter_broker_listener_name.as_deref(), Some("PLAINTEXT"));
    let controller = c.controller_listener().expect("controller listener");
    assert_eq!(controller.to_string(), "CONTROLLER://0.0.0.0:9093");
    let advertised = c.advertised_controller_listener().expect("advertised");
    assert_eq!(advertised.to_string(), "CONTROLLER://localhost:9093");
    assert_eq!(names(c.client_listeners()), ["PLAINTEXT://0.0.0.0:9092"]);
    assert_eq!(
        c.advertised(),
        ("localhost", 9092),
        "clients never get the controller"
    );
    assert_eq!(c.metadata_log_dir(), Path::new("/tmp/kraft-combined-logs"));
    // The controller first in advertised.listeners changes nothing for clients.
    let swapped = KAFKA_COMBINED.replace(
        "advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093",
        "advertised.listeners=CONTROLLER://localhost:9093,PLAINTEXT://localhost:9092",
    );
    assert_eq!(loads(&swapped).advertised(), ("localhost", 9092));
}

#[test]
fn a_static_quorum_needs_no_protocol_map_and_no_advertised_listeners() {
    let c = loads(&combined(""));
    let q = c.quorum.as_ref().expect("a quorum");
    let voters: Vec<(i32, &str, u16)> = q
        .voters
        .iter()
        .map(|v| (v.id, v.host.as_str(), v.port))
        .collect();
    assert_eq!(
        voters,
        [(1, "b-1", 9093), (2, "b-2", 9093), (3, "b-3", 9093)]
    );
    // The wildcard controller listener has no address to advertise.
    assert_eq!(names(&c.advertised_listeners), ["PLAINTEXT://b-1:9092"]);
    assert_eq!(c.advertised(), ("b-1", 9092));
    assert_eq!(
        c.advertised_controller_listener()
            .map(ToString::to_string)
            .as_deref(),
        Some("CONTROLLER://0.0.0.0:9093")
    );
}

#[test]
fn kafkas_broker_properties_loads() {
    let c = loads(KAFKA_BROKER);
    let q = c.quorum.as_ref().expect("a quorum");
    assert!(q.roles.broker && !q.roles.controller);
    assert!(c.controller_listener().is_none());
    assert_eq!(names(c.client_listeners()), ["PLAINTEXT://localhost:9092"]);
    assert_eq!(c.node_id, 2);
    // The tools test's broker: voters of another node, no map.
    let c = loads(
        "process.roles=broker\nnode.id=2\ncontroller.quorum.voters=1@127.0.0.1:19093\n\
         controller.listener.names=CONTROLLER\nlisteners=PLAINTEXT://127.0.0.1:0\n",
    );
    assert_eq!(c.quorum.expect("a quorum").voters.len(), 1);
}

#[test]
fn a_controller_only_node_loads_with_its_settings() {
    let c = loads(CONTROLLER);
    let q = c.quorum.as_ref().expect("a quorum");
    assert!(q.roles.controller && !q.roles.broker);
    assert_eq!(q.voters[2].host, "fd00::3");
    assert_eq!(c.client_listeners().count(), 0);
    assert_eq!(c.metadata_log_dir(), Path::new("/data/meta"));
    let timeouts = (
        q.election_timeout_ms,
        q.election_backoff_max_ms,
        q.fetch_timeout_ms,
        q.request_timeout_ms,
        q.broker_session_timeout_ms,
        q.broker_heartbeat_interval_ms,
    );
    assert_eq!(timeouts, (500, 400, 1500, 1000, 6000, 1000));
}

#[test]
fn kafkas_defaults() {
    let q = loads(&combined("")).quorum.expect("a quorum");
    let defaults = QuorumConfig {
        voters: q.voters.clone(),
        controller_listener_names: q.controller_listener_names.clone(),
        ..QuorumConfig::new(q.roles)
    };
    assert_eq!(q, defaults);
    let timeouts = (
        q.election_timeout_ms,
        q.election_backoff_max_ms,
        q.fetch_timeout_ms,
        q.request_timeout_ms,
        q.broker_session_timeout_ms,
        q.broker_heartbeat_interval_ms,
    );
    assert_eq!(timeouts, (1000, 1000, 2000, 2000, 9000, 2000));
    assert!(q.bootstrap_servers.is_empty() && q.metadata_log_dir.is_none());
}

#[test]
fn without_process_roles_the_quorum_keys_are_ignored_as_before() {
    let text = "node.id=2\ncontroller.quorum.voters=1@127.0.0.1:19093\n\
                controller.listener.names=CONTROLLER\nlisteners=PLAINTEXT://127.0.0.1:0\n\
                inter.broker.listener.name=PLAINTEXT\nmetadata.log.dir=/m\n\
                controller.quorum.election.timeout.ms=x\n\
                listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n";
    let c = loads(text);
    assert_eq!(c.quorum, None);
    assert_eq!(c.metadata_log_dir(), Path::new("./runnel-data"));
    assert_eq!(c.client_listeners().count(), 1);
}

#[test]
fn roles_must_be_broker_or_controller() {
    let err = refused(&combined("").replace("broker,controller", "broker,leader"));
    assert!(
        matches!(&err, ConfigError::UnknownProcessRole { role, .. } if role == "leader"),
        "{err:?}"
    );
    assert_eq!(
        message(&err),
        "unknown role \"leader\" in process.roles \"broker,leader\" (from server.properties \
         line 1); the roles are broker and controller, e.g. process.roles=broker,controller"
    );
    let err = refused(&combined("").replace("broker,controller", "broker,broker"));
    assert!(
        err.to_string().ends_with("gives the role broker twice"),
        "{err}"
    );
    let err = refused(&combined("").replace("broker,controller", ""));
    assert!(err.to_string().contains("is empty; give broker"), "{err}");
}

#[test]
fn roles_need_a_node_id_listener_names_and_controllers() {
    let err = refused(&combined("").replace("node.id=1\n", ""));
    assert!(matches!(err, ConfigError::NodeIdRequired { .. }), "{err:?}");
    let err = refused(&combined("").replace("controller.listener.names=CONTROLLER\n", ""));
    assert!(
        matches!(err, ConfigError::ControllerListenerNamesRequired { .. }),
        "{err:?}"
    );
    assert_eq!(
        message(&err),
        "process.roles is set (in server.properties line 1) but controller.listener.names \
         is empty; name the listener the controllers serve on, e.g. \
         controller.listener.names=CONTROLLER"
    );
    let err = refused(&combined("controller.quorum.voters=\n"));
    assert!(
        matches!(err, ConfigError::QuorumControllersRequired { .. }),
        "{err:?}"
    );
    assert_eq!(
        message(&err),
        "process.roles is set (in server.properties line 1) but neither \
         controller.quorum.voters nor controller.quorum.bootstrap.servers names the \
         controllers, e.g. controller.quorum.voters=1@controller-1:9093"
    );
}

#[test]
fn malformed_voters_are_named() {
    let voters = |value: &str| refused(&combined(&format!("controller.quorum.voters={value}\n")));
    for (value, reason) in [
        ("x@b-1:9093", "the node id \"x\" is not an integer from 0"),
        ("1@b-1", "expected host:port, e.g. 127.0.0.1:9092"),
        (
            "1b-1:9093",
            "it has no @ between the node id and the address",
        ),
        ("1@:9093", "0.0.0.0 is no address to reach a voter at"),
        ("1@b-1:0", "port 0 is no port to reach a voter at"),
        ("1@b-1:9093,", "the entry is empty"),
    ] {
        let err = voters(value);
        assert!(
            matches!(&err, ConfigError::InvalidVoter { reason: r, .. } if r == reason),
            "{value}: {err:?}"
        );
    }
    assert_eq!(
        message(&voters("1@b-1:9093,x@b-2:9093")),
        "invalid entry \"x@b-2:9093\" in controller.quorum.voters \"1@b-1:9093,x@b-2:9093\" \
         (from server.properties line 6): the node id \"x\" is not an integer from 0; each \
         entry is id@host:port, e.g. 1@controller-1:9093"
    );
    let err = voters("1@b-1:9093,1@b-2:9093");
    assert!(
        matches!(err, ConfigError::DuplicateVoter { id: 1, .. }),
        "{err:?}"
    );
    assert_eq!(
        message(&err),
        "controller.quorum.voters \"1@b-1:9093,1@b-2:9093\" (from server.properties line 6) \
         gives the node id 1 twice"
    );
    let err = refused(&combined("controller.quorum.bootstrap.servers=b-1\n"));
    assert!(
        err.to_string().contains("\"b-1\": expected host:port"),
        "{err}"
    );
}

#[test]
fn a_controller_is_a_voter_and_serves_its_listener() {
    let err = refused(&combined("node.id=4\n"));
    assert!(
        matches!(err, ConfigError::ControllerNotAVoter { node_id: 4, .. }),
        "{err:?}"
    );
    assert_eq!(
        message(&err),
        "process.roles includes controller, but node.id 4 is not among the voters 1,2,3 of \
         controller.quorum.voters (from server.properties line 3); a controller must be a voter"
    );
    // With bootstrap servers only, the voters are not known here.
    let dynamic = combined("").replace(
        "controller.quorum.voters=",
        "controller.quorum.bootstrap.servers=b-1:9093\n#",
    );
    assert!(loads(&format!("{dynamic}node.id=4\n")).quorum.is_some());
    let err = refused(&combined("listeners=PLAINTEXT://b-1:9092\n"));
    assert!(
        matches!(&err, ConfigError::ControllerListenerMissing { name, .. } if name == "CONTROLLER"),
        "{err:?}"
    );
    assert_eq!(
        message(&err),
        "process.roles includes controller, but listeners \"PLAINTEXT://b-1:9092\" has no \
         listener named CONTROLLER, which controller.listener.names (from server.properties \
         line 5) names; add one, e.g. CONTROLLER://:9093"
    );
    let err = refused(&combined("controller.listener.names=CONTROLLER,RAFT\n"));
    assert!(
        matches!(&err, ConfigError::ControllerListenerMissing { name, .. } if name == "RAFT"),
        "{err:?}"
    );
}

#[test]
fn a_broker_only_node_is_no_voter_and_serves_no_controller_listener() {
    let broker = |extra: &str| {
        format!(
            "{}{extra}",
            combined("").replace("broker,controller", "broker")
        )
    };
    let err = refused(&broker("listeners=PLAINTEXT://b-4:9092\n"));
    assert!(
        matches!(err, ConfigError::BrokerIsAVoter { node_id: 1, .. }),
        "{err:?}"
    );
    let err = refused(&broker("node.id=4\n"));
    assert!(
        matches!(&err, ConfigError::BrokerServesControllerListener { listener, .. } if listener.name == "CONTROLLER"),
        "{err:?}"
    );
    assert_eq!(
        message(&err),
        "process.roles is just broker, but listener CONTROLLER://0.0.0.0:9093 (from \
         server.properties line 4) is a controller listener (controller.listener.names); a \
         broker-only node does not serve the quorum"
    );
    // It dials the controllers with their listener's protocol.
    let err = refused(&format!(
        "{KAFKA_BROKER}listener.security.protocol.map=CONTROLLER:SSL,PLAINTEXT:PLAINTEXT\n"
    ));
    assert!(
        err.to_string()
            .contains("gives CONTROLLER the security protocol SSL"),
        "{err}"
    );
}

#[test]
fn controller_only_and_broker_nodes_keep_to_their_listeners() {
    let err = refused(&format!(
        "{CONTROLLER}listeners=CONTROLLER://:9093,PLAINTEXT://:9092\n"
    ));
    assert!(
        matches!(&err, ConfigError::ControllerServesClientListener { listener, .. } if listener.name == "PLAINTEXT"),
        "{err:?}"
    );
    let err = refused(&combined("listeners=CONTROLLER://b-1:9093\n"));
    assert!(
        matches!(err, ConfigError::ClientListenerRequired { .. }),
        "{err:?}"
    );
    let err = refused(&combined("inter.broker.listener.name=REPLICATION\n"));
    assert!(
        err.to_string().ends_with(
            "must name a broker listener of advertised.listeners (PLAINTEXT://b-1:9092)"
        ),
        "{err}"
    );
    let err = refused(&format!(
        "{CONTROLLER}inter.broker.listener.name=CONTROLLER\n"
    ));
    assert!(
        err.to_string().contains("names a controller listener"),
        "{err}"
    );
}

#[test]
fn listeners_other_than_plaintext_are_refused_naming_the_protocol() {
    let text = combined(
        "listeners=CLIENT://b-1:9092,CONTROLLER://:9093\n\
         listener.security.protocol.map=CLIENT:SASL_SSL,CONTROLLER:PLAINTEXT\n",
    );
    assert_eq!(
        message(&refused(&text)),
        "invalid value \"CLIENT://b-1:9092,CONTROLLER://:9093\" for listeners in \
         server.properties line 6: \"CLIENT://b-1:9092\": listener.security.protocol.map \
         gives CLIENT the security protocol SASL_SSL; only PLAINTEXT listeners are supported \
         for now"
    );
    let named = text.replace("CLIENT:SASL_SSL", "CLIENT:PLAINTEXT");
    let c = loads(&named);
    assert_eq!(
        c.client_listeners().next().map(|l| l.name.as_str()),
        Some("CLIENT")
    );
    // An SSL listener takes the implicit PLAINTEXT of the controller away.
    let err = refused(&combined(
        "listeners=PLAINTEXT://b-1:9092,SSL://b-1:9094,CONTROLLER://:9093\n",
    ));
    assert!(
        err.to_string().contains("only PLAINTEXT listeners"),
        "{err}"
    );
    let err = refused(&combined("controller.quorum.fetch.timeout.ms=0\n"));
    assert!(err.to_string().ends_with("must be at least 1"), "{err}");
}
