"""One kafka-python group member for kafka_python_group.py: prints
`assigned N` whenever its assignment size changes and `got P O` for each
message; commits after each poll. Runs until killed. With KPG_LOG=DIR set it writes
kafka-python's debug log to DIR/member-PID.log."""

import logging
import os
import sys

if os.environ.get("KPG_LOG"):
    logging.basicConfig(filename=os.path.join(os.environ["KPG_LOG"], f"member-{os.getpid()}.log"),
                        level=logging.DEBUG, format="%(asctime)s %(threadName)s %(name)s %(message)s")

from kafka import KafkaConsumer

servers = sys.argv[1]
c = KafkaConsumer(bootstrap_servers=servers, group_id="kpg-group", auto_offset_reset="earliest",
                  enable_auto_commit=False, session_timeout_ms=10_000, heartbeat_interval_ms=500)
# kafka-python 3.0 loses a join when a leader assigns before it knows the
# topic's partitions: the rejoin that follows the metadata update is driven
# only by its assignment snapshot, which the new assignment makes current
# again, so a poll that times out mid-join never completes it and the member
# goes silent. Java's coordinator keeps "join pending" as a rejoin reason.
# With group.initial.rebalance.delay.ms=0 the first join is fast enough to
# hit this, so learn the topic's partitions before subscribing.
if not c.partitions_for_topic("kpg"):
    sys.exit("no metadata for kpg")
c.subscribe(["kpg"])
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
