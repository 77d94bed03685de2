"""librdkafka's side of the `runnel perf` comparison: produce N records of
B bytes to a topic, then consume them, through confluent-kafka, printing
records/s and MB/s as `runnel perf` does.

    python3 librdkafka_perf.py HOST:PORT TOPIC N B

The producer settles like runnel perf's (linger.ms=5, acks=all); the
consumer reads in batches of 10,000 (Python's per-message cost still
dominates its figure).
"""
import sys
import time

from confluent_kafka import Consumer, Producer

servers, topic, n, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
producer = Producer({"bootstrap.servers": servers, "linger.ms": 5, "acks": "all",
                     "queue.buffering.max.messages": 1000000})
value = b"x" * size
start = time.monotonic()
for i in range(n):
    while True:
        try:
            producer.produce(topic, value)
            break
        except BufferError:
            producer.poll(0.01)
    if i % 10000 == 0:
        producer.poll(0)
producer.flush(60)
took = time.monotonic() - start
print(f"librdkafka produce: {n} records, {n / took:.1f} records/sec "
      f"({n * size / took / 1e6:.2f} MB/sec)")

consumer = Consumer({"bootstrap.servers": servers, "group.id": f"perf-{time.time()}",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
consumer.subscribe([topic])
got, start = 0, None
deadline = time.monotonic() + 120
while got < n and time.monotonic() < deadline:
    messages = consumer.consume(10000, 1.0)
    if messages and start is None:
        start = time.monotonic()
    got += len(messages)
took = time.monotonic() - (start or time.monotonic())
print(f"librdkafka consume: {got} records, {got / max(took, 1e-9):.1f} records/sec "
      f"({got * size / max(took, 1e-9) / 1e6:.2f} MB/sec)")
consumer.close()
