// Writes quorum-state files with Kafka's own FileQuorumStateStore, and reads
// quorum-state files back with it, for runnel-quorum's quorum_state_file
// tests. Run from the repository root after `bash scripts/kafka.sh install`:
//
//   LIBS=~/.cache/runnel-test-tools/kafka-4.1.1/libs
//   java -cp "$LIBS/*" broker/quorum/golden/QuorumStateGolden.java write
//   java -cp "$LIBS/*" broker/quorum/golden/QuorumStateGolden.java read FILE...
//
// `write` prints `<name> <file contents>` per line: the golden files in
// broker/quorum/src/quorum_state_file.rs hold these lines. `read` prints the
// ElectionState Kafka makes of each file (or the exception it throws).

import java.io.File;
import java.nio.file.Files;
import java.util.Optional;
import java.util.Set;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.raft.ElectionState;
import org.apache.kafka.raft.FileQuorumStateStore;
import org.apache.kafka.raft.ReplicaKey;
import org.apache.kafka.server.common.KRaftVersion;

public class QuorumStateGolden {
    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("read")) {
            for (int i = 1; i < args.length; i++) {
                try {
                    FileQuorumStateStore store = new FileQuorumStateStore(new File(args[i]));
                    System.out.println(args[i] + " " + store.readElectionState());
                } catch (Exception e) {
                    System.out.println(args[i] + " ERROR " + e);
                }
            }
            return;
        }
        Set<Integer> voters = Set.of(1, 2, 3);
        Uuid dir = new Uuid(0x0102030405060708L, 0x090a0b0c0d0e0f10L);
        write("leader_v0", ElectionState.withElectedLeader(5, 2, Optional.empty(), voters), KRaftVersion.KRAFT_VERSION_0);
        write("leader_voted_v0", ElectionState.withElectedLeader(5, 2, Optional.of(ReplicaKey.of(2, ReplicaKey.NO_DIRECTORY_ID)), voters), KRaftVersion.KRAFT_VERSION_0);
        write("voted_v0", ElectionState.withVotedCandidate(7, ReplicaKey.of(3, ReplicaKey.NO_DIRECTORY_ID), voters), KRaftVersion.KRAFT_VERSION_0);
        write("unknown_v0", ElectionState.withUnknownLeader(0, voters), KRaftVersion.KRAFT_VERSION_0);
        write("leader_v1", ElectionState.withElectedLeader(5, 2, Optional.empty(), voters), KRaftVersion.KRAFT_VERSION_1);
        write("voted_v1", ElectionState.withVotedCandidate(7, ReplicaKey.of(3, dir), voters), KRaftVersion.KRAFT_VERSION_1);
        write("unknown_v1", ElectionState.withUnknownLeader(4, voters), KRaftVersion.KRAFT_VERSION_1);
    }

    static void write(String name, ElectionState state, KRaftVersion version) throws Exception {
        File dir = Files.createTempDirectory("quorum-state").toFile();
        File file = new File(dir, FileQuorumStateStore.DEFAULT_FILE_NAME);
        new FileQuorumStateStore(file).writeElectionState(state, version);
        System.out.println(name + " " + Files.readString(file.toPath()));
        file.delete();
        dir.delete();
    }
}
