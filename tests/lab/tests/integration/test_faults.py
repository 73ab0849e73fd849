"""API faults met by the collection's modules, injected in the lab's seed API server.

- A concurrent writer changes the Cluster between the module's read and its write: the write
  carries the resourceVersion it was computed from, so the server answers 409 Conflict (no lost
  update); the module reads again, redoes the change and says so in one warning line. A writer
  that never stops makes the module fail clearly, having written nothing.
- The API answers 503 for a while: retried with backoff, then passes with one warning line; an
  outage longer than the retries fails, bounded in time, with every outcome in the message.
- A node refuses SSH during preflight's route check: every other node is still checked, then
  the run stops naming the node and the reason, before any write.
"""

import json
import os
import re
import subprocess
import time

import pytest
import yaml

from .conftest import LAB
from cloudhop_lab.dataplane.netns import ns_name

NODE_NS = ns_name("n-")  # this lab instance's node namespaces

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
ANNOTATION = "lab.cloudhop.io/concurrent-writer"


def cluster_id():
    with open(os.path.join(LAB, "user_clusters.yml"), encoding="utf-8") as fh:
        inv = yaml.safe_load(fh)
    (cid, dummy), = inv["all"]["children"]["user_clusters"]["hosts"].items()
    return cid


def fault(lab_admin, rule=None):
    """Add a rule to the seed API's faults, or (rule None) clear them; returns the cleared
    rules with how many requests each matched."""
    if rule is None:
        return lab_admin({"cmd": "fault", "cluster": "seed", "clear": True})["rules"]
    assert lab_admin({"cmd": "fault", "cluster": "seed", "rule": rule})["ok"]
    return None


