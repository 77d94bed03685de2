"""Unit tests of checker.py on small synthetic journals, one anomaly at a
time. Run from e2e/faults: python3 -m unittest test_checker"""

import contextlib
import io
import json
import os
import tempfile
import unittest

import checker


class Builder:
    """Writes journals as the clients would, with increasing timestamps."""

    def __init__(self):
        self.journals = {}
        self.t = 1000.0

    def add(self, journal, record_type, /, **fields):
        self.t += 0.01
        fields.setdefault("t", self.t)
        self.journals.setdefault(journal, []).append({"type": record_type, **fields})
        return self

    def producer(self, name, writes, role="producer"):
        """writes: [(value, partition, offset)], each sent and acked."""
        self.add(name, "start", role=role, name=name, session=0)
        for value, _, _ in writes:
            self.add(name, "send", value=value)
        for value, partition, offset in writes:
            self.add(name, "ack", value=value, partition=partition, offset=offset)
        return self

    def consumer(self, name, reads, isolation="read_committed"):
        """reads: [(partition, offset, value)] or ("reset", partition)."""
        self.add(name, "start", role="consumer", name=name, session=0, isolation=isolation)
        for read in reads:
            if read[0] in ("reset", "seek"):
                self.add(name, read[0], partition=read[1])
            else:
                self.add(name, "read", partition=read[0], offset=read[1], value=read[2])
        return self

    def final(self, log, isolation="read_uncommitted", complete=True):
        """log: {partition: [values at offsets 0, 1, ...]}."""
        name = f"final-{isolation}"
        self.add(name, "start", role="final", name=name, session=0, isolation=isolation)
        for partition, values in log.items():
            for offset, value in enumerate(values):
                if value is not None:
                    self.add(name, "read", partition=partition, offset=offset, value=value)
        for partition, values in log.items():
            self.add(name, "end", partition=partition, high_watermark=len(values),
                     position=len(values) if complete else 0, complete=complete)
        return self

    def finals(self, log):
        """The same final log read at both isolation levels."""
        return self.final(log).final(log, "read_committed")

    def report(self):
        journals = [checker.Journal(name, records) for name, records in self.journals.items()]
        return checker.check(journals)


def counts(report):
    return {name: report.count(name) for name, _ in checker.COUNTS}


CLEAN = {name: 0 for name, _ in checker.COUNTS}


