"""Helpers shared by the librdkafka (confluent-kafka) client scripts.

Each script takes the broker's bootstrap address as its first argument,
exits 0 when every check holds and prints what failed otherwise. Waits have
deadlines; nothing sleeps to synchronise.
"""

import os
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

DEADLINE_S = 30.0

# Set by tests/cluster.rs while partition leaders move around: a write
# with acks=0 or acks=1 may then be lost (the old leader took it, the
# new one never had it), on Kafka as here; only acks=all promises it.
LEADERS_MOVE = os.environ.get("RUNNEL_LEADERS_MOVE") == "1"


def bootstrap():
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} BOOTSTRAP_SERVERS")
    return sys.argv[1]


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


def create_topic(admin, name, partitions, config=None):
    futures = admin.create_topics(
        # -1: the broker's default.replication.factor (three on a cluster).
        [NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config or {})],
        request_timeout=DEADLINE_S,
    )
    futures[name].result(timeout=DEADLINE_S)


def wait_leaders(servers, topic, partitions):
    """Waits until each partition's leader serves it (answers ListOffsets).
    On a cluster the controller confirms a new topic before every leader has
    applied it, and acks=0 writes sent before then are dropped unseen, as
    on Kafka."""
    from confluent_kafka import TopicPartition

    c = Consumer({"bootstrap.servers": servers, "group.id": "wait-leaders"})
    deadline = time.monotonic() + DEADLINE_S
    try:
        for p in range(partitions):
            while True:
                try:
                    c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)
                    break
                except KafkaException as e:
                    check(time.monotonic() < deadline, f"{topic}-{p}: no leader serves it: {e}")
                    time.sleep(0.05)  # polled, under the deadline
    finally:
        c.close()


def admin_client(servers):
    return AdminClient({"bootstrap.servers": servers})


def producer(servers, **settings):
    config = {"bootstrap.servers": servers, "linger.ms": 5}
    if LEADERS_MOVE and settings.get("acks", "all") in ("all", "-1"):
        # A retry after a leader moved may write a batch twice unless the
        # producer is idempotent (librdkafka's default is not), on Kafka
        # as here.
        config["enable.idempotence"] = True
    config.update(settings)
    return Producer(config)


def produce_all(p, topic, messages, **kwargs):
    """Produces (key, value, headers, partition) tuples; returns the delivery
    reports as (partition, offset, key, value) in delivery order."""
    delivered = []
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered.append((msg.partition(), msg.offset(), msg.key(), msg.value()))

    for key, value, headers, partition in messages:
        args = dict(key=key, value=value, headers=headers, on_delivery=on_delivery)
        if partition is not None:
            args["partition"] = partition
        args.update(kwargs)
        while True:
            try:
                p.produce(topic, **args)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(DEADLINE_S)
    check(remaining == 0, f"{remaining} messages still queued after {DEADLINE_S}s")
    check(not errors, f"delivery errors: {errors[:3]}")
    return delivered


def consumer(servers, **settings):
    config = {
        "bootstrap.servers": servers,
        "group.id": "runnel-tests",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
    }
    config.update(settings)
    return Consumer(config)


def consume_exactly(c, count):
    """Polls until `count` messages arrived or the deadline passed."""
    messages = []
    deadline = time.monotonic() + DEADLINE_S
    while len(messages) < count and time.monotonic() < deadline:
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        messages.append(msg)
    check(len(messages) == count, f"consumed {len(messages)} of {count} messages")
    return messages


def consume_available(c, count, quiet_s=5.0):
    """Polls until `count` messages arrived, or nothing came for `quiet_s`
    (or the deadline passed): what a reader gets of writes that may have
    been lost. Never more than `count`."""
    messages = []
    deadline = time.monotonic() + DEADLINE_S
    quiet_until = time.monotonic() + quiet_s
    while len(messages) < count and time.monotonic() < min(deadline, quiet_until):
        msg = c.poll(0.5)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        messages.append(msg)
        quiet_until = time.monotonic() + quiet_s
    check(len(messages) <= count, f"consumed {len(messages)} messages, more than the {count} sent")
    return messages


def retried(what, call):
    """`call()`, again while it raises a retriable error (a leader that
    just moved answers NOT_LEADER_OR_FOLLOWER until the client looks it up
    again), up to the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            return call()
        except KafkaException as e:
            err = e.args[0] if e.args else None
            # librdkafka does not flag a leader's refusal of a watermark
            # query as retriable; Kafka's protocol does.
            retriable = err is not None and (
                err.retriable() or err.code() in (
                    KafkaError.NOT_LEADER_FOR_PARTITION,
                    KafkaError.LEADER_NOT_AVAILABLE,
                    KafkaError.NOT_COORDINATOR,
                    KafkaError.COORDINATOR_NOT_AVAILABLE,
                    KafkaError.REQUEST_TIMED_OUT,
                    KafkaError._TRANSPORT,
                ))
            check(retriable and time.monotonic() < deadline, f"{what}: {e}")
            time.sleep(0.1)  # polled, under the deadline
