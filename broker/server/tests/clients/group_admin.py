"""Groups seen through admin clients. Two live librdkafka members share a
4-partition topic with 100 messages in each partition and commit known
offsets; another group exists only through an offset commit. Both
confluent-kafka's AdminClient and kafka-python's KafkaAdminClient must
list the live group as Stable and the other as Empty, describe the live
group's two members with their assignments (together covering the topic
once) and the assignor, and read back the committed offsets, from which
lag = high watermark - committed comes out as expected."""

import time

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as KafkaTopicPartition

from common import *

servers = bootstrap()
topic, live, empty = "lag", "lag-live", "lag-empty"
per_partition = 100
# Known commits: the live group at 30, 40, 50, 60 (lag 70, 60, 50, 40); the
# empty group only on partitions 0 and 3.
live_commits = {p: 30 + 10 * p for p in range(4)}
empty_commits = {0: 5, 3: 95}
admin = admin_client(servers)
create_topic(admin, topic, 4)
produce_all(producer(servers), topic,
            [(None, f"m{i}".encode(), None, p) for p in range(4) for i in range(per_partition)])

members = [
    consumer(servers, **{"group.id": live, "client.id": f"member-{n}",
                         "partition.assignment.strategy": "roundrobin",
                         "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
    for n in range(2)
]
for c in members:
    c.subscribe([topic])
deadline = time.monotonic() + DEADLINE_S
while time.monotonic() < deadline and sorted(len(c.assignment()) for c in members) != [2, 2]:
    for c in members:
        msg = c.poll(0.1)
        check(msg is None or msg.error() is None, f"member poll: {msg and msg.error()}")
sizes = sorted(len(c.assignment()) for c in members)
check(sizes == [2, 2], f"assignment sizes {sizes}")
assigned = {c.memberid(): sorted(tp.partition for tp in c.assignment()) for c in members}
client_ids = {c.memberid(): f"member-{n}" for n, c in enumerate(members)}
for c in members:
    c.commit(offsets=[TopicPartition(topic, tp.partition, live_commits[tp.partition]) for tp in c.assignment()],
             asynchronous=False)
standalone = consumer(servers, **{"group.id": empty})
standalone.commit(offsets=[TopicPartition(topic, p, o) for p, o in empty_commits.items()], asynchronous=False)
standalone.close()

high_watermarks = {}
for p in range(4):
    _low, high = retried(
        f"watermarks of {topic}-{p}",
        lambda: members[0].get_watermark_offsets(TopicPartition(topic, p), timeout=DEADLINE_S))
    high_watermarks[p] = high
check(high_watermarks == {p: per_partition for p in range(4)}, f"high watermarks {high_watermarks}")
expected_lag = {p: per_partition - o for p, o in live_commits.items()}
check(expected_lag == {0: 70, 1: 60, 2: 50, 3: 40}, f"the test's own lag arithmetic: {expected_lag}")

# --- confluent-kafka (librdkafka) ---

listed = admin.list_consumer_groups(request_timeout=DEADLINE_S).result(timeout=DEADLINE_S)
check(not listed.errors, f"list_consumer_groups errors: {listed.errors}")
by_id = {g.group_id: g for g in listed.valid}
check(live in by_id and empty in by_id, f"listed groups {sorted(by_id)}")
check(by_id[live].state == ConsumerGroupState.STABLE, f"{live} listed as {by_id[live].state}")
check(by_id[empty].state == ConsumerGroupState.EMPTY, f"{empty} listed as {by_id[empty].state}")
check(not by_id[live].is_simple_consumer_group, f"{live} listed as a simple group")
# A group that only commits has no protocol type: Kafka's "simple" group.
check(by_id[empty].is_simple_consumer_group, f"{empty} not listed as a simple group")
stable_only = admin.list_consumer_groups(states={ConsumerGroupState.STABLE},
                                         request_timeout=DEADLINE_S).result(timeout=DEADLINE_S)
stable_ids = sorted(g.group_id for g in stable_only.valid)
check(live in stable_ids and empty not in stable_ids, f"groups listed as Stable: {stable_ids}")

futures = admin.describe_consumer_groups([live, empty], request_timeout=DEADLINE_S)
described = futures[live].result(timeout=DEADLINE_S)
check(described.group_id == live, f"described {described.group_id}")
check(described.state == ConsumerGroupState.STABLE, f"{live} described as {described.state}")
check(described.partition_assignor == "roundrobin", f"{live} assignor {described.partition_assignor!r}")
check(not described.is_simple_consumer_group, f"{live} described as a simple group")
# One broker: broker 1; a cluster: any of its brokers.
broker_ids = set(admin.list_topics(timeout=DEADLINE_S).brokers)
check(described.coordinator is not None and described.coordinator.id in broker_ids,
      f"{live} coordinator {described.coordinator} is none of brokers {sorted(broker_ids)}")
check(len(described.members) == 2, f"{live} has {len(described.members)} members")
covered = []
for m in described.members:
    check(m.member_id in assigned, f"member {m.member_id} is none of {sorted(assigned)}")
    check(m.client_id == client_ids[m.member_id], f"member {m.member_id} has client id {m.client_id!r}")
    check(m.host == "/127.0.0.1", f"member {m.member_id} has host {m.host!r}")
    parts = sorted(tp.partition for tp in m.assignment.topic_partitions)
    check({tp.topic for tp in m.assignment.topic_partitions} == {topic},
          f"member {m.member_id} assigned topics {m.assignment.topic_partitions}")
    check(parts == assigned[m.member_id], f"member {m.member_id} described with {parts}, holds {assigned[m.member_id]}")
    covered += parts
check(sorted(covered) == list(range(4)), f"described assignments cover {sorted(covered)}")
described_empty = futures[empty].result(timeout=DEADLINE_S)
check(described_empty.state == ConsumerGroupState.EMPTY, f"{empty} described as {described_empty.state}")
check(not described_empty.members, f"{empty} has members {described_empty.members}")
check(described_empty.is_simple_consumer_group, f"{empty} not described as a simple group")


def confluent_offsets(group):
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request, request_timeout=DEADLINE_S)[group].result(timeout=DEADLINE_S)
    check(all(tp.error is None for tp in result.topic_partitions), f"{group} offsets: {result.topic_partitions}")
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.topic == topic}


