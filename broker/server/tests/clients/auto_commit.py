"""Auto commit through librdkafka: a group member with enable.auto.commit
consumes every message of a 2-partition topic and never commits by hand;
within the deadline a second client (the admin client) sees the group's
committed offsets reach the end of each partition, while the member is
still live. After the member closes, a new member of the group resumes at
those offsets and gets nothing older."""

import time

from confluent_kafka import OFFSET_INVALID, ConsumerGroupTopicPartitions, TopicPartition

from common import *

servers = bootstrap()
topic, group, per_partition = "autocommit", "autocommit-group", 40
partitions = [TopicPartition(topic, p) for p in range(2)]
admin = admin_client(servers)
create_topic(admin, topic, 2)
produce_all(producer(servers), topic,
            [(None, f"old-{p}-{i}".encode(), None, p) for p in range(2) for i in range(per_partition)])


def committed_by_admin():
    """The group's committed offsets as the admin client reads them."""
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, partitions)],
                                               request_timeout=DEADLINE_S)[group]
    result = future.result(timeout=DEADLINE_S)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


before = committed_by_admin()
check(before == {0: OFFSET_INVALID, 1: OFFSET_INVALID}, f"a new group has committed offsets {before}")

# common.consumer() turns the offset store off for manual commits; auto
# commit commits only what the store holds, so it must be back on.
c = consumer(servers, **{"group.id": group, "enable.auto.commit": True, "enable.auto.offset.store": True,
                         "auto.commit.interval.ms": 200})
c.subscribe([topic])
got = consume_exactly(c, 2 * per_partition)
values = {m.value() for m in got}
check(len(values) == 2 * per_partition, f"{len(values)} distinct messages of {2 * per_partition}")

# The member keeps polling (nothing more to read) while the admin client
# waits for the background commit to land.
expected = {0: per_partition, 1: per_partition}
deadline = time.monotonic() + DEADLINE_S
seen = committed_by_admin()
while seen != expected and time.monotonic() < deadline:
    msg = c.poll(0.1)
    check(msg is None or msg.error() is not None, f"an unexpected message {msg and msg.value()!r}")
    seen = committed_by_admin()
check(seen == expected, f"auto commit left the group at {seen}, expected {expected}")
own = {tp.partition: tp.offset for tp in c.committed(partitions, timeout=DEADLINE_S)}
check(own == expected, f"the member itself reads committed {own}")
c.close()

# New messages after the commit: a new member must start exactly there
# (earliest would give old-*-0 if the commit were not found).
produce_all(producer(servers), topic,
            [(None, f"new-{p}-{i}".encode(), None, p) for p in range(2) for i in range(5)])
resumed = consumer(servers, **{"group.id": group, "auto.offset.reset": "earliest"})
resumed.subscribe([topic])
got = consume_exactly(resumed, 10)
offsets = sorted((m.partition(), m.offset()) for m in got)
want = sorted((p, per_partition + i) for p in range(2) for i in range(5))
check(offsets == want, f"the new member got {offsets}, expected {want}")
check(all(m.value().startswith(b"new-") for m in got), f"old messages came again: {[m.value() for m in got]}")
# Nothing more is waiting: an older message would have come before these.
msg = resumed.poll(1.0)
check(msg is None or msg.error() is not None, f"an extra message after the resume: {msg and msg.value()!r}")
resumed.close()
print("auto commit: ok")
