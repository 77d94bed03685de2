//! runnel-client's consumer against the real broker: assigned partitions,
//! `auto.offset.reset`, committed offsets (sync and async), `seek`,
//! compressed batches.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use runnel_client::{
    ClientError, Consumer, ConsumerConfig, ConsumerRecord, Producer, ProducerConfig, ProducerRecord,
};

/// Sends `values` round-robin over 3 partitions with `compression`.
async fn produce(bootstrap: &str, topic: &str, values: &[String], compression: &str) {
    let config = ProducerConfig::new(bootstrap)
        .set("compression.type", compression)
        .expect("valid");
    let producer = Producer::new(config).await.expect("producer");
    let mut deliveries = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let record = ProducerRecord::new(topic, value.as_bytes()).partition(i as i32 % 3);
        deliveries.push(producer.send(record).await.expect("send"));
    }
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
    producer.close().await;
}

fn consumer_config(bootstrap: &str, settings: &[(&str, &str)]) -> ConsumerConfig {
    settings
        .iter()
        .try_fold(ConsumerConfig::new(bootstrap), |c, (k, v)| c.set(k, v))
        .expect("valid settings")
}

/// Polls until `count` records came or the deadline passed.
async fn consume(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let deadline = tokio::time::Instant::now() + common::DEADLINE;
    let mut records = Vec::new();
    while records.len() < count && tokio::time::Instant::now() < deadline {
        records.extend(consumer.poll(Duration::from_secs(1)).await.expect("poll"));
    }
    records
}

fn values(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("value {i}")).collect()
}

#[test]
fn assigned_partitions_are_read_from_the_earliest_offset_in_order() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        for codec in ["none", "zstd"] {
            let topic = format!("read-{codec}");
            produce(&broker.bootstrap, &topic, &values(90), codec).await;
            let config = consumer_config(&broker.bootstrap, &[("auto.offset.reset", "earliest")]);
            let mut consumer = Consumer::new(config).await.expect("consumer");
            let partitions: Vec<(&str, i32)> = (0..3).map(|p| (topic.as_str(), p)).collect();
            consumer.assign(&partitions).await.expect("assign");
            let records = consume(&mut consumer, 90).await;
            assert_eq!(records.len(), 90, "{codec}");
            let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
            for r in &records {
                let i: usize = std::str::from_utf8(r.value.as_deref().expect("value"))
                    .expect("utf8")
                    .trim_start_matches("value ")
                    .parse()
                    .expect("index");
                assert_eq!(r.partition, i as i32 % 3);
                assert_eq!(r.offset, (i / 3) as i64);
                by_partition.entry(r.partition).or_default().push(r.offset);
            }
            for offsets in by_partition.values() {
                assert_eq!(offsets, &(0..30).collect::<Vec<i64>>());
            }
            assert_eq!(consumer.position(&topic, 0), Some(30));
        }
    });
}

#[test]
fn latest_reads_only_new_records_and_seek_goes_back() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        produce(&broker.bootstrap, "tail", &values(30), "none").await;
        let mut consumer = Consumer::new(consumer_config(&broker.bootstrap, &[]))
            .await
            .expect("consumer");
        consumer.assign(&[("tail", 0)]).await.expect("assign");
        assert!(
            consumer
                .poll(Duration::from_millis(600))
                .await
                .expect("poll")
                .is_empty()
        );
        assert_eq!(consumer.position("tail", 0), Some(10), "latest: the end");
        produce(&broker.bootstrap, "tail", &values(3), "none").await;
        let records = consume(&mut consumer, 1).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].offset, 10);
        assert_eq!(records[0].value.as_deref(), Some(&b"value 0"[..]));
        consumer.seek("tail", 0, 2);
        let records = consume(&mut consumer, 9).await;
        let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (2..11).collect::<Vec<i64>>());
    });
}

