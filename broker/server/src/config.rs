//! The broker's settings: Kafka's `server.properties` keys, parsed once into
//! [`BrokerConfig`]. Sources, highest precedence first: `--override
//! key=value` (and its sugar `--listeners`, `--log-dirs`), environment
//! variables `RUNNEL_<KEY>` (`log.dirs` is `RUNNEL_LOG_DIRS`), the
//! `--config` properties file, then Kafka's defaults.
//!
//! - `config.rs`: the table of known keys, [`load`], [`ConfigArgs`].
//! - [`error`]: [`ConfigError`], each a sentence naming the setting and
//!   where it came from ([`Origin`]).
//! - [`listener`]: `NAME://host:port` and `host:port` values, and
//!   `listener.security.protocol.map`.
//! - [`quorum`]: KRaft's `process.roles` and quorum settings, checked as
//!   Kafka checks them.
//! - [`properties`]: the Java properties file format.
//!
//! As in Kafka, the sources are merged key by key first, and keys naming
//! the same setting are resolved after: `log.retention.ms` beats
//! `log.retention.minutes` beats `log.retention.hours` whichever source
//! each came from.

mod error;
mod listener;
mod properties;
mod quorum;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use runnel_log::{LogConfig, LogError};

use crate::connection_limits::{self, ConnectionQuotas};

pub use error::{ConfigError, Origin};
pub use listener::{HostPort, Listener};
#[allow(
    unused_imports,
    reason = "the quorum's types, for serve to start it (issue 15)"
)]
pub use quorum::{ProcessRoles, QuorumConfig, QuorumVoter};

use listener::ProtocolMap;

const ENV_PREFIX: &str = "RUNNEL_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `listeners`: where Kafka clients connect.
    pub listeners: Vec<Listener>,
    /// `advertised.listeners`: the addresses metadata hands to clients;
    /// `listeners` when unset. Port 0 (bind any) stands for the bound port.
    pub advertised_listeners: Vec<Listener>,
    /// `node.id`, or its old name `broker.id`.
    pub node_id: i32,
    /// `broker.rack`: registered with the controller, which spreads a
    /// topic's replicas over racks.
    pub rack: Option<String>,
    /// `log.dirs`, or `log.dir`: distinct, non-empty paths.
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    /// Largest request frame accepted.
    pub socket_request_max_bytes: usize,
    /// `max.connections`, `max.connections.per.ip` and
    /// `max.connections.per.ip.overrides`.
    pub connection_quotas: ConnectionQuotas,
    /// `metrics.listen` (ours, not Kafka's): the Prometheus endpoint.
    pub metrics_listen: HostPort,
    pub num_recovery_threads_per_data_dir: usize,
    /// `group.initial.rebalance.delay.ms`: how long a new group's first
    /// rebalance waits for more members (Kafka's 3000; 0 in tests).
    pub group_initial_rebalance_delay_ms: i32,
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`:
    /// the session timeouts a member may ask for.
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`
    /// when it is created (an existing topic keeps its count).
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.minutes`, in ms: how long an empty group's
    /// committed offsets are kept.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`: how often expiry runs.
    pub offsets_retention_check_interval_ms: i64,
    /// `producer.id.expiration.ms`: an idempotent producer idle this long
    /// is forgotten by each partition (its next batch may start anywhere).
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`.
    pub producer_id_expiration_check_interval_ms: i64,
    /// `transaction.state.log.num.partitions` (50).
    pub transaction_state_log_num_partitions: i32,
    /// `offsets.topic.replication.factor` (3, as Kafka; a quorum of one
    /// uses 1).
    pub offsets_topic_replication_factor: i16,
    /// `transaction.state.log.replication.factor` (3, as Kafka; a quorum
    /// of one uses 1).
    pub transaction_state_log_replication_factor: i16,
    /// The `replica.*` settings of followers and leaders.
    pub replication: ReplicationConfig,
    /// `transaction.max.timeout.ms` (900000): the longest
    /// `transaction.timeout.ms` a producer may ask for.
    pub transaction_max_timeout_ms: i64,
    /// `transactional.id.expiration.ms` (604800000, 7 days): a
    /// transactional id unused this long is forgotten.
    pub transactional_id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`
    /// (10000): how often open transactions past their timeout are aborted.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i64,
    /// `transaction.partition.verification.enable` (true): a leader asks
    /// the transaction coordinator before it takes the first batch of a
    /// transaction (KIP-890).
    pub transaction_partition_verification_enable: bool,
    pub cluster_id: Option<String>,
    /// The `log.*` settings and `message.max.bytes`: every topic's defaults.
    pub log: LogConfig,
    /// `process.roles` and the quorum it joins; None without
    /// `process.roles`: a quorum of one that needs no setup.
    pub quorum: Option<QuorumConfig>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let listener = Listener {
            name: "PLAINTEXT".into(),
            address: HostPort {
                host: "127.0.0.1".into(),
                port: 9092,
            },
        };
        Self {
            listeners: vec![listener.clone()],
            advertised_listeners: vec![listener],
            node_id: 1,
            log_dirs: vec![PathBuf::from("./runnel-data")],
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            socket_request_max_bytes: 104_857_600,
            connection_quotas: ConnectionQuotas::default(),
            metrics_listen: HostPort {
                host: "127.0.0.1".into(),
                port: 9644,
            },
            num_recovery_threads_per_data_dir: 1,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            offsets_topic_num_partitions: 50,
            // Kafka's 10080 minutes: 7 days.
            offsets_retention_ms: 604_800_000,
            offsets_retention_check_interval_ms: 600_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
            transaction_state_log_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            transaction_state_log_replication_factor: 3,
            replication: ReplicationConfig::default(),
            transaction_max_timeout_ms: 900_000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            transaction_partition_verification_enable: true,
            transactional_id_expiration_ms: 604_800_000,
            cluster_id: None,
            rack: None,
            log: LogConfig::default(),
            quorum: None,
        }
    }
}

