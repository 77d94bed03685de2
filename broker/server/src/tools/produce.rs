//! `runnel produce`: each line of stdin becomes a record, as Kafka's
//! `kafka-console-producer`. With `--property parse.key=true` a line is
//! `key<separator>value` (`key.separator`, a tab by default). Exits non-zero
//! when a record could not be delivered, saying which line and why.

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use clap::Args;
use runnel_client::{Producer, ProducerConfig, ProducerRecord};
use runnel_http::error_chain;

use super::name_value;
use runnel_client::datetime::parse_datetime;
use runnel_client::delivery::{DeliveryTime, parse_delay};

/// Records answered before more are read: bounds the lines held in memory.
const IN_FLIGHT: usize = 10_000;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// The broker(s) to bootstrap from, HOST:PORT[,HOST:PORT...]
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap_server: String,
    /// The topic to write to
    #[arg(long)]
    topic: String,
    /// Line parsing: parse.key=true|false, key.separator=SEP
    #[arg(long, value_name = "NAME=VALUE")]
    property: Vec<String>,
    /// A producer setting by Kafka's name, e.g. acks=all, linger.ms=5
    #[arg(long, value_name = "NAME=VALUE")]
    producer_property: Vec<String>,
    /// Deliver the records to --topic this long after they are written
    /// (30s, 1500ms, 2h), through its entry topic TOPIC_delayed, which
    /// `runnel topics --create --delay-levels ...` makes
    #[arg(long, value_name = "DELAY", conflicts_with = "deliver_at")]
    delay: Option<String>,
    /// Deliver the records to --topic at this time (epoch ms, or
    /// 2026-12-24T18:00:00Z), through its entry topic TOPIC_delayed
    #[arg(long, value_name = "TIME")]
    deliver_at: Option<String>,
}

/// How lines become records.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineFormat {
    parse_key: bool,
    separator: String,
}

impl LineFormat {
    fn from_properties(properties: &[String]) -> Result<Self> {
        let mut format = Self {
            parse_key: false,
            separator: "\t".into(),
        };
        for property in properties {
            let (name, value) = name_value("--property", property)?;
            match name.as_str() {
                "parse.key" => {
                    format.parse_key = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => bail!("--property parse.key={value:?}: must be true or false"),
                    }
                }
                "key.separator" if value.is_empty() => {
                    bail!("--property key.separator: must not be empty")
                }
                "key.separator" => format.separator = value,
                _ => bail!("--property {name}: unknown; known are parse.key and key.separator"),
            }
        }
        Ok(format)
    }

    /// The key and value of a line.
    fn split<'a>(&self, line: &'a str, number: usize) -> Result<(Option<&'a str>, &'a str)> {
        if !self.parse_key {
            return Ok((None, line));
        }
        match line.split_once(self.separator.as_str()) {
            Some((key, value)) => Ok((Some(key), value)),
            None => bail!(
                "line {number} has no key separator {:?}: {line:?}",
                self.separator
            ),
        }
    }
}

pub fn run(args: ProduceArgs) -> Result<()> {
    let format = LineFormat::from_properties(&args.property)?;
    let mut config = ProducerConfig::new(&args.bootstrap_server);
    for property in &args.producer_property {
        let (name, value) = name_value("--producer-property", property)?;
        config = config.set(&name, &value)?;
    }
    let delivery = match (&args.delay, &args.deliver_at) {
        (Some(delay), _) => Some(DeliveryTime::After(
            parse_delay(delay).with_context(|| format!("--delay {delay:?} is not a delay"))?,
        )),
        (None, Some(at)) => Some(DeliveryTime::At(
            at.parse::<i64>()
                .ok()
                .or_else(|| parse_datetime(at))
                .with_context(|| {
                    format!("--deliver-at {at:?} is neither epoch ms nor a time like 2026-12-24T18:00:00Z")
                })?,
        )),
        (None, None) => None,
    };
    super::runtime()?.block_on(produce(config, &args.topic, delivery, &format))
}

async fn produce(
    config: ProducerConfig,
    topic: &str,
    delivery: Option<DeliveryTime>,
    format: &LineFormat,
) -> Result<()> {
    let producer = Producer::new(config)
        .await
        .context("cannot start the producer")?;
    let (deliveries, mut answered) = tokio::sync::mpsc::channel(IN_FLIGHT);
    let checker = tokio::spawn(async move {
        let mut failed = 0usize;
        while let Some((number, delivery)) = answered.recv().await {
            if let Err(err) = delivery.await {
                eprintln!(
                    "runnel produce: line {number} was not delivered: {}",
                    error_chain(&err)
                );
                failed += 1;
            }
        }
        failed
    });
    let lines = std::io::stdin().lock().lines();
    let mut sent = 0usize;
    let mut result = Ok(());
    for (index, line) in lines.enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(err) => {
                result = Err(anyhow::Error::from(err).context("cannot read stdin"));
                break;
            }
        };
        let (key, value) = match format.split(&line, number) {
            Ok(parts) => parts,
            Err(err) => {
                result = Err(err);
                break;
            }
        };
        let mut record = ProducerRecord::new(topic, value.as_bytes());
        record.key = key.map(str::as_bytes);
        record.delivery = delivery;
        let delivery = producer
            .send(record)
            .await
            .with_context(|| format!("cannot send line {number}"))?;
        if deliveries.send((number, delivery)).await.is_err() {
            break;
        }
        sent += 1;
    }
    drop(deliveries);
    producer.close().await;
    let failed = checker.await.context("the delivery checker panicked")?;
    result?;
    if failed > 0 {
        bail!("{failed} of {sent} records were not delivered");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_the_key_separator() {
        let props = ["parse.key=true".to_string(), "key.separator=:".to_string()];
        let format = LineFormat::from_properties(&props).expect("valid");
        assert_eq!(format.split("k:v:w", 1).expect("split"), (Some("k"), "v:w"));
        let err = format.split("novalue", 3).expect_err("no separator");
        assert_eq!(
            err.to_string(),
            "line 3 has no key separator \":\": \"novalue\""
        );
        let plain = LineFormat::from_properties(&[]).expect("valid");
        assert_eq!(plain.split("a:b", 1).expect("split"), (None, "a:b"));
    }

    #[test]
    fn bad_properties_name_themselves() {
        let err = LineFormat::from_properties(&["parse.key=yes".into()]).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "--property parse.key=\"yes\": must be true or false"
        );
        let err = LineFormat::from_properties(&["print.key=true".into()]).expect_err("bad");
        assert!(err.to_string().contains("unknown"), "{err}");
        let err = LineFormat::from_properties(&["nonsense".into()]).expect_err("bad");
        assert_eq!(
            err.to_string(),
            "--property \"nonsense\": expected NAME=VALUE"
        );
    }
}
