"""librdkafka's idempotent producer (enable.idempotence=true: InitProducerId,
then sequence numbers per partition) writes 3,000 messages over 3
partitions: every delivery report is a distinct offset, the offsets of each
partition run 0, 1, 2, ... with no gap, and a consumer reads each message
exactly once, in send order per partition."""

from confluent_kafka import TopicPartition

from common import *

servers = bootstrap()
admin = admin_client(servers)
topic = "idempotent"
create_topic(admin, topic, 3)

count = 3000
messages = [(None, f"m{i}".encode(), None, i % 3) for i in range(count)]
p = producer(servers, **{"enable.idempotence": True, "acks": "all",
                         "max.in.flight.requests.per.connection": 5})
delivered = produce_all(p, topic, messages)
check(len(delivered) == count, f"{len(delivered)} delivery reports for {count} messages")
for part in range(3):
    offsets = sorted(o for (pt, o, _, _) in delivered if pt == part)
    check(offsets == list(range(count // 3)), f"partition {part}: offsets {offsets[:5]}...")

c = consumer(servers)
c.assign([TopicPartition(topic, part, 0) for part in range(3)])
got = consume_exactly(c, count)
c.close()
values = [m.value() for m in got]
check(len(set(values)) == count, "each message once")
for part in range(3):
    in_order = [int(m.value()[1:]) for m in got if m.partition() == part]
    check(in_order == sorted(in_order), f"partition {part} in send order")
print("ok")
