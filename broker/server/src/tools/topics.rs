//! `runnel topics`: kafka-topics' create, delete, describe, list and alter
//! (grow partitions, set configs) through runnel-client's admin client.

use anyhow::{Context, Result, bail};
use clap::Args;
use runnel_client::Admin;

use super::name_value;
use runnel_client::delivery::{
    DEFAULT_MAX_DELIVERY_DELAY_MS, LEVELS, TARGET, entry_topic, level_topic, parse_delay,
};

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["create", "delete", "describe", "list", "alter"])))]
pub struct TopicsArgs {
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// Create --topic
    #[arg(long)]
    create: bool,
    /// Delete --topic
    #[arg(long)]
    delete: bool,
    /// Describe --topic, or every topic
    #[arg(long)]
    describe: bool,
    /// List the topics' names
    #[arg(long)]
    list: bool,
    /// Grow --topic to --partitions and/or set --config overrides
    #[arg(long)]
    alter: bool,
    #[arg(long)]
    topic: Option<String>,
    /// Partitions (create: the broker's num.partitions when left out)
    #[arg(long, value_name = "N")]
    partitions: Option<i32>,
    #[arg(long, value_name = "R")]
    replication_factor: Option<i16>,
    /// A topic config override, e.g. cleanup.policy=compact
    #[arg(long, value_name = "NAME=VALUE")]
    config: Vec<String>,
    /// With --create: also create the topic's entry topic for delayed
    /// delivery and its delay levels, e.g. 30s,30m,1h makes orders_delayed
    /// (records produced to it with runnel-deliver-at or runnel-delay-ms
    /// reach orders at that time) and the levels orders_30s, orders_30m and
    /// orders_1h (records produced to one reach orders that long after)
    #[arg(
        long,
        value_name = "DELAYS",
        value_delimiter = ',',
        requires = "create"
    )]
    delay_levels: Vec<String>,
}

pub fn run(args: TopicsArgs) -> Result<()> {
    super::runtime()?.block_on(topics(args))
}

async fn topics(args: TopicsArgs) -> Result<()> {
    let admin = Admin::new(&args.bootstrap_server, "runnel-topics")
        .await
        .context("cannot reach the cluster")?;
    let configs = args
        .config
        .iter()
        .map(|c| name_value("--config", c))
        .collect::<Result<Vec<_>>>()?;
    let topic = || args.topic.as_deref().context("this action needs --topic");
    let levels = args
        .delay_levels
        .iter()
        .map(|delay| {
            parse_delay(delay)
                .map(|ms| (delay.clone(), ms))
                .with_context(|| format!("--delay-levels: {delay:?} is not a delay"))
        })
        .collect::<Result<Vec<_>>>()?;
    if args.create {
        let name = topic()?;
        admin
            .create_topic(
                name,
                args.partitions.unwrap_or(-1),
                args.replication_factor.unwrap_or(-1),
                &configs,
            )
            .await
            .with_context(|| format!("cannot create topic {name}"))?;
        println!("Created topic {name}.");
        if !levels.is_empty() {
            // The broker creates the entry's levels with it.
            let entry = entry_topic(name);
            let entry_configs = [
                (LEVELS.to_string(), args.delay_levels.join(",")),
                (TARGET.to_string(), name.to_string()),
            ];
            admin
                .create_topic(
                    &entry,
                    args.partitions.unwrap_or(-1),
                    args.replication_factor.unwrap_or(-1),
                    &entry_configs,
                )
                .await
                .with_context(|| format!("cannot create entry topic {entry}"))?;
            println!(
                "Created entry topic {entry} (any delay up to {} ms to {name}).",
                DEFAULT_MAX_DELIVERY_DELAY_MS
            );
            for (delay, ms) in levels {
                let level = level_topic(name, &delay);
                println!("Created delay level {level} ({ms} ms to {name}).");
            }
        }
    } else if args.delete {
        let name = topic()?;
        admin
            .delete_topic(name)
            .await
            .with_context(|| format!("cannot delete topic {name}"))?;
    } else if args.alter {
        let name = topic()?;
        if args.partitions.is_none() && configs.is_empty() {
            bail!("--alter needs --partitions or --config");
        }
        if let Some(count) = args.partitions {
            admin
                .create_partitions(name, count)
                .await
                .with_context(|| format!("cannot grow topic {name} to {count} partitions"))?;
        }
        if !configs.is_empty() {
            admin
                .alter_configs(name, &configs)
                .await
                .with_context(|| format!("cannot change the configs of topic {name}"))?;
        }
    } else if args.list {
        for t in admin.list_topics().await? {
            println!("{}", t.name);
        }
    } else {
        let all = admin.list_topics().await?;
        let wanted: Vec<_> = all
            .iter()
            .filter(|t| args.topic.as_deref().is_none_or(|name| t.name == name))
            .collect();
        if let (Some(name), true) = (&args.topic, wanted.is_empty()) {
            bail!("topic {name} does not exist");
        }
        for t in wanted {
            let overrides: Vec<String> = admin
                .describe_configs(&t.name)
                .await?
                .into_iter()
                .filter(|c| c.is_override)
                .map(|c| format!("{}={}", c.name, c.value.unwrap_or_default()))
                .collect();
            println!(
                "Topic: {}\tPartitionCount: {}\tReplicationFactor: 1\tConfigs: {}",
                t.name,
                t.partitions.len(),
                overrides.join(",")
            );
            for (partition, leader) in &t.partitions {
                println!(
                    "\tTopic: {}\tPartition: {partition}\tLeader: {leader}\tReplicas: {leader}\tIsr: {leader}",
                    t.name
                );
            }
        }
    }
    Ok(())
}
