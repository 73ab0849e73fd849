"""The cluster-to-cluster move (playbooks/move.yml, issue 22) in the lab's move world: what is
built so far. Its preflight records the plan in the move's ledger in the new cluster, writes
nothing else, is skipped once done, writes nothing in check mode, and refuses bad input before
any write, naming the variable or object (proven from both clusters' audit logs). Its MongoDB
join fails clearly when the new members cannot sync (no link), and the same command resumes
once they can, under the app's writes, with none failed or lost."""

import json
import os
import subprocess

import pytest

from cloudhop_lab import cli, fixture

from .test_migration import LAB, REPO, env, in_lab, lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")

LEDGER = r"""
import json, os
from kubernetes import client, config
core = client.CoreV1Api(config.new_client_from_config(os.environ["CLH_NEW_KUBECONFIG"]))
try:
    cm = core.read_namespaced_config_map("cloudhop-move", "shop")
    print(json.dumps({"labels": cm.metadata.labels,
                      "data": {k: json.loads(v) for k, v in (cm.data or {}).items()}}))
except client.exceptions.ApiException as exc:
    print(json.dumps({"status": exc.status}))
"""


def move(*args):
    cmd = [os.path.join(REPO, "tests", "lab", "run"),
           os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
           "-i", os.path.join(LAB, "move"), os.path.join(REPO, "playbooks", "move.yml"),
           *args]
    return subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=600, check=False)


def writes_since(mark):
    return cli.audit("writes", mark)["writes"]


@pytest.mark.timeout(900)
def test_move_preflight_records_the_plan_and_refuses_bad_input_before_any_write():
    lab("up", "--world", "move")
    try:
        lab("mongo", "wait")
        # bad input, each refused before anything is written in either cluster
        bad = [
            (["-e", "cloudhop_move_deployments=web,api"],
             "cloudhop_move_deployments and cloudhop_move_mongodb.new_members are lists"),
            (["-e", json.dumps({"cloudhop_move_deployments": ["web", "checkout"]})],
             "cloudhop_move_deployments: checkout not found in namespace shop of the old "
             "cluster (it has: api, cart, static, web)"),
            (["-e", json.dumps({"cloudhop_move_deployments": ["web", "web"]})],
             "cloudhop_move_deployments: web listed twice"),
            (["-e", "cloudhop_move_namespace=Shop"],
             "cloudhop_move_namespace: Shop is not a namespace name"),
            (["-e", "cloudhop_move_switch_after=0"],
             "cloudhop_move_switch_after: 0 must be more than 0 and at most 1"),
            (["-e", "cloudhop_move_new_kubeconfig=/nowhere/new.kubeconfig"],
             "cloudhop_move_new_kubeconfig: /nowhere/new.kubeconfig is not a file"),
            (["-e", json.dumps({"cloudhop_move_mongodb": dict(
                MONGO, replica_set="rs9")})],
             "10.2.0.200:27017 is a member of replica set rs0; replica_set is rs9"),
            (["-e", json.dumps({"cloudhop_move_mongodb": dict(
                MONGO, new_members=["172.31.0.200"])})],
             "cloudhop_move_mongodb.new_members: 172.31.0.200 - give each as name:port"),
            (["-e", json.dumps({"cloudhop_move_mongodb": dict(
                MONGO, login_host="10.2.0.250")})],
             "reading replica set rs0"),
        ]
        mark = cli.audit("mark")
        for args, message in bad:
            proc = move(*args)
            assert proc.returncode != 0, (args, proc.stdout[-3000:])
            assert message in proc.stdout, (message, proc.stdout[-3000:])
        assert writes_since(mark) == []
        # an object of the same name in the new cluster that differs from what the copy would
        # make: a conflict, named with the field, and nothing written
        in_lab(CONFLICT % "create")
        mark = cli.audit("mark")
        proc = move()
        assert proc.returncode != 0
        assert "ConfigMap shop/shop-settings (data.mode" in proc.stdout, proc.stdout[-3000:]
        assert "Nothing was written" in proc.stdout
        assert writes_since(mark) == []
        in_lab(CONFLICT % "delete")

        # check mode: a dry run, nothing written
        mark = cli.audit("mark")
        proc = move("--check", "--tags", "move_preflight")
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert writes_since(mark) == []
        assert in_lab(LEDGER) == {"status": 404}

        # the real run: the plan in the ledger, and nothing else written
        mark = cli.audit("mark")
        proc = move("--tags", "move_preflight")
        assert proc.returncode == 0, proc.stdout[-4000:]
        writes = writes_since(mark)
        assert writes and all(w["cluster"] == "new" and w["path"].startswith(
            "/api/v1/namespaces/shop/configmaps") for w in writes), writes
        ledger = in_lab(LEDGER)
        assert ledger["labels"]["cloudhop.io/subject"] == "move-shop"
        plan = ledger["data"]["phase.move_preflight"]
        assert plan["status"] == "done"
        facts = plan["facts"]
        # the Deployments that use no database first; the api (MONGODB_URI) last
        assert facts["deployments"] == ["cart", "static", "web", "api"]
        assert facts["switch_after"] == 2
        assert facts["hosts"] == sorted(fixture.SHOP_HOSTS) and facts["tls"] == ["shop-tls"]
        mongo = facts["mongodb"]
        assert mongo["old_members"] == fixture.mongo_hosts(fixture.DEFAULTS, "vsphere")
        assert mongo["new_members"] == fixture.mongo_hosts(fixture.DEFAULTS, "aws")
        assert mongo["primary_before"] in mongo["old_members"]

        # again: the ledger says done, the phase is skipped
        mark = cli.audit("mark")
        proc = move("--tags", "move_preflight")
        assert proc.returncode == 0 and "is already done" in proc.stdout, proc.stdout[-3000:]
        assert writes_since(mark) == []

        # the join without the link: the new members cannot sync; the phase waits, then fails
        # naming the member and its state; the member added stays (no vote, no priority)
        proc = move("--tags", "move_db_join", "-e", "move_db_join_timeout=12")
        assert proc.returncode != 0
        new = fixture.mongo_hosts(fixture.DEFAULTS, "aws")
        assert "Replica set rs0 did not settle within 12 s" in proc.stdout, proc.stdout[-3000:]
        assert "%s is (not reachable/healthy)" % new[0] in proc.stdout, proc.stdout[-3000:]
        # with the link, the same command resumes: the other two join, one at a time, under
        # the app's writes (w:majority), none failed or lost
        lab("link", "up", "vsphere", "aws")
        lab("probe", "start", "--name", "join", "--writes", "--rate", "10")
        proc = move()
        summary = json.loads(lab("probe", "stop", "--name", "join").stdout)
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert summary["failed"] == 0 and summary["lost"] == 0 and summary["acknowledged"] > 0
        rs = in_lab(RS % fixture.mongo_hosts(fixture.DEFAULTS, "vsphere")[0])
        assert [(m["host"], m["priority"], m["votes"]) for m in rs["config"]][3:] == [
            (h, 0, 0) for h in new]
        assert sorted(rs["states"].values()) == ["PRIMARY"] + ["SECONDARY"] * 5
        ledger = in_lab(LEDGER)["data"]
        assert ledger["phase.move_db_join"]["status"] == "done"
        assert ledger["phase.move_db_join"]["attempts"] == 2
        assert ledger["phase.move_db_join"]["facts"]["joined"] == new
    finally:
        lab("probe", "stop", "--name", "join")
        lab("down")


