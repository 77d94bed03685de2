// Prints the golden bytes of runnel-metadata's record tests, made by Kafka's
// own classes: each record is built with non-default field values and framed
// by org.apache.kafka.metadata.MetadataRecordSerde, as Kafka writes it to the
// metadata log. Run from the repository root after `bash scripts/kafka.sh
// install`:
//
//   LIBS=~/.cache/runnel-test-tools/kafka-4.1.1/libs
//   java -cp "$LIBS/*" broker/metadata/golden/Golden.java
//
// Each line is `<name> <hex>`; the Rust tests in
// broker/metadata/src/records/golden.rs build the same values and hold these
// lines.

import java.nio.ByteBuffer;
import java.util.List;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.metadata.BrokerRegistrationChangeRecord;
import org.apache.kafka.common.metadata.ConfigRecord;
import org.apache.kafka.common.metadata.FeatureLevelRecord;
import org.apache.kafka.common.metadata.FenceBrokerRecord;
import org.apache.kafka.common.metadata.NoOpRecord;
import org.apache.kafka.common.metadata.PartitionChangeRecord;
import org.apache.kafka.common.metadata.PartitionRecord;
import org.apache.kafka.common.metadata.ProducerIdsRecord;
import org.apache.kafka.common.metadata.RegisterBrokerRecord;
import org.apache.kafka.common.metadata.RemoveTopicRecord;
import org.apache.kafka.common.metadata.TopicRecord;
import org.apache.kafka.common.metadata.UnfenceBrokerRecord;
import org.apache.kafka.common.metadata.UnregisterBrokerRecord;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.metadata.MetadataRecordSerde;
import org.apache.kafka.server.common.ApiMessageAndVersion;

public class Golden {
    static final Uuid U1 = new Uuid(0x0102030405060708L, 0x090a0b0c0d0e0f10L);
    static final Uuid U2 = new Uuid(0x1111111111111111L, 0x2222222222222222L);
    static final Uuid U3 = new Uuid(0x3333333333333333L, 0x4444444444444444L);

    static void print(String name, ApiMessage message, int version) {
        ApiMessageAndVersion record = new ApiMessageAndVersion(message, (short) version);
        ObjectSerializationCache cache = new ObjectSerializationCache();
        int size = MetadataRecordSerde.INSTANCE.recordSize(record, cache);
        ByteBuffer buffer = ByteBuffer.allocate(size);
        MetadataRecordSerde.INSTANCE.write(record, cache, new ByteBufferAccessor(buffer));
        StringBuilder hex = new StringBuilder();
        for (byte b : buffer.array()) {
            hex.append(String.format("%02x", b));
        }
        System.out.println(name + "_v" + version + " " + hex);
    }

    static RegisterBrokerRecord registerBroker(int version) {
        RegisterBrokerRecord.BrokerEndpointCollection endpoints =
            new RegisterBrokerRecord.BrokerEndpointCollection();
        endpoints.add(new RegisterBrokerRecord.BrokerEndpoint()
            .setName("PLAINTEXT").setHost("localhost").setPort(9092).setSecurityProtocol((short) 0));
        endpoints.add(new RegisterBrokerRecord.BrokerEndpoint()
            .setName("SSL").setHost("h2").setPort(9093).setSecurityProtocol((short) 1));
        RegisterBrokerRecord.BrokerFeatureCollection features =
            new RegisterBrokerRecord.BrokerFeatureCollection();
        features.add(new RegisterBrokerRecord.BrokerFeature()
            .setName("metadata.version").setMinSupportedVersion((short) 7).setMaxSupportedVersion((short) 27));
        RegisterBrokerRecord record = new RegisterBrokerRecord()
            .setBrokerId(1)
            .setIncarnationId(U1)
            .setBrokerEpoch(42)
            .setEndPoints(endpoints)
            .setFeatures(features)
            .setRack("r1")
            .setFenced(false);
        if (version >= 1) record.setInControlledShutdown(true);
        if (version >= 2) record.setIsMigratingZkBroker(true);
        if (version >= 3) record.setLogDirs(List.of(U2, U3));
        return record;
    }

    static PartitionRecord partition(int version) {
        PartitionRecord record = new PartitionRecord()
            .setPartitionId(4)
            .setTopicId(U1)
            .setReplicas(List.of(1, 2, 3))
            .setIsr(List.of(1, 2))
            .setRemovingReplicas(List.of(3))
            .setAddingReplicas(List.of())
            .setLeader(1)
            .setLeaderRecoveryState((byte) 1)
            .setLeaderEpoch(5)
            .setPartitionEpoch(9);
        if (version >= 1) record.setDirectories(List.of(U2, U3, U2));
        if (version >= 2) record.setEligibleLeaderReplicas(List.of(2)).setLastKnownElr(List.of());
        return record;
    }

    static PartitionChangeRecord partitionChange(int version) {
        PartitionChangeRecord record = new PartitionChangeRecord()
            .setPartitionId(4)
            .setTopicId(U1)
            .setIsr(List.of(1))
            .setLeader(2)
            .setReplicas(List.of(1, 2))
            .setRemovingReplicas(List.of())
            .setLeaderRecoveryState((byte) 0);
        if (version >= 1) record.setDirectories(List.of(U2, U3));
        if (version >= 2) record.setEligibleLeaderReplicas(List.of(1)).setLastKnownElr(List.of(3));
        return record;
    }

    static BrokerRegistrationChangeRecord brokerRegistrationChange(int version) {
        BrokerRegistrationChangeRecord record = new BrokerRegistrationChangeRecord()
            .setBrokerId(1)
            .setBrokerEpoch(42)
            .setFenced((byte) -1);
        if (version >= 1) record.setInControlledShutdown((byte) 1);
        if (version >= 2) record.setLogDirs(List.of(U2));
        return record;
    }

    public static void main(String[] args) {
        for (int v = 0; v <= 3; v++) print("register_broker", registerBroker(v), v);
        print("unregister_broker", new UnregisterBrokerRecord().setBrokerId(3).setBrokerEpoch(77), 0);
        print("topic", new TopicRecord().setName("orders").setTopicId(U1), 0);
        for (int v = 0; v <= 2; v++) print("partition", partition(v), v);
        print("config", new ConfigRecord().setResourceType((byte) 2).setResourceName("orders")
            .setName("retention.ms").setValue("1000"), 0);
        print("config_removed", new ConfigRecord().setResourceType((byte) 4).setResourceName("")
            .setName("log.retention.ms").setValue(null), 0);
        for (int v = 0; v <= 2; v++) print("partition_change", partitionChange(v), v);
        print("partition_change_empty", new PartitionChangeRecord().setPartitionId(0).setTopicId(U1), 0);
        print("fence_broker", new FenceBrokerRecord().setId(2).setEpoch(10), 0);
        print("unfence_broker", new UnfenceBrokerRecord().setId(2).setEpoch(11), 0);
        print("remove_topic", new RemoveTopicRecord().setTopicId(U1), 0);
        print("feature_level", new FeatureLevelRecord().setName("metadata.version").setFeatureLevel((short) 27), 0);
        print("producer_ids", new ProducerIdsRecord().setBrokerId(1).setBrokerEpoch(42).setNextProducerId(3000), 0);
        for (int v = 0; v <= 2; v++) print("broker_registration_change", brokerRegistrationChange(v), v);
        print("no_op", new NoOpRecord(), 0);
    }
}
