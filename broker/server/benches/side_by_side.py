"""Runnel next to Apache Kafka: the same load against each, in one run, with
both figures and their ratio.

    broker/server/benches/side_by_side.sh [--quick] [--records N]
        [--record-size B] [--partitions P] [--latency-seconds S]
        [--port PORT] [--dir DIR] [--runnel-bin PATH]

The brokers run one after the other, never together (a small machine's
cores would be shared between them); each starts from an empty data
directory, gets the same topics of P partitions, is warmed up with a tenth
of the records (at most 200,000) in and out through kcat, not measured, so
that Kafka's JIT has compiled its hot paths as in a running cluster, and
takes the same steps:

1. librdkafka produce: `kcat -P` (acks=all, librdkafka's defaults otherwise)
   sends N records of B bytes read from a file prepared before either broker
   starts; MB/s is the bytes of record values over the wall time of the kcat
   process, which exits once every record is acknowledged. The high
   watermarks are checked to sum to N.
2. librdkafka fetch: `kcat -C -e` reads that topic from the beginning to its
   end; the bytes it prints are counted (they must be N x (B + 1), a newline
   per record) and MB/s is taken over the wall time of the kcat process,
   with fetch.wait.max.ms=10 so that the empty fetch that tells kcat it has
   reached the end is not held for librdkafka's default 500 ms.
3. Kafka's ProducerPerformance, `--throughput -1`, acks=1, then acks=all
   (Java producer defaults otherwise: batch.size 16384, linger.ms 5), each
   to its own topic; MB/s and records/s are the ones it prints.
4. Kafka's ConsumerPerformance reads the acks=1 topic; the figure is its
   fetch.MB.sec (the group join, rebalance.time.ms, is left out by the tool).
5. Produce latency at half of the peak: ProducerPerformance with
   `--throughput` set to half the records/s that step 3 reached on that
   broker (acks=1 and acks=all each at half of its own peak), for about S
   seconds; p50 and p99 are the ones it prints (whole milliseconds).

Around every step the broker's CPU time (utime + stime of its pid, all
threads, from /proc/<pid>/stat) is read, and divided by the GB (10^9 bytes
of record values) produced or fetched. MB/s is 2^20 bytes/s throughout,
the unit Kafka's tools print. The page cache is flushed (sync) before each
produce step so that one step's writeback is not billed to the next.

Why kcat for librdkafka: it is C with no interpreter between records, so it
drives the broker with the same 1 KiB records as the Java tools and is the
faster of the two; against the same Kafka on this machine kcat produced at
245 MiB/s where python confluent-kafka reached 166 MiB/s, with 1 KiB and
with 64 KiB records alike (its produce()/poll loop and the copy of each
value into librdkafka cost as much as the records are large), and larger
records would make a different load from the Java rows anyway.

Kafka runs with the JVM flags its documentation gives for production
(operations, "Java Version"), settings printed with the results. Durability
is the same on both: neither fsyncs per write (Kafka's and Runnel's default
flush.messages and flush.ms are Long.MAX_VALUE, read back from each broker
with DescribeConfigs and printed).

`--quick` (100,000 records, 2 s latency runs) checks that the benchmark
works in under a minute; its figures are not steady. The default (2,000,000
records of 1024 B, 2 GB per produce step, 20 s latency runs) takes four to
six minutes on a 2-core machine and gives steady ones; it needs about
9 GB of free disk in the data directory (the records file, then one
broker's logs at a time, deleted after each).

A tool printing something that cannot be parsed, a count that does not
match, or a broker that fails to start stops the run with a sentence and
the offending text. The brokers are stopped on every exit (finally, and
SIGTERM/SIGHUP turned into an exit).
"""
import argparse
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")
RUNNEL_SH = os.path.join(ROOT, "scripts", "runnel.sh")

