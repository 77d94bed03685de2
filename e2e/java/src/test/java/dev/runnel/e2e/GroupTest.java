package dev.runnel.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

@Timeout(120)
class GroupTest extends WithAdmin {

    private static void produceToEach(String topic, int partitions, int perPartition) throws Exception {
        try (KafkaProducer<String, String> producer = Env.producer(Map.of())) {
            for (int p = 0; p < partitions; p++) {
                for (int i = 0; i < perPartition; i++) {
                    producer.send(new ProducerRecord<>(topic, p, "k" + i, "p" + p + "-" + i));
                }
            }
            producer.flush();
        }
    }

    /** Counts the rebalance callbacks a member sees after it first got partitions. */
    static final class Listener implements ConsumerRebalanceListener {
        final List<String> events = new ArrayList<>();

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            events.add("revoked " + Env.partitionsOf(partitions));
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            events.add("assigned " + Env.partitionsOf(partitions));
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            events.add("lost " + Env.partitionsOf(partitions));
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
        "range, org.apache.kafka.clients.consumer.RangeAssignor",
        "roundrobin, org.apache.kafka.clients.consumer.RoundRobinAssignor",
        "sticky, org.apache.kafka.clients.consumer.StickyAssignor",
        "cooperative-sticky, org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    })
    void twoMembersSplitThePartitions(String name, String assignor) throws Exception {
        int partitions = 4;
        String topic = Env.createTopic(admin, "assignor-" + name, partitions);
        String group = Env.unique("group-" + name);
        produceToEach(topic, partitions, 5);
        Map<String, Object> props = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor);
        try (KafkaConsumer<String, String> a = Env.consumer(props);
                KafkaConsumer<String, String> b = Env.consumer(props)) {
            a.subscribe(List.of(topic));
            b.subscribe(List.of(topic));
            // A record may be read twice (by the first member, then again by the one its
            // partition moves to, since nothing is committed): count distinct values.
            Set<String> values = new HashSet<>();
            Instant deadline = Instant.now().plus(Env.TIMEOUT);
            // Both members poll until each holds half of the partitions and every record arrived.
            while (!(a.assignment().size() == 2 && b.assignment().size() == 2 && values.size() == 20)) {
                if (!Instant.now().isBefore(deadline)) {
                    throw new AssertionError("a=" + a.assignment() + " b=" + b.assignment() + " records=" + values.size());
                }
                for (KafkaConsumer<String, String> c : List.of(a, b)) {
                    for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(50))) {
                        assertTrue(c.assignment().contains(new TopicPartition(r.topic(), r.partition())));
                        values.add(r.value());
                    }
                }
            }
            Set<Integer> pa = Env.partitionsOf(a.assignment());
            Set<Integer> pb = Env.partitionsOf(b.assignment());
            Set<Integer> union = new TreeSet<>(pa);
            union.addAll(pb);
            assertEquals(Set.of(0, 1, 2, 3), union);
            Set<Set<Integer>> split = Set.of(pa, pb);
            switch (name) {
                case "range" -> assertEquals(Set.of(Set.of(0, 1), Set.of(2, 3)), split);
                case "roundrobin" -> assertEquals(Set.of(Set.of(0, 2), Set.of(1, 3)), split);
                default -> { } // sticky assignors: any balanced split
            }
            assertEquals(a.groupMetadata().generationId(), b.groupMetadata().generationId());
        }
    }

    @Test
    void staticMemberRejoinsWithItsPartitionsWithoutARebalance() throws Exception {
        int partitions = 4;
        String topic = Env.createTopic(admin, "static", partitions);
        String group = Env.unique("static-group");
        Map<String, Object> common = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30_000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 1_000);
        Map<String, Object> propsA = new java.util.HashMap<>(common);
        propsA.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-a");
        Map<String, Object> propsB = new java.util.HashMap<>(common);
        propsB.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "instance-b");

        Listener listenerB = new Listener();
        try (KafkaConsumer<String, String> b = Env.consumer(propsB)) {
            Set<TopicPartition> assignedA;
            int generation;
            KafkaConsumer<String, String> a = Env.consumer(propsA);
            try {
                a.subscribe(List.of(topic));
                b.subscribe(List.of(topic), listenerB);
                Env.pollAllUntil("both static members with two partitions", List.of(a, b),
                        () -> a.assignment().size() == 2 && b.assignment().size() == 2
                                && a.groupMetadata().generationId() == b.groupMetadata().generationId());
                assignedA = Set.copyOf(a.assignment());
                generation = b.groupMetadata().generationId();
            } finally {
                // A static member leaves no LeaveGroup behind: the group keeps its place.
                a.close();
            }
            listenerB.events.clear();
            Set<TopicPartition> assignedB = Set.copyOf(b.assignment());

            try (KafkaConsumer<String, String> again = Env.consumer(propsA)) {
                again.subscribe(List.of(topic));
                Env.pollAllUntil("the restarted static member's partitions", List.of(again, b),
                        () -> !again.assignment().isEmpty());
                assertEquals(assignedA, again.assignment(), "the restarted member got other partitions");
                assertEquals(generation, again.groupMetadata().generationId(), "the group rebalanced");
                // B keeps polling for a few heartbeats: it must see no rebalance.
                Instant until = Instant.now().plusSeconds(3);
                while (Instant.now().isBefore(until)) {
                    b.poll(Duration.ofMillis(100));
                    again.poll(Duration.ofMillis(100));
                }
                assertEquals(List.of(), listenerB.events, "the other member saw a rebalance");
                assertEquals(assignedB, b.assignment());
                assertEquals(generation, b.groupMetadata().generationId());
                assertEquals(assignedA, again.assignment());
            }
        }
    }

    /**
     * KIP-848's consumer group protocol. Runnel does not serve ConsumerGroupHeartbeat
     * (API key 68), so there the Java client must fail with a clear error; on Kafka
     * the new protocol must work. This is the only test that branches on the broker.
     */
    @Test
    void consumerGroupProtocol() throws Exception {
        int partitions = 2;
        String topic = Env.createTopic(admin, "kip848", partitions);
        String group = Env.unique("kip848-group");
        produceToEach(topic, partitions, 3);
        Map<String, Object> props = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
        try (KafkaConsumer<String, String> consumer = Env.consumer(props)) {
            consumer.subscribe(List.of(topic));
            if (Env.isKafka()) {
                List<ConsumerRecord<String, String>> records = Env.pollFor(consumer, 6);
                assertEquals(6, records.size());
                assertEquals(partitions, consumer.assignment().size());
                consumer.commitSync();
            } else {
                UnsupportedVersionException e = assertThrows(UnsupportedVersionException.class, () -> {
                    Instant deadline = Instant.now().plus(Env.TIMEOUT);
                    while (Instant.now().isBefore(deadline)) {
                        consumer.poll(Duration.ofMillis(100));
                    }
                });
                assertEquals(KIP848_UNSUPPORTED, e.getMessage());
            }
        }
    }

    /** What kafka-clients 4.1 says when the broker's ApiVersions lacks ConsumerGroupHeartbeat. */
    static final String KIP848_UNSUPPORTED = "The cluster does not support the new CONSUMER group protocol. "
            + "Set group.protocol=classic on the consumer configs to revert to the CLASSIC protocol until "
            + "the cluster is upgraded.";
}
