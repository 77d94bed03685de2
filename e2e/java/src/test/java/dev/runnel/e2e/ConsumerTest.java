package dev.runnel.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(90)
class ConsumerTest extends WithAdmin {

    /** Produces {@code count} records "p{partition}-{i}" to the partition, with timestamps base + 1000 * i. */
    private static void produce(String topic, int partition, int count, long base) throws Exception {
        try (KafkaProducer<String, String> producer = Env.producer(Map.of())) {
            for (int i = 0; i < count; i++) {
                producer.send(new ProducerRecord<>(topic, partition, base + 1000L * i, "k" + i, "p" + partition + "-" + i));
            }
            producer.flush();
        }
    }

    @Test
    void assignReadsOnlyTheAssignedPartition() throws Exception {
        String topic = Env.createTopic(admin, "assign", 3);
        long now = System.currentTimeMillis();
        for (int p = 0; p < 3; p++) {
            produce(topic, p, 5, now);
        }
        TopicPartition tp = new TopicPartition(topic, 1);
        try (KafkaConsumer<String, String> consumer = Env.consumer(Map.of())) {
            consumer.assign(List.of(tp));
            assertEquals(Set.of(tp), consumer.assignment());
            List<ConsumerRecord<String, String>> records = Env.pollFor(consumer, 5);
            assertEquals(5, records.size());
            for (int i = 0; i < 5; i++) {
                assertEquals(1, records.get(i).partition());
                assertEquals("p1-" + i, records.get(i).value());
            }
            assertEquals(5L, consumer.position(tp));
        }
    }

    @Test
    void seekSeekToBeginningAndSeekToEnd() throws Exception {
        String topic = Env.createTopic(admin, "seek", 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        produce(topic, 0, 10, System.currentTimeMillis());
        try (KafkaConsumer<String, String> consumer = Env.consumer(Map.of())) {
            consumer.assign(List.of(tp));
            consumer.seek(tp, 6);
            List<ConsumerRecord<String, String>> fromSix = Env.pollFor(consumer, 4);
            assertEquals(6L, fromSix.get(0).offset());
            assertEquals("p0-6", fromSix.get(0).value());
            assertEquals(10L, consumer.position(tp));

            consumer.seekToBeginning(List.of(tp));
            assertEquals(0L, consumer.position(tp));
            assertEquals("p0-0", Env.pollFor(consumer, 1).get(0).value());

            consumer.seekToEnd(List.of(tp));
            assertEquals(10L, consumer.position(tp));
            produce(topic, 0, 1, System.currentTimeMillis());
            ConsumerRecord<String, String> next = Env.pollFor(consumer, 1).get(0);
            assertEquals(10L, next.offset());
        }
    }

    @Test
    void offsetsForTimesFindsTheFirstRecordAtOrAfter() throws Exception {
        String topic = Env.createTopic(admin, "times", 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        long base = System.currentTimeMillis() - 3_600_000;
        produce(topic, 0, 10, base);
        try (KafkaConsumer<String, String> consumer = Env.consumer(Map.of())) {
            Map<TopicPartition, OffsetAndTimestamp> exact = consumer.offsetsForTimes(Map.of(tp, base + 4000));
            assertEquals(4L, exact.get(tp).offset());
            assertEquals(base + 4000, exact.get(tp).timestamp());

            Map<TopicPartition, OffsetAndTimestamp> between = consumer.offsetsForTimes(Map.of(tp, base + 2500));
            assertEquals(3L, between.get(tp).offset());
            assertEquals(base + 3000, between.get(tp).timestamp());

            assertEquals(0L, consumer.offsetsForTimes(Map.of(tp, 0L)).get(tp).offset());
            Map<TopicPartition, OffsetAndTimestamp> past = consumer.offsetsForTimes(Map.of(tp, base + 60_000));
            assertNull(past.get(tp), "no record at or after the last timestamp");

            // Replay from a time: seek to the offset found.
            consumer.assign(List.of(tp));
            consumer.seek(tp, between.get(tp).offset());
            ConsumerRecord<String, String> first = Env.pollFor(consumer, 1).get(0);
            assertEquals("p0-3", first.value());
            assertEquals(base + 3000, first.timestamp());
        }
    }

    @Test
    void commitSyncAndCommitted() throws Exception {
        String topic = Env.createTopic(admin, "commit", 2);
        String group = Env.unique("commit-group");
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        produce(topic, 0, 10, System.currentTimeMillis());
        produce(topic, 1, 10, System.currentTimeMillis());
        Map<String, Object> props = Map.of(ConsumerConfig.GROUP_ID_CONFIG, group);
        try (KafkaConsumer<String, String> consumer = Env.consumer(props)) {
            consumer.assign(List.of(p0, p1));
            assertNull(consumer.committed(Set.of(p0)).get(p0), "nothing committed yet");
            Env.pollFor(consumer, 20);
            consumer.commitSync(Map.of(p0, new OffsetAndMetadata(7, "seven"), p1, new OffsetAndMetadata(3)));
            Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(Set.of(p0, p1));
            assertEquals(7L, committed.get(p0).offset());
            assertEquals("seven", committed.get(p0).metadata());
            assertEquals(3L, committed.get(p1).offset());
            assertEquals("", committed.get(p1).metadata());
            // commitSync() with no argument commits the positions.
            consumer.commitSync();
            assertEquals(10L, consumer.committed(Set.of(p0)).get(p0).offset());
            assertEquals(10L, consumer.committed(Set.of(p1)).get(p1).offset());
            consumer.commitSync(Map.of(p0, new OffsetAndMetadata(7, "seven")));
        }
        // A new member of the group starts at the committed offsets.
        try (KafkaConsumer<String, String> consumer = Env.consumer(props)) {
            consumer.assign(List.of(p0, p1));
            assertEquals(7L, consumer.position(p0));
            assertEquals(10L, consumer.position(p1));
            List<ConsumerRecord<String, String>> rest = Env.pollFor(consumer, 3);
            assertEquals("p0-7", rest.get(0).value());
            assertTrue(consumer.poll(Duration.ofMillis(200)).isEmpty());
        }
    }
}
