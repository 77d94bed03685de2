//! Leader elections the active controller runs on its own, every second:
//!
//! - **unclean**: a partition with no leader whose topic enables
//!   `unclean.leader.election.enable` (or the broker's default does) gets
//!   a live replica, in sync if one is, as Kafka's controller does when the
//!   setting is on;
//! - **preferred** (`auto.leader.rebalance.enable`): every
//!   `leader.imbalance.check.interval.seconds`, the partitions of each
//!   broker whose share led elsewhere passes
//!   `leader.imbalance.per.broker.percentage` go back to it (a broker back
//!   from a restart leads again what it led).
//!
//! - **reassignments**: a partition reassignment whose new replicas are
//!   all in sync completes (its replicas become the target).
//!
//! runnel-metadata's `elections` and `reassignment` build the records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use runnel_http::error_chain;
use runnel_metadata::MetadataImage;
use runnel_metadata::elections::{self, ElectionType};

use crate::broker::Broker;

const TICK: Duration = Duration::from_secs(1);
const UNCLEAN: &str = "unclean.leader.election.enable";

/// Runs until the task is dropped.
pub async fn elect_leaders_periodically(broker: Arc<Broker>) {
    let config = broker.config.replication.clone();
    let unclean_default = broker.config.log.unclean_leader_election_enable;
    let balance_every = Duration::from_millis(config.leader_imbalance_check_interval_ms);
    let mut last_balance = Instant::now();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(quorum) = broker.metadata.quorum() else {
            return;
        };
        if !quorum.is_controller() {
            last_balance = Instant::now();
            continue;
        }
        let image = broker.metadata.image();
        let leaderless = elections::leaderless(&image, |topic| {
            unclean_enabled(&image, topic, unclean_default)
        });
        if !leaderless.is_empty() {
            run(&broker, ElectionType::Unclean, leaderless);
        }
        if !runnel_metadata::reassignment::complete(&image).is_empty() {
            let completed = tokio::task::block_in_place(|| {
                broker.topics.complete_reassignments(crate::clock::now_ms())
            });
            match completed {
                Ok(count) => {
                    tracing::info!(partitions = count, "completed partition reassignments")
                }
                Err(err) => {
                    tracing::warn!(error = %error_chain(&err), "cannot complete partition reassignments")
                }
            }
        }
        if config.auto_leader_rebalance_enable && last_balance.elapsed() >= balance_every {
            last_balance = Instant::now();
            let off = elections::imbalanced(&image, config.leader_imbalance_per_broker_percentage);
            if !off.is_empty() {
                run(&broker, ElectionType::Preferred, off);
            }
        }
    }
}

fn unclean_enabled(image: &MetadataImage, topic: &str, default: bool) -> bool {
    image
        .topic_config(topic)
        .and_then(|c| c.get(UNCLEAN))
        .map_or(default, |v| v.trim() == "true")
}

fn run(broker: &Broker, kind: ElectionType, partitions: Vec<(String, i32)>) {
    let elected = tokio::task::block_in_place(|| {
        broker
            .topics
            .elect_leaders(kind, Some(&partitions), crate::clock::now_ms())
    });
    match elected {
        Ok(outcomes) => {
            let done = outcomes.iter().filter(|(_, o)| o.is_ok()).count();
            if done > 0 {
                tracing::info!(?kind, partitions = done, "elected leaders");
            }
        }
        Err(err) => tracing::warn!(?kind, error = %error_chain(&err), "leader election failed"),
    }
}