#[test]
fn committed_offsets_are_where_the_next_consumer_of_the_group_starts() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        produce(&broker.bootstrap, "resume", &values(30), "none").await;
        let settings = [("group.id", "resumers"), ("auto.offset.reset", "earliest")];
        let mut consumer = Consumer::new(consumer_config(&broker.bootstrap, &settings))
            .await
            .expect("consumer");
        assert_eq!(
            consumer.committed("resume", 0).await.expect("committed"),
            None
        );
        consumer.assign(&[("resume", 0)]).await.expect("assign");
        let first = consume(&mut consumer, 10).await;
        assert_eq!(first.len(), 10);
        consumer.seek("resume", 0, 4);
        consumer.commit().await.expect("commit");
        assert_eq!(
            consumer.committed("resume", 0).await.expect("committed"),
            Some(4)
        );
        // Asynchronous commits go out in order and are answered in order:
        // the newer one stays, whichever answer is awaited first.
        consumer.seek("resume", 0, 7);
        let older = consumer.commit_async().await.expect("sent");
        consumer.seek("resume", 0, 8);
        let newer = consumer.commit_async().await.expect("sent");
        newer.await.expect("newer commit");
        older.await.expect("older commit");
        assert_eq!(
            consumer.committed("resume", 0).await.expect("committed"),
            Some(8)
        );
        consumer.seek("resume", 0, 4);
        consumer.commit().await.expect("commit");

        let mut next = Consumer::new(consumer_config(&broker.bootstrap, &settings))
            .await
            .expect("consumer");
        next.assign(&[("resume", 0)]).await.expect("assign");
        let records = consume(&mut next, 6).await;
        assert_eq!(records.first().map(|r| r.offset), Some(4));

        let none = consumer_config(
            &broker.bootstrap,
            &[("group.id", "fresh"), ("auto.offset.reset", "none")],
        );
        let mut strict = Consumer::new(none).await.expect("consumer");
        strict.assign(&[("resume", 0)]).await.expect("assign");
        let err = strict
            .poll(Duration::from_secs(5))
            .await
            .expect_err("no offset");
        assert!(
            matches!(err, ClientError::NoOffset { partition: 0, .. }),
            "{err}"
        );
        let err = strict
            .assign(&[("resume", 5)])
            .await
            .expect_err("no partition 5");
        assert!(matches!(err, ClientError::UnknownPartition { .. }), "{err}");
    });
}

#[test]
fn offsets_for_times_and_pause_resume() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        let producer = Producer::new(ProducerConfig::new(&broker.bootstrap))
            .await
            .expect("producer");
        let base = 1_700_000_000_000i64;
        for partition in 0..2 {
            for i in 0..10i64 {
                let mut record = ProducerRecord::new("timed", b"v").partition(partition);
                record.timestamp = Some(base + i * 1000);
                producer
                    .send(record)
                    .await
                    .expect("send")
                    .await
                    .expect("delivered");
            }
        }
        producer.close().await;

        let config = consumer_config(&broker.bootstrap, &[("auto.offset.reset", "earliest")]);
        let mut consumer = Consumer::new(config).await.expect("consumer");
        let found = consumer
            .offsets_for_times(&[("timed", 0), ("timed", 1)], base + 3_500)
            .await
            .expect("offsets for times");
        assert_eq!(found, [Some(4), Some(4)]);
        let past = consumer
            .offsets_for_times(&[("timed", 0)], base + 60_000)
            .await
            .expect("offsets for times");
        assert_eq!(past, [None]);

        consumer
            .assign(&[("timed", 0), ("timed", 1)])
            .await
            .expect("assign");
        consumer.pause(&[("timed", 1)]);
        let records = consume(&mut consumer, 10).await;
        assert!(
            records.iter().all(|r| r.partition == 0),
            "paused partition read"
        );
        assert!(
            consumer
                .poll(Duration::from_millis(300))
                .await
                .expect("poll")
                .is_empty()
        );
        consumer.resume(&[("timed", 1)]);
        let records = consume(&mut consumer, 10).await;
        assert_eq!(records.len(), 10);
        assert!(records.iter().all(|r| r.partition == 1));
        assert_eq!(records[3].timestamp, base + 3_000);
    });
}