RS = r"""
import json, pymongo
c = pymongo.MongoClient(%r, replicaSet="rs0", serverSelectionTimeoutMS=20000)
cfg = c.admin.command("replSetGetConfig")["config"]
st = c.admin.command("replSetGetStatus")
print(json.dumps({"config": [{k: m[k] for k in ("host", "priority", "votes")}
                             for m in cfg["members"]],
                  "states": {m["name"]: m["stateStr"] for m in st["members"]}}))
"""

MONGO = {"replica_set": "rs0", "login_host": "10.2.0.200", "login_port": 27017,
         "new_members": fixture.mongo_hosts(fixture.DEFAULTS, "aws")}

CONFLICT = r"""
import json, os
from kubernetes import client, config
old = client.CoreV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
new = client.CoreV1Api(config.new_client_from_config(os.environ["CLH_NEW_KUBECONFIG"]))
apps = client.AppsV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
if "%s" == "create":
    for api, data in ((old, "a"), (new, "b")):
        api.create_namespaced_config_map("shop", {"metadata": {"name": "shop-settings"},
                                                  "data": {"mode": data}})
    apps.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"spec": {
        "volumes": [{"name": "settings", "configMap": {"name": "shop-settings"}}]}}}})
else:
    apps.patch_namespaced_deployment("web", "shop", {"spec": {"template": {"spec": {
        "volumes": None}}}})
    for api in (old, new):
        api.delete_namespaced_config_map("shop-settings", "shop")
print("{}")
"""
