# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration's phases: their order (PHASES, the one list), their time windows from the
ledger, and a traffic probe's figures per phase. Pure functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import time

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError


def _pct(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


def epoch(value):
    """Epoch seconds from a number or the ledger's ``YYYY-MM-DDTHH:MM:SSZ``; None stays None."""
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        return float(calendar.timegm(time.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        raise MigrationError("%r is not a time (YYYY-MM-DDTHH:MM:SSZ)" % (value,))


def _ok(rec):
    return bool(rec.get("ok")) if "ok" in rec else rec.get("status") == 200


def probe_phase_stats(records, phases):
    """Per phase figures of an external traffic probe.

    records: [{t: epoch seconds, ok: bool (or status: 200), ms: latency}], phases:
    [{name, started, finished}] (epoch seconds or ledger times). Returns [{phase, requests, failed, p50_ms, p99_ms, longest_gap_s}]; the
    longest gap is the longest time without a successful request inside the phase window.
    """
    out = []
    records = sorted(records or [], key=lambda r: r["t"])
    for ph in phases or []:
        start, end = epoch(ph.get("started")), epoch(ph.get("finished"))
        if start is None or end is None:
            continue
        inside = [r for r in records if start <= r["t"] <= end]
        ok_times = [start] + [r["t"] for r in inside if _ok(r)] + [end]
        gap = max(b - a for a, b in zip(ok_times, ok_times[1:])) if inside else None
        lat = [r["ms"] for r in inside if _ok(r) and r.get("ms") is not None]
        out.append({"phase": ph["name"], "requests": len(inside),
                    "failed": len([r for r in inside if not _ok(r)]),
                    "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
                    "longest_gap_s": round(gap, 3) if gap is not None else None})
    return out


PHASES = ("preflight", "workers_pause", "seed_vpn", "vpn_overlay", "target_cloud",
          "target_workers", "ingress", "workload_move", "dns_cutover", "cleanup", "report")


MOVE_PHASES = ("move_preflight", "move_dns_prepare", "move_link", "move_db_join", "move_proxy",
               "move_dns", "move_deployments", "move_db_primary", "move_deployments_rest",
               "move_cleanup", "move_report", "move_finish")


def phase_windows(phases, order=PHASES):
    """The ledger's phase records in migration order (``order``: the names, or ``"move"`` for
    the cluster-to-cluster move's), as [{name, status, started, finished, seconds, attempts,
    message}] (times as in the ledger; seconds None while unfinished)."""
    if order == "move":
        order = MOVE_PHASES
    out = []
    for name in order:
        rec = (phases or {}).get(name)
        if not rec:
            continue
        start, end = epoch(rec.get("started")), epoch(rec.get("finished"))
        out.append({"name": name, "status": rec.get("status"), "started": rec.get("started"),
                    "finished": rec.get("finished"), "attempts": rec.get("attempts"),
                    "message": rec.get("message"),
                    "seconds": (end - start) if start is not None and end is not None else None})
    return out


def fleet_summary(ledgers, order=PHASES):
    """One line per cluster of a fleet run from each cluster's ledger phases (``ledgers``:
    {cluster id: phases}, a cluster with no ledger as {} or None), and the counts: a cluster is
    ``finished`` when its last phase of ``order`` is done, ``failed`` when a phase's last record
    is failed, ``running`` when a phase has started and not ended (or a run was killed in it),
    ``not started`` with no phase recorded, otherwise ``stopped`` (the run ended between two phases). Each line: id,
    result, the phase it is at (the failed or running one, else the last done), its message,
    its phases done of all, seconds from the first start to the last finish, and the report's
    per-phase probe figures when its report phase recorded them. ``as_of``: the newest time any
    ledger records."""
    if order == "move":
        order = MOVE_PHASES
    clusters, counts, stamps = [], {}, []
    for cid in sorted(ledgers or {}):
        phases = (ledgers or {}).get(cid) or {}
        windows = [w for w in phase_windows(phases, order)
                   if w["status"] in ("started", "done", "failed")]  # not a pending record
        failed = [w for w in windows if w["status"] == "failed"]
        running = [w for w in windows if w["status"] == "started"]
        done = [w for w in windows if w["status"] == "done"]
        if failed:
            result, at = "failed", failed[-1]
        elif running:
            result, at = "running", running[-1]
        elif not windows:
            result, at = "not started", None
        elif order[-1] in [w["name"] for w in done]:
            result, at = "finished", done[-1]
        else:
            result, at = "stopped", (done or windows)[-1]
        starts = [epoch(w["started"]) for w in windows if epoch(w["started"]) is not None]
        ends = [epoch(w["finished"]) for w in windows if epoch(w["finished"]) is not None]
        report = (phases.get(order[-1]) or {}).get("facts") or {}
        clusters.append({
            "id": cid, "result": result, "phase": at["name"] if at else None,
            "message": at.get("message") if at and result == "failed" else None,
            "done": len(done), "phases": len(order),
            "seconds": (max(ends) - min(starts)) if starts and ends and max(ends) >= min(starts)
            else None,
            "probe": report.get("probe") or [], "report": report.get("report")})
        counts[result] = counts.get(result, 0) + 1
        stamps += [w[k] for w in windows for k in ("started", "finished") if w.get(k)]
    return {"clusters": clusters, "counts": counts,
            "as_of": max(stamps, key=epoch) if stamps else None}


def fleet_wave(ledgers, size, order=PHASES):
    """The clusters one run of a fleet takes when at most ``size`` may be under way
    (``cloudhop_fleet_batch``): ``ledgers`` is {host: its ledger's phases} in inventory order.
    Those begun and not finished (failed, running, stopped) come first - a cluster under way is
    finished before another begins - then those not started, in that order, ``size`` of them
    (0: no limit). Finished clusters are never taken (they have nothing left to do). Returns
    {"wave": [hosts], "waiting": [hosts left for a later run], "finished": [hosts]}."""
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise ValueError("cloudhop_fleet_batch must be a whole number (0: no limit), got %r"
                         % (size,)) from None
    if size < 0:
        raise ValueError("cloudhop_fleet_batch must be 0 (no limit) or more, got %d" % size)
    hosts = list(ledgers or {})
    results = {c["id"]: c["result"] for c in fleet_summary(ledgers, order)["clusters"]}
    finished = [h for h in hosts if results[h] == "finished"]
    begun = [h for h in hosts if results[h] in ("failed", "running", "stopped")]
    fresh = [h for h in hosts if results[h] == "not started"]
    todo = begun + fresh
    wave = todo if size == 0 else todo[:size]
    return {"wave": wave, "waiting": [h for h in todo if h not in wave], "finished": finished}
