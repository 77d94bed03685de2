//! A consumer group's lag and what the `ConsumerGroup` resource's policy
//! makes of it: lag read through runnel-client's admin API (tested against
//! real brokers), and the scaling decision as a pure function of the lag,
//! the policy and the clock.

use runnel_client::{Admin, ClientError};

use crate::crd::{LagPolicy, PartitionLag, PartitionScaling};

/// A group's state, members and lag over its topics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupLag {
    pub state: String,
    pub members: i32,
    pub partitions: Vec<PartitionLag>,
    pub total: i64,
    /// The committed offsets over the partitions, summed.
    pub committed: i64,
    /// Partitions of each topic now.
    pub partition_counts: Vec<(String, i32)>,
}

/// Lag of `group` on `topics`: log end offset minus the committed offset
/// (the whole log when nothing is committed yet: that is all backlog).
pub async fn group_lag(
    admin: &Admin,
    group: &str,
    topics: &[String],
) -> Result<GroupLag, ClientError> {
    let description = admin.describe_group(group).await?;
    let committed = admin.group_offsets(group).await?;
    let listed = admin.list_topics().await?;
    let mut partitions = Vec::new();
    let mut counts = Vec::new();
    for topic in topics {
        let Some(described) = listed.iter().find(|t| &t.name == topic) else {
            continue;
        };
        counts.push((topic.clone(), described.partitions.len() as i32));
        for (partition, _) in &described.partitions {
            partitions.push((topic.clone(), *partition));
        }
    }
    let ends = admin.end_offsets(&partitions).await?;
    let mut lag = GroupLag {
        state: description.state,
        members: description.members.len() as i32,
        partition_counts: counts,
        ..GroupLag::default()
    };
    for ((topic, partition), end) in partitions.into_iter().zip(ends) {
        let at = committed
            .iter()
            .find(|(t, p, _)| *t == topic && *p == partition)
            .map_or(0, |(_, _, offset)| *offset);
        let behind = (end - at).max(0);
        lag.total += behind;
        lag.committed += at;
        lag.partitions.push(PartitionLag {
            topic,
            partition,
            lag: behind,
        });
    }
    Ok(lag)
}

/// What the policy says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Since when the lag has been above the threshold (`None`: it is not).
    pub lagging_since_ms: Option<i64>,
    /// The group counts as lagging (above the threshold for long enough).
    pub lagging: bool,
    /// The partition count to grow each topic to, when it is time to.
    pub grow_to: Option<i32>,
}

/// Applies the lag policy: lag above the threshold since
/// `lagging_since_ms` for `for_seconds` makes the group lagging; a lagging
/// group's topics grow by `step` partitions, never past
/// `max_partitions`, at most once per `cooldown_seconds` since
/// `last_scaling_ms`. `partitions` is the smallest partition count among
/// the group's topics.
pub fn decide(
    now_ms: i64,
    lag_total: i64,
    policy: &LagPolicy,
    scaling: Option<&PartitionScaling>,
    lagging_since_ms: Option<i64>,
    last_scaling_ms: Option<i64>,
    partitions: i32,
) -> Decision {
    if lag_total <= policy.threshold_messages {
        return Decision {
            lagging_since_ms: None,
            lagging: false,
            grow_to: None,
        };
    }
    let since = lagging_since_ms.unwrap_or(now_ms);
    let lagging = now_ms.saturating_sub(since) >= policy.for_seconds.saturating_mul(1000);
    let grow_to = scaling.filter(|_| lagging).and_then(|s| {
        let cooled = last_scaling_ms
            .is_none_or(|at| now_ms.saturating_sub(at) >= s.cooldown_seconds.saturating_mul(1000));
        let target = partitions.saturating_add(s.step).min(s.max_partitions);
        (cooled && target > partitions).then_some(target)
    });
    Decision {
        lagging_since_ms: Some(since),
        lagging,
        grow_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LagPolicy {
        LagPolicy {
            threshold_messages: 100,
            for_seconds: 60,
        }
    }

    fn scaling() -> PartitionScaling {
        PartitionScaling {
            max_partitions: 8,
            step: 3,
            cooldown_seconds: 300,
        }
    }

    #[test]
    fn lag_must_hold_for_the_policy_time_before_partitions_grow() {
        let s = scaling();
        // Below the threshold: nothing, and the clock resets.
        let d = decide(0, 100, &policy(), Some(&s), Some(-5_000), None, 4);
        assert_eq!(
            d,
            Decision {
                lagging_since_ms: None,
                lagging: false,
                grow_to: None
            }
        );
        // Above it: lagging from now, not yet for long enough.
        let d = decide(1_000, 500, &policy(), Some(&s), None, None, 4);
        assert_eq!(
            (d.lagging_since_ms, d.lagging, d.grow_to),
            (Some(1_000), false, None)
        );
        // A minute later: lagging, grow by the step.
        let d = decide(61_000, 500, &policy(), Some(&s), Some(1_000), None, 4);
        assert_eq!((d.lagging, d.grow_to), (true, Some(7)));
        // Within the cool-down: no more.
        let d = decide(
            120_000,
            500,
            &policy(),
            Some(&s),
            Some(1_000),
            Some(61_000),
            7,
        );
        assert_eq!((d.lagging, d.grow_to), (true, None));
        // After it: only up to the maximum, then never again.
        let d = decide(
            400_000,
            500,
            &policy(),
            Some(&s),
            Some(1_000),
            Some(61_000),
            7,
        );
        assert_eq!(d.grow_to, Some(8));
        let d = decide(
            800_000,
            500,
            &policy(),
            Some(&s),
            Some(1_000),
            Some(400_000),
            8,
        );
        assert_eq!(d.grow_to, None);
        // Without a scaling policy the group is only reported lagging.
        let d = decide(61_000, 500, &policy(), None, Some(1_000), None, 4);
        assert_eq!((d.lagging, d.grow_to), (true, None));
    }
}
