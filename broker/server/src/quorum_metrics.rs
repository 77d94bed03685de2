//! The metadata quorum's and the controller's metrics, read at scrape
//! time (on one broker, a quorum of one: it is the active controller, its
//! one voter and its one broker); Kafka's figures (its `raft-metrics` and
//! `KafkaController` MBeans) under Prometheus names:
//!
//! - `runnel_quorum_active_controller`: 1 on the active controller, 0
//!   elsewhere (Kafka's ActiveControllerCount; summed over the cluster it
//!   must be 1);
//! - `runnel_quorum_leader` (current-leader: its node id, -1 when none is
//!   known), `runnel_quorum_epoch` (current-epoch),
//!   `runnel_quorum_high_watermark` and `runnel_quorum_log_end_offset`;
//! - `runnel_quorum_voter_lag{voter}`: on the active controller, its log
//!   end minus each voter's as it last fetched (what `runnel
//!   metadata-quorum describe --replication` prints as Lag), and
//!   `runnel_quorum_voter_last_fetch_age_seconds{voter}`;
//! - `runnel_controller_fenced_brokers` and
//!   `runnel_controller_active_brokers` (FencedBrokerCount,
//!   ActiveBrokerCount), from this node's image;
//! - `runnel_metadata_apply_seconds`: the time to replay and apply one
//!   batch of committed metadata records to the image and this broker's
//!   partitions, and `runnel_metadata_applied_offset`.
//!
//! The voters' figures come from the quorum driver by a request that is
//! answered asynchronously, so [`QuorumFigures`] keeps the last answer,
//! refreshed every second by [`refresh_voters`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Unit;
use runnel_quorum::VoterState;
use runnel_raft::Role;

use crate::broker::Broker;

/// What the collector reads besides the broker: the voters as the driver
/// last described them, and the apply times.
#[derive(Debug)]
pub struct QuorumFigures {
    voters: Mutex<BTreeMap<i32, VoterState>>,
    apply: Histogram,
}

impl Default for QuorumFigures {
    fn default() -> Self {
        Self {
            voters: Mutex::default(),
            // 10 µs doubling 20 times reaches 10 s.
            apply: Histogram::new(exponential_buckets(0.000_01, 2.0, 20)),
        }
    }
}

impl QuorumFigures {
    /// One batch of committed records replayed and applied in `took`.
    pub fn applied(&self, took: Duration) {
        self.apply.observe(took.as_secs_f64());
    }

    fn set_voters(&self, voters: BTreeMap<i32, VoterState>) {
        *self.voters.lock().unwrap_or_else(PoisonError::into_inner) = voters;
    }

