//! The producer: `send` picks the partition (explicit, the key's murmur2 as
//! Kafka's default partitioner, or sticky for keyless records), appends the
//! record to its partition's batch and returns a future of where it landed;
//! a sender task ships batches when they fill `batch.size` or have waited
//! `linger.ms`, one Produce request per broker with a batch per partition.
//!
//! `buffer.memory` bounds the record bytes waiting: `send` waits up to
//! `max.block.ms` for room, then fails. A batch answered with a retriable
//! error (or lost with its connection) is sent again after
//! `retry.backoff.ms`, up to `retries` times within `delivery.timeout.ms`.
//!
//! `compression.type` compresses each batch (gzip, snappy, lz4, zstd).
//!
//! Idempotence (`enable.idempotence`, on by default with `acks=all`, as in
//! Kafka 3+): the producer gets an id from InitProducerId, numbers each
//! partition's batches, and keeps one batch per partition in flight, so a
//! resend after a lost answer is recognised by the broker and written once.
//! A batch that fails for good makes the producer take a new id.
//!
//! Not yet here: transactions.

mod accumulator;
mod config;
mod delivery;
mod sender;
mod transaction;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, Semaphore, TryAcquireError};

pub use accumulator::RecordMetadata;
pub use config::ProducerConfig;
pub use delivery::Delivery;

use crate::cluster::Cluster;
use crate::delivery::{DeliveryTime, entry_topic};
use crate::error::{ClientError, Result, error_chain};
use crate::partitioner::{StickyPartitioner, partition_for_key};
use accumulator::{Accumulator, Record, buffered_bytes, headers_bytes};

/// One record to send.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProducerRecord<'a> {
    pub topic: &'a str,
    /// Chosen by the partitioner when `None`.
    pub partition: Option<i32>,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Milliseconds since the epoch; now when `None`.
    pub timestamp: Option<i64>,
    /// The record's headers, in order.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Delayed delivery: the record goes to `topic`'s entry topic
    /// (`orders_delayed`) with the header saying when it is due, and the
    /// broker delivers it to `topic` then.
    pub delivery: Option<DeliveryTime>,
}

impl<'a> ProducerRecord<'a> {
    pub fn new(topic: &'a str, value: &'a [u8]) -> Self {
        Self {
            topic,
            value: Some(value),
            ..Self::default()
        }
    }

    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }

    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    pub fn headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }

    /// Delivered to the topic `delay_ms` after the broker takes it.
    pub fn delay_ms(mut self, delay_ms: i64) -> Self {
        self.delivery = Some(DeliveryTime::After(delay_ms));
        self
    }

    /// Delivered to the topic at `epoch_ms`.
    pub fn deliver_at(mut self, epoch_ms: i64) -> Self {
        self.delivery = Some(DeliveryTime::At(epoch_ms));
        self
    }
}

/// State shared by the producer handle and its sender task.
#[derive(Debug)]
struct Shared {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    accumulator: Mutex<Accumulator>,
    sticky: Mutex<StickyPartitioner>,
    /// Records sent but not yet answered.
    pending: AtomicUsize,
    /// Free bytes of `buffer.memory`, as permits.
    memory: Semaphore,
    /// The sender has work (a batch sealed, a flush, a close).
    work: Notify,
    /// `pending` reached zero.
    idle: Notify,
    closed: std::sync::atomic::AtomicBool,
    /// A transactional producer's transaction state.
    txn: Option<Mutex<transaction::TxnState>>,
    /// A record of the open transaction failed: it can only abort.
    txn_failed: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn accumulator(&self) -> MutexGuard<'_, Accumulator> {
        self.accumulator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `records` of `bytes` buffered bytes were answered.
    fn delivered(&self, records: usize, bytes: usize) {
        self.memory.add_permits(bytes);
        if self.pending.fetch_sub(records, Ordering::AcqRel) == records {
            self.idle.notify_waiters();
        }
    }
}

/// A Kafka producer.
#[derive(Debug)]
pub struct Producer {
    shared: Arc<Shared>,
    sender: tokio::task::JoinHandle<()>,
}

impl Producer {
    /// Connects to the cluster and starts the sender task.
    pub async fn new(config: ProducerConfig) -> Result<Self> {
        config.validate()?;
        let cluster = Cluster::connect(&config.bootstrap_servers, &config.client_id).await?;
        let memory = Semaphore::new(config.buffer_memory.min(Semaphore::MAX_PERMITS));
        let mut accumulator = if config.idempotent() {
            Accumulator::idempotent()
        } else {
            Accumulator::default()
        };
        accumulator.transactional = config.transactional_id.is_some();
        let txn = config
            .transactional_id
            .as_ref()
            .map(|_| Mutex::new(transaction::TxnState::default()));
        let shared = Arc::new(Shared {
            memory,
            cluster,
            config,
            accumulator: Mutex::new(accumulator),
            sticky: Mutex::new(StickyPartitioner::default()),
            pending: AtomicUsize::new(0),
            work: Notify::new(),
            idle: Notify::new(),
            closed: Default::default(),
            txn,
            txn_failed: Default::default(),
        });
        let sender = tokio::spawn(sender::run(Arc::clone(&shared)));
        Ok(Self { shared, sender })
    }

