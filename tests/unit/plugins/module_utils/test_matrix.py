"""The reachability matrix: probe list, command, parsing and the N x N assembly."""

import os
import subprocess

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.filter.reachability_matrix import (
    reachability_matrix)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import matrix

TARGETS = [{"name": "a", "vpn": "10.20.0.6", "pod": "172.25.0.5"},
           {"name": "b", "vpn": "10.20.0.10", "pod": "172.25.1.7"},
           {"name": "c", "vpn": "10.20.0.14", "pod": "172.25.2.3"}]


def test_probe_list_skips_self_and_command_pings_each_address_once():
    probes = matrix.probe_list(TARGETS, "a", ["vpn", "pod"])
    assert probes == [("b", "vpn", "10.20.0.10"), ("b", "pod", "172.25.1.7"),
                      ("c", "vpn", "10.20.0.14"), ("c", "pod", "172.25.2.3")]
    cmd = matrix.probe_command(probes, count=2, timeout=1)
    assert cmd.count("172.25.1.7") == 1 and "10.20.0.6" not in cmd
    assert "-c 2" in cmd and "-W 1" in cmd and cmd.endswith("wait")


def test_parse_probe_marks_missing_lines_as_unknown():
    probes = matrix.probe_list(TARGETS, "a", ["vpn", "pod"])
    row = matrix.parse_probe("10.20.0.10 ok\n172.25.1.7 fail\n10.20.0.14 ok\n", probes)
    assert row == {"b": {"vpn": True, "pod": False}, "c": {"vpn": True, "pod": None}}


def test_assemble_names_every_failure():
    rows = {"a": {"b": {"vpn": True, "pod": False}, "c": {"vpn": True, "pod": True}},
            "b": {"a": {"vpn": True, "pod": True}, "c": {"vpn": True, "pod": True}},
            "c": {"a": {"vpn": True, "pod": True}, "b": {"vpn": True, "pod": True}}}
    out = matrix.assemble(rows, {t["name"]: t for t in TARGETS})
    assert out["nodes"] == ["a", "b", "c"] and not out["ok"]
    assert out["matrix"]["a"] == {"a": "-", "b": "fail: pod", "c": "ok"}
    assert out["failures"] == [{"from": "a", "to": "b", "kind": "pod", "address": "172.25.1.7",
                                "reason": "no answer"}]
    rows["a"]["b"]["pod"] = True
    assert matrix.assemble(rows)["ok"]


def test_filter_counts_a_node_that_did_not_report():
    ok = {"vpn": True, "pod": True}
    results = {"a": {"row": {"b": ok}}, "b": {"failed": True, "msg": "unreachable"}}
    out = reachability_matrix(results, TARGETS[:2])
    assert not out["ok"] and out["matrix"]["b"]["a"] == "not probed"
    assert any("b did not report" in f["reason"] for f in out["failures"])


@pytest.mark.parametrize("targets,kinds,msg", [
    ([], ["vpn"], "targets is empty"),
    ([{"name": "a", "vpn": "10.20.0.1"}], ["vpn", "pod"], "has no pod address"),
    ([{"name": "a", "vpn": "ten"}], ["vpn"], "'ten' is not an IP address"),
    ([{"name": "a", "vpn": "10.20.0.1"}, {"name": "a", "vpn": "10.20.0.2"}], ["vpn"],
     "listed twice"),
    ([{"name": "a", "vpn": "10.20.0.1"}], ["icmp"], "kinds: icmp unknown"),
])
def test_bad_targets(targets, kinds, msg):
    assert msg in matrix.check_targets(targets, kinds)


TWO = [{"name": "a", "vpn": "10.20.0.6", "pod": "172.25.0.5"},
       {"name": "b", "vpn": "10.20.0.10", "pod": "172.25.1.7"}]


@pytest.mark.parametrize("nodes,kw,msg", [
    (None, {}, None),
    (["a", "b"], {}, None),
    ([], {}, "nodes is empty"),
    (["a", "c"], {}, "nodes: c not in targets"),
    (["a"], {"settle_timeout": -1}, "settle_timeout must be 0 or more"),
    (["a"], {"settle_interval": 0}, "settle_interval more than 0"),
])
def test_the_probing_nodes_of_one_task_are_checked(nodes, kw, msg):
    got = matrix.check_nodes(nodes, TWO, **kw)
    assert got is None if msg is None else msg in got


def test_a_row_names_what_got_no_answer_and_a_failed_command_fails():
    probes = matrix.probe_list(TWO, "a", ["vpn", "pod"])
    res = matrix.row_result("a", probes, 0, "10.20.0.10 ok\n172.25.1.7 fail\n", "", False)
    assert res == {"row": {"b": {"vpn": True, "pod": False}},
                   "unanswered": ["b pod (172.25.1.7)"]}
    strict = matrix.row_result("a", probes, 0, "10.20.0.10 ok\n", "", True)
    assert strict["failed"] and strict["msg"] == "a cannot reach: b pod (172.25.1.7)"
    broken = matrix.row_result("a", probes, 127, "", "sh: ping: not found", False)
    assert broken["failed"] and "the probe command failed on a: sh: ping: not found" == broken["msg"]


