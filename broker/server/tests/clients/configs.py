"""Configs and the cluster through the admin client. Phase `alter`:
describes topic and broker configs, changes topic configs with
incremental_alter_configs (SET, DELETE, validate_only) and alter_configs
(which replaces every override), checks the errors Kafka gives, shows a
change reaching the live log (retention removes segments), and describes the
cluster, printing `cluster <id>`. Phase `verify CLUSTER_ID`, after a broker
restart: the changes and the cluster id are still there."""

import sys
import time
import warnings

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from common import *

servers = bootstrap()
phase = sys.argv[2]
admin = admin_client(servers)
TOPIC = "configs-kept"
REPLACED = "configs-replaced"
LIVE = "configs-live"

TOPIC_KEYS = {
    "cleanup.policy", "segment.bytes", "segment.ms", "segment.index.bytes",
    "index.interval.bytes", "retention.ms", "retention.bytes",
    "delete.retention.ms", "flush.messages", "flush.ms",
    "file.delete.delay.ms", "max.message.bytes", "message.timestamp.type",
}


def describe(restype, name):
    resource = ConfigResource(restype, name)
    futures = admin.describe_configs([resource], request_timeout=DEADLINE_S)
    return futures[resource].result(timeout=DEADLINE_S)


def source(e):
    """librdkafka reports the source as a number."""
    return ConfigSource(e.source)


def entry(configs, key):
    check(key in configs, f"{key} missing from {sorted(configs)}")
    return configs[key]


def expect(restype, name, key, value, wanted):
    e = entry(describe(restype, name), key)
    check(
        (e.value, source(e)) == (value, wanted),
        f"{name} {key}: expected {value!r} from {wanted.name}, got {e.value!r} from {source(e).name}",
    )


def incremental(name, ops, validate_only=False, restype=ResourceType.TOPIC):
    """Applies (key, value, op) changes and returns the resource's future."""
    configs = [ConfigEntry(k, v, incremental_operation=op) for k, v, op in ops]
    resource = ConfigResource(restype, name, incremental_configs=configs)
    futures = admin.incremental_alter_configs(
        [resource], validate_only=validate_only, request_timeout=DEADLINE_S
    )
    return futures[resource]


def replace(name, configs, restype=ResourceType.TOPIC):
    # Deprecated in the client, still sent by older tools: tested on purpose.
    warnings.simplefilter("ignore", DeprecationWarning)
    resource = ConfigResource(restype, name, set_config=configs)
    futures = admin.alter_configs([resource], request_timeout=DEADLINE_S)
    return futures[resource]


def error_of(future):
    """The Kafka error a future failed with, or None."""
    try:
        future.result(timeout=DEADLINE_S)
    except KafkaException as e:
        return e.args[0]
    return None


def expect_error(future, name, *words):
    err = error_of(future)
    check(err is not None and err.name() == name, f"expected {name}, got {err}")
    for word in words:
        check(word in err.str(), f"{name} message {err.str()!r} should name {word!r}")


SET, DELETE = AlterConfigOpType.SET, AlterConfigOpType.DELETE
DYNAMIC, DEFAULT = ConfigSource.DYNAMIC_TOPIC_CONFIG, ConfigSource.DEFAULT_CONFIG


