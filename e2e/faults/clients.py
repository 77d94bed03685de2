"""The fault harness's clients, each run as its own process so that a
client that crashes does not take the harness down:

    clients.py producer  an idempotent acks=all producer of unique values
    clients.py txn       a transactional producer that commits some
                         transactions and aborts others
    clients.py probe     an idempotent acks=all producer writing to one
                         partition every ~10 ms (failover time)
    clients.py consumer  a read_committed consumer of every partition
    clients.py final     reads every partition from the beginning to its
                         high watermark once, then exits

Every one appends what it does to a journal of JSON lines (the format is
checker.py's; one line is written and flushed per event, so a kill -9
loses at most the line being written). SIGTERM asks a client to stop: a
producer stops sending, waits for its outstanding deliveries (bounded) and
exits.
"""

import argparse
import json
import random
import signal
import sys
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

# Client settings, printed with the failover times (they bound them).
PRODUCER_SETTINGS = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "request.timeout.ms": 5000,
    "message.timeout.ms": 30000,
    "retry.backoff.ms": 50,
    "retry.backoff.max.ms": 500,
    "topic.metadata.refresh.interval.ms": 5000,
    "socket.connection.setup.timeout.ms": 5000,
}
PROBE_SETTINGS = dict(PRODUCER_SETTINGS, **{"linger.ms": 0, "message.timeout.ms": 60000})
TXN_SETTINGS = dict(
    PRODUCER_SETTINGS,
    **{"transaction.timeout.ms": 10000, "message.timeout.ms": 10000},
)
CONSUMER_SETTINGS = {
    "enable.auto.commit": False,
    # An out-of-range position is journalled and sought explicitly, so the
    # checker can tell a reset from offsets going backwards.
    "auto.offset.reset": "error",
    "fetch.wait.max.ms": 100,
    "socket.connection.setup.timeout.ms": 5000,
    "topic.metadata.refresh.interval.ms": 5000,
}