# Kafka's documentation (operations, "Java Version", 2.0 to 4.1): "Typical
# arguments for running Kafka with OpenJDK-based Java implementations".
# kafka.sh adds -XX:+UseG1GC -XX:MaxGCPauseMillis=20
# -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
# itself; they are repeated here so the printed list is the whole of it.
KAFKA_HEAP_OPTS = "-Xmx6g -Xms6g"
KAFKA_JVM_OPTS = ("-XX:MetaspaceSize=96m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "
                  "-XX:InitiatingHeapOccupancyPercent=35 -XX:G1HeapRegionSize=16M "
                  "-XX:MinMetaspaceFreeRatio=50 -XX:MaxMetaspaceFreeRatio=80 "
                  "-XX:+ExplicitGCInvokesConcurrent")
# The perf tools' own JVM: the same for both brokers.
TOOLS_HEAP_OPTS = "-Xmx1G"
RUNNEL_SETTINGS = ["group.initial.rebalance.delay.ms=0"]  # as kafka.sh gives Kafka
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20

TOPIC_KCAT = "sbs-kcat"
TOPIC_ACKS1 = "sbs-pp-acks1"
TOPIC_ACKSALL = "sbs-pp-acksall"
TOPIC_LAT1 = "sbs-lat-acks1"
TOPIC_LATALL = "sbs-lat-acksall"
TOPIC_WARMUP = "sbs-warmup"
TOPICS = [TOPIC_WARMUP, TOPIC_KCAT, TOPIC_ACKS1, TOPIC_ACKSALL, TOPIC_LAT1, TOPIC_LATALL]

# ProducerPerformance's last line: "N records sent, R records/sec (M MB/sec),
# A ms avg latency, X ms max latency, P ms 50th, P ms 95th, P ms 99th,
# P ms 99.9th."
PP_TOTAL = re.compile(
    r"^(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbs>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99.9th\.$")
CP_HEADER = ("start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, "
             "nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec")


class BenchError(Exception):
    pass


def fail(message):
    raise BenchError(message)


