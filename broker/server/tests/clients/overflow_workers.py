"""Consumers of a backlog-forwarding overflow topic (tests/forward.rs).

usage: overflow_workers.py BOOTSTRAP TOPIC GROUP WORKERS EXPECTED OUT DEADLINE_S

WORKERS librdkafka consumers (read_committed) share GROUP and read TOPIC
until together they have seen EXPECTED distinct forwarded records (by the
runnel.forward.partition/offset headers), or DEADLINE_S seconds pass. Every
record each one processed goes to OUT as a line:

    overflow_partition overflow_offset key value timestamp h origin_topic
    origin_partition origin_offset

The checks (nothing lost, nothing twice, per-key order) are the test's;
this script exits 1 only when the records never all came.
"""

import os
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError

def header(headers, name):
    for key, value in headers or []:
        if key == name:
            return value.decode() if value is not None else "null"
    return "-"


def main():
    servers, topic, group, workers, expected, out, deadline_s = sys.argv[1:8]
    workers, expected = int(workers), int(expected)
    lock = threading.Lock()
    lines = []
    origins = set()
    stop = threading.Event()
    errors = []

    def work(index):
        consumer = Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": group,
                "client.id": f"overflow-worker-{index}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "auto.commit.interval.ms": 500,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
            }
        )
        consumer.subscribe([topic])
        try:
            while not stop.is_set():
                for message in consumer.consume(500, timeout=0.2):
                    if message.error():
                        if message.error().code() != KafkaError._PARTITION_EOF:
                            with lock:
                                errors.append(str(message.error()))
                        continue
                    headers = message.headers()
                    origin = (
                        header(headers, "runnel.forward.topic"),
                        header(headers, "runnel.forward.partition"),
                        header(headers, "runnel.forward.offset"),
                    )
                    line = " ".join(
                        [
                            str(message.partition()),
                            str(message.offset()),
                            message.key().decode() if message.key() is not None else "null",
                            message.value().decode() if message.value() is not None else "null",
                            str(message.timestamp()[1]),
                            header(headers, "h"),
                            *origin,
                        ]
                    )
                    with lock:
                        lines.append(line)
                        origins.add(origin)
        finally:
            consumer.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + float(deadline_s)
    last_report = time.monotonic()
    while time.monotonic() < deadline:
        with lock:
            seen = len(origins)
        if seen >= expected:
            break
        if time.monotonic() - last_report >= 5:
            print(f"seen {seen} of {expected}", file=sys.stderr, flush=True)
            last_report = time.monotonic()
        time.sleep(0.1)
    stop.set()
    with lock:
        text = "\n".join(lines) + "\n"
        seen = len(origins)
    with open(out, "w") as f:
        f.write(text)
    for t in threads:
        t.join(timeout=30)
    if errors:
        print(f"consumer errors (retried by librdkafka): {errors[:5]}", file=sys.stderr)
    stuck = sum(t.is_alive() for t in threads)
    if stuck:
        # Their records are counted; librdkafka may wait on a coordinator
        # address that a restarted broker gave up.
        print(f"{stuck} consumers did not close within 30 s", file=sys.stderr)
    if seen < expected:
        print(f"FAILED: saw {seen} of {expected} forwarded records", file=sys.stderr, flush=True)
        os._exit(1)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
