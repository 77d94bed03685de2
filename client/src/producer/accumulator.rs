//! Records waiting to be sent, batched per partition as Kafka's
//! `RecordAccumulator`: a partition's open batch takes records until the
//! next one would pass `batch.size`, then it is sealed; sealed batches and
//! open ones older than `linger.ms` are drained by the sender. Records are
//! encoded into the batch as they arrive, and each record's delivery
//! report is its batch's shared outcome: nothing is allocated per record.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::delivery::{BatchOutcome, Delivery};
use crate::error::{ClientError, Result};
use bytes::Bytes;
use runnel_protocol::BatchBuilder;
use runnel_protocol::batch::Compression;
use runnel_protocol::records::RecordsError;

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    pub partition: i32,
    /// -1 with `acks=0`, when the broker does not say.
    pub offset: i64,
}

/// Bytes a record counts against `buffer.memory`: its key and value and
/// a record's overhead.
pub(crate) fn buffered_bytes(key: Option<&[u8]>, value: Option<&[u8]>) -> usize {
    24 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len)
}

/// What a record's headers add to [`buffered_bytes`]: their names and
/// values, and a varint per length.
pub(crate) fn headers_bytes(headers: &[(&str, &[u8])]) -> usize {
    headers
        .iter()
        .map(|(name, value)| 10 + name.len() + value.len())
        .sum()
}

/// A batch for one partition and the callers waiting for its records.
#[derive(Debug)]
pub(crate) struct Batch {
    pub topic: String,
    pub partition: i32,
    pub builder: BatchBuilder,
    /// Records in the batch.
    pub records: usize,
    /// What its records' deliveries resolve to.
    pub outcome: Arc<BatchOutcome>,
    pub created: Instant,
    /// Times this batch was sent and answered with a retriable error.
    pub attempts: u32,
    /// Record bytes counted against `buffer.memory`.
    pub buffered: usize,
    /// The batch's bytes once encoded (kept for a resend).
    pub encoded: Option<Bytes>,
    /// An idempotent producer's id, epoch and the batch's first sequence
    /// number, given when the batch is first drained and kept for resends.
    pub sequence: Option<(i64, i16, i32)>,
    /// Part of a transaction (set when drained by a transactional producer).
    pub transactional: bool,
}

impl Drop for Batch {
    /// A batch dropped unanswered (the producer went away) fails its
    /// records rather than leaving them waiting.
    fn drop(&mut self) {
        if !self.outcome.is_finished() {
            self.outcome.failed(|| ClientError::ProducerClosed);
        }
    }
}

impl Batch {
    /// The batch as sent: built in place (or compressed) the first time,
    /// the same bytes on a resend.
    pub fn encode(&mut self, codec: Compression) -> Result<Bytes, RecordsError> {
        if let Some(bytes) = &self.encoded {
            return Ok(bytes.clone());
        }
        let mut builder = std::mem::replace(&mut self.builder, BatchBuilder::new(0));
        if let Some((producer_id, epoch, first_sequence)) = self.sequence {
            builder = builder.producer(producer_id, epoch, first_sequence);
        }
        if self.transactional {
            builder = builder.transactional();
        }
        let bytes = Bytes::from(builder.into_compressed(codec)?);
        self.encoded = Some(bytes.clone());
        Ok(bytes)
    }
}

/// A record as the accumulator takes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    pub headers: &'a [(&'a str, &'a [u8])],
}

#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    /// Open batches by topic, then partition (looked up by `&str`).
    open: HashMap<String, HashMap<i32, Batch>>,
    sealed: VecDeque<Batch>,
    /// Set for an idempotent producer.
    idempotence: Option<Idempotence>,
    /// A transactional producer: its batches are marked so, and its
    /// producer id comes from `init_transactions`, not from the sender.
    pub transactional: bool,
}

