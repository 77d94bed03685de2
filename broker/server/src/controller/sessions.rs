//! Broker sessions on the active controller: when each broker was last
//! heard from (a registration or a heartbeat), and the task that fences
//! the brokers silent for `broker.session.timeout.ms`.
//!
//! A controller that has just become active has heard from no one yet:
//! as Kafka's `BrokerHeartbeatManager`, it counts every session from the
//! moment it took over, so a failover never fences a live broker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use runnel_http::error_chain;
use runnel_metadata::{MetadataImage, fencing};
use runnel_raft::{Epoch, Role};

use crate::broker::Broker;

#[derive(Debug)]
pub struct BrokerSessions {
    timeout: Duration,
    state: Mutex<SessionState>,
}

#[derive(Debug, Default)]
struct SessionState {
    last_heard: HashMap<i32, Instant>,
    /// The quorum epoch this node leads and when it took over.
    active: Option<(Epoch, Instant)>,
}

impl BrokerSessions {
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Broker `id` registered or heartbeated at `now`.
    pub fn heard_from(&self, id: i32, now: Instant) {
        self.state().last_heard.insert(id, now);
    }

    /// The unfenced brokers of `image` not heard from for the session
    /// timeout, by a controller leading `epoch` at `now`.
    fn expired(&self, image: &MetadataImage, epoch: Epoch, now: Instant) -> Vec<i32> {
        let mut state = self.state();
        let since = match state.active {
            Some((active, since)) if active == epoch => since,
            _ => {
                state.active = Some((epoch, now));
                now
            }
        };
        image
            .brokers()
            .filter(|b| !b.fenced)
            .filter(|b| {
                let heard = state.last_heard.get(&b.id).copied().unwrap_or(since);
                now.duration_since(heard.max(since)) > self.timeout
            })
            .map(|b| b.id)
            .collect()
    }

    /// Whether broker `id` is still silent past the timeout (checked again
    /// just before it is fenced: a heartbeat may have come meanwhile).
    fn still_expired(&self, id: i32, now: Instant) -> bool {
        let state = self.state();
        let since = state.active.map_or(now, |(_, since)| since);
        let heard = state.last_heard.get(&id).copied().unwrap_or(since);
        now.duration_since(heard.max(since)) > self.timeout
    }

    /// This node no longer leads: the next term starts afresh.
    fn resign(&self) {
        self.state().active = None;
    }
}

/// Every `tick`, while this node is the active controller, fences each
/// broker whose session expired (and takes the leadership of its
/// partitions away). Ends when the quorum driver stops.
pub async fn fence_expired_sessions(
    broker: Arc<Broker>,
    sessions: Arc<BrokerSessions>,
    tick: Duration,
) {
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let Some(mut stopped) = broker.metadata.quorum().map(|q| q.handle().watch_status()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            // The driver stopped: no session to keep.
            changed = stopped.changed() => if changed.is_err() { return } else { continue },
        }
        let Some(quorum) = broker.metadata.quorum() else {
            return;
        };
        let status = quorum.handle().status();
        if status.role != Role::Leader {
            sessions.resign();
            continue;
        }
        let image = broker.metadata.image();
        for id in sessions.expired(&image, status.epoch, Instant::now()) {
            fence(&broker, &sessions, id);
        }
    }
}

fn fence(broker: &Broker, sessions: &BrokerSessions, id: i32) {
    let fenced = broker.metadata.change(crate::clock::now_ms(), |image| {
        if !sessions.still_expired(id, Instant::now()) {
            return Ok((Vec::new(), None));
        }
        let records = fencing::fence_broker(image, id);
        // The first record fences the broker, each other moves a partition.
        let partitions = (!records.is_empty()).then(|| records.len() - 1);
        Ok((records, partitions))
    });
    match fenced {
        Ok((_, None)) => {}
        Ok((_, Some(partitions))) => tracing::warn!(
            broker = id,
            timeout_ms = sessions.timeout.as_millis() as u64,
            partitions,
            "fenced a broker not heard from within broker.session.timeout.ms; its partitions lost their leader"
        ),
        Err(err) => {
            tracing::warn!(broker = id, error = %error_chain(&err), "cannot fence a broker")
        }
    }
}
