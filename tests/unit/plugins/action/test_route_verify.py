"""route_verify with nodes: the settle loop, per-node results and failures, with a fake fan-out
in place of SSH (the lab's integration targets run the real one)."""

import json
import time
from unittest import mock

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.action import route_verify
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import netcheck
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils import raw_check
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.fanout import NodeError

CIDRS = {"a": "172.25.0.0/24", "b": "172.25.1.0/24", "c": "172.25.2.0/24"}


def listing(node, peers, vpn=False):
    """The route_verify command's output on a node with flannel on ens192 and routes to peers."""
    addr = [{"ifindex": 2, "ifname": "ens192", "flags": ["UP"], "mtu": 1500,
             "addr_info": [{"family": "inet", "local": "10.2.0.1%d" % "abc".index(node),
                            "prefixlen": 17}]},
            {"ifindex": 6, "ifname": "flannel.1", "flags": ["UP"], "mtu": 1450,
             "linkinfo": {"info_kind": "vxlan", "info_data": {
                 "id": 1, "local": "10.2.0.1%d" % "abc".index(node), "link": "ens192",
                 "port": 8472}},
             "addr_info": [{"family": "inet", "local": CIDRS[node].split("/")[0],
                            "prefixlen": 32}]}]
    if vpn:
        addr.append({"ifindex": 9, "ifname": "kube", "flags": ["POINTOPOINT", "UP"],
                     "mtu": 1500, "addr_info": []})
    routes = [{"dst": "default", "gateway": "10.2.0.1", "dev": "ens192", "flags": []}]
    routes += [{"dst": CIDRS[p], "gateway": CIDRS[p].split("/")[0], "dev": "flannel.1",
                "flags": ["onlink"]} for p in peers]
    return (0, "%s\n%s\n%s\n%s\n" % (json.dumps(addr), netcheck.SEPARATOR, json.dumps(routes),
                                     netcheck.SEPARATOR), "")


class FakeFanout:
    """Answers per node from a list of outputs, one per run (the last one repeats)."""
    script = {}
    calls = []

    def __init__(self, action, task_vars):
        self.hosts = task_vars["hostvars"]

    def unknown(self, nodes):
        return [n for n in nodes if n not in self.hosts]

    def close(self):
        FakeFanout.closed = True

    def run(self, command, nodes):
        FakeFanout.calls.append(list(nodes))
        out = {}
        for node in nodes:
            answers = FakeFanout.script[node]
            out[node] = answers.pop(0) if len(answers) > 1 else answers[0]
        return out


def args(**kw):
    base = dict((k, v.get("default")) for k, v in netcheck.ROUTE_VERIFY_SPEC.items())
    base.update(nodes=["a", "b", "c"], node_pod_cidrs=dict(CIDRS), flannel_underlay="default",
                settle_interval=0.05)
    base.update(kw)
    return base


@pytest.fixture
def action(monkeypatch):
    monkeypatch.setattr(raw_check, "NodeFanout", FakeFanout)
    FakeFanout.calls, FakeFanout.closed = [], False
    return route_verify.ActionModule(mock.MagicMock(), mock.MagicMock(), mock.MagicMock(),
                                     mock.MagicMock(), mock.MagicMock(), mock.MagicMock())


TASK_VARS = {"hostvars": {"a": {}, "b": {}, "c": {}}}


def test_a_late_peer_route_is_waited_for_and_only_that_node_is_checked_again(action):
    FakeFanout.script = {"a": [listing("a", ["c"]), listing("a", ["c"]), listing("a", ["b", "c"])],
                         "b": [listing("b", ["a", "c"])], "c": [listing("c", ["a", "b"])]}
    res = action.check_nodes(args(settle_timeout=5), TASK_VARS, {})
    assert not res.get("failed") and res["ok"]
    assert [(r["item"], r["attempts"]) for r in res["results"]] == [("a", 3), ("b", 1), ("c", 1)]
    assert FakeFanout.calls == [["a", "b", "c"], ["a"], ["a"]]
    assert FakeFanout.closed


def test_a_route_that_never_comes_fails_after_the_settle_timeout_naming_node_and_cidr(action):
    FakeFanout.script = {"a": [listing("a", ["c"])], "b": [listing("b", ["a", "c"])],
                         "c": [listing("c", ["a", "b"])]}
    t0 = time.monotonic()
    res = action.check_nodes(args(settle_timeout=0.3), TASK_VARS, {})
    assert time.monotonic() - t0 >= 0.3
    assert res["failed"] and not res["ok"]
    a = res["results"][0]
    assert a["failed"] and a["attempts"] > 2
    assert "peer_pod_route: expected 172.25.1.0/24 via 172.25.1.0 dev flannel.1 onlink" in a["msg"]
    assert res["msg"].startswith("route_verify failed on 1 of 3 nodes: a: 1 network check(s)")


def test_any_other_violation_is_final_at_once(action):
    FakeFanout.script = {n: [listing(n, [p for p in CIDRS if p != n])] for n in CIDRS}
    res = action.check_nodes(args(settle_timeout=30, vpn_cidr="10.20.0.0/24"), TASK_VARS, {})
    assert res["failed"] and [r["attempts"] for r in res["results"]] == [1, 1, 1]
    assert all("vpn_interface_exists" in r["msg"] for r in res["results"])
    assert FakeFanout.calls == [["a", "b", "c"]]


def test_an_unanswering_node_is_reported_and_the_others_checked(action):
    FakeFanout.script = {"a": [listing("a", ["b", "c"])],
                         "b": [NodeError("ssh: connect to host 10.2.0.11 port 22: Connection "
                                         "refused", unreachable=True)],
                         "c": [listing("c", ["a", "b"])]}
    res = action.check_nodes(args(fail_on_unreachable=False, routes_for=["c"]), TASK_VARS, {})
    assert not res.get("failed") and not res["ok"]
    b = res["results"][1]
    assert b["ssh_unreachable"] and "Connection refused" in b["msg"] and "unreachable" not in b
    assert res["results"][0]["ok"] and res["results"][2]["ok"]
    assert "routes" not in res["results"][0]["network"]
    assert res["results"][2]["network"]["routes"][0]["dst"] == "default"
    strict = action.check_nodes(args(), TASK_VARS, {})
    assert strict["failed"] and "b: did not answer over SSH: ssh: connect to host" in strict["msg"]


def test_a_node_not_in_the_inventory_is_refused_before_any_command(action):
    res = action.check_nodes(args(nodes=["a", "x", "y"]), TASK_VARS, {})
    assert res["failed"] and "nodes: x, y are not in the inventory" in res["msg"]
    assert FakeFanout.calls == []