def module(module_name, **args):
    """Run one module of the collection on localhost; (result, warnings, seconds)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    t0 = time.monotonic()
    proc = subprocess.run(
        [os.path.join(REPO, ".venv", "bin", "ansible"), "localhost", "-m",
         "cloudhop.k8s_migration." + module_name, "-a", json.dumps(args)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False)
    took = time.monotonic() - t0
    out = proc.stdout
    doc = json.loads(out[out.index("{"):])
    res = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return res, res.get("warnings") or [], took


@pytest.fixture(autouse=True)
def unpaused_afterwards(seed_custom, lab_admin):
    """Whatever a test did, the next one starts with no faults and the Cluster unpaused."""
    yield
    fault(lab_admin)
    seed_custom.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", cluster_id(),
                                            {"spec": {"pause": False, "pauseReason": None}})


def cluster(seed_custom, cid):
    return seed_custom.get_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", cid)


def pause(cid, paused, **extra):
    return module("cluster_pause", kubeconfig=os.environ["CLH_SEED_KUBECONFIG"], cluster=cid,
                  paused=paused, reason="fault test" if paused else None, **extra)


def pause_under_fault(lab_admin, cid, rule):
    """cluster_pause paused=true while a seed API fault rule is in place; (result, warnings,
    seconds, the rule with how many requests it matched)."""
    fault(lab_admin, rule)
    try:
        res, warnings, took = pause(cid, True)
    finally:
        rules = fault(lab_admin)
    return res, warnings, took, rules[0]


def test_a_concurrent_writer_gets_a_reread_not_a_lost_update(seed_custom, seed_audit, lab_admin):
    cid = cluster_id()
    assert not cluster(seed_custom, cid)["spec"].get("pause")
    seed_audit.mark()
    res, warnings, dummy, rule = pause_under_fault(
        lab_admin, cid, {"verb": "patch", "path_contains": "/clusters/" + cid,
                         "concurrent_write": True, "count": 1})
    assert rule.get("matched") == 1
    assert not res.get("failed"), res.get("msg")
    assert res["changed"] and res["conflicts"] == 1
    assert len(warnings) == 1, warnings
    assert "Cluster %s was changed by another writer" % cid in warnings[0]
    assert "409 Conflict" in warnings[0] and "(1 time)" in warnings[0]
    # both writes are in the object: the other writer's and the module's
    obj = cluster(seed_custom, cid)
    assert obj["spec"]["pause"] is True and ANNOTATION in obj["metadata"]["annotations"]
    patches = [r for r in seed_audit.since() if r["method"] == "PATCH" and cid in r["path"]]
    assert [r["code"] for r in patches] == [409, 200]  # refused, then redone on a fresh read
    res, warnings, dummy = pause(cid, False)
    assert res["changed"] and "conflicts" not in res and not warnings
    assert not cluster(seed_custom, cid)["spec"].get("pause")


def test_a_writer_that_never_stops_fails_the_task_with_nothing_written(seed_custom, lab_admin):
    cid = cluster_id()
    res, dummy, dummy2, rule = pause_under_fault(
        lab_admin, cid, {"verb": "patch", "path_contains": "/clusters/" + cid,
                         "concurrent_write": True, "count": 10})
    assert rule["matched"] == 4
    assert res.get("failed")
    assert "Cluster %s was changed by another writer between each read and write, 4 times in " \
        "a row (409 Conflict)" % cid in res["msg"]
    assert "managedFields" in res["msg"]
    assert not cluster(seed_custom, cid)["spec"].get("pause")


def test_an_api_that_fails_for_a_while_is_retried_with_backoff(seed_custom, lab_admin):
    cid = cluster_id()
    res, warnings, took, rule = pause_under_fault(
        lab_admin, cid, {"verb": "get", "path_contains": "/clusters/" + cid, "code": 503,
                         "count": 2})
    assert not res.get("failed"), res.get("msg")
    assert res["changed"], res
    assert res["api_retries"] == rule["matched"] == 2, (res, rule)
    assert len(warnings) == 1 and "2 requests that passed on a retry" in warnings[0]
    assert "HTTP 503" in warnings[0] and "reading Cluster %s" % cid in warnings[0]
    assert took >= 3  # 1 s, then 2 s of backoff
    assert cluster(seed_custom, cid)["spec"]["pause"] is True
    res, dummy, dummy2 = pause(cid, False)
    assert res["changed"] and not cluster(seed_custom, cid)["spec"].get("pause")


def test_an_outage_longer_than_the_retries_fails_in_bounded_time(seed_custom, lab_admin):
    cid = cluster_id()
    res, dummy, took, rule = pause_under_fault(
        lab_admin, cid, {"verb": "get", "path_contains": "/clusters/" + cid, "code": 503,
                         "seconds": 60})
    assert res.get("failed")
    assert rule["matched"] == 5
    assert "reading Cluster %s failed 5 times over 15 s" % cid in res["msg"]
    assert "HTTP 503" in res["msg"] and "run again" in res["msg"]
    assert 15 <= took < 40
    assert not cluster(seed_custom, cid)["spec"].get("pause")


def test_a_node_unreachable_over_ssh_fails_preflight_naming_it(seed_audit, user_audit):
    """One node's sshd refuses connections (the node's own firewall resets port 22, also on
    connections an SSH ControlMaster already holds). The read-only route check still asks
    every node, then fails naming that node and SSH's reason; nothing is written."""
    node = sorted(n[len(NODE_NS):] for n in os.listdir("/run/netns") if n.startswith(NODE_NS))[0]
    netns = NODE_NS + node
    ruleset = ("table inet clh_test_ssh {\n chain input {\n  type filter hook input priority 0;"
               "\n  tcp dport 22 reject with tcp reset\n }\n}\n")
    subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", "-"], input=ruleset, text=True,
                   check=True)
    seed_audit.mark()
    user_audit.mark()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    try:
        proc = subprocess.run(
            [os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
             "-i", os.path.join(LAB, "nodes.cloudhop.yml"),
             "-i", os.path.join(LAB, "user_clusters.yml"),
             os.path.join(REPO, "playbooks", "preflight.yml"), "-v"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    finally:
        subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "table", "inet",
                        "clh_test_ssh"], check=True)
    out = proc.stdout
    assert proc.returncode != 0
    assert re.search(r"1 of 3 nodes did not answer over SSH \(reading its routes and "
                     r"interfaces\): %s: [^;]*(refused|reset|closed)[^;]*; the other nodes "
                     r"were checked" % re.escape(node), out), out[-5000:]
    # the other nodes' route checks ran: their entries in the check's result (-v) hold what they
    # answered; the refusing node's is marked ssh_unreachable
    others = sorted(n[len(NODE_NS):] for n in os.listdir("/run/netns")
                    if n.startswith(NODE_NS))[1:]
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if "Reach every node over SSH" in ln)
    line = next(ln for ln in lines[start:] if ln.startswith("ok: ["))
    entries = {e["item"]: e for e in json.loads(line.split(" => ", 1)[1])["results"]}
    assert entries[node].get("ssh_unreachable") and "refused" in entries[node]["msg"], entries[node]
    for other in others:
        assert entries[other]["network"]["default_route"] and not entries[other].get("ssh_unreachable")
    assert seed_audit.writes() == [] and user_audit.writes() == []


