//! KRaft's settings: `process.roles` and the quorum the node takes part
//! in, parsed into [`QuorumConfig`] and checked as Kafka 4 checks them.
//! Followed from apache/kafka: `KafkaConfig.validateValues` and
//! `parseProcessRoles` (core/.../server/KafkaConfig.scala),
//! `QuorumConfig.parseVoterConnections` and `parseBootstrapServers`
//! (raft/.../QuorumConfig.java), the defaults of `QuorumConfig` and
//! `KRaftConfigs`. The rules:
//!
//! - `process.roles` is `broker`, `controller` or both, each once;
//!   `node.id` must then be given.
//! - `controller.listener.names` is not empty, and
//!   `controller.quorum.voters` (`id@host:port,...`) or
//!   `controller.quorum.bootstrap.servers` (`host:port,...`) names the
//!   controllers.
//! - A controller is one of the voters (when voters are given) and serves
//!   every listener named in `controller.listener.names`; a controller-only
//!   node serves nothing else.
//! - A broker-only node is not a voter and serves no controller listener;
//!   a node with the broker role keeps at least one listener for clients.
//!
//! Where we are stricter than Kafka: a voter id given twice is refused
//! (Kafka keeps the last), and so is a voter at port 0. Where Kafka 4 is
//! looser than Kafka 3: `advertised.listeners` may name the controller
//! listener (Kafka 4's own server.properties does: it is the address the
//! controller advertises); clients are never handed it.
//!
//! Without `process.roles` there is no quorum to set up: `runnel serve` is
//! a quorum of one, and the keys here are logged and ignored as before.

use std::path::{Path, PathBuf};

use super::{
    BrokerConfig, ConfigError, HostPort, Listener, Origin, Setting, Settings, int, invalid,
};

/// The keys that mean something only with `process.roles`.
pub(super) const KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "metadata.log.dir",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.election.backoff.max.ms",
    "controller.quorum.fetch.timeout.ms",
    "controller.quorum.request.timeout.ms",
    "broker.session.timeout.ms",
    "broker.heartbeat.interval.ms",
    "inter.broker.listener.name",
];

/// `process.roles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    pub broker: bool,
    pub controller: bool,
}

/// One entry of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// The KRaft settings of a node with `process.roles`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    pub roles: ProcessRoles,
    /// `controller.quorum.voters`: the static quorum, or empty.
    pub voters: Vec<QuorumVoter>,
    /// `controller.quorum.bootstrap.servers`: where to find the quorum
    /// when the voters are not listed.
    pub bootstrap_servers: Vec<HostPort>,
    /// `controller.listener.names`, upper case, never empty.
    pub controller_listener_names: Vec<String>,
    /// `metadata.log.dir`; see [`BrokerConfig::metadata_log_dir`].
    pub metadata_log_dir: Option<PathBuf>,
    /// `controller.quorum.election.timeout.ms` (1000).
    pub election_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms` (1000).
    pub election_backoff_max_ms: u64,
    /// `controller.quorum.fetch.timeout.ms` (2000).
    pub fetch_timeout_ms: u64,
    /// `controller.quorum.request.timeout.ms` (2000).
    pub request_timeout_ms: u64,
    /// `broker.session.timeout.ms` (9000): a broker that has not
    /// heartbeated for this long is fenced by the controller.
    pub broker_session_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms` (2000).
    pub broker_heartbeat_interval_ms: u64,
    /// `inter.broker.listener.name`, when given: a client listener.
    pub inter_broker_listener_name: Option<String>,
}

impl QuorumConfig {
    /// Kafka's defaults for a node of `roles` (with neither voters nor
    /// listener names: [`super::load`] refuses that).
    pub fn new(roles: ProcessRoles) -> Self {
        Self {
            roles,
            voters: Vec::new(),
            bootstrap_servers: Vec::new(),
            controller_listener_names: Vec::new(),
            metadata_log_dir: None,
            election_timeout_ms: 1_000,
            election_backoff_max_ms: 1_000,
            fetch_timeout_ms: 2_000,
            request_timeout_ms: 2_000,
            broker_session_timeout_ms: 9_000,
            broker_heartbeat_interval_ms: 2_000,
            inter_broker_listener_name: None,
        }
    }

    fn voter_ids(&self) -> String {
        let ids: Vec<String> = self.voters.iter().map(|v| v.id.to_string()).collect();
        ids.join(",")
    }
}

impl BrokerConfig {
    /// Whether `name` is one of `controller.listener.names`.
    pub fn is_controller_listener(&self, name: &str) -> bool {
        self.quorum
            .as_ref()
            .is_some_and(|q| q.controller_listener_names.iter().any(|n| n == name))
    }

    /// The listener this node's controller serves on: the first name of
    /// `controller.listener.names` that `listeners` has. None without the
    /// controller role.
    pub fn controller_listener(&self) -> Option<&Listener> {
        let quorum = self.quorum.as_ref().filter(|q| q.roles.controller)?;
        quorum
            .controller_listener_names
            .iter()
            .find_map(|name| self.listeners.iter().find(|l| l.name == *name))
    }

