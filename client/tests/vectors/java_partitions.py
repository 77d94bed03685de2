#!/usr/bin/env python3
"""Partitioner test vectors: the partition the Java producer's default
partitioner picks for a key, `Utils.toPositive(Utils.murmur2(key)) % n`,
printed as the Rust rows pasted into `client/tests/partitioner_vectors.rs`.

Two independent implementations of the published algorithm must agree on
every key and partition count, or the script exits non-zero:

- kafka-python's `kafka.partitioner.default.murmur2`, a Python port of
  Java's `org.apache.kafka.common.utils.Utils.murmur2` (it returns the hash
  as an unsigned 32-bit number; the Java `int` is its two's complement);
- librdkafka's `murmur2_random` partitioner (documented as "Java Producer
  compatible"), the C function `rd_kafka_msg_partitioner_murmur2_random`
  called through ctypes in the librdkafka that confluent-kafka ships. With a
  non-NULL key it computes `(rd_murmur2(key, len) & 0x7fffffff) % n` and
  never touches its topic argument, so no broker or topic is needed.

kafka-python's port is first checked against Apache Kafka's own vectors
(`UtilsTest.testMurmur2`).

Usage: python3 client/tests/vectors/java_partitions.py
(prints the rows of `VECTORS`, a comment header first, to stdout)
Needs: pip install kafka-python confluent-kafka
"""

import ctypes
import glob
import os
import sys

import confluent_kafka
import kafka
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

PARTITION_COUNTS = [1, 3, 6, 7, 12, 50]

# Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
KAFKA_UTILS_TEST = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

# (bytes, times): the key is `bytes` repeated `times` times, so long keys
# stay short in the Rust table.
KEYS = [
    # Empty (a non-null empty key is hashed; only a null key is sticky).
    (b"", 1),
    # Every tail case (length % 4 = 0, 1, 2, 3) over lengths 1..8.
    *[(b"abcdefgh"[:n], 1) for n in range(1, 9)],
    *[(b"\xff" * n, 1) for n in range(1, 9)],  # bytes Java sees as negative
    # ASCII keys as applications send them.
    *[(f"key-{i}".encode(), 1) for i in range(10)],
    (b"order-42", 1),
    (b"user-1002", 1),
    (b"0", 1),
    (b"customer:7f3a9c2e", 1),
    (b"550e8400-e29b-41d4-a716-446655440000", 1),
    *[(k, 1) for k in KAFKA_UTILS_TEST if k != b"abc"],  # "abc" is above
    # UTF-8: 2-, 3- and 4-byte sequences.
    ("ключ".encode(), 1),
    ("café".encode(), 1),
    ("日本語のキー".encode(), 1),
    ("🦀".encode(), 1),
    ("naïve-ключ-日本-🦀".encode(), 1),
    # Binary.
    (b"\x00", 1),
    (b"\x00\x00\x00\x00", 1),
    (b"\x80\x7f\x00\xff\x01", 1),
    (b"\x80\x81\x82\x83\xfc\xfd\xfe\xff", 1),
    # Long.
    (b"x", 1000),
    (b"0123456789abcdef", 64),
    ("ключ".encode(), 300),
]


def librdkafka():
    """The librdkafka that confluent-kafka loaded (its wheel bundles one)."""
    package = os.path.dirname(confluent_kafka.__file__)
    bundled = glob.glob(os.path.join(package, os.pardir, "confluent_kafka.libs", "librdkafka*.so*"))
    path = bundled[0] if bundled else "librdkafka.so.1"
    lib = ctypes.CDLL(path)
    fn = lib.rd_kafka_msg_partitioner_murmur2_random
    fn.restype = ctypes.c_int32
    fn.argtypes = [
        ctypes.c_void_p,  # const rd_kafka_topic_t *rkt (unused for a key)
        ctypes.c_void_p,  # const void *key
        ctypes.c_size_t,  # size_t keylen
        ctypes.c_int32,  # int32_t partition_cnt
        ctypes.c_void_p,  # void *rkt_opaque
        ctypes.c_void_p,  # void *msg_opaque
    ]

    def partition(key, n):
        buffer = ctypes.create_string_buffer(key, len(key) + 1)  # never NULL
        return fn(None, ctypes.cast(buffer, ctypes.c_void_p), len(key), n, None, None)

    return path, partition


def java_int(unsigned):
    return unsigned - (1 << 32) if unsigned >= 1 << 31 else unsigned


def rust_bytes(data):
    out = []
    for b in data:
        c = chr(b)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    return 'b"' + "".join(out) + '"'


def rust_key(data):
    """Non-ASCII UTF-8 text as a `str` (its UTF-8 bytes), anything else as
    a byte string."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return rust_bytes(data)
    if data.isascii() or not text.isprintable():
        return rust_bytes(data)
    return f'"{text}".as_bytes()'


def main():
    failures = []
    for key, expected in KAFKA_UTILS_TEST.items():
        got = java_int(kafka_python_murmur2(key))
        if got != expected:
            failures.append(f"kafka-python murmur2({key!r}) = {got}, Kafka's UtilsTest says {expected}")

    path, rdkafka_partition = librdkafka()
    rows = []
    for part, times in KEYS:
        key = part * times
        hash_ = java_int(kafka_python_murmur2(key))
        partitions = []
        for n in PARTITION_COUNTS:
            java = (hash_ & 0x7FFFFFFF) % n
            rdkafka = rdkafka_partition(key, n)
            if java != rdkafka:
                failures.append(f"{key[:32]!r}... of {len(key)} bytes, {n} partitions: kafka-python {java}, librdkafka {rdkafka}")
            partitions.append(java)
        rows.append(f"    ({rust_key(part)}, {times}, {hash_}, {partitions}),")

    if failures:
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"    // Generated by client/tests/vectors/java_partitions.py with kafka-python {kafka.__version__}")
    print(f"    // and librdkafka {confluent_kafka.libversion()[0]} ({os.path.basename(path)}, confluent-kafka {confluent_kafka.__version__}).")
    print(f"    // Columns: key bytes, times repeated, Java murmur2, partition for {PARTITION_COUNTS} partitions.")
    print("\n".join(rows), flush=True)
    print(f"{len(KEYS)} keys x {len(PARTITION_COUNTS)} partition counts: kafka-python and librdkafka agree", file=sys.stderr)


if __name__ == "__main__":
    main()
