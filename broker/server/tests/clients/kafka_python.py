"""kafka-python (a pure-Python client with its own protocol code) produces
keyed messages with headers and gzip, reads them back by assignment, and
manages topics through its admin client."""

import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewPartitions, NewTopic

DEADLINE_S = 30.0


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


servers = sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=30_000)
admin.create_topics([NewTopic("kp", num_partitions=2, replication_factor=1)])
admin.create_partitions({"kp": NewPartitions(total_count=3)})
check(len(KafkaConsumer(bootstrap_servers=servers).partitions_for_topic("kp") or ()) == 3,
      "kp should have 3 partitions")

# Idempotence (InitProducerId) comes with the transactions issue.
producer = KafkaProducer(bootstrap_servers=servers, acks="all", compression_type="gzip", linger_ms=5,
                         enable_idempotence=False)
futures = [
    producer.send("kp", key=f"k{i % 7}".encode(), value=f"value {i}".encode(),
                  headers=[("i", str(i).encode())])
    for i in range(500)
]
producer.flush(timeout=DEADLINE_S)
acked = [f.get(timeout=DEADLINE_S) for f in futures]
check(all(m.offset >= 0 for m in acked), "every send acknowledged with an offset")

consumer = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                         auto_offset_reset="earliest", consumer_timeout_ms=5_000)
consumer.assign([TopicPartition("kp", p) for p in range(3)])
got = []
deadline = time.monotonic() + DEADLINE_S
while len(got) < 500 and time.monotonic() < deadline:
    for records in consumer.poll(timeout_ms=500).values():
        got.extend(records)
check(len(got) == 500, f"consumed {len(got)} of 500")
by_i = {int(dict(r.headers)["i"]): r for r in got}
check(sorted(by_i) == list(range(500)), "every message once")
check(all(by_i[i].value == f"value {i}".encode() and by_i[i].key == f"k{i % 7}".encode() for i in by_i),
      "keys and values round-trip")
consumer.close()

admin.delete_topics(["kp"])
check("kp" not in admin.list_topics(), "kp deleted")
print("kafka-python: ok")
