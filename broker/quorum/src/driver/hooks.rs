//! What the broker hooks into a running driver ([`DriverHooks`]): the feed
//! of committed entries it replays into its metadata image, and the
//! requests of other Kafka APIs arriving on the controller listener.
//!
//! # The committed feed
//!
//! [`Feed::deliver`] runs after each call into the core, with the core's
//! high watermark: it reads the entries between what it last sent and the
//! high watermark from the log and sends them, in log order, a run of at
//! most [`READ_ENTRIES`] per message.
//!
//! - Only whole entries below the high watermark go out (an entry whose
//!   last offset is at or past it waits), each once, none skipped: the
//!   feed keeps the offset after the last entry it sent.
//! - Committed entries are never truncated, so nothing sent is taken back;
//!   a truncation of the uncommitted tail does not concern the feed.
//! - At start the core knows no high watermark (0) until it hears from a
//!   leader or, alone, commits as one: entries already in the log go out
//!   then, from [`CommittedFeed::from`].
//! - The log is read on the driver's task (a page-cache read, as the
//!   core's own reads of it).

use bytes::Bytes;
use kafka_protocol::messages::RequestHeader;
use runnel_raft::{Entry, ReplicatedLog};
use tokio::sync::{mpsc, oneshot};

/// The most entries one read of the log takes and one message carries.
pub const READ_ENTRIES: usize = 256;

/// What the broker hooks into the driver (see
/// [`super::QuorumDriver::start_with_hooks`]); the default hooks nothing.
#[derive(Debug, Default)]
pub struct DriverHooks {
    /// Each run of newly committed entries, in log order, from
    /// [`CommittedFeed::from`]; [`runnel_raft::Payload::LeaderChange`]
    /// entries included (the broker skips them).
    pub committed: Option<CommittedFeed>,
    /// Requests of other Kafka APIs than the quorum's arriving on the
    /// controller listener. Without it the listener answers ApiVersions
    /// itself (the quorum's APIs) and closes a connection that sends
    /// anything else.
    pub controller_requests: Option<mpsc::Sender<ControllerRequest>>,
}

/// Where committed entries go, and from which offset.
#[derive(Debug)]
pub struct CommittedFeed {
    /// The first offset wanted: the broker's image offset + 1, or 0. The
    /// first entry sent is the one holding `from` (a batch boundary, when
    /// the image was built from whole batches). If `from` is below the
    /// log's start (its entries are in a snapshot), entries go out from
    /// the log's start, and the broker must load the snapshot first
    /// (snapshots are not loaded for it yet); the same holds if a fetched
    /// snapshot moves the log's start past what was sent.
    pub from: u64,
    /// Each run of committed entries, in order. Each
    /// [`runnel_raft::Payload::Data`] holds its whole record batch as
    /// stored (`__cluster_metadata`'s records). A closed receiver is not
    /// an error: the feed stops sending.
    pub sender: mpsc::UnboundedSender<Vec<Entry>>,
}

/// A request of a non-quorum Kafka API (ApiVersions, BrokerRegistration,
/// BrokerHeartbeat, CreateTopics...) that arrived on the controller
/// listener, for the broker to answer. Requests on one connection are
/// handed over one at a time, in order: the next is read once this one is
/// answered.
#[derive(Debug)]
pub struct ControllerRequest {
    pub header: RequestHeader,
    /// The request body, after the header.
    pub body: Bytes,
    /// The encoded response body (no size prefix, no response header); the
    /// listener frames it with the response header version of the
    /// request's API and version. Dropping the sender closes the
    /// connection.
    pub reply: oneshot::Sender<Bytes>,
}

/// The driver's side of a [`CommittedFeed`] (see the module doc).
#[derive(Debug)]
pub struct Feed {
    /// The offset the next entry sent holds.
    next: u64,
    sender: mpsc::UnboundedSender<Vec<Entry>>,
}

impl Feed {
    pub fn new(feed: CommittedFeed) -> Self {
        Feed {
            next: feed.from,
            sender: feed.sender,
        }
    }

