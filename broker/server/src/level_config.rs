//! A delay level's topic configs: `delivery.delay.ms` (how long after its
//! append a record is moved) and `delivery.target` (the topic it is moved
//! to). Both or neither are set. A level topic stamps its batches with the
//! append time (`message.timestamp.type=LogAppendTime`, set for it when
//! missing; the records' own timestamps are kept and delivered), and its
//! logs must keep a record until it is moved: time retention at least the
//! delay plus [`RETENTION_MARGIN_MS`], no size retention, no compaction.

use std::collections::BTreeMap;

use runnel_log::LogConfig;
use runnel_log::config::TimestampType;
use thiserror::Error;

pub use runnel_client::delivery::{DELAY_MS, MAX_DELAY_MS, TARGET};
const TIMESTAMP_TYPE: &str = "message.timestamp.type";

/// How long past its due time a record must still be in its level topic:
/// room for the mover to fall behind (a broker down for a while) without
/// retention deleting what it has not moved.
pub const RETENTION_MARGIN_MS: i64 = 24 * 3_600_000;

/// The topic configs that belong to delayed delivery, not to the log.
pub fn is_delivery_key(key: &str) -> bool {
    key.starts_with("delivery.")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelConfig {
    pub delay_ms: i64,
    pub target: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LevelConfigError {
    #[error("{key} is not a delivery setting; known: {DELAY_MS}, {TARGET}")]
    UnknownKey { key: String },
    #[error("{DELAY_MS}={value:?} is not a delay: {reason}")]
    Delay { value: String, reason: String },
    #[error("{present} is set but {missing} is not: a delay level needs both")]
    Incomplete {
        present: &'static str,
        missing: &'static str,
    },
    #[error("{TARGET}={target:?} is the level topic itself")]
    TargetIsSelf { target: String },
    #[error("{TARGET}={target:?} is not a valid topic name")]
    TargetName { target: String },
    #[error(
        "a delay level must stamp append times; {TIMESTAMP_TYPE}={value} would make its records fall due out of order"
    )]
    TimestampType { value: String },
    #[error(
        "retention.ms={retention_ms} would delete records before they are moved: a level of {delay_ms} ms needs at least {needed} ms (or -1)"
    )]
    Retention {
        retention_ms: i64,
        delay_ms: i64,
        needed: i64,
    },
    #[error(
        "retention.bytes={0} would delete records before they are moved: a delay level keeps every record until it is moved (-1)"
    )]
    RetentionBytes(i64),
    #[error("cleanup.policy with compact would delete records before they are moved")]
    Compaction,
}

