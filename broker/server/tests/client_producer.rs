//! runnel-client's producer against the real broker: batching by
//! `linger.ms` and `batch.size` (counted in the broker's Produce request
//! metric), `acks`, Kafka's key partitioning, and its errors.

#[allow(dead_code)] // each test binary uses a part of the helpers
mod common;

use common::Broker;
use runnel_client::partitioner::partition_for_key;
use runnel_client::{ClientError, Producer, ProducerConfig, ProducerRecord};

/// Produce requests the broker has handled, from its metrics.
fn produce_requests(metrics: &str) -> u64 {
    common::scrape_metrics(metrics)
        .lines()
        .find(|l| l.starts_with("runnel_requests_total{api=\"Produce\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn config(broker: &Broker, settings: &[(&str, &str)]) -> ProducerConfig {
    settings
        .iter()
        .try_fold(ProducerConfig::new(&broker.bootstrap), |c, (k, v)| {
            c.set(k, v)
        })
        .expect("valid settings")
}

#[test]
fn linger_gathers_records_into_one_request_and_offsets_follow() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        let producer = Producer::new(config(&broker, &[("linger.ms", "200")]))
            .await
            .expect("producer");
        // Metadata (and the topic) first, so only the records' request counts.
        producer
            .send(ProducerRecord::new("lingering", b"first").partition(0))
            .await
            .expect("send")
            .await
            .expect("delivered");
        let before = produce_requests(&broker.metrics);
        let mut deliveries = Vec::new();
        for i in 0..20 {
            let value = format!("value {i}");
            let record = ProducerRecord::new("lingering", value.as_bytes()).partition(1);
            deliveries.push(producer.send(record).await.expect("send"));
        }
        let mut offsets = Vec::new();
        for delivery in deliveries {
            let landed = delivery.await.expect("delivered");
            assert_eq!(landed.partition, 1);
            offsets.push(landed.offset);
        }
        assert_eq!(offsets, (0..20).collect::<Vec<i64>>());
        assert_eq!(produce_requests(&broker.metrics) - before, 1);
        producer.close().await;
    });
}

#[test]
fn a_full_batch_goes_without_waiting_for_linger() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        // Each 100-byte record fills a batch of batch.size 100 on its own;
        // linger is an hour, so only a full batch can be sent.
        let settings = [("linger.ms", "3600000"), ("batch.size", "100")];
        let producer = Producer::new(config(&broker, &settings))
            .await
            .expect("producer");
        let value = [7u8; 100];
        for expected in 0..5 {
            let record = ProducerRecord::new("full", &value).partition(0);
            let delivery = producer.send(record).await.expect("send");
            // Only a sent-when-full batch can be answered within the deadline.
            let landed = tokio::time::timeout(common::DEADLINE, delivery)
                .await
                .expect("the full batch was not sent before linger.ms")
                .expect("delivered");
            assert_eq!(landed.offset, expected);
        }
        // close() flushes: nothing is left to wait for linger either.
        producer.close().await;
    });
}

#[test]
fn keys_land_on_the_java_clients_partition_and_acks_0_reports_no_offset() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        let producer = Producer::new(config(&broker, &[("acks", "0"), ("linger.ms", "0")]))
            .await
            .expect("producer");
        let mut deliveries = Vec::new();
        for i in 0..30 {
            let key = format!("key-{i}");
            let record = ProducerRecord::new("keyed", b"v").key(key.as_bytes());
            let delivery = producer.send(record).await.expect("send");
            deliveries.push((key, delivery));
        }
        for (key, delivery) in deliveries {
            let landed = delivery.await.expect("delivered");
            assert_eq!(
                landed.partition,
                partition_for_key(key.as_bytes(), 3),
                "{key}"
            );
            assert_eq!(landed.offset, -1, "acks=0 learns no offset");
        }
        producer.close().await;
        // acks=0 gets no answer, so close() cannot wait for the appends:
        // wait for the 30 records to be in the log.
        let admin = runnel_client::Admin::new(&broker.bootstrap, "test")
            .await
            .expect("admin");
        let partitions: Vec<(String, i32)> = (0..3).map(|p| ("keyed".to_string(), p)).collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ends = admin.end_offsets(&partitions).await.expect("end offsets");
            if ends.iter().sum::<i64>() == 30 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "acks=0 records not appended within 30 s: {ends:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }

        // acks=1: the same keys, now with offsets, on the same partitions.
        let producer = Producer::new(config(&broker, &[("acks", "1")]))
            .await
            .expect("producer");
        let landed = producer
            .send(ProducerRecord::new("keyed", b"v").key(b"key-0"))
            .await
            .expect("send")
            .await
            .expect("delivered");
        assert_eq!(landed.partition, partition_for_key(b"key-0", 3));
        assert!(landed.offset >= 1, "after the acks=0 records: {landed:?}");
        producer.close().await;
    });
}

