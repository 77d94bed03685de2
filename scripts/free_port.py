"""Prints a loopback TCP port that nothing listens on now.

    python3 scripts/free_port.py            any free port the OS picks
    python3 scripts/free_port.py LOW HIGH   a free port in LOW..HIGH

Used by the scripts that start brokers (scripts/kafka.sh, e2e/*/run.sh);
a range keeps concurrent runs of different suites apart.
"""
import random
import socket
import sys


def bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return s.getsockname()[1]


if len(sys.argv) == 1:
    print(bindable(0))
elif len(sys.argv) == 3:
    low, high = int(sys.argv[1]), int(sys.argv[2])
    ports = list(range(low, high + 1))
    random.shuffle(ports)
    found = next((p for p in ports if bindable(p)), None)
    if found is None:
        sys.exit(f"free_port.py: no free loopback port in {low}-{high}")
    print(found)
else:
    sys.exit("usage: free_port.py [LOW HIGH]")
