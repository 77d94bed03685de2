//! Resource statuses from what a sync observed, with the conditions
//! Kubernetes tools read: a condition keeps its `lastTransitionTime` while
//! its status does not change, as the API conventions ask.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use k8s_openapi::api::apps::v1::StatefulSet;

use crate::crd::{Cluster, ClusterStatus, ConsumerGroupStatus, DelayLevelStatus, TopicStatus};
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

/// Whether condition `kind` is there and `True`.
pub fn is_true(conditions: &[Condition], kind: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == kind && c.status == "True")
}

/// A Cluster's status from its StatefulSet as the API last returned it:
/// `Ready` when every broker is updated and ready, `Progressing` while a
/// scale or rolling update is under way or brokers start, `Degraded` when
/// a broker of a cluster that was up is not ready outside a rollout.
pub fn cluster_status(
    cluster: &Cluster,
    set: &StatefulSet,
    bootstrap: String,
    now: Timestamp,
) -> ClusterStatus {
    let generation = cluster.metadata.generation;
    let brokers = cluster.spec.brokers;
    let observed = set.status.as_ref();
    let ready = observed.and_then(|s| s.ready_replicas).unwrap_or(0);
    let updated = observed.and_then(|s| s.updated_replicas).unwrap_or(0);
    let replicas = observed.map_or(0, |s| s.replicas);
    let seen = match (
        observed.and_then(|s| s.observed_generation),
        set.metadata.generation,
    ) {
        (Some(seen), Some(current)) => seen >= current,
        (_, None) => true,
        (None, Some(_)) => false,
    };
    let same_revision = observed
        .is_none_or(|s| s.update_revision.is_none() || s.current_revision == s.update_revision);
    let rolled_out = seen && replicas == brokers && updated == brokers && same_revision;
    let previous = cluster.status.as_ref();
    let was_up = previous
        .is_some_and(|s| is_true(&s.conditions, "Ready") || is_true(&s.conditions, "Degraded"));
    let mut status = previous.cloned().unwrap_or_default();
    status.ready_brokers = ready;
    status.bootstrap = Some(bootstrap);
    status.observed_generation = generation;
    let summary = format!("{ready} of {brokers} brokers ready");
    let all_ready = rolled_out && ready == brokers;
    // A broker that is not ready after the rollout: down if the cluster
    // was up, else still starting.
    let degraded = rolled_out && ready < brokers && was_up;
    let progressing = !all_ready && !degraded;
    let (reason, message) = if all_ready {
        ("AllBrokersReady", summary.clone())
    } else {
        ("BrokersNotReady", summary.clone())
    };
    set_condition(
        &mut status.conditions,
        "Ready",
        all_ready,
        reason,
        message,
        generation,
        now,
    );
    let (reason, message) = if !progressing {
        (
            "RolledOut",
            format!("{brokers} brokers at the current spec"),
        )
    } else if replicas != brokers {
        (
            "Scaling",
            format!("{replicas} brokers, scaling to {brokers}"),
        )
    } else if !rolled_out {
        (
            "RollingUpdate",
            format!("{updated} of {brokers} brokers updated, one at a time"),
        )
    } else {
        ("BrokersStarting", summary.clone())
    };
    set_condition(
        &mut status.conditions,
        "Progressing",
        progressing,
        reason,
        message,
        generation,
        now,
    );
    let (reason, message) = if degraded {
        ("BrokersDown", summary)
    } else {
        ("AsExpected", "no broker down outside a rollout".to_string())
    };
    set_condition(
        &mut status.conditions,
        "Degraded",
        degraded,
        reason,
        message,
        generation,
        now,
    );
    status
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
    if outcome.topic_id.is_some() {
        status.topic_id.clone_from(&outcome.topic_id);
    }
    status.observed_generation = generation;
    status.delay_levels = outcome
        .levels
        .iter()
        .map(|level| DelayLevelStatus {
            topic: level.topic.clone(),
            delay_ms: level.delay_ms,
            pending: level.pending,
        })
        .collect();
    let (ready, reason, message) = match &outcome.refused {
        Some(why) if why.starts_with("spec.delayedDelivery") => {
            (false, "DelayRefused", why.clone())
        }
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
    status.above_threshold_since = decision
        .lagging_since_ms
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map(Time);
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

    fn cluster(brokers: i32) -> Cluster {
        let spec: crate::crd::ClusterSpec = serde_json::from_value(serde_json::json!({
            "brokers": brokers,
            "image": "runnel:dev",
            "storage": {"size": "1Gi"},
        }))
        .expect("spec");
        let mut cluster = Cluster::new("demo", spec);
        cluster.metadata.generation = Some(2);
        cluster
    }

    fn set(status: serde_json::Value) -> StatefulSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo", "generation": 4},
            "spec": {"selector": {}, "template": {}, "serviceName": "demo-brokers"},
            "status": status,
        }))
        .expect("statefulset")
    }

    fn conditions(status: &ClusterStatus) -> Vec<(&str, &str, &str)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn cluster_conditions_follow_the_statefulset_rollout() {
        let bootstrap = || "demo-bootstrap.ns.svc:9092".to_string();
        // Scaling 1 -> 3: the controller has seen it, one broker so far.
        let scaling = set(serde_json::json!({
            "observedGeneration": 4, "replicas": 1, "readyReplicas": 1, "updatedReplicas": 1,
            "currentRevision": "a", "updateRevision": "a",
        }));
        let status = cluster_status(&cluster(3), &scaling, bootstrap(), at(0));
        assert_eq!(
            conditions(&status),
            [
                ("Ready", "False", "BrokersNotReady"),
                ("Progressing", "True", "Scaling"),
                ("Degraded", "False", "AsExpected"),
            ]
        );
        assert_eq!(status.ready_brokers, 1);
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            status.bootstrap.as_deref(),
            Some("demo-bootstrap.ns.svc:9092")
        );
        // A rolling update half done.
        let mut with_previous = cluster(3);
        with_previous.status = Some(status);
        let rolling = set(serde_json::json!({
            "observedGeneration": 4, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 1,
            "currentRevision": "a", "updateRevision": "b",
        }));
        let status = cluster_status(&with_previous, &rolling, bootstrap(), at(10));
        assert_eq!(
            conditions(&status)[1],
            ("Progressing", "True", "RollingUpdate")
        );
        // Done and all ready: Ready and Progressing changed at 20, Degraded
        // has been False since 0.
        with_previous.status = Some(status);
        let done = set(serde_json::json!({
            "observedGeneration": 4, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
            "currentRevision": "b", "updateRevision": "b",
        }));
        let status = cluster_status(&with_previous, &done, bootstrap(), at(20));
        assert_eq!(
            conditions(&status),
            [
                ("Ready", "True", "AllBrokersReady"),
                ("Progressing", "False", "RolledOut"),
                ("Degraded", "False", "AsExpected"),
            ]
        );
        let times: Vec<&Time> = status
            .conditions
            .iter()
            .map(|c| &c.last_transition_time)
            .collect();
        assert_eq!(times, [&Time(at(20)), &Time(at(20)), &Time(at(0))]);
        // A broker down after the rollout: degraded.
        let down = set(serde_json::json!({
            "observedGeneration": 4, "replicas": 3, "readyReplicas": 2, "updatedReplicas": 3,
            "currentRevision": "b", "updateRevision": "b",
        }));
        let mut was_up = cluster(3);
        was_up.status = Some(status);
        let status = cluster_status(&was_up, &down, bootstrap(), at(30));
        assert_eq!(conditions(&status)[2], ("Degraded", "True", "BrokersDown"));
        assert_eq!(
            conditions(&status)[1],
            ("Progressing", "False", "RolledOut")
        );
        // The same StatefulSet for a cluster that never was up: starting.
        let status = cluster_status(&cluster(3), &down, bootstrap(), at(30));
        assert_eq!(
            conditions(&status)[1],
            ("Progressing", "True", "BrokersStarting")
        );
        assert_eq!(conditions(&status)[2], ("Degraded", "False", "AsExpected"));
        // The StatefulSet controller has not seen the new generation yet.
        let stale = set(serde_json::json!({
            "observedGeneration": 3, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
        }));
        let status = cluster_status(&cluster(3), &stale, bootstrap(), at(40));
        assert_eq!(
            conditions(&status)[0],
            ("Ready", "False", "BrokersNotReady")
        );
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
            committed: 0,
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
