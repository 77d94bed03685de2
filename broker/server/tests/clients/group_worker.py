"""A group member for group_failover.py: processes each message, then
commits it synchronously, printing `got P O` and `commit P O+1`. Runs
until killed."""

import sys
import time

from confluent_kafka import TopicPartition

from common import consumer

servers, group, topic = sys.argv[1], sys.argv[2], sys.argv[3]
settings = {"group.id": group, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
if len(sys.argv) > 4:
    settings["partition.assignment.strategy"] = sys.argv[4]
c = consumer(servers, **settings)
c.subscribe([topic])
while True:
    msg = c.poll(0.2)
    if msg is None or msg.error():
        continue
    time.sleep(0.005)  # the "processing" whose progress the commits record
    print(f"got {msg.partition()} {msg.offset()}", flush=True)
    c.commit(offsets=[TopicPartition(topic, msg.partition(), msg.offset() + 1)], asynchronous=False)
    print(f"commit {msg.partition()} {msg.offset() + 1}", flush=True)
