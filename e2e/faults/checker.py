"""Checks the fault harness's journals for the anomalies a replicated log
must not show, in the spirit of Jepsen's Kafka workload.

    python3 checker.py DIR     checks DIR/*.jsonl, prints the summary,
                               exits 1 if any anomaly was found

A journal is a file of JSON lines, each with "t" (Unix seconds) and
"type". A client process opens each of its runs with a "start" record
naming its "role"; a file may hold several runs (the harness restarts a
client that died). Records by role:

    producer, probe   start {name, session}; send {value}; ack {value,
                      partition, offset}; fail {value, error}
    txn-producer      start; begin {txn}; send {value, txn}; ack {value,
                      partition, offset}; committing {txn} (just before
                      commit is asked for); txn {txn, outcome: committed
                      | aborted | unknown}
    consumer          start {isolation}; read {partition, offset, value};
                      reset {partition} (the client's position was out of
                      range and it started the partition over); seek
                      {partition}
    final             as consumer, read once from the start after the
                      faults healed, then end {partition, high_watermark,
                      position, complete}; one file per isolation level
    harness           start {settings}; fault {round, kind, node, ...};
                      restarted {round, node}; and the like

A transaction whose commit was never asked for is aborted, whatever its
journal says next; one asked to commit without a "txn" record is unknown.

The anomalies counted:

    lost              an acknowledged value (an ack of a producer outside
                      transactions, or any value of a committed
                      transaction) missing from the final read_uncommitted
                      read; or a committed transaction's value missing
                      from the final read_committed read
    divergent offsets one (partition, offset) holding two different values
                      across every ack, every consumer read and both final
                      reads
    duplicates        a value at more than one offset of the final log
                      (every producer here is idempotent and sends each
                      value once)
    backwards         a consumer reading an offset not after the one it
                      read before in that partition, within one run and
                      with no reset or seek in between
    truncated reads   a value a consumer read that the final log does not
                      hold at that offset
    aborted seen      a value of an aborted transaction read at
                      read_committed
"""

import json
import os
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field

COUNTS = (
    ("lost", "lost"),
    ("divergent", "divergent offsets"),
    ("duplicates", "duplicates"),
    ("backwards", "backwards"),
    ("truncated", "truncated reads"),
    ("aborted_seen", "aborted seen"),
)
PRODUCER_ROLES = ("producer", "probe", "txn-producer")
# An ack this soon after a kill -9 may still be the killed leader's
# answer, polled late (the probe polls every ~10 ms).
KILL_SLACK_S = 0.05


@dataclass
class Journal:
    name: str
    records: list
    bad_lines: int = 0


@dataclass
class Report:
    acknowledged: int = 0
    lost: list = field(default_factory=list)
    divergent: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    backwards: list = field(default_factory=list)
    truncated: list = field(default_factory=list)
    aborted_seen: list = field(default_factory=list)
    final_incomplete: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    rounds: int = 0
    failover: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def count(self, name):
        return len(getattr(self, name))

    def ok(self):
        return not any(self.count(name) for name, _ in COUNTS) and not self.final_incomplete


def parse_lines(name, lines):
    records, bad = [], 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            # A line cut short by a kill -9 of its writer.
            bad += 1
    return Journal(name, records, bad)


def load(directory):
    journals = []
    for entry in sorted(os.listdir(directory)):
        if entry.endswith(".jsonl"):
            with open(os.path.join(directory, entry), encoding="utf-8") as f:
                journals.append(parse_lines(entry[: -len(".jsonl")], f))
    return journals


def runs(journal):
    """Yields (role, start record, records) for each run in a journal."""
    start, records = None, []
    for rec in journal.records:
        if rec.get("type") == "start":
            if start is not None:
                yield start.get("role"), start, records
            start, records = rec, []
        elif start is not None:
            records.append(rec)
    if start is not None:
        yield start.get("role"), start, records


