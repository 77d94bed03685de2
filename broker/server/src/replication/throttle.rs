//! Reassignment throttles, as Kafka's replication quotas: the bytes a
//! leader sends to, and a follower fetches for, replicas that are catching
//! up (out of the ISR) and named in their topic's
//! `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` are held under this broker's
//! `leader.replication.throttled.rate` / `follower.replication.throttled.rate`
//! (bytes per second, dynamic broker configs set by IncrementalAlterConfigs
//! on the broker, or on the cluster default, the empty broker name).
//!
//! Over its rate, a leader answers a throttled replica's partition with no
//! records (its fetch still counts towards the ISR), and a follower leaves
//! its throttled partitions out of its next fetches. In-sync replicas are
//! never throttled: `acks=all` writes never wait on a throttle.
//!
//! The rate is kept by a token bucket holding at most one second of
//! bytes: a read that finds it empty is throttled, what was sent is
//! taken from it (it may go below zero once, as Kafka's quota lets one
//! fetch past it).

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use runnel_metadata::{ConfigResource, MetadataImage};

pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";

/// The dynamic broker configs this broker takes at run time.
pub const DYNAMIC_BROKER_KEYS: [&str; 2] = [LEADER_RATE, FOLLOWER_RATE];

/// Broker `node_id`'s rate for `key` (bytes per second): its own dynamic
/// config, else the cluster default's; `None` when neither sets one
/// (unthrottled, Kafka's Long.MAX_VALUE).
pub fn rate(image: &MetadataImage, node_id: i32, key: &str) -> Option<u64> {
    [Some(node_id), None].into_iter().find_map(|broker| {
        image
            .config(&ConfigResource::broker(broker))?
            .get(key)?
            .trim()
            .parse::<u64>()
            .ok()
    })
}

/// Whether `key` may be set at run time; the sentence for one that may
/// not.
pub fn check_dynamic(key: &str) -> Result<(), String> {
    if DYNAMIC_BROKER_KEYS.contains(&key) {
        return Ok(());
    }
    Err(format!(
        "{key} is static here (the dynamic broker configs are {}): set it in \
         server.properties, RUNNEL_* variables or --override, and restart the broker",
        DYNAMIC_BROKER_KEYS.join(" and ")
    ))
}

/// Checks a dynamic broker config's value: a rate of at least 0 bytes per
/// second.
pub fn check_rate(key: &str, value: &str) -> Result<(), String> {
    value
        .trim()
        .parse::<u64>()
        .map(drop)
        .map_err(|_| format!("{key}={value:?}: expected a number of bytes per second, 0 or more"))
}

/// One direction's quota (the leader's or the follower's).
#[derive(Debug)]
pub struct ReplicationQuota {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may go now; below zero after a read past the rate.
    tokens: f64,
    refilled: Instant,
}

impl Default for ReplicationQuota {
    fn default() -> Self {
        Self {
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                refilled: Instant::now(),
            }),
        }
    }
}

impl ReplicationQuota {
    /// Whether throttled replicas must wait now under `rate`.
    pub fn exceeded(&self, rate: Option<u64>, now: Instant) -> bool {
        let Some(rate) = rate else {
            return false;
        };
        let mut bucket = self.bucket();
        bucket.refill(rate, now);
        bucket.tokens <= 0.0
    }

    /// `bytes` of throttled replicas went under `rate`.
    pub fn record(&self, rate: Option<u64>, bytes: u64, now: Instant) {
        let Some(rate) = rate else {
            return;
        };
        let mut bucket = self.bucket();
        bucket.refill(rate, now);
        bucket.tokens -= bytes as f64;
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Bucket {
    fn refill(&mut self, rate: u64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        let rate = rate as f64;
        self.tokens = (self.tokens + elapsed * rate).min(rate);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_bucket_lets_the_rate_through_and_no_more() {
        let quota = ReplicationQuota::default();
        let start = Instant::now();
        assert!(!quota.exceeded(None, start), "no rate: never throttled");
        // 1000 B/s: after a second, one 1000-byte read, then a wait.
        let rate = Some(1000);
        let t1 = start + Duration::from_secs(1);
        assert!(!quota.exceeded(rate, t1));
        quota.record(rate, 1500, t1);
        assert!(quota.exceeded(rate, t1));
        // 500 bytes owed: free again after half a second and a bit.
        assert!(quota.exceeded(rate, t1 + Duration::from_millis(400)));
        assert!(!quota.exceeded(rate, t1 + Duration::from_millis(600)));
        // Idle time saves at most one second's worth.
        let later = t1 + Duration::from_secs(60);
        quota.record(rate, 1000, later);
        assert!(quota.exceeded(rate, later));
    }

    #[test]
    fn only_the_two_rates_are_dynamic_and_they_are_numbers() {
        assert!(check_rate(LEADER_RATE, "1048576").is_ok());
        assert!(check_rate(FOLLOWER_RATE, " 0 ").is_ok());
        let err = check_rate(LEADER_RATE, "fast").expect_err("not a number");
        assert!(err.contains("\"fast\""), "{err}");
        let err = check_dynamic("num.partitions").expect_err("static");
        assert!(err.contains("num.partitions is static here"), "{err}");
        assert!(check_dynamic(FOLLOWER_RATE).is_ok());
    }
}