def log(message):
    print(f"side_by_side: {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid):
    path = f"/proc/{pid}/stat"
    try:
        with open(path) as f:
            stat = f.read()
    except OSError as e:
        fail(f"cannot read {path} (has the broker exited?): {e}")
    # Fields after the command name, which is in parentheses and may hold
    # spaces: utime and stime are fields 14 and 15 (1-based), 12 and 13 here.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Broker:
    """One broker process, started by scripts/kafka.sh or scripts/runnel.sh."""

    def __init__(self, name, script, dir_, port, env, extra):
        self.name, self.script, self.dir, self.port = name, script, dir_, port
        self.env, self.extra, self.pid = env, extra, None
        self.launched = False

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log(f"starting {self.name} on {self.bootstrap} ({self.dir})")
        self.launched = True
        out = subprocess.run([self.script, "start", self.dir, str(self.port), *self.extra],
                             env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            fail(f"{self.name} did not start ({self.script} exited {out.returncode}): "
                 f"{out.stderr.strip()[-2000:]}")
        last = out.stdout.strip().splitlines()[-1:] or [""]
        if not last[0].isdigit():
            fail(f"{self.script} start printed {out.stdout!r}, not the broker's pid")
        self.pid = int(last[0])

    def stop(self):
        # The script stops whatever its pid file names, so this also covers
        # a broker interrupted while starting.
        if not self.launched:
            return
        log(f"stopping {self.name} (pid {self.pid})")
        subprocess.run([self.script, "stop", self.dir], env=self.env)
        self.launched, self.pid = False, None


def run_tool(cmd, env=None, stdin=None):
    """Runs a tool to its end; returns (stdout, stderr, wall seconds)."""
    started = time.monotonic()
    out = subprocess.run(cmd, env=env, stdin=stdin, capture_output=True, text=True)
    wall = time.monotonic() - started
    if out.returncode != 0:
        fail(f"{' '.join(cmd[:4])} ... exited {out.returncode}: "
             f"{(out.stderr or out.stdout).strip()[-2000:]}")
    return out.stdout, out.stderr, wall


def tools_env():
    env = dict(os.environ)
    env["KAFKA_HEAP_OPTS"] = TOOLS_HEAP_OPTS
    env["KAFKA_JVM_OPTS"] = ""
    return env


class Step:
    """One measured step: its figures, the broker's CPU and the quoted lines."""

    def __init__(self, quoted, value_bytes, cpu, wall, **figures):
        self.quoted, self.value_bytes, self.cpu, self.wall = quoted, value_bytes, cpu, wall
        self.figures = figures

    @property
    def cpu_per_gb(self):
        return self.cpu / (self.value_bytes / 1e9)


def measured(broker, work):
    """Runs work() between two readings of the broker's CPU time."""
    before = cpu_seconds(broker.pid)
    result = work()
    return result, cpu_seconds(broker.pid) - before


def parse_pp(stdout, what):
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    for line in reversed(lines):
        m = PP_TOTAL.match(line)
        if m:
            return line, m
    fail(f"ProducerPerformance ({what}) printed no total line of the form "
         f"'N records sent, R records/sec (M MB/sec), ... ms 99.9th.'; its last line was "
         f"{(lines or ['<nothing>'])[-1]!r}")


def parse_cp(stdout, what):
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if CP_HEADER not in lines:
        fail(f"ConsumerPerformance ({what}) printed no header {CP_HEADER!r}; it printed "
             f"{stdout.strip()[-1000:]!r}")
    at = lines.index(CP_HEADER)
    if at + 1 >= len(lines):
        fail(f"ConsumerPerformance ({what}) printed its header and no figures")
    row = lines[at + 1]
    names = [n.strip() for n in CP_HEADER.split(",")]
    values = [v.strip() for v in row.split(",")]
    if len(values) != len(names):
        fail(f"ConsumerPerformance ({what}) printed {len(values)} values under "
             f"{len(names)} columns: {row!r}")
    fields = dict(zip(names, values))
    try:
        return [lines[at], row], float(fields["fetch.MB.sec"]), int(fields["data.consumed.in.nMsg"])
    except ValueError:
        fail(f"ConsumerPerformance ({what}) printed a value that is not a number: {row!r}")


def high_watermarks(bootstrap, topic, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "side-by-side-watermarks",
                         "enable.auto.commit": False})
    try:
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(partitions)]
    finally:
        consumer.close()


def create_topics(bootstrap, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in TOPICS],
                                  operation_timeout=30)
    for topic, future in futures.items():
        try:
            future.result(60)
        except Exception as e:  # noqa: BLE001 - the client's KafkaException
            fail(f"creating topic {topic} with {partitions} partitions failed: {e}")
    # Wait until every partition has a leader in the metadata.
    deadline = time.monotonic() + 30
    while True:
        meta = admin.list_topics(timeout=10)
        ready = all(t in meta.topics and len(meta.topics[t].partitions) == partitions
                    and all(p.leader >= 0 for p in meta.topics[t].partitions.values())
                    for t in TOPICS)
        if ready:
            return admin
        if time.monotonic() > deadline:
            fail(f"topics {TOPICS} not all led after 30 s: {meta.topics}")
        time.sleep(0.2)


def durability(admin):
    resource = ConfigResource(ConfigResource.Type.TOPIC, TOPIC_KCAT)
    try:
        configs = admin.describe_configs([resource])[resource].result(30)
    except Exception as e:  # noqa: BLE001
        fail(f"DescribeConfigs of topic {TOPIC_KCAT} failed: {e}")
    return {k: configs[k].value if k in configs else "<not reported>"
            for k in ("flush.messages", "flush.ms")}


