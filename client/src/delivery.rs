//! The names of Runnel's delayed delivery, for clients and tools: a delay
//! level is a topic with the configs [`DELAY_MS`] and [`TARGET`], named
//! `<target>_<delay>` (`orders_30s`) with the delay written as
//! [`parse_delay`] reads it. Moved records carry [`SOURCE_HEADER`] and
//! [`DUE_HEADER`].
//!
//! Any delay: an entry topic (`orders_delayed`, [`entry_topic`]) has the
//! configs [`LEVELS`] and [`TARGET`]; a record produced to it with
//! [`DELIVER_AT_HEADER`] (epoch ms) or [`DELAY_HEADER`] (ms after its
//! append) hops through the target's levels like a timing wheel and
//! reaches the target at that time. [`DeliveryTime`] is what a producer
//! asks for.

use thiserror::Error;

/// How long after its append a level's record is moved, in ms.
pub const DELAY_MS: &str = "delivery.delay.ms";
/// The topic a level's records are moved to.
pub const TARGET: &str = "delivery.target";
/// The group whose committed offsets are the levels' move positions.
pub const DELIVERY_GROUP: &str = "__runnel-delivery";
/// Where a moved record came from: `<level>-<partition>@<offset>`.
pub const SOURCE_HEADER: &str = "runnel-delivery-source";
/// When a moved record was due: epoch ms in decimal.
pub const DUE_HEADER: &str = "runnel-delivery-due-ms";
/// The longest delay a level can have: 90 days.
pub const MAX_DELAY_MS: i64 = 90 * 24 * 3_600_000;
/// An entry topic's levels, as delays written for [`parse_delay`]:
/// `1s,5s,30s,1m,...`.
pub const LEVELS: &str = "delivery.levels";
/// The longest delay an entry topic takes, in ms.
pub const MAX_DELIVERY_DELAY: &str = "delivery.max.delay.ms";
/// [`MAX_DELIVERY_DELAY`] when not set: 7 days.
pub const DEFAULT_MAX_DELIVERY_DELAY_MS: i64 = 7 * 24 * 3_600_000;
/// When a record produced to an entry topic is due: epoch ms in decimal.
pub const DELIVER_AT_HEADER: &str = "runnel-deliver-at";
/// How long after its append a record produced to an entry topic is due:
/// ms in decimal.
pub const DELAY_HEADER: &str = "runnel-delay-ms";
/// What an entry topic's name adds to its target's.
pub const ENTRY_SUFFIX: &str = "_delayed";

/// When a record sent through an entry topic is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryTime {
    /// At this time, in ms since the epoch ([`DELIVER_AT_HEADER`]).
    At(i64),
    /// This many ms after the broker appends it ([`DELAY_HEADER`]).
    After(i64),
}

impl DeliveryTime {
    /// The header that says it.
    pub fn header_name(self) -> &'static str {
        match self {
            DeliveryTime::At(_) => DELIVER_AT_HEADER,
            DeliveryTime::After(_) => DELAY_HEADER,
        }
    }

    /// The header's value: the number in decimal, in `buf`.
    pub fn header_value(self, buf: &mut [u8; 20]) -> &[u8] {
        let (DeliveryTime::At(value) | DeliveryTime::After(value)) = self;
        let mut n = value.unsigned_abs();
        let mut at = buf.len();
        loop {
            at -= 1;
            buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if value < 0 {
            at -= 1;
            buf[at] = b'-';
        }
        &buf[at..]
    }
}

/// The entry topic of `target`: `orders_delayed`.
pub fn entry_topic(target: &str) -> String {
    format!("{target}{ENTRY_SUFFIX}")
}

/// An entry topic's levels as [`LEVELS`] lists them: each delay's text and
/// ms, shortest first, no delay twice.
pub fn parse_levels(text: &str) -> Result<Vec<(String, i64)>, DelayError> {
    let mut levels = Vec::new();
    for delay in text.split(',').map(str::trim) {
        let ms = parse_delay(delay)?;
        if levels.iter().any(|(_, other)| *other == ms) {
            return Err(DelayError {
                text: delay.to_string(),
                reason: "is listed twice".into(),
            });
        }
        levels.push((delay.to_string(), ms));
    }
    levels.sort_by_key(|(_, ms)| *ms);
    Ok(levels)
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{text:?} is not a delay: {reason}")]
pub struct DelayError {
    pub text: String,
    pub reason: String,
}

/// A delay written as level names write it: a whole number and a unit
/// (`500ms`, `30s`, `30m`, `1h`, `1d`), in ms.
pub fn parse_delay(text: &str) -> Result<i64, DelayError> {
    let invalid = |reason: &str| DelayError {
        text: text.to_string(),
        reason: reason.into(),
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: i64 = number
        .parse()
        .map_err(|_| invalid("expected a whole number and a unit: ms, s, m, h or d"))?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid("the unit must be ms, s, m, h or d")),
    };
    number
        .checked_mul(unit_ms)
        .filter(|d| (1..=MAX_DELAY_MS).contains(d))
        .ok_or_else(|| invalid(&format!("must be between 1 ms and {MAX_DELAY_MS} ms")))
}

/// The level topic of `target` for the delay written `delay`: `orders_30s`.
pub fn level_topic(target: &str, delay: &str) -> String {
    format!("{target}_{delay}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_read_as_the_level_names_write_them() {
        assert_eq!(parse_delay("500ms"), Ok(500));
        assert_eq!(parse_delay("30s"), Ok(30_000));
        assert_eq!(parse_delay("30m"), Ok(1_800_000));
        assert_eq!(parse_delay("1h"), Ok(3_600_000));
        assert_eq!(parse_delay("7d"), Ok(7 * 86_400_000));
        for bad in [
            "",
            "30",
            "s",
            "1.5h",
            "0s",
            "-1s",
            "1w",
            "99999999999999999d",
        ] {
            assert!(parse_delay(bad).is_err(), "{bad:?}");
        }
        assert_eq!(level_topic("orders", "30s"), "orders_30s");
    }

    #[test]
    fn levels_are_read_shortest_first_and_once() {
        assert_eq!(
            parse_levels("1m, 1s,30s").expect("levels"),
            vec![
                ("1s".to_string(), 1_000),
                ("30s".to_string(), 30_000),
                ("1m".to_string(), 60_000)
            ]
        );
        assert!(parse_levels("1s,1000ms").is_err());
        assert!(parse_levels("1s,,5s").is_err());
        assert!(parse_levels("").is_err());
        assert_eq!(entry_topic("orders"), "orders_delayed");
    }

    #[test]
    fn delivery_times_are_written_in_decimal() {
        let mut buf = [0; 20];
        assert_eq!(
            DeliveryTime::At(1_765_000_000_123).header_value(&mut buf),
            b"1765000000123"
        );
        assert_eq!(DeliveryTime::After(0).header_value(&mut buf), b"0");
        assert_eq!(DeliveryTime::After(-15).header_value(&mut buf), b"-15");
        assert_eq!(DeliveryTime::After(30_000).header_name(), DELAY_HEADER);
    }
}