impl LevelConfig {
    /// The level a topic's configs make it, if any; `log` is the topic's
    /// effective log settings, checked against the delay.
    pub fn from_configs(
        topic: &str,
        configs: &BTreeMap<String, String>,
        log: &LogConfig,
    ) -> Result<Option<Self>, LevelConfigError> {
        if let Some(key) = configs
            .keys()
            .find(|k| is_delivery_key(k) && *k != DELAY_MS && *k != TARGET)
        {
            return Err(LevelConfigError::UnknownKey { key: key.clone() });
        }
        let (delay, target) = match (configs.get(DELAY_MS), configs.get(TARGET)) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(LevelConfigError::Incomplete {
                    present: DELAY_MS,
                    missing: TARGET,
                });
            }
            (None, Some(_)) => {
                return Err(LevelConfigError::Incomplete {
                    present: TARGET,
                    missing: DELAY_MS,
                });
            }
            (Some(delay), Some(target)) => (delay, target),
        };
        let delay_error = |reason: &str| LevelConfigError::Delay {
            value: delay.clone(),
            reason: reason.into(),
        };
        let delay_ms: i64 = delay
            .trim()
            .parse()
            .map_err(|_| delay_error("not an integer"))?;
        if delay_ms < 1 {
            return Err(delay_error("must be at least 1"));
        }
        if delay_ms > MAX_DELAY_MS {
            return Err(delay_error(&format!("must be at most {MAX_DELAY_MS}")));
        }
        let target = target.trim().to_string();
        if target == topic {
            return Err(LevelConfigError::TargetIsSelf { target });
        }
        if crate::topics::validate_name(&target).is_err() {
            return Err(LevelConfigError::TargetName { target });
        }
        if log.message_timestamp_type != TimestampType::LogAppendTime {
            return Err(LevelConfigError::TimestampType {
                value: "CreateTime".into(),
            });
        }
        let needed = delay_ms.saturating_add(RETENTION_MARGIN_MS);
        if log.retention_ms >= 0 && log.retention_ms < needed {
            return Err(LevelConfigError::Retention {
                retention_ms: log.retention_ms,
                delay_ms,
                needed,
            });
        }
        if log.retention_bytes >= 0 {
            return Err(LevelConfigError::RetentionBytes(log.retention_bytes));
        }
        if log.cleanup_policy.compact {
            return Err(LevelConfigError::Compaction);
        }
        Ok(Some(Self { delay_ms, target }))
    }

    /// Adds `message.timestamp.type=LogAppendTime` to a level topic's
    /// configs when it is not set, so the stored configs say what the
    /// logs do.
    pub fn stamp_append_time(configs: &mut BTreeMap<String, String>) {
        if configs.contains_key(DELAY_MS) && !configs.contains_key(TIMESTAMP_TYPE) {
            configs.insert(TIMESTAMP_TYPE.into(), "LogAppendTime".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn level(pairs: &[(&str, &str)]) -> Result<Option<LevelConfig>, LevelConfigError> {
        let mut configs = configs(pairs);
        LevelConfig::stamp_append_time(&mut configs);
        let mut log = LogConfig::default();
        for (k, v) in &configs {
            if !is_delivery_key(k) {
                log.set(k, v).expect("a log setting");
            }
        }
        LevelConfig::from_configs("orders_30s", &configs, &log)
    }

    #[test]
    fn a_level_needs_a_delay_and_a_target() {
        assert_eq!(level(&[]), Ok(None));
        assert_eq!(
            level(&[(DELAY_MS, "30000"), (TARGET, "orders")]),
            Ok(Some(LevelConfig {
                delay_ms: 30_000,
                target: "orders".into()
            }))
        );
        assert!(matches!(
            level(&[(DELAY_MS, "30000")]),
            Err(LevelConfigError::Incomplete {
                missing: TARGET,
                ..
            })
        ));
        assert!(matches!(
            level(&[(TARGET, "orders")]),
            Err(LevelConfigError::Incomplete {
                missing: DELAY_MS,
                ..
            })
        ));
        assert!(matches!(
            level(&[(DELAY_MS, "soon"), (TARGET, "orders")]),
            Err(LevelConfigError::Delay { .. })
        ));
        assert!(matches!(
            level(&[(DELAY_MS, "0"), (TARGET, "orders")]),
            Err(LevelConfigError::Delay { .. })
        ));
        assert!(matches!(
            level(&[(DELAY_MS, "1000"), (TARGET, "orders_30s")]),
            Err(LevelConfigError::TargetIsSelf { .. })
        ));
        assert!(matches!(
            level(&[(DELAY_MS, "1000"), (TARGET, "a b")]),
            Err(LevelConfigError::TargetName { .. })
        ));
        assert!(matches!(
            level(&[(DELAY_MS, "1000"), (TARGET, "t"), ("delivery.levels", "1s")]),
            Err(LevelConfigError::UnknownKey { .. })
        ));
    }

    #[test]
    fn configs_that_would_lose_undelivered_records_are_refused() {
        let base = [(DELAY_MS, "3600000"), (TARGET, "orders")];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            level(&pairs)
        };
        let err = with(("retention.ms", "7200000")).expect_err("too short");
        assert!(
            err.to_string().contains("needs at least 90000000 ms"),
            "{err}"
        );
        assert!(with(("retention.ms", "-1")).is_ok());
        assert!(with(("retention.ms", "90000000")).is_ok());
        assert_eq!(
            with(("retention.bytes", "1000000")),
            Err(LevelConfigError::RetentionBytes(1_000_000))
        );
        assert_eq!(
            with(("cleanup.policy", "compact,delete")),
            Err(LevelConfigError::Compaction)
        );
        assert!(matches!(
            with(("message.timestamp.type", "CreateTime")),
            Err(LevelConfigError::TimestampType { .. })
        ));
    }
}
