package dev.runnel.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Predicate;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.AlterConfigsRequest;
import org.apache.kafka.common.requests.AlterConfigsResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(90)
class AdminTest extends WithAdmin {

    private static Throwable failure(org.apache.kafka.common.KafkaFuture<?> future) {
        ExecutionException e = assertThrows(ExecutionException.class, future::get);
        return e.getCause();
    }

    @Test
    void createTopicsTwiceGivesTopicExists() throws Exception {
        String topic = Env.unique("create");
        admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all().get();
        Env.awaitLeaders(admin, topic, 3);
        Throwable dup = failure(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all());
        assertInstanceOf(TopicExistsException.class, dup);
    }

    @Test
    void describeTopicsAndListTopics() throws Exception {
        String topic = Env.createTopic(admin, "describe", 3);
        TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        assertEquals(topic, d.name());
        assertFalse(d.isInternal());
        assertNotEquals(Uuid.ZERO_UUID, d.topicId());
        assertEquals(3, d.partitions().size());
        for (int p = 0; p < 3; p++) {
            var info = d.partitions().get(p);
            assertEquals(p, info.partition());
            assertNotNull(info.leader());
            // One replica on a broker, three on a cluster: the leader is
            // one of them and in sync.
            assertTrue(info.replicas().contains(info.leader()), info.toString());
            assertTrue(info.isr().contains(info.leader()), info.toString());
            assertTrue(info.replicas().containsAll(info.isr()), info.toString());
        }
        // By id too.
        TopicDescription byId = admin.describeTopics(org.apache.kafka.common.TopicCollection.ofTopicIds(
                List.of(d.topicId()))).allTopicIds().get().get(d.topicId());
        assertEquals(topic, byId.name());
        assertTrue(admin.listTopics().names().get().contains(topic));
        Throwable missing = failure(admin.describeTopics(List.of(Env.unique("missing"))).allTopicNames());
        assertInstanceOf(UnknownTopicOrPartitionException.class, missing);
    }

