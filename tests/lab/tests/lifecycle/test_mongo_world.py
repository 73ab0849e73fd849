"""The move world's MongoDB: the old cluster's replica set as a StatefulSet behind per-member
internal load balancers, the new cluster's empty members, the api writing with w:majority and
retryable writes, and the write probe that counts lost writes (tested by losing some).

Like the lifecycle tests, this brings its own lab up and down from the host.
"""

import json
import os
import subprocess
import time

import pytest

from cloudhop_lab import cli, fixture
from cloudhop_lab.dataplane.netns import ns_name

from .test_lifecycle import lab, lab_processes
from .test_worlds import in_lab, link, probe_summary
from ..integration.test_mongo_double import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")
OLD = fixture.mongo_hosts(fixture.DEFAULTS, "vsphere")
NEW = fixture.mongo_hosts(fixture.DEFAULTS, "aws")

MEMBERS = r"""
import json, os
from kubernetes import client, config
core = client.CoreV1Api(config.new_client_from_config(os.environ[%(var)r]))
pods = {p.metadata.name: {"uid": p.metadata.uid, "ready": any(
            c.type == "Ready" and c.status == "True" for c in p.status.conditions or []),
            "claim": p.spec.volumes[0].persistent_volume_claim.claim_name
            if p.spec.volumes and p.spec.volumes[0].persistent_volume_claim else None}
        for p in core.list_namespaced_pod("shop", label_selector="app=mongo").items}
lbs = {s.metadata.name: [i.ip for i in (s.status.load_balancer.ingress or [])]
       for s in core.list_namespaced_service("shop").items if s.spec.type == "LoadBalancer"}
pvcs = {c.metadata.name: [c.status.phase, c.spec.volume_name]
        for c in core.list_namespaced_persistent_volume_claim("shop").items}
print(json.dumps({"pods": pods, "lbs": lbs, "pvcs": pvcs}))
"""

MONGO = r"""
import json, sys, pymongo
out = {}
def direct(host, **kw):
    return pymongo.MongoClient(host, directConnection=True, serverSelectionTimeoutMS=3000, **kw)
%s
print(json.dumps(out, default=str))
"""


def mongo(code, timeout=60):
    return in_lab(MONGO % code, timeout=timeout)


def members(var="CLH_USER_KUBECONFIG"):
    return in_lab(MEMBERS % {"var": var})


def all_ready(out, count=3):
    """The members' listing when ``count`` pods are all ready, else None."""
    pods = out["pods"]
    return out if len(pods) == count and all(p["ready"] for p in pods.values()) else None


API_PODS = r"""
import json, os
from kubernetes import client, config
core = client.CoreV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
print(json.dumps([p.spec.containers[0].env[0].value for p in core.list_namespaced_pod(
    "shop", label_selector="app=api").items if not p.metadata.deletion_timestamp]))
"""


def wait(pred, timeout, step=0.5):
    return wait_for(pred, timeout, step)


def states():
    return mongo(r"""
st = pymongo.MongoClient(%r, replicaSet="rs0", serverSelectionTimeoutMS=20000).admin.command(
    "replSetGetStatus")
out.update({m["name"]: m["stateStr"] for m in st["members"]})
""" % OLD)


def primary():
    return next((h for h, s in states().items() if s == "PRIMARY"), None)


def other_primary(cut):
    """A primary other than ``cut``, with ``cut`` no longer primary in its view."""
    seen = states()
    return seen.get(cut) != "PRIMARY" and "PRIMARY" in seen.values()


def replaced(out, name, uid):
    """The listing once pod ``name`` is back, ready, as a new pod (not ``uid``)."""
    pod = out["pods"].get(name) or {}
    return out if pod.get("ready") and pod["uid"] != uid else None


def pod_ns(uid):
    return ns_name("p-" + uid[:12])


def iptables(ns, *args):
    subprocess.run(["ip", "netns", "exec", ns, "iptables", *args], check=True, timeout=10)


def partition(pods, cut):
    """Cut member ``cut`` (a host) off from the other members, both ways, in the pods' own
    namespaces (each member reaches the others through their load balancers' addresses);
    the app's pods still reach every member."""
    for i, host in enumerate(OLD):
        ns = pod_ns(pods["mongo-%d" % i]["uid"])
        for other in ([h for h in OLD if h != cut] if host == cut else [cut]):
            iptables(ns, "-A", "OUTPUT", "-d", other.split(":")[0], "-p", "tcp", "--dport",
                     "27017", "-m", "comment", "--comment", "cloudhop-test", "-j", "DROP")