/// How followers fetch from leaders and leaders judge them, by Kafka's
/// `replica.*` names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms` (30000): a follower that has not caught
    /// up with the leader's log end for this long leaves the ISR.
    pub lag_time_max_ms: i64,
    /// `num.replica.fetchers` (1): fetch connections per source broker.
    pub num_fetchers: usize,
    /// `replica.fetch.max.bytes` (1 MiB): per partition and fetch.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB): per fetch.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500): how long a leader holds a
    /// follower's fetch while it has nothing new.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `replica.fetch.backoff.ms` (1000): the wait after a failed fetch.
    pub fetch_backoff_ms: u64,
    /// `auto.leader.rebalance.enable` (true): the controller gives
    /// partitions back to their preferred leader.
    pub auto_leader_rebalance_enable: bool,
    /// `leader.imbalance.check.interval.seconds` (300), in ms.
    pub leader_imbalance_check_interval_ms: u64,
    /// `leader.imbalance.per.broker.percentage` (10).
    pub leader_imbalance_per_broker_percentage: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            lag_time_max_ms: 30_000,
            num_fetchers: 1,
            fetch_max_bytes: 1_048_576,
            fetch_response_max_bytes: 10_485_760,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_backoff_ms: 1_000,
            auto_leader_rebalance_enable: true,
            leader_imbalance_check_interval_ms: 300_000,
            leader_imbalance_per_broker_percentage: 10,
        }
    }
}

/// The inputs of [`load`]. `env` is passed in so that tests need not touch
/// the process environment; only `RUNNEL_*` entries matter.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    pub file: Option<PathBuf>,
    pub overrides: Vec<(String, String)>,
    pub env: Vec<(String, String)>,
}

/// The configuration flags of `runnel serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Properties file with Kafka's broker settings (server.properties).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Sets one setting over the file and the RUNNEL_* environment;
    /// repeatable, the last of a key wins.
    #[arg(long = "override", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub overrides: Vec<(String, String)>,
    /// Same as --override listeners=...
    #[arg(long, value_name = "PLAINTEXT://HOST:PORT")]
    pub listeners: Option<String>,
    /// Same as --override log.dirs=...
    #[arg(long = "log-dirs", value_name = "DIR[,DIR...]")]
    pub log_dirs: Option<String>,
}

impl ConfigArgs {
    /// The sources these flags name; `env` is normally
    /// `std::env::vars_os()`. The sugar flags count as overrides given
    /// first, so an explicit `--override` of the same key wins.
    pub fn sources(&self, env: impl IntoIterator<Item = (OsString, OsString)>) -> ConfigSources {
        let sugar = [("listeners", &self.listeners), ("log.dirs", &self.log_dirs)];
        let sugar = sugar
            .into_iter()
            .filter_map(|(key, value)| Some((key.to_string(), value.clone()?)));
        let env = env.into_iter().filter_map(|(var, value)| {
            let var = var.into_string().ok()?;
            let value = value.to_string_lossy().into_owned();
            var.starts_with(ENV_PREFIX).then_some((var, value))
        });
        ConfigSources {
            file: self.config.clone(),
            overrides: sugar.chain(self.overrides.iter().cloned()).collect(),
            env: env.collect(),
        }
    }
}

fn parse_override(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, found {text:?}"))?;
    Ok((key.trim().to_string(), value.trim().to_string()))
}

