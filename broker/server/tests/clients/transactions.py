"""librdkafka's transactional producer: one transaction commits 30
messages, another aborts 20; a read_committed consumer sees exactly the
committed 30 (and none of the aborted), a read_uncommitted one sees all
50. Then a second producer with the same transactional.id fences the
first."""

from confluent_kafka import KafkaException, Producer, TopicPartition

from common import *

servers = bootstrap()
admin = admin_client(servers)
topic = "transactional"
create_topic(admin, topic, 2)

p = Producer({"bootstrap.servers": servers, "transactional.id": "tx-1", "linger.ms": 5})
p.init_transactions(DEADLINE_S)

p.begin_transaction()
for i in range(30):
    p.produce(topic, value=f"committed-{i}".encode(), partition=i % 2)
p.commit_transaction(DEADLINE_S)

p.begin_transaction()
for i in range(20):
    p.produce(topic, value=f"aborted-{i}".encode(), partition=i % 2)
p.flush(DEADLINE_S)
p.abort_transaction(DEADLINE_S)

def read_all(isolation, expected):
    c = consumer(servers, **{"isolation.level": isolation, "group.id": f"tx-{isolation}"})
    c.assign([TopicPartition(topic, part, 0) for part in range(2)])
    got = consume_exactly(c, expected)
    # Nothing more arrives (markers are not records).
    extra = c.poll(1.0)
    check(extra is None or extra.error() is not None, f"{isolation}: more than {expected}")
    c.close()
    return sorted(m.value().decode() for m in got)

committed = read_all("read_committed", 30)
check(all(v.startswith("committed-") for v in committed), f"read_committed saw {committed[:3]}")
everything = read_all("read_uncommitted", 50)
check(sum(v.startswith("aborted-") for v in everything) == 20, "read_uncommitted sees the aborted 20")

# A new producer of tx-1 fences the old one.
p2 = Producer({"bootstrap.servers": servers, "transactional.id": "tx-1"})
p2.init_transactions(DEADLINE_S)
p.begin_transaction()
p.produce(topic, value=b"zombie", partition=0)
try:
    p.commit_transaction(DEADLINE_S)
    check(False, "the fenced producer committed")
except KafkaException as e:
    check(e.args[0].fatal() or "fenced" in str(e).lower(), f"fenced: {e}")
print("ok")
