//! The topic configs of delayed delivery. A delay level has
//! `delivery.delay.ms` (how long after its append a record is moved) and
//! `delivery.target` (the topic it is moved to): both or neither. An entry
//! topic (any delay) has `delivery.levels` (the target's levels it hops
//! through), `delivery.target` and optionally `delivery.max.delay.ms`. A level topic stamps its batches with the
//! append time (`message.timestamp.type=LogAppendTime`, set for it when
//! missing; the records' own timestamps are kept and delivered), and its
//! logs must keep a record until it is moved: time retention at least the
//! delay plus [`RETENTION_MARGIN_MS`], no size retention, no compaction.

use std::collections::BTreeMap;

use runnel_log::LogConfig;
use runnel_log::config::TimestampType;
use thiserror::Error;

pub use runnel_client::delivery::{
    DEFAULT_MAX_DELIVERY_DELAY_MS, DELAY_MS, LEVELS, MAX_DELAY_MS, MAX_DELIVERY_DELAY, TARGET,
};
use runnel_client::delivery::{level_topic, parse_levels};

/// The longest `delivery.max.delay.ms` an entry topic may have: a year.
pub const MAX_ENTRY_DELAY_MS: i64 = 366 * 24 * 3_600_000;
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

/// An entry topic: its records hop through the target's levels until their
/// own due time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryConfig {
    pub target: String,
    /// The levels it asks for: (delay as written, ms), shortest first.
    pub levels: Vec<(String, i64)>,
    pub max_delay_ms: i64,
}

impl EntryConfig {
    /// The level topics of the entry: (name, delay ms), shortest first.
    pub fn level_topics(&self) -> impl Iterator<Item = (String, i64)> + '_ {
        self.levels
            .iter()
            .map(|(text, ms)| (level_topic(&self.target, text), *ms))
    }
}

/// What delayed delivery makes of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryConfig {
    Level(LevelConfig),
    Entry(EntryConfig),
}

impl DeliveryConfig {
    /// The delivery role `configs` give topic `topic`, if any; `log` is the
    /// topic's effective log settings, checked against it.
    pub fn from_configs(
        topic: &str,
        configs: &BTreeMap<String, String>,
        log: &LogConfig,
    ) -> Result<Option<Self>, LevelConfigError> {
        if !configs.contains_key(LEVELS) {
            if configs.contains_key(MAX_DELIVERY_DELAY) {
                return Err(LevelConfigError::Incomplete {
                    present: MAX_DELIVERY_DELAY,
                    missing: LEVELS,
                });
            }
            return Ok(LevelConfig::from_configs(topic, configs, log)?.map(DeliveryConfig::Level));
        }
        if let Some(key) = configs.keys().find(|k| {
            is_delivery_key(k) && ![LEVELS, TARGET, MAX_DELIVERY_DELAY].contains(&k.as_str())
        }) {
            return Err(if key == DELAY_MS {
                LevelConfigError::LevelAndEntry
            } else {
                LevelConfigError::UnknownKey { key: key.clone() }
            });
        }
        let Some(target) = configs.get(TARGET) else {
            return Err(LevelConfigError::Incomplete {
                present: LEVELS,
                missing: TARGET,
            });
        };
        let target = checked_target(topic, target)?;
        let text = &configs[LEVELS];
        let levels = parse_levels(text).map_err(|err| LevelConfigError::Levels {
            value: text.clone(),
            reason: err.to_string(),
        })?;
        let max_delay_ms = match configs.get(MAX_DELIVERY_DELAY) {
            None => DEFAULT_MAX_DELIVERY_DELAY_MS,
            Some(value) => value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|ms| (1..=MAX_ENTRY_DELAY_MS).contains(ms))
                .ok_or_else(|| LevelConfigError::MaxDelay {
                    value: value.clone(),
                })?,
        };
        let entry = EntryConfig {
            target,
            levels,
            max_delay_ms,
        };
        if let Some((level, _)) = entry
            .level_topics()
            .find(|(name, _)| crate::topics::validate_name(name).is_err() || name == topic)
        {
            return Err(LevelConfigError::LevelName { level });
        }
        // An entry's records move at once: only the mover's lag counts.
        check_keeps_records(log, 0)?;
        Ok(Some(DeliveryConfig::Entry(entry)))
    }
}

fn checked_target(topic: &str, target: &str) -> Result<String, LevelConfigError> {
    let target = target.trim().to_string();
    if target == topic {
        return Err(LevelConfigError::TargetIsSelf { target });
    }
    if crate::topics::validate_name(&target).is_err() {
        return Err(LevelConfigError::TargetName { target });
    }
    Ok(target)
}