/// How a key's value lands in the config.
#[derive(Debug)]
enum Apply {
    Broker(fn(&mut BrokerConfig, &str) -> Result<(), String>),
    /// A [`LogConfig`] setting under its topic-level name.
    Log(&'static str),
    /// A [`LogConfig`] millisecond setting given in a coarser unit (ms per
    /// unit); negative means -1, "forever", as in Kafka.
    LogScaled(&'static str, i64),
    /// Parsed after the table, with the settings it depends on
    /// (`listener.security.protocol.map`, the [`quorum`] keys).
    Later,
}

/// A known key. Keys naming one setting are applied in table order, so the
/// later one (`log.dirs` after `log.dir`) wins when both are set.
#[derive(Debug)]
struct Key {
    name: &'static str,
    apply: Apply,
}

/// Sets one `BrokerConfig` field from a parser's result.
macro_rules! broker {
    ($field:ident, $parse:expr) => {
        Apply::Broker(|c, v| {
            c.$field = $parse(v)?;
            Ok(())
        })
    };
}

#[rustfmt::skip]
static KEYS: &[Key] = &[
    Key { name: "listeners", apply: broker!(listeners, listener::parse_listeners) },
    Key { name: "advertised.listeners", apply: broker!(advertised_listeners, advertised) },
    Key { name: "broker.id", apply: broker!(node_id, |v| int(v, 0)) },
    Key { name: "node.id", apply: broker!(node_id, |v| int(v, 0)) },
    Key { name: "broker.rack", apply: broker!(rack, |v| non_empty(v).map(|r| Some(r.to_string()))) },
    Key { name: "log.dir", apply: broker!(log_dirs, log_dirs) },
    Key { name: "log.dirs", apply: broker!(log_dirs, log_dirs) },
    Key { name: "num.partitions", apply: broker!(num_partitions, |v| int(v, 1)) },
    Key { name: "default.replication.factor", apply: broker!(default_replication_factor, |v| int(v, 1)) },
    Key { name: "auto.create.topics.enable", apply: broker!(auto_create_topics_enable, boolean) },
    Key { name: "socket.request.max.bytes", apply: broker!(socket_request_max_bytes, |v| int::<i32>(v, 1).map(|n| n as usize)) },
    Key { name: "max.connections", apply: Apply::Broker(|c, v| { c.connection_quotas.max_connections = int::<i32>(v, 0)? as usize; Ok(()) }) },
    Key { name: "max.connections.per.ip", apply: Apply::Broker(|c, v| { c.connection_quotas.max_connections_per_ip = int::<i32>(v, 0)? as usize; Ok(()) }) },
    Key { name: "max.connections.per.ip.overrides", apply: Apply::Broker(|c, v| { c.connection_quotas.per_ip_overrides = connection_limits::parse_overrides(v)?; Ok(()) }) },
    Key { name: "metrics.listen", apply: broker!(metrics_listen, HostPort::parse) },
    Key { name: "num.recovery.threads.per.data.dir", apply: broker!(num_recovery_threads_per_data_dir, |v| int(v, 1)) },
    Key { name: "group.initial.rebalance.delay.ms", apply: broker!(group_initial_rebalance_delay_ms, |v| int(v, 0)) },
    Key { name: "group.min.session.timeout.ms", apply: broker!(group_min_session_timeout_ms, |v| int(v, 0)) },
    Key { name: "group.max.session.timeout.ms", apply: broker!(group_max_session_timeout_ms, |v| int(v, 0)) },
    Key { name: "offsets.topic.num.partitions", apply: broker!(offsets_topic_num_partitions, |v| int(v, 1)) },
    Key { name: "offsets.retention.minutes", apply: broker!(offsets_retention_ms, |v| int::<i64>(v, 1)?.checked_mul(60_000).ok_or_else(|| "too large".to_string())) },
    Key { name: "offsets.retention.check.interval.ms", apply: broker!(offsets_retention_check_interval_ms, |v| int(v, 1)) },
    Key { name: "producer.id.expiration.ms", apply: broker!(producer_id_expiration_ms, |v| int(v, 1)) },
    Key { name: "producer.id.expiration.check.interval.ms", apply: broker!(producer_id_expiration_check_interval_ms, |v| int(v, 1)) },
    Key { name: "transaction.state.log.num.partitions", apply: broker!(transaction_state_log_num_partitions, |v| int(v, 1)) },
    Key { name: "transactional.id.expiration.ms", apply: broker!(transactional_id_expiration_ms, |v| int(v, 1)) },
    Key { name: "transaction.max.timeout.ms", apply: broker!(transaction_max_timeout_ms, |v| int(v, 1)) },
    Key { name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", apply: broker!(transaction_abort_timed_out_transaction_cleanup_interval_ms, |v| int(v, 1)) },
    Key { name: "transaction.partition.verification.enable", apply: broker!(transaction_partition_verification_enable, boolean) },
    Key { name: "cluster.id", apply: broker!(cluster_id, |v| non_empty(v).map(|id| Some(id.to_string()))) },
    Key { name: "listener.security.protocol.map", apply: Apply::Later },
    Key { name: "process.roles", apply: Apply::Later },
    Key { name: "controller.quorum.voters", apply: Apply::Later },
    Key { name: "controller.quorum.bootstrap.servers", apply: Apply::Later },
    Key { name: "controller.listener.names", apply: Apply::Later },
    Key { name: "metadata.log.dir", apply: Apply::Later },
    Key { name: "controller.quorum.election.timeout.ms", apply: Apply::Later },
    Key { name: "controller.quorum.election.backoff.max.ms", apply: Apply::Later },
    Key { name: "controller.quorum.fetch.timeout.ms", apply: Apply::Later },
    Key { name: "controller.quorum.request.timeout.ms", apply: Apply::Later },
    Key { name: "broker.session.timeout.ms", apply: Apply::Later },
    Key { name: "broker.heartbeat.interval.ms", apply: Apply::Later },
    Key { name: "inter.broker.listener.name", apply: Apply::Later },
    Key { name: "offsets.topic.replication.factor", apply: broker!(offsets_topic_replication_factor, |v| int(v, 1)) },
    Key { name: "transaction.state.log.replication.factor", apply: broker!(transaction_state_log_replication_factor, |v| int(v, 1)) },
    Key { name: "replica.lag.time.max.ms", apply: Apply::Broker(|c, v| { c.replication.lag_time_max_ms = int(v, 1)?; Ok(()) }) },
    Key { name: "num.replica.fetchers", apply: Apply::Broker(|c, v| { c.replication.num_fetchers = int(v, 1)?; Ok(()) }) },
    Key { name: "replica.fetch.max.bytes", apply: Apply::Broker(|c, v| { c.replication.fetch_max_bytes = int(v, 0)?; Ok(()) }) },
    Key { name: "replica.fetch.response.max.bytes", apply: Apply::Broker(|c, v| { c.replication.fetch_response_max_bytes = int(v, 0)?; Ok(()) }) },
    Key { name: "replica.fetch.wait.max.ms", apply: Apply::Broker(|c, v| { c.replication.fetch_wait_max_ms = int(v, 0)?; Ok(()) }) },
    Key { name: "replica.fetch.min.bytes", apply: Apply::Broker(|c, v| { c.replication.fetch_min_bytes = int(v, 1)?; Ok(()) }) },
    Key { name: "replica.fetch.backoff.ms", apply: Apply::Broker(|c, v| { c.replication.fetch_backoff_ms = int(v, 0)?; Ok(()) }) },
    Key { name: "auto.leader.rebalance.enable", apply: Apply::Broker(|c, v| { c.replication.auto_leader_rebalance_enable = boolean(v)?; Ok(()) }) },
    Key { name: "leader.imbalance.check.interval.seconds", apply: Apply::Broker(|c, v| { c.replication.leader_imbalance_check_interval_ms = int::<u64>(v, 1)?.saturating_mul(1000); Ok(()) }) },
    Key { name: "leader.imbalance.per.broker.percentage", apply: Apply::Broker(|c, v| { c.replication.leader_imbalance_per_broker_percentage = int(v, 0)?; Ok(()) }) },
    Key { name: "min.insync.replicas", apply: Apply::Log("min.insync.replicas") },
    Key { name: "unclean.leader.election.enable", apply: Apply::Log("unclean.leader.election.enable") },
    Key { name: "message.max.bytes", apply: Apply::Log("max.message.bytes") },
    Key { name: "log.segment.bytes", apply: Apply::Log("segment.bytes") },
    Key { name: "log.roll.hours", apply: Apply::LogScaled("segment.ms", 3_600_000) },
    Key { name: "log.roll.ms", apply: Apply::Log("segment.ms") },
    Key { name: "log.index.size.max.bytes", apply: Apply::Log("segment.index.bytes") },
    Key { name: "log.index.interval.bytes", apply: Apply::Log("index.interval.bytes") },
    Key { name: "log.retention.hours", apply: Apply::LogScaled("retention.ms", 3_600_000) },
    Key { name: "log.retention.minutes", apply: Apply::LogScaled("retention.ms", 60_000) },
    Key { name: "log.retention.ms", apply: Apply::Log("retention.ms") },
    Key { name: "log.retention.bytes", apply: Apply::Log("retention.bytes") },
    Key { name: "log.cleanup.policy", apply: Apply::Log("cleanup.policy") },
    Key { name: "log.cleaner.delete.retention.ms", apply: Apply::Log("delete.retention.ms") },
    Key { name: "log.flush.interval.messages", apply: Apply::Log("flush.messages") },
    Key { name: "log.flush.interval.ms", apply: Apply::Log("flush.ms") },
    Key { name: "log.segment.delete.delay.ms", apply: Apply::Log("file.delete.delay.ms") },
    Key { name: "log.message.timestamp.type", apply: Apply::Log("message.timestamp.type") },
];

impl Key {
    fn find(name: &str) -> Option<&'static Key> {
        KEYS.iter().find(|k| k.name == name)
    }

    /// `log.dirs` -> `RUNNEL_LOG_DIRS`.
    fn env_var(&self) -> String {
        format!(
            "{ENV_PREFIX}{}",
            self.name.to_ascii_uppercase().replace('.', "_")
        )
    }

    fn apply(&self, config: &mut BrokerConfig, value: &str) -> Result<(), String> {
        let (log_key, value) = match self.apply {
            Apply::Broker(apply) => return apply(config, value),
            Apply::Later => return Ok(()),
            Apply::Log(log_key) => (log_key, value.to_string()),
            Apply::LogScaled(log_key, unit_ms) => {
                let v: i64 = int(value, i64::MIN)?;
                let ms = if v < 0 {
                    Some(-1)
                } else {
                    v.checked_mul(unit_ms)
                };
                (log_key, ms.ok_or("too large")?.to_string())
            }
        };
        config.log.set(log_key, &value).map_err(|err| match err {
            LogError::InvalidConfig { reason, .. } => reason,
            other => other.to_string(),
        })
    }
}

/// A value and where it came from.
#[derive(Debug)]
struct Setting {
    value: String,
    origin: Origin,
}

/// Kafka broker settings found in stock `server.properties` files that mean
/// nothing to a Runnel broker yet (thread pools, socket buffers,
/// replication of internal topics, ZooKeeper).
/// They are logged and skipped so an existing file starts; anything else
/// unknown is still an error.
const IGNORED_KAFKA_KEYS: &[&str] = &[
    "log.retention.check.interval.ms",
    "num.io.threads",
    "num.network.threads",
    "share.coordinator.state.topic.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "transaction.state.log.min.isr",
    "zookeeper.connect",
    "zookeeper.connection.timeout.ms",
];

/// Reads the sources and builds the config; see the module doc for the
/// precedence. Unknown keys are errors, except `RUNNEL_*` variables that
/// name no key, which are logged and ignored; an empty variable is unset.
pub fn load(sources: &ConfigSources) -> Result<BrokerConfig, ConfigError> {
    let mut settings: BTreeMap<&'static str, Setting> = BTreeMap::new();
    let mut set = |key: &str, value: &str, origin: Origin| {
        if IGNORED_KAFKA_KEYS.contains(&key) {
            tracing::warn!(key, %origin, "ignoring a Kafka setting that a single Runnel broker does not use");
            return Ok(());
        }
        let Some(known) = Key::find(key) else {
            return Err(ConfigError::UnknownKey {
                key: key.to_string(),
                origin,
            });
        };
        let value = value.trim().to_string();
        settings.insert(known.name, Setting { value, origin });
        Ok(())
    };
    if let Some(path) = &sources.file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.clone(),
            source,
        })?;
        let file = properties::parse(&text).map_err(|err| ConfigError::Syntax {
            path: path.clone(),
            line: err.line,
            text: err.text,
        })?;
        for p in file {
            let origin = Origin::File {
                path: path.clone(),
                line: p.line,
            };
            set(&p.key, &p.value, origin)?;
        }
    }
    for (var, value) in &sources.env {
        if !var.starts_with(ENV_PREFIX) || value.trim().is_empty() {
            continue;
        }
        match KEYS.iter().find(|k| k.env_var() == *var) {
            Some(key) => set(key.name, value, Origin::Env { var: var.clone() })?,
            None => tracing::warn!(var, "ignoring environment variable: it names no setting"),
        }
    }
    for (key, value) in &sources.overrides {
        set(key, value, Origin::Override)?;
    }
    build(&settings)
}