FAKE_PING = """#!/bin/sh
# a ping that logs how many run at once, answers for 10.0.0.* only, after 0.1 s
dir=$(dirname "$0")
while ! mkdir "$dir/lock" 2>/dev/null; do sleep 0.01; done
n=$(($(cat "$dir/now" 2>/dev/null || echo 0) + 1)); echo $n > "$dir/now"; echo $n >> "$dir/seen"
rmdir "$dir/lock" 2>/dev/null
sleep 0.1
while ! mkdir "$dir/lock" 2>/dev/null; do sleep 0.01; done
echo $(($(cat "$dir/now") - 1)) > "$dir/now"
rmdir "$dir/lock"
for a in "$@"; do last=$a; done
case $last in 10.0.0.*) exit 0;; *) exit 1;; esac
"""


@pytest.mark.parametrize("parallel, most", [(0, 12), (4, 4), (20, 12)])
def test_probe_command_runs_at_most_parallel_pings_at_once_and_reports_each(
        tmp_path, parallel, most):
    """The command itself, run by sh with a ping that counts how many run at once."""
    ping = tmp_path / "ping"
    ping.write_text(FAKE_PING)
    ping.chmod(0o755)
    ips = ["10.0.0.%d" % i for i in range(1, 10)] + ["10.9.0.1", "10.9.0.2", "10.9.0.3"]
    probes = [("n%d" % i, "vpn", ip) for i, ip in enumerate(ips)]
    out = subprocess.run(["sh", "-c", matrix.probe_command(probes, 1, 1, parallel)],
                         capture_output=True, text=True, check=True, timeout=60,
                         env=dict(os.environ, PATH="%s:%s" % (tmp_path, os.environ["PATH"])))
    row = matrix.parse_probe(out.stdout, probes)
    assert row == {n: {"vpn": ip.startswith("10.0.0.")} for n, _kind, ip in probes}
    seen = [int(v) for v in (tmp_path / "seen").read_text().split()]
    assert len(seen) == len(ips) and max(seen) <= most
    if parallel and parallel < len(ips):
        assert max(seen) == parallel  # the slots are used: that many do run together


RING = [{"name": n, "vpn": "10.20.0.%d" % (i + 1), "pod": "172.25.%d.1" % i}
        for i, n in enumerate("abcdefg")]


def test_without_peers_every_node_probes_every_other():
    assert matrix.peer_names(RING, "c") == ["a", "b", "d", "e", "f", "g"]
    assert matrix.peer_names(RING, "c", peers=6) == ["a", "b", "d", "e", "f", "g"]


@pytest.mark.parametrize("peers", [1, 2, 3, 5])
@pytest.mark.parametrize("offset", [0, 1, 4])
def test_with_peers_every_node_probes_k_and_is_probed_by_k(peers, offset):
    probed_by = dict((t["name"], 0) for t in RING)
    for t in RING:
        chosen = matrix.peer_names(RING, t["name"], peers, offset)
        assert len(chosen) == peers and t["name"] not in chosen
        for n in chosen:
            probed_by[n] += 1
    assert set(probed_by.values()) == {peers}


def test_the_offsets_go_round_the_ring_and_cover_every_pair():
    assert matrix.peer_names(RING, "a", 2, 0) == ["b", "c"]
    assert matrix.peer_names(RING, "a", 2, 1) == ["d", "e"]
    assert matrix.peer_names(RING, "f", 2, 0) == ["a", "g"]
    pairs = set()
    for offset in range(3):  # ceil(6 / 2) runs
        for t in RING:
            pairs.update((t["name"], n) for n in matrix.peer_names(RING, t["name"], 2, offset))
    assert len(pairs) == 7 * 6


def test_a_sampled_row_leaves_the_other_pairs_out_without_failing_them():
    probes, skipped = matrix.probe_plan(RING, "a", ["vpn", "pod"], peers=1)
    assert probes == [("b", "vpn", "10.20.0.2"), ("b", "pod", "172.25.1.1")]
    assert skipped == ["c", "d", "e", "f", "g"]
    assert probes == matrix.probe_list(RING, "a", ["vpn", "pod"], peers=1)
    res = matrix.row_result("a", probes, 0, "10.20.0.2 ok\n172.25.1.1 ok\n", "", False,
                            skipped=skipped)
    assert res["row"]["b"] == {"vpn": True, "pod": True} and res["row"]["c"] == {}
    rows = dict((n, dict((m, {}) for m in "abcdefg" if m != n)) for n in "bcdefg")
    for n, m in zip("bcdefg", "cdefga"):  # each node's one peer answered
        rows[n][m] = {"vpn": True, "pod": True}
    rows["a"] = res["row"]
    rows["b"]["c"] = {"vpn": True, "pod": False}
    out = matrix.assemble(rows)
    assert out["matrix"]["a"]["b"] == "ok" and out["matrix"]["a"]["c"] == "not sampled"
    assert [(f["from"], f["to"], f["kind"]) for f in out["failures"]] == [("b", "c", "pod")]
    rows["b"]["c"]["pod"] = True
    assert matrix.assemble(rows)["ok"]
    # a node missing from a full row is still a failure
    del rows["b"]["d"]
    assert not matrix.assemble(rows)["ok"]


@pytest.mark.parametrize("peers,offset", [(-1, 0), (2, -1)])
def test_negative_peers_are_refused(peers, offset):
    assert "peers and peers_offset must be 0 or more" in matrix.check_peers(peers, offset)
    assert matrix.check_peers(0, 0) is None