def test_a_ledger_that_another_writer_keeps_changing_fails_naming_the_attempts(
        seed_core, lab_admin):
    """The ledger retries a 409 as every module does (retry_on_conflict): one warning line per
    run, and a writer that never stops fails the task with the number of attempts."""
    cid, name = cluster_id(), "cloudhop-fault-ledger"
    ns = "cluster-" + cid
    ledger = dict(kubeconfig=os.environ["CLH_SEED_KUBECONFIG"], cluster=cid, name=name,
                  phase="preflight")
    try:
        res, dummy, dummy2 = module("migration_ledger", action="start", **ledger)
        assert res["changed"], res.get("msg")
        fault(lab_admin, {"verb": "patch", "path_contains": "/configmaps/" + name,
                          "concurrent_write": True, "count": 1})
        res, warnings, dummy = module("migration_ledger", action="done", **ledger)
        assert fault(lab_admin)[0]["matched"] == 1
        assert res["changed"] and res["phase"]["status"] == "done", res.get("msg")
        assert len(warnings) == 1 and "ledger ConfigMap %s/%s was changed by another writer" % (
            ns, name) in warnings[0] and "(1 time)" in warnings[0]
        fault(lab_admin, {"verb": "patch", "path_contains": "/configmaps/" + name,
                          "concurrent_write": True, "count": 10})
        res, dummy, dummy2 = module("migration_ledger", action="start", reopen=True, **ledger)
        assert fault(lab_admin)[0]["matched"] == 5
        assert res.get("failed")
        assert "between each read and write, 5 times in a row (409 Conflict)" in res["msg"]
        assert res["conflicts"] == 5 and "after_retries" not in res
    finally:
        fault(lab_admin)
        if any(c.metadata.name == name for c in seed_core.list_namespaced_config_map(ns).items):
            seed_core.delete_namespaced_config_map(name, ns)


def test_a_discovery_cache_of_another_server_at_the_same_url_is_read_afresh():
    """The kubernetes client caches API discovery per server URL in the temp directory. Another
    server that answered at the seed's URL (here: the user cluster's cache, copied over the
    seed's, as an SSH tunnel or port-forward reused for the next cluster leaves it) lists
    MachineDeployments; the seed has none. The module reads discovery again and says to point
    kubeconfig at the user cluster, not 'unexpected error: 404'."""
    tmp = os.environ["TMPDIR"]  # tests/lab/run gives each lab its own
    user, seed = os.environ["CLH_USER_KUBECONFIG"], os.environ["CLH_SEED_KUBECONFIG"]

    def caches():
        return {f for f in os.listdir(tmp) if f.startswith("k8srcp-")}

    for old in caches():  # so each server's cache is the file its first module writes
        os.unlink(os.path.join(tmp, old))
    res, dummy, dummy2 = module("machinedeployment", kubeconfig=seed,
                                name="to-migrate-vsphere-node", state="paused")
    assert res.get("failed") and "point kubeconfig at the user cluster" in res["msg"]
    seed_cache = caches()
    res, dummy, dummy2 = module("machinedeployment", kubeconfig=user,
                                name="no-such-md-either", state="paused")
    assert res.get("failed") and "not found" in res["msg"], res["msg"]
    user_cache = caches() - seed_cache
    assert len(seed_cache) == 1 and len(user_cache) == 1, (seed_cache, user_cache)
    seed_cache, user_cache = list(seed_cache), list(user_cache)
    with open(os.path.join(tmp, user_cache[0]), encoding="utf-8") as src, \
            open(os.path.join(tmp, seed_cache[0]), "w", encoding="utf-8") as dst:
        dst.write(src.read())
    res, dummy, dummy2 = module("machinedeployment", kubeconfig=seed,
                                name="to-migrate-vsphere-node", state="paused")
    assert res.get("failed")
    assert "unexpected error" not in res["msg"] and "Traceback" not in json.dumps(res)
    assert "does not serve cluster.k8s.io/v1alpha1 MachineDeployment" in res["msg"]
    assert "point kubeconfig at the user cluster" in res["msg"]
