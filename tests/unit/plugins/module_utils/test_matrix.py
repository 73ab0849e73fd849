"""The reachability matrix: probe list, command, parsing and the N x N assembly."""

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
