//! The consumer's settings, by Kafka's names and with Kafka's defaults.

use std::time::Duration;

use crate::error::{ClientError, Result};

/// The assignors `partition.assignment.strategy` may name.
const ASSIGNORS: [&str; 4] = ["range", "roundrobin", "sticky", "cooperative-sticky"];

/// Where a partition without a committed offset starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail instead.
    None,
}

/// Which records a consumer reads (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Everything written, including open and aborted transactions.
    ReadUncommitted,
    /// Only up to the last stable offset, without aborted transactions.
    ReadCommitted,
}

impl IsolationLevel {
    /// The value Fetch and ListOffsets carry.
    pub fn wire(self) -> i8 {
        match self {
            Self::ReadUncommitted => 0,
            Self::ReadCommitted => 1,
        }
    }
}

/// Consumer settings; build with [`ConsumerConfig::new`] and
/// [`ConsumerConfig::set`], which take Kafka's keys and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// `client.id`.
    pub client_id: String,
    /// `group.id`: committed offsets are read and written for this group.
    pub group_id: Option<String>,
    /// `auto.offset.reset` (latest).
    pub auto_offset_reset: OffsetReset,
    /// `fetch.min.bytes` (1).
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms` (500).
    pub fetch_max_wait: Duration,
    /// `fetch.max.bytes` (52428800).
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes` (1048576).
    pub max_partition_fetch_bytes: i32,
    /// `enable.auto.commit` (true): with a group, positions are committed
    /// every `auto.commit.interval.ms`, before a rebalance and at close.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (5000).
    pub auto_commit_interval: Duration,
    /// `session.timeout.ms` (45000).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (3000).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (300000): a member that does not poll for
    /// this long leaves its group.
    pub max_poll_interval: Duration,
    /// `isolation.level` (read_uncommitted).
    pub isolation_level: IsolationLevel,
    /// `partition.assignment.strategy`: assignor names in preference order
    /// (range, roundrobin; sticky and cooperative-sticky on request).
    pub assignors: Vec<String>,
}

impl ConsumerConfig {
    /// Whether the group rebalances incrementally: as in Java, only when
    /// every assignor named supports it (cooperative-sticky alone).
    pub fn cooperative(&self) -> bool {
        !self.assignors.is_empty() && self.assignors.iter().all(|a| a == "cooperative-sticky")
    }

    pub fn new(bootstrap_servers: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.to_string(),
            client_id: "runnel-consumer".into(),
            group_id: None,
            auto_offset_reset: OffsetReset::Latest,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            isolation_level: IsolationLevel::ReadUncommitted,
            assignors: vec!["range".into(), "roundrobin".into()],
        }
    }

    /// Sets one setting by Kafka's key; an unknown key or a bad value is an
    /// error naming both.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self> {
        let invalid = |reason: &str| ClientError::Config {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let number = |min: i64| -> Result<i32> {
            let n: i32 = value
                .trim()
                .parse()
                .map_err(|_| invalid("not an integer"))?;
            if i64::from(n) < min {
                return Err(invalid(&format!("must be at least {min}")));
            }
            Ok(n)
        };
        match key {
            "bootstrap.servers" => self.bootstrap_servers = value.to_string(),
            "client.id" => self.client_id = value.to_string(),
            "group.id" => self.group_id = Some(value.to_string()).filter(|g| !g.is_empty()),
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.trim() {
                    "earliest" => OffsetReset::Earliest,
                    "latest" => OffsetReset::Latest,
                    "none" => OffsetReset::None,
                    _ => return Err(invalid("must be earliest, latest or none")),
                }
            }
            "fetch.min.bytes" => self.fetch_min_bytes = number(0)?,
            "fetch.max.wait.ms" => self.fetch_max_wait = Duration::from_millis(number(0)? as u64),
            "fetch.max.bytes" => self.fetch_max_bytes = number(1)?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = number(1)?,
            "enable.auto.commit" => {
                self.enable_auto_commit = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("must be true or false")),
                }
            }
            "auto.commit.interval.ms" => {
                self.auto_commit_interval = Duration::from_millis(number(0)? as u64)
            }
            "session.timeout.ms" => self.session_timeout = Duration::from_millis(number(1)? as u64),
            "heartbeat.interval.ms" => {
                self.heartbeat_interval = Duration::from_millis(number(1)? as u64)
            }
            "max.poll.interval.ms" => {
                self.max_poll_interval = Duration::from_millis(number(1)? as u64)
            }
            "isolation.level" => {
                self.isolation_level = match value.trim() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => return Err(invalid("must be read_uncommitted or read_committed")),
                }
            }
            "partition.assignment.strategy" => {
                let names: Vec<String> = value
                    .split(',')
                    .map(|n| n.trim().to_ascii_lowercase())
                    .filter(|n| !n.is_empty())
                    .collect();
                if names.is_empty() || names.iter().any(|n| !ASSIGNORS.contains(&n.as_str())) {
                    return Err(invalid(
                        "supported assignors are range, roundrobin, sticky and cooperative-sticky",
                    ));
                }
                self.assignors = names;
            }
            _ => return Err(invalid("unknown or not yet supported consumer setting")),
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_set_the_group_and_isolation_settings() {
        let config = ConsumerConfig::new("localhost:9092")
            .set("isolation.level", "read_committed")
            .and_then(|c| c.set("partition.assignment.strategy", "cooperative-sticky"))
            .expect("valid");
        assert_eq!(config.isolation_level, IsolationLevel::ReadCommitted);
        assert!(config.cooperative());
        // Java rebalances eagerly unless every assignor is cooperative.
        let mixed = config
            .set("partition.assignment.strategy", "range,cooperative-sticky")
            .expect("valid");
        assert!(!mixed.cooperative());
        let err = mixed
            .set("isolation.level", "committed")
            .expect_err("not a level");
        assert!(
            err.to_string().contains("isolation.level") && err.to_string().contains("committed"),
            "{err}"
        );
    }
}
