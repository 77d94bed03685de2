//! Resource statuses from what a sync observed, with the conditions
//! Kubernetes tools read: a condition keeps its `lastTransitionTime` while
//! its status does not change, as the API conventions ask.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{ConsumerGroupStatus, TopicStatus};
use crate::lag::{Decision, GroupLag};
use crate::topic_sync::TopicOutcome;

/// `condition` set to `status`, keeping the previous transition time when
/// the status is unchanged.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let previous = conditions.iter().position(|c| c.type_ == kind);
    let transition = match previous.map(|i| &conditions[i]) {
        Some(old) if old.status == status => old.last_transition_time.clone(),
        _ => Time(now),
    };
    let condition = Condition {
        type_: kind.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time: transition,
    };
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// A Topic's status after a sync: `Ready` unless the spec could not be
/// applied (a shrink), with the reason.
pub fn topic_status(
    previous: Option<&TopicStatus>,
    outcome: &TopicOutcome,
    generation: Option<i64>,
    now: Timestamp,
) -> TopicStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.partitions = Some(outcome.partitions);
    status.observed_generation = generation;
    let (ready, reason, message) = match &outcome.refused {
        Some(why) => (false, "ShrinkRefused", why.clone()),
        None => (true, "Synced", format!("{} partitions", outcome.partitions)),
    };
    set_condition(
        &mut status.conditions,
        "Ready",
        ready,
        reason,
        message,
        generation,
        now,
    );
    status
}

/// A ConsumerGroup's status after a lag check: its lag, state and members,
/// `Lagging` from the policy's decision and `Scaling` when partitions were
/// just added (`scaled_to`).
pub fn consumer_group_status(
    previous: Option<&ConsumerGroupStatus>,
    lag: &GroupLag,
    decision: &Decision,
    scaled_to: Option<i32>,
    generation: Option<i64>,
    now: Timestamp,
) -> ConsumerGroupStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.lag_total = lag.total;
    status.lag = lag.partitions.clone();
    status.state = Some(lag.state.clone());
    status.members = lag.members;
    let (reason, message) = if decision.lagging {
        (
            "AboveThreshold",
            format!("lag {} above the policy's threshold", lag.total),
        )
    } else {
        ("WithinThreshold", format!("lag {}", lag.total))
    };
    set_condition(
        &mut status.conditions,
        "Lagging",
        decision.lagging,
        reason,
        message,
        generation,
        now,
    );
    match scaled_to {
        Some(partitions) => {
            status.last_scaling_time = Some(Time(now));
            set_condition(
                &mut status.conditions,
                "Scaling",
                true,
                "PartitionsAdded",
                format!("topics grown to {partitions} partitions"),
                generation,
                now,
            );
        }
        None => set_condition(
            &mut status.conditions,
            "Scaling",
            false,
            "Idle",
            "no partitions added".into(),
            generation,
            now,
        ),
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::PartitionLag;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + seconds).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_refused_shrink_makes_the_topic_not_ready_and_keeps_transition_times() {
        let ok = TopicOutcome {
            partitions: 5,
            ..TopicOutcome::default()
        };
        let first = topic_status(None, &ok, Some(1), at(0));
        let ready = &first.conditions[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "True")
        );
        // Still ready later: the transition time stays.
        let again = topic_status(Some(&first), &ok, Some(1), at(60));
        assert_eq!(again.conditions[0].last_transition_time, Time(at(0)));
        let refused = TopicOutcome {
            partitions: 5,
            refused: Some("partitions can only grow".into()),
            ..TopicOutcome::default()
        };
        let shrink = topic_status(Some(&again), &refused, Some(2), at(120));
        let condition = &shrink.conditions[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", "ShrinkRefused")
        );
        assert_eq!(condition.last_transition_time, Time(at(120)));
        assert_eq!(shrink.partitions, Some(5));
        assert_eq!(shrink.observed_generation, Some(2));
    }

    #[test]
    fn a_lagging_group_reports_lag_and_scaling() {
        let lag = GroupLag {
            state: "Empty".into(),
            members: 0,
            partitions: vec![PartitionLag {
                topic: "t".into(),
                partition: 0,
                lag: 500,
            }],
            total: 500,
            partition_counts: vec![("t".into(), 1)],
        };
        let decision = Decision {
            lagging_since_ms: Some(0),
            lagging: true,
            grow_to: Some(3),
        };
        let status = consumer_group_status(None, &lag, &decision, Some(3), Some(1), at(0));
        assert_eq!(status.lag_total, 500);
        assert_eq!(status.state.as_deref(), Some("Empty"));
        let kinds: Vec<(&str, &str)> = status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(kinds, [("Lagging", "True"), ("Scaling", "True")]);
        assert_eq!(status.last_scaling_time, Some(Time(at(0))));
    }
}
