"""kafka-python consumers in a group: two members share a 4-partition
topic, read every message once between them, and commit."""

import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

DEADLINE_S = 30.0


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


servers = sys.argv[1]
KafkaAdminClient(bootstrap_servers=servers).create_topics([NewTopic("kpg", 4, 1)])
producer = KafkaProducer(bootstrap_servers=servers, enable_idempotence=False)
for i in range(400):
    producer.send("kpg", value=f"v{i}".encode(), partition=i % 4)
producer.flush(timeout=DEADLINE_S)

members = [
    KafkaConsumer("kpg", bootstrap_servers=servers, group_id="kpg-group", auto_offset_reset="earliest",
                  enable_auto_commit=False, session_timeout_ms=10_000, heartbeat_interval_ms=500)
    for _ in range(2)
]
# kafka-python joins inside poll(), so each member polls on its own thread:
# one member's join waits for the other to rejoin.
seen = {}
lock = threading.Lock()
done = threading.Event()


def run(m):
    while not done.is_set():
        for records in m.poll(timeout_ms=100).values():
            with lock:
                for r in records:
                    seen[(r.partition, r.offset)] = r.value


threads = [threading.Thread(target=run, args=(m,)) for m in members]
for t in threads:
    t.start()
deadline = time.monotonic() + DEADLINE_S
while time.monotonic() < deadline:
    with lock:
        if len(seen) == 400 and all(len(m.assignment()) == 2 for m in members):
            break
    time.sleep(0.05)  # a progress check interval, not a synchronisation
done.set()
for t in threads:
    t.join()
check(len(seen) == 400, f"consumed {len(seen)} of 400")
check(sorted(len(m.assignment()) for m in members) == [2, 2],
      f"assignment {[len(m.assignment()) for m in members]}")
for m in members:
    m.commit()
committed = sum(members[0].committed(tp) or 0 for tp in members[0].assignment())
check(committed == 200, f"member 0 committed {committed} messages' worth")
for m in members:
    m.close()
print("kafka-python group: ok")
