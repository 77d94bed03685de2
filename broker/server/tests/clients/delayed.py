"""Delayed delivery with librdkafka: records produced to the delay level
`orders_2s` (delivery.delay.ms=2000, delivery.target=orders) reach
`orders` once their time comes, and a read_committed consumer of `orders`
sees each exactly once, never before its due time, with its key, value,
headers and timestamp, plus the headers naming its source and due time.
Keyed records land where the Java client's partitioner puts them
(murmur2, checked with kafka-python's implementation); keyless ones on the
source partition number modulo the target's count. A level config that
would lose records is refused with its reason.

Run as `delayed.py SERVERS`.
"""

import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import ConfigResource, NewTopic
from kafka.partitioner.default import murmur2

from common import *

servers = bootstrap()
DELAY_MS = 2000
TARGET_PARTITIONS = 3
KEYED = 120
KEYLESS = 40

admin = admin_client(servers)
create_topic(admin, "orders", TARGET_PARTITIONS)
create_topic(admin, "orders_2s", 2,
             {"delivery.delay.ms": str(DELAY_MS), "delivery.target": "orders"})

# Refused configs name what is wrong.
for name, config, says in [
    ("half_1s", {"delivery.delay.ms": "1000"}, "delivery.target"),
    ("short_1h", {"delivery.delay.ms": "3600000", "delivery.target": "orders",
                  "retention.ms": "3600000"}, "retention.ms=3600000"),
    ("sized_1s", {"delivery.delay.ms": "1000", "delivery.target": "orders",
                  "retention.bytes": "1000000"}, "retention.bytes"),
]:
    futures = admin.create_topics([NewTopic(name, 1, 1, config=config)],
                                  request_timeout=DEADLINE_S)
    try:
        futures[name].result(timeout=DEADLINE_S)
        check(False, f"{name} with {config} should be refused")
    except KafkaException as e:
        error = e.args[0]
        check(error.name() == "INVALID_CONFIG", f"{name}: {error}")
        check(says in error.str(), f"{name}: the reason should name {says}: {error.str()}")

# The level stamps append times; its delivery settings are described.
resource = ConfigResource("topic", "orders_2s")
described = admin.describe_configs([resource])[resource].result(timeout=DEADLINE_S)
check(described["message.timestamp.type"].value == "LogAppendTime",
      f"message.timestamp.type: {described['message.timestamp.type'].value}")
check(described["delivery.delay.ms"].value == str(DELAY_MS), "delivery.delay.ms described")
check(described["delivery.target"].value == "orders", "delivery.target described")

p = producer(servers, **{"enable.idempotence": True})
sent = {}
# A minute ago: not the append time, and young enough for retention.
ORIGINAL_TS = int(time.time() * 1000) - 60_000
messages = []
for i in range(KEYED):
    key = f"k{i % 17}".encode()
    messages.append((key, f"keyed-{i:03}".encode(), [("h", f"{i}".encode())], None))
for i in range(KEYLESS):
    messages.append((None, f"keyless-{i:03}".encode(), None, i % 2))
before = int(time.time() * 1000)
delivered = produce_all(p, "orders_2s", messages, timestamp=ORIGINAL_TS)
after = int(time.time() * 1000)
check(len(delivered) == KEYED + KEYLESS, "every record was acknowledged by the level")
source_partition = {value: partition for partition, _, _, value in delivered}

c = consumer(servers, **{"isolation.level": "read_committed", "group.id": "delayed-check"})
c.subscribe(["orders"])
seen = {}
deadline = time.monotonic() + DEADLINE_S
while len(seen) < KEYED + KEYLESS and time.monotonic() < deadline:
    msg = c.poll(0.2)
    if msg is None:
        continue
    if msg.error():
        raise KafkaException(msg.error())
    arrived = int(time.time() * 1000)
    value = msg.value()
    check(value not in seen, f"{value} delivered twice")
    headers = dict(msg.headers() or [])
    due = int(headers["runnel-delivery-due-ms"])
    check(arrived >= due, f"{value} arrived at {arrived}, before its due time {due}")
    check(before + DELAY_MS - 5 <= due <= after + DELAY_MS + 5,
          f"{value} due at {due}, not {DELAY_MS} ms after its append in [{before}, {after}]")
    source = headers["runnel-delivery-source"].decode()
    check(source.startswith(f"orders_2s-{source_partition[value]}@"),
          f"{value} names its source {source}")
    check(msg.timestamp()[1] == ORIGINAL_TS, f"{value} kept its timestamp: {msg.timestamp()}")
    key = msg.key()
    if key is not None:
        want = (murmur2(key) & 0x7FFFFFFF) % TARGET_PARTITIONS
        check(msg.partition() == want, f"{key} went to {msg.partition()}, Java puts it on {want}")
        i = int(value.decode().split("-")[1])
        check(headers.get("h") == f"{i}".encode(), f"{value} kept its header: {headers}")
    else:
        want = source_partition[value] % TARGET_PARTITIONS
        check(msg.partition() == want, f"keyless {value} went to {msg.partition()}, not {want}")
    seen[value] = msg
check(len(seen) == KEYED + KEYLESS, f"{len(seen)} of {KEYED + KEYLESS} records delivered")

# Nothing more comes: every record exactly once.
end = time.monotonic() + 1.5
while time.monotonic() < end:
    msg = c.poll(0.2)
    check(msg is None or msg.error() is not None, f"an extra record: {msg and msg.value()}")

# Per key, the level's order is kept.
order = {}
for value, msg in sorted(seen.items(), key=lambda kv: (kv[1].partition(), kv[1].offset())):
    if msg.key() is not None:
        order.setdefault(msg.key(), []).append(value)
for key, values in order.items():
    check(values == sorted(values), f"{key}'s records out of order: {values}")
c.close()
print("ok")