/// The merged sources: each known key's winning value.
type Settings = BTreeMap<&'static str, Setting>;

fn build(settings: &Settings) -> Result<BrokerConfig, ConfigError> {
    let mut config = BrokerConfig::default();
    for key in KEYS {
        let Some(s) = settings.get(key.name) else {
            continue;
        };
        key.apply(&mut config, &s.value)
            .map_err(|reason| invalid(key.name, s, reason))?;
    }
    if let (Some(broker), Some(node)) = (settings.get("broker.id"), settings.get("node.id"))
        && broker.value.parse::<i32>() != node.value.parse::<i32>()
    {
        let reason = format!(
            "broker.id is {:?} in {}; set one of them",
            broker.value, broker.origin
        );
        return Err(invalid("node.id", node, reason));
    }
    if config.group_min_session_timeout_ms > config.group_max_session_timeout_ms {
        let (min, max) = (
            config.group_min_session_timeout_ms,
            config.group_max_session_timeout_ms,
        );
        let (key, reason) = match settings.get("group.max.session.timeout.ms") {
            Some(_) => (
                "group.max.session.timeout.ms",
                format!("must be at least group.min.session.timeout.ms ({min})"),
            ),
            None => (
                "group.min.session.timeout.ms",
                format!("must be at most group.max.session.timeout.ms ({max})"),
            ),
        };
        if let Some(s) = settings.get(key) {
            return Err(invalid(key, s, reason));
        }
    }
    config.quorum = quorum::parse(settings)?;
    check_protocols(&config, settings)?;
    match settings.get("advertised.listeners") {
        Some(s) => {
            let listed = |name: &str| config.listeners.iter().any(|l| l.name == name);
            if let Some(l) = config
                .advertised_listeners
                .iter()
                .find(|l| !listed(&l.name))
            {
                let reason = format!("listeners has no listener named {}", l.name);
                return Err(invalid("advertised.listeners", s, reason));
            }
        }
        None => {
            if let Some(l) = config.client_listeners().find(|l| l.address.is_wildcard()) {
                return Err(ConfigError::AdvertisedListenersRequired {
                    listener: l.clone(),
                    origin: settings
                        .get("listeners")
                        .map_or(Origin::Default, |s| s.origin.clone()),
                });
            }
            // A controller bound to every interface has no address of its
            // own to advertise; its voters entry is what others dial.
            let advertised =
                |l: &&Listener| !l.address.is_wildcard() || !config.is_controller_listener(&l.name);
            config.advertised_listeners = config
                .listeners
                .iter()
                .filter(advertised)
                .cloned()
                .collect();
        }
    }
    if let Some(quorum) = &config.quorum {
        quorum::validate(quorum, &config, settings)?;
    }
    Ok(config)
}

