"""Consumer groups through librdkafka: three consumers subscribe to a
6-partition topic and end with two partitions each, with the range,
roundrobin and cooperative-sticky assignors; every message is consumed
once; commits made inside the generation are fetched back."""

import sys
import time

from confluent_kafka import TopicPartition

from common import *

servers = bootstrap()
admin = admin_client(servers)

for strategy in ["range", "roundrobin", "cooperative-sticky"]:
    topic = f"groups-{strategy}"
    create_topic(admin, topic, 6)
    produce_all(producer(servers), topic, [(None, f"m{i}".encode(), None, i % 6) for i in range(600)])
    group = f"g-{strategy}"
    consumers = [
        consumer(servers, **{"group.id": group, "partition.assignment.strategy": strategy,
                             "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        for _ in range(3)
    ]
    for c in consumers:
        c.subscribe([topic])
    # Poll all three until each holds two partitions and all 600 arrived.
    seen = {}
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for c in consumers:
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                seen[(msg.partition(), msg.offset())] = msg.value()
        sizes = sorted(len(c.assignment()) for c in consumers)
        if sizes == [2, 2, 2] and len(seen) == 600:
            break
    sizes = sorted(len(c.assignment()) for c in consumers)
    check(sizes == [2, 2, 2], f"{strategy}: assignment sizes {sizes}")
    owned = sorted(tp.partition for c in consumers for tp in c.assignment())
    check(owned == list(range(6)), f"{strategy}: partitions owned {owned}")
    check(len(seen) == 600, f"{strategy}: consumed {len(seen)} of 600")
    # A member commits inside its generation and reads it back.
    c = consumers[0]
    tp = c.assignment()[0]
    c.commit(offsets=[TopicPartition(topic, tp.partition, 100)], asynchronous=False)
    got = c.committed([TopicPartition(topic, tp.partition)], timeout=DEADLINE_S)[0].offset
    check(got == 100, f"{strategy}: committed {got}")
    for c in consumers:
        c.close()
    print(f"groups {strategy}: ok")
