"""Three combined broker/controller nodes (process.roles=broker,controller)
for the fault harness, each in its network namespace rf-N at 10.77.0.N, or
on 127.0.0.1 with distinct ports when namespaces cannot be made; and the
questions the harness asks them (who leads a partition, who is the active
controller, is every partition led).

Each node's server.properties is written as scripts/runnel-cluster.sh
writes it, plus the replication settings the harness runs with. A node's
process gets a pid file under WORK/pids, so run.sh can end it if the
harness itself dies.
"""

import logging
import os
import re
import shutil
import signal
import subprocess
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

HERE = os.path.dirname(os.path.abspath(__file__))
NET_SH = os.path.join(HERE, "net.sh")
SUBNET = "10.77.0"
NODE_IDS = (1, 2, 3)
LISTENING = re.compile(r"^runnel: listening on", re.M)
LEADER_ID = re.compile(r"^LeaderId:\s+(-?\d+)", re.M)


class NodeError(Exception):
    pass


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_pid(work, name, pid):
    path = os.path.join(work, "pids", f"{name}.pid")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{pid}\n")


class Node:
    def __init__(self, node_id, work, binary, netns):
        self.id = node_id
        self.work = work
        self.binary = binary
        self.netns = netns
        self.dir = os.path.join(work, f"node-{node_id}")
        self.config = os.path.join(self.dir, "server.properties")
        self.data = os.path.join(self.dir, "data")
        # The metadata log (the voter's Raft state) apart from the partition
        # logs: a wipe removes the partition logs only (see wipe).
        self.metadata = os.path.join(self.dir, "metadata")
        if netns:
            self.host = f"{SUBNET}.{node_id}"
            self.port, self.controller_port, self.metrics_port = 9092, 9093, 9644
        else:
            self.host = "127.0.0.1"
            self.port, self.controller_port, self.metrics_port = free_port(), free_port(), free_port()
        self.proc = None
        self.log_path = None
        self.starts = 0
        self.paused = False

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    @property
    def namespace(self):
        return f"rf-{self.id}" if self.netns else None

    def write_config(self, voters, settings):
        os.makedirs(self.dir, exist_ok=True)
        lines = [
            "process.roles=broker,controller",
            f"node.id={self.id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{self.address},CONTROLLER://{self.host}:{self.controller_port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={self.data}",
            f"metadata.log.dir={self.metadata}",
            f"metrics.listen={self.host}:{self.metrics_port}",
        ]
        lines += [f"{key}={value}" for key, value in settings.items()]
        with open(self.config, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    def format(self, cluster_id, ignore_formatted=False):
        extra = ["--ignore-formatted"] if ignore_formatted else []
        out = subprocess.run(
            [self.binary, "storage", "format", "-t", cluster_id, "-c", self.config] + extra,
            capture_output=True, text=True, timeout=60, check=False)
        with open(os.path.join(self.dir, "format.log"), "a", encoding="utf-8") as f:
            f.write(out.stdout + out.stderr)
        if out.returncode != 0:
            raise NodeError(f"formatting node {self.id} failed: {out.stdout}{out.stderr}")

    def start(self):
        if self.alive():
            raise NodeError(f"node {self.id} already runs (pid {self.proc.pid})")
        self.starts += 1
        self.log_path = os.path.join(self.dir, f"runnel-{self.starts}.log")
        command = [self.binary, "serve", "--config", self.config]
        if self.netns:
            # ip netns exec execs the command in place: the pid is runnel's.
            command = ["ip", "netns", "exec", self.namespace] + command
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.paused = False
        write_pid(self.work, f"node-{self.id}", self.proc.pid)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def wait_ready(self, seconds):
        """Waits for the 'runnel: listening on' line of this start's log,
        as scripts/process.sh's wait_for_line does."""
        deadline = time.monotonic() + seconds
        while True:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                if LISTENING.search(f.read()):
                    return
            if not self.alive():
                raise NodeError(f"node {self.id} exited while starting (log {self.log_path}):\n"
                                f"{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise NodeError(f"node {self.id} not ready after {seconds} s "
                                f"(log {self.log_path}):\n{self.log_tail()}")
            time.sleep(0.1)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """kill -9; returns once the process is gone."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        self.paused = False

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self, seconds=30):
        """SIGTERM, then SIGKILL after seconds."""
        if not self.alive():
            return
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.kill()

    def wipe(self, cluster_id):
        """Removes the partition log dir and formats it again with the same
        cluster id (the node must be stopped). The metadata log stays: a
        voter of a static quorum that loses its Raft state can vote a
        leader without the committed metadata into office (Kafka's too,
        until KIP-853's directory ids), which a run of this harness showed
        once when two wiped nodes lost theirs within a minute."""
        shutil.rmtree(self.data, ignore_errors=True)
        self.format(cluster_id, ignore_formatted=True)


def admin_logger(work):
    """librdkafka's log lines of the harness's admin client, to a file
    (faults make it log a failed connection each time)."""
    logger = logging.getLogger("faults.admin")
    if not logger.handlers:
        handler = logging.FileHandler(os.path.join(work, "admin.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


class Cluster:
    def __init__(self, work, binary, netns, settings):
        self.work = work
        self.binary = binary
        self.netns = netns
        self.settings = settings
        self.nodes = {i: Node(i, work, binary, netns) for i in NODE_IDS}
        self.cluster_id = None
        self._admin = None

    @property
    def bootstrap(self):
        return ",".join(node.address for node in self.nodes.values())

    def start(self, seconds=90):
        voters = ",".join(f"{n.id}@{n.host}:{n.controller_port}" for n in self.nodes.values())
        self.cluster_id = subprocess.run([self.binary, "storage", "random-uuid"], check=True,
                                         capture_output=True, text=True).stdout.strip()
        for node in self.nodes.values():
            node.write_config(voters, self.settings)
            node.format(self.cluster_id)
        # All start before any is waited on: each is ready only once a
        # majority elected a controller and it registered.
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            node.wait_ready(seconds)

    def stop(self, seconds=30):
        for node in self.nodes.values():
            if node.alive():
                node.resume()
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            node.stop(seconds)

    def kill_all(self):
        for node in self.nodes.values():
            node.kill()

    def admin(self):
        if self._admin is None:
            self._admin = AdminClient({
                "bootstrap.servers": self.bootstrap,
                "socket.connection.setup.timeout.ms": 3000,
                # Faults close connections all the time: no log line each.
                "log.connection.close": False,
                "logger": admin_logger(self.work),
            })
        return self._admin

    def metadata(self, topic=None, timeout=5):
        try:
            return self.admin().list_topics(topic, timeout=timeout)
        except KafkaException:
            return None

    def leader(self, topic, partition):
        md = self.metadata(topic)
        if md is None or topic not in md.topics:
            return None
        p = md.topics[topic].partitions.get(partition)
        if p is None or p.leader < 0:
            return None
        return p.leader

    def controller(self, exclude=()):
        """The active controller's id, as `runnel metadata-quorum describe
        --status` on a live node says, or None."""
        for node in self.nodes.values():
            if not node.alive() or node.paused or node.id in exclude:
                continue
            try:
                out = subprocess.run(
                    [self.binary, "metadata-quorum", "--bootstrap-server", node.address,
                     "describe", "--status"],
                    capture_output=True, text=True, timeout=5, check=False)
            except subprocess.TimeoutExpired:
                continue
            match = LEADER_ID.search(out.stdout)
            if out.returncode == 0 and match and int(match.group(1)) >= 0:
                return int(match.group(1))
        return None

    def health(self, topic):
        """(healthy, why not, partitions whose ISR is short): healthy is
        every node running, every broker in the metadata and every
        partition of every topic led by one of them."""
        down = [n.id for n in self.nodes.values() if not n.alive() or n.paused]
        if down:
            return False, f"nodes {down} not running", []
        md = self.metadata()
        if md is None:
            return False, "no metadata answer", []
        brokers = set(md.brokers)
        if brokers != set(self.nodes):
            return False, f"metadata lists brokers {sorted(brokers)}", []
        if topic not in md.topics:
            return False, f"no topic {topic}", []
        leaderless, short = [], []
        for t in md.topics.values():
            for p in t.partitions.values():
                if p.leader not in brokers:
                    leaderless.append(f"{t.topic}-{p.id}")
                elif set(p.isrs) != set(p.replicas):
                    short.append(f"{t.topic}-{p.id} isr {sorted(p.isrs)} of {sorted(p.replicas)}")
        if leaderless:
            return False, f"no leader for {', '.join(sorted(leaderless)[:6])}", short
        return True, "", short

    def net(self, command, node_id):
        """net.sh COMMAND N; returns what it printed."""
        out = subprocess.run(["bash", NET_SH, command, str(node_id)], capture_output=True,
                             text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise NodeError(f"net.sh {command} {node_id} failed: {out.stderr.strip()}")
        return out.stdout.strip()