/// An idempotent producer's side of the accumulator: its id and epoch
/// (`None` until InitProducerId answered, and after a reset), the next
/// sequence number of each partition, the first sequences of each
/// partition's batches given a sequence but not answered for good, and of
/// those the ones on the wire now.
///
/// Up to `max.in.flight.requests.per.connection` (at most 5, the batches a
/// broker remembers per producer) are in flight. A batch is sent only when
/// every earlier unresolved batch of its partition is on the wire ahead of
/// it: a batch waiting to be retried holds back its partition's later
/// ones, so it cannot be overtaken by more than the broker remembers (it
/// would then be out of order for good). A retried batch goes back into
/// the queue ahead of its partition's later batches, and a later batch
/// refused as out of order while an earlier one is unresolved is retried
/// too, as Java's producer does.
#[derive(Debug, Default)]
struct Idempotence {
    producer: Option<(i64, i16)>,
    next_sequence: HashMap<(String, i32), i32>,
    unresolved: HashMap<(String, i32), std::collections::BTreeSet<i32>>,
    in_flight: HashMap<(String, i32), std::collections::BTreeSet<i32>>,
}

impl Idempotence {
    /// Whether a batch of `key` starting at `sequence` may go now: every
    /// earlier unresolved batch of the partition is on the wire.
    fn may_send(&self, key: &(String, i32), sequence: i32) -> bool {
        let Some(unresolved) = self.unresolved.get(key) else {
            return true;
        };
        let in_flight = self.in_flight.get(key);
        unresolved
            .range(..sequence)
            .all(|s| in_flight.is_some_and(|f| f.contains(s)))
    }
}

/// What an append did, for the caller's partitioner and wake-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    /// A batch of this partition was sealed (full): the sticky partitioner
    /// moves on, and the sender has work.
    pub sealed: bool,
    /// The record opened a batch: the sender has a new linger deadline.
    pub opened: bool,
}

impl Accumulator {
    /// An accumulator for an idempotent producer: batches are drained only
    /// once the producer id is set.
    pub fn idempotent() -> Self {
        Self {
            idempotence: Some(Idempotence::default()),
            ..Self::default()
        }
    }

    /// An idempotent producer without a producer id (at start, or after a
    /// batch failed for good) needs one before anything more is sent.
    pub fn needs_producer_id(&self) -> bool {
        self.idempotence
            .as_ref()
            .is_some_and(|i| i.producer.is_none())
    }

    /// The producer id and epoch to send with from now on; sequences start
    /// again at 0 (a new id has no history on the brokers).
    pub fn set_producer_id(&mut self, producer_id: i64, epoch: i16) {
        if let Some(idempotence) = &mut self.idempotence {
            idempotence.producer = Some((producer_id, epoch));
            // Batches still out under the old id go on unordered with the
            // new id's: the broker keeps their sequences apart.
            idempotence.next_sequence.clear();
            idempotence.unresolved.clear();
            idempotence.in_flight.clear();
        }
    }

    /// A batch failed for good: its sequence numbers may or may not have
    /// been written, so its producer id's sequence cannot go on; a new
    /// producer id is needed (as Java's producer bumps its epoch) unless
    /// the batch was sent under an older one.
    pub fn failed_for_good(&mut self, batch: &Batch) {
        self.resolved(batch);
        if let (Some(idempotence), Some((producer_id, _, _))) =
            (&mut self.idempotence, batch.sequence)
            && idempotence.producer.is_some_and(|(p, _)| p == producer_id)
        {
            idempotence.producer = None;
        }
    }

    /// The batch was answered for good (written or failed).
    pub fn resolved(&mut self, batch: &Batch) {
        self.landed(batch);
        if let (Some(idempotence), Some((_, _, sequence))) = (&mut self.idempotence, batch.sequence)
            && let Some(pending) = idempotence
                .unresolved
                .get_mut(&(batch.topic.clone(), batch.partition))
        {
            pending.remove(&sequence);
        }
    }

    /// The batch's request was answered (or failed): it is off the wire,
    /// resolved or waiting to be retried.
    pub fn landed(&mut self, batch: &Batch) {
        if let (Some(idempotence), Some((_, _, sequence))) = (&mut self.idempotence, batch.sequence)
            && let Some(in_flight) = idempotence
                .in_flight
                .get_mut(&(batch.topic.clone(), batch.partition))
        {
            in_flight.remove(&sequence);
        }
    }

