"""Where the Java client's default partitioner puts keys, from two
independent implementations of it: librdkafka's `murmur2_random`
partitioner (documented as Java-compatible), producing to the real broker
and reading the partition from each delivery report, and kafka-python's
`murmur2` (a port of Java's `Utils.murmur2`), computed locally. They must
agree; each line printed is `<key as hex> <partition>`.

Usage: partitions.py BOOTSTRAP TOPIC PARTITIONS"""

import sys

from kafka.partitioner.default import murmur2

from common import *

servers, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
keys = [f"key-{i}".encode() for i in range(100)]
keys += [("ключ-" + str(i)).encode() for i in range(10)]  # UTF-8
keys += [b"a" * n for n in range(1, 9)]  # every tail length
keys += [b"x" * 1000, bytes(range(256))]

create_topic(admin_client(servers), topic, partitions)
p = producer(servers, partitioner="murmur2_random")
delivered = produce_all(p, topic, [(k, b"v", None, None) for k in keys])
by_key = {key: partition for partition, _offset, key, _value in delivered}
check(len(by_key) == len(keys), f"{len(by_key)} of {len(keys)} keys delivered")
for key in keys:
    java = (murmur2(key) & 0x7FFFFFFF) % partitions
    check(by_key[key] == java, f"librdkafka put {key!r} on {by_key[key]}, kafka-python's murmur2 says {java}")
    print(key.hex(), by_key[key])
