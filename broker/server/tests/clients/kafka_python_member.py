"""One kafka-python group member for kafka_python_group.py: prints
`assigned N` whenever its assignment size changes and `got P O` for each
message; commits after each poll. Runs until killed."""

import sys

from kafka import KafkaConsumer

servers = sys.argv[1]
c = KafkaConsumer("kpg", bootstrap_servers=servers, group_id="kpg-group", auto_offset_reset="earliest",
                  enable_auto_commit=False, session_timeout_ms=10_000, heartbeat_interval_ms=500)
size = -1
while True:
    batch = c.poll(timeout_ms=100)
    if len(c.assignment()) != size:
        size = len(c.assignment())
        print(f"assigned {size}", flush=True)
    for records in batch.values():
        for r in records:
            print(f"got {r.partition} {r.offset}", flush=True)
    if batch:
        c.commit()
