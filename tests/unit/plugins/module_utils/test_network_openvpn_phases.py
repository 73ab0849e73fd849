# -*- coding: utf-8 -*-
"""The migration plan's pure logic: CIDR conflicts, VPN arguments, MTU budget, probe figures."""

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import network, openvpn, workloads
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import phases as phase_utils
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

LAB = {"vsphere nodes": "10.2.0.0/17", "aws nodes": "172.31.0.0/16", "vpn": "10.20.0.0/24",
       "pods": "172.25.0.0/16", "services": "10.240.16.0/20"}


def test_the_seed_documents_plan_has_no_conflicts():
    assert network.cidr_conflicts(LAB) == []


def test_a_vpn_inside_a_cloud_network_is_named_with_both_networks():
    bad = dict(LAB, vpn="172.31.5.0/24")
    assert network.cidr_conflicts(bad) == ["aws nodes 172.31.0.0/16 overlaps vpn 172.31.5.0/24"]


def test_adjacent_networks_do_not_overlap_and_unknown_ones_are_ignored():
    assert network.cidr_conflicts({"a": "10.0.0.0/24", "b": "10.0.1.0/24", "c": None}) == []


def test_a_bad_cidr_names_its_label():
    with pytest.raises(MigrationError, match="pods: '172.25.0.0/33' is not a CIDR"):
        network.cidr_conflicts({"pods": "172.25.0.0/33"})


def test_vpn_network_from_the_server_arguments():
    args = ["--proto", "tcp", "--server", "10.20.0.0", "255.255.255.0", "--dh", "none"]
    assert openvpn.openvpn_server_cidr(args) == "10.20.0.0/24"
    with pytest.raises(MigrationError, match="cloudhop_vpn_cidr"):
        openvpn.openvpn_server_cidr(["--proto", "tcp"])


def test_extra_server_flags_are_added_once_in_order():
    args = ["--mode", "server", "--ping", "5"]
    new = openvpn.openvpn_server_args(args, ["--client-to-client", "--tcp-nodelay"])
    assert new == args + ["--client-to-client", "--tcp-nodelay"]
    assert openvpn.openvpn_server_args(new, ["--client-to-client"]) == new
    assert args == ["--mode", "server", "--ping", "5"]  # input untouched


SERVER_ARGS = ["--mode", "server", "--server", "10.20.0.0", "255.255.255.0",
               "--route", "172.25.0.0", "255.255.0.0", "--push", "route 172.25.0.0 255.255.0.0",
               "--route", "10.240.16.0", "255.255.240.0",
               "--push", "route 10.240.16.0 255.255.240.0", "--push", "ping 5"]
CLIENT = [{"name": "openvpn-client", "command": ["/usr/sbin/openvpn"],
           "args": ["--config", "/etc/openvpn/config/config"]},
          {"name": "dnat-controller", "command": ["/dnat-controller"], "args": ["-node=x"]}]


def test_node_clients_ignore_the_routes_pushed_for_the_in_cluster_client():
    assert openvpn.openvpn_pushed_routes(SERVER_ARGS) == ["route 172.25.0.0 255.255.0.0",
                                                          "route 10.240.16.0 255.255.240.0"]
    out = openvpn.openvpn_node_containers(CLIENT, SERVER_ARGS)
    assert out[0]["args"] == ["--config", "/etc/openvpn/config/config",
                              "--pull-filter", "ignore", "route 172.25.0.0 255.255.0.0",
                              "--pull-filter", "ignore", "route 10.240.16.0 255.255.240.0",
                              "--connect-retry", "1", "5"]
    assert out[1]["args"] == ["-node=x"]  # not an OpenVPN process
    assert all(c["securityContext"]["privileged"] is True for c in out)
    assert "securityContext" not in CLIENT[0]  # input untouched
    # idempotent: the DaemonSet spec of a second run is the same
    assert openvpn.openvpn_node_containers(out, SERVER_ARGS) == out


def test_node_clients_are_ready_while_their_tunnel_has_an_address():
    out = openvpn.openvpn_node_containers(CLIENT, SERVER_ARGS, vpn_interface="kube")
    probe = out[0]["readinessProbe"]
    assert probe["exec"]["command"] == ["sh", "-c", "ip -4 -o addr show dev kube | grep -q inet"]
    assert "readinessProbe" not in out[1]  # not the OpenVPN process
    assert "readinessProbe" not in openvpn.openvpn_node_containers(CLIENT, SERVER_ARGS)[0]
    assert openvpn.openvpn_node_containers(out, SERVER_ARGS, vpn_interface="kube") == out