class Journal:
    """Appends one JSON object per line, flushed at once."""

    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record_type, /, **fields):
        fields = {"t": round(time.time(), 6), "type": record_type, **fields}
        self.file.write(json.dumps(fields, separators=(",", ":")) + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


class Stop:
    """Set by SIGTERM or SIGINT; the loops poll it."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, _signum, _frame):
        self.requested = True


def error_name(err):
    if err is None:
        return None
    return f"{err.name()}: {err.str()}"


def produce_loop(args, journal, stop, settings, make_value, partition=None):
    """Sends make_value(seq) at args.rate per second until stopped, making
    the producer anew after a fatal error (each instance is a new
    idempotent producer id)."""
    seq = 0
    instance = 0
    interval = 1.0 / args.rate
    while not stop.requested:
        fatal = []
        conf = dict(settings)
        conf["bootstrap.servers"] = args.bootstrap
        conf["client.id"] = f"{args.name}-{args.session}-{instance}"
        conf["error_cb"] = lambda err: fatal.append(err) if err.fatal() else None
        producer = Producer(conf)
        journal.write("instance", instance=instance)

        def delivered(err, msg):
            value = msg.value().decode()
            if err is None:
                journal.write("ack", value=value, partition=msg.partition(), offset=msg.offset())
            else:
                journal.write("fail", value=value, error=error_name(err))

        next_send = time.monotonic()
        while not stop.requested and not fatal:
            value = make_value(seq)
            try:
                kwargs = {"key": f"k{seq}", "value": value, "on_delivery": delivered}
                if partition is not None:
                    kwargs["partition"] = partition
                producer.produce(args.topic, **kwargs)
            except BufferError:
                producer.poll(0.05)
                continue
            except (KafkaException, SystemError) as exc:
                err = kafka_error(exc)
                if err is None or err.fatal():
                    fatal.append(err)
                    break
                journal.write("fail", value=value, error=error_name(err))
                seq += 1
                continue
            journal.write("send", value=value)
            seq += 1
            # poll returns early whenever it serves a callback.
            next_send = max(next_send + interval, time.monotonic() - 1.0)
            try:
                while not stop.requested and (left := next_send - time.monotonic()) > 0:
                    producer.poll(left)
            except (KafkaException, SystemError) as exc:
                # Raised from within a callback: only fatal errors are.
                fatal.append(kafka_error(exc))
        if fatal:
            journal.write("fatal", error=error_name(fatal[0]))
        # Outstanding messages fail or succeed here; a fatal producer fails
        # them all at once.
        flush_quietly(producer, journal, 15)
        instance += 1


def flush_quietly(producer, journal, seconds):
    """Waits for outstanding deliveries; a fatal error raised from within
    is journalled, not raised."""
    try:
        left = producer.flush(seconds)
    except (KafkaException, SystemError) as exc:
        left = None
        journal.write("flush-error", error=error_name(kafka_error(exc)) or repr(exc))
    journal.write("flushed", outstanding=left)


def run_producer(args, journal, stop):
    journal.write("start", role="producer", name=args.name, session=args.session,
                  settings=PRODUCER_SETTINGS)
    produce_loop(args, journal, stop, PRODUCER_SETTINGS,
                 lambda seq: f"{args.name}-{args.session}-{seq}")


def run_probe(args, journal, stop):
    journal.write("start", role="probe", name=args.name, session=args.session,
                  partition=args.partition, settings=PROBE_SETTINGS)
    produce_loop(args, journal, stop, PROBE_SETTINGS,
                 lambda seq: f"{args.name}-{args.session}-{seq}", partition=args.partition)


def kafka_error(exc):
    """The KafkaError an exception carries. A fatal error can surface from
    inside the next callback, which Python reports as a SystemError caused
    by the KafkaException."""
    while exc is not None:
        if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
            return exc.args[0]
        exc = exc.__cause__
    return None


def run_txn(args, journal, stop):
    """Transactions of 1-5 values; about one in three is aborted on
    purpose. Outcomes: committed (commit returned), aborted (commit never
    asked for, or abort returned), unknown (commit asked for, then a fatal
    error). After a fatal error the producer is made anew (its
    init_transactions fences the old one)."""
    journal.write("start", role="txn-producer", name=args.name, session=args.session,
                  settings=TXN_SETTINGS)
    rng = random.Random(f"{args.seed}-{args.session}")
    counter = iter(range(1 << 62))
    instance = 0
    while not stop.requested:
        fatal = []
        conf = dict(TXN_SETTINGS)
        conf["bootstrap.servers"] = args.bootstrap
        conf["transactional.id"] = f"{args.name}-txn"
        conf["client.id"] = f"{args.name}-{args.session}-{instance}"
        # Without an error callback a fatal error is raised from inside
        # whichever callback runs next.
        conf["error_cb"] = lambda err: fatal.append(err) if err.fatal() else None
        producer = Producer(conf)
        journal.write("instance", instance=instance)
        instance += 1
        try:
            producer.init_transactions(30)
            while not stop.requested and not fatal:
                run_one_txn(args, producer, journal, rng, f"{args.session}-{next(counter)}")
                producer.poll(0)
                time.sleep(1.0 / args.rate)
        except (KafkaException, SystemError) as exc:
            err = kafka_error(exc)
            journal.write("txn-error", error=error_name(err) or repr(exc))
            if err is not None and err.txn_requires_abort() and not fatal:
                try:
                    producer.abort_transaction(15)
                except KafkaException:
                    pass
        if fatal:
            journal.write("fatal", error=error_name(fatal[0]))
        flush_quietly(producer, journal, 5)
        time.sleep(0.2)


def run_one_txn(args, producer, journal, rng, txn_id):
    def delivered(err, msg):
        value = msg.value().decode()
        if err is None:
            journal.write("ack", value=value, partition=msg.partition(), offset=msg.offset())
        else:
            journal.write("fail", value=value, error=error_name(err))

    producer.begin_transaction()
    journal.write("begin", txn=txn_id)
    for i in range(rng.randint(1, 5)):
        value = f"{args.name}-{txn_id}-{i}"
        producer.produce(args.topic, key=f"t{txn_id}-{i}", value=value, on_delivery=delivered)
        journal.write("send", value=value, txn=txn_id)
    producer.poll(0)
    if rng.random() < 1 / 3:
        try:
            # Written first, so the log holds aborted records for
            # read_committed readers to skip (an abort would purge them
            # unsent).
            producer.flush(10)
            producer.abort_transaction(15)
        finally:
            # Commit was never asked for: it cannot commit.
            journal.write("txn", txn=txn_id, outcome="aborted", why="on purpose")
    else:
        finish_commit(producer, journal, txn_id)


def finish_commit(producer, journal, txn_id):
    """Commits, retrying retriable errors and aborting on abortable ones;
    raises on fatal errors after journalling the outcome as unknown."""
    journal.write("committing", txn=txn_id)
    deadline = time.monotonic() + 30
    while True:
        try:
            producer.commit_transaction(15)
            journal.write("txn", txn=txn_id, outcome="committed")
            return
        except KafkaException as exc:
            err = kafka_error(exc)
            # An abortable error may be retriable too: abort it.
            if err is not None and err.txn_requires_abort():
                try:
                    producer.abort_transaction(15)
                    journal.write("txn", txn=txn_id, outcome="aborted", why=error_name(err))
                    return
                except KafkaException:
                    pass
            elif err is not None and err.retriable() and time.monotonic() < deadline:
                continue
            journal.write("txn", txn=txn_id, outcome="unknown", why=error_name(err))
            raise


def consumer_conf(args, isolation):
    conf = dict(CONSUMER_SETTINGS)
    conf.update({
        "bootstrap.servers": args.bootstrap,
        # Partitions are assigned, never subscribed: the group id is
        # required by the client but no group is joined or committed to.
        "group.id": f"faults-{args.name}",
        "isolation.level": isolation,
        "client.id": f"{args.name}-{args.session}",
    })
    return conf


def record_message(journal, consumer, msg, topic):
    """Journals one polled message; returns the partition it moved, or
    None."""
    err = msg.error()
    if err is None:
        journal.write("read", partition=msg.partition(), offset=msg.offset(),
                      value=msg.value().decode() if msg.value() is not None else None)
        return msg.partition()
    if err.code() == KafkaError._AUTO_OFFSET_RESET:
        # Our position is past the log end or before its start (the log
        # was truncated or wiped): start the partition over, and say so.
        # (A partition in this state refuses seek: assign it anew.)
        journal.write("reset", partition=msg.partition(), error=error_name(err))
        consumer.incremental_unassign([TopicPartition(topic, msg.partition())])
        consumer.incremental_assign([TopicPartition(topic, msg.partition(), OFFSET_BEGINNING)])
        return None
    journal.write("error", partition=msg.partition(), error=error_name(err))
    return None


def run_consumer(args, journal, stop):
    journal.write("start", role="consumer", name=args.name, session=args.session,
                  isolation=args.isolation, settings=CONSUMER_SETTINGS)
    consumer = Consumer(consumer_conf(args, args.isolation))
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING)
                     for p in range(args.partitions)])
    try:
        while not stop.requested:
            msg = consumer.poll(0.2)
            if msg is not None:
                record_message(journal, consumer, msg, args.topic)
    finally:
        consumer.close()


def high_watermarks(consumer, args, deadline):
    """Each partition's (log start offset, high watermark)."""
    marks = {}
    while len(marks) < args.partitions and time.monotonic() < deadline:
        for p in range(args.partitions):
            if p in marks:
                continue
            try:
                marks[p] = consumer.get_watermark_offsets(
                    TopicPartition(args.topic, p), timeout=5, cached=False)
            except KafkaException:
                time.sleep(0.2)
    return marks


def run_final(args, journal, stop):
    """Reads each partition from its start to the high watermark taken
    first. Ends when every position reaches it, or when nothing moved for
    --idle seconds (a read_committed read stops at an open transaction)."""
    journal.write("start", role="final", name=args.name, session=args.session,
                  isolation=args.isolation)
    consumer = Consumer(consumer_conf(args, args.isolation))
    deadline = time.monotonic() + args.deadline
    marks = high_watermarks(consumer, args, deadline)
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING)
                     for p in range(args.partitions)])
    positions = {p: -1 for p in range(args.partitions)}
    last_progress = time.monotonic()

    def done():
        return all(p in marks and (positions[p] >= marks[p][1] or marks[p][0] >= marks[p][1])
                   for p in positions)

    while not stop.requested and time.monotonic() < deadline and not done():
        msg = consumer.poll(0.2)
        if msg is not None and record_message(journal, consumer, msg, args.topic) is not None:
            last_progress = time.monotonic()
        # The position also moves past control records and aborted data.
        for tp in consumer.position([TopicPartition(args.topic, p) for p in positions]):
            if tp.offset >= 0 and tp.offset > positions[tp.partition]:
                positions[tp.partition] = tp.offset
                last_progress = time.monotonic()
        if time.monotonic() - last_progress > args.idle:
            break
    for p in sorted(positions):
        low, high = marks.get(p, (None, None))
        journal.write("end", partition=p, log_start_offset=low, high_watermark=high,
                      position=positions[p],
                      complete=high is not None and (positions[p] >= high or low >= high))
    consumer.close()
    return 0 if done() else 3


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["producer", "txn", "probe", "consumer", "final"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="faults")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--journal", required=True)
    parser.add_argument("--name", required=True, help="this client's name in values and logs")
    parser.add_argument("--session", type=int, default=0,
                        help="how many times the harness restarted this client")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--rate", type=float, default=100.0, help="sends (or transactions) per second")
    parser.add_argument("--partition", type=int, default=0, help="the probe's partition")
    parser.add_argument("--isolation", default="read_committed",
                        choices=["read_committed", "read_uncommitted"])
    parser.add_argument("--deadline", type=float, default=120.0, help="final: seconds at most")
    parser.add_argument("--idle", type=float, default=15.0,
                        help="final: give up after this many seconds without progress")
    args = parser.parse_args(argv)
    stop = Stop()
    journal = Journal(args.journal)
    run = {
        "producer": run_producer,
        "txn": run_txn,
        "probe": run_probe,
        "consumer": run_consumer,
        "final": run_final,
    }[args.role]
    try:
        status = run(args, journal, stop) or 0
    finally:
        journal.write("stop")
        journal.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