    /// Whether an earlier batch of the same partition and producer id is
    /// still unresolved: then an OUT_OF_ORDER_SEQUENCE_NUMBER for this one
    /// only means it overtook that one, and it is retried.
    pub fn has_earlier_unresolved(&self, batch: &Batch) -> bool {
        let (Some(idempotence), Some((producer_id, _, sequence))) =
            (&self.idempotence, batch.sequence)
        else {
            return false;
        };
        idempotence.producer.is_some_and(|(p, _)| p == producer_id)
            && idempotence
                .unresolved
                .get(&(batch.topic.clone(), batch.partition))
                .is_some_and(|pending| pending.range(..sequence).next().is_some())
    }

    /// Adds a record to its partition's open batch, sealing that batch first
    /// when the record would not fit in `batch_size`; returns what happened
    /// and the record's delivery report. The clock is read only when a
    /// batch opens.
    pub fn append(
        &mut self,
        (topic, partition): (&str, i32),
        record: Record<'_>,
        batch_size: usize,
    ) -> (Appended, Delivery) {
        let record_bytes = buffered_bytes(record.key, record.value) + headers_bytes(record.headers);
        let mut sealed = false;
        if self
            .open
            .get(topic)
            .and_then(|p| p.get(&partition))
            .is_some_and(|b| {
                !b.builder.is_empty() && b.builder.size_bytes() + record_bytes > batch_size
            })
        {
            self.seal(topic, partition);
            sealed = true;
        }
        if !self.open.contains_key(topic) {
            self.open.insert(topic.to_string(), HashMap::new());
        }
        let Some(partitions) = self.open.get_mut(topic) else {
            // Not reached: the topic's map was just made.
            let outcome = BatchOutcome::new(partition);
            outcome.failed(|| ClientError::ProducerClosed);
            let appended = Appended {
                sealed,
                opened: false,
            };
            return (appended, Delivery::new(outcome, 0));
        };
        let opened = !partitions.contains_key(&partition);
        let batch = partitions.entry(partition).or_insert_with(|| Batch {
            topic: topic.to_string(),
            partition,
            builder: BatchBuilder::new(record.timestamp),
            records: 0,
            outcome: BatchOutcome::new(partition),
            created: Instant::now(),
            attempts: 0,
            buffered: 0,
            encoded: None,
            sequence: None,
            transactional: false,
        });
        batch.builder.push_with_headers(
            record.key,
            record.value,
            record.timestamp,
            (0, &[]),
            record.headers,
        );
        let delivery = Delivery::new(Arc::clone(&batch.outcome), batch.records as u32);
        batch.records += 1;
        batch.buffered += record_bytes;
        if batch.builder.size_bytes() >= batch_size {
            self.seal(topic, partition);
            sealed = true;
        }
        (Appended { sealed, opened }, delivery)
    }

    fn seal(&mut self, topic: &str, partition: i32) {
        if let Some(batch) = self.open.get_mut(topic).and_then(|p| p.remove(&partition)) {
            self.sealed.push_back(batch);
        }
    }

    /// Puts a batch back to be sent again, ahead of newer batches of its
    /// partition.
    pub fn retry(&mut self, batch: Batch) {
        let same = |b: &Batch| b.topic == batch.topic && b.partition == batch.partition;
        let sequence = batch.sequence.map(|(_, _, s)| s);
        // Ahead of the partition's later batches, behind its earlier
        // retries: sequences go out in order.
        let later = self.sealed.iter().position(|b| {
            same(b)
                && b.sequence
                    .map(|(_, _, s)| s)
                    .is_none_or(|s| Some(s) > sequence)
        });
        let earlier = self.sealed.iter().rposition(same);
        match (later, earlier) {
            (Some(at), _) => self.sealed.insert(at, batch),
            (None, Some(last)) => self.sealed.insert(last + 1, batch),
            (None, None) => self.sealed.push_front(batch),
        }
    }

    /// Takes every batch waiting here, open or sealed (an abort drops them).
    pub fn take_all(&mut self) -> Vec<Batch> {
        self.seal_all();
        self.sealed.drain(..).collect()
    }

    /// Seals every open batch (flush).
    pub fn seal_all(&mut self) {
        for partitions in self.open.values_mut() {
            self.sealed
                .extend(partitions.drain().map(|(_, batch)| batch));
        }
    }

