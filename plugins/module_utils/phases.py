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