    /// Queues `record`; the returned future resolves once the broker has
    /// answered for it (at once with offset -1 under `acks=0`).
    pub async fn send(&self, record: ProducerRecord<'_>) -> Result<Delivery> {
        let shared = &self.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(ClientError::ProducerClosed);
        }
        // A delayed record goes to the entry topic, with one more header.
        let entry;
        let mut time_buf = [0; 20];
        let delivery_header;
        let with_delivery: Vec<(&str, &[u8])>;
        let (topic_name, headers) = match record.delivery {
            None => (record.topic, record.headers),
            Some(time) => {
                entry = entry_topic(record.topic);
                delivery_header = (time.header_name(), time.header_value(&mut time_buf));
                with_delivery = record
                    .headers
                    .iter()
                    .copied()
                    .chain(std::iter::once(delivery_header))
                    .collect();
                (entry.as_str(), with_delivery.as_slice())
            }
        };
        let size = record.key.map_or(0, <[u8]>::len)
            + record.value.map_or(0, <[u8]>::len)
            + headers_bytes(headers);
        if size > shared.config.max_request_size {
            return Err(ClientError::RecordTooLarge {
                size,
                max: shared.config.max_request_size,
            });
        }
        let max_block = shared.config.max_block;
        // Known topics and free buffer memory are the common case: neither
        // reads the clock nor sets a timer. `blocked` is when send first
        // had to wait, for what is left of max.block.ms.
        let mut blocked = None;
        let topic = match shared.cluster.topic(topic_name) {
            Some(topic) => topic,
            None => {
                blocked = Some(Instant::now());
                tokio::time::timeout(max_block, self.wait_for_topic(topic_name))
                    .await
                    .map_err(|_| ClientError::MetadataTimeout {
                        topic: topic_name.to_string(),
                        max_block_ms: max_block.as_millis() as u64,
                    })??
            }
        };
        // Room in buffer.memory, waiting up to what is left of max.block.ms.
        let bytes = buffered_bytes(record.key, record.value) + headers_bytes(headers);
        let buffer_memory = shared.config.buffer_memory;
        let too_large = || ClientError::BufferTooSmall {
            size: bytes,
            buffer_memory,
        };
        let permits = u32::try_from(bytes).map_err(|_| too_large())?;
        if bytes > buffer_memory {
            return Err(too_large());
        }
        match shared.memory.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::Closed) => return Err(ClientError::ProducerClosed),
            Err(TryAcquireError::NoPermits) => {
                let left =
                    max_block.saturating_sub(blocked.map_or(Duration::ZERO, |t| t.elapsed()));
                match tokio::time::timeout(left, shared.memory.acquire_many(permits)).await {
                    Ok(Ok(permit)) => permit.forget(),
                    Ok(Err(_)) => return Err(ClientError::ProducerClosed),
                    Err(_) => {
                        return Err(ClientError::BufferFull {
                            buffer_memory,
                            max_block_ms: max_block.as_millis() as u64,
                        });
                    }
                }
            }
        }
        let partitions = topic.partitions();
        let partition = match (record.partition, record.key) {
            (Some(p), _) if (0..partitions).contains(&p) => p,
            (Some(p), _) => {
                return Err(ClientError::UnknownPartition {
                    topic: topic_name.to_string(),
                    partition: p,
                    partitions,
                });
            }
            (None, Some(key)) => partition_for_key(key, partitions),
            (None, None) => shared
                .sticky
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .partition(topic_name, partitions),
        };
        if shared.txn.is_some() {
            self.add_to_transaction(topic_name, partition).await?;
        }
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        shared.pending.fetch_add(1, Ordering::AcqRel);
        let (appended, delivery) = shared.accumulator().append(
            (topic_name, partition),
            Record {
                key: record.key,
                value: record.value,
                timestamp,
                headers,
            },
            shared.config.batch_size,
        );
        if appended.sealed && record.key.is_none() && record.partition.is_none() {
            shared
                .sticky
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .batch_completed(topic_name, partition, partitions);
        }
        // A sealed batch is ready, or a new one sets a linger deadline the
        // sender does not know of yet; otherwise it has nothing new to do.
        if appended.sealed || appended.opened {
            shared.work.notify_one();
        }
        Ok(delivery)
    }

    /// The topic's metadata, asking again every `retry.backoff.ms` while no
    /// broker answers or the topic is not there yet (the caller bounds the
    /// wait by `max.block.ms`).
    async fn wait_for_topic(&self, topic: &str) -> Result<Arc<crate::cluster::TopicInfo>> {
        loop {
            match self.shared.cluster.topic_or_fetch(topic, true).await {
                Ok(info) => return Ok(info),
                // The broker refused the topic (e.g. an invalid name).
                Err(err @ ClientError::Kafka { .. }) => return Err(err),
                Err(err) => {
                    tracing::debug!(topic, error = %error_chain(&err), "waiting for topic metadata");
                    tokio::time::sleep(self.shared.config.retry_backoff).await;
                }
            }
        }
    }

    /// Sends every queued record now and waits until each is answered.
    pub async fn flush(&self) {
        let shared = &self.shared;
        loop {
            let idle = shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if shared.pending.load(Ordering::Acquire) == 0 {
                return;
            }
            shared.accumulator().seal_all();
            shared.work.notify_one();
            idle.await;
        }
    }

    /// Flushes, then stops the sender task.
    pub async fn close(self) {
        self.flush().await;
        self.shared.closed.store(true, Ordering::Release);
        self.shared.work.notify_one();
        let _ = self.sender.await;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
