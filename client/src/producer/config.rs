//! The producer's settings, by Kafka's names and with Kafka's defaults.

use std::time::Duration;

use runnel_protocol::batch::Compression;

use crate::error::{ClientError, Result};

/// Producer settings; build with [`ProducerConfig::new`] and
/// [`ProducerConfig::set`], which take Kafka's keys and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`: comma-separated `host:port`.
    pub bootstrap_servers: String,
    /// `client.id`.
    pub client_id: String,
    /// `acks`: 0, 1 or -1 (`all`, the default since Kafka 3.0).
    pub acks: i16,
    /// `batch.size`: bytes per partition batch before it is sent (16384).
    pub batch_size: usize,
    /// `linger.ms`: how long a batch waits for more records (5 ms, Kafka
    /// 4.0's default).
    pub linger: Duration,
    /// `request.timeout.ms` (30000): how long the broker may take.
    pub request_timeout: Duration,
    /// `max.request.size` (1048576): the largest record batch accepted.
    pub max_request_size: usize,
    /// `max.in.flight.requests.per.connection` (5).
    pub max_in_flight: usize,
    /// `buffer.memory` (32 MiB): record bytes waiting to be sent, at most.
    pub buffer_memory: usize,
    /// `max.block.ms` (60000): how long `send` waits for buffer room (or
    /// metadata) before it fails.
    pub max_block: Duration,
    /// `retries` (2147483647): resends of a batch after a retriable error.
    pub retries: u32,
    /// `retry.backoff.ms` (100): the wait before a resend.
    pub retry_backoff: Duration,
    /// `delivery.timeout.ms` (120000): from `send` to the final answer,
    /// resends included.
    pub delivery_timeout: Duration,
    /// `compression.type` (none): none, gzip, snappy, lz4 or zstd.
    pub compression: Compression,
    /// `enable.idempotence` as set; unset, it is on when the other settings
    /// allow it (`acks=all`, `retries` > 0, at most 5 requests in flight),
    /// as in Kafka 3+. See [`idempotent`](Self::idempotent).
    pub enable_idempotence: Option<bool>,
    /// `transactional.id`: set, the producer is transactional (and
    /// idempotent).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (60000): the coordinator aborts a
    /// transaction open longer.
    pub transaction_timeout: Duration,
}

impl ProducerConfig {
    pub fn new(bootstrap_servers: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.to_string(),
            client_id: "runnel-producer".into(),
            acks: -1,
            batch_size: 16_384,
            linger: Duration::from_millis(5),
            request_timeout: Duration::from_secs(30),
            max_request_size: 1_048_576,
            max_in_flight: 5,
            buffer_memory: 32 << 20,
            max_block: Duration::from_secs(60),
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(120),
            compression: Compression::None,
            enable_idempotence: None,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }

    /// Whether the producer is idempotent: asked for, or not set and the
    /// other settings allow it.
    pub fn idempotent(&self) -> bool {
        if self.transactional_id.is_some() {
            return true;
        }
        self.enable_idempotence
            .unwrap_or(self.acks == -1 && self.retries > 0 && self.max_in_flight <= 5)
    }

    /// Checks settings that only conflict together (Kafka's
    /// `ProducerConfig` checks): an explicit `enable.idempotence=true`
    /// needs `acks=all`, `retries` > 0 and at most 5 requests in flight.
    pub fn validate(&self) -> Result<()> {
        if let Some(id) = &self.transactional_id
            && self.enable_idempotence == Some(false)
        {
            return Err(ClientError::Config {
                key: "enable.idempotence".into(),
                value: "false".into(),
                reason: format!("transactional.id={id} needs an idempotent producer"),
            });
        }
        if self.enable_idempotence != Some(true) && self.transactional_id.is_none() {
            return Ok(());
        }
        let conflict = |key: &str, value: String, reason: &str| ClientError::Config {
            key: key.to_string(),
            value,
            reason: format!("an idempotent producer needs {reason}"),
        };
        if self.acks != -1 {
            return Err(conflict("acks", self.acks.to_string(), "acks=all"));
        }
        if self.retries == 0 {
            return Err(conflict("retries", "0".into(), "retries above 0"));
        }
        if self.max_in_flight > 5 {
            return Err(conflict(
                "max.in.flight.requests.per.connection",
                self.max_in_flight.to_string(),
                "at most 5 requests in flight",
            ));
        }
        Ok(())
    }