    @Test
    void createPartitionsGrowsATopic() throws Exception {
        String topic = Env.createTopic(admin, "grow", 2);
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(5))).all().get();
        Env.awaitLeaders(admin, topic, 5);
        try (KafkaProducer<String, String> producer = Env.producer(Map.of())) {
            assertEquals(4, producer.send(new ProducerRecord<>(topic, 4, "k", "v")).get().partition());
        }
    }

    @Test
    void deleteTopics() throws Exception {
        String topic = Env.createTopic(admin, "delete", 2);
        admin.deleteTopics(List.of(topic)).all().get();
        Env.await("the topic gone from listTopics", () -> !admin.listTopics().names().get().contains(topic));
        // On a cluster the broker a describe reaches may follow a moment later.
        Env.await("the topic gone from describeTopics", () -> {
            try {
                admin.describeTopics(List.of(topic)).allTopicNames().get();
                return false;
            } catch (ExecutionException e) {
                return e.getCause() instanceof UnknownTopicOrPartitionException;
            }
        });
        Throwable missing = failure(admin.describeTopics(List.of(topic)).allTopicNames());
        assertInstanceOf(UnknownTopicOrPartitionException.class, missing);
        Throwable again = failure(admin.deleteTopics(List.of(topic)).all());
        assertInstanceOf(UnknownTopicOrPartitionException.class, again);
    }

    private static Config topicConfig(String topic) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        return admin.describeConfigs(List.of(r)).all().get().get(r);
    }

    /**
     * The topic's config once a describe shows {@code ready}. On a cluster, the
     * broker a describe reaches may follow a change a moment after the one that
     * answered it (as on Kafka), so each assertion reads a describe that has it.
     */
    private static Config awaitConfig(String topic, String what, Predicate<Config> ready) throws Exception {
        AtomicReference<Config> seen = new AtomicReference<>();
        Env.await(what, () -> {
            Config config = topicConfig(topic);
            seen.set(config);
            return ready.test(config);
        });
        return seen.get();
    }

    private static String value(Config config, String name) {
        ConfigEntry entry = config.get(name);
        return entry == null ? null : entry.value();
    }

    @Test
    void describeConfigsOfATopicAndTheBroker() throws Exception {
        String topic = Env.createTopic(admin, "configs", 1, Map.of("retention.ms", "3600000"));
        Config config = awaitConfig(topic, "retention.ms=3600000", c -> "3600000".equals(value(c, "retention.ms")));
        ConfigEntry retention = config.get("retention.ms");
        assertEquals("3600000", retention.value());
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, retention.source());
        ConfigEntry cleanup = config.get("cleanup.policy");
        assertEquals("delete", cleanup.value());
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, cleanup.source());
        assertTrue(cleanup.isDefault());

        Node node = admin.describeCluster().nodes().get().iterator().next();
        ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, node.idString());
        Config brokerConfig = admin.describeConfigs(List.of(broker)).all().get().get(broker);
        assertNotNull(brokerConfig.get("num.partitions"), brokerConfig.toString());
        assertEquals("1", brokerConfig.get("num.partitions").value());
    }

    @Test
    void incrementalAlterConfigsRoundTrip() throws Exception {
        String topic = Env.createTopic(admin, "incremental", 1);
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND))))
                .all().get();
        Config set = awaitConfig(topic, "retention.ms=7200000, cleanup.policy=delete,compact",
                c -> "7200000".equals(value(c, "retention.ms")) && "delete,compact".equals(value(c, "cleanup.policy")));
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, set.get("retention.ms").source());
        assertEquals("delete,compact", set.get("cleanup.policy").value());

        admin.incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.SUBTRACT))))
                .all().get();
        Config reset = awaitConfig(topic, "retention.ms back to its default, cleanup.policy=compact",
                c -> c.get("retention.ms").source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG
                        && "compact".equals(value(c, "cleanup.policy")));
        assertEquals("604800000", reset.get("retention.ms").value());
        assertEquals("compact", reset.get("cleanup.policy").value());
    }

    /**
     * The legacy AlterConfigs (API key 33) replaces a resource's whole set of dynamic
     * configs. Kafka 4.0 removed it from Admin, so it goes out through {@link Raw}.
     */
    @Test
    void alterConfigsReplacesTheWholeSet() throws Exception {
        String topic = Env.createTopic(admin, "alter", 1, Map.of("retention.ms", "3600000"));
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        AlterConfigsRequest.Builder request = new AlterConfigsRequest.Builder(Map.of(r, new AlterConfigsRequest.Config(
                List.of(new AlterConfigsRequest.ConfigEntry("max.message.bytes", "2000000")))), false);
        AlterConfigsResponse response = (AlterConfigsResponse) Raw.send(request, ApiKeys.ALTER_CONFIGS.latestVersion());
        assertEquals(Errors.NONE, response.errors().get(r).error(), response.errors().toString());
        Config after = awaitConfig(topic, "max.message.bytes=2000000 and retention.ms dropped",
                c -> "2000000".equals(value(c, "max.message.bytes"))
                        && c.get("retention.ms").source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG);
        assertEquals(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, after.get("max.message.bytes").source());
        // Every dynamic config not named is dropped: retention.ms is back to its default.
        assertEquals("604800000", after.get("retention.ms").value());
        assertEquals(ConfigEntry.ConfigSource.DEFAULT_CONFIG, after.get("retention.ms").source());

        // An unknown config is refused and changes nothing.
        AlterConfigsRequest.Builder bad = new AlterConfigsRequest.Builder(Map.of(r, new AlterConfigsRequest.Config(
                List.of(new AlterConfigsRequest.ConfigEntry("no.such.config", "1")))), false);
        AlterConfigsResponse refused = (AlterConfigsResponse) Raw.send(bad, ApiKeys.ALTER_CONFIGS.latestVersion());
        assertEquals(Errors.INVALID_CONFIG, refused.errors().get(r).error());
        assertEquals("2000000", awaitConfig(topic, "max.message.bytes still 2000000",
                c -> "2000000".equals(value(c, "max.message.bytes"))).get("max.message.bytes").value());
    }

    @Test
    void listOffsetsEarliestLatestAndByTimestamp() throws Exception {
        String topic = Env.createTopic(admin, "list-offsets", 1);
        TopicPartition tp = new TopicPartition(topic, 0);
        long base = System.currentTimeMillis() - 600_000;
        try (KafkaProducer<String, String> producer = Env.producer(Map.of())) {
            // Timestamps base, base+1000, ..., with the largest at offset 3.
            long[] ts = {base, base + 1000, base + 2000, base + 9000, base + 4000};
            for (long t : ts) {
                producer.send(new ProducerRecord<>(topic, 0, t, "k", "v"));
            }
            producer.flush();
        }
        assertEquals(0L, offset(tp, OffsetSpec.earliest()).offset());
        assertEquals(5L, offset(tp, OffsetSpec.latest()).offset());
        ListOffsetsResultInfo at = offset(tp, OffsetSpec.forTimestamp(base + 1500));
        assertEquals(2L, at.offset());
        assertEquals(base + 2000, at.timestamp());
        ListOffsetsResultInfo max = offset(tp, OffsetSpec.maxTimestamp());
        assertEquals(3L, max.offset());
        assertEquals(base + 9000, max.timestamp());
        assertEquals(-1L, offset(tp, OffsetSpec.forTimestamp(base + 100_000)).offset());
    }

    private static ListOffsetsResultInfo offset(TopicPartition tp, OffsetSpec spec) throws Exception {
        return admin.listOffsets(Map.of(tp, spec)).partitionResult(tp).get();
    }

    @Test
    @SuppressWarnings("deprecation")
    void consumerGroupsListDescribeAlterAndDelete() throws Exception {
        String topic = Env.createTopic(admin, "groups", 2);
        String group = Env.unique("admin-group");
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        try (KafkaProducer<String, String> producer = Env.producer(Map.of())) {
            for (int i = 0; i < 5; i++) {
                producer.send(new ProducerRecord<>(topic, 0, "k", "v" + i));
                producer.send(new ProducerRecord<>(topic, 1, "k", "v" + i));
            }
            producer.flush();
        }
        try (KafkaConsumer<String, String> consumer = Env.consumer(Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.CLIENT_ID_CONFIG, "admin-test-client"))) {
            consumer.subscribe(List.of(topic));
            Env.pollFor(consumer, 10);
            consumer.commitSync();

            Collection<ConsumerGroupListing> listed = admin.listConsumerGroups().all().get();
            ConsumerGroupListing listing = listed.stream().filter(g -> g.groupId().equals(group)).findFirst()
                    .orElseThrow(() -> new AssertionError(group + " not in " + listed));
            assertFalse(listing.isSimpleConsumerGroup());
            Collection<GroupListing> groups = admin.listGroups().all().get();
            assertTrue(groups.stream().anyMatch(g -> g.groupId().equals(group)), groups.toString());

            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).describedGroups().get(group).get();
            assertEquals(group, d.groupId());
            assertEquals(GroupState.STABLE, d.groupState());
            assertEquals(GroupType.CLASSIC, d.type());
            assertEquals("range", d.partitionAssignor());
            assertNotNull(d.coordinator());
            assertEquals(1, d.members().size());
            MemberDescription m = d.members().iterator().next();
            assertEquals("admin-test-client", m.clientId());
            assertEquals(Set.of(p0, p1), m.assignment().topicPartitions());

            Map<TopicPartition, OffsetAndMetadata> offsets =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            assertEquals(5L, offsets.get(p0).offset());
            assertEquals(5L, offsets.get(p1).offset());
        }
        // The member has left: the group is empty, and its offsets can be changed.
        Env.await("the group empty", () -> admin.describeConsumerGroups(List.of(group)).describedGroups().get(group)
                .get().groupState() == GroupState.EMPTY);
        admin.alterConsumerGroupOffsets(group, Map.of(p0, new OffsetAndMetadata(2, "rewound"))).all().get();
        Map<TopicPartition, OffsetAndMetadata> altered =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        assertEquals(2L, altered.get(p0).offset());
        assertEquals("rewound", altered.get(p0).metadata());
        assertEquals(5L, altered.get(p1).offset());

        admin.deleteConsumerGroupOffsets(group, Set.of(p1)).all().get();
        Map<TopicPartition, OffsetAndMetadata> left =
                admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        assertEquals(Set.of(p0), left.entrySet().stream().filter(e -> e.getValue() != null)
                .map(Map.Entry::getKey).collect(Collectors.toSet()));

        admin.deleteConsumerGroups(List.of(group)).all().get();
        assertFalse(admin.listConsumerGroups().all().get().stream().anyMatch(g -> g.groupId().equals(group)));
        Throwable gone = failure(admin.deleteConsumerGroups(List.of(group)).all());
        assertInstanceOf(GroupIdNotFoundException.class, gone);
    }

    @Test
    void describeCluster() throws Exception {
        DescribeClusterResult cluster = admin.describeCluster();
        Collection<Node> nodes = cluster.nodes().get();
        assertEquals(Env.brokerCount(), nodes.size());
        // The bootstrap broker is one of them (the only one on one broker).
        Node node = nodes.stream()
                .filter(n -> Env.BOOTSTRAP.equals(n.host() + ":" + n.port()))
                .findFirst()
                .orElseThrow(() -> new AssertionError(Env.BOOTSTRAP + " is not among " + nodes));
        assertEquals("127.0.0.1", node.host());
        assertNotNull(cluster.clusterId().get());
        assertFalse(cluster.clusterId().get().isEmpty());
        // As Kafka's KRaft brokers answer: a live broker, which forwards
        // admin requests to the active controller.
        assertTrue(nodes.contains(cluster.controller().get()), cluster.controller().get().toString());
    }

    @Test
    void describeAndListTransactions() throws Exception {
        String topic = Env.createTopic(admin, "admin-txn", 1);
        String txnId = Env.unique("admin-txn-id");
        try (KafkaProducer<String, String> producer = TransactionTest.transactional(txnId)) {
            producer.beginTransaction();
            producer.send(new ProducerRecord<>(topic, "k", "v")).get();

            TransactionDescription open = admin.describeTransactions(List.of(txnId)).description(txnId).get();
            assertEquals(TransactionState.ONGOING, open.state());
            assertEquals(Set.of(new TopicPartition(topic, 0)), open.topicPartitions());
            assertEquals(60_000L, open.transactionTimeoutMs());
            assertTrue(open.producerId() >= 0);
            assertTrue(open.transactionStartTimeMs().isPresent());
            Collection<TransactionListing> ongoing = admin.listTransactions().all().get();
            TransactionListing listing = ongoing.stream().filter(t -> t.transactionalId().equals(txnId)).findFirst()
                    .orElseThrow(() -> new AssertionError(txnId + " not in " + ongoing));
            assertEquals(TransactionState.ONGOING, listing.state());
            assertEquals(open.producerId(), listing.producerId());

            producer.commitTransaction();
            Env.await("the transaction complete", () -> admin.describeTransactions(List.of(txnId))
                    .description(txnId).get().state() == TransactionState.COMPLETE_COMMIT);
            TransactionDescription done = admin.describeTransactions(List.of(txnId)).description(txnId).get();
            assertEquals(Set.of(), done.topicPartitions());
            assertEquals(open.producerId(), done.producerId());
        }
    }
}
