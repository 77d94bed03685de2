package dev.runnel.e2e;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.function.BooleanSupplier;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * What every test shares: the broker under test (system properties
 * {@code bootstrap.servers} and {@code broker}), clients configured for it,
 * fresh names, and waiting for a condition with a deadline (never a bare
 * sleep).
 */
final class Env {
    static final String BOOTSTRAP = System.getProperty("bootstrap.servers", "127.0.0.1:9092");
    /** {@code runnel}, {@code kafka} or {@code runnel-cluster}; only the
     *  KIP-848 test and the cluster's size may branch on it. */
    static final String BROKER = System.getProperty("broker", "runnel");
    static final Duration TIMEOUT = Duration.ofSeconds(30);

    private Env() {}

    static boolean isKafka() {
        return "kafka".equals(BROKER);
    }

    /** The brokers under test: three for {@code runnel-cluster}, else one. */
    static int brokerCount() {
        return "runnel-cluster".equals(BROKER) ? 3 : 1;
    }

    /** A topic, group or transactional id no other test or run uses. */
    static String unique(String prefix) {
        return prefix + "-" + UUID.randomUUID().toString().substring(0, 12);
    }

    static Admin admin() {
        Map<String, Object> props = new HashMap<>();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 20_000);
        return Admin.create(props);
    }

    static KafkaProducer<String, String> producer(Map<String, Object> extra) {
        Map<String, Object> props = new HashMap<>();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 20_000);
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 30_000);
        props.putAll(extra);
        return new KafkaProducer<>(props);
    }

    static KafkaConsumer<String, String> consumer(Map<String, Object> extra) {
        Map<String, Object> props = new HashMap<>();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, BOOTSTRAP);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
        props.putAll(extra);
        return new KafkaConsumer<>(props);
    }

    /** Creates a fresh topic and waits until every partition has a leader. */
    static String createTopic(Admin admin, String prefix, int partitions) throws Exception {
        return createTopic(admin, prefix, partitions, Map.of());
    }

    static String createTopic(Admin admin, String prefix, int partitions, Map<String, String> configs)
            throws Exception {
        String name = unique(prefix);
        // No replication factor: the broker's default.replication.factor
        // (three on a cluster).
        admin.createTopics(List.of(new NewTopic(name, Optional.of(partitions), Optional.empty()).configs(configs)))
                .all().get();
        awaitLeaders(admin, name, partitions);
        return name;
    }

    /**
     * Waits until every partition of {@code topic} has a leader that serves it. Metadata
     * names a leader before Kafka's broker has created the partition's log; a producer
     * that sends in that window gets NOT_LEADER_OR_FOLLOWER, and the Java idempotent
     * producer's retry of it was seen looping on OUT_OF_ORDER_SEQUENCE_NUMBER until its
     * delivery timeout, losing the record (GroupTest on Kafka, once). ListOffsets
     * answers only once the leader hosts the partition.
     */
    static void awaitLeaders(Admin admin, String topic, int partitions) {
        await("topic " + topic + " with " + partitions + " led partitions", () -> {
            try {
                TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                boolean led = d.partitions().size() == partitions
                        && d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty());
                if (!led) {
                    return false;
                }
                Map<TopicPartition, OffsetSpec> latest = new HashMap<>();
                for (int p = 0; p < partitions; p++) {
                    latest.put(new TopicPartition(topic, p), OffsetSpec.latest());
                }
                admin.listOffsets(latest).all().get();
                return true;
            } catch (ExecutionException e) {
                return false;
            }
        });
    }

    /** Waits until {@code condition} holds, checking every 50 ms, for at most {@link #TIMEOUT}. */
    static void await(String what, Callable condition) {
        Instant deadline = Instant.now().plus(TIMEOUT);
        Exception last = null;
        while (Instant.now().isBefore(deadline)) {
            try {
                if (condition.call()) {
                    return;
                }
            } catch (Exception e) {
                last = e;
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for " + what, e);
            }
        }
        throw new AssertionError("timed out after " + TIMEOUT + " waiting for " + what, last);
    }

    /** A condition that may throw (an admin call's future, say). */
    @FunctionalInterface
    interface Callable {
        boolean call() throws Exception;
    }

    /** Polls until {@code count} records have arrived, or fails at the deadline. */
    static <K, V> List<ConsumerRecord<K, V>> pollFor(KafkaConsumer<K, V> consumer, int count) {
        List<ConsumerRecord<K, V>> records = new ArrayList<>();
        Instant deadline = Instant.now().plus(TIMEOUT);
        while (records.size() < count) {
            if (!Instant.now().isBefore(deadline)) {
                throw new AssertionError("timed out after " + TIMEOUT + " with " + records.size() + " of "
                        + count + " records");
            }
            consumer.poll(Duration.ofMillis(100)).forEach(records::add);
        }
        return records;
    }

    /** Polls each consumer in turn (so that none blocks a rebalance) until {@code done} holds. */
    static void pollAllUntil(String what, Collection<? extends KafkaConsumer<?, ?>> consumers, BooleanSupplier done) {
        Instant deadline = Instant.now().plus(TIMEOUT);
        while (!done.getAsBoolean()) {
            if (!Instant.now().isBefore(deadline)) {
                throw new AssertionError("timed out after " + TIMEOUT + " waiting for " + what);
            }
            for (KafkaConsumer<?, ?> c : consumers) {
                c.poll(Duration.ofMillis(50));
            }
        }
    }

    static Set<Integer> partitionsOf(Collection<org.apache.kafka.common.TopicPartition> tps) {
        Set<Integer> out = new java.util.TreeSet<>();
        tps.forEach(tp -> out.add(tp.partition()));
        return out;
    }
}