class _Logs:
    """Everything the journals say, gathered by kind."""

    def __init__(self, journals):
        self.acks = {}  # value -> (partition, offset, journal)
        self.acked_outside_txn = set()
        self.txn_of = {}  # value -> (journal, txn)
        self.txn_values = defaultdict(list)
        self.outcome = {}
        self.committing = set()
        self.offsets = defaultdict(set)  # (partition, offset) -> values
        self.consumer_runs = []  # (journal, role, isolation, records)
        self.final = {}  # isolation -> {partition: {offset: value}}
        self.final_end = {}  # isolation -> {partition: end record}
        self.harness = []
        self.harness_start = {}
        self.probe_ack_times = []
        self.stats = Counter()
        for journal in journals:
            self.stats["bad journal lines"] += journal.bad_lines
            for role, start, records in runs(journal):
                self._run(journal.name, role, start, records)

    def _run(self, name, role, start, records):
        if role in PRODUCER_ROLES:
            self.stats[f"{role} runs"] += 1
            for rec in records:
                self._producer(name, rec)
                if role == "probe" and rec["type"] == "ack":
                    self.probe_ack_times.append(rec["t"])
        elif role == "consumer":
            self.stats["consumer runs"] += 1
            self.consumer_runs.append((name, role, start.get("isolation"), records))
            self._reads(records)
        elif role == "final":
            iso = start.get("isolation")
            log = self.final.setdefault(iso, defaultdict(dict))
            ends = self.final_end.setdefault(iso, {})
            self.consumer_runs.append((name, role, iso, records))
            self._reads(records)
            for rec in records:
                if rec["type"] == "read":
                    log[rec["partition"]][rec["offset"]] = rec["value"]
                elif rec["type"] == "end":
                    ends[rec["partition"]] = rec
        elif role == "harness":
            self.harness_start = start
            self.harness.extend(records)

    def _producer(self, name, rec):
        kind = rec["type"]
        if kind == "send":
            self.stats["sends"] += 1
            if "txn" in rec:
                key = (name, rec["txn"])
                self.txn_of[rec["value"]] = key
                self.txn_values[key].append(rec["value"])
        elif kind == "ack":
            self.stats["acks"] += 1
            self.acks[rec["value"]] = (rec["partition"], rec["offset"], name)
            # A client may acknowledge without an offset (-1, or none).
            if rec["offset"] is not None and rec["offset"] >= 0:
                self.offsets[(rec["partition"], rec["offset"])].add(rec["value"])
        elif kind == "fail":
            self.stats["failed sends"] += 1
        elif kind == "committing":
            self.committing.add((name, rec["txn"]))
        elif kind == "txn":
            self.outcome[(name, rec["txn"])] = rec["outcome"]

    def _reads(self, records):
        for rec in records:
            if rec["type"] == "read":
                self.offsets[(rec["partition"], rec["offset"])].add(rec["value"])
            elif rec["type"] == "reset":
                self.stats["consumer resets"] += 1

    def txn_outcome(self, key):
        if key in self.outcome:
            outcome = self.outcome[key]
            # A commit never asked for cannot have happened.
            if outcome != "committed" and key not in self.committing:
                return "aborted"
            return outcome
        return "unknown" if key in self.committing else "aborted"


def check(journals):
    logs = _Logs(journals)
    report = Report(stats=logs.stats)
    outcomes = {key: logs.txn_outcome(key) for key in logs.txn_values}
    for outcome in outcomes.values():
        report.stats[f"transactions {outcome}"] += 1

    expected = {v for v in logs.acks if v not in logs.txn_of}
    committed = {v for key, vs in logs.txn_values.items() if outcomes[key] == "committed" for v in vs}
    aborted = {v for key, vs in logs.txn_values.items() if outcomes[key] == "aborted" for v in vs}
    report.acknowledged = len(expected | committed)

    final_u = logs.final.get("read_uncommitted")
    final_c = logs.final.get("read_committed")
    for iso, ends in sorted(logs.final_end.items()):
        for partition, end in sorted(ends.items()):
            if not end.get("complete"):
                report.final_incomplete.append(
                    f"{iso} partition {partition}: stopped at {end.get('position')}, "
                    f"high watermark {end.get('high_watermark')}")
    if final_u is None:
        report.notes.append("no final read_uncommitted read: lost writes and truncated reads "
                            "were not checked")
    else:
        _lost(report, logs, expected | committed, final_u, final_c, committed)
        _duplicates(report, final_u)
        _truncated(report, logs, final_u)
    report.divergent = [
        f"partition {p} offset {o}: {sorted(vs, key=str)}"
        for (p, o), vs in sorted(logs.offsets.items()) if len(vs) > 1
    ]
    _backwards(report, logs)
    for name, _role, iso, records in logs.consumer_runs:
        if iso != "read_committed":
            continue
        for rec in records:
            if rec["type"] == "read" and rec["value"] in aborted:
                report.aborted_seen.append(
                    f"{name} read {rec['value']} (aborted) at partition {rec['partition']} "
                    f"offset {rec['offset']}")
    _harness(report, logs)
    return report


def _lost(report, logs, expected, final_u, final_c, committed):
    in_log = {v for log in final_u.values() for v in log.values()}
    for value in sorted(expected - in_log):
        where = logs.acks.get(value)
        at = f" (acknowledged at partition {where[0]} offset {where[1]})" if where else ""
        report.lost.append(f"{value}{at}")
    if final_c is not None:
        seen = {v for log in final_c.values() for v in log.values()}
        for value in sorted((committed & in_log) - seen):
            report.lost.append(f"{value} (committed, not in the final read_committed read)")


def _duplicates(report, final_u):
    where = defaultdict(list)
    for partition, log in sorted(final_u.items()):
        for offset, value in sorted(log.items()):
            where[value].append((partition, offset))
    for value, places in sorted(where.items(), key=lambda kv: str(kv[0])):
        if len(places) > 1:
            report.duplicates.append(f"{value} at {places}")