def heal(pods):
    for i in range(len(OLD)):
        ns = pod_ns(pods["mongo-%d" % i]["uid"])
        while subprocess.run(["ip", "netns", "exec", ns, "iptables", "-D", "OUTPUT", "-d",
                              "0.0.0.0/0", "-m", "comment", "--comment", "cloudhop-test",
                              "-j", "DROP"], check=False, capture_output=True).returncode == 0:
            pass
        out = subprocess.run(["ip", "netns", "exec", ns, "iptables-save"], check=False,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "cloudhop-test" in line and line.startswith("-A "):
                subprocess.run(["ip", "netns", "exec", ns, "iptables", "-D"] +
                               line.split()[1:], check=False)


def set_api_uri(uri):
    in_lab(r"""
import json, os
from kubernetes import client, config
apps = client.AppsV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
apps.patch_namespaced_deployment("api", "shop", {"spec": {"template": {"spec": {"containers": [
    {"name": "echo", "env": [{"name": "MONGODB_URI", "value": %r}]}]}}}})
print("{}")
""" % uri)


@pytest.mark.timeout(900)
def test_replica_set_in_the_move_world_app_writes_and_the_write_probe_counts_lost_writes():
    lab("up", "--world", "move")
    try:
        info = json.loads(lab("mongo", "wait", "--timeout", "120").stdout)
        assert info["ready"] and info["old"] == OLD and info["new"] == NEW
        # the StatefulSet's members: a bound claim each, and their internal load balancers on
        # the node network at the addresses of the member configuration
        old = wait(lambda: all_ready(members()), 60)
        assert sorted(old["pods"]) == ["mongo-0", "mongo-1", "mongo-2"]
        assert {n: v[0] for n, v in old["pvcs"].items()} == {
            "data-mongo-%d" % i: "Bound" for i in range(3)}
        assert old["lbs"] == {"mongo-%d" % i: [OLD[i].split(":")[0]] for i in range(3)}
        assert sorted(states().values()) == ["PRIMARY", "SECONDARY", "SECONDARY"]
        cfg = mongo("out['cfg'] = direct(%r).admin.command('replSetGetConfig')['config']"
                    % OLD[0])["cfg"]
        assert [m["host"] for m in cfg["members"]] == OLD
        assert cfg["settings"]["electionTimeoutMillis"] == 10000  # the manual's default

        # the new cluster's members run, empty and without a config, reachable from the old
        # members' pods only over the link
        new = wait(lambda: all_ready(members("CLH_NEW_KUBECONFIG")), 90)
        assert new["lbs"] == {"mongo-%d" % i: [NEW[i].split(":")[0]] for i in range(3)}
        hello = mongo("out.update(direct(%r).admin.command('hello'))" % NEW[0])
        assert hello["info"] == "Does not have a valid replica set config" and "setName" not in hello
        reach = r"""
import json, socket
try:
    socket.create_connection((%r, 27017), timeout=2).close(); print(json.dumps(True))
except OSError:
    print(json.dumps(False))
""" % NEW[0].split(":")[0]
        from_pod = pod_ns(old["pods"]["mongo-0"]["uid"])

        def reaches():
            proc = subprocess.run(["ip", "netns", "exec", from_pod, "python3", "-c", reach],
                                  capture_output=True, text=True, timeout=30, check=True)
            return json.loads(proc.stdout)
        assert reaches() is False
        link("up", "vsphere", "aws")
        assert reaches() is True
        link("down", "vsphere", "aws")

        # the app writes through the load balancer: w:majority and retryable writes carry it
        # through a step-down without a failed or lost write
        lab("probe", "start", "--name", "w", "--writes", "--rate", "20")
        time.sleep(4)
        before = primary()
        mongo("direct(%r).admin.command('replSetStepDown', 30)" % before)
        assert wait(lambda: primary() not in (None, before), 30)
        time.sleep(4)
        summary = json.loads(lab("probe", "stop", "--name", "w").stdout)
        assert summary["mode"] == "writes" and summary["acknowledged"] > 100
        assert summary["failed"] == 0 and summary["lost"] == 0, summary
        per_pod = mongo(r"""
c = pymongo.MongoClient(%r, replicaSet="rs0", serverSelectionTimeoutMS=20000)
out["n"] = c.shop.orders.count_documents({})
""" % OLD)
        assert per_pod["n"] >= summary["acknowledged"]

        # w:1 (a URI option of the app) and a partition of the primary from the other
        # members: the writes it acknowledged alone are rolled back when it rejoins, and the
        # probe counts them lost
        set_api_uri(fixture.mongo_uri(fixture.DEFAULTS).replace("w=majority", "w=1"))
        lab("wait-app", "--host", "api.example.test")
        assert wait(lambda: [u for u in in_lab(API_PODS) if "w=1" in u] == in_lab(API_PODS) and
                    len(in_lab(API_PODS)) == 2, 90)
        old = members()
        cut = primary()
        lab("probe", "start", "--name", "lost", "--writes", "--rate", "20")
        time.sleep(2)
        partition(old["pods"], cut)
        try:
            assert wait(lambda: other_primary(cut), 60), "no new primary after the partition"
            time.sleep(2)
        finally:
            heal(old["pods"])
        assert wait(lambda: states().get(cut) == "SECONDARY", 60)
        time.sleep(2)
        lost = json.loads(lab("probe", "stop", "--name", "lost").stdout)
        assert lost["lost"] > 0 and lost["acknowledged"] > lost["lost"], lost
        assert len(lost["lost_ids"]) == min(20, lost["lost"])
        assert probe_summary("lost")["lost"] == lost["lost"]
        rollback = os.path.join(cli.lab_dir(), "volumes", old["pvcs"]["data-mongo-%d" % OLD.index(
            cut)][1], "rollback")
        assert os.path.isdir(rollback) and os.listdir(rollback)  # mongod keeps them there

        # a member's pod deleted: the StatefulSet brings it back with the same claim and data
        victim = "mongo-%d" % OLD.index(primary())
        in_lab(r"""
import os
from kubernetes import client, config
client.CoreV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"])
                 ).delete_namespaced_pod(%r, "shop")
print("{}")
""" % victim)
        back = wait(lambda: replaced(members(), victim, old["pods"][victim]["uid"]), 120)
        assert back and back["pvcs"] == old["pvcs"]
        assert wait(lambda: sorted(states().values()) == ["PRIMARY", "SECONDARY", "SECONDARY"],
                    60)
    finally:
        lab("probe", "stop", "--name", "w", check=False)
        lab("probe", "stop", "--name", "lost", check=False)
        lab("down")
    assert cli.lab_namespaces() == []
    assert not lab_processes()
