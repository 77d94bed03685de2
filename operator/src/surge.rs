//! The backlog-forwarding surge of a ConsumerGroup as a pure state
//! machine: [`step`] takes the resource's `backlogForwarding`, the surge's
//! state from status and what the reconciler observed (lag, members,
//! workloads, the clock) and returns the next state and the actions to
//! take. The reconciler (`reconcile::surge`) observes and acts; this
//! module decides, and its tests cover every phase change.
//!
//! Normal → Draining (lag above `start.lagAbove` for `start.forSeconds`:
//! originals scaled to 0) → Forwarding (the originals left the group:
//! forwarders run, overflow consumers scaled up) → Returning (lag below
//! `stop.lagBelow`: forwarders stopped) → Normal (forwarders gone, the
//! overflow drained: overflow consumers to 0, originals back). Waiting for
//! the originals to leave and for the overflow to drain keeps a key's
//! records in order across the surge. Originals that never leave, or
//! forwarders not ready for `giveUpAfterSeconds`, make the operator give
//! up: the originals come back at once, so the group is never left
//! without consumers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::crd::{BacklogForwarding, SurgePhase, SurgeStatus};

/// What the reconciler saw this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    pub now_ms: i64,
    /// The group's lag over its topics.
    pub lag: i64,
    /// Members of the group (originals and forwarders alike).
    pub members: i32,
    /// The group's committed offsets over its topics, summed.
    pub committed: i64,
    /// The overflow consumers' group's lag on the overflow topic.
    pub overflow_lag: i64,
    /// The overflow topic exists on the brokers.
    pub overflow_exists: bool,
    /// The originals' replicas now.
    pub original_replicas: i32,
    /// The forwarders' Deployment exists.
    pub forwarders_exist: bool,
    /// Its ready replicas.
    pub forwarders_ready: i32,
}

/// What the reconciler must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    ScaleOriginals(i32),
    ScaleOverflowConsumers(i32),
    /// Create (or keep) the forwarders' Deployment.
    RunForwarders,
    /// Delete the forwarders' Deployment.
    StopForwarders,
    Event {
        warning: bool,
        reason: &'static str,
        note: String,
    },
    /// Records forwarded by the surge's Forwarding phase.
    Forwarded(u64),
    /// The surge ended after this long.
    Ended {
        seconds: f64,
    },
}

/// The next state and what to do to get there.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub status: SurgeStatus,
    pub actions: Vec<Action>,
}

fn ms(time: Option<&Time>) -> Option<i64> {
    time.map(|t| t.0.as_millisecond())
}

