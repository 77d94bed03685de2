package dev.runnel.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

@Timeout(90)
class ProducerTest extends WithAdmin {

    private static KafkaConsumer<String, String> assigned(String topic) {
        KafkaConsumer<String, String> consumer = Env.consumer(Map.of());
        TopicPartition tp = new TopicPartition(topic, 0);
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
        return consumer;
    }

    @ParameterizedTest(name = "acks={0}")
    @ValueSource(strings = {"0", "1", "all"})
    void acks(String acks) throws Exception {
        String topic = Env.createTopic(admin, "acks-" + acks, 1);
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        try (KafkaProducer<String, String> producer = Env.producer(Map.of(
                ProducerConfig.ACKS_CONFIG, acks,
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "all".equals(acks)))) {
            for (int i = 0; i < 20; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
            }
            producer.flush();
        }
        for (int i = 0; i < sent.size(); i++) {
            RecordMetadata md = sent.get(i).get();
            assertEquals(0, md.partition());
            // With acks=0 the producer never hears the offset.
            assertEquals("0".equals(acks) ? -1L : i, md.offset());
        }
        try (KafkaConsumer<String, String> consumer = assigned(topic)) {
            List<ConsumerRecord<String, String>> records = Env.pollFor(consumer, 20);
            assertEquals(20, records.size());
            for (int i = 0; i < 20; i++) {
                assertEquals(i, records.get(i).offset());
                assertEquals("k" + i, records.get(i).key());
                assertEquals("v" + i, records.get(i).value());
            }
        }
    }

    @Test
    void idempotentProducerWritesEachRecordOnceInOrder() throws Exception {
        String topic = Env.createTopic(admin, "idempotent", 1);
        int n = 500;
        try (KafkaProducer<String, String> producer = Env.producer(Map.of(
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true,
                ProducerConfig.ACKS_CONFIG, "all",
                ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5,
                ProducerConfig.BATCH_SIZE_CONFIG, 1024,
                ProducerConfig.LINGER_MS_CONFIG, 5))) {
            List<Future<RecordMetadata>> sent = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                sent.add(producer.send(new ProducerRecord<>(topic, "k" + i, "v" + i)));
            }
            producer.flush();
            for (int i = 0; i < n; i++) {
                assertEquals(i, sent.get(i).get().offset());
            }
        }
        try (KafkaConsumer<String, String> consumer = assigned(topic)) {
            List<ConsumerRecord<String, String>> records = Env.pollFor(consumer, n);
            assertEquals(n, records.size());
            for (int i = 0; i < n; i++) {
                assertEquals("v" + i, records.get(i).value());
            }
            assertEquals(n, consumer.endOffsets(List.of(new TopicPartition(topic, 0))).values().iterator().next());
        }
    }

    @ParameterizedTest(name = "compression.type={0}")
    @ValueSource(strings = {"none", "gzip", "snappy", "lz4", "zstd"})
    void compressionRoundTrip(String compression) throws Exception {
        String topic = Env.createTopic(admin, "compression-" + compression, 1);
        long base = System.currentTimeMillis() - 60_000;
        int n = 200;
        try (KafkaProducer<String, String> producer = Env.producer(Map.of(
                ProducerConfig.COMPRESSION_TYPE_CONFIG, compression,
                ProducerConfig.LINGER_MS_CONFIG, 20,
                ProducerConfig.BATCH_SIZE_CONFIG, 64 * 1024))) {
            for (int i = 0; i < n; i++) {
                List<Header> headers = List.of(
                        new RecordHeader("index", Integer.toString(i).getBytes(StandardCharsets.UTF_8)),
                        new RecordHeader("empty", new byte[0]),
                        new RecordHeader("nil", null));
                // Every tenth record has a null key, every seventeenth a null value.
                String key = i % 10 == 0 ? null : "key-" + i;
                String value = i % 17 == 0 ? null : ("value-" + i + "-").repeat(1 + i % 5);
                producer.send(new ProducerRecord<>(topic, 0, base + i * 10L, key, value, headers));
            }
            producer.flush();
        }
        try (KafkaConsumer<String, String> consumer = assigned(topic)) {
            List<ConsumerRecord<String, String>> records = Env.pollFor(consumer, n);
            assertEquals(n, records.size());
            for (int i = 0; i < n; i++) {
                ConsumerRecord<String, String> r = records.get(i);
                assertEquals(i, r.offset());
                assertEquals(i % 10 == 0 ? null : "key-" + i, r.key());
                assertEquals(i % 17 == 0 ? null : ("value-" + i + "-").repeat(1 + i % 5), r.value());
                assertEquals(base + i * 10L, r.timestamp());
                assertEquals(TimestampType.CREATE_TIME, r.timestampType());
                Header[] headers = r.headers().toArray();
                assertEquals(3, headers.length);
                assertEquals("index", headers[0].key());
                assertArrayEquals(Integer.toString(i).getBytes(StandardCharsets.UTF_8), headers[0].value());
                assertEquals("empty", headers[1].key());
                assertArrayEquals(new byte[0], headers[1].value());
                assertEquals("nil", headers[2].key());
                assertNull(headers[2].value());
            }
        }
    }

    @Test
    void keyedRecordsKeepTheirPartition() throws Exception {
        String topic = Env.createTopic(admin, "keyed", 4);
        Map<String, Integer> partitionOfKey = new java.util.HashMap<>();
        try (KafkaProducer<String, String> producer = Env.producer(Map.of())) {
            for (int round = 0; round < 3; round++) {
                for (int k = 0; k < 10; k++) {
                    RecordMetadata md = producer.send(new ProducerRecord<>(topic, "key-" + k, "r" + round)).get();
                    Integer before = partitionOfKey.putIfAbsent("key-" + k, md.partition());
                    if (before != null) {
                        assertEquals(before, md.partition(), "key-" + k + " moved partition");
                    }
                }
            }
        }
        assertTrue(partitionOfKey.values().stream().distinct().count() > 1, "10 keys all hashed to one partition");
    }
}
