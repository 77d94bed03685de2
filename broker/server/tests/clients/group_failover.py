"""One of three group members is SIGKILLed mid-stream: within the session
timeout plus a margin the other two own its partitions, every message is
processed, and nothing before the killed member's last commit on a
partition is delivered again."""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

from common import *

servers = bootstrap()
topic, group, count = "failover", "failover-group", 3000
create_topic(admin_client(servers), topic, 6)
produce_all(producer(servers), topic, [(None, f"m{i}".encode(), None, i % 6) for i in range(count)])

events = queue.Queue()
here = os.path.dirname(os.path.abspath(__file__))
workers = []
for n in range(3):
    proc = subprocess.Popen([sys.executable, os.path.join(here, "group_worker.py"), servers, group, topic],
                            stdout=subprocess.PIPE, text=True, cwd=here)

    def read(n=n, proc=proc):
        for line in proc.stdout:
            events.put((n, line.split()))

    threading.Thread(target=read, daemon=True).start()
    workers.append(proc)

delivered = {}   # (partition, offset) -> how many times
last_commit = {}  # partition -> (worker, offset)
got_by = {0: 0, 1: 0, 2: 0}
killed_at = None
deadline = time.monotonic() + 60
try:
    while len(delivered) < count and time.monotonic() < deadline:
        try:
            n, (kind, part, offset) = events.get(timeout=1)
        except queue.Empty:
            continue
        key = (int(part), int(offset))
        if kind == "got":
            delivered[key] = delivered.get(key, 0) + 1
            got_by[n] += 1
        elif kind == "commit":
            last_commit[int(part)] = (n, int(offset))
        if killed_at is None and got_by[0] >= 100 and any(w == 0 for w, _ in last_commit.values()):
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait()
            killed_at = time.monotonic()
            killed_commits = {p: o for p, (w, o) in last_commit.items() if w == 0}
    check(killed_at is not None, "worker 0 never got far enough to be killed")
    check(len(delivered) == count, f"processed {len(delivered)} of {count} after the kill")
    taken_over = time.monotonic() - killed_at
    check(taken_over < 6 + 20, f"the survivors took {taken_over:.1f}s to finish")
    # Every message is committed right after it is processed, so the only
    # one that may come again is the killed member's in-flight message of a
    # partition: at most one per partition, at or after its last commit.
    redelivered = [k for k, times in delivered.items() if times > 1]
    per_partition = {}
    for (part, offset) in redelivered:
        per_partition[part] = per_partition.get(part, 0) + 1
        floor = killed_commits.get(part, 0)
        check(offset >= floor, f"offset {offset} of partition {part} came again though {floor} was committed")
    check(all(n <= 1 for n in per_partition.values()), f"redelivered per partition: {per_partition}")
    print(f"failover: all {count} processed, {len(redelivered)} redelivered after the last commits")
finally:
    for w in workers:
        if w.poll() is None:
            w.kill()
            w.wait()