def test_node_clients_retry_a_lost_server_every_1_to_5_s():
    def client(args):
        return [dict(CLIENT[0], args=args)]
    out = openvpn.openvpn_node_containers(client(["--connect-retry", "2", "--verb", "3"]), [])
    assert out[0]["args"] == ["--connect-retry", "1", "5", "--verb", "3"]
    out = openvpn.openvpn_node_containers(client(["--connect-retry", "2", "60"]), [])
    assert out[0]["args"] == ["--connect-retry", "1", "5"]


def test_node_clients_run_the_node_hooks_with_the_pod_cidr():
    out = openvpn.openvpn_node_containers(CLIENT, SERVER_ARGS, pod_cidr="172.25.0.0/16")
    args = out[0]["args"]
    assert args[args.index("--script-security") + 1] == "2"
    assert args[args.index("--up") + 1] == "/bin/sh /etc/cloudhop/node-hooks.sh up 172.25.0.0/16"
    assert args[args.index("--down") + 1] == \
        "/bin/sh /etc/cloudhop/node-hooks.sh down 172.25.0.0/16"
    assert args.count("--up") == 1 and args[:2] == ["--config", "/etc/openvpn/config/config"]
    assert {"name": "cloudhop-node-hooks", "mountPath": "/etc/cloudhop", "readOnly": True} in \
        out[0]["volumeMounts"]
    assert "volumeMounts" not in out[1] or not any(
        m["name"] == "cloudhop-node-hooks" for m in out[1]["volumeMounts"])
    # idempotent, and a changed pod CIDR replaces the hooks' arguments instead of adding more
    assert openvpn.openvpn_node_containers(out, SERVER_ARGS, pod_cidr="172.25.0.0/16") == out
    again = openvpn.openvpn_node_containers(out, SERVER_ARGS, pod_cidr="10.100.0.0/16")[0]
    assert again["args"].count("--up") == 1 and again["args"][-5] == "--down"
    assert again["args"][again["args"].index("--up") + 1].endswith("up 10.100.0.0/16")
    assert len([m for m in again["volumeMounts"] if m["name"] == "cloudhop-node-hooks"]) == 1
    with pytest.raises(MigrationError, match="pod CIDR .cloudhop_pod_cidr.: 'x' is not a CIDR"):
        openvpn.openvpn_node_containers(CLIENT, SERVER_ARGS, pod_cidr="x")


def test_node_volumes_add_the_hooks_configmap_once():
    base = [{"name": "certs", "secret": {"secretName": "openvpn-client-certificates"}}]
    out = openvpn.openvpn_node_volumes(base)
    assert out[0] == base[0] and out[1]["configMap"]["name"] == "cloudhop-vpn-node-hooks"
    assert openvpn.openvpn_node_volumes(out) == out
    assert openvpn.openvpn_node_volumes(None)[0]["name"] == "cloudhop-node-hooks"


def test_node_client_needs_an_openvpn_container():
    with pytest.raises(MigrationError, match="runs openvpn"):
        openvpn.openvpn_node_containers([CLIENT[1]], SERVER_ARGS)
    with pytest.raises(MigrationError, match="no containers"):
        openvpn.openvpn_node_containers([], SERVER_ARGS)


def test_mtu_budget_of_the_seed_document():
    out = network.mtu_budget(1500, 1500, 1450)
    assert out["flannel_mtu"] == 1450 and out["problems"] == []
    out = network.mtu_budget(1500, 1400, 1450)
    assert out["flannel_mtu"] == 1350
    assert "veth_mtu 1450 is larger than flannel.1's MTU over the tunnel (1350)" in \
        out["problems"][0]


def test_probe_stats_per_phase_window():
    recs = [{"t": 10.0, "ok": True, "ms": 5}, {"t": 10.5, "ok": False, "ms": None},
            {"t": 11.0, "ok": False, "ms": None}, {"t": 11.8, "ok": True, "ms": 7},
            {"t": 12.0, "ok": True, "ms": 9}, {"t": 20.0, "ok": True, "ms": 4}]
    out = phase_utils.probe_phase_stats(recs, [{"name": "a", "started": 10.0, "finished": 12.0},
                                        {"name": "b", "started": 19.0, "finished": 21.0},
                                        {"name": "c", "started": 30.0, "finished": None}])
    assert out[0] == {"phase": "a", "requests": 5, "failed": 2, "p50_ms": 7, "p99_ms": 9,
                      "longest_gap_s": 1.8}
    assert out[1]["requests"] == 1 and out[1]["longest_gap_s"] == 1.0
    assert len(out) == 1 + 1


