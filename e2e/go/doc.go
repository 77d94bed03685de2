// Package franzgo holds end-to-end tests that drive a broker with franz-go
// (github.com/twmb/franz-go/pkg/kgo and kadm), a real Go Kafka client.
//
// The tests read the broker's address from KAFKA_BOOTSTRAP and its kind
// (runnel or kafka) from BROKER; without KAFKA_BOOTSTRAP they skip. run.sh
// starts Runnel and Apache Kafka and runs the same tests against both, so a
// test that fails on Kafka too is a wrong test, and one that fails only on
// Runnel is a Runnel bug. KGO_LOG=debug|info|warn logs the clients to stderr.
package franzgo
