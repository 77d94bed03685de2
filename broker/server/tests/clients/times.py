"""offsets_for_times then seek returns the first message at or after the
time; auto.offset.reset earliest/latest applies to an out-of-range offset;
a 900 KiB message goes through."""

from confluent_kafka import TopicPartition

import logging
import time

from common import *

servers = bootstrap()
admin = admin_client(servers)
# An hour ago: older timestamps would fall to the 7-day retention at once.
base = int(time.time() * 1000) - 3_600_000
p = producer(servers)
create_topic(admin, "times2", 1)
for i in range(100):
    p.produce("times2", value=f"m{i}".encode(), partition=0, timestamp=base + i * 1000)
check(p.flush(DEADLINE_S) == 0, "flush")

c = consumer(servers)
wanted = [TopicPartition("times2", 0, base + 41_500)]
found = c.offsets_for_times(wanted, timeout=DEADLINE_S)
check(found[0].offset == 42, f"offsets_for_times gave {found[0].offset}, expected 42")
c.assign([TopicPartition("times2", 0, found[0].offset)])
msg = consume_exactly(c, 1)[0]
check(msg.value() == b"m42", f"seek landed on {msg.value()!r}")
check(msg.timestamp()[1] == base + 42_000, f"timestamp {msg.timestamp()}")
late = c.offsets_for_times([TopicPartition("times2", 0, base + 10_000_000)], timeout=DEADLINE_S)
check(late[0].offset == -1, f"a time past the end gives -1 (end), got {late[0].offset}")
c.close()

class ResetSeen(logging.Handler):
    """Collects librdkafka's log lines: its OFFSET line says when a reset
    happened, the one event a test can wait for before producing."""

    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


for reset, expected in [("earliest", b"m0"), ("latest", None)]:
    seen = ResetSeen()
    log = logging.getLogger(f"rdkafka-{reset}")
    log.addHandler(seen)
    log.setLevel(logging.DEBUG)
    c = consumer(servers, **{"auto.offset.reset": reset, "logger": log})
    c.assign([TopicPartition("times2", 0, 1_000_000)])
    if expected is not None:
        check(consume_exactly(c, 1)[0].value() == expected, f"{reset}: wrong first message")
    else:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline and not any("offset reset" in l for l in seen.lines):
            check(c.poll(0.2) is None, "latest: got a message before producing one")
        check(any("to END" in l or "to offset END" in l or "END" in l for l in seen.lines if "offset reset" in l),
              f"latest: no reset to the end logged: {seen.lines[-3:]}")
        p.produce("times2", value=b"after-reset", partition=0)
        check(p.flush(DEADLINE_S) == 0, "flush")
        got = consume_exactly(c, 1)[0].value()
        check(got == b"after-reset", f"latest: got {got!r}")
    c.close()

create_topic(admin, "large", 1)
big = bytes(range(256)) * (900 * 1024 // 256)
big_producer = producer(servers, **{"message.max.bytes": 2_000_000})
produce_all(big_producer, "large", [(b"k", big, None, 0)])
c = consumer(servers, **{"fetch.max.bytes": 2_000_000, "max.partition.fetch.bytes": 2_000_000})
c.assign([TopicPartition("large", 0, 0)])
check(consume_exactly(c, 1)[0].value() == big, "900 KiB message differs")
c.close()
print("times: ok")
