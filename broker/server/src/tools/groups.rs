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
            runnel_client::datetime::parse_datetime(text).with_context(|| {
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
