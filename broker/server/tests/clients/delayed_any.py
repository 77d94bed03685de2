"""Any delay with librdkafka: an entry topic (`delivery.levels`,
`delivery.target`) gets its level topics, and records produced to it with
`runnel-deliver-at` (epoch ms) or `runnel-delay-ms` hop through the levels
and reach the target at their own time: a read_committed consumer sees
each exactly once, never before its time and less than the shortest level
(plus the mover's passes) after it, with its key, value and headers but
without the delivery headers it was sent with. Records already due are
delivered at once. A header that can't be read, or a time past
`delivery.max.delay.ms`, fails its batch with INVALID_RECORD (librdkafka
does not show the broker's message; tests/delivery.rs checks that it names
the header), and the records of other batches are delivered.

Run as `delayed_any.py SERVERS`.
"""

import random
import time

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from kafka.partitioner.default import murmur2

from common import *

servers = bootstrap()
TARGET = "shipments"
ENTRY = "shipments_delayed"
LEVELS = "300ms,1s,2s"
SHORTEST_MS = 300
TARGET_PARTITIONS = 3
MAX_DELAY_MS = 60_000

admin = admin_client(servers)
create_topic(admin, TARGET, TARGET_PARTITIONS)
create_topic(admin, ENTRY, 2, {"delivery.levels": LEVELS, "delivery.target": TARGET,
                               "delivery.max.delay.ms": str(MAX_DELAY_MS)})

# The entry made its levels, each a level of the target.
topics = admin.list_topics(timeout=DEADLINE_S).topics
for level in ["shipments_300ms", "shipments_1s", "shipments_2s"]:
    check(level in topics, f"level {level} was created with the entry: {sorted(topics)}")
    check(len(topics[level].partitions) == 2, f"{level} has the entry's partition count")

# Bad due times fail their batch; a plain producer, so a refused batch
# leaves no sequence gap behind.
plain = producer(servers, **{"linger.ms": 0})
refused = []


def on_refused(err, msg):
    refused.append((msg.value(), err))


for value, headers in [
    (b"unreadable", [("runnel-deliver-at", b"tomorrow")]),
    (b"too-far", [("runnel-delay-ms", str(MAX_DELAY_MS * 2).encode())]),
    (b"negative", [("runnel-delay-ms", b"-5")]),
]:
    plain.produce(ENTRY, value=value, headers=headers, partition=0, on_delivery=on_refused)
    plain.flush(DEADLINE_S)
check(len(refused) == 3, f"every bad record got a report: {refused}")
for value, err in refused:
    check(err is not None and err.code() == KafkaError.INVALID_RECORD,
          f"{value} should get INVALID_RECORD, got {err}")

p = producer(servers, **{"enable.idempotence": True})
rng = random.Random(7)
now = int(time.time() * 1000)
messages = []
due_of = {}
for i in range(150):
    value = f"at-{i:03}".encode()
    due = now + rng.randrange(-2000, 4500)
    due_of[value] = due
    key = f"k{i % 11}".encode() if i % 3 else None
    messages.append((key, value, [("h", f"{i}".encode()), ("runnel-deliver-at", str(due).encode())],
                     None))
for i in range(30):
    value = f"after-{i:03}".encode()
    messages.append((None, value, [("runnel-delay-ms", str(rng.randrange(0, 3000)).encode())],
                     None))
delivered = produce_all(p, ENTRY, messages)
appended = int(time.time() * 1000)
check(len(delivered) == len(messages), "every good record was acknowledged by the entry")
source_partition = {value: partition for partition, _, _, value in delivered}

c = consumer(servers, **{"isolation.level": "read_committed", "group.id": "delayed-any-check"})
c.assign([TopicPartition(TARGET, p, OFFSET_BEGINNING) for p in range(TARGET_PARTITIONS)])
seen = {}
lateness = []
deadline = time.monotonic() + DEADLINE_S
while len(seen) < len(messages) and time.monotonic() < deadline:
    msg = c.poll(0.1)
    if msg is None:
        continue
    if msg.error():
        raise KafkaException(msg.error())
    arrived = int(time.time() * 1000)
    value = msg.value()
    check(value not in seen, f"{value} delivered twice")
    check(value not in (b"unreadable", b"too-far", b"negative"), f"refused {value} delivered")
    headers = msg.headers() or []
    names = [name for name, _ in headers]
    check("runnel-deliver-at" not in names and "runnel-delay-ms" not in names,
          f"{value} still carries a delivery header: {names}")
    check(names.count("runnel-delivery-source") == 1, f"{value}: one source header: {names}")
    header = dict(headers)
    due = int(header["runnel-delivery-due-ms"])
    if value in due_of:
        check(due == due_of[value], f"{value} due at {due}, asked for {due_of[value]}")
        i = int(value.decode().split("-")[1])
        check(header.get("h") == f"{i}".encode(), f"{value} kept its header: {headers}")
    check(arrived >= due, f"{value} arrived at {arrived}, {due - arrived} ms before its time")
    source = header["runnel-delivery-source"].decode()
    check(source.startswith(f"{ENTRY}-{source_partition[value]}@"),
          f"{value} names where it was produced: {source}")
    key = msg.key()
    if key is not None:
        want = (murmur2(key) & 0x7FFFFFFF) % TARGET_PARTITIONS
        check(msg.partition() == want, f"{key} went to {msg.partition()}, Java puts it on {want}")
    # Due well after the consumer started: late by less than the shortest
    # level plus the mover's passes.
    if due >= appended + 1000:
        lateness.append(arrived - due)
    seen[value] = msg
check(len(seen) == len(messages), f"{len(seen)} of {len(messages)} records delivered")
lateness.sort()
print(f"lateness ms: p50 {lateness[len(lateness) // 2]}, max {lateness[-1]}")
check(lateness[-1] < SHORTEST_MS + 1500, f"a record arrived {lateness[-1]} ms late")

end = time.monotonic() + 1.0
while time.monotonic() < end:
    msg = c.poll(0.2)
    check(msg is None or msg.error() is not None, f"an extra record: {msg and msg.value()}")
c.close()
print("ok")
