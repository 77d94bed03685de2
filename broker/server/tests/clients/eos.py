"""Consume-transform-produce with librdkafka transactions and
send_offsets_to_transaction: a worker copies each message of `eos-in`
(100 messages, 2 partitions) to `eos-out` uppercased, committing its
consumer offsets in the same transaction. The first worker kills itself
with SIGKILL (kill -9) in the middle of a transaction, after producing but
before committing; a second worker with the same transactional.id fences it, its
open transaction is aborted, and it carries on from the last committed
offsets. A read_committed reader of `eos-out` then finds every input
exactly once.

Run as `eos.py SERVERS` (the test) or `eos.py SERVERS worker CRASH_AFTER`.
"""

import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from common import *

servers = bootstrap()
COUNT = 100


def worker(crash_after):
    consumer = Consumer({
        "bootstrap.servers": servers, "group.id": "eos", "enable.auto.commit": False,
        "auto.offset.reset": "earliest", "isolation.level": "read_committed",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
    })
    consumer.subscribe(["eos-in"])
    producer = Producer({"bootstrap.servers": servers, "transactional.id": "eos-worker",
                         "linger.ms": 5})
    producer.init_transactions(DEADLINE_S)
    done = 0
    deadline = time.monotonic() + 3 * DEADLINE_S
    while time.monotonic() < deadline:
        messages = [m for m in consumer.consume(10, 0.5) if not m.error()]
        if not messages:
            positions = consumer.position(consumer.assignment())
            if consumer.assignment() and sum(max(p.offset, 0) for p in positions) >= COUNT:
                break
            continue
        producer.begin_transaction()
        for m in messages:
            producer.produce("eos-out", key=m.value(), value=m.value().upper(),
                             partition=m.partition())
            done += 1
            if crash_after and done >= crash_after:
                producer.flush(DEADLINE_S)  # the output is written, not committed
                os.kill(os.getpid(), signal.SIGKILL)
        producer.send_offsets_to_transaction(
            consumer.position(consumer.assignment()), consumer.consumer_group_metadata(),
            DEADLINE_S)
        producer.commit_transaction(DEADLINE_S)
    consumer.close()


if len(sys.argv) > 2 and sys.argv[2] == "worker":
    worker(int(sys.argv[3]))
    sys.exit(0)

admin = admin_client(servers)
create_topic(admin, "eos-in", 2)
create_topic(admin, "eos-out", 2)
p = producer(servers)
produce_all(p, "eos-in", [(None, f"m{i:03}".encode(), None, i % 2) for i in range(COUNT)])

crashed = subprocess.run([sys.executable, __file__, servers, "worker", "35"],
                         timeout=3 * DEADLINE_S)
check(crashed.returncode == -signal.SIGKILL,
      f"the first worker should die by SIGKILL mid-transaction: {crashed.returncode}")
finished = subprocess.run([sys.executable, __file__, servers, "worker", "0"],
                          timeout=4 * DEADLINE_S)
check(finished.returncode == 0, "the second worker finished")

reader = consumer(servers, **{"isolation.level": "read_committed", "group.id": "eos-check"})
reader.assign([TopicPartition("eos-out", part, 0) for part in range(2)])
got = consume_exactly(reader, COUNT)
extra = reader.poll(2.0)
check(extra is None or extra.error() is not None, "more than one copy of some input")
keys = sorted(m.key().decode() for m in got)
check(keys == [f"m{i:03}" for i in range(COUNT)], f"each input once: {keys[:5]}")
check(all(m.value() == m.key().upper() for m in got), "transformed")
# The group's committed offsets are at the end of the input.
check_consumer = Consumer({"bootstrap.servers": servers, "group.id": "eos"})
committed = check_consumer.committed([TopicPartition("eos-in", p) for p in range(2)], 10)
check(sum(tp.offset for tp in committed) == COUNT, f"committed {committed}")
print("ok")
