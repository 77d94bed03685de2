//! `runnel groups`: kafka-consumer-groups' `--list` and `--describe`: for
//! each partition the group committed, its current offset, the log end
//! offset, the lag between them and the member that owns it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use clap::Args;
use runnel_client::Admin;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["list", "describe"])))]
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
    let group = args.group.as_deref().context("--describe needs --group")?;
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
