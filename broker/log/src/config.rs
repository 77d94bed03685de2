//! Per-log settings with Kafka's topic-level names and defaults. Parsed
//! once, at the edge, into [`LogConfig`]; the broker maps its `log.*`
//! settings onto these.

use crate::error::{LogError, Result};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What happens to old data: `cleanup.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

/// Whether records keep the producer's timestamp: `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Which replicas of a topic a reassignment throttle applies to:
/// `leader.replication.throttled.replicas` and
/// `follower.replication.throttled.replicas`, `partition:broker` pairs
/// or `*` for every replica (Kafka's format).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ThrottledReplicas {
    #[default]
    None,
    All,
    Listed(Vec<(i32, i32)>),
}

impl ThrottledReplicas {
    /// Whether broker `broker`'s replica of `partition` is throttled.
    pub fn contains(&self, partition: i32, broker: i32) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Listed(pairs) => pairs.contains(&(partition, broker)),
        }
    }

    /// The value as Kafka writes it.
    pub fn render(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::All => "*".into(),
            Self::Listed(pairs) => pairs
                .iter()
                .map(|(p, b)| format!("{p}:{b}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    fn parse(value: &str) -> std::result::Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::None);
        }
        if value == "*" {
            return Ok(Self::All);
        }
        value
            .split(',')
            .map(|pair| {
                let (p, b) = pair
                    .trim()
                    .split_once(':')
                    .ok_or_else(|| format!("{pair:?} is not partition:broker"))?;
                let number = |n: &str| {
                    n.trim()
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| format!("{pair:?} is not partition:broker"))
                };
                Ok((number(p)?, number(b)?))
            })
            .collect::<std::result::Result<Vec<_>, String>>()
            .map(Self::Listed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would pass this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's data spans this long.
    pub segment_ms: i64,
    /// `segment.index.bytes`: preallocated size of each index file.
    pub segment_index_bytes: usize,
    /// `index.interval.bytes`: bytes appended between index entries.
    pub index_interval_bytes: u64,
    /// `retention.ms`: delete segments older than this; -1 keeps forever.
    pub retention_ms: i64,
    /// `retention.bytes`: delete old segments past this size; -1 = no limit.
    pub retention_bytes: i64,
    /// `cleanup.policy`: delete, compact, or both.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones.
    pub delete_retention_ms: i64,
    /// `flush.messages`: fsync after this many messages; 1 fsyncs before
    /// every acknowledgement.
    pub flush_messages: u64,
    /// `flush.ms`: fsync when the oldest unflushed data is this old.
    pub flush_ms: i64,
    /// `file.delete.delay.ms`: time between renaming a segment `.deleted`
    /// and unlinking it.
    pub file_delete_delay_ms: i64,
    /// `max.message.bytes`: largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `min.insync.replicas`: `acks=all` writes are refused while the
    /// partition has fewer in-sync replicas.
    pub min_insync_replicas: i32,
    /// `unclean.leader.election.enable`: a replica out of the ISR may be
    /// elected leader when no in-sync one is left (losing what it lacks).
    pub unclean_leader_election_enable: bool,
    /// `leader.replication.throttled.replicas`: the replicas whose
    /// fetches this leader throttles while they are out of the ISR.
    pub leader_replication_throttled_replicas: ThrottledReplicas,
    /// `follower.replication.throttled.replicas`: the replicas that
    /// throttle their own fetches while they are out of the ISR.
    pub follower_replication_throttled_replicas: ThrottledReplicas,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * DAY_MS,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            delete_retention_ms: DAY_MS,
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            file_delete_delay_ms: 60_000,
            max_message_bytes: 1_048_588,
            message_timestamp_type: TimestampType::CreateTime,
            min_insync_replicas: 1,
            unclean_leader_election_enable: false,
            leader_replication_throttled_replicas: ThrottledReplicas::None,
            follower_replication_throttled_replicas: ThrottledReplicas::None,
        }
    }
}

