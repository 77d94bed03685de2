"""Topics through the admin client: create, list, add partitions, delete,
and the errors Kafka gives for a duplicate, a bad name, a shrink."""

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewPartitions, NewTopic

from common import *

servers = bootstrap()
admin = admin_client(servers)

create_topic(admin, "admin-a", 2, {"cleanup.policy": "compact"})
create_topic(admin, "admin-b", 1)
topics = admin.list_topics(timeout=DEADLINE_S).topics
check("admin-a" in topics and "admin-b" in topics, f"created topics missing from {sorted(topics)}")
check(len(topics["admin-a"].partitions) == 2, "admin-a should have 2 partitions")


def error_of(future):
    try:
        future.result(timeout=DEADLINE_S)
    except KafkaException as e:
        return e.args[0].name()
    return None


dup = admin.create_topics([NewTopic("admin-a", num_partitions=1, replication_factor=1)])
check(error_of(dup["admin-a"]) == "TOPIC_ALREADY_EXISTS", "duplicate create must fail")
bad = admin.create_topics([NewTopic("bad name!", num_partitions=1, replication_factor=1)])
check(error_of(bad["bad name!"]) == "TOPIC_EXCEPTION", "bad name must fail")  # librdkafka's name for INVALID_TOPIC_EXCEPTION
brokers = len(admin.list_topics(timeout=DEADLINE_S).brokers)
rf = admin.create_topics([NewTopic("admin-rf", num_partitions=1, replication_factor=brokers + 1)])
check(error_of(rf["admin-rf"]) == "INVALID_REPLICATION_FACTOR", f"replication {brokers + 1} on {brokers} brokers must fail")

grow = admin.create_partitions([NewPartitions("admin-a", 5)], request_timeout=DEADLINE_S)
grow["admin-a"].result(timeout=DEADLINE_S)
topics = admin.list_topics(timeout=DEADLINE_S).topics
check(len(topics["admin-a"].partitions) == 5, "admin-a should have grown to 5 partitions")
shrink = admin.create_partitions([NewPartitions("admin-a", 2)])
check(error_of(shrink["admin-a"]) == "INVALID_PARTITIONS", "shrinking must fail")

deleted = admin.delete_topics(["admin-b"], request_timeout=DEADLINE_S)
deleted["admin-b"].result(timeout=DEADLINE_S)
topics = admin.list_topics(timeout=DEADLINE_S).topics
check("admin-b" not in topics, "admin-b should be gone")
again = admin.delete_topics(["admin-b"])
check(error_of(again["admin-b"]) == "UNKNOWN_TOPIC_OR_PART", "deleting twice must fail")
# A topic that fsyncs before every acknowledgement still takes and serves data.
create_topic(admin, "admin-fsync", 1, {"flush.messages": "1"})
p = producer(servers, acks="all")
produce_all(p, "admin-fsync", [(b"k", f"v{i}".encode(), None, 0) for i in range(20)])
c = consumer(servers)
c.assign([TopicPartition("admin-fsync", 0, 0)])
got = [m.value() for m in consume_exactly(c, 20)]
check(got == [f"v{i}".encode() for i in range(20)], "fsync topic round trip")
c.close()
print("admin: ok")
