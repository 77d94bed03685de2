"""10,000 keyed messages with headers go through the broker and come back
byte for byte, in order per partition, with every codec and acks setting.
While leaders move (RUNNEL_LEADERS_MOVE), acks=0 and acks=1 writes may be
lost: what comes back of them is checked, not that all did."""

from confluent_kafka import TopicPartition

from common import *

servers = bootstrap()
admin = admin_client(servers)

for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
    for acks in ["0", "1", "all"]:
        topic = f"roundtrip-{codec}-{acks}"
        create_topic(admin, topic, 3)
        if acks == "0":
            # Nothing tells an acks=0 producer its writes went nowhere.
            wait_leaders(servers, topic, 3)
        count = 10_000 if (codec, acks) == ("none", "all") else 600
        messages = [
            (
                f"key-{i % 97}".encode(),
                bytes([i % 256]) * (i % 300) + f"value-{i}".encode(),
                [("seq", str(i).encode()), ("dup", b"a"), ("dup", b"b")],
                None,
            )
            for i in range(count)
        ]
        p = producer(servers, **{"compression.type": codec, "acks": acks})
        produce_all(p, topic, messages)

        c = consumer(servers)
        c.assign([TopicPartition(topic, part, 0) for part in range(3)])
        if LEADERS_MOVE and acks != "all":
            got = consume_available(c, count)
        else:
            got = consume_exactly(c, count)
        c.close()
        seqs = [msg.headers()[0][1] for msg in got]
        check(len(set(seqs)) == len(seqs), f"{topic}: a message read twice")

        sent = {m[2][0][1]: m for m in messages}
        last_seq = {}  # partition -> last sequence number seen
        for msg in got:
            headers = msg.headers()
            seq = headers[0][1]
            key, value, sent_headers, _ = sent[seq]
            check(msg.key() == key, f"{topic}: key differs for seq {seq}")
            check(msg.value() == value, f"{topic}: value differs for seq {seq}")
            check(headers == sent_headers, f"{topic}: headers differ: {headers} != {sent_headers}")
            part = msg.partition()
            check(int(seq) > last_seq.get(part, -1), f"{topic}: out of order in partition {part}")
            last_seq[part] = int(seq)
        print(f"{topic}: {len(got)} of {count} messages round-tripped")