/// The log must keep a record `delay_ms` plus the margin, by time only.
fn check_keeps_records(log: &LogConfig, delay_ms: i64) -> Result<(), LevelConfigError> {
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
    Ok(())
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LevelConfigError {
    #[error(
        "{key} is not a delivery setting; known: {DELAY_MS}, {TARGET}, {LEVELS}, {MAX_DELIVERY_DELAY}"
    )]
    UnknownKey { key: String },
    #[error(
        "{DELAY_MS} and {LEVELS} are both set: a topic is either a delay level or an entry topic"
    )]
    LevelAndEntry,
    #[error("{LEVELS}={value:?} is not a list of delays: {reason}")]
    Levels { value: String, reason: String },
    #[error(
        "{MAX_DELIVERY_DELAY}={value:?} must be a whole number of ms from 1 to {MAX_ENTRY_DELAY_MS}"
    )]
    MaxDelay { value: String },
    #[error("level topic {level:?} would not be a valid topic name")]
    LevelName { level: String },
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
            return Err(if key == LEVELS {
                LevelConfigError::LevelAndEntry
            } else {
                LevelConfigError::UnknownKey { key: key.clone() }
            });
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
        let target = checked_target(topic, target)?;
        check_keeps_records(log, delay_ms)?;
        Ok(Some(Self { delay_ms, target }))
    }

    /// Adds `message.timestamp.type=LogAppendTime` to a level topic's
    /// configs when it is not set, so the stored configs say what the
    /// logs do.
    pub fn stamp_append_time(configs: &mut BTreeMap<String, String>) {
        if (configs.contains_key(DELAY_MS) || configs.contains_key(LEVELS))
            && !configs.contains_key(TIMESTAMP_TYPE)
        {
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

    /// A topic's configs, stamped as topic changes stamp them, and its log
    /// settings.
    fn stamped(pairs: &[(&str, &str)]) -> (BTreeMap<String, String>, LogConfig) {
        let mut configs = configs(pairs);
        LevelConfig::stamp_append_time(&mut configs);
        let mut log = LogConfig::default();
        for (k, v) in &configs {
            if !is_delivery_key(k) {
                log.set(k, v).expect("a log setting");
            }
        }
        (configs, log)
    }

    fn level(pairs: &[(&str, &str)]) -> Result<Option<LevelConfig>, LevelConfigError> {
        let (configs, log) = stamped(pairs);
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
            Err(LevelConfigError::LevelAndEntry)
        ));
        assert!(matches!(
            level(&[(DELAY_MS, "1000"), (TARGET, "t"), ("delivery.speed", "1")]),
            Err(LevelConfigError::UnknownKey { .. })
        ));
    }

    fn delivery(pairs: &[(&str, &str)]) -> Result<Option<DeliveryConfig>, LevelConfigError> {
        let (configs, log) = stamped(pairs);
        DeliveryConfig::from_configs("orders_delayed", &configs, &log)
    }

    #[test]
    fn an_entry_topic_names_its_levels_and_its_longest_delay() {
        let Ok(Some(DeliveryConfig::Entry(entry))) =
            delivery(&[(LEVELS, "1m,1s,30s"), (TARGET, "orders")])
        else {
            panic!("an entry topic");
        };
        assert_eq!(entry.max_delay_ms, DEFAULT_MAX_DELIVERY_DELAY_MS);
        assert_eq!(
            entry.level_topics().collect::<Vec<_>>(),
            vec![
                ("orders_1s".to_string(), 1_000),
                ("orders_30s".to_string(), 30_000),
                ("orders_1m".to_string(), 60_000)
            ]
        );
        assert!(matches!(
            delivery(&[
                (LEVELS, "1s"),
                (TARGET, "orders"),
                (MAX_DELIVERY_DELAY, "3600000")
            ]),
            Ok(Some(DeliveryConfig::Entry(EntryConfig {
                max_delay_ms: 3_600_000,
                ..
            })))
        ));
        assert!(matches!(
            delivery(&[(DELAY_MS, "1000"), (TARGET, "orders")]),
            Ok(Some(DeliveryConfig::Level(_)))
        ));
        assert_eq!(delivery(&[]), Ok(None));
        for (pairs, expected) in [
            (vec![(LEVELS, "1s")], "delivery.target is not"),
            (
                vec![(LEVELS, "1s,soon"), (TARGET, "orders")],
                "\"soon\" is not a delay",
            ),
            (
                vec![(LEVELS, "1s,1000ms"), (TARGET, "orders")],
                "listed twice",
            ),
            (
                vec![(LEVELS, "1s"), (TARGET, "orders"), (DELAY_MS, "5")],
                "either a delay level or an entry",
            ),
            (
                vec![
                    (LEVELS, "1s"),
                    (TARGET, "orders"),
                    (MAX_DELIVERY_DELAY, "0"),
                ],
                "delivery.max.delay.ms=\"0\"",
            ),
            (vec![(MAX_DELIVERY_DELAY, "5")], "delivery.levels is not"),
            (
                vec![(LEVELS, "1s"), (TARGET, "orders"), ("retention.ms", "1000")],
                "needs at least 86400000 ms",
            ),
        ] {
            let err = delivery(&pairs).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err} / {expected}");
        }
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
