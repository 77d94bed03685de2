//! `runnel consume`: prints each record of a topic's partitions on its own
//! line, as Kafka's `kafka-console-consumer`: `--from-beginning` starts at
//! the earliest offset when there is no committed one, `--max-messages N`
//! stops after N records, `--timeout-ms` when none came for that long, and
//! `--property print.key=true` prints `key<separator>value`. With `--group
//! G` it joins the group (its partitions are the ones the group assigns),
//! starts at G's committed offsets and commits what it printed.
//! `--isolation-level read_committed` leaves out open and aborted
//! transactions.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use runnel_client::{Consumer, ConsumerConfig, ConsumerRecord};

use super::name_value;

const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The broker(s) to bootstrap from, HOST:PORT[,HOST:PORT...]
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// The topic to read
    #[arg(long)]
    topic: String,
    /// Start at, and commit, this group's offsets
    #[arg(long)]
    group: Option<String>,
    /// Without a committed offset, start at the earliest record (else the end)
    #[arg(long)]
    from_beginning: bool,
    /// Stop after this many records
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Stop when no record came for this long
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Output: print.key=true|false, key.separator=SEP, print.offset=true|false
    #[arg(long, value_name = "NAME=VALUE")]
    property: Vec<String>,
    /// read_uncommitted (the default) or read_committed: leave out open and
    /// aborted transactions
    #[arg(long, value_name = "LEVEL")]
    isolation_level: Option<String>,
    /// A consumer setting by Kafka's name, e.g. fetch.max.wait.ms=100
    #[arg(long, value_name = "NAME=VALUE")]
    consumer_property: Vec<String>,
}

/// How records are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Output {
    print_key: bool,
    print_offset: bool,
    separator: String,
}

impl Output {
    fn from_properties(properties: &[String]) -> Result<Self> {
        let mut output = Self {
            print_key: false,
            print_offset: false,
            separator: "\t".into(),
        };
        let flag = |name: &str, value: &str| match value.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => bail!("--property {name}={value:?}: must be true or false"),
        };
        for property in properties {
            let (name, value) = name_value("--property", property)?;
            match name.as_str() {
                "print.key" => output.print_key = flag(&name, &value)?,
                "print.offset" => output.print_offset = flag(&name, &value)?,
                "key.separator" => output.separator = value,
                _ => bail!(
                    "--property {name}: unknown; known are print.key, print.offset and key.separator"
                ),
            }
        }
        Ok(output)
    }

    fn write(&self, out: &mut impl Write, record: &ConsumerRecord) -> std::io::Result<()> {
        if self.print_offset {
            write!(
                out,
                "Partition:{}\tOffset:{}\t",
                record.partition, record.offset
            )?;
        }
        if self.print_key {
            match &record.key {
                Some(key) => out.write_all(key)?,
                None => out.write_all(b"null")?,
            }
            out.write_all(self.separator.as_bytes())?;
        }
        match &record.value {
            Some(value) => out.write_all(value)?,
            None => out.write_all(b"null")?,
        }
        out.write_all(b"\n")
    }
}

pub fn run(args: ConsumeArgs) -> Result<()> {
    let output = Output::from_properties(&args.property)?;
    let mut config = ConsumerConfig::new(&args.bootstrap_server);
    if args.from_beginning {
        config = config.set("auto.offset.reset", "earliest")?;
    }
    if let Some(group) = &args.group {
        // Commits follow what was printed, not a timer.
        config = config
            .set("group.id", group)?
            .set("enable.auto.commit", "false")?;
    }
    if let Some(level) = &args.isolation_level {
        config = config.set("isolation.level", level)?;
    }
    for property in &args.consumer_property {
        let (name, value) = name_value("--consumer-property", property)?;
        config = config.set(&name, &value)?;
    }
    super::runtime()?.block_on(consume(config, &args, &output))
}

async fn consume(config: ConsumerConfig, args: &ConsumeArgs, output: &Output) -> Result<()> {
    let grouped = config.group_id.is_some();
    let mut consumer = Consumer::new(config)
        .await
        .context("cannot start the consumer")?;
    let partitions = consumer
        .partitions_of(&args.topic)
        .await
        .with_context(|| format!("cannot read topic {}", args.topic))?;
    if grouped {
        // A member of the group: it gets the partitions the group assigns.
        consumer.subscribe(&[args.topic.as_str()])?;
    } else {
        let assigned: Vec<(&str, i32)> = partitions
            .iter()
            .map(|&p| (args.topic.as_str(), p))
            .collect();
        consumer.assign(&assigned).await?;
    }
    let stdout = std::io::stdout();
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        if args.max_messages.is_some_and(|max| printed >= max) {
            break;
        }
        if args
            .timeout_ms
            .is_some_and(|ms| last_record.elapsed() >= Duration::from_millis(ms))
        {
            break;
        }
        let records = tokio::select! {
            _ = &mut interrupted => break,
            records = consumer.poll(POLL) => records?,
        };
        if !records.is_empty() {
            last_record = Instant::now();
        }
        let mut out = stdout.lock();
        let mut unprinted = std::collections::HashSet::new();
        for record in &records {
            if args.max_messages.is_some_and(|max| printed >= max) {
                // Commit no further than what was printed: each partition
                // goes back to its first record not printed.
                if unprinted.insert(record.partition) {
                    consumer.seek(&record.topic, record.partition, record.offset);
                }
                continue;
            }
            output
                .write(&mut out, record)
                .context("cannot write to stdout")?;
            printed += 1;
        }
        out.flush().context("cannot write to stdout")?;
        drop(out);
        if grouped && !records.is_empty() {
            consumer.commit().await.context("cannot commit offsets")?;
        }
    }
    if grouped {
        consumer.commit().await.context("cannot commit offsets")?;
    }
    consumer.close().await;
    eprintln!("Processed a total of {printed} messages");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_print_as_the_console_consumer_prints_them() {
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 0,
            key: None,
            value: Some(bytes::Bytes::from_static(b"v")),
            headers_data: bytes::Bytes::new(),
            headers_count: 0,
        };
        let output = Output::from_properties(&["print.key=true".into()]).expect("valid");
        let mut out = Vec::new();
        output.write(&mut out, &record).expect("write");
        assert_eq!(out, b"null\tv\n");
        let output = Output::from_properties(&["print.offset=true".into()]).expect("valid");
        let mut out = Vec::new();
        output.write(&mut out, &record).expect("write");
        assert_eq!(out, b"Partition:2\tOffset:7\tv\n");
        let err = Output::from_properties(&["print.value=false".into()]).expect_err("unknown");
        assert!(err.to_string().contains("unknown"), "{err}");
    }
}