offsets = confluent_offsets(live)
check(offsets == live_commits, f"{live} committed {offsets}, expected {live_commits}")
lag = {p: high_watermarks[p] - o for p, o in offsets.items()}
check(lag == expected_lag, f"{live} lag {lag}, expected {expected_lag}")
offsets = confluent_offsets(empty)
check(offsets == empty_commits, f"{empty} committed {offsets}, expected {empty_commits}")
print("group admin confluent-kafka: ok")

# --- kafka-python ---

kadmin = KafkaAdminClient(bootstrap_servers=servers)
listed = {g["group_id"]: g for g in kadmin.list_groups()}
check(live in listed and empty in listed, f"kafka-python listed {sorted(listed)}")
check(listed[live]["protocol_type"] == "consumer", f"kafka-python: {live} listed as {listed[live]}")
check(listed[live]["group_state"] == "Stable", f"kafka-python: {live} listed as {listed[live]}")
check(listed[empty]["group_state"] == "Empty", f"kafka-python: {empty} listed as {listed[empty]}")
check(listed[empty]["protocol_type"] == "", f"kafka-python: {empty} listed as {listed[empty]}")
stable_ids = sorted(g["group_id"] for g in kadmin.list_groups(states_filter=["Stable"]))
check(live in stable_ids and empty not in stable_ids, f"kafka-python: groups listed as Stable: {stable_ids}")

described = kadmin.describe_groups([live, empty])
group = described[live]
check(group["error"] is None, f"kafka-python: describe {live}: {group['error']}")
check(group["group_state"] == "Stable", f"kafka-python: {live} described as {group['group_state']}")
check(group["protocol_type"] == "consumer", f"kafka-python: {live} protocol type {group['protocol_type']!r}")
check(group["protocol_data"] == "roundrobin", f"kafka-python: {live} assignor {group['protocol_data']!r}")
check(len(group["members"]) == 2, f"kafka-python: {live} has {len(group['members'])} members")
covered = []
for m in group["members"]:
    member_id = m["member_id"]
    check(member_id in assigned, f"kafka-python: member {member_id} is none of {sorted(assigned)}")
    check(m["client_id"] == client_ids[member_id], f"kafka-python: member {member_id} client id {m['client_id']!r}")
    check(m["client_host"] == "/127.0.0.1", f"kafka-python: member {member_id} host {m['client_host']!r}")
    check(m["member_metadata"]["topics"] == [topic], f"kafka-python: member {member_id} subscription {m['member_metadata']}")
    parts = sorted(p for a in m["member_assignment"]["assigned_partitions"] if a["topic"] == topic
                   for p in a["partitions"])
    check(parts == assigned[member_id], f"kafka-python: member {member_id} described with {parts}")
    covered += parts
check(sorted(covered) == list(range(4)), f"kafka-python: described assignments cover {sorted(covered)}")
check(described[empty]["group_state"] == "Empty", f"kafka-python: {empty} described as {described[empty]}")
check(not described[empty]["members"], f"kafka-python: {empty} has members")

# Both groups in one call: one OffsetFetch with two groups (v8+).
fetched = kadmin.list_group_offsets([live, empty])
offsets = {tp.partition: om.offset for tp, om in fetched[live].items() if tp.topic == topic}
check(offsets == live_commits, f"kafka-python: {live} committed {offsets}")
offsets = {tp.partition: om.offset for tp, om in fetched[empty].items() if tp.topic == topic}
check(offsets == empty_commits, f"kafka-python: {empty} committed {offsets}")
watermarks = KafkaConsumer(bootstrap_servers=servers)
ends = watermarks.end_offsets([KafkaTopicPartition(topic, p) for p in range(4)])
watermarks.close()
lag = {tp.partition: end - fetched[live][tp].offset for tp, end in ends.items()}
check(lag == expected_lag, f"kafka-python: {live} lag {lag}, expected {expected_lag}")
kadmin.close()
print("group admin kafka-python: ok")

for c in members:
    c.close()