/// Refuses a listener whose `listener.security.protocol.map` protocol is
/// not PLAINTEXT (SSL and SASL come later), and, on a broker-only node,
/// a controller listener name that is not PLAINTEXT (it dials the
/// controllers with it).
fn check_protocols(config: &BrokerConfig, settings: &Settings) -> Result<(), ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let names = config
        .quorum
        .as_ref()
        .map_or(&[][..], |q| &q.controller_listener_names[..]);
    let map = match settings.get(KEY) {
        Some(s) => ProtocolMap::parse(&s.value).map_err(|reason| invalid(KEY, s, reason))?,
        None if config.quorum.is_some() => {
            ProtocolMap::default().with_plaintext_controllers(names, &config.listeners)
        }
        None => ProtocolMap::default(),
    };
    let blamed = settings.get("listeners").map(|s| ("listeners", s));
    let blamed = blamed.or(settings.get(KEY).map(|s| (KEY, s)));
    for l in &config.listeners {
        if let (Err(reason), Some((key, s))) = (map.check_plaintext(&l.name, l), blamed) {
            return Err(invalid(key, s, reason));
        }
    }
    let broker_only = config.quorum.as_ref().is_some_and(|q| !q.roles.controller);
    if let (true, Some(s)) = (broker_only, settings.get("controller.listener.names")) {
        for name in names {
            map.check_plaintext(name, name)
                .map_err(|reason| invalid("controller.listener.names", s, reason))?;
        }
    }
    Ok(())
}