impl LogConfig {
    /// Sets one topic-level setting by its Kafka name. Unknown names and bad
    /// values are errors that name the key and the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let invalid = |reason: &str| LogError::InvalidConfig {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let int = || {
            value
                .trim()
                .parse::<i64>()
                .map_err(|_| invalid("not an integer"))
        };
        let at_least = |min: i64| {
            int().and_then(|v| {
                if v >= min {
                    Ok(v)
                } else {
                    Err(invalid(&format!("must be at least {min}")))
                }
            })
        };
        match key {
            "segment.bytes" => {
                let v = at_least(14)?;
                if v > i32::MAX as i64 {
                    return Err(invalid(
                        "must fit a 32-bit file position (at most 2147483647)",
                    ));
                }
                self.segment_bytes = v as u64;
            }
            "segment.ms" => self.segment_ms = at_least(1)?,
            "segment.index.bytes" => {
                let v = at_least(4 * 1024)?;
                if v > i32::MAX as i64 {
                    return Err(invalid("must be at most 2147483647"));
                }
                self.segment_index_bytes = v as usize;
            }
            "index.interval.bytes" => self.index_interval_bytes = at_least(0)? as u64,
            "retention.ms" => self.retention_ms = at_least(-1)?,
            "retention.bytes" => self.retention_bytes = at_least(-1)?,
            "delete.retention.ms" => self.delete_retention_ms = at_least(0)?,
            "flush.messages" => self.flush_messages = at_least(1)? as u64,
            "flush.ms" => self.flush_ms = at_least(0)?,
            "file.delete.delay.ms" => self.file_delete_delay_ms = at_least(0)?,
            "max.message.bytes" => {
                let v = at_least(0)?;
                self.max_message_bytes = usize::try_from(v).map_err(|_| invalid("too large"))?;
            }
            "cleanup.policy" => {
                let mut policy = CleanupPolicy {
                    delete: false,
                    compact: false,
                };
                for part in value.split(',').map(str::trim) {
                    match part {
                        "delete" => policy.delete = true,
                        "compact" => policy.compact = true,
                        _ => return Err(invalid("expected delete, compact or delete,compact")),
                    }
                }
                self.cleanup_policy = policy;
            }
            "message.timestamp.type" => {
                self.message_timestamp_type = match value.trim() {
                    "CreateTime" => TimestampType::CreateTime,
                    "LogAppendTime" => TimestampType::LogAppendTime,
                    _ => return Err(invalid("expected CreateTime or LogAppendTime")),
                }
            }
            "min.insync.replicas" => {
                let v = at_least(1)?;
                self.min_insync_replicas = i32::try_from(v).map_err(|_| invalid("too large"))?;
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("expected true or false")),
                }
            }
            "leader.replication.throttled.replicas" => {
                self.leader_replication_throttled_replicas =
                    ThrottledReplicas::parse(value).map_err(|why| invalid(&why))?;
            }
            "follower.replication.throttled.replicas" => {
                self.follower_replication_throttled_replicas =
                    ThrottledReplicas::parse(value).map_err(|why| invalid(&why))?;
            }
            _ => return Err(invalid("unknown log setting")),
        }
        Ok(())
    }

    /// True when every append is fsynced before it is acknowledged.
    pub fn fsync_before_ack(&self) -> bool {
        self.flush_messages == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.segment_index_bytes, 10 << 20);
        assert_eq!(c.index_interval_bytes, 4096);
        assert_eq!(c.segment_ms, 604_800_000);
        assert_eq!(c.retention_ms, 604_800_000);
        assert_eq!(c.retention_bytes, -1);
        assert_eq!(c.max_message_bytes, 1_048_588);
        assert!(!c.fsync_before_ack());
    }

    #[test]
    fn throttled_replicas_take_kafkas_format() {
        let mut c = LogConfig::default();
        assert!(!c.leader_replication_throttled_replicas.contains(0, 1));
        c.set("leader.replication.throttled.replicas", "0:1, 2:3")
            .expect("pairs");
        let listed = &c.leader_replication_throttled_replicas;
        assert!(listed.contains(0, 1) && listed.contains(2, 3) && !listed.contains(0, 3));
        assert_eq!(listed.render(), "0:1,2:3");
        c.set("follower.replication.throttled.replicas", "*")
            .expect("all");
        assert!(c.follower_replication_throttled_replicas.contains(7, 9));
        let err = c
            .set("leader.replication.throttled.replicas", "0-1")
            .expect_err("not a pair");
        assert!(err.to_string().contains("0-1"), "{err}");
        assert!(
            c.set("leader.replication.throttled.replicas", "0:-1")
                .is_err()
        );
    }

    #[test]
    fn sets_known_keys_and_names_bad_ones() {
        let mut c = LogConfig::default();
        c.set("cleanup.policy", "compact,delete").expect("valid");
        assert!(c.cleanup_policy.compact && c.cleanup_policy.delete);
        c.set("flush.messages", "1").expect("valid");
        assert!(c.fsync_before_ack());
        let err = c.set("retention.ms", "soon").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid value \"soon\" for log config retention.ms: not an integer"
        );
        assert!(c.set("segment.bytes", "4294967296").is_err());
        assert!(c.set("no.such.key", "1").is_err());
    }
}
