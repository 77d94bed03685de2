package dev.runnel.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(120)
class TransactionTest extends WithAdmin {

    static KafkaProducer<String, String> transactional(String id) {
        KafkaProducer<String, String> producer = Env.producer(Map.of(
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, id,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 60_000));
        producer.initTransactions();
        return producer;
    }

    private static KafkaConsumer<String, String> reader(String topic, String isolation) {
        KafkaConsumer<String, String> consumer = Env.consumer(Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation));
        TopicPartition tp = new TopicPartition(topic, 0);
        consumer.assign(List.of(tp));
        consumer.seekToBeginning(List.of(tp));
        return consumer;
    }

    /** Reads until the consumer's position reaches the partition's end for its isolation level. */
    private static List<ConsumerRecord<String, String>> readToEnd(KafkaConsumer<String, String> consumer, TopicPartition tp) {
        long end = consumer.endOffsets(List.of(tp)).get(tp);
        List<ConsumerRecord<String, String>> records = new ArrayList<>();
        java.time.Instant deadline = java.time.Instant.now().plus(Env.TIMEOUT);
        while (consumer.position(tp) < end) {
            if (!java.time.Instant.now().isBefore(deadline)) {
                throw new AssertionError("position " + consumer.position(tp) + " never reached end " + end);
            }
            consumer.poll(Duration.ofMillis(100)).forEach(records::add);
        }
        return records;
    }

    private static List<String> values(List<ConsumerRecord<String, String>> records) {
        return records.stream().map(ConsumerRecord::value).toList();
    }

    @Test
    void commitAndAbortAsSeenByEachIsolationLevel() throws Exception {
        String topic = Env.createTopic(admin, "txn", 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<String, String> producer = transactional(Env.unique("txn-id"))) {
            producer.beginTransaction();
            for (int i = 0; i < 5; i++) {
                producer.send(new ProducerRecord<>(topic, "k", "committed-1-" + i));
            }
            producer.commitTransaction();
            producer.beginTransaction();
            for (int i = 0; i < 5; i++) {
                producer.send(new ProducerRecord<>(topic, "k", "aborted-" + i));
            }
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            for (int i = 0; i < 5; i++) {
                producer.send(new ProducerRecord<>(topic, "k", "committed-2-" + i));
            }
            producer.commitTransaction();
        }
        List<String> committed = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            committed.add("committed-1-" + i);
        }
        for (int i = 0; i < 5; i++) {
            committed.add("committed-2-" + i);
        }
        try (KafkaConsumer<String, String> rc = reader(topic, "read_committed");
                KafkaConsumer<String, String> ru = reader(topic, "read_uncommitted")) {
            // Three control records (commit, abort, commit markers) take an offset each.
            Env.await("the third transaction's marker", () -> rc.endOffsets(List.of(tp)).get(tp) == 18L);
            assertEquals(committed, values(readToEnd(rc, tp)));
            List<String> all = values(readToEnd(ru, tp));
            assertEquals(15, all.size());
            assertEquals(committed.subList(0, 5), all.subList(0, 5));
            assertTrue(all.subList(5, 10).stream().allMatch(v -> v.startsWith("aborted-")), all.toString());
            assertEquals(committed.subList(5, 10), all.subList(10, 15));
        }
    }

    @Test
    void readCommittedStopsAtAnOpenTransaction() throws Exception {
        String topic = Env.createTopic(admin, "txn-open", 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<String, String> plain = Env.producer(Map.of());
                KafkaProducer<String, String> producer = transactional(Env.unique("txn-open-id"));
                KafkaConsumer<String, String> rc = reader(topic, "read_committed");
                KafkaConsumer<String, String> ru = reader(topic, "read_uncommitted")) {
            plain.send(new ProducerRecord<>(topic, "before")).get();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "open-0"));
            producer.send(new ProducerRecord<>(topic, "open-1"));
            producer.flush();
            plain.send(new ProducerRecord<>(topic, "after")).get();

            // read_uncommitted sees up to the high watermark, read_committed up to the
            // last stable offset: the first offset of the open transaction.
            assertEquals(4L, ru.endOffsets(List.of(tp)).get(tp));
            assertEquals(1L, rc.endOffsets(List.of(tp)).get(tp));
            assertEquals(List.of("before", "open-0", "open-1", "after"), values(Env.pollFor(ru, 4)));
            assertEquals(List.of("before"), values(readToEnd(rc, tp)));
            assertEquals(1L, rc.position(tp));

            producer.commitTransaction();
            Env.await("the commit marker", () -> rc.endOffsets(List.of(tp)).get(tp) == 5L);
            assertEquals(List.of("open-0", "open-1", "after"), values(readToEnd(rc, tp)));
        }
    }

    /** Committed offsets as the group coordinator holds them once no transaction is pending. */
    private static Map<TopicPartition, OffsetAndMetadata> stableOffsets(String group) throws Exception {
        return admin.listConsumerGroupOffsets(group, new ListConsumerGroupOffsetsOptions().requireStable(true))
                .partitionsToOffsetAndMetadata().get();
    }

    /**
     * The group's stable committed offset of {@code tp}. Right after a commit or an abort the broker may still
     * be writing the transaction's markers and answers UNSTABLE_OFFSET_COMMIT, which the admin client reports
     * as no offset (Kafka did so in a CI run): wait for one, with a deadline.
     */
    private static long stableOffset(String group, TopicPartition tp) {
        long[] found = {-1};
        Env.await("a stable committed offset of " + tp, () -> {
            OffsetAndMetadata offset = stableOffsets(group).get(tp);
            if (offset != null) {
                found[0] = offset.offset();
            }
            return offset != null;
        });
        return found[0];
    }

    @Test
    void consumeTransformProduceMovesOffsetsOnlyOnCommit() throws Exception {
        String input = Env.createTopic(admin, "ctp-in", 1);
        String output = Env.createTopic(admin, "ctp-out", 1);
        String group = Env.unique("ctp-group");
        TopicPartition in = new TopicPartition(input, 0);
        TopicPartition out = new TopicPartition(output, 0);
        try (KafkaProducer<String, String> plain = Env.producer(Map.of())) {
            for (int i = 0; i < 10; i++) {
                plain.send(new ProducerRecord<>(input, "k" + i, "in-" + i));
            }
            plain.flush();
        }
        try (KafkaConsumer<String, String> consumer = Env.consumer(Map.of(
                        ConsumerConfig.GROUP_ID_CONFIG, group,
                        ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
                KafkaProducer<String, String> producer = transactional(Env.unique("ctp-id"))) {
            consumer.subscribe(List.of(input));

            // Round 1: transform the ten records and commit.
            assertEquals(10, transformOnce(consumer, producer, output, 10, true));
            assertEquals(10L, stableOffset(group, in));

            // Round 2: five more, transformed, then aborted: the group's offset stays.
            try (KafkaProducer<String, String> plain = Env.producer(Map.of())) {
                for (int i = 10; i < 15; i++) {
                    plain.send(new ProducerRecord<>(input, "k" + i, "in-" + i));
                }
                plain.flush();
            }
            assertEquals(5, transformOnce(consumer, producer, output, 5, false));
            assertEquals(10L, stableOffset(group, in));

            // Round 3: rewind to the committed offset and redo the five, committing.
            consumer.seek(in, consumer.committed(java.util.Set.of(in)).get(in));
            assertEquals(5, transformOnce(consumer, producer, output, 5, true));
            assertEquals(15L, stableOffset(group, in));
        }
        try (KafkaConsumer<String, String> rc = reader(output, "read_committed")) {
            List<String> got = values(readToEnd(rc, out));
            List<String> want = new ArrayList<>();
            for (int i = 0; i < 15; i++) {
                want.add("out-in-" + i);
            }
            assertEquals(want, got);
        }
    }

    /** Reads {@code count} records, produces them transformed with the offsets in one transaction. */
    private static int transformOnce(KafkaConsumer<String, String> consumer, KafkaProducer<String, String> producer,
            String output, int count, boolean commit) {
        List<ConsumerRecord<String, String>> batch = new ArrayList<>();
        java.time.Instant deadline = java.time.Instant.now().plus(Env.TIMEOUT);
        while (batch.size() < count) {
            if (!java.time.Instant.now().isBefore(deadline)) {
                throw new AssertionError("only " + batch.size() + " of " + count + " input records");
            }
            ConsumerRecords<String, String> polled = consumer.poll(Duration.ofMillis(100));
            polled.forEach(batch::add);
        }
        assertFalse(batch.size() > count, "read " + batch.size() + " records, expected " + count);
        producer.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (ConsumerRecord<String, String> r : batch) {
            producer.send(new ProducerRecord<>(output, r.key(), "out-" + r.value()));
            offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
        if (commit) {
            producer.commitTransaction();
        } else {
            producer.abortTransaction();
        }
        return batch.size();
    }
}