def test_probe_stats_take_ledger_times_and_http_status():
    recs = [{"t": 1795000000.5, "status": 200, "ms": 3}, {"t": 1795000001.0, "status": 503}]
    out = phase_utils.probe_phase_stats(recs, [{"name": "x", "started": "2026-11-18T11:06:40Z",
                                        "finished": "2026-11-18T11:06:42Z"}])
    assert phase_utils.epoch("2026-11-18T11:06:40Z") == 1795000000.0
    assert out[0]["requests"] == 2 and out[0]["failed"] == 1 and out[0]["p50_ms"] == 3
    with pytest.raises(MigrationError, match="is not a time"):
        phase_utils.epoch("yesterday")


def test_unavailable_workloads_compare_available_with_wanted_replicas():
    def dep(name, want, have, kind="Deployment", gen=1, seen=1):
        field = "readyReplicas" if kind == "StatefulSet" else "availableReplicas"
        status = {"observedGeneration": seen}
        if have is not None:
            status[field] = have
        return {"kind": kind, "metadata": {"namespace": "echo", "name": name, "generation": gen},
                "spec": {"replicas": want}, "status": status}
    assert workloads.unavailable_workloads([dep("a", 3, 3), dep("zero", 0, None)]) == []
    assert workloads.unavailable_workloads([dep("a", 3, 2), dep("db", 3, 3, "StatefulSet"),
                                            dep("new", 1, None), dep("rolled", 1, 1, gen=2)]) == \
        ["echo/a (2/3)", "echo/new (0/1)", "echo/rolled (1/1)"]


def test_phase_windows_in_migration_order_with_durations():
    phases = {"seed_vpn": {"status": "started", "started": "2026-11-18T11:06:50Z"},
              "preflight": {"status": "done", "started": "2026-11-18T11:06:40Z",
                            "finished": "2026-11-18T11:06:45Z", "attempts": 1}}
    out = phase_utils.phase_windows(phases)
    assert [w["name"] for w in out] == ["preflight", "seed_vpn"]
    assert out[0]["seconds"] == 5.0 and out[1]["seconds"] is None


def test_phase_windows_of_the_move_in_the_moves_order():
    phases = {name: {"status": "done", "started": "2026-12-05T19:00:00Z",
                     "finished": "2026-12-05T19:00:10Z"}
              for name in ("move_deployments_rest", "move_dns", "move_dns_prepare",
                           "move_preflight", "preflight")}
    out = phase_utils.phase_windows(phases, "move")
    # the move's phases only, the TTL lowered right after the preflight (days before)
    assert [w["name"] for w in out] == ["move_preflight", "move_dns_prepare", "move_dns",
                                        "move_deployments_rest"]


def _pod(name, ns="echo", deleting=False, **labels):
    meta = {"name": name, "namespace": ns, "labels": labels}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    return {"metadata": meta}


def _pdb(name, allowed, ns="echo", **spec):
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec,
            "status": {"disruptionsAllowed": allowed, "currentHealthy": 3, "desiredHealthy": 3,
                       "expectedPods": 3}}