def alter():
    create_topic(admin, TOPIC, 2)
    configs = describe(ResourceType.TOPIC, TOPIC)
    check(TOPIC_KEYS <= set(configs), f"topic keys missing: {TOPIC_KEYS - set(configs)}")
    for key in TOPIC_KEYS:
        e = configs[key]
        check(source(e) == DEFAULT and not e.is_read_only,
              f"{key}: {source(e).name} read-only={e.is_read_only}")
    check(entry(configs, "cleanup.policy").value == "delete", "default cleanup.policy")
    check(entry(configs, "flush.messages").value == "9223372036854775807", "default flush.messages")
    check(entry(configs, "retention.ms").value == "604800000", "default retention.ms")
    unknown = ConfigResource(ResourceType.TOPIC, "no-such-topic")
    expect_error(admin.describe_configs([unknown])[unknown], "UNKNOWN_TOPIC_OR_PART")

    broker = describe(ResourceType.BROKER, "1")
    for key in ["num.partitions", "auto.create.topics.enable", "log.dirs", "log.segment.bytes",
                "log.retention.ms", "message.max.bytes", "socket.request.max.bytes",
                "default.replication.factor"]:
        check(entry(broker, key).is_read_only, f"broker {key} must be read-only")
    check(entry(broker, "node.id").value == "1", "node.id")
    check(entry(broker, "advertised.listeners").value == f"PLAINTEXT://{servers}",
          f"advertised.listeners {entry(broker, 'advertised.listeners').value}")
    check(source(entry(broker, "listeners")) == ConfigSource.STATIC_BROKER_CONFIG,
          "listeners come from the command line")

    # Incremental: SET two keys, then a validate-only and an invalid change
    # that must change nothing, then DELETE one.
    incremental(TOPIC, [("retention.ms", "3600000", SET), ("segment.ms", "60000", SET),
                        ("cleanup.policy", "compact,delete", SET)]).result(timeout=DEADLINE_S)
    expect(ResourceType.TOPIC, TOPIC, "retention.ms", "3600000", DYNAMIC)
    expect(ResourceType.TOPIC, TOPIC, "cleanup.policy", "compact,delete", DYNAMIC)
    incremental(TOPIC, [("retention.ms", "5", SET)], validate_only=True).result(timeout=DEADLINE_S)
    expect(ResourceType.TOPIC, TOPIC, "retention.ms", "3600000", DYNAMIC)
    expect_error(incremental(TOPIC, [("retention.ms", "soon", SET), ("segment.ms", None, DELETE)]),
                 "INVALID_CONFIG", "retention.ms", "soon")
    expect_error(incremental(TOPIC, [("no.such.config", "1", SET)]),
                 "INVALID_CONFIG", "no.such.config")
    expect(ResourceType.TOPIC, TOPIC, "segment.ms", "60000", DYNAMIC)
    incremental(TOPIC, [("segment.ms", None, DELETE)]).result(timeout=DEADLINE_S)
    expect(ResourceType.TOPIC, TOPIC, "segment.ms", "604800000", DEFAULT)
    expect_error(incremental("no-such-topic", [("retention.ms", "1", SET)]), "UNKNOWN_TOPIC_OR_PART")
    expect_error(incremental("1", [("num.partitions", "3", SET)], restype=ResourceType.BROKER),
                 "INVALID_REQUEST", "static")

    # alter_configs replaces every override of the topic.
    create_topic(admin, REPLACED, 1, {"flush.messages": "10"})
    expect(ResourceType.TOPIC, REPLACED, "flush.messages", "10", DYNAMIC)
    replace(REPLACED, {"retention.ms": "7200000"}).result(timeout=DEADLINE_S)
    expect(ResourceType.TOPIC, REPLACED, "retention.ms", "7200000", DYNAMIC)
    expect(ResourceType.TOPIC, REPLACED, "flush.messages", "9223372036854775807", DEFAULT)
    expect_error(replace(REPLACED, {"cleanup.policy": "sometimes"}), "INVALID_CONFIG",
                 "cleanup.policy", "sometimes")
    expect(ResourceType.TOPIC, REPLACED, "retention.ms", "7200000", DYNAMIC)
    expect_error(replace("no-such-topic", {"retention.ms": "1"}), "UNKNOWN_TOPIC_OR_PART")
    expect_error(replace("1", {"num.partitions": "3"}, restype=ResourceType.BROKER),
                 "INVALID_REQUEST", "static")

    # A change reaches the live log: small segments, then a retention that
    # every closed segment has outlived, and the log start offset moves.
    create_topic(admin, LIVE, 1)
    incremental(LIVE, [("segment.bytes", "1024", SET)]).result(timeout=DEADLINE_S)
    p = producer(servers, **{"linger.ms": 0})
    for i in range(20):
        produce_all(p, LIVE, [(None, b"x" * 300, None, 0)])
    c = consumer(servers)
    low, high = c.get_watermark_offsets(TopicPartition(LIVE, 0), timeout=DEADLINE_S, cached=False)
    check((low, high) == (0, 20), f"before retention: watermarks {(low, high)}")
    incremental(LIVE, [("retention.ms", "1", SET)]).result(timeout=DEADLINE_S)
    deadline = time.monotonic() + DEADLINE_S
    while low == 0 and time.monotonic() < deadline:
        low, _ = c.get_watermark_offsets(TopicPartition(LIVE, 0), timeout=DEADLINE_S, cached=False)
    check(low > 0, f"retention.ms=1 on segment.bytes=1024 left the log start at {low}")
    c.close()
    incremental(LIVE, [("retention.ms", None, DELETE)]).result(timeout=DEADLINE_S)

    cluster = admin.describe_cluster(request_timeout=DEADLINE_S).result(timeout=DEADLINE_S)
    check(cluster.cluster_id, "cluster id is empty")
    check(cluster.controller is not None and cluster.controller.id == 1,
          f"controller {cluster.controller}")
    nodes = [(n.id, f"{n.host}:{n.port}") for n in cluster.nodes]
    check(nodes == [(1, servers)], f"nodes {nodes}")
    print(f"cluster {cluster.cluster_id}")


def verify(cluster_id):
    expect(ResourceType.TOPIC, TOPIC, "retention.ms", "3600000", DYNAMIC)
    expect(ResourceType.TOPIC, TOPIC, "cleanup.policy", "compact,delete", DYNAMIC)
    expect(ResourceType.TOPIC, TOPIC, "segment.ms", "604800000", DEFAULT)
    expect(ResourceType.TOPIC, REPLACED, "retention.ms", "7200000", DYNAMIC)
    expect(ResourceType.TOPIC, REPLACED, "flush.messages", "9223372036854775807", DEFAULT)
    expect(ResourceType.TOPIC, LIVE, "segment.bytes", "1024", DYNAMIC)
    expect(ResourceType.TOPIC, LIVE, "retention.ms", "604800000", DEFAULT)
    cluster = admin.describe_cluster(request_timeout=DEADLINE_S).result(timeout=DEADLINE_S)
    check(cluster.cluster_id == cluster_id, f"cluster id {cluster.cluster_id}, was {cluster_id}")


if phase == "alter":
    alter()
elif phase == "verify":
    verify(sys.argv[3])
else:
    sys.exit(f"unknown phase {phase}")
print(f"configs {phase}: ok")
