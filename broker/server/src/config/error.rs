//! [`ConfigError`]: why a config does not load, each a sentence that
//! names the setting, its value and where it came from ([`Origin`]).

use std::fmt;
use std::path::PathBuf;

use super::Listener;

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    Env { var: String },
    Override,
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{} line {line}", path.display()),
            Origin::Env { var } => write!(f, "environment variable {var}"),
            Origin::Override => f.write_str("--override"),
            Origin::Default => f.write_str("the defaults"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} line {line}: expected key=value or key: value, found {text:?}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("unknown setting {key:?} in {origin}")]
    UnknownKey { key: String, origin: Origin },
    #[error("invalid value {value:?} for {key} in {origin}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        origin: Origin,
        reason: String,
    },
    #[error(
        "listener {listener} (from {origin}) binds every interface, which is no address \
         for clients to connect to; set advertised.listeners to one they can reach, \
         e.g. PLAINTEXT://broker-0.example.com:9092"
    )]
    AdvertisedListenersRequired { listener: Listener, origin: Origin },
    #[error(
        "unknown role {role:?} in process.roles {value:?} (from {origin}); the roles are \
         broker and controller, e.g. process.roles=broker,controller"
    )]
    UnknownProcessRole {
        role: String,
        value: String,
        origin: Origin,
    },
    #[error(
        "process.roles is set (in {origin}) but node.id is not; each node of a quorum needs \
         an id of its own"
    )]
    NodeIdRequired { origin: Origin },
    #[error(
        "process.roles is set (in {origin}) but controller.listener.names is empty; name the \
         listener the controllers serve on, e.g. controller.listener.names=CONTROLLER"
    )]
    ControllerListenerNamesRequired { origin: Origin },
    #[error(
        "process.roles is set (in {origin}) but neither controller.quorum.voters nor \
         controller.quorum.bootstrap.servers names the controllers, e.g. \
         controller.quorum.voters=1@controller-1:9093"
    )]
    QuorumControllersRequired { origin: Origin },
    #[error(
        "invalid entry {entry:?} in controller.quorum.voters {value:?} (from {origin}): \
         {reason}; each entry is id@host:port, e.g. 1@controller-1:9093"
    )]
    InvalidVoter {
        entry: String,
        value: String,
        origin: Origin,
        reason: String,
    },
    #[error("controller.quorum.voters {value:?} (from {origin}) gives the node id {id} twice")]
    DuplicateVoter {
        id: i32,
        value: String,
        origin: Origin,
    },
    #[error(
        "process.roles includes controller, but node.id {node_id} is not among the voters \
         {voters} of controller.quorum.voters (from {origin}); a controller must be a voter"
    )]
    ControllerNotAVoter {
        node_id: i32,
        voters: String,
        origin: Origin,
    },
    #[error(
        "process.roles is just broker, but node.id {node_id} is among the voters {voters} of \
         controller.quorum.voters (from {origin}); a broker-only node is not a voter"
    )]
    BrokerIsAVoter {
        node_id: i32,
        voters: String,
        origin: Origin,
    },
    #[error(
        "process.roles includes controller, but listeners {listeners:?} has no listener named \
         {name}, which controller.listener.names (from {origin}) names; add one, e.g. \
         {name}://:9093"
    )]
    ControllerListenerMissing {
        name: String,
        origin: Origin,
        listeners: String,
    },
    #[error(
        "process.roles is just broker, but listener {listener} (from {origin}) is a controller \
         listener (controller.listener.names); a broker-only node does not serve the quorum"
    )]
    BrokerServesControllerListener { listener: Listener, origin: Origin },
    #[error(
        "process.roles is just controller, but listener {listener} (from {origin}) is not a \
         controller listener (controller.listener.names); a controller-only node serves no clients"
    )]
    ControllerServesClientListener { listener: Listener, origin: Origin },
    #[error(
        "process.roles includes broker, but every listener (from {origin}) is a controller \
         listener (controller.listener.names); add one for clients, e.g. PLAINTEXT://:9092"
    )]
    ClientListenerRequired { origin: Origin },
}