@pytest.mark.parametrize("selector,labels,want", [
    ({}, {"a": "1"}, True),  # policy/v1: an empty selector selects every pod
    (None, {"a": "1"}, False),
    ({"matchLabels": {"app": "echo"}}, {"app": "echo", "x": "y"}, True),
    ({"matchLabels": {"app": "echo"}}, {"app": "other"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
     {"tier": "web"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]},
     {"tier": "web"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
])
def test_selector_matches(selector, labels, want):
    assert workloads.selector_matches(selector, labels) is want


def test_blocking_pdbs_names_only_budgets_that_hold_a_pod_now():
    pods = [_pod("echo-1", app="echo"), _pod("web-1", ns="web", app="web"),
            _pod("gone-1", deleting=True, app="gone")]
    pdbs = [_pdb("echo", 0, minAvailable=3, selector={"matchLabels": {"app": "echo"}}),
            _pdb("roomy", 1, minAvailable=2, selector={"matchLabels": {"app": "echo"}}),
            _pdb("elsewhere", 0, ns="other", maxUnavailable=0, selector={}),
            _pdb("gone", 0, maxUnavailable=0, selector={"matchLabels": {"app": "gone"}})]
    assert workloads.blocking_pdbs(pdbs, pods) == [
        "echo/echo (minAvailable 3: 3 of 3 pods healthy, 3 needed, 0 disruptions allowed; "
        "holds echo-1)"]
    assert workloads.blocking_pdbs(pdbs, []) == []


def test_fleet_summary_tells_finished_failed_running_stopped_and_not_started():
    from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.phases import (
        PHASES, fleet_summary)
    t = "2026-12-06T10:%02d:00Z"
    done = {p: {"status": "done", "started": t % i, "finished": t % (i + 1), "attempts": 1}
            for i, p in enumerate(PHASES)}
    done["report"]["facts"] = {"report": "/r/a/migration-report.md",
                               "probe": [{"phase": "cleanup", "requests": 10, "failed": 0}]}
    failed = {"preflight": done["preflight"], "workers_pause": {
        "status": "failed", "started": t % 1, "finished": t % 3, "message": "a PDB holds"}}
    running = {"preflight": done["preflight"], "workers_pause": {
        "status": "started", "started": t % 1}}
    stopped = {"preflight": done["preflight"], "workers_pause": {"status": "pending"}}
    out = fleet_summary({"e": running, "a": done, "b": failed, "c": {}, "d": None,
                         "f": stopped})
    by_id = {c["id"]: c for c in out["clusters"]}
    assert [c["id"] for c in out["clusters"]] == ["a", "b", "c", "d", "e", "f"]
    assert out["counts"] == {"finished": 1, "failed": 1, "not started": 2, "running": 1,
                             "stopped": 1}
    assert by_id["a"]["phase"] == "report" and by_id["a"]["seconds"] == len(PHASES) * 60
    assert by_id["a"]["done"] == by_id["a"]["phases"] == len(PHASES)
    assert by_id["a"]["report"] == "/r/a/migration-report.md" and by_id["a"]["probe"]
    assert by_id["b"]["phase"] == "workers_pause" and by_id["b"]["message"] == "a PDB holds"
    assert by_id["b"]["seconds"] == 180 and by_id["b"]["done"] == 1
    assert by_id["e"]["phase"] == "workers_pause" and by_id["e"]["message"] is None
    assert by_id["f"]["result"] == "stopped" and by_id["f"]["phase"] == "preflight"
    assert by_id["c"]["phase"] is None and by_id["c"]["seconds"] is None
    assert out["as_of"] == t % len(PHASES)  # the newest time recorded
    assert fleet_summary({"x": {}})["as_of"] is None


def test_fleet_wave_finishes_clusters_under_way_before_it_begins_others():
    import pytest  # pylint: disable=import-outside-toplevel

    from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.phases import (
        PHASES, fleet_wave)
    t = "2026-12-06T10:%02d:00Z"
    done = {p: {"status": "done", "started": t % i, "finished": t % (i + 1)}
            for i, p in enumerate(PHASES)}
    failed = {"preflight": done["preflight"], "workers_pause": {
        "status": "failed", "started": t % 1, "finished": t % 2, "message": "a PDB holds"}}
    stopped = {"preflight": done["preflight"]}
    # inventory order: two fresh ones, a finished one, a failed one, another fresh, a stopped
    ledgers = {"c1": {}, "c2": None, "c3": done, "c4": failed, "c5": {}, "c6": stopped}
    out = fleet_wave(ledgers, 2)
    assert out == {"wave": ["c4", "c6"], "waiting": ["c1", "c2", "c5"], "finished": ["c3"]}
    out = fleet_wave(ledgers, 3)
    assert out["wave"] == ["c4", "c6", "c1"] and out["waiting"] == ["c2", "c5"]
    # 0: every cluster not finished; a size larger than the fleet likewise
    assert fleet_wave(ledgers, 0)["wave"] == ["c4", "c6", "c1", "c2", "c5"]
    assert fleet_wave(ledgers, "10")["wave"] == ["c4", "c6", "c1", "c2", "c5"]
    assert fleet_wave({"c3": done}, 1) == {"wave": [], "waiting": [], "finished": ["c3"]}
    for bad in (-1, "two", None):
        with pytest.raises(ValueError, match="cloudhop_fleet_batch"):
            fleet_wave(ledgers, bad)
