"""auto.offset.reset through librdkafka group members (subscribe, not
assign) applies only where a group has no committed offset: with none,
`earliest` starts at 0 and `latest` starts at the end, getting only what
is produced after its fetcher was set up; with a committed offset K, both
`latest` and `earliest` start at K."""

import json
import time

from confluent_kafka import OFFSET_INVALID, TopicPartition

from common import *

servers = bootstrap()
topic = "reset"
tp = TopicPartition(topic, 0)
create_topic(admin_client(servers), topic, 1)
p = producer(servers)
produce_all(p, topic, [(None, f"m{i}".encode(), None, 0) for i in range(20)])


def member(group, reset, **settings):
    """A member of `group` that has its assignment; returns it, the offset
    the group had committed before it joined, and any messages that came
    with the assignment."""
    c = consumer(servers, **{"group.id": group, "auto.offset.reset": reset}, **settings)
    committed = c.committed([tp], timeout=DEADLINE_S)[0].offset
    c.subscribe([topic])
    early = []
    deadline = time.monotonic() + DEADLINE_S
    while not c.assignment() and time.monotonic() < deadline:
        msg = c.poll(0.1)
        check(msg is None or msg.error() is None, f"{group}: {msg and msg.error()}")
        if msg is not None:
            early.append(msg)
    check(c.assignment() == [tp], f"{group}: assignment {c.assignment()}")
    return c, committed, early


def values(messages):
    return [m.value().decode() for m in messages]


# A: no commit, earliest: everything from offset 0.
a, committed, got = member("reset-a", "earliest")
check(committed == OFFSET_INVALID, f"reset-a already had offset {committed}")
got += consume_exactly(a, 20 - len(got))
check([m.offset() for m in got] == list(range(20)), f"reset-a got offsets {[m.offset() for m in got]}")
a.close()

# B: no commit, latest. position() stays invalid until a message arrives,
# so the statistics tell when the fetcher has its start offset from the
# ListOffsets answer; only messages produced after that may arrive.
stats = []
b, committed, early = member("reset-b", "latest", **{"statistics.interval.ms": 100,
                                                     "stats_cb": lambda s: stats.append(json.loads(s))})
check(committed == OFFSET_INVALID, f"reset-b already had offset {committed}")
check(not early, f"reset-b got {values(early)} with its assignment")
deadline = time.monotonic() + DEADLINE_S
fetcher = {}
while fetcher.get("fetch_state") != "active" and time.monotonic() < deadline:
    msg = b.poll(0.1)
    check(msg is None or msg.error() is not None, f"reset-b got {msg and msg.value()!r} before any new message")
    if stats:
        fetcher = stats.pop()["topics"].get(topic, {}).get("partitions", {}).get("0", {})
check(fetcher.get("fetch_state") == "active", f"reset-b never started fetching: {fetcher}")
check(fetcher["next_offset"] == 20, f"reset-b starts at {fetcher['next_offset']}, expected the end (20)")
produce_all(p, topic, [(None, f"m{i}".encode(), None, 0) for i in range(20, 25)])
got = consume_exactly(b, 5)
check(values(got) == [f"m{i}" for i in range(20, 25)], f"reset-b got {values(got)}")
b.close()

# C: a committed offset wins over either reset policy.
for group, reset, k in [("reset-c-latest", "latest", 7), ("reset-c-earliest", "earliest", 13)]:
    committer = consumer(servers, **{"group.id": group})
    committer.commit(offsets=[TopicPartition(topic, 0, k)], asynchronous=False)
    committer.close()
    c, committed, got = member(group, reset)
    check(committed == k, f"{group}: committed {committed}, expected {k}")
    got += consume_exactly(c, 25 - k - len(got))
    check(values(got) == [f"m{i}" for i in range(k, 25)], f"{group} ({reset}) got {values(got)}")
    c.close()

print("offset reset: ok")