    fn voters(&self) -> BTreeMap<i32, VoterState> {
        self.voters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Asks the driver for its voters every second (it answers only while it
/// leads; elsewhere the figures are emptied). Ends when the driver stops.
pub async fn refresh_voters(broker: Weak<Broker>, figures: Arc<QuorumFigures>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticks.tick().await;
        let Some(broker) = broker.upgrade() else {
            return;
        };
        let Some(quorum) = broker.metadata.quorum() else {
            return;
        };
        let handle = quorum.handle().clone();
        drop(broker);
        match handle.voter_states().await {
            Ok(voters) => figures.set_voters(voters.unwrap_or_default()),
            // The driver stopped.
            Err(_) => return,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct VoterLabels {
    voter: i32,
}

#[derive(Debug)]
pub struct QuorumCollector {
    /// Weak: the broker's own metrics hold this collector.
    broker: Weak<Broker>,
    figures: Arc<QuorumFigures>,
}

impl QuorumCollector {
    pub fn new(broker: &Arc<Broker>, figures: Arc<QuorumFigures>) -> Self {
        Self {
            broker: Arc::downgrade(broker),
            figures,
        }
    }
}

/// The node's figures at one scrape.
struct Snapshot {
    active: bool,
    leader: i64,
    epoch: i64,
    high_watermark: i64,
    log_end_offset: i64,
    fenced: i64,
    active_brokers: i64,
    applied_offset: i64,
}

fn snapshot(broker: &Broker) -> Option<Snapshot> {
    let Some(quorum) = broker.metadata.quorum() else {
        return Some(alone(broker));
    };
    let status = quorum.handle().status();
    let image = broker.metadata.image();
    let fenced = image.brokers().filter(|b| b.fenced).count() as i64;
    Some(Snapshot {
        active: status.role == Role::Leader,
        leader: status.leader_id.map_or(-1, i64::from),
        epoch: i64::from(status.epoch),
        high_watermark: i64::try_from(status.high_watermark).unwrap_or(i64::MAX),
        log_end_offset: i64::try_from(status.log_end_offset).unwrap_or(i64::MAX),
        fenced,
        active_brokers: image.brokers().count() as i64 - fenced,
        applied_offset: image.offset(),
    })
}

/// A quorum of one (no `process.roles`): this broker is the controller,
/// its only voter and its only broker, and its metadata log is all
/// committed.
fn alone(broker: &Broker) -> Snapshot {
    let image = broker.metadata.image();
    let provenance = image.provenance();
    let end = provenance.offset + 1;
    Snapshot {
        active: true,
        leader: i64::from(broker.config.node_id),
        epoch: i64::from(provenance.epoch.max(0)),
        high_watermark: end,
        log_end_offset: end,
        fenced: 0,
        active_brokers: 1,
        applied_offset: provenance.offset,
    }
}

impl Collector for QuorumCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(broker) = self.broker.upgrade() else {
            return Ok(());
        };
        let Some(now) = snapshot(&broker) else {
            return Ok(());
        };
        let quorum_of_one = broker.metadata.quorum().is_none();
        drop(broker);
        let gauges: [(&str, &str, i64); 8] = [
            (
                "runnel_quorum_active_controller",
                "1 on the active controller (the metadata quorum's leader), 0 elsewhere (Kafka's ActiveControllerCount).",
                i64::from(now.active),
            ),
            (
                "runnel_quorum_leader",
                "The metadata quorum's leader this node knows, -1 when none (Kafka's current-leader).",
                now.leader,
            ),
            (
                "runnel_quorum_epoch",
                "The metadata quorum's epoch on this node (Kafka's current-epoch).",
                now.epoch,
            ),
            (
                "runnel_quorum_high_watermark",
                "The metadata log's high watermark on this node: records below it are committed.",
                now.high_watermark,
            ),
            (
                "runnel_quorum_log_end_offset",
                "The end of this node's copy of the metadata log.",
                now.log_end_offset,
            ),
            (
                "runnel_controller_fenced_brokers",
                "Registered brokers that are fenced, in this node's image (Kafka's FencedBrokerCount).",
                now.fenced,
            ),
            (
                "runnel_controller_active_brokers",
                "Registered brokers that are not fenced, in this node's image (Kafka's ActiveBrokerCount).",
                now.active_brokers,
            ),
            (
                "runnel_metadata_applied_offset",
                "The offset of the last metadata record in this node's image.",
                now.applied_offset,
            ),
        ];
        for (name, help, value) in gauges {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)?;
        }
        let voters = match (now.active, quorum_of_one) {
            (true, false) => self.figures.voters(),
            // The one voter, caught up.
            (true, true) => BTreeMap::from([(
                i32::try_from(now.leader).unwrap_or(-1),
                VoterState {
                    log_end_offset: u64::try_from(now.log_end_offset).ok(),
                    since_last_fetch: Some(Duration::ZERO),
                },
            )]),
            (false, _) => BTreeMap::new(),
        };
        let mut family = encoder.encode_descriptor(
            "runnel_quorum_voter_lag",
            "On the active controller: its log end minus each voter's, as the voter last fetched.",
            None,
            MetricType::Gauge,
        )?;
        for (voter, state) in &voters {
            let end = state.log_end_offset.map_or(0, |e| e as i64);
            let lag = (now.log_end_offset - end).max(0);
            ConstGauge::new(lag).encode(family.encode_family(&VoterLabels { voter: *voter })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "runnel_quorum_voter_last_fetch_age",
            "On the active controller: how long ago each voter last fetched.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        for (voter, state) in &voters {
            if let Some(age) = state.since_last_fetch {
                ConstGauge::new(age.as_secs_f64())
                    .encode(family.encode_family(&VoterLabels { voter: *voter })?)?;
            }
        }
        let metric = encoder.encode_descriptor(
            "runnel_metadata_apply",
            "Time to replay one batch of committed metadata records and apply it to this broker.",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        self.figures.apply.encode(metric)?;
        Ok(())
    }
}
