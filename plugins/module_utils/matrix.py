# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reachability matrix: every node probes every other node's VPN address and a pod IP
(or, with ``peers``, a ring sample of them).

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
    peers={"type": "int", "default": 0},
    peers_offset={"type": "int", "default": 0},
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


def check_peers(peers, peers_offset):
    """Bad ``peers`` / ``peers_offset`` -> message."""
    if peers < 0 or peers_offset < 0:
        return ("peers and peers_offset must be 0 or more (got %d, %d); peers 0 probes every "
                "other node" % (peers, peers_offset))
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


def row_result(me, probes, rc, out, err, fail_on_unreachable, skipped=()):
    """One probing node's result from its probe command's output: its ``row``, the probes that
    got no answer, and a failure when the command failed (or a probe got no answer and
    ``fail_on_unreachable``). ``skipped``: the other nodes it did not probe (``peers``)."""
    if rc != 0:
        return dict(failed=True, rc=rc, msg="the probe command failed on %s: %s"
                    % (me, (err or out or "").strip()[:500]))
    row = parse_probe(out, probes, skipped)
    unanswered = ["%s %s (%s)" % (node, kind, ip)
                  for node, kind, ip in probes if not row[node][kind]]
    res = dict(row=row, unanswered=unanswered)
    if unanswered and fail_on_unreachable:
        res.update(failed=True, msg="%s cannot reach: %s" % (me, ", ".join(unanswered)))
    return res


def peer_names(targets, me, peers=0, peers_offset=0):
    """The nodes that node ``me`` probes, in the order of ``targets``: every other node, or
    with ``peers`` (k) k of them - the k that follow ``me`` around the ring of ``targets``,
    starting ``peers_offset * k`` places further. For one offset, every node probes k others and
    is probed by k others; the offsets 0, 1, 2... go round the ring, so a gate that runs again
    with the next offset probes other pairs (all of them within ceil((n - 1) / k) runs)."""
    names = [t["name"] for t in targets]
    if me not in names:
        return [n for n in names if n != me]
    i = names.index(me)
    others = names[i + 1:] + names[:i]
    if not peers or peers >= len(others):
        return [n for n in names if n != me]
    start = (peers_offset * peers) % len(others)
    chosen = set(others[(start + j) % len(others)] for j in range(peers))
    return [n for n in names if n in chosen]


def probe_list(targets, me, kinds, peers=0, peers_offset=0):
    """[(node, kind, ip)] that node ``me`` probes: every kind of every other node, or of the
    ``peers`` nodes ``peer_names`` picks."""
    return probe_plan(targets, me, kinds, peers, peers_offset)[0]


def probe_plan(targets, me, kinds, peers=0, peers_offset=0):
    """(``probe_list``, the other nodes ``me`` leaves out) - one ``peer_names`` for both."""
    chosen = set(peer_names(targets, me, peers, peers_offset))
    probes = [(t["name"], kind, t[kind]) for t in targets if t["name"] in chosen
              for kind in kinds]
    skipped = [t["name"] for t in targets if t["name"] not in chosen and t["name"] != me]
    return probes, skipped


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


def parse_probe(stdout, probes, skipped=()):
    """The command's output -> row {node: {kind: True|False|None}} (None: no answer line);
    the nodes in ``skipped`` (other nodes this one did not probe: ``peers``) get ``{}``."""
    seen = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in ("ok", "fail"):
            seen[parts[0]] = parts[1] == "ok"
    row = dict((node, {}) for node in skipped)
    for node, kind, ip in probes:
        row.setdefault(node, {})[kind] = seen.get(ip)
    return row


def assemble(rows, addresses=None):
    """{source: row} -> {"nodes", "matrix", "failures", "ok"}.

    ``matrix[src][dst]`` is ``ok`` when every probed kind answered, else the failing kinds
    (for example ``fail: pod``); the diagonal is ``-``; a pair the gate left out on purpose
    (``peers``: an empty entry in the row) is ``not sampled``, not a failure.
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
            if not result:
                matrix[src][dst] = "not sampled"
                continue
            bad = sorted(k for k, ok in result.items() if not ok)
            matrix[src][dst] = "ok" if not bad else "fail: " + ", ".join(bad)
            for kind in bad:
                addr = ((addresses or {}).get(dst) or {}).get(kind)
                failures.append({"from": src, "to": dst, "kind": kind, "address": addr,
                                 "reason": "no answer" if result[kind] is False else
                                 "no result"})
    return {"nodes": nodes, "matrix": matrix, "failures": failures, "ok": not failures}
