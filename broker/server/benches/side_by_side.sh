#!/usr/bin/env bash
# Runnel next to Apache Kafka: the same load (librdkafka via kcat, Kafka's
# ProducerPerformance and ConsumerPerformance) against each broker in turn,
# printing both figures, their ratio and the lines each tool printed. The
# steps, units and settings are described in side_by_side.py.
#
#   broker/server/benches/side_by_side.sh --quick    # checks it works, < 1 min
#   broker/server/benches/side_by_side.sh            # steady figures, ~4 min
#   broker/server/benches/side_by_side.sh --records N --record-size B ...
#
# Needs the release binary (built here when missing), kcat (Debian package
# kafkacat), python confluent-kafka and Java; Kafka is resolved by
# scripts/kafka.sh. The brokers are stopped on every exit.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"

if [ ! -x "$ROOT/target/release/runnel" ]; then
    (cd "$ROOT" && cargo build --release -q -p runnel-broker --bin runnel)
fi
command -v kcat >/dev/null 2>&1 || { echo "side_by_side.sh: kcat not found: apt-get install -y kafkacat" >&2; exit 1; }
python3 -c 'import confluent_kafka' 2>/dev/null \
    || { echo "side_by_side.sh: python confluent-kafka not found: python3 -m pip install confluent-kafka" >&2; exit 1; }

exec python3 "$HERE/side_by_side.py" "$@"