fn time(ms: i64) -> Time {
    Time(Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The surge's next state from `previous` (the default: Normal, nothing
/// pending) and what was observed.
pub fn step(spec: &BacklogForwarding, previous: &SurgeStatus, seen: &Observed) -> Step {
    let mut next = previous.clone();
    let mut actions = Vec::new();
    let now = seen.now_ms;
    let in_phase_ms = now - ms(previous.since.as_ref()).unwrap_or(now);
    let give_up_ms = spec.give_up_after_seconds.saturating_mul(1000);
    let enter = |next: &mut SurgeStatus, phase: SurgePhase, reason: String| {
        next.phase = phase;
        next.reason = reason;
        next.since = Some(time(now));
    };
    match previous.phase {
        SurgePhase::Normal => {
            if !spec.enabled || seen.lag <= spec.start.lag_above {
                next.above_since = None;
                return Step {
                    status: next,
                    actions,
                };
            }
            let above_since = ms(previous.above_since.as_ref()).unwrap_or(now);
            next.above_since = Some(time(above_since));
            if now - above_since < spec.start.for_seconds.saturating_mul(1000) {
                return Step {
                    status: next,
                    actions,
                };
            }
            let reason = format!(
                "lag {} above {} for {} s: the group's consumers stop so that forwarders can take \
                 its partitions",
                seen.lag,
                spec.start.lag_above,
                (now - above_since) / 1000
            );
            enter(&mut next, SurgePhase::Draining, reason.clone());
            next.above_since = None;
            next.started = Some(time(now));
            next.original_replicas = Some(seen.original_replicas);
            next.gave_up = false;
            actions.push(Action::ScaleOriginals(0));
            actions.push(Action::Event {
                warning: false,
                reason: "SurgeStarted",
                note: format!(
                    "{reason}; {} scaled from {} to 0",
                    spec.originals.scale_target_ref.name, seen.original_replicas
                ),
            });
        }
        SurgePhase::Draining => {
            let originals = previous.original_replicas.unwrap_or(0);
            if !spec.enabled || (seen.members > 0 && in_phase_ms > give_up_ms) {
                let reason = if spec.enabled {
                    format!(
                        "gave up: the group still has {} members {} s after its consumers were \
                         scaled to 0 (is originals.scaleTargetRef the group's consumers?)",
                        seen.members,
                        in_phase_ms / 1000
                    )
                } else {
                    "backlogForwarding was disabled while the consumers left".to_string()
                };
                actions.push(Action::ScaleOriginals(originals));
                actions.push(Action::Event {
                    warning: spec.enabled,
                    reason: "SurgeGaveUp",
                    note: format!(
                        "{reason}; {} back to {originals}",
                        spec.originals.scale_target_ref.name
                    ),
                });
                next = normal(reason, now);
            } else if seen.members == 0 && seen.overflow_exists {
                let reason = format!(
                    "the group's consumers left: {} forwarders move its backlog into {}",
                    spec.forwarders, spec.overflow.name
                );
                enter(&mut next, SurgePhase::Forwarding, reason.clone());
                next.committed_at_start = Some(seen.committed);
                next.unready_since = Some(time(now));
                actions.push(Action::RunForwarders);
                actions.push(Action::ScaleOverflowConsumers(
                    spec.overflow_consumers.replicas,
                ));
                actions.push(Action::Event {
                    warning: false,
                    reason: "ForwardingStarted",
                    note: format!(
                        "{reason}; {} scaled to {}",
                        spec.overflow_consumers.scale_target_ref.name,
                        spec.overflow_consumers.replicas
                    ),
                });
            }
        }
        SurgePhase::Forwarding => {
            let forwarded = (seen.committed - previous.committed_at_start.unwrap_or(seen.committed))
                .max(0) as u64;
            let unready = seen.forwarders_ready < spec.forwarders;
            let unready_since = ms(previous.unready_since.as_ref()).unwrap_or(now);
            next.unready_since = unready.then(|| time(unready_since));
            if unready && now - unready_since > give_up_ms {
                let originals = previous.original_replicas.unwrap_or(0);
                let reason = format!(
                    "gave up: {} of {} forwarders ready for {} s; the group's consumers are back \
                     while the overflow drains",
                    seen.forwarders_ready.max(0),
                    spec.forwarders,
                    (now - unready_since) / 1000
                );
                enter(&mut next, SurgePhase::Returning, reason.clone());
                next.gave_up = true;
                next.unready_since = None;
                actions.push(Action::StopForwarders);
                actions.push(Action::ScaleOriginals(originals));
                actions.push(Action::Forwarded(forwarded));
                actions.push(Action::Event {
                    warning: true,
                    reason: "SurgeGaveUp",
                    note: format!(
                        "{reason}; {} back to {originals}",
                        spec.originals.scale_target_ref.name
                    ),
                });
            }
            if !next.gave_up && (!spec.enabled || seen.lag < spec.stop.lag_below) {
                let reason = if spec.enabled {
                    format!(
                        "lag {} below {}: forwarders stop; the group's consumers come back once \
                         the overflow is drained",
                        seen.lag, spec.stop.lag_below
                    )
                } else {
                    "backlogForwarding was disabled: forwarders stop".to_string()
                };
                enter(&mut next, SurgePhase::Returning, reason.clone());
                next.unready_since = None;
                actions.push(Action::StopForwarders);
                actions.push(Action::Forwarded(forwarded));
                actions.push(Action::Event {
                    warning: false,
                    reason: "ForwardingStopped",
                    note: format!("{reason}; {forwarded} records forwarded"),
                });
            } else if !next.gave_up {
                actions.push(Action::RunForwarders);
            }
        }
        SurgePhase::Returning => {
            // The forwarders must be gone from the group (and the
            // originals not back yet) before the originals may rejoin.
            let forwarders_gone = !seen.forwarders_exist && (previous.gave_up || seen.members == 0);
            if forwarders_gone && seen.overflow_lag == 0 {
                let originals = previous.original_replicas.unwrap_or(0);
                actions.push(Action::ScaleOverflowConsumers(0));
                if !previous.gave_up {
                    actions.push(Action::ScaleOriginals(originals));
                }
                let seconds = ms(previous.started.as_ref())
                    .map_or(0.0, |started| (now - started) as f64 / 1000.0);
                actions.push(Action::Ended { seconds });
                let reason = format!(
                    "the overflow {} is drained: the surge ended after {seconds:.0} s",
                    spec.overflow.name
                );
                actions.push(Action::Event {
                    warning: false,
                    reason: "SurgeEnded",
                    note: format!(
                        "{reason}; {} scaled to 0, {} back to {originals}",
                        spec.overflow_consumers.scale_target_ref.name,
                        spec.originals.scale_target_ref.name
                    ),
                });
                next = normal(reason, now);
            } else if seen.forwarders_exist {
                actions.push(Action::StopForwarders);
            }
        }
    }
    Step {
        status: next,
        actions,
    }
}

fn normal(reason: String, now: i64) -> SurgeStatus {
    SurgeStatus {
        phase: SurgePhase::Normal,
        reason,
        since: Some(time(now)),
        ..SurgeStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{
        OverflowConsumers, OverflowTopic, ScaleTargetRef, SurgeStart, SurgeStop, Workload,
        WorkloadKind,
    };

    fn spec() -> BacklogForwarding {
        let target = |name: &str| ScaleTargetRef {
            kind: WorkloadKind::Deployment,
            name: name.into(),
        };
        BacklogForwarding {
            enabled: true,
            overflow: OverflowTopic {
                name: "orders.overflow".into(),
                partitions: 24,
                replication_factor: 1,
                group: "orders-overflow".into(),
            },
            start: SurgeStart {
                lag_above: 10_000,
                for_seconds: 60,
            },
            stop: SurgeStop { lag_below: 100 },
            originals: Workload {
                scale_target_ref: target("workers"),
            },
            overflow_consumers: OverflowConsumers {
                scale_target_ref: target("overflow-workers"),
                replicas: 12,
            },
            forwarders: 2,
            give_up_after_seconds: 300,
        }
    }

    fn seen(now_s: i64, lag: i64) -> Observed {
        Observed {
            now_ms: now_s * 1000,
            lag,
            members: 3,
            committed: 1_000,
            overflow_lag: 0,
            overflow_exists: true,
            original_replicas: 3,
            forwarders_exist: false,
            forwarders_ready: 0,
        }
    }

    fn scalings(actions: &[Action]) -> Vec<&Action> {
        actions
            .iter()
            .filter(|a| !matches!(a, Action::Event { .. }))
            .collect()
    }

    fn events(actions: &[Action]) -> Vec<&'static str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    /// Normal, lagging long enough: Draining with the originals at 0.
    fn draining() -> SurgeStatus {
        let first = step(&spec(), &SurgeStatus::default(), &seen(0, 20_000));
        step(&spec(), &first.status, &seen(60, 20_000)).status
    }

    fn forwarding() -> SurgeStatus {
        let mut now = seen(70, 20_000);
        now.members = 0;
        step(&spec(), &draining(), &now).status
    }

    #[test]
    fn a_lag_above_the_threshold_for_long_enough_starts_a_surge() {
        let spec = spec();
        let first = step(&spec, &SurgeStatus::default(), &seen(0, 20_000));
        assert_eq!(first.status.phase, SurgePhase::Normal);
        assert!(first.actions.is_empty(), "{:?}", first.actions);
        assert!(first.status.above_since.is_some());
        // Not yet 60 s.
        let early = step(&spec, &first.status, &seen(59, 20_000));
        assert_eq!(early.status.phase, SurgePhase::Normal);
        // A dip below resets the clock.
        let dip = step(&spec, &early.status, &seen(59, 10_000));
        assert_eq!(dip.status.above_since, None);
        let after_dip = step(&spec, &dip.status, &seen(70, 20_000));
        assert_eq!(after_dip.status.phase, SurgePhase::Normal);

        let started = step(&spec, &first.status, &seen(60, 20_000));
        assert_eq!(started.status.phase, SurgePhase::Draining);
        assert_eq!(started.status.original_replicas, Some(3));
        assert!(started.status.started.is_some());
        assert_eq!(scalings(&started.actions), [&Action::ScaleOriginals(0)]);
        assert_eq!(events(&started.actions), ["SurgeStarted"]);
    }

    #[test]
    fn a_disabled_surge_never_starts() {
        let mut spec = spec();
        spec.enabled = false;
        let first = step(&spec, &SurgeStatus::default(), &seen(0, 20_000));
        let later = step(&spec, &first.status, &seen(600, 20_000));
        assert_eq!(later.status.phase, SurgePhase::Normal);
        assert!(later.actions.is_empty());
    }

    #[test]
    fn forwarding_starts_only_once_the_originals_left_the_group() {
        let spec = spec();
        let waiting = step(&spec, &draining(), &seen(65, 20_000));
        assert_eq!(waiting.status.phase, SurgePhase::Draining);
        assert!(waiting.actions.is_empty(), "{:?}", waiting.actions);

        let mut left = seen(70, 20_000);
        left.members = 0;
        left.committed = 5_000;
        // Not before the overflow topic is there.
        left.overflow_exists = false;
        let waiting = step(&spec, &draining(), &left);
        assert_eq!(waiting.status.phase, SurgePhase::Draining);
        left.overflow_exists = true;
        let started = step(&spec, &draining(), &left);
        assert_eq!(started.status.phase, SurgePhase::Forwarding);
        assert_eq!(started.status.committed_at_start, Some(5_000));
        assert_eq!(
            scalings(&started.actions),
            [&Action::RunForwarders, &Action::ScaleOverflowConsumers(12)]
        );
        assert_eq!(events(&started.actions), ["ForwardingStarted"]);
    }

    #[test]
    fn originals_that_never_leave_make_it_give_up_and_come_back() {
        let spec = spec();
        let stuck = step(&spec, &draining(), &seen(60 + 301, 20_000));
        assert_eq!(stuck.status.phase, SurgePhase::Normal);
        assert!(
            stuck.status.reason.starts_with("gave up"),
            "{}",
            stuck.status.reason
        );
        assert_eq!(scalings(&stuck.actions), [&Action::ScaleOriginals(3)]);
        assert_eq!(events(&stuck.actions), ["SurgeGaveUp"]);
    }

    #[test]
    fn forwarders_that_never_get_ready_make_it_give_up_with_the_originals_back_at_once() {
        let spec = spec();
        let mut running = seen(100, 20_000);
        running.members = 1;
        running.forwarders_exist = true;
        running.forwarders_ready = 1;
        let waiting = step(&spec, &forwarding(), &running);
        assert_eq!(waiting.status.phase, SurgePhase::Forwarding);
        assert_eq!(scalings(&waiting.actions), [&Action::RunForwarders]);

        running.now_ms = (70 + 301) * 1000;
        let gave_up = step(&spec, &waiting.status, &running);
        assert_eq!(gave_up.status.phase, SurgePhase::Returning);
        assert!(gave_up.status.gave_up);
        assert_eq!(
            scalings(&gave_up.actions),
            [
                &Action::StopForwarders,
                &Action::ScaleOriginals(3),
                &Action::Forwarded(0)
            ]
        );
        assert_eq!(events(&gave_up.actions), ["SurgeGaveUp"]);

        // The overflow drains with the originals already back: the
        // overflow consumers go to 0, the originals are not scaled again.
        let mut draining_overflow = running;
        draining_overflow.now_ms = 400_000;
        draining_overflow.forwarders_exist = false;
        draining_overflow.members = 3;
        draining_overflow.overflow_lag = 50;
        let still = step(&spec, &gave_up.status, &draining_overflow);
        assert_eq!(still.status.phase, SurgePhase::Returning);
        draining_overflow.overflow_lag = 0;
        let ended = step(&spec, &still.status, &draining_overflow);
        assert_eq!(ended.status.phase, SurgePhase::Normal);
        assert_eq!(
            scalings(&ended.actions)[..1],
            [&Action::ScaleOverflowConsumers(0)]
        );
        assert!(!ended.actions.contains(&Action::ScaleOriginals(3)));
    }

    #[test]
    fn forwarders_ready_again_restart_the_give_up_clock() {
        let spec = spec();
        let mut ready = seen(300, 20_000);
        ready.forwarders_exist = true;
        ready.forwarders_ready = 2;
        let ok = step(&spec, &forwarding(), &ready);
        assert_eq!(ok.status.unready_since, None);
        // A pod lost at 500 s: unready from then, not from the phase's
        // start (70 s).
        let mut lost = ready;
        lost.forwarders_ready = 1;
        lost.now_ms = 500_000;
        let later = step(&spec, &ok.status, &lost);
        lost.now_ms = 800_000;
        let later = step(&spec, &later.status, &lost);
        assert_eq!(later.status.phase, SurgePhase::Forwarding);
        lost.now_ms = 801_000;
        let gave_up = step(&spec, &later.status, &lost);
        assert_eq!(gave_up.status.phase, SurgePhase::Returning);
    }

    #[test]
    fn a_low_lag_stops_the_forwarders_and_the_drained_overflow_hands_back() {
        let spec = spec();
        let mut low = seen(200, 50);
        low.members = 2;
        low.forwarders_exist = true;
        low.forwarders_ready = 2;
        low.committed = 1_000 + 19_950;
        let returning = step(&spec, &forwarding(), &low);
        assert_eq!(returning.status.phase, SurgePhase::Returning);
        assert_eq!(
            scalings(&returning.actions),
            [&Action::StopForwarders, &Action::Forwarded(19_950)]
        );
        assert_eq!(events(&returning.actions), ["ForwardingStopped"]);

        // Forwarders still in the group, or the overflow not drained: wait.
        let mut leaving = low;
        leaving.forwarders_exist = false;
        leaving.overflow_lag = 0;
        let waiting = step(&spec, &returning.status, &leaving);
        assert_eq!(waiting.status.phase, SurgePhase::Returning);
        assert!(waiting.actions.is_empty(), "{:?}", waiting.actions);
        leaving.members = 0;
        leaving.overflow_lag = 7;
        let waiting = step(&spec, &returning.status, &leaving);
        assert_eq!(waiting.status.phase, SurgePhase::Returning);

        leaving.overflow_lag = 0;
        leaving.now_ms = 260_000;
        let ended = step(&spec, &returning.status, &leaving);
        assert_eq!(ended.status.phase, SurgePhase::Normal);
        assert_eq!(
            scalings(&ended.actions),
            [
                &Action::ScaleOverflowConsumers(0),
                &Action::ScaleOriginals(3),
                &Action::Ended { seconds: 200.0 }
            ]
        );
        assert_eq!(events(&ended.actions), ["SurgeEnded"]);
        assert_eq!(ended.status.original_replicas, None);
    }

    #[test]
    fn disabling_a_running_surge_hands_back() {
        let mut spec = spec();
        spec.enabled = false;
        let mut running = seen(200, 20_000);
        running.forwarders_exist = true;
        running.forwarders_ready = 2;
        let returning = step(&spec, &forwarding(), &running);
        assert_eq!(returning.status.phase, SurgePhase::Returning);
        let draining_off = step(&spec, &draining(), &seen(65, 20_000));
        assert_eq!(draining_off.status.phase, SurgePhase::Normal);
        assert_eq!(
            scalings(&draining_off.actions),
            [&Action::ScaleOriginals(3)]
        );
    }
}
