// Prints the LEADER_CHANGE control batch Kafka writes at the start of an
// epoch, made by Kafka's MemoryRecords.withLeaderChangeMessage, for
// runnel-quorum's entry_batch tests. Run from the repository root after
// `bash scripts/kafka.sh install`:
//
//   LIBS=~/.cache/runnel-test-tools/kafka-4.1.1/libs
//   java -cp "$LIBS/*" broker/quorum/golden/LeaderChangeGolden.java
//
// Prints the batch as hex: base offset 42, timestamp 1700000000000, epoch 7,
// leader 2, voters 1, 2, 3, granting voters 2, 3.

import java.nio.ByteBuffer;
import java.util.HexFormat;
import java.util.List;

import org.apache.kafka.common.message.LeaderChangeMessage;
import org.apache.kafka.common.message.LeaderChangeMessage.Voter;
import org.apache.kafka.common.record.MemoryRecords;

public class LeaderChangeGolden {
    public static void main(String[] args) {
        LeaderChangeMessage message = new LeaderChangeMessage()
            .setVersion((short) 0)
            .setLeaderId(2)
            .setVoters(List.of(new Voter().setVoterId(1), new Voter().setVoterId(2), new Voter().setVoterId(3)))
            .setGrantingVoters(List.of(new Voter().setVoterId(2), new Voter().setVoterId(3)));
        MemoryRecords records = MemoryRecords.withLeaderChangeMessage(42L, 1700000000000L, 7, ByteBuffer.allocate(256), message);
        ByteBuffer buffer = records.buffer();
        byte[] bytes = new byte[buffer.remaining()];
        buffer.get(bytes);
        System.out.println(HexFormat.of().formatHex(bytes));
    }
}
