//! `runnel groups`: kafka-consumer-groups' `--list`, `--describe` (for each
//! partition the group committed: its current offset, the log end offset,
//! the lag between them and the member that owns it) and `--reset-offsets`
//! (to the earliest, the latest, a time or an offset; a dry run unless
//! `--execute`).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::Args;
use runnel_client::Admin;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["list", "describe", "reset_offsets"])))]
#[command(group(clap::ArgGroup::new("to").args(["to_earliest", "to_latest", "to_datetime", "to_offset"])))]
pub struct GroupsArgs {
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// List the groups
    #[arg(long)]
    list: bool,
    /// Describe --group: offsets, lag and members
    #[arg(long, requires = "group")]
    describe: bool,
    #[arg(long)]
    group: Option<String>,
    /// Move --group's offsets on --topic (the group must have no members)
    #[arg(long, requires_all = ["group", "topic", "to"])]
    reset_offsets: bool,
    #[arg(long)]
    topic: Option<String>,
    #[arg(long)]
    to_earliest: bool,
    #[arg(long)]
    to_latest: bool,
    /// YYYY-MM-DDTHH:mm:SS.sss, optionally with a zone (Z, +HH:MM, -HH:MM);
    /// UTC without one

    #[arg(long, value_name = "DATETIME")]
    to_datetime: Option<String>,
    #[arg(long, value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// Commit the new offsets (without it, only print the plan)
    #[arg(long)]
    execute: bool,
}

pub fn run(args: GroupsArgs) -> Result<()> {
    super::runtime()?.block_on(groups(args))
}

async fn groups(args: GroupsArgs) -> Result<()> {
    let admin = Admin::new(&args.bootstrap_server, "runnel-groups")
        .await
        .context("cannot reach the cluster")?;
    if args.list {
        for group in admin.list_groups().await? {
            println!("{}", group.group_id);
        }
        return Ok(());
    }
    let group = args.group.as_deref().context("this action needs --group")?;
    if args.reset_offsets {
        return reset_offsets(&admin, group, &args).await;
    }
    let described = admin
        .describe_group(group)
        .await
        .with_context(|| format!("cannot describe group {group}"))?;
    let offsets = admin.group_offsets(group).await?;
    let mut owner: BTreeMap<(String, i32), (&str, &str, &str)> = BTreeMap::new();
    for m in &described.members {
        for tp in &m.assignment {
            owner.insert(tp.clone(), (&m.member_id, &m.host, &m.client_id));
        }
    }
    let partitions: Vec<(String, i32)> = offsets.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let ends = admin.end_offsets(&partitions).await?;
    println!(
        "Consumer group '{group}' is {} with {} member(s).\n",
        described.state,
        described.members.len()
    );
    println!(
        "{:<20} {:<20} {:>9} {:>14} {:>14} {:>8} {:<40} {:<16} CLIENT-ID",
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST"
    );
    for ((topic, partition, offset), end) in offsets.iter().zip(ends) {
        let (member, host, client) = owner
            .get(&(topic.clone(), *partition))
            .copied()
            .unwrap_or(("-", "-", "-"));
        println!(
            "{group:<20} {topic:<20} {partition:>9} {offset:>14} {end:>14} {:>8} {member:<40} {host:<16} {client}",
            (end - offset).max(0)
        );
    }
    Ok(())
}

/// Kafka's `--reset-offsets`: prints the new offsets, commits them with
/// `--execute`.
async fn reset_offsets(admin: &Admin, group: &str, args: &GroupsArgs) -> Result<()> {
    let topic = args
        .topic
        .as_deref()
        .context("--reset-offsets needs --topic")?;
    let count = admin
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == topic)
        .with_context(|| format!("topic {topic} does not exist"))?
        .partitions
        .len() as i32;
    let partitions: Vec<(String, i32)> = (0..count).map(|p| (topic.to_string(), p)).collect();
    let targets: Vec<i64> = if let Some(offset) = args.to_offset {
        vec![offset; partitions.len()]
    } else {
        let timestamp = if args.to_earliest {
            -2
        } else if args.to_latest {
            -1
        } else {
            let text = args.to_datetime.as_deref().unwrap_or_default();
            parse_datetime(text).with_context(|| {
                format!(
                    "--to-datetime {text:?}: expected YYYY-MM-DDTHH:mm:SS.sss, optionally followed by Z, +HH:MM or -HH:MM"
                )
            })?
        };
        let found = admin.offsets_at(&partitions, timestamp).await?;
        if timestamp >= 0 {
            // No record at or after the time: the end of the partition.
            let ends = admin.end_offsets(&partitions).await?;
            found
                .into_iter()
                .zip(ends)
                .map(|(offset, end)| if offset < 0 { end } else { offset })
                .collect()
        } else {
            found
        }
    };
    println!(
        "{:<20} {:<20} {:>9} {:>14}",
        "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
    );
    let mut offsets = Vec::new();
    for ((topic, partition), offset) in partitions.iter().zip(targets) {
        println!("{group:<20} {topic:<20} {partition:>9} {offset:>14}");
        offsets.push((topic.clone(), *partition, offset));
    }
    if args.execute {
        admin
            .commit_group_offsets(group, &offsets)
            .await
            .with_context(|| format!("cannot reset the offsets of group {group} (is it empty?)"))?;
    } else {
        eprintln!("(a dry run: add --execute to commit these offsets)");
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:mm:SS[.sss][zone]` as milliseconds since the epoch. The
/// zone is `Z`, `+HH:MM`, `-HH:MM` (or without the colon), as Kafka's tool
/// reads it; without one the time is UTC (Kafka's tool takes the JVM's
/// zone there, which in a container is UTC as well).
fn parse_datetime(text: &str) -> Option<i64> {
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