def _final_covers(logs, partition, offset):
    """Whether the final read_uncommitted read reached offset."""
    end = logs.final_end.get("read_uncommitted", {}).get(partition)
    if end is None:
        return True
    return bool(end.get("complete")) or offset < end.get("position", -1)


def _truncated(report, logs, final_u):
    for name, role, _iso, records in logs.consumer_runs:
        if role != "consumer":
            continue
        for rec in records:
            if rec["type"] != "read":
                continue
            p, o, v = rec["partition"], rec["offset"], rec["value"]
            now = final_u.get(p, {}).get(o)
            if now == v or not _final_covers(logs, p, o):
                continue
            held = "nothing" if now is None else repr(now)
            report.truncated.append(f"{name} read {v} at partition {p} offset {o}; "
                                    f"the final log holds {held} there")


def _backwards(report, logs):
    for name, _role, _iso, records in logs.consumer_runs:
        last = {}
        for rec in records:
            kind = rec["type"]
            if kind in ("reset", "seek"):
                last.pop(rec["partition"], None)
            elif kind == "read":
                p, o = rec["partition"], rec["offset"]
                if p in last and o <= last[p]:
                    report.backwards.append(f"{name} read partition {p} offset {o} "
                                            f"after offset {last[p]}")
                last[p] = o


def _harness(report, logs):
    report.settings = logs.harness_start.get("settings", {})
    for rec in logs.harness:
        if rec["type"] == "fault":
            report.rounds += 1
            report.faults[rec["kind"]] += 1
        elif rec["type"] == "skipped":
            # A round whose fault found no target (no leader known).
            report.rounds += 1
            report.faults["skipped"] += 1
    report.failover = failover_times(logs.harness, sorted(logs.probe_ack_times))
    if report.stats.get("bad journal lines"):
        report.notes.append(f"{report.stats['bad journal lines']} journal lines cut short "
                            "(a writer killed mid-line) were skipped")


def failover_times(harness_records, probe_ack_times):
    """For each kill -9 of the probe partition's leader: seconds from the
    kill to the probe's first ack before the killed node was restarted
    (so from another leader), or None if there was none."""
    times = []
    restarts = [r for r in harness_records if r["type"] == "restarted"]
    for fault in harness_records:
        if fault["type"] != "fault" or fault["kind"] != "kill-leader":
            continue
        killed_at = fault["t"]
        back = [r["t"] for r in restarts if r.get("node") == fault.get("node") and r["t"] > killed_at]
        until = min(back) if back else float("inf")
        first = next((t for t in probe_ack_times if killed_at + KILL_SLACK_S < t < until), None)
        times.append((fault.get("round"), None if first is None else first - killed_at))
    return times


def fault_list(report):
    return ", ".join(f"{kind} {n}" for kind, n in sorted(report.faults.items()))


def summary(report):
    counts = ", ".join(f"{label} {report.count(name)}" for name, label in COUNTS)
    line = (f"faults: {report.rounds} rounds ({fault_list(report) or 'none'}): "
            f"{report.acknowledged} acknowledged, {counts}")
    if report.final_incomplete:
        line += f", final reads incomplete {len(report.final_incomplete)}"
    return line


def failover_summary(report):
    if not report.failover:
        return None
    done = [s for _, s in report.failover if s is not None]
    missing = len(report.failover) - len(done)
    settings = report.settings
    timeouts = ", ".join(f"{k}={v}" for k, v in sorted(settings.get("broker", {}).items()))
    client = ", ".join(f"{k}={v}" for k, v in sorted(settings.get("probe", {}).items()))
    if done:
        text = (f"failover (kill -9 of partition {settings.get('probe_partition', '?')}'s leader "
                f"to the first acks=all ack from another leader): median "
                f"{statistics.median(done):.2f} s, max {max(done):.2f} s over {len(done)} rounds")
    else:
        text = "failover: no ack from another leader"
    if missing:
        text += (f"; {missing} of {len(report.failover)} kills saw no ack before the "
                 "killed node came back")
    return f"{text}\n  broker: {timeouts}\n  probe client: {client}"


def details(report, limit=5):
    lines = []
    for name, label in COUNTS:
        items = getattr(report, name)
        if items:
            lines.append(f"{label} ({len(items)}):")
            lines.extend(f"  {item}" for item in items[:limit])
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more")
    if report.final_incomplete:
        lines.append(f"final reads incomplete ({len(report.final_incomplete)}):")
        lines.extend(f"  {item}" for item in report.final_incomplete)
    lines.extend(f"note: {note}" for note in report.notes)
    if report.stats:
        lines.append("stats: " + ", ".join(f"{k} {v}" for k, v in sorted(report.stats.items())))
    return lines


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: checker.py JOURNAL_DIR", file=sys.stderr)
        return 2
    report = check(load(argv[0]))
    for line in details(report):
        print(line)
    fail = failover_summary(report)
    if fail:
        print(fail)
    print(summary(report))
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
