//! Datetimes as Kafka's tools take them (`kafka-consumer-groups
//! --to-datetime`), for offset resets by time: `runnel groups` and the
//! operator's ConsumerGroup offset reset read them here.

/// `YYYY-MM-DDTHH:mm:SS[.sss][zone]` as milliseconds since the epoch. The
/// zone is `Z`, `+HH:MM`, `-HH:MM` (or without the colon), as Kafka's tool
/// reads it; without one the time is UTC (Kafka's tool takes the JVM's
/// zone there, which in a container is UTC as well).
pub fn parse_datetime(text: &str) -> Option<i64> {
    let (local, offset_minutes) = split_zone(text)?;
    Some(parse_utc(local)? - offset_minutes * 60_000)
}

/// The datetime without its zone suffix, and the zone's offset from UTC in
/// minutes (0 without a suffix).
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix('Z') {
        return Some((local, 0));
    }
    // A sign after the time part starts a zone (dates have '-' before 'T').
    let t = text.find('T')?;
    let Some(at) = text[t..].find(['+', '-']).map(|i| t + i) else {
        return Some((text, 0));
    };
    let zone = text[at + 1..].replace(':', "");
    if zone.len() != 4 || !zone.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = (
        zone[..2].parse::<i64>().ok()?,
        zone[2..].parse::<i64>().ok()?,
    );
    if hours > 18 || minutes > 59 {
        return None;
    }
    let sign = if text.as_bytes()[at] == b'-' { -1 } else { 1 };
    Some((&text[..at], sign * (hours * 60 + minutes)))
}

fn parse_utc(text: &str) -> Option<i64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, millis) = match time.split_once('.') {
        Some((hms, ms)) => (hms, ms.parse::<i64>().ok()?),
        None => (time, 0),
    };
    let mut t = hms.splitn(3, ':').map(str::parse::<i64>);
    let (hour, minute, second) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn datetimes_are_read_as_utc() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000"), Some(0));
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.000"),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            parse_datetime("2026-01-01T00:00:00"),
            Some(1_767_225_600_000)
        );
        assert_eq!(parse_datetime("2026-13-01T00:00:00"), None);
        assert_eq!(parse_datetime("yesterday"), None);
    }

    #[test]
    fn a_zone_suffix_shifts_to_utc() {
        let utc = parse_datetime("2026-01-01T00:00:00.000");
        assert_eq!(parse_datetime("2026-01-01T00:00:00.000Z"), utc);
        assert_eq!(
            parse_datetime("2026-01-01T01:30:00.000+01:30"),
            utc,
            "+01:30 is 90 minutes ahead of UTC"
        );
        assert_eq!(parse_datetime("2025-12-31T19:00:00.000-0500"), utc);
        assert_eq!(parse_datetime("2026-01-01T00:00:00+1"), None);
        assert_eq!(parse_datetime("2026-01-01T00:00:00+25:00"), None);
    }
}