def kcat_produce(broker, args, records_file):
    cmd = ["kcat", "-P", "-b", broker.bootstrap, "-t", TOPIC_KCAT, "-X", "acks=all"]
    os.sync()
    with open(records_file, "rb") as f:
        (out, err, wall), cpu = measured(broker, lambda: run_tool(cmd, stdin=f))
    marks = high_watermarks(broker.bootstrap, TOPIC_KCAT, args.partitions)
    if sum(marks) != args.records:
        fail(f"after kcat -P of {args.records} records, {broker.name}'s high watermarks "
             f"{marks} sum to {sum(marks)}")
    value_bytes = args.records * args.record_size
    mbs = value_bytes / MIB / wall
    quoted = [f"$ {' '.join(cmd)} < {records_file}",
              f"kcat printed: {(out + err).strip()!r}",
              f"measured: {args.records} records, {value_bytes} B of values in {wall:.3f} s "
              f"= {mbs:.2f} MB/sec; high watermarks {marks} (sum {sum(marks)})"]
    return Step(quoted, value_bytes, cpu, wall, mbs=mbs)


def kcat_fetch(broker, args):
    # fetch.wait.max.ms=10 (librdkafka's default 500): kcat -e exits only
    # after one more fetch per partition comes back empty, which a broker
    # holds for fetch.wait.max.ms; while there is data to read it has no
    # effect (fetch.min.bytes is 1).
    cmd = ["kcat", "-C", "-b", broker.bootstrap, "-t", TOPIC_KCAT, "-o", "beginning", "-e", "-q",
           "-X", "fetch.wait.max.ms=10"]
    expected = args.records * (args.record_size + 1)

    def work():
        started = time.monotonic()
        kcat = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        buffer, count = bytearray(4 * MIB), 0
        while n := kcat.stdout.readinto(buffer):
            count += n
        err = kcat.stderr.read().decode(errors="replace")
        code = kcat.wait()
        wall = time.monotonic() - started
        if code != 0:
            fail(f"kcat -C exited {code}: {err.strip()[-2000:]}")
        return count, err, wall

    (count, err, wall), cpu = measured(broker, work)
    if count != expected:
        fail(f"kcat -C printed {count} bytes from {broker.name}, expected {expected} "
             f"({args.records} records of {args.record_size} B and a newline each)")
    value_bytes = args.records * args.record_size
    mbs = value_bytes / MIB / wall
    quoted = [f"$ {' '.join(cmd)} > (counted)",
              f"kcat printed {count} bytes to stdout, {err.strip()!r} to stderr",
              f"measured: {args.records} records, {value_bytes} B of values in {wall:.3f} s "
              f"= {mbs:.2f} MB/sec"]
    return Step(quoted, value_bytes, cpu, wall, mbs=mbs)


def producer_perf(broker, args, topic, acks, throughput, records):
    cmd = [KAFKA_SH, "run", "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
           "--num-records", str(records), "--record-size", str(args.record_size),
           "--throughput", str(throughput),
           "--producer-props", f"bootstrap.servers={broker.bootstrap}", f"acks={acks}"]
    os.sync()
    (out, _err, wall), cpu = measured(broker, lambda: run_tool(cmd, env=tools_env()))
    line, m = parse_pp(out, f"acks={acks} against {broker.name}")
    if int(m["records"]) != records:
        fail(f"ProducerPerformance sent {m['records']} records, asked for {records}: {line!r}")
    quoted = [f"$ scripts/kafka.sh {' '.join(cmd[1:])}", line]
    return Step(quoted, records * args.record_size, cpu, wall, mbs=float(m["mbs"]),
                rps=float(m["rps"]), p50=int(m["p50"]), p99=int(m["p99"]))


def consumer_perf(broker, args):
    cmd = [KAFKA_SH, "run", "org.apache.kafka.tools.ConsumerPerformance",
           "--bootstrap-server", broker.bootstrap, "--topic", TOPIC_ACKS1,
           "--messages", str(args.records), "--timeout", "60000"]
    (out, _err, wall), cpu = measured(broker, lambda: run_tool(cmd, env=tools_env()))
    quoted, mbs, got = parse_cp(out, f"against {broker.name}")
    if got != args.records:
        fail(f"ConsumerPerformance read {got} records from {broker.name}, expected "
             f"{args.records}: {quoted[1]!r}")
    return Step([f"$ scripts/kafka.sh {' '.join(cmd[1:])}", *quoted], args.records * args.record_size, cpu,
                wall, mbs=mbs)