#[test]
fn bad_records_are_refused_with_what_was_wrong() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        let producer = Producer::new(config(&broker, &[("max.request.size", "1000")]))
            .await
            .expect("producer");
        let err = producer
            .send(ProducerRecord::new("refused", b"v").partition(7))
            .await
            .expect_err("no partition 7");
        assert!(
            matches!(
                err,
                ClientError::UnknownPartition {
                    partition: 7,
                    partitions: 3,
                    ..
                }
            ),
            "{err}"
        );
        let err = producer
            .send(ProducerRecord::new("refused", &[0u8; 2000]))
            .await
            .expect_err("too large");
        assert_eq!(
            err.to_string(),
            "the record of 2000 bytes is larger than max.request.size (1000)"
        );
        producer.close().await;
    });
    let err = common::runtime()
        .block_on(Producer::new(ProducerConfig::new("127.0.0.1:1")))
        .expect_err("nothing listens on port 1");
    assert_eq!(
        err.to_string(),
        "no broker of 127.0.0.1:1 answered Metadata"
    );
}

#[test]
fn a_full_buffer_memory_blocks_then_fails_after_max_block_ms() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    common::runtime().block_on(async {
        // Nothing is sent before a flush (an hour of linger, batches never
        // fill), so 1000 bytes of buffer hold 8 records of 100 bytes.
        let settings = [
            ("buffer.memory", "1000"),
            ("max.block.ms", "300"),
            ("linger.ms", "3600000"),
            ("batch.size", "1000000"),
        ];
        let producer = Producer::new(config(&broker, &settings))
            .await
            .expect("producer");
        let value = [1u8; 100];
        let mut deliveries = Vec::new();
        for _ in 0..8 {
            let record = ProducerRecord::new("bounded", &value).partition(0);
            deliveries.push(producer.send(record).await.expect("room for it"));
        }
        let err = producer
            .send(ProducerRecord::new("bounded", &value).partition(0))
            .await
            .expect_err("the buffer is full");
        assert_eq!(
            err.to_string(),
            "no room in buffer.memory (1000 bytes) within max.block.ms (300 ms)"
        );
        // Sending what waits frees the room again.
        producer.flush().await;
        for delivery in deliveries {
            delivery.await.expect("delivered");
        }
        let delivery = producer
            .send(ProducerRecord::new("bounded", &value).partition(0))
            .await
            .expect("room again");
        producer.flush().await;
        assert_eq!(delivery.await.expect("delivered").offset, 8);
        let err = producer
            .send(ProducerRecord::new("bounded", &[0u8; 990]))
            .await
            .expect_err("larger than the whole buffer");
        assert!(matches!(err, ClientError::BufferTooSmall { .. }), "{err}");
        producer.close().await;
    });
}