class CheckerTest(unittest.TestCase):
    def assertOnly(self, report, **expected):
        want = dict(CLEAN, **expected)
        self.assertEqual(counts(report), want, checker.details(report))

    def test_a_clean_history_has_no_anomalies(self):
        b = Builder().producer("p1", [("a", 0, 0), ("b", 0, 1), ("c", 1, 0)])
        b.consumer("c1", [(0, 0, "a"), (0, 1, "b"), (1, 0, "c")])
        b.finals({0: ["a", "b"], 1: ["c"]})
        report = b.report()
        self.assertOnly(report)
        self.assertTrue(report.ok())
        self.assertEqual(report.acknowledged, 3)
        self.assertIn("3 acknowledged, lost 0, divergent offsets 0", checker.summary(report))

    def test_an_acknowledged_value_missing_from_the_final_log_is_lost(self):
        b = Builder().producer("p1", [("a", 0, 0), ("b", 0, 1)])
        b.finals({0: ["a"]})
        report = b.report()
        self.assertOnly(report, lost=1)
        self.assertIn("b (acknowledged at partition 0 offset 1)", report.lost[0])
        self.assertFalse(report.ok())

    def test_a_failed_send_is_not_expected(self):
        b = Builder().producer("p1", [("a", 0, 0)])
        b.add("p1", "send", value="b").add("p1", "fail", value="b", error="_MSG_TIMED_OUT")
        b.finals({0: ["a"]})
        self.assertOnly(b.report())

    def test_two_values_at_one_offset_diverge(self):
        # Acked at 0:1, then a consumer saw another value there.
        b = Builder().producer("p1", [("a", 0, 0), ("b", 0, 1)])
        b.consumer("c1", [(0, 0, "a"), (0, 1, "x")])
        b.finals({0: ["a", "b"]})
        report = b.report()
        self.assertEqual(report.count("divergent"), 1)
        self.assertIn("partition 0 offset 1: ['b', 'x']", report.divergent[0])

    def test_acks_without_an_offset_do_not_diverge(self):
        b = Builder().producer("p1", [("a", 0, -1), ("b", 0, -1)])
        b.finals({0: ["a", "b"]})
        self.assertOnly(b.report())

    def test_a_value_twice_in_the_final_log_is_a_duplicate(self):
        b = Builder().producer("p1", [("a", 0, 0), ("b", 0, 1)])
        b.finals({0: ["a", "b", "b"]})
        report = b.report()
        self.assertOnly(report, duplicates=1)
        self.assertIn("b at [(0, 1), (0, 2)]", report.duplicates[0])

    def test_offsets_going_backwards_within_a_run(self):
        b = Builder().producer("p1", [("a", 0, 0), ("b", 0, 1), ("c", 0, 2)])
        b.consumer("c1", [(0, 0, "a"), (0, 1, "b"), (0, 0, "a"), (0, 2, "c")])
        b.finals({0: ["a", "b", "c"]})
        report = b.report()
        self.assertOnly(report, backwards=1)
        self.assertIn("c1 read partition 0 offset 0 after offset 1", report.backwards[0])

    def test_reading_one_offset_twice_is_backwards(self):
        b = Builder().producer("p1", [("a", 0, 0)])
        b.consumer("c1", [(0, 0, "a"), (0, 0, "a")])
        b.finals({0: ["a"]})
        self.assertOnly(b.report(), backwards=1)

    def test_a_reset_a_seek_or_a_restart_may_go_back(self):
        b = Builder().producer("p1", [("a", 0, 0), ("b", 0, 1), ("c", 1, 0)])
        b.consumer("c1", [(0, 0, "a"), (0, 1, "b"), ("reset", 0), (0, 0, "a"),
                          (1, 0, "c"), ("seek", 1), (1, 0, "c")])
        # The harness restarted the consumer: a new run starts over.
        b.consumer("c1", [(0, 0, "a"), (0, 1, "b")])
        b.finals({0: ["a", "b"], 1: ["c"]})
        self.assertOnly(b.report())

    def test_other_partitions_are_not_compared(self):
        b = Builder().producer("p1", [("a", 0, 5), ("b", 1, 0)])
        b.consumer("c1", [(0, 5, "a"), (1, 0, "b")])
        b.finals({0: [None] * 5 + ["a"], 1: ["b"]})
        self.assertOnly(b.report())

    def test_a_read_the_final_log_no_longer_holds_is_truncated(self):
        # A consumer read c at offset 2 (never acknowledged), which a new
        # leader then truncated away.
        b = Builder().producer("p1", [("a", 0, 0), ("b", 0, 1)])
        b.add("p1", "send", value="c")
        b.consumer("c1", [(0, 0, "a"), (0, 1, "b"), (0, 2, "c")], isolation="read_uncommitted")
        b.finals({0: ["a", "b"]})
        report = b.report()
        self.assertOnly(report, truncated=1)
        self.assertIn("read c at partition 0 offset 2; the final log holds nothing there",
                      report.truncated[0])

    def test_a_truncated_and_overwritten_offset_is_truncated_and_divergent(self):
        b = Builder().producer("p1", [("a", 0, 0), ("d", 0, 1)])
        b.add("p1", "send", value="c")
        b.consumer("c1", [(0, 0, "a"), (0, 1, "c")])
        b.finals({0: ["a", "d"]})
        self.assertOnly(b.report(), truncated=1, divergent=1)

    def test_reads_beyond_an_incomplete_final_read_are_not_judged(self):
        b = Builder().producer("p1", [("a", 0, 0)])
        b.consumer("c1", [(0, 0, "a"), (0, 1, "z")])
        b.final({0: ["a"]}, complete=False)
        report = b.report()
        self.assertEqual(report.count("truncated"), 0)
        self.assertEqual(len(report.final_incomplete), 1)
        self.assertFalse(report.ok())
        self.assertIn("final reads incomplete 1", checker.summary(report))

    def txn(self, b, txn, values, outcome, committing=None):
        b.add("txn", "begin", txn=txn)
        for value in values:
            b.add("txn", "send", value=value, txn=txn)
        if committing if committing is not None else outcome != "aborted":
            b.add("txn", "committing", txn=txn)
        if outcome is not None:
            b.add("txn", "txn", txn=txn, outcome=outcome)

    def txn_history(self):
        b = Builder()
        b.add("txn", "start", role="txn-producer", name="txn", session=0)
        self.txn(b, "0-0", ["t0a", "t0b"], "committed")
        self.txn(b, "0-1", ["t1a"], "aborted")
        for value, offset in (("t0a", 0), ("t0b", 1), ("t1a", 3)):
            b.add("txn", "ack", value=value, partition=0, offset=offset)
        return b

    def test_committed_transactions_count_aborted_ones_do_not(self):
        b = self.txn_history()
        b.consumer("c1", [(0, 0, "t0a"), (0, 1, "t0b")])
        # Offsets 2 and 4 are the markers.
        b.final({0: ["t0a", "t0b", None, "t1a", None]})
        b.final({0: ["t0a", "t0b"]}, "read_committed")
        report = b.report()
        self.assertOnly(report)
        self.assertEqual(report.acknowledged, 2)
        self.assertEqual(report.stats["transactions committed"], 1)
        self.assertEqual(report.stats["transactions aborted"], 1)

    def test_an_aborted_value_read_at_read_committed_is_seen(self):
        b = self.txn_history()
        b.consumer("c1", [(0, 0, "t0a"), (0, 1, "t0b"), (0, 3, "t1a")])
        # The same read at read_uncommitted is no anomaly.
        b.consumer("c2", [(0, 3, "t1a")], isolation="read_uncommitted")
        b.final({0: ["t0a", "t0b", None, "t1a", None]})
        b.final({0: ["t0a", "t0b", None, "t1a"]}, "read_committed")
        report = b.report()
        self.assertOnly(report, aborted_seen=2)
        self.assertIn("c1 read t1a (aborted)", report.aborted_seen[0])
        self.assertIn("final-read_committed read t1a", report.aborted_seen[1])

    def test_a_transaction_never_asked_to_commit_is_aborted(self):
        b = Builder()
        b.add("txn", "start", role="txn-producer", name="txn", session=0)
        # The producer died mid-transaction: no outcome was written.
        self.txn(b, "0-0", ["t0a"], None, committing=False)
        b.consumer("c1", [(0, 0, "t0a")])
        b.finals({0: ["t0a"]})
        self.assertOnly(b.report(), aborted_seen=2)

    def test_a_transaction_of_unknown_outcome_is_not_judged(self):
        b = Builder()
        b.add("txn", "start", role="txn-producer", name="txn", session=0)
        self.txn(b, "0-0", ["t0a"], "unknown")
        self.txn(b, "0-1", ["t1a"], None)
        b.consumer("c1", [(0, 0, "t0a")])
        b.finals({0: ["t0a"]})
        report = b.report()
        self.assertOnly(report)
        self.assertEqual(report.stats["transactions unknown"], 2)

    def test_a_committed_value_hidden_from_read_committed_is_lost(self):
        b = self.txn_history()
        b.final({0: ["t0a", "t0b", None, "t1a", None]})
        b.final({0: ["t0a"]}, "read_committed")
        report = b.report()
        self.assertOnly(report, lost=1)
        self.assertIn("t0b (committed, not in the final read_committed read)", report.lost[0])

    def test_a_committed_value_missing_everywhere_is_lost(self):
        b = self.txn_history()
        b.final({0: ["t0a", None, None, "t1a", None]})
        b.final({0: ["t0a"]}, "read_committed")
        report = b.report()
        self.assertOnly(report, lost=1)
        self.assertIn("t0b", report.lost[0])

    def test_failover_is_the_first_probe_ack_before_the_restart(self):
        b = Builder()
        b.add("harness", "start", role="harness",
              settings={"probe_partition": 0, "broker": {"broker.session.timeout.ms": 6000}})
        b.add("harness", "fault", t=10.0, round=1, kind="kill-leader", node=2, partition=0)
        b.add("harness", "restarted", t=20.0, round=1, node=2)
        b.add("harness", "fault", t=30.0, round=2, kind="kill-leader", node=1, partition=0)
        b.add("harness", "restarted", t=40.0, round=2, node=1)
        b.add("harness", "fault", t=50.0, round=3, kind="pause-leader", node=1)
        b.add("harness", "skipped", t=60.0, round=4, kind="partition-leader")
        b.add("probe", "start", role="probe", name="probe", session=0)
        # Acks: one polled just after the kill (the old leader's), one from
        # the new leader at 16.5; in round 2 only after the restart.
        for t, offset in ((9.0, 0), (10.01, 1), (16.5, 2), (41.0, 3)):
            b.add("probe", "ack", t=t, value=f"v{offset}", partition=0, offset=offset)
        report = b.report()
        self.assertEqual(report.failover, [(1, 6.5), (2, None)])
        self.assertEqual(report.rounds, 4)
        self.assertEqual(dict(report.faults), {"kill-leader": 2, "pause-leader": 1, "skipped": 1})
        text = checker.failover_summary(report)
        self.assertIn("median 6.50 s, max 6.50 s over 1 rounds", text)
        self.assertIn("1 of 2 kills saw no ack", text)
        self.assertIn("broker.session.timeout.ms=6000", text)
        self.assertTrue(checker.summary(report).startswith(
            "faults: 4 rounds (kill-leader 2, pause-leader 1, skipped 1): 4 acknowledged"))

    def test_journals_load_from_a_directory_and_skip_cut_lines(self):
        with tempfile.TemporaryDirectory() as d:
            lines = [
                {"t": 1, "type": "start", "role": "producer", "name": "p1", "session": 0},
                {"t": 2, "type": "send", "value": "a"},
                {"t": 3, "type": "ack", "value": "a", "partition": 0, "offset": 0},
            ]
            with open(os.path.join(d, "p1.jsonl"), "w", encoding="utf-8") as f:
                f.writelines(json.dumps(line) + "\n" for line in lines)
                f.write('{"t": 4, "type": "se')
            with open(os.path.join(d, "final-u.jsonl"), "w", encoding="utf-8") as f:
                f.write(json.dumps({"t": 5, "type": "start", "role": "final",
                                    "isolation": "read_uncommitted"}) + "\n")
            journals = checker.load(d)
            self.assertEqual([j.name for j in journals], ["final-u", "p1"])
            report = checker.check(journals)
            self.assertOnly(report, lost=1)
            self.assertEqual(report.stats["bad journal lines"], 1)
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(checker.main([d]), 1)
            self.assertIn("1 acknowledged, lost 1,", out.getvalue())


if __name__ == "__main__":
    unittest.main()