def warm_up(broker, args, records_file):
    """Not measured: a tenth of the records (at most 200,000) produced and
    fetched with kcat, so that Kafka's JIT has compiled the produce and
    fetch paths before the first timed step, as it has in a running cluster."""
    records = min(200_000, max(1000, args.records // 10))
    log(f"{broker.name}: warm-up, {records} records in and out with kcat (not measured)")
    with open(records_file, "rb") as f:
        head = b"".join(f.readline() for _ in range(records))
    subprocess.run(["kcat", "-P", "-b", broker.bootstrap, "-t", TOPIC_WARMUP, "-X", "acks=all"],
                   input=head, check=True)
    subprocess.run(["kcat", "-C", "-b", broker.bootstrap, "-t", TOPIC_WARMUP, "-o", "beginning",
                    "-e", "-q"], stdout=subprocess.DEVNULL, check=True)


def bench(broker, args, records_file):
    broker.start()
    try:
        admin = create_topics(broker.bootstrap, args.partitions)
        steps = {"durability": durability(admin)}
        del admin  # its connection would log once the broker stops
        warm_up(broker, args, records_file)
        log(f"{broker.name}: kcat produce")
        steps["kcat_produce"] = kcat_produce(broker, args, records_file)
        log(f"{broker.name}: kcat fetch")
        steps["kcat_fetch"] = kcat_fetch(broker, args)
        for acks, topic in (("1", TOPIC_ACKS1), ("all", TOPIC_ACKSALL)):
            log(f"{broker.name}: ProducerPerformance acks={acks}")
            steps[f"pp_{acks}"] = producer_perf(broker, args, topic, acks, -1, args.records)
        log(f"{broker.name}: ConsumerPerformance")
        steps["cp"] = consumer_perf(broker, args)
        for acks, topic in (("1", TOPIC_LAT1), ("all", TOPIC_LATALL)):
            rate = max(1, int(steps[f"pp_{acks}"].figures["rps"] / 2))
            records = max(1000, rate * args.latency_seconds)
            log(f"{broker.name}: ProducerPerformance acks={acks} at {rate} records/s")
            steps[f"lat_{acks}"] = producer_perf(broker, args, topic, acks, rate, records)
            steps[f"lat_{acks}"].figures["rate"] = rate
        return steps
    finally:
        broker.stop()
        shutil.rmtree(broker.dir, ignore_errors=True)


def prepare_records(path, records, size):
    """N lines of B random capital letters, as ProducerPerformance's payload."""
    log(f"writing {records} records of {size} B to {path}")
    block = os.urandom(size * 64)
    letters = bytes(65 + b % 26 for b in block)
    with open(path, "wb", buffering=8 * MIB) as f:
        for i in range(records):
            at = (i * 131) % (size * 63)
            f.write(letters[at:at + size])
            f.write(b"\n")
    os.sync()


def ratio(runnel, kafka):
    if kafka == 0:
        return "n/a (Kafka 0)"
    return f"{runnel / kafka:.2f}"


def version_of(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired) as e:
        return f"<{' '.join(cmd)} failed: {e}>"


def memory_total():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    return "<unknown>"


def report(args, results, runnel_bin):
    r, k = results["runnel"], results["kafka"]
    rows = []  # (figure, runnel, kafka, ratio)

    def row(label, key, fig, fmt="{:.2f}"):
        a, b = r[key].figures[fig], k[key].figures[fig]
        rows.append((label, fmt.format(a), fmt.format(b), ratio(a, b)))

    def cpu_row(label, key):
        a, b = r[key].cpu_per_gb, k[key].cpu_per_gb
        rows.append((label, f"{a:.2f}", f"{b:.2f}", ratio(a, b)))

    row("librdkafka (kcat) produce MB/s, acks=all", "kcat_produce", "mbs")
    row("librdkafka (kcat) fetch MB/s", "kcat_fetch", "mbs")
    row("ProducerPerformance MB/s, acks=1", "pp_1", "mbs")
    row("ProducerPerformance records/s, acks=1", "pp_1", "rps", "{:.0f}")
    row("ProducerPerformance MB/s, acks=all", "pp_all", "mbs")
    row("ProducerPerformance records/s, acks=all", "pp_all", "rps", "{:.0f}")
    row("ConsumerPerformance fetch.MB.sec", "cp", "mbs")
    cpu_row("CPU s/GB, kcat produce (lower is better)", "kcat_produce")
    cpu_row("CPU s/GB, kcat fetch (lower is better)", "kcat_fetch")
    cpu_row("CPU s/GB, PP acks=1 (lower is better)", "pp_1")
    cpu_row("CPU s/GB, PP acks=all (lower is better)", "pp_all")
    cpu_row("CPU s/GB, ConsumerPerformance (lower is better)", "cp")
    for acks in ("1", "all"):
        key = f"lat_{acks}"
        rows.append((f"  rate: half of each one's acks={acks} peak, records/s",
                     str(r[key].figures["rate"]), str(k[key].figures["rate"]),
                     ratio(r[key].figures["rate"], k[key].figures["rate"])))
        row(f"produce p50 ms, acks={acks}, at half peak (lower is better)", key, "p50", "{}")
        row(f"produce p99 ms, acks={acks}, at half peak (lower is better)", key, "p99", "{}")

    widths = [max(len(x[i]) for x in rows + [("figure", "Runnel", "Kafka", "Runnel/Kafka")])
              for i in range(4)]
    print()
    print(f"== Runnel vs Apache Kafka: {args.records} records of {args.record_size} B, "
          f"{args.partitions} partitions, one broker at a time ==")
    print("MB = 2^20 bytes (as Kafka's tools print); GB = 10^9 bytes of record values; "
          "CPU = broker utime+stime over the step.")
    print("Ratio > 1: Runnel higher. For throughput higher is better; "
          "for CPU and latency lower is better.")
    header = ("figure", "Runnel", "Kafka", "Runnel/Kafka")
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in
                    enumerate(zip(header, widths))))
    for cells in rows:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                        enumerate(zip(cells, widths))))

    print()
    print("== What each tool printed ==")
    names = {"kcat_produce": "librdkafka produce", "kcat_fetch": "librdkafka fetch",
             "pp_1": "ProducerPerformance acks=1", "pp_all": "ProducerPerformance acks=all",
             "cp": "ConsumerPerformance", "lat_1": "latency acks=1 at half peak",
             "lat_all": "latency acks=all at half peak"}
    for broker, steps in (("Runnel", r), ("Kafka", k)):
        for key, title in names.items():
            step = steps[key]
            print(f"[{broker}] {title}: broker CPU {step.cpu:.2f} s over {step.wall:.2f} s "
                  f"for {step.value_bytes / 1e9:.3f} GB")
            for line in step.quoted:
                print(f"    {line}")

    print()
    print("== Settings ==")
    print(f"machine: {platform.node()}, nproc {len(os.sched_getaffinity(0))}, "
          f"{memory_total()} RAM, {platform.platform()}")
    print(f"Runnel: {version_of([runnel_bin, '--version'])} ({runnel_bin}, git "
          f"{version_of(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'])}); "
          f"settings: defaults plus {' '.join(RUNNEL_SETTINGS)} and metrics.listen on "
          f"port {args.port + 1} (log.dirs and listeners from scripts/runnel.sh)")
    print(f"Kafka: {version_of([KAFKA_SH, 'version'])}, one-node KRaft (broker and controller "
          f"in one process) from scripts/kafka.sh, server.properties as it writes them")
    print(f"Kafka JVM: {version_of(['java', '-version'])}; KAFKA_HEAP_OPTS=\"{KAFKA_HEAP_OPTS}\" "
          f"KAFKA_JVM_OPTS=\"{KAFKA_JVM_OPTS}\" (Kafka docs, operations, \"Java Version\")")
    print(f"perf tools' JVM (both brokers): KAFKA_HEAP_OPTS=\"{TOOLS_HEAP_OPTS}\"; "
          f"Java producer defaults (batch.size 16384, linger.ms 5, no compression)")
    kcat_version = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    kcat_version = next((line for line in kcat_version.splitlines() if line.startswith("Version")),
                        "<kcat -V printed no Version line>")
    print(f"kcat: {kcat_version}; librdkafka defaults except acks=all (produce) "
          f"and fetch.wait.max.ms=10 (fetch)")
    print(f"durability (topic {TOPIC_KCAT}, DescribeConfigs): Runnel {r['durability']}, "
          f"Kafka {k['durability']}: no fsync per write on either, replication factor 1")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="100,000 records and 2 s latency runs: checks it works in under a minute")
    p.add_argument("--records", type=int, help="records per produce step (default 2,000,000)")
    p.add_argument("--record-size", type=int, default=1024, help="bytes per record (1024)")
    p.add_argument("--partitions", type=int, default=4, help="partitions of every topic (4)")
    p.add_argument("--latency-seconds", type=int,
                   help="length of each half-peak latency run (default 20)")
    p.add_argument("--port", type=int, default=23190, help="broker port, for both (23190)")
    p.add_argument("--dir", help="parent of the temporary data directories (TMPDIR)")
    p.add_argument("--runnel-bin", default=os.path.join(ROOT, "target", "release", "runnel"),
                   help="Runnel binary (target/release/runnel)")
    args = p.parse_args(argv)
    args.records = args.records or (100_000 if args.quick else 2_000_000)
    args.latency_seconds = args.latency_seconds or (2 if args.quick else 20)
    for name in ("records", "record_size", "partitions", "latency_seconds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    return args


def main(argv):
    args = parse_args(argv)
    if not os.access(args.runnel_bin, os.X_OK):
        fail(f"{args.runnel_bin} is not an executable: build it with "
             f"cargo build --release -p runnel-broker --bin runnel")
    if shutil.which("kcat") is None:
        fail("kcat is not installed (Debian package kafkacat)")
    subprocess.run([KAFKA_SH, "install"], check=True)
    work = tempfile.mkdtemp(prefix="runnel-side-by-side-", dir=args.dir)
    runnel_env = dict(os.environ, RUNNEL_BIN=args.runnel_bin)
    kafka_env = dict(os.environ, KAFKA_HEAP_OPTS=KAFKA_HEAP_OPTS, KAFKA_JVM_OPTS=KAFKA_JVM_OPTS)
    brokers = [
        Broker("runnel", RUNNEL_SH, os.path.join(work, "runnel"), args.port, runnel_env,
               RUNNEL_SETTINGS + [f"metrics.listen=127.0.0.1:{args.port + 1}"]),
        Broker("kafka", KAFKA_SH, os.path.join(work, "kafka"), args.port, kafka_env, []),
    ]

    def on_signal(signum, _frame):
        raise SystemExit(f"side_by_side: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    started = time.monotonic()
    try:
        records_file = os.path.join(work, "records")
        prepare_records(records_file, args.records, args.record_size)
        results = {b.name: bench(b, args, records_file) for b in brokers}
        report(args, results, args.runnel_bin)
        print(f"\nside_by_side: finished in {math.ceil(time.monotonic() - started)} s")
    finally:
        for b in brokers:
            b.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except BenchError as e:
        print(f"side_by_side: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
