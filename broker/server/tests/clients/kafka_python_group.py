"""kafka-python consumers in a group, each in its own process: two members
share a 4-partition topic (two partitions each) and read every message
once between them."""

import os
import queue
import subprocess
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaProducer
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

here = os.path.dirname(os.path.abspath(__file__))
events = queue.Queue()
members = []
for n in range(2):
    proc = subprocess.Popen([sys.executable, os.path.join(here, "kafka_python_member.py"), servers],
                            stdout=subprocess.PIPE, text=True, cwd=here)

    def read(n=n, proc=proc):
        for line in proc.stdout:
            events.put((n, line.split()))

    threading.Thread(target=read, daemon=True).start()
    members.append(proc)

seen = set()
sizes = {0: 0, 1: 0}
deadline = time.monotonic() + DEADLINE_S
try:
    while time.monotonic() < deadline and not (len(seen) == 400 and sizes == {0: 2, 1: 2}):
        try:
            n, words = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if words[0] == "assigned":
            sizes[n] = int(words[1])
        elif words[0] == "got":
            seen.add((int(words[1]), int(words[2])))
    check(len(seen) == 400, f"consumed {len(seen)} of 400")
    check(sizes == {0: 2, 1: 2}, f"assignment sizes {sizes}")
    print("kafka-python group: ok")
finally:
    for m in members:
        m.kill()
        m.wait()