#[test]
fn retries_carry_records_across_a_broker_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listeners = format!("listeners=PLAINTEXT://127.0.0.1:{port}");
    let settings: [&str; 2] = ["num.partitions=1", &listeners];
    let mut broker = Broker::serve_with(dir.path(), &settings);
    broker.wait_ready();
    let bootstrap = broker.bootstrap.clone();
    let rt = common::runtime();
    let producer = rt.block_on(async {
        let config = ProducerConfig::new(&bootstrap)
            .set("retry.backoff.ms", "50")
            .and_then(|c| c.set("linger.ms", "0"))
            .expect("valid");
        let producer = Producer::new(config).await.expect("producer");
        let first = producer
            .send(ProducerRecord::new("restarted", b"before"))
            .await
            .expect("send")
            .await
            .expect("delivered");
        assert_eq!(first.offset, 0);
        producer
    });
    broker.kill();
    // Sent while no broker listens: they wait (metadata, then retries).
    let sends = rt.spawn(async move {
        let mut offsets = Vec::new();
        for i in 0..10 {
            let value = format!("during {i}");
            let delivery = producer
                .send(ProducerRecord::new("restarted", value.as_bytes()))
                .await
                .expect("send waits for the broker");
            offsets.push(delivery.await.expect("delivered after the restart").offset);
        }
        producer.close().await;
        offsets
    });
    let mut broker = Broker::serve_with(dir.path(), &settings);
    broker.wait_ready();
    let offsets = rt
        .block_on(async { tokio::time::timeout(common::DEADLINE, sends).await })
        .expect("the records were not delivered after the restart")
        .expect("sender task");
    assert_eq!(offsets, (1..=10).collect::<Vec<i64>>());
}

#[test]
fn every_compression_type_is_read_back_by_librdkafka() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("compressed-{codec}");
        common::runtime().block_on(async {
            let producer = Producer::new(config(&broker, &[("compression.type", codec)]))
                .await
                .expect("producer");
            let mut deliveries = Vec::new();
            for i in 0..100 {
                let value = format!("{codec} record {i} {}", "x".repeat(i));
                let record = ProducerRecord::new(&topic, value.as_bytes()).partition(0);
                deliveries.push(producer.send(record).await.expect("send"));
            }
            for (i, delivery) in deliveries.into_iter().enumerate() {
                assert_eq!(delivery.await.expect("delivered").offset, i as i64);
            }
            producer.close().await;
        });
        let output = common::kcat()
            .args([
                "-b",
                &broker.bootstrap,
                "-C",
                "-t",
                &topic,
                "-o",
                "beginning",
                "-e",
            ])
            .args(["-f", "%s\\n"])
            .output()
            .expect("run kcat");
        assert!(output.status.success(), "kcat: {output:?}");
        let text = String::from_utf8_lossy(&output.stdout);
        let values: Vec<&str> = text.lines().collect();
        assert_eq!(values.len(), 100, "{codec}: {text}");
        for (i, value) in values.iter().enumerate() {
            assert_eq!(*value, format!("{codec} record {i} {}", "x".repeat(i)));
        }
    }
}

#[test]
fn keys_land_where_librdkafka_and_the_java_algorithm_put_them() {
    let (_dir, broker) = common::started_with(&["num.partitions=3"]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let output = std::process::Command::new("python3")
        .arg(script.join("partitions.py"))
        .args([broker.bootstrap.as_str(), "java-keys", "7"])
        .current_dir(&script)
        .output()
        .expect("run partitions.py");
    assert!(output.status.success(), "partitions.py: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    let expected: Vec<(Vec<u8>, i32)> = text
        .lines()
        .map(|line| {
            let (hex, partition) = line.split_once(' ').expect("hex partition");
            let key = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                .collect();
            (key, partition.parse().expect("partition"))
        })
        .collect();
    assert_eq!(expected.len(), 120);
    common::runtime().block_on(async {
        let producer = Producer::new(config(&broker, &[])).await.expect("producer");
        for (key, partition) in &expected {
            assert_eq!(partition_for_key(key, 7), *partition, "{key:?}");
            let record = ProducerRecord::new("java-keys", b"ours").key(key);
            let landed = producer
                .send(record)
                .await
                .expect("send")
                .await
                .expect("delivered");
            assert_eq!(landed.partition, *partition, "{key:?}");
        }
        producer.close().await;
    });
}
