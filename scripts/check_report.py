"""The `ok:` / `FAIL:` lines scripts/check-chart.sh counts, shared by its
Python checks (chart_checks.py, validate_examples.py)."""

FAILURES = []


def ok(message):
    print(f"ok: {message}")


def fail(message):
    print(f"FAIL: {message}")
    FAILURES.append(message)
