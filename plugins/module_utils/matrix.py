# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reachability matrix: every node probes every other node's VPN address and a pod IP.

Pure functions, standard library only: ``probe_command`` builds the one shell command a node
runs (pings in parallel, no Python needed), ``parse_probe`` reads its output, ``assemble``
turns the rows of all nodes into the N x N matrix with the failures named.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

KINDS = ("vpn", "pod")
MATRIX_SPEC = dict(
    targets={"type": "list", "elements": "dict", "required": True},
    kinds={"type": "list", "elements": "str", "default": ["vpn", "pod"]},
    count={"type": "int", "default": 3},
    timeout={"type": "int", "default": 2},
    fail_on_unreachable={"type": "bool", "default": False},
    nodes={"type": "list", "elements": "str"},
    settle_timeout={"type": "float", "default": 0},
    settle_interval={"type": "float", "default": 1.0},
    parallel={"type": "int", "default": 0},
)


def check_targets(targets, kinds):
    """Bad targets -> message (before anything runs on a node)."""
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        return "kinds: %s unknown; use %s" % (", ".join(bad), ", ".join(KINDS))
    if not targets:
        return "targets is empty; give every node with its vpn and pod addresses"
    names = set()
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or not t.get("name"):
            return "targets[%d] has no name" % i
        if t["name"] in names:
            return "targets: node %s is listed twice" % t["name"]
        names.add(t["name"])
        for kind in kinds:
            if not t.get(kind):
                return "targets[%d] (%s) has no %s address" % (i, t["name"], kind)
            try:
                ipaddress.ip_address(t[kind])
            except ValueError:
                return "targets[%d] (%s): %s address %r is not an IP address" % (
                    i, t["name"], kind, t[kind])
    return None


def check_nodes(nodes, targets, settle_timeout=0, settle_interval=1.0):
    """Bad ``nodes`` (the probing nodes of one task) -> message."""
    if nodes is None:
        return None
    if not nodes:
        return "nodes is empty: name the inventory hosts that probe (for example cloudhop_nodes)"
    names = [t.get("name") for t in targets]
    missing = [n for n in nodes if n not in names]
    if missing:
        return ("nodes: %s not in targets; every probing node must be a target (name = its "
                "inventory hostname)" % ", ".join(missing))
    if settle_timeout < 0 or settle_interval <= 0:
        return ("settle_timeout must be 0 or more and settle_interval more than 0 (got %s, %s)"
                % (settle_timeout, settle_interval))
    return None


def row_result(me, probes, rc, out, err, fail_on_unreachable):
    """One probing node's result from its probe command's output: its ``row``, the probes that
    got no answer, and a failure when the command failed (or a probe got no answer and
    ``fail_on_unreachable``)."""
    if rc != 0:
        return dict(failed=True, rc=rc, msg="the probe command failed on %s: %s"
                    % (me, (err or out or "").strip()[:500]))
    row = parse_probe(out, probes)
    unanswered = ["%s %s (%s)" % (node, kind, ip)
                  for node, kind, ip in probes if not row[node][kind]]
    res = dict(row=row, unanswered=unanswered)
    if unanswered and fail_on_unreachable:
        res.update(failed=True, msg="%s cannot reach: %s" % (me, ", ".join(unanswered)))
    return res


def probe_list(targets, me, kinds):
    """[(node, kind, ip)] that node ``me`` probes: every kind of every other node."""
    return [(t["name"], kind, t[kind]) for t in targets if t["name"] != me for kind in kinds]


def probe_command(probes, count=3, timeout=2, parallel=0):
    """One shell command: the pings in parallel - all at once, or at most ``parallel`` at a
    time (xargs -P: a slot freed starts the next ping, so a silent peer holds one slot for its
    timeout, not a whole batch) - one ``<ip> ok|fail`` line each."""
    ips = sorted(set(ip for dummy, dummy2, ip in probes))
    if not ips:
        return "true"
    # one target's line, for the target in $T: $1 under xargs, $t in the loop
    line = ("if ping -n -q -c %d -i 0.2 -W %d \"$T\" >/dev/null 2>&1; then echo \"$T ok\"; "
            "else echo \"$T fail\"; fi" % (count, timeout))
    if parallel and parallel < len(ips):
        return "printf '%%s\\n' %s | xargs -P %d -n 1 sh -c '%s' ping" % (
            " ".join(ips), parallel, line.replace("$T", "$1"))
    return "for t in %s; do (%s) & done; wait" % (" ".join(ips), line.replace("$T", "$t"))


def parse_probe(stdout, probes):
    """The command's output -> row {node: {kind: True|False|None}} (None: no answer line)."""
    seen = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ("ok", "fail"):
            seen[parts[0]] = parts[1] == "ok"
    row = {}
    for node, kind, ip in probes:
        row.setdefault(node, {})[kind] = seen.get(ip)
    return row


def assemble(rows, addresses=None):
    """{source: row} -> {"nodes", "matrix", "failures", "ok"}.

    ``matrix[src][dst]`` is ``ok`` when every probed kind answered, else the failing kinds
    (for example ``fail: pod``); the diagonal is ``-``.
    """
    nodes = sorted(set(rows) | set(d for row in rows.values() for d in row))
    matrix, failures = {}, []
    for src in nodes:
        matrix[src] = {}
        for dst in nodes:
            if src == dst:
                matrix[src][dst] = "-"
                continue
            if src not in rows:
                matrix[src][dst] = "not probed"
                failures.append({"from": src, "to": dst, "kind": None,
                                 "address": None, "reason": "%s did not report" % src})
                continue
            result = rows[src].get(dst)
            if result is None:
                matrix[src][dst] = "not probed"
                failures.append({"from": src, "to": dst, "kind": None, "address": None,
                                 "reason": "%s was not a target of %s" % (dst, src)})
                continue
            bad = sorted(k for k, ok in result.items() if not ok)
            matrix[src][dst] = "ok" if not bad else "fail: " + ", ".join(bad)
            for kind in bad:
                addr = ((addresses or {}).get(dst) or {}).get(kind)
                failures.append({"from": src, "to": dst, "kind": kind, "address": addr,
                                 "reason": "no answer" if result[kind] is False else
                                 "no result"})
    return {"nodes": nodes, "matrix": matrix, "failures": failures, "ok": not failures}