    /// Sets one setting by Kafka's key; an unknown key or a bad value is an
    /// error naming both.
    pub fn set(mut self, key: &str, value: &str) -> Result<Self> {
        let invalid = |reason: &str| ClientError::Config {
            key: key.to_string(),
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let number = |min: u64| -> Result<u64> {
            let n: u64 = value
                .trim()
                .parse()
                .map_err(|_| invalid("not a non-negative integer"))?;
            if n < min {
                return Err(invalid(&format!("must be at least {min}")));
            }
            Ok(n)
        };
        match key {
            "bootstrap.servers" => self.bootstrap_servers = value.to_string(),
            "client.id" => self.client_id = value.to_string(),
            "acks" => {
                self.acks = match value.trim() {
                    "all" | "-1" => -1,
                    "1" => 1,
                    "0" => 0,
                    _ => return Err(invalid("must be all, -1, 0 or 1")),
                }
            }
            "batch.size" => self.batch_size = number(0)? as usize,
            "linger.ms" => self.linger = Duration::from_millis(number(0)?),
            "request.timeout.ms" => self.request_timeout = Duration::from_millis(number(1)?),
            "max.request.size" => self.max_request_size = number(1)? as usize,
            "max.in.flight.requests.per.connection" => self.max_in_flight = number(1)? as usize,
            "buffer.memory" => self.buffer_memory = number(1)? as usize,
            "max.block.ms" => self.max_block = Duration::from_millis(number(0)?),
            "retries" => {
                self.retries = u32::try_from(number(0)?.min(i32::MAX as u64)).unwrap_or(u32::MAX)
            }
            "retry.backoff.ms" => self.retry_backoff = Duration::from_millis(number(0)?),
            "delivery.timeout.ms" => self.delivery_timeout = Duration::from_millis(number(1)?),
            "compression.type" => {
                self.compression = Compression::from_name(value.trim())
                    .ok_or_else(|| invalid("must be none, gzip, snappy, lz4 or zstd"))?
            }
            "transactional.id" => {
                self.transactional_id = Some(value.to_string()).filter(|v| !v.is_empty())
            }
            "transaction.timeout.ms" => {
                self.transaction_timeout = Duration::from_millis(number(1)?)
            }
            "enable.idempotence" => {
                self.enable_idempotence = Some(match value.trim() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("must be true or false")),
                })
            }
            _ => return Err(invalid("unknown or not yet supported producer setting")),
        }
        Ok(self)
    }

    /// `request.timeout.ms` as the Produce request's `timeout_ms`.
    pub(crate) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.request_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_names_and_defaults() {
        let c = ProducerConfig::new("b:9092");
        assert_eq!((c.acks, c.batch_size, c.max_in_flight), (-1, 16_384, 5));
        assert_eq!(c.linger, Duration::from_millis(5));
        let c = c
            .set("acks", "1")
            .and_then(|c| c.set("linger.ms", "20"))
            .and_then(|c| c.set("batch.size", "1000"))
            .expect("valid");
        assert_eq!((c.acks, c.batch_size), (1, 1000));
        assert_eq!(c.linger, Duration::from_millis(20));
    }

    #[test]
    fn bad_values_and_keys_name_themselves() {
        let err = ProducerConfig::new("b:9092")
            .set("acks", "2")
            .expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid setting acks=\"2\": must be all, -1, 0 or 1"
        );
        let err = ProducerConfig::new("b:9092")
            .set("linger.ms", "-1")
            .expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid setting linger.ms=\"-1\": not a non-negative integer"
        );
        let err = ProducerConfig::new("b:9092")
            .set("lingr.ms", "1")
            .expect_err("unknown");
        assert!(err.to_string().contains("unknown"), "{err}");
        let err = ProducerConfig::new("b:9092")
            .set("compression.type", "brotli")
            .expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid setting compression.type=\"brotli\": must be none, gzip, snappy, lz4 or zstd"
        );
    }

    #[test]
    fn idempotence_is_on_by_default_unless_the_settings_rule_it_out() {
        let c = ProducerConfig::new("b:9092");
        assert!(c.idempotent());
        assert!(c.validate().is_ok());
        let acks1 = c.clone().set("acks", "1").expect("valid");
        assert!(!acks1.idempotent(), "acks=1 turns the default off");
        let err = acks1
            .set("enable.idempotence", "true")
            .expect("valid alone")
            .validate()
            .expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "invalid setting acks=\"1\": an idempotent producer needs acks=all"
        );
        let off = c.set("enable.idempotence", "false").expect("valid");
        assert!(!off.idempotent());
    }
}
