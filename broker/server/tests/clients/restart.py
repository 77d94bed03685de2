"""Phase `produce N TOPIC`: produces N messages with acks=all and prints
`acked <partition> <offset> <value>` for each delivery report. Phase
`verify TOPIC FILE`: reads the acked lines from FILE and checks every one
is in the log at its offset with its value."""

import sys

from confluent_kafka import TopicPartition

import time

from common import *

servers = bootstrap()
phase = sys.argv[2]

if phase == "produce":
    count, topic = int(sys.argv[3]), sys.argv[4]
    admin = admin_client(servers)
    create_topic(admin, topic, 2)
    p = producer(servers, acks="all")

    def on_delivery(err, msg):
        if err is None:
            print(f"acked {msg.partition()} {msg.offset()} {msg.value().decode()}", flush=True)

    for i in range(count):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(), on_delivery=on_delivery)
        p.poll(0)
    check(p.flush(DEADLINE_S) == 0, "flush")
elif phase == "verify":
    topic, path = sys.argv[3], sys.argv[4]
    acked = {}
    for line in open(path):
        if line.startswith("acked "):
            _, part, offset, value = line.split()
            acked[(int(part), int(offset))] = value.encode()
    check(acked, "no acknowledged messages to verify")
    c = consumer(servers)
    c.assign([TopicPartition(topic, part, 0) for part in range(2)])
    # Read until every acknowledged offset has come back (more may come:
    # messages the broker wrote but whose ack the producer never printed).
    waiting = dict(acked)
    wrong = []
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and waiting:
        msg = c.poll(0.5)
        if msg is None or msg.error():
            continue
        key = (msg.partition(), msg.offset())
        if key in waiting:
            if waiting.pop(key) != msg.value():
                wrong.append(key)
    check(not wrong, f"{len(wrong)} acknowledged offsets hold other values, e.g. {wrong[:5]}")
    check(not waiting, f"{len(waiting)} acknowledged messages lost, e.g. {sorted(waiting)[:5]}")
    print(f"verify: all {len(acked)} acknowledged messages present")
