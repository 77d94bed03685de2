"""Committed offsets through librdkafka: phase `commit` consumes 40 of 100
messages by assignment and commits; phase `resume` (after a broker
restart) finds the commit and continues from it, while a group with no
commit starts where auto.offset.reset says."""

import sys

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from common import *

servers = bootstrap()
phase = sys.argv[2]
tp = TopicPartition("offs", 0)

if phase == "commit":
    create_topic(admin_client(servers), "offs", 1)
    produce_all(producer(servers), "offs", [(None, f"m{i}".encode(), None, 0) for i in range(100)])
    c = consumer(servers, **{"group.id": "g1"})
    c.assign([TopicPartition("offs", 0, OFFSET_BEGINNING)])
    got = consume_exactly(c, 40)
    check(got[-1].value() == b"m39", f"consumed up to {got[-1].value()!r}")
    c.commit(offsets=[TopicPartition("offs", 0, 40)], asynchronous=False)
    committed = c.committed([tp], timeout=DEADLINE_S)[0].offset
    check(committed == 40, f"committed {committed}, expected 40")
    c.close()
elif phase == "resume":
    c = consumer(servers, **{"group.id": "g1"})
    committed = c.committed([tp], timeout=DEADLINE_S)[0].offset
    check(committed == 40, f"after restart committed {committed}, expected 40")
    c.assign([tp])
    first = consume_exactly(c, 1)[0].value()
    check(first == b"m40", f"resumed at {first!r}, expected m40")
    c.close()
    fresh = consumer(servers, **{"group.id": "g2", "auto.offset.reset": "earliest"})
    fresh.assign([tp])
    first = consume_exactly(fresh, 1)[0].value()
    check(first == b"m0", f"a group with no commit started at {first!r}")
    fresh.close()
print(f"offsets {phase}: ok")