    /// The address this node's controller advertises: its entry in
    /// `advertised.listeners`, else its listener (possibly the wildcard
    /// address, which Kafka replaces with the host name).
    pub fn advertised_controller_listener(&self) -> Option<&Listener> {
        let listener = self.controller_listener()?;
        let mut advertised = self.advertised_listeners.iter();
        Some(
            advertised
                .find(|l| l.name == listener.name)
                .unwrap_or(listener),
        )
    }

    /// The listeners clients use: all but the controller ones.
    pub fn client_listeners(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|l| !self.is_controller_listener(&l.name))
    }

    /// The directory of `__cluster_metadata-0`: `metadata.log.dir`, or
    /// the first log dir, as in Kafka.
    pub fn metadata_log_dir(&self) -> &Path {
        let configured = self
            .quorum
            .as_ref()
            .and_then(|q| q.metadata_log_dir.as_deref());
        configured.unwrap_or_else(|| self.log_dirs[0].as_path())
    }
}

/// The quorum settings, parsed and checked on their own (the listeners
/// come in [`validate`]); None without `process.roles`, whose other keys
/// are then logged and ignored.
pub(super) fn parse(settings: &Settings) -> Result<Option<QuorumConfig>, ConfigError> {
    let Some(roles_setting) = settings.get("process.roles") else {
        for key in KEYS.iter().filter(|k| settings.contains_key(*k)) {
            let origin = &settings[key].origin;
            tracing::warn!(key, %origin, "ignoring a KRaft setting: process.roles is unset, so this broker is a quorum of one");
        }
        return Ok(None);
    };
    let mut quorum = QuorumConfig::new(parse_roles(roles_setting)?);
    if let Some(s) = settings.get("controller.quorum.voters") {
        quorum.voters = parse_voters(s)?;
    }
    let get = |key: &'static str| settings.get(key).map(|s| (key, s));
    if let Some((key, s)) = get("controller.quorum.bootstrap.servers") {
        quorum.bootstrap_servers = list(&s.value)
            .map(|entry| {
                HostPort::parse(entry)
                    .map_err(|reason| invalid(key, s, format!("{entry:?}: {reason}")))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some((_, s)) = get("controller.listener.names") {
        quorum.controller_listener_names = list(&s.value).map(str::to_ascii_uppercase).collect();
    }
    if let Some((key, s)) = get("metadata.log.dir") {
        if s.value.is_empty() {
            return Err(invalid(key, s, "is empty".into()));
        }
        quorum.metadata_log_dir = Some(PathBuf::from(&s.value));
    }
    if let Some((_, s)) = get("inter.broker.listener.name") {
        quorum.inter_broker_listener_name = Some(s.value.to_ascii_uppercase());
    }
    let timeouts: [(&'static str, &mut u64); 6] = [
        (
            "controller.quorum.election.timeout.ms",
            &mut quorum.election_timeout_ms,
        ),
        (
            "controller.quorum.election.backoff.max.ms",
            &mut quorum.election_backoff_max_ms,
        ),
        (
            "controller.quorum.fetch.timeout.ms",
            &mut quorum.fetch_timeout_ms,
        ),
        (
            "controller.quorum.request.timeout.ms",
            &mut quorum.request_timeout_ms,
        ),
        (
            "broker.session.timeout.ms",
            &mut quorum.broker_session_timeout_ms,
        ),
        (
            "broker.heartbeat.interval.ms",
            &mut quorum.broker_heartbeat_interval_ms,
        ),
    ];
    for (key, field) in timeouts {
        if let Some(s) = settings.get(key) {
            let ms: i32 = int(&s.value, 1).map_err(|reason| invalid(key, s, reason))?;
            *field = ms.unsigned_abs().into();
        }
    }
    let origin = roles_setting.origin.clone();
    if !settings.contains_key("node.id") && !settings.contains_key("broker.id") {
        return Err(ConfigError::NodeIdRequired { origin });
    }
    if quorum.controller_listener_names.is_empty() {
        return Err(ConfigError::ControllerListenerNamesRequired { origin });
    }
    if quorum.voters.is_empty() && quorum.bootstrap_servers.is_empty() {
        return Err(ConfigError::QuorumControllersRequired { origin });
    }
    Ok(Some(quorum))
}

/// Comma-separated entries, trimmed; an empty value is an empty list.
fn list(value: &str) -> impl Iterator<Item = &str> + Clone {
    value
        .split(',')
        .map(str::trim)
        .filter(move |_| !value.trim().is_empty())
}

fn parse_roles(s: &Setting) -> Result<ProcessRoles, ConfigError> {
    let mut roles = ProcessRoles {
        broker: false,
        controller: false,
    };
    for role in list(&s.value) {
        let seen = match role {
            "broker" => std::mem::replace(&mut roles.broker, true),
            "controller" => std::mem::replace(&mut roles.controller, true),
            _ => {
                return Err(ConfigError::UnknownProcessRole {
                    role: role.to_string(),
                    value: s.value.clone(),
                    origin: s.origin.clone(),
                });
            }
        };
        if seen {
            return Err(invalid(
                "process.roles",
                s,
                format!("gives the role {role} twice"),
            ));
        }
    }
    if !roles.broker && !roles.controller {
        return Err(invalid(
            "process.roles",
            s,
            "is empty; give broker, controller or broker,controller".into(),
        ));
    }
    Ok(roles)
}

fn parse_voters(s: &Setting) -> Result<Vec<QuorumVoter>, ConfigError> {
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for entry in list(&s.value) {
        let bad = |reason: String| ConfigError::InvalidVoter {
            entry: entry.to_string(),
            value: s.value.clone(),
            origin: s.origin.clone(),
            reason,
        };
        if entry.is_empty() {
            return Err(bad("the entry is empty".into()));
        }
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| bad("it has no @ between the node id and the address".into()))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad(format!("the node id {id:?} is not an integer from 0")))?;
        let address = HostPort::parse(address.trim()).map_err(bad)?;
        if address.is_wildcard() {
            return Err(bad(format!(
                "{} is no address to reach a voter at",
                address.host
            )));
        }
        if address.port == 0 {
            return Err(bad("port 0 is no port to reach a voter at".into()));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(ConfigError::DuplicateVoter {
                id,
                value: s.value.clone(),
                origin: s.origin.clone(),
            });
        }
        voters.push(QuorumVoter {
            id,
            host: address.host,
            port: address.port,
        });
    }
    Ok(voters)
}

/// Checks the node's roles against its id, voters and listeners, as
/// Kafka's `validateValues` does; `config.quorum` is `quorum`.
pub(super) fn validate(
    quorum: &QuorumConfig,
    config: &BrokerConfig,
    settings: &Settings,
) -> Result<(), ConfigError> {
    let origin = |key: &str| {
        settings
            .get(key)
            .map_or(Origin::Default, |s| s.origin.clone())
    };
    if quorum.broker_heartbeat_interval_ms * 2 > quorum.broker_session_timeout_ms {
        tracing::warn!(
            broker_heartbeat_interval_ms = quorum.broker_heartbeat_interval_ms,
            broker_session_timeout_ms = quorum.broker_session_timeout_ms,
            "broker.heartbeat.interval.ms is more than half of broker.session.timeout.ms: a broker may lose its session between two heartbeats"
        );
    }
    let is_voter = quorum.voters.iter().any(|v| v.id == config.node_id);
    let listeners_origin = origin("listeners");
    if quorum.roles.controller {
        if !quorum.voters.is_empty() && !is_voter {
            return Err(ConfigError::ControllerNotAVoter {
                node_id: config.node_id,
                voters: quorum.voter_ids(),
                origin: origin("controller.quorum.voters"),
            });
        }
        let missing = quorum
            .controller_listener_names
            .iter()
            .find(|name| !config.listeners.iter().any(|l| l.name == **name));
        if let Some(name) = missing {
            return Err(ConfigError::ControllerListenerMissing {
                name: name.clone(),
                origin: origin("controller.listener.names"),
                listeners: shown(&config.listeners),
            });
        }
    } else {
        if is_voter {
            return Err(ConfigError::BrokerIsAVoter {
                node_id: config.node_id,
                voters: quorum.voter_ids(),
                origin: origin("controller.quorum.voters"),
            });
        }
        let served = config
            .listeners
            .iter()
            .find(|l| config.is_controller_listener(&l.name));
        if let Some(listener) = served {
            return Err(ConfigError::BrokerServesControllerListener {
                listener: listener.clone(),
                origin: listeners_origin,
            });
        }
    }
    let inter_broker = settings.get("inter.broker.listener.name");
    if !quorum.roles.broker {
        if let Some(listener) = config.client_listeners().next() {
            return Err(ConfigError::ControllerServesClientListener {
                listener: listener.clone(),
                origin: listeners_origin,
            });
        }
        if let (Some(name), Some(s)) = (&quorum.inter_broker_listener_name, inter_broker)
            && config.is_controller_listener(name)
        {
            let reason =
                "names a controller listener; a controller-only node has no broker listener".into();
            return Err(invalid("inter.broker.listener.name", s, reason));
        }
        return Ok(());
    }
    if config.client_listeners().next().is_none() {
        return Err(ConfigError::ClientListenerRequired {
            origin: listeners_origin,
        });
    }
    if let (Some(name), Some(s)) = (&quorum.inter_broker_listener_name, inter_broker) {
        let advertised = |l: &&Listener| !config.is_controller_listener(&l.name);
        if !config
            .advertised_listeners
            .iter()
            .filter(advertised)
            .any(|l| l.name == *name)
        {
            let reason = format!(
                "must name a broker listener of advertised.listeners ({})",
                shown(&config.advertised_listeners)
            );
            return Err(invalid("inter.broker.listener.name", s, reason));
        }
    }
    Ok(())
}

fn shown(listeners: &[Listener]) -> String {
    let all: Vec<String> = listeners.iter().map(Listener::to_string).collect();
    all.join(",")
}

#[cfg(test)]
mod tests;