    /// Seals the open batches that waited `linger`, and takes every sealed
    /// batch, oldest first; at most one per partition, so a partition's
    /// batches go out in order, one request at a time. Returns them and
    /// the time the next open batch's linger runs out.
    pub fn drain(&mut self, linger: Duration, now: Instant) -> (Vec<Batch>, Option<Instant>) {
        for partitions in self.open.values_mut() {
            let expired: Vec<i32> = partitions
                .iter()
                .filter(|(_, b)| now >= b.created + linger)
                .map(|(p, _)| *p)
                .collect();
            for partition in expired {
                if let Some(batch) = partitions.remove(&partition) {
                    self.sealed.push_back(batch);
                }
            }
        }
        let mut taken: Vec<Batch> = Vec::new();
        let mut kept = VecDeque::new();
        let waiting_for_id = self.needs_producer_id();
        while let Some(mut batch) = self.sealed.pop_front() {
            let busy = taken
                .iter()
                .any(|b| b.topic == batch.topic && b.partition == batch.partition)
                || waiting_for_id;
            if busy {
                kept.push_back(batch);
                continue;
            }
            if let Some(idempotence) = &mut self.idempotence
                && let Some((producer_id, epoch)) = idempotence.producer
            {
                let key = (batch.topic.clone(), batch.partition);
                let sequence = match batch.sequence {
                    Some((_, _, sequence)) => sequence,
                    None => idempotence.next_sequence.get(&key).copied().unwrap_or(0),
                };
                if !idempotence.may_send(&key, sequence) {
                    kept.push_back(batch);
                    continue;
                }
                if batch.sequence.is_none() {
                    let next = idempotence.next_sequence.entry(key.clone()).or_insert(0);
                    batch.sequence = Some((producer_id, epoch, *next));
                    idempotence
                        .unresolved
                        .entry(key.clone())
                        .or_default()
                        .insert(*next);
                    *next = runnel_protocol::batch::increment_sequence(*next, batch.records as i32);
                }
                idempotence
                    .in_flight
                    .entry(key)
                    .or_default()
                    .insert(sequence);
                batch.transactional = self.transactional;
            }
            taken.push(batch);
        }
        self.sealed = kept;
        let next = self
            .open
            .values()
            .flat_map(HashMap::values)
            .map(|b| b.created + linger)
            .min();
        (taken, next)
    }

    /// Whether any record waits here.
    pub fn is_empty(&self) -> bool {
        self.open.values().all(HashMap::is_empty) && self.sealed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(acc: &mut Accumulator, partition: i32, value: &[u8]) -> bool {
        let record = Record {
            key: None,
            value: Some(value),
            timestamp: 0,
            headers: &[],
        };
        acc.append(("t", partition), record, 200).0.sealed
    }

    #[test]
    fn a_batch_is_sealed_when_the_next_record_would_pass_batch_size() {
        let mut acc = Accumulator::default();
        let before = Instant::now();
        assert!(!append(&mut acc, 0, &[0; 50]));
        assert!(!append(&mut acc, 0, &[0; 50]));
        // 61 header + 2 x ~53 bytes: a third 50-byte record would pass 200.
        assert!(append(&mut acc, 0, &[0; 50]));
        let now = Instant::now();
        let linger = Duration::from_millis(5);
        let (batches, next) = acc.drain(linger, now);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].builder.len(), 2);
        assert_eq!(batches[0].records, 2);
        // The open batch's linger runs from when it opened.
        let next = next.expect("an open batch");
        assert!(next >= before + linger && next <= now + linger);
    }

    #[test]
    fn linger_seals_open_batches_and_drain_takes_one_per_partition() {
        let mut acc = Accumulator::default();
        append(&mut acc, 0, b"a");
        append(&mut acc, 1, b"b");
        let now = Instant::now();
        let linger = Duration::from_millis(5);
        assert!(acc.drain(linger, now).0.is_empty());
        let (batches, next) = acc.drain(linger, now + linger);
        assert_eq!(batches.len(), 2);
        assert_eq!(next, None);
        assert!(acc.is_empty());

        append(&mut acc, 0, b"c");
        acc.seal_all();
        append(&mut acc, 0, b"d");
        acc.seal_all();
        assert_eq!(
            acc.drain(linger, now).0.len(),
            1,
            "one batch of p0 at a time"
        );
        assert_eq!(acc.drain(linger, now).0.len(), 1);
    }
}
