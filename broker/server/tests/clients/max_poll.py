"""A member that stops polling for longer than max.poll.interval.ms loses
its partitions: the one that keeps polling ends up owning all of them."""

import time

from common import *

servers = bootstrap()
topic, group = "max-poll", "max-poll-group"
create_topic(admin_client(servers), topic, 4)
settings = {"group.id": group, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
            "max.poll.interval.ms": 7000}
busy = consumer(servers, **settings)
lively = consumer(servers, **settings)
busy.subscribe([topic])
lively.subscribe([topic])

# Both members join and share the partitions.
deadline = time.monotonic() + DEADLINE_S
while time.monotonic() < deadline:
    busy.poll(0.1)
    lively.poll(0.1)
    if len(busy.assignment()) == 2 and len(lively.assignment()) == 2:
        break
check(len(busy.assignment()) == 2 and len(lively.assignment()) == 2,
      f"shared: {len(busy.assignment())} + {len(lively.assignment())}")

# `busy` stops polling; only `lively` is polled from here on.
deadline = time.monotonic() + DEADLINE_S
while time.monotonic() < deadline and len(lively.assignment()) < 4:
    lively.poll(0.2)
check(len(lively.assignment()) == 4, f"the polling member owns {len(lively.assignment())} of 4")
lively.close()
print("max.poll.interval.ms: ok")
