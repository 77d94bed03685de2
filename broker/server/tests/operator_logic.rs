//! The operator's Topic and ConsumerGroup logic against a real broker: a
//! Topic creates its topic, raising `partitions` grows it, a shrink is
//! refused, configs are set; a group with a backlog and no consumer
//! crosses its lag threshold, its lag is reported per partition, and its
//! topic gets partitions added.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;

use runnel_client::{Admin, Producer, ProducerConfig, ProducerRecord};
use runnel_operator::crd::{
    LagPolicy, OffsetReset, OffsetResetTarget, PartitionScaling, TopicSpec,
};
use runnel_operator::lag::{decide, group_lag};
use runnel_operator::offset_reset::apply_offset_reset;
use runnel_operator::topic_sync::sync_topic;

fn spec(partitions: i32, config: &[(&str, &str)]) -> TopicSpec {
    TopicSpec {
        cluster: "demo".into(),
        topic_name: None,
        partitions,
        replication_factor: 1,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        delayed_delivery: None,
    }
}

/// A Topic with `delayedDelivery` gets its levels, and their pending
/// records counted: pending while not due, none once moved.
#[test]
fn a_topic_gets_its_delay_levels_and_their_pending_counts() {
    let (_dir, broker) = common::started_with(&[]);
    let bootstrap = broker.bootstrap.clone();
    common::runtime().block_on(async {
        let admin = Admin::new(&bootstrap, "operator-test")
            .await
            .expect("admin");
        let mut with_levels = spec(2, &[]);
        with_levels.delayed_delivery = Some(runnel_operator::crd::DelayedDelivery {
            levels: vec!["1s".into(), "1h".into()],
        });
        let created = sync_topic(&admin, "orders", &with_levels, None)
            .await
            .expect("sync");
        let made: Vec<_> = created
            .levels
            .iter()
            .map(|l| (l.topic.as_str(), l.delay_ms, l.created, l.pending))
            .collect();
        assert_eq!(
            made,
            [
                ("orders_1s", 1_000, true, 0),
                ("orders_1h", 3_600_000, true, 0)
            ]
        );
        assert!(created.entry_synced, "the entry topic was made");
        let entry = admin
            .describe_configs("orders_delayed")
            .await
            .expect("entry configs");
        assert!(
            entry
                .iter()
                .any(|c| c.name == "delivery.levels" && c.value.as_deref() == Some("1s,1h")),
            "{entry:?}"
        );
        let configs = admin.describe_configs("orders_1h").await.expect("configs");
        assert!(
            configs
                .iter()
                .any(|c| c.name == "delivery.target" && c.value.as_deref() == Some("orders")),
            "{configs:?}"
        );
        let producer = Producer::new(ProducerConfig::new(&bootstrap))
            .await
            .expect("producer");
        for (level, count) in [("orders_1s", 3), ("orders_1h", 4)] {
            for i in 0..count {
                let record = ProducerRecord::new(level, b"later").partition(i % 2);
                producer
                    .send(record)
                    .await
                    .expect("send")
                    .await
                    .expect("ack");
            }
        }
        producer.close().await;
        // The 1 h level keeps its 4; the 1 s level's 3 move within seconds.
        let deadline = tokio::time::Instant::now() + common::DEADLINE;
        loop {
            let synced = sync_topic(&admin, "orders", &with_levels, None)
                .await
                .expect("sync");
            let pending: Vec<i64> = synced.levels.iter().map(|l| l.pending).collect();
            assert!(synced.levels.iter().all(|l| !l.created) && !synced.entry_synced);
            if pending == [0, 4] {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "pending stayed {pending:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
}

#[test]
fn topics_are_created_grown_and_never_shrunk_and_lagging_groups_get_partitions() {
    let (_dir, broker) = common::started_with(&[]);
    let bootstrap = broker.bootstrap.clone();
    common::runtime().block_on(async {
        let admin = Admin::new(&bootstrap, "operator-test")
            .await
            .expect("admin");
        let created = sync_topic(
            &admin,
            "orders",
            &spec(3, &[("retention.ms", "3600000")]),
            None,
        )
        .await
        .expect("sync");
        assert!(created.created);
        assert_eq!(created.partitions, 3);
        let again = sync_topic(
            &admin,
            "orders",
            &spec(3, &[("retention.ms", "3600000")]),
            None,
        )
        .await
        .expect("sync");
        assert_eq!(
            (again.created, again.grown_by, again.configs_set.len()),
            (false, 0, 0),
            "nothing to do: {again:?}"
        );
        let grown = sync_topic(
            &admin,
            "orders",
            &spec(5, &[("retention.ms", "7200000")]),
            None,
        )
        .await
        .expect("sync");
        assert_eq!((grown.grown_by, grown.partitions), (2, 5));
        assert_eq!(grown.configs_set, ["retention.ms"]);
        let configs = admin.describe_configs("orders").await.expect("configs");
        assert!(
            configs
                .iter()
                .any(|c| c.name == "retention.ms" && c.value.as_deref() == Some("7200000"))
        );
        let shrink = sync_topic(
            &admin,
            "orders",
            &spec(2, &[("retention.ms", "7200000")]),
            None,
        )
        .await
        .expect("sync");
        assert!(shrink.refused.is_some_and(|r| r.contains("can only grow")));
        assert_eq!(shrink.partitions, 5);

        // A backlog of 120 records and no consumer.
        let producer = Producer::new(ProducerConfig::new(&bootstrap))
            .await
            .expect("producer");
        for i in 0..120 {
            let value = format!("order {i}");
            let record = ProducerRecord::new("orders", value.as_bytes()).partition(i % 5);
            producer.send(record).await.expect("send");
        }
        producer.close().await;
        let topics = vec!["orders".to_string()];
        let lag = group_lag(&admin, "billing", &topics).await.expect("lag");
        assert_eq!(lag.total, 120);
        assert_eq!(lag.partitions.len(), 5);
        assert!(lag.partitions.iter().all(|p| p.lag == 24), "{lag:?}");
        assert_eq!(lag.members, 0);
        let policy = LagPolicy {
            threshold_messages: 100,
            for_seconds: 0,
        };
        let scaling = PartitionScaling {
            max_partitions: 8,
            step: 2,
            cooldown_seconds: 300,
        };
        let partitions = lag.partition_counts[0].1;
        let decision = decide(
            1_000,
            lag.total,
            &policy,
            Some(&scaling),
            None,
            None,
            partitions,
        );
        assert!(decision.lagging);
        assert_eq!(decision.grow_to, Some(7));
        let grow = sync_topic(
            &admin,
            "orders",
            &spec(7, &[("retention.ms", "7200000")]),
            None,
        )
        .await
        .expect("grow");
        assert_eq!(grow.partitions, 7);
        // Partitions that scaling added beyond spec.partitions are not
        // a shrink request.
        let scaled = sync_topic(
            &admin,
            "orders",
            &spec(5, &[("retention.ms", "7200000")]),
            Some(7),
        )
        .await
        .expect("sync");
        assert_eq!((scaled.refused, scaled.partitions), (None, 7));
        let after = group_lag(&admin, "billing", &topics).await.expect("lag");
        assert_eq!(after.partition_counts, [("orders".to_string(), 7)]);
        assert_eq!(after.total, 120, "new partitions are empty");

        // Offset resets: latest clears the lag, earliest brings it back,
        // a datetime before everything is the earliest.
        let reset = |to, datetime: Option<&str>| OffsetReset {
            id: "r1".into(),
            to,
            datetime: datetime.map(str::to_string),
        };
        let lag_after = |reset: OffsetReset| {
            let (admin, topics) = (&admin, &topics);
            async move {
                apply_offset_reset(admin, "billing", topics, &reset)
                    .await
                    .expect("reset");
                group_lag(admin, "billing", topics)
                    .await
                    .expect("lag")
                    .total
            }
        };
        assert_eq!(lag_after(reset(OffsetResetTarget::Latest, None)).await, 0);
        assert_eq!(
            lag_after(reset(OffsetResetTarget::Earliest, None)).await,
            120
        );
        assert_eq!(lag_after(reset(OffsetResetTarget::Latest, None)).await, 0);
        let to_2020 = reset(OffsetResetTarget::Datetime, Some("2020-01-01T00:00:00Z"));
        assert_eq!(lag_after(to_2020).await, 120);
        let bad = reset(OffsetResetTarget::Datetime, Some("yesterday"));
        let err = apply_offset_reset(&admin, "billing", &topics, &bad)
            .await
            .expect_err("not a datetime");
        assert!(err.to_string().contains("yesterday"), "{err}");
    });
}
