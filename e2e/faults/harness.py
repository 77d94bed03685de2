"""The fault harness: three Runnel nodes, a workload of idempotent,
transactional and probe producers and read_committed consumers (each its
own process, clients.py), faults in rounds, then a final read of every
partition and checker.py's verdict. run.sh sets up the network and calls
this; see README.md.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import time
import traceback

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

import checker
import clients
from cluster import Cluster, NodeError

HERE = os.path.dirname(os.path.abspath(__file__))
TOPIC = "faults"
FAULTS = ("kill-leader", "kill-controller", "pause-leader", "partition-leader",
          "partition-controller", "netem", "wipe")
NETWORK_FAULTS = ("partition-leader", "partition-controller", "netem")
PRODUCERS = 3
CONSUMERS = 2


def say(text):
    print(f"faults: {text}", flush=True)


class Clients:
    """The workload's processes: started, restarted when one dies (its
    journal gets a new run), stopped."""

    def __init__(self, work, bootstrap, args, events):
        self.work = work
        self.events = events
        self.procs = {}
        self.sessions = {}
        self.specs = {}
        self.stopping = set()
        base = ["--bootstrap", bootstrap, "--topic", TOPIC, "--partitions", str(args.partitions),
                "--seed", str(args.seed)]
        for i in range(1, PRODUCERS + 1):
            self.specs[f"p{i}"] = ["producer", "--rate", str(args.rate)] + base
        self.specs["txn"] = ["txn", "--rate", str(max(1.0, args.rate / 10))] + base
        self.specs["probe"] = ["probe", "--rate", "100", "--partition", str(args.probe_partition)] + base
        for i in range(1, CONSUMERS + 1):
            self.specs[f"c{i}"] = ["consumer", "--isolation", "read_committed"] + base
        os.makedirs(os.path.join(work, "journal"), exist_ok=True)
        os.makedirs(os.path.join(work, "clients"), exist_ok=True)
        os.makedirs(os.path.join(work, "pids"), exist_ok=True)

    def journal(self, name):
        return os.path.join(self.work, "journal", f"{name}.jsonl")

    def spawn(self, name, argv):
        session = self.sessions.get(name, -1) + 1
        self.sessions[name] = session
        command = [sys.executable, os.path.join(HERE, "clients.py")] + argv + [
            "--journal", self.journal(name), "--name", name, "--session", str(session)]
        with open(os.path.join(self.work, "clients", f"{name}.log"), "a", encoding="utf-8") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        with open(os.path.join(self.work, "pids", f"client-{name}.pid"), "w", encoding="utf-8") as f:
            f.write(f"{proc.pid}\n")
        return proc

    def start(self):
        for name, argv in self.specs.items():
            self.spawn(name, argv)

    def supervise(self):
        for name, proc in list(self.procs.items()):
            if name in self.stopping or proc.poll() is None:
                continue
            self.events.write("client-died", client=name, status=proc.returncode)
            say(f"client {name} exited with {proc.returncode}; restarting it "
                f"(log {os.path.join(self.work, 'clients', name + '.log')})")
            self.spawn(name, self.specs[name])

    def stop(self, names, seconds):
        self.stopping.update(names)
        for name in names:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        deadline = time.monotonic() + seconds
        for name in names:
            try:
                self.procs[name].wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"client {name} did not stop in {seconds} s; killing it")
                self.procs[name].kill()
                self.procs[name].wait()

    def kill_all(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class Harness:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.session_timeout_ms = args.session_timeout_ms
        self.broker_settings = {
            "default.replication.factor": 3,
            "min.insync.replicas": 2,
            "offsets.topic.replication.factor": 3,
            "transaction.state.log.replication.factor": 3,
            "replica.lag.time.max.ms": args.replica_lag_time_max_ms,
            "broker.session.timeout.ms": self.session_timeout_ms,
        }
        for setting in args.broker_setting:
            key, _, value = setting.partition("=")
            self.broker_settings[key] = value
        self.cluster = Cluster(args.work, args.bin, args.net == "netns", self.broker_settings)
        os.makedirs(os.path.join(args.work, "journal"), exist_ok=True)
        self.events = clients.Journal(os.path.join(args.work, "journal", "harness.jsonl"))
        self.clients = None
        self.faults = self.fault_kinds()
        self.bag = []
        self.unhealthy = []
        self.skipped = []

    def fault_kinds(self):
        kinds = self.args.faults.split(",") if self.args.faults else list(FAULTS)
        unknown = [k for k in kinds if k not in FAULTS]
        if unknown:
            raise SystemExit(f"faults: unknown fault kinds {unknown}; known: {', '.join(FAULTS)}")
        if self.args.net != "netns":
            dropped = [k for k in kinds if k in NETWORK_FAULTS]
            if dropped:
                say(f"NETWORK FAULTS SKIPPED (no network namespaces): {', '.join(dropped)}")
            kinds = [k for k in kinds if k not in NETWORK_FAULTS]
        if not kinds:
            raise SystemExit("faults: no fault kind left to run")
        return kinds

    def next_fault(self):
        """Every kind once per cycle, in a seeded order."""
        if not self.bag:
            self.bag = list(self.faults)
            self.rng.shuffle(self.bag)
        return self.bag.pop()

    # ---------------------------------------------------------------- time

    def workload(self, seconds):
        """Lets the workload run (and restarts clients that died)."""
        end = time.monotonic() + seconds
        while True:
            if self.clients:
                self.clients.supervise()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.1, left))

    def wait_for(self, condition, seconds, poll=0.1):
        """Polls condition() until it returns a true value or the deadline
        passes; returns that value (or None) and the seconds waited."""
        start = time.monotonic()
        while True:
            value = condition()
            waited = time.monotonic() - start
            if value or waited >= seconds:
                return value, waited
            self.workload(poll)

    def wait_healthy(self, seconds, round_no=None):
        state = {}

        def healthy():
            ok, why, short = self.cluster.health(TOPIC)
            state.update(why=why, short=short)
            return ok

        ok, waited = self.wait_for(healthy, seconds, poll=0.2)
        if not ok:
            self.unhealthy.append(round_no)
            self.events.write("unhealthy", round=round_no, why=state["why"])
            say(f"  NOT HEALTHY after {seconds} s: {state['why']}")
            return False
        if state["short"]:
            # Followers catching up is replication's business; give them a
            # moment, but a short ISR does not block the next round.
            def full():
                ok, _, short = self.cluster.health(TOPIC)
                state["short"] = short
                return ok and not short

            full_ok, more = self.wait_for(full, 20, poll=0.5)
            waited += more
            if not full_ok:
                say(f"  ISR still short after 20 s: {'; '.join(state['short'][:4])}")
        self.events.write("healthy", round=round_no, seconds=round(waited, 3))
        say(f"  healthy after {waited:.1f} s")
        return True

    # -------------------------------------------------------------- set-up

    def create_topic(self):
        admin = self.cluster.admin()
        rf = self.args.replication_factor
        future = admin.create_topics([NewTopic(TOPIC, self.args.partitions, rf)])[TOPIC]
        try:
            future.result(30)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() != KafkaError.INVALID_REPLICATION_FACTOR or self.args.require_rf:
                raise
            say(f"THE BROKER REFUSED REPLICATION FACTOR {rf} ({err.str()}): creating {TOPIC} "
                "with the broker's default instead; without replication expect lost writes")
            admin.create_topics([NewTopic(TOPIC, self.args.partitions, -1)])[TOPIC].result(30)
        md, _ = self.wait_for(lambda: self.cluster.metadata(TOPIC), 30)
        replicas = {len(p.replicas) for p in md.topics[TOPIC].partitions.values()} if md else set()
        say(f"topic {TOPIC}: {self.args.partitions} partitions, replication factor "
            f"{', '.join(map(str, sorted(replicas))) or '?'}")
        return sorted(replicas)

    def settings(self, replication):
        return {
            "seed": self.args.seed,
            "net": self.args.net,
            "replication_factor": replication,
            "probe_partition": self.args.probe_partition,
            "broker": {k: v for k, v in self.broker_settings.items()
                       if k.endswith(".ms") or "replication" in k or "insync" in k},
            "probe": clients.PROBE_SETTINGS,
            "producer": clients.PRODUCER_SETTINGS,
        }

    # -------------------------------------------------------------- faults

    def leader(self, partition):
        """The partition's leader; a metadata answer may lag a moment
        after the previous round healed."""
        leader, _ = self.wait_for(lambda: self.cluster.leader(TOPIC, partition), 10, poll=0.2)
        return leader

    def controller(self):
        controller, _ = self.wait_for(self.cluster.controller, 10, poll=0.2)
        return controller

    def random_partition_leader(self):
        partition = self.rng.randrange(self.args.partitions)
        return partition, self.leader(partition)

    def restart(self, node, round_no):
        node.start()
        self.events.write("restarted", round=round_no, node=node.id)
        node.wait_ready(90)

    def fault_kill_leader(self, r):
        partition = self.args.probe_partition
        leader = self.leader(partition)
        if leader is None:
            return None
        node = self.cluster.nodes[leader]
        node.kill()
        self.events.write("fault", round=r, kind="kill-leader", node=leader, partition=partition)
        moved, waited = self.wait_for(
            lambda: self.cluster.leader(TOPIC, partition) not in (None, leader),
            self.session_timeout_ms / 1000 + 4, poll=0.1)
        if moved:
            new = self.cluster.leader(TOPIC, partition)
            self.events.write("leader-moved", round=r, partition=partition, leader=new)
            text = f"new leader {new} in the metadata after {waited:.1f} s"
            self.workload(2)
        else:
            text = f"no other leader after {waited:.1f} s"
        self.restart(node, r)
        return f"killed node {leader} (leader of {TOPIC}-{partition}); {text}; restarted it"

    def fault_kill_controller(self, r):
        controller = self.controller()
        if controller is None:
            return None
        node = self.cluster.nodes[controller]
        node.kill()
        self.events.write("fault", round=r, kind="kill-controller", node=controller)
        new, waited = self.wait_for(
            lambda: self.cluster.controller(exclude=(controller,)) not in (None, controller), 15,
            poll=0.2)
        if new:
            new = self.cluster.controller(exclude=(controller,))
            self.events.write("controller-moved", round=r, controller=new, seconds=round(waited, 3))
            text = f"controller {new} after {waited:.1f} s"
        else:
            text = f"no other controller after {waited:.1f} s"
        self.workload(2)
        self.restart(node, r)
        return f"killed node {controller} (active controller); {text}; restarted it"

    def fault_pause_leader(self, r):
        partition, leader = self.random_partition_leader()
        if leader is None:
            return None
        node = self.cluster.nodes[leader]
        node.pause()
        self.events.write("fault", round=r, kind="pause-leader", node=leader, partition=partition)
        seconds = self.session_timeout_ms / 1000 + 2
        self.workload(seconds)
        node.resume()
        self.events.write("resumed", round=r, node=leader)
        return f"SIGSTOP node {leader} (leader of {TOPIC}-{partition}) for {seconds:.0f} s, SIGCONT"

    def isolate(self, r, kind, node_id, what):
        self.cluster.net("isolate", node_id)
        self.events.write("fault", round=r, kind=kind, node=node_id)
        seconds = self.session_timeout_ms / 1000 + 2
        self.workload(seconds)
        self.cluster.net("heal", node_id)
        self.events.write("healed", round=r, node=node_id)
        return f"cut node {node_id} ({what}) off the other brokers for {seconds:.0f} s, healed"

    def fault_partition_leader(self, r):
        partition, leader = self.random_partition_leader()
        if leader is None:
            return None
        return self.isolate(r, "partition-leader", leader, f"leader of {TOPIC}-{partition}")

    def fault_partition_controller(self, r):
        controller = self.controller()
        if controller is None:
            return None
        return self.isolate(r, "partition-controller", controller, "active controller")

    def fault_netem(self, r):
        node_id = self.rng.choice(list(self.cluster.nodes))
        how = self.cluster.net("lossy", node_id)
        self.events.write("fault", round=r, kind="netem", node=node_id, how=how)
        self.workload(5)
        self.cluster.net("heal", node_id)
        self.events.write("healed", round=r, node=node_id)
        return f"node {node_id}: {how}, for 5 s, healed"

    def fault_wipe(self, r):
        node_id = self.rng.choice(list(self.cluster.nodes))
        node = self.cluster.nodes[node_id]
        node.stop(30)
        self.events.write("fault", round=r, kind="wipe", node=node_id)
        node.wipe(self.cluster.cluster_id)
        self.workload(2)
        self.restart(node, r)
        return (f"stopped node {node_id}, removed its partition logs (not its metadata log), "
                "formatted it again, restarted it")

    def run_round(self, r):
        kind = self.next_fault()
        started = time.monotonic()
        what = getattr(self, "fault_" + kind.replace("-", "_"))(r)
        if what is None:
            self.skipped.append((r, kind))
            self.events.write("skipped", round=r, kind=kind)
            say(f"round {r}/{self.args.rounds} {kind}: SKIPPED, no target found (no leader or "
                "controller known)")
        else:
            say(f"round {r}/{self.args.rounds} {kind}: {what} "
                f"({time.monotonic() - started:.1f} s)")
        self.wait_healthy(self.args.heal_seconds, r)

    # --------------------------------------------------------------- whole

    def heal_everything(self):
        for node in self.cluster.nodes.values():
            if self.args.net == "netns":
                self.cluster.net("heal", node.id)
            if node.paused:
                node.resume()
            if not node.alive():
                say(f"node {node.id} is not running; starting it")
                self.restart(node, None)

    def final_reads(self):
        procs = []
        for iso in ("read_uncommitted", "read_committed"):
            name = f"final-{iso}"
            argv = ["final", "--isolation", iso, "--bootstrap", self.cluster.bootstrap,
                    "--topic", TOPIC, "--partitions", str(self.args.partitions),
                    "--deadline", "120"]
            self.clients.stopping.add(name)
            procs.append((name, self.clients.spawn(name, argv)))
        for name, proc in procs:
            try:
                proc.wait(180)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            say(f"{name}: exit {proc.returncode}")

    def run(self):
        started = time.monotonic()
        say(f"seed {self.args.seed}, {self.args.rounds} rounds of {', '.join(self.faults)}; "
            f"network: {self.args.net}; work dir {self.args.work}")
        self.cluster.start()
        say(f"3 nodes ready ({self.cluster.bootstrap}) after {time.monotonic() - started:.1f} s")
        replication = self.create_topic()
        self.events.write("start", role="harness", settings=self.settings(replication))
        self.wait_healthy(60)
        self.clients = Clients(self.args.work, self.cluster.bootstrap, self.args, self.events)
        self.clients.start()
        probe = self.clients.journal("probe")
        acked, waited = self.wait_for(lambda: os.path.exists(probe) and '"ack"' in open(
            probe, encoding="utf-8").read(), 60, poll=0.2)
        if acked:
            say(f"workload running (first probe ack after {waited:.1f} s)")
        else:
            say(f"workload running, but the probe has no ack after {waited:.0f} s")
        self.workload(self.args.quiet_seconds)
        for r in range(1, self.args.rounds + 1):
            self.run_round(r)
            self.workload(self.args.quiet_seconds)
        say("healing everything for the final read")
        self.heal_everything()
        self.wait_healthy(self.args.heal_seconds, "final")
        producers = [n for n in self.clients.specs if not n.startswith("c")]
        self.clients.stop(producers, 45)
        self.workload(1)
        self.clients.stop([n for n in self.clients.specs if n.startswith("c")], 15)
        self.final_reads()
        self.cluster.stop()
        report = checker.check(checker.load(os.path.join(self.args.work, "journal")))
        for line in checker.details(report):
            print(line)
        fail = checker.failover_summary(report)
        if fail:
            print(fail)
        if self.skipped:
            say(f"rounds skipped (no target): {len(self.skipped)}")
        if self.unhealthy:
            say(f"rounds after which the cluster was not healthy within "
                f"{self.args.heal_seconds} s: {self.unhealthy}")
        say(f"took {time.monotonic() - started:.0f} s; journals in "
            f"{os.path.join(self.args.work, 'journal')}")
        print(checker.summary(report), flush=True)
        return 0 if report.ok() else 1

    def close(self):
        if self.clients:
            self.clients.kill_all()
        self.cluster.kill_all()
        self.events.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--faults", default="",
                        help=f"comma-separated kinds (default all): {','.join(FAULTS)}")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--work", required=True)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--net", choices=["netns", "loopback"], default="netns")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--replication-factor", type=int, default=3)
    parser.add_argument("--require-rf", action="store_true",
                        help="fail instead of falling back when the broker refuses the factor")
    parser.add_argument("--rate", type=float, default=100.0, help="sends per second per producer")
    parser.add_argument("--probe-partition", type=int, default=0)
    parser.add_argument("--session-timeout-ms", type=int, default=6000,
                        help="broker.session.timeout.ms")
    parser.add_argument("--replica-lag-time-max-ms", type=int, default=5000)
    parser.add_argument("--broker-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="one more server.properties line (repeatable)")
    parser.add_argument("--quiet-seconds", type=float, default=1.0,
                        help="workload without faults between rounds")
    parser.add_argument("--heal-seconds", type=float, default=60.0,
                        help="deadline for the cluster to be healthy after a round")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = int(time.time() * 1000) % 1_000_000
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    harness = Harness(args)
    try:
        return harness.run()
    except NodeError as exc:
        say(f"FAILED: {exc}")
        return 2
    except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        say("FAILED: the harness itself failed (above)")
        return 2
    finally:
        harness.close()


if __name__ == "__main__":
    sys.exit(main())