    /// Sends the entries of `log` from the next one up to `high_watermark`
    /// (see the module doc).
    pub fn deliver(&mut self, log: &impl ReplicatedLog, high_watermark: u64) {
        if self.next >= high_watermark || self.sender.is_closed() {
            return;
        }
        let log_start_offset = log.log_start_offset();
        if self.next < log_start_offset {
            tracing::warn!(
                from = self.next,
                log_start_offset,
                "committed entries below the log start are in a snapshot; the feed goes on from the log start"
            );
            self.next = log_start_offset;
        }
        while self.next < high_watermark {
            let mut run = Vec::new();
            for entry in log.read(self.next, READ_ENTRIES) {
                if entry.next_offset() > high_watermark {
                    break;
                }
                // The entry holding `next` may start below it (a `from`
                // inside a batch); one ending at or below it was sent.
                if entry.next_offset() > self.next {
                    self.next = entry.next_offset();
                    run.push(entry);
                }
            }
            if run.is_empty() {
                // Below the high watermark the log holds whole entries, so
                // only a failed read lands here; the next call tries again.
                tracing::warn!(
                    from = self.next,
                    high_watermark,
                    "no committed entry could be read for the feed"
                );
                return;
            }
            if self.sender.send(run).is_err() {
                tracing::debug!("the committed feed's receiver is gone; feed stopped");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use runnel_raft::{MemoryLog, OffsetAndEpoch, Payload};

    use super::*;

    /// A log of `count` entries of `records` records each, in epoch 1.
    fn log_of(count: u64, records: u32) -> Result<MemoryLog, runnel_raft::LogError> {
        let mut log = MemoryLog::new();
        let entries: Vec<Entry> = (0..count)
            .map(|i| Entry {
                offset: i * u64::from(records),
                epoch: 1,
                record_count: records,
                payload: Payload::Data(Bytes::from(format!("batch {i}"))),
            })
            .collect();
        log.append(&entries)?;
        Ok(log)
    }

    fn feed(from: u64) -> (Feed, mpsc::UnboundedReceiver<Vec<Entry>>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Feed::new(CommittedFeed { from, sender }), receiver)
    }

    fn offsets(receiver: &mut mpsc::UnboundedReceiver<Vec<Entry>>) -> Vec<u64> {
        let mut offsets = Vec::new();
        while let Ok(run) = receiver.try_recv() {
            offsets.extend(run.iter().map(|e| e.offset));
        }
        offsets
    }

    #[test]
    fn entries_below_the_high_watermark_go_out_once_in_order() -> Result<(), runnel_raft::LogError>
    {
        // Five batches of two records: offsets 0, 2, 4, 6, 8.
        let log = log_of(5, 2)?;
        let (mut feed, mut receiver) = feed(0);
        feed.deliver(&log, 0);
        assert!(offsets(&mut receiver).is_empty(), "nothing is committed");
        feed.deliver(&log, 4);
        assert_eq!(offsets(&mut receiver), [0, 2]);
        feed.deliver(&log, 4);
        assert!(offsets(&mut receiver).is_empty(), "sent once");
        // A high watermark inside a batch holds that batch back.
        feed.deliver(&log, 7);
        assert_eq!(offsets(&mut receiver), [4]);
        feed.deliver(&log, 10);
        assert_eq!(offsets(&mut receiver), [6, 8]);
        Ok(())
    }

    #[test]
    fn the_feed_starts_at_its_from_offset() -> Result<(), runnel_raft::LogError> {
        let log = log_of(4, 1)?;
        let (mut feed, mut receiver) = feed(2);
        feed.deliver(&log, 4);
        assert_eq!(offsets(&mut receiver), [2, 3]);
        Ok(())
    }

    #[test]
    fn a_long_log_goes_out_in_runs_of_bounded_length() -> Result<(), runnel_raft::LogError> {
        let count = READ_ENTRIES as u64 * 2 + 5;
        let log = log_of(count, 1)?;
        let (mut feed, mut receiver) = feed(0);
        feed.deliver(&log, count);
        let mut runs = Vec::new();
        while let Ok(run) = receiver.try_recv() {
            runs.push(run);
        }
        assert_eq!(runs.len(), 3);
        assert!(runs.iter().all(|r| r.len() <= READ_ENTRIES));
        let all: Vec<u64> = runs.iter().flatten().map(|e| e.offset).collect();
        assert_eq!(all, (0..count).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn below_a_snapshot_the_feed_goes_on_from_the_log_start() -> Result<(), runnel_raft::LogError> {
        let mut log = log_of(3, 1)?;
        // A snapshot ending at 5 replaces the log; entries go on after it.
        log.write_snapshot_chunk(OffsetAndEpoch::new(5, 1), 0, b"snapshot", true)?;
        log.append(&[Entry {
            offset: 5,
            epoch: 1,
            record_count: 1,
            payload: Payload::LeaderChange { leader_id: 1 },
        }])?;
        let (mut feed, mut receiver) = feed(0);
        feed.deliver(&log, 6);
        assert_eq!(offsets(&mut receiver), [5]);
        Ok(())
    }

    #[test]
    fn a_closed_receiver_stops_the_feed_quietly() -> Result<(), runnel_raft::LogError> {
        let log = log_of(3, 1)?;
        let (mut feed, receiver) = feed(0);
        drop(receiver);
        feed.deliver(&log, 3);
        feed.deliver(&log, 3);
        Ok(())
    }
}