fn invalid(key: &str, setting: &Setting, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: setting.value.clone(),
        origin: setting.origin.clone(),
        reason,
    }
}

fn int<T: TryFrom<i64>>(value: &str, min: i64) -> Result<T, String> {
    let v: i64 = value.parse().map_err(|_| "not an integer")?;
    if v < min {
        return Err(format!("must be at least {min}"));
    }
    T::try_from(v).map_err(|_| "too large".to_string())
}

fn boolean(value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn non_empty(value: &str) -> Result<&str, String> {
    if value.is_empty() {
        return Err("is empty".into());
    }
    Ok(value)
}

fn advertised(value: &str) -> Result<Vec<Listener>, String> {
    let listeners = listener::parse_listeners(value)?;
    if let Some(l) = listeners.iter().find(|l| l.address.is_wildcard()) {
        return Err(format!(
            "{l}: cannot use the nonroutable meta-address {}; use a routable IP address or host name",
            l.address.host
        ));
    }
    Ok(listeners)
}

fn log_dirs(value: &str) -> Result<Vec<PathBuf>, String> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (i, dir) in value.split(',').map(str::trim).enumerate() {
        if dir.is_empty() {
            return Err(format!(
                "entry {} is empty; separate directories with commas",
                i + 1
            ));
        }
        let dir = PathBuf::from(dir);
        if dirs.contains(&dir) {
            return Err(format!("names {} twice", dir.display()));
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn pairs(items: Pairs) -> Vec<(String, String)> {
        let owned = |(k, v): &(&str, &str)| (k.to_string(), v.to_string());
        items.iter().map(owned).collect()
    }

    /// Loads `file` (as server.properties), `env` and `overrides`; errors
    /// name the file `server.properties`.
    fn try_load(file: &str, env: Pairs, overrides: Pairs) -> Result<BrokerConfig, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.properties");
        std::fs::write(&path, file).expect("write");
        let sources = ConfigSources {
            file: Some(path.clone()),
            env: pairs(env),
            overrides: pairs(overrides),
        };
        let shown = path.display().to_string();
        load(&sources).map_err(|err| err.to_string().replace(&shown, "server.properties"))
    }

    fn with(overrides: Pairs) -> BrokerConfig {
        try_load("", &[], overrides).expect("valid")
    }

    fn error(overrides: Pairs) -> String {
        try_load("", &[], overrides).expect_err("invalid")
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = load(&ConfigSources::default()).expect("defaults");
        assert_eq!(c, BrokerConfig::default());
        assert_eq!(c.listeners[0].to_string(), "PLAINTEXT://127.0.0.1:9092");
        assert_eq!(c.advertised_listeners, c.listeners);
        let ids = (c.node_id, c.num_partitions, c.default_replication_factor);
        assert_eq!(ids, (1, 1, 1));
        assert_eq!(c.log_dirs, [PathBuf::from("./runnel-data")]);
        assert!(c.auto_create_topics_enable && c.cluster_id.is_none());
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.metrics_listen.to_string(), "127.0.0.1:9644");
        assert_eq!(c.num_recovery_threads_per_data_dir, 1);
        assert_eq!(c.log, LogConfig::default());
        assert_eq!(c.log.retention_ms, 168 * 3_600_000);
    }

    #[test]
    fn group_and_offset_retention_settings() {
        let c = with(&[
            ("group.min.session.timeout.ms", "1000"),
            ("group.max.session.timeout.ms", "60000"),
            ("offsets.retention.minutes", "2"),
            ("offsets.retention.check.interval.ms", "5000"),
            ("producer.id.expiration.ms", "3600000"),
            ("producer.id.expiration.check.interval.ms", "1000"),
            ("offsets.topic.num.partitions", "3"),
        ]);
        assert_eq!(c.offsets_topic_num_partitions, 3);
        assert_eq!(c.group_min_session_timeout_ms, 1_000);
        assert_eq!(c.group_max_session_timeout_ms, 60_000);
        assert_eq!(c.offsets_retention_ms, 120_000);
        assert_eq!(c.offsets_retention_check_interval_ms, 5_000);
        assert_eq!(c.producer_id_expiration_ms, 3_600_000);
        assert_eq!(c.producer_id_expiration_check_interval_ms, 1_000);
        assert_eq!(
            BrokerConfig::default().offsets_retention_ms,
            10_080 * 60_000
        );
        assert_eq!(
            error(&[("group.max.session.timeout.ms", "5000")]),
            "invalid value \"5000\" for group.max.session.timeout.ms in --override: \
             must be at least group.min.session.timeout.ms (6000)"
        );
        assert_eq!(
            error(&[("group.min.session.timeout.ms", "2000000")]),
            "invalid value \"2000000\" for group.min.session.timeout.ms in --override: \
             must be at most group.max.session.timeout.ms (1800000)"
        );
        assert_eq!(
            error(&[("offsets.retention.minutes", "0")]),
            "invalid value \"0\" for offsets.retention.minutes in --override: must be at least 1"
        );
    }

    #[test]
    fn reads_a_properties_file() {
        let text = "# broker 2\nnode.id=2\nlog.dirs: /a, /b\n\n! sizes\n\
                    log.segment.bytes = 1048576\nauto.create.topics.enable=FALSE\ncluster.id=c1\n";
        let c = try_load(text, &[], &[]).expect("valid");
        assert_eq!(c.node_id, 2);
        assert_eq!(c.log_dirs, [PathBuf::from("/a"), PathBuf::from("/b")]);
        assert_eq!(c.log.segment_bytes, 1 << 20);
        assert!(!c.auto_create_topics_enable);
        assert_eq!(c.cluster_id.as_deref(), Some("c1"));
        assert_eq!(
            try_load("node.id=2\nnode.id 3\n", &[], &[]).expect_err("syntax"),
            "server.properties line 2: expected key=value or key: value, found \"node.id 3\""
        );
        let missing = ConfigSources {
            file: Some(PathBuf::from("/no/such.properties")),
            ..ConfigSources::default()
        };
        let err = load(&missing).expect_err("missing").to_string();
        assert_eq!(err, "cannot read config file /no/such.properties");
    }

    #[test]
    fn a_stock_kafka_file_starts_skipping_what_runnel_does_not_use() {
        // The tuning part of Apache Kafka's config/server.properties.
        let text = "num.network.threads=3\nnum.io.threads=8\n\
                    socket.send.buffer.bytes=102400\nsocket.receive.buffer.bytes=102400\n\
                    socket.request.max.bytes=104857600\nlog.dirs=/tmp/kafka-logs\n\
                    num.partitions=1\nnum.recovery.threads.per.data.dir=1\n\
                    offsets.topic.replication.factor=1\n\
                    transaction.state.log.replication.factor=1\n\
                    transaction.state.log.min.isr=1\nlog.retention.hours=168\n\
                    log.segment.bytes=1073741824\nlog.retention.check.interval.ms=300000\n";
        let c = try_load(text, &[], &[]).expect("a stock file starts");
        assert_eq!(c.log_dirs, [PathBuf::from("/tmp/kafka-logs")]);
        assert!(error(&[("num.netwrok.threads", "3")]).contains("unknown setting"));
    }

    #[test]
    fn override_beats_env_beats_file() {
        let file = "num.partitions=2\nnode.id=7\n";
        let env = [
            ("RUNNEL_NUM_PARTITIONS", "3"),
            ("RUNNEL_NODE_ID", " "),
            ("PATH", "/"),
        ];
        let partitions = |env, overrides| try_load(file, env, overrides).expect("valid");
        let c = partitions(&env, &[("num.partitions", "4")]);
        assert_eq!(
            (c.num_partitions, c.node_id),
            (4, 7),
            "an empty variable is unset"
        );
        assert_eq!(partitions(&env, &[]).num_partitions, 3);
        assert_eq!(partitions(&[], &[]).num_partitions, 2);
    }

    #[test]
    fn unknown_keys_are_errors_but_unknown_variables_are_not() {
        let err = try_load("# c\nnum.partitions=1\n\nfoo.bar=1\n", &[], &[]);
        let expected = "unknown setting \"foo.bar\" in server.properties line 4";
        assert_eq!(err.expect_err("unknown"), expected);
        let err = error(&[("segment.bytes", "1")]);
        assert_eq!(err, "unknown setting \"segment.bytes\" in --override");
        let env = [("RUNNEL_LOG", "debug"), ("RUNNEL_LOG_DIRS", "/d")];
        let c = try_load("", &env, &[]).expect("ignored");
        assert_eq!(c.log_dirs, [PathBuf::from("/d")]);
    }

    #[test]
    fn invalid_values_name_key_value_origin_and_reason() {
        let env = [("RUNNEL_NUM_PARTITIONS", "zero")];
        assert_eq!(
            try_load("", &env, &[]).expect_err("invalid"),
            "invalid value \"zero\" for num.partitions in environment variable \
             RUNNEL_NUM_PARTITIONS: not an integer"
        );
        assert_eq!(
            error(&[("log.segment.bytes", "1")]),
            "invalid value \"1\" for log.segment.bytes in --override: must be at least 14"
        );
        let ends = |overrides, reason: &str| {
            let err = error(overrides);
            assert!(err.ends_with(reason), "{err}");
        };
        ends(
            &[("auto.create.topics.enable", "yes")],
            "expected true or false",
        );
        ends(&[("default.replication.factor", "40000")], "too large");
        ends(
            &[("log.dirs", "/a,,/b")],
            "entry 2 is empty; separate directories with commas",
        );
        ends(&[("log.dirs", "/a,/a")], "names /a twice");
        ends(
            &[("metrics.listen", "9644")],
            "expected host:port, e.g. 127.0.0.1:9092",
        );
        ends(
            &[("broker.id", "1"), ("node.id", "2")],
            "broker.id is \"1\" in --override; set one of them",
        );
        assert_eq!(with(&[("broker.id", "5")]).node_id, 5);
    }

    #[test]
    fn retention_ms_beats_minutes_beats_hours() {
        let retention = |overrides: Pairs| with(overrides).log.retention_ms;
        assert_eq!(retention(&[("log.retention.hours", "1")]), 3_600_000);
        let two = [("log.retention.minutes", "2"), ("log.retention.hours", "1")];
        assert_eq!(retention(&two), 120_000);
        assert_eq!(retention(&[two[0], two[1], ("log.retention.ms", "5")]), 5);
        assert_eq!(retention(&[("log.retention.hours", "-1")]), -1);
        assert_eq!(retention(&[("log.retention.minutes", "-3")]), -1);
        assert!(error(&[("log.retention.ms", "-2")]).ends_with("must be at least -1"));
        assert!(error(&[("log.retention.hours", "9223372036854775807")]).ends_with("too large"));
        // Kafka merges the sources first: the file's ms beats --override hours.
        let c = try_load("log.retention.ms=7", &[], &[("log.retention.hours", "1")]);
        assert_eq!(c.expect("valid").log.retention_ms, 7);
        assert_eq!(with(&[("log.roll.hours", "2")]).log.segment_ms, 7_200_000);
    }

    #[test]
    fn listeners_and_advertised_listeners() {
        let any = ("listeners", "PLAINTEXT://0.0.0.0:9092");
        let c = with(&[any, ("advertised.listeners", "PLAINTEXT://b-0.svc:9092")]);
        assert!(c.listeners[0].address.is_wildcard());
        assert_eq!(c.advertised_listeners[0].address.host, "b-0.svc");
        assert_eq!(
            error(&[("listeners", "SSL://h:9093")]),
            "invalid value \"SSL://h:9093\" for listeners in --override: \
             \"SSL://h:9093\": only PLAINTEXT listeners are supported for now"
        );
        assert_eq!(
            error(&[any]),
            "listener PLAINTEXT://0.0.0.0:9092 (from --override) binds every interface, which \
             is no address for clients to connect to; set advertised.listeners to one they can \
             reach, e.g. PLAINTEXT://broker-0.example.com:9092"
        );
        let err = error(&[("advertised.listeners", "PLAINTEXT://0.0.0.0:1")]);
        assert!(err.contains("nonroutable meta-address 0.0.0.0"), "{err}");
        let err = error(&[("advertised.listeners", "plaintext://h:1,PLAINTEXT://h:2")]);
        assert!(
            err.ends_with("listener name PLAINTEXT is given twice"),
            "{err}"
        );
    }

    #[test]
    fn log_settings_map_onto_topic_level_names() {
        let c = with(&[
            ("message.max.bytes", "2000000"),
            ("log.segment.bytes", "1000000"),
            ("log.roll.ms", "60000"),
            ("log.index.size.max.bytes", "8192"),
            ("log.index.interval.bytes", "100"),
            ("log.retention.bytes", "5000000"),
            ("log.cleanup.policy", "compact"),
            ("log.cleaner.delete.retention.ms", "1000"),
            ("log.flush.interval.messages", "1"),
            ("log.flush.interval.ms", "500"),
            ("log.segment.delete.delay.ms", "10"),
            ("log.message.timestamp.type", "LogAppendTime"),
        ]);
        let l = &c.log;
        assert_eq!(
            (l.max_message_bytes, l.segment_bytes),
            (2_000_000, 1_000_000)
        );
        assert_eq!((l.segment_ms, l.segment_index_bytes), (60_000, 8192));
        assert_eq!(
            (l.index_interval_bytes, l.retention_bytes),
            (100, 5_000_000)
        );
        assert!(l.cleanup_policy.compact && !l.cleanup_policy.delete);
        assert_eq!(
            (l.delete_retention_ms, l.flush_messages, l.flush_ms),
            (1000, 1, 500)
        );
        assert_eq!(l.file_delete_delay_ms, 10);
        assert_eq!(
            l.message_timestamp_type,
            runnel_log::TimestampType::LogAppendTime
        );
    }

    #[test]
    fn command_line_flags_become_sources() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ConfigArgs,
        }
        let parse = |argv: &[&str]| <Cli as clap::Parser>::try_parse_from(argv);
        let argv = [
            "runnel",
            "--config",
            "s.properties",
            "--override",
            "a = 1",
            "--log-dirs",
            "/x",
        ];
        let env = [("RUNNEL_NODE_ID", "3"), ("HOME", "/root")].map(|(k, v)| (k.into(), v.into()));
        let sources = parse(&argv).expect("valid").config.sources(env);
        assert_eq!(sources.file, Some(PathBuf::from("s.properties")));
        assert_eq!(sources.overrides, pairs(&[("log.dirs", "/x"), ("a", "1")]));
        assert_eq!(sources.env, pairs(&[("RUNNEL_NODE_ID", "3")]));
        assert!(parse(&["runnel", "--override", "a"]).is_err());
    }
}
