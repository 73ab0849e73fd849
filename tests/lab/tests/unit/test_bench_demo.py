"""bench/demo_phases.py's figures from the probe's records: requests, failures, the longest gap
without a success (also at the window's edges) and the latencies of the successful requests."""

import importlib.util
import os

SPEC = importlib.util.spec_from_file_location("demo_phases", os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "..", "bench", "demo_phases.py"))
demo = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(demo)


def rec(t, ms=10.0, status=200):
    return {"t": t, "ms": ms, "status": status} if status else {"t": t, "ms": ms, "error": "x"}


def test_a_window_counts_failures_and_the_longest_gap_between_successes():
    records = [rec(0.0), rec(0.05), rec(0.1, status=None), rec(0.15, status=503),
               rec(0.2, ms=30.0), rec(0.25), rec(5.0, ms=99.0)]
    w = demo.window(records, 0.0, 1.0)  # the 5.0 s record is outside
    assert (w["requests"], w["failed"]) == (6, 2)
    assert w["longest_gap_s"] == 0.75  # the last success at 0.25 s, the window ends at 1.0 s
    assert w["p50_ms"] == 10.0 and w["p99_ms"] == 30.0


def test_the_gap_from_the_window_start_and_an_empty_window():
    w = demo.window([rec(2.0), rec(2.1)], 0.0, 2.2)
    assert w["longest_gap_s"] == 2.0
    empty = {"requests": 0, "failed": 0, "longest_gap_s": None, "p50_ms": None, "p99_ms": None}
    assert demo.window([], 0.0, 1.0) == empty


def test_p99_takes_the_99th_percentile_of_the_sorted_values():
    assert demo.p99(list(range(100, 0, -1))) == 100
    assert demo.p99([float(v) for v in range(1, 201)]) == 199.0
    assert demo.p99([]) is None


def test_slow_and_failed_requests_are_named_with_their_phase_and_task():
    ledger = {"vpn_overlay": {"started": "2026-12-04T10:00:00Z", "finished": "2026-12-04T10:01:00Z"}}
    t0 = demo.epoch("2026-12-04T10:00:00Z")
    tasks = [(t0 + 1, "Restart canal"), (t0 + 30, "Gate")]
    records = [rec(t0 + 2, ms=1008.0), rec(t0 + 3, ms=12.0), rec(t0 + 31, status=None),
               rec(t0 + 90, ms=700.0)]
    assert [(r["ms"], r["phase"], r["task"]) for r in demo.slow(records, tasks, ledger)] == [
        (1008.0, "vpn_overlay", "Restart canal"), (700.0, None, "Gate")]
    assert [(r["phase"], r["task"], r["error"]) for r in demo.failures(records, tasks, ledger)] == [
        ("vpn_overlay", "Gate", "x")]
