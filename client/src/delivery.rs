//! The names of Runnel's delayed delivery, for clients and tools: a delay
//! level is a topic with the configs [`DELAY_MS`] and [`TARGET`], named
//! `<target>_<delay>` (`orders_30s`) with the delay written as
//! [`parse_delay`] reads it. Moved records carry [`SOURCE_HEADER`] and
//! [`DUE_HEADER`].

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
}
