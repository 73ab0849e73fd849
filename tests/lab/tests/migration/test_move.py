"""The cluster-to-cluster move (playbooks/move.yml, issue 22) in the lab's move world. Its
preflight records the plan in the move's ledger in the new cluster, writes nothing else, is
skipped once done, writes nothing in check mode, and refuses bad input before
any write, naming the variable or object (proven from both clusters' audit logs). Its MongoDB
join fails clearly when the new members cannot sync (no link), and the same command resumes
once they can, under the app's writes, with none failed or lost. The whole move under three
probes (end to end); the move SIGKILLed in every phase, the link lost, a PodDisruptionBudget
holding a scale-down, and the rollback (killed too) - each resumed by the same command."""

import json
import os
import random
import re
import signal
import subprocess

import pytest

from cloudhop_lab import cli, fixture
from cloudhop_lab.dataplane import netns as nsx

from .test_migration import (LAB, RBAC, REPO, env, in_lab, lab, recorded_start, run_killed, step,
                             why_failed)

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


def move_cmd(playbook, *args):
    return [os.path.join(REPO, "tests", "lab", "run"),
            os.path.join(REPO, ".venv", "bin", "ansible-playbook"),
            "-i", os.path.join(LAB, "move"), os.path.join(REPO, "playbooks", playbook), *args]


def move(*args, playbook="move.yml"):
    return subprocess.run(move_cmd(playbook, *args), cwd=REPO, env=env(), capture_output=True,
                          text=True, timeout=1500, check=False)


# the move's phases in the order of move.yml's plays (PLAY [Move phase N - ...])
PHASES = ["move_preflight", "move_link", "move_db_join", "move_proxy", "move_dns",
          "move_deployments", "move_db_primary", "move_deployments_rest"]
PLAY = re.compile(r"^PLAY \[Move phase (\d+) - ")


def move_killed(aim, seconds, *args, playbook="move.yml", marker=None):
    """Run a playbook of the move and SIGKILL its whole process group ``seconds`` after phase
    ``aim`` starts (its ledger start recorded; the preflight, which records nothing until it
    has passed: its first task) - or, with ``marker``, after that task header first shows.
    Returns its return code, its output and the phase the kill landed in."""
    def phase_of(line, current):
        play = PLAY.match(line)
        if not play:
            return current
        return PHASES[int(play.group(1)) - 1] if int(play.group(1)) <= len(PHASES) else None

    def armed(line, phase, task):
        if marker is not None:
            return marker in line
        if phase != aim:
            return False
        if aim == "move_preflight":
            return line.startswith("TASK [") and "Begin - the ledger" in line
        return recorded_start(line, task)

    rc, out, landed, _last = run_killed(move_cmd(playbook, *args), seconds, phase_of, armed,
                                        timeout=900)
    return rc, out, landed


def why(out):
    """What to show of a playbook's output when a test fails: its fatal lines, then its end."""
    fatal = [line[:3000] for line in out.splitlines() if line.startswith(("fatal:", "failed:"))]
    return "\n".join(fatal[-3:]) + "\n...\n" + out[-3000:]


def writes_since(mark):
    return cli.audit("writes", mark)["writes"]


@pytest.mark.timeout(1500)  # 503 s beside one other test, 893 s in make test's three lanes
def test_move_preflight_records_the_plan_and_refuses_bad_input_before_any_write():
    lab("up", "--world", "move", "--rbac", RBAC)
    try:
        lab("mongo", "wait")
        # bad input, refused before anything is written in either cluster. The inputs' own
        # problems are named all at once (one run with twelve, one with two); what needs a look
        # at the clusters, MongoDB or the inventory, one run each
        all_at_once = (
            ["-e", json.dumps({
                "cloudhop_move_deployments": ["web", "web"],
                "cloudhop_move_switch_after": 0,
                "cloudhop_move_new_kubeconfig": "/nowhere/new.kubeconfig",
                "cloudhop_move_mongodb": dict(MONGO, new_members=["172.31.0.200"]),
                "cloudhop_move_proxy": dict(PROXY, new_annotations={}, namespace="shop"),
                "cloudhop_move_dns": dict(DNS, provider="bind", ttl="soon"),
                "cloudhop_move_reverse_keep": -1,
                "cloudhop_move_new_ingress_service": "ingress-nginx",
                "cloudhop_move_old_nodes_group": "vsphere_nodes",
                "cloudhop_move_link_mode": "build",
                "cloudhop_move_link_build": {"old_network": "10.2.0.0/17",
                                             "new_network": "10.2.64.0/24"}})],
            ["cloudhop_move_deployments: web listed twice",
             "cloudhop_move_switch_after: 0 must be more than 0 and at most 1",
             "cloudhop_move_new_kubeconfig: /nowhere/new.kubeconfig is not a file",
             "cloudhop_move_mongodb.new_members: 172.31.0.200 - give each as name:port",
             "cloudhop_move_proxy.new_annotations is empty",
             "cloudhop_move_proxy.namespace: shop - the proxy needs a namespace of its own",
             "cloudhop_move_dns.provider: bind is not one of rfc2136, route53, clouddns",
             "cloudhop_move_dns.ttl: soon - give the lowered TTL in seconds",
             "cloudhop_move_reverse_keep: -1 must be 0 or more seconds",
             "give each as namespace/name",
             "Inventory group vsphere_nodes (cloudhop_move_old_nodes_group",
             "cloudhop_move_link_build.new_network (10.2.64.0/24) overlaps old_network "
             "(10.2.0.0/17)"])
        bad = [
            all_at_once,
            (["-e", "cloudhop_move_namespace=Shop", "-e", "cloudhop_move_link_mode=build",
              "-e", json.dumps({"cloudhop_move_link_build": {"old_network": "10.2.0.0/17"}})],
             ["cloudhop_move_namespace: Shop is not a namespace name",
              "cloudhop_move_link_build.new_network is empty: give the new cluster's node "
              "network"]),
            (["-e", "cloudhop_move_deployments=web,api"],
             ["cloudhop_move_deployments and cloudhop_move_mongodb.new_members are lists"]),
            (["-e", json.dumps({"cloudhop_move_deployments": ["web", "checkout"]})],
             ["cloudhop_move_deployments: checkout not found in namespace shop of the old "
              "cluster (it has: api, cart, static, web)"]),
            (["-e", json.dumps({"cloudhop_move_mongodb": dict(
                MONGO, replica_set="rs9")})],
             ["10.2.0.200:27017 is a member of replica set rs0; replica_set is rs9"]),
            (["-e", json.dumps({"cloudhop_move_mongodb": dict(
                MONGO, login_host="10.2.0.250")})],
             ["reading replica set rs0"]),
            (["-e", json.dumps({"cloudhop_move_mongodb": dict(
                MONGO, new_members=["10.2.0.201:27017"])})],
             ["cloudhop_move_mongodb.new_members: 10.2.0.201:27017 already in replica set rs0"]),
            (["-e", json.dumps({"cloudhop_move_proxy": dict(PROXY, namespace="ingress-nginx")})],
             ["cloudhop_move_proxy.namespace: namespace ingress-nginx exists in the old cluster "
              "and is not the move's"]),
            (["-e", json.dumps({"cloudhop_move_dns": dict(DNS, zone="example.org")})],
             ["hosts api.example.test, shop.example.test are not in zone example.org"]),
            (["-e", "cloudhop_move_new_ingress_service=ingress-nginx/edge"],
             ["cloudhop_move_new_ingress_service: ingress-nginx/edge in the new cluster does not "
              "exist"]),
            (["-e", "cloudhop_move_new_ingress_class=traefik"],
             ["IngressClass traefik does not exist in the new cluster"]),
            (["-e", json.dumps({"cloudhop_move_env": {"api": {"DB_HOST": "db"}}})],
             ["env: no container has DB_HOST"]),
            # the link's mode: the roles' argument specs refuse it first, in Ansible's words
            (["-e", "cloudhop_move_link_mode=tunnel"],
             ["value of cloudhop_move_link_mode must be one of: verify, build, got: tunnel"]),
        ]
        mark = cli.audit("mark")
        for args, messages in bad:
            proc = move(*args)
            assert proc.returncode != 0, (args, proc.stdout[-3000:])
            for message in messages:
                assert message in proc.stdout, (message, proc.stdout[-3000:])
        assert writes_since(mark) == []
        # an Ingress whose annotation rewrites the path: the proxy hop would rewrite it twice
        in_lab(REWRITE % "add")
        mark = cli.audit("mark")
        proc = move()
        assert proc.returncode != 0
        assert "Ingress shop has nginx.ingress.kubernetes.io/rewrite-target" in proc.stdout
        assert writes_since(mark) == []
        in_lab(REWRITE % "remove")
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
        # an Ingress of the app's names in the new cluster: the move would take it over (and a
        # rollback delete it) - refused
        in_lab(NEW_INGRESS % "create")
        mark = cli.audit("mark")
        proc = move()
        assert proc.returncode != 0
        assert "The new cluster already has Ingresses shop in namespace shop" in proc.stdout, \
            proc.stdout[-3000:]
        assert writes_since(mark) == []
        in_lab(NEW_INGRESS % "delete")

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

        # the link phase without a link: it names what did not answer, from which side
        mark = cli.audit("mark")
        proc = move("--tags", "move_link", "-e", "move_link_retries=1")
        assert proc.returncode != 0
        assert "The link between the environments does not carry" in proc.stdout
        assert "(new) to 10.2.0.200:27017" in proc.stdout, proc.stdout[-3000:]
        assert "(old) to 172.31.0.200:27017" in proc.stdout
        assert "(ping)" in proc.stdout
        assert [w["path"] for w in writes_since(mark)] == [
            "/api/v1/namespaces/shop/configmaps/cloudhop-move"] * 2  # start, failed

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
        proc = move("--tags", "move_link,move_db_join")
        summary = json.loads(lab("probe", "stop", "--name", "join").stdout)
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert summary["failed"] == 0 and summary["lost"] == 0 and summary["acknowledged"] > 0, \
            why_failed("join", summary)
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

PROXY = {"old_annotations": {"metallb.universe.tf/loadBalancerIPs": "10.2.0.210"},
         "new_annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}}

DNS = {"provider": "rfc2136", "server": "198.18.0.53", "zone": "example.test",
       "key_name": "cloudhop-lab", "key_secret": "c2VjcmV0", "ttl": 5}

REWRITE = r"""
import json, os
from kubernetes import client, config
net = client.NetworkingV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
value = "/" if "%s" == "add" else None
net.patch_namespaced_ingress("shop", "shop", {"metadata": {"annotations": {
    "nginx.ingress.kubernetes.io/rewrite-target": value}}})
print("{}")
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


NEW_INGRESS = r"""
import os
from kubernetes import client, config
net = client.NetworkingV1Api(config.new_client_from_config(os.environ["CLH_NEW_KUBECONFIG"]))
if "%s" == "create":
    net.create_namespaced_ingress("shop", {"metadata": {"name": "shop"}, "spec": {
        "ingressClassName": "nginx", "rules": [{"host": "other.example.test", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {
                "name": "web", "port": {"number": 80}}}}]}}]}})
else:
    net.delete_namespaced_ingress("shop", "shop")
print("{}")
"""


STATE = r"""
import json, os
from kubernetes import client, config
out = {}
for side, var in (("old", "CLH_USER_KUBECONFIG"), ("new", "CLH_NEW_KUBECONFIG")):
    api = config.new_client_from_config(os.environ[var])
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    net = client.NetworkingV1Api(api)
    out[side] = {
        "deployments": {d.metadata.name: d.spec.replicas
                        for d in apps.list_namespaced_deployment("shop").items},
        "ingresses": sorted(i.metadata.name for i in net.list_namespaced_ingress("shop").items),
        # the proxy's Deployment (its namespace stays when docs/rbac/move.yaml made it), and
        # the link's hub (link mode build)
        "proxy_ns": [d.metadata.name for d in apps.list_namespaced_deployment(
            "cloudhop-move").items],
        # the link's node clients (link mode build)
        "link_ds": [d.metadata.name for d in apps.list_namespaced_daemon_set(
            "cloudhop-move").items],
        "classes": sorted(c.metadata.name for c in net.list_ingress_class().items)}
print(json.dumps(out))
"""

TLS_KEY = r"""
import json, os
from kubernetes import client, config
core = client.CoreV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
print(json.dumps(core.read_namespaced_secret("shop-tls", "shop").data["tls.key"]))
"""


def move_secrets():
    """The secret values of the move world: the API tokens, the TSIG key, the shop's TLS key
    and (link mode build) the link's private keys - each key as stored in a Secret (base64)
    and its body line by line."""
    import base64  # pylint: disable=import-outside-toplevel

    def key_lines(pem):
        return [line for line in pem.splitlines()
                if line and "-----" not in line and len(line) > 16]

    with open(os.path.join(LAB, "config.json"), encoding="utf-8") as fh:
        config = json.load(fh)
    tokens = [config["admin_token"]] + ([config["migrator_token"]]
                                        if config.get("migrator_token") else [])
    with open(os.path.join(LAB, "dns", "tsig.json"), encoding="utf-8") as fh:
        tsig = json.load(fh)["secret"]
    key_b64 = in_lab(TLS_KEY)
    out = tokens + [tsig, key_b64] + key_lines(base64.b64decode(key_b64).decode())
    # the link's EC keys (SEC1 PEM): the first body line holds the private scalar; the others
    # only the public point, which the certificates and requests show too
    pki = os.path.join(LAB, "backups", "shop", "move-link")
    for name in ("ca.key", "server.key", "client.key"):
        if os.path.exists(os.path.join(pki, name)):
            with open(os.path.join(pki, name), encoding="utf-8") as fh:
                pem = fh.read()
            out += [base64.b64encode(pem.encode()).decode(), key_lines(pem)[0]]
    return out


NEW_URI = r"""
import json, os, time
from kubernetes import client, config
apps = client.AppsV1Api(config.new_client_from_config(os.environ["CLH_NEW_KUBECONFIG"]))
dep = apps.read_namespaced_deployment("api", "shop")
for c in dep.spec.template.spec.containers:
    for e in c.env or []:
        if e.name == "MONGODB_URI":
            e.value = %r
apps.replace_namespaced_deployment("api", "shop", dep)
for _ in range(120):
    d = apps.read_namespaced_deployment("api", "shop")
    s = d.status
    if s.observed_generation == d.metadata.generation and s.updated_replicas == d.spec.replicas \
            and s.available_replicas == d.spec.replicas and not s.unavailable_replicas:
        break
    time.sleep(1)
print("{}")
"""

DIG = r"""
import json, subprocess
print(json.dumps({h: subprocess.run(["dig", "+noall", "+answer", "@198.18.0.53", h],
                                    capture_output=True, text=True).stdout.split()
                  for h in ("shop.example.test", "api.example.test")}))
"""


def link_devices():
    """The nodes (of this lab instance) that have the move's link device."""
    out = []
    for name in sorted(os.listdir("/run/netns")):
        if name.startswith(nsx.ns_name("n-")):
            proc = subprocess.run(["ip", "-n", name, "link", "show", "move-link"],
                                  capture_output=True, check=False)
            if proc.returncode == 0:
                out.append(name)
    return out


@pytest.mark.timeout(3000)  # 1,318-2,005 s in make test (2,293 before the filters' fix)
def test_move_end_to_end_under_traffic_writes_and_stale_dns():
    """The whole move (the seed's steps) in the lab's move world under three probes: every
    host and path through DNS, the same through a DNS answer kept from before the switch
    (clients that ignore the TTL), and the app's writes (w:majority): none failed, no
    acknowledged write lost. No peering: the move builds its link (link mode build, set in the
    inventory's group_vars as a user would) - a hub in the old cluster, a client on every node -
    and removes it in move_finish. Check mode first writes nothing; a second run writes
    nothing; move_finish waits for cloudhop_move_reverse_keep, then removes the reverse path
    and the link."""
    lab("up", "--world", "move", "--dns-ttl", "10", "--rbac", RBAC)
    probes = ("shop", "stale", "writes")
    try:
        lab("mongo", "wait")
        os.makedirs(os.path.join(LAB, "move", "group_vars"), exist_ok=True)
        with open(os.path.join(LAB, "move", "group_vars", "cluster_moves.yml"), "w",
                  encoding="utf-8") as fh:
            fh.write("cloudhop_move_link_mode: build\n")
        # days before: the plan, the lowered TTL
        proc = move("--tags", "move_preflight,move_dns_prepare")
        assert proc.returncode == 0, proc.stdout[-4000:]
        # check mode over the whole move: a server-side dry run, nothing written
        mark = cli.audit("mark")
        proc = move("--check", "--diff", "-e", "cloudhop_confirm_destroy=true")
        assert proc.returncode == 0, proc.stdout[-6000:]
        assert writes_since(mark) == []
        old_lb, new_lb = "198.18.0.100", "198.18.0.101"
        assert in_lab(DIG)["shop.example.test"][-1] == old_lb

        lab("probe", "start", "--name", "shop", "--shop", "--rate", "10")
        lab("probe", "start", "--name", "stale", "--shop", "--stale", "--rate", "5")
        lab("probe", "start", "--name", "writes", "--writes", "--rate", "10")
        logs = {n: os.path.join(LAB, "probe-%s.jsonl" % n) for n in probes}
        # the api's copy keeps the old URI (no cloudhop_move_env): cleanup refuses to remove
        # the members it names, before anything is removed
        # the link built (-vvv: its keys must not show), then the rest
        first = move("--tags", "move_link", "-vvv")
        assert first.returncode == 0, first.stdout[-4000:]
        proc = move("-e", "cloudhop_confirm_destroy=true", "-e", '{"cloudhop_move_env": {}}',
                    "-e", json.dumps({"move_report_probes": logs}))
        assert proc.returncode != 0
        assert "Phase move_cleanup of move shop failed" in proc.stdout, proc.stdout[-4000:]
        assert "Deployment api (container echo, env MONGODB_URI) - a MongoDB URI that names " \
            "only the old members" in proc.stdout, proc.stdout[-4000:]
        assert len(in_lab(RS % fixture.mongo_hosts(fixture.DEFAULTS, "aws")[0])["config"]) == 6
        # the remedy the message names: the Deployment's URI in the new cluster; then the same
        # command resumes at cleanup
        in_lab(NEW_URI % fixture.mongo_uri(fixture.DEFAULTS, "aws"))
        proc = move("-e", "cloudhop_confirm_destroy=true",
                    "-e", json.dumps({"move_report_probes": logs}), "-vvv")
        summaries = {n: json.loads(lab("probe", "stop", "--name", n).stdout) for n in probes}
        assert proc.returncode == 0, proc.stdout[-6000:]
        old_id, new_id = "x8p9sk2tzv", "nddjksftsn"
        for name in probes:
            assert summaries[name]["failed"] == 0, why_failed(name, summaries[name])
        # through DNS and through the stale answer, both clusters answered in turn
        assert set(summaries["shop"]["per_cluster"]) == {old_id, new_id}
        assert summaries["stale"]["addresses"] == [old_lb]
        assert set(summaries["stale"]["per_cluster"]) == {old_id, new_id}
        writes = summaries["writes"]
        assert writes["lost"] == 0 and writes["acknowledged"] > 100, writes

        # the end state: the app and its primary in the new cluster, the old one empty but
        # for its Ingresses (the reverse path, kept for cloudhop_move_reverse_keep)
        state = in_lab(STATE)
        assert state["old"]["deployments"] == {}
        assert state["new"]["deployments"] == {"api": 2, "cart": 2, "static": 2, "web": 2}
        # the old proxy gone; the link stays for the reverse path (its hub in the old cluster)
        assert state["old"]["ingresses"] == ["api", "shop"]
        assert state["old"]["proxy_ns"] == ["cloudhop-move-link-hub"]
        assert state["new"]["ingresses"] == ["api", "cloudhop-proxy-api", "cloudhop-proxy-shop",
                                             "shop"]
        assert state["new"]["proxy_ns"] == ["cloudhop-proxy"]
        assert state["old"]["link_ds"] == state["new"]["link_ds"] == ["cloudhop-move-link"]
        assert len(link_devices()) == 6  # every node of both clusters has its client
        assert json.loads(lab("link", "status").stdout)["links"] == []  # and no peering
        assert in_lab(DIG)["shop.example.test"][-1] == new_lb
        new = fixture.mongo_hosts(fixture.DEFAULTS, "aws")
        rs = in_lab(RS % new[0])
        assert [m["host"] for m in rs["config"]] == new
        assert sorted(rs["states"].values()) == ["PRIMARY", "SECONDARY", "SECONDARY"]
        ledger = in_lab(LEDGER)["data"]
        done = [k[6:] for k, v in ledger.items() if k.startswith("phase.")
                and v["status"] == "done"]
        assert sorted(done) == sorted(
            ["move_preflight", "move_dns_prepare", "move_link", "move_db_join", "move_proxy",
             "move_dns", "move_deployments", "move_db_primary", "move_deployments_rest",
             "move_cleanup", "move_report"])
        assert "phase.move_finish" not in ledger
        built = ledger["phase.move_link"]["facts"]["built"]
        assert built["nodes"] == {"old": 3, "new": 3}
        assert built["hub"].startswith("198.18.0.") and built["hub"] not in (old_lb, new_lb)
        assert built["gateways"]["old"].startswith("10.2.0.")
        assert built["gateways"]["new"].startswith("172.31.0.")
        primary = ledger["phase.move_db_primary"]["facts"]
        assert primary["primary_before"] in fixture.mongo_hosts(fixture.DEFAULTS, "vsphere")
        assert primary["primary_after"] in new and len(primary["stepdowns"]) == 1
        assert sorted(ledger["phase.move_deployments"]["facts"]["moved"]) == ["cart", "static"]
        report = open(os.path.join(LAB, "reports", "move-shop", "move-report.md"),
                      encoding="utf-8").read()
        assert "Primary after the handover: %s" % primary["primary_after"] in report
        assert "Built by the move (link mode build): hub %s" % built["hub"] in report
        assert "Probe writes:" in report and "| move_db_primary |" in report
        # no secret in the -vvv output, the ledger or the report (the link's keys included)
        secrets = move_secrets()
        assert len(secrets) > 12, secrets[:0]
        html = open(os.path.join(LAB, "reports", "move-shop", "move-report.html"),
                    encoding="utf-8").read()
        for what, text in (("-vvv", proc.stdout + proc.stderr),
                           ("-vvv building the link", first.stdout + first.stderr),
                           ("ledger", json.dumps(ledger)),
                           ("report", report + html)):
            assert not [v[:6] for v in secrets if v in text], what

        # again: every phase done, move_finish not due - nothing written anywhere
        mark = cli.audit("mark")
        proc = move("-e", "cloudhop_confirm_destroy=true")
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "move_finish of move shop runs from" in proc.stdout
        assert writes_since(mark) == []
        # once the reverse path may go: the old cluster's Ingresses, the new proxy, the TTL
        proc = move("-e", "cloudhop_confirm_destroy=true", "-e", "cloudhop_move_reverse_keep=0")
        assert proc.returncode == 0, proc.stdout[-4000:]
        state = in_lab(STATE)
        assert state["old"]["ingresses"] == [] and state["new"]["proxy_ns"] == []
        # the link too: its objects, its devices on the nodes, and (not kept by RBAC) its
        # namespace in the old cluster once nothing runs there
        assert state["old"]["proxy_ns"] == [] and state["old"]["link_ds"] == []
        assert state["new"]["link_ds"] == [] and link_devices() == []
        assert state["new"]["ingresses"] == ["api", "shop"]
        assert "cloudhop-proxy" not in state["new"]["classes"]
        assert in_lab(DIG)["shop.example.test"][1] == "10"  # the old TTL back
    finally:
        for name in probes:
            lab("probe", "stop", "--name", name)
        lab("down")


INGRESS_SPECS = r"""
import json, os
from kubernetes import client, config
net = client.NetworkingV1Api(config.new_client_from_config(os.environ["CLH_USER_KUBECONFIG"]))
api = net.api_client
print(json.dumps({i.metadata.name: api.sanitize_for_serialization(i.spec)
                  for i in net.list_namespaced_ingress("shop").items}))
"""

RS_FULL = r"""
import json, pymongo
c = pymongo.MongoClient(%r, replicaSet="rs0", serverSelectionTimeoutMS=20000)
cfg = c.admin.command("replSetGetConfig")["config"]
st = c.admin.command("replSetGetStatus")
print(json.dumps({"members": {m["host"]: [m["votes"], m["priority"]] for m in cfg["members"]},
                  "primary": [m["name"] for m in st["members"] if m["stateStr"] == "PRIMARY"]}))
"""

PDB = r"""
import os
from kubernetes import client, config
policy = client.PolicyV1Api(config.new_client_from_config(os.environ[%r]))
policy.patch_namespaced_pod_disruption_budget("api", "shop", {"spec": {
    "maxUnavailable": None, "minAvailable": %d}})
print("{}")
"""

# the longest moment (s) after a phase's start at which a kill still lands in it (measured phase
# times: preflight 13 s, link 1, join 18, proxy 23, DNS 11, two Deployments 67, primary 24)
KILL_WITHIN = {"move_preflight": 8, "move_link": 0.4, "move_db_join": 10, "move_proxy": 10,
               "move_dns": 6, "move_deployments": 30, "move_db_primary": 12,
               "move_deployments_rest": 30}
NOT_NOW = ["--skip-tags", "move_cleanup,move_report,move_finish"]


@pytest.mark.timeout(3300)  # 1,752-2,166 s in make test; 2,400+ s on 2026-12-07
def test_move_killed_in_every_phase_the_link_lost_then_rolled_back():
    """The move under the shop and write probes, SIGKILLed at a random moment of every phase
    (seeds 1-8, one phase each) and resumed each time by the same command; the link lost in
    the middle of the last Deployments (the phase stops and names the link; once it is back the
    same command goes on); then the move rolled back before its point of no return - killed
    once, refused by move.yml meanwhile, resumed: the primary and its votes and priorities back
    in the old environment, the old Deployments at their replicas, the Ingresses as they were,
    the records too, nothing of the move left in the new cluster, the ledger empty so that
    move.yml starts again. None of the probes' requests failed, no acknowledged write lost
    (while the link is down, the probes are off: requests across a broken link fail)."""
    lab("up", "--world", "move", "--dns-ttl", "10", "--rbac", RBAC)
    probes = []

    def probes_start(tag):
        for name, extra in (("shop" + tag, ["--shop"]), ("writes" + tag, ["--writes"])):
            lab("probe", "start", "--name", name, *extra, "--rate", "10")
            probes.append(name)

    def probes_stop():
        out = {}
        while probes:
            name = probes.pop()
            out[name] = json.loads(lab("probe", "stop", "--name", name).stdout)
            assert out[name]["failed"] == 0, why_failed(name, out[name])
        writes = [v for k, v in out.items() if k.startswith("writes")][0]
        assert writes["lost"] == 0 and writes["acknowledged"] > 100, writes
        return out

    try:
        lab("mongo", "wait")
        lab("link", "up", "vsphere", "aws")
        probes_start("1")
        step("kills, one in each phase up to the primary's")
        hit = []
        for seed, aim in enumerate(PHASES[:-1], start=1):
            delay = random.Random(seed).uniform(0, KILL_WITHIN[aim])
            rc, out, landed = move_killed(aim, delay, *NOT_NOW)
            assert rc == -signal.SIGKILL and "PLAY RECAP" not in out, (seed, aim, why(out))
            tasks = re.findall(r"^TASK \[(.*?)\] \*", out, re.M)
            hit.append((seed, aim, landed, round(delay, 2), tasks[-1] if tasks else None))
        step("SIGKILL landed in: %s" % hit)
        assert [h[2] for h in hit] == PHASES[:-1], hit
        proc = move("--skip-tags", "move_deployments_rest,move_cleanup,move_report,move_finish")
        assert proc.returncode == 0, proc.stdout[-6000:]
        ledger = in_lab(LEDGER)["data"]
        assert all(ledger["phase.%s" % p]["status"] == "done" for p in PHASES[:-1]), ledger
        probes_stop()

        step("the link lost in the middle of the last Deployments")
        lab("link", "down", "vsphere", "aws")
        mark = cli.audit("mark")
        proc = move(*NOT_NOW)
        assert proc.returncode != 0
        assert "Phase move_deployments_rest of move shop failed" in proc.stdout, proc.stdout[-6000:]
        assert "The link between the environments does not carry" in proc.stdout, \
            proc.stdout[-6000:]
        assert "(old) to 172.31.0.200:27017" in proc.stdout, proc.stdout[-6000:]
        ledger = in_lab(LEDGER)["data"]["phase.move_deployments_rest"]
        assert ledger["status"] == "failed" and "does not carry" in ledger["message"]
        # nothing deleted: what moved so far is scaled, never removed
        assert not [w for w in writes_since(mark) if w["method"] == "DELETE"], writes_since(mark)
        lab("link", "up", "vsphere", "aws")
        probes_start("2")

        step("a PodDisruptionBudget holds the scale-down")
        # the api's budget asks for 3 healthy pods of its 2: its copy in the new cluster cannot
        # meet it, so the old api keeps its pods; the phase fails naming the budget; once the
        # budget is fixed, the same command goes on
        in_lab(PDB % ("CLH_USER_KUBECONFIG", 3))
        proc = move(*NOT_NOW, "-e", "move_deployments_pdb_timeout=6")
        assert proc.returncode != 0
        assert "PodDisruptionBudget shop/api has 2 healthy pods of the 3 it asks for in the new " \
            "cluster after 6 s - the budget holds the scale-down" in proc.stdout, why(proc.stdout)
        state = in_lab(STATE)
        assert state["old"]["deployments"]["api"] == 2 and state["new"]["deployments"]["api"] == 2
        in_lab(PDB % ("CLH_NEW_KUBECONFIG", 2))
        in_lab(PDB % ("CLH_USER_KUBECONFIG", 2))
        rc, out, landed = move_killed("move_deployments_rest",
                                      random.Random(9).uniform(0, KILL_WITHIN[PHASES[-1]]),
                                      *NOT_NOW)
        assert rc == -signal.SIGKILL and landed == "move_deployments_rest", out[-6000:]
        proc = move(*NOT_NOW)
        assert proc.returncode == 0, proc.stdout[-6000:]
        state = in_lab(STATE)
        assert state["old"]["deployments"] == {"api": 0, "cart": 0, "static": 0, "web": 0}
        assert state["new"]["deployments"] == {"api": 2, "cart": 2, "static": 2, "web": 2}
        plan = in_lab(LEDGER)["data"]["phase.move_preflight"]["facts"]
        new = fixture.mongo_hosts(fixture.DEFAULTS, "aws")
        assert in_lab(RS_FULL % new[0])["primary"][0] in new

        step("the rollback")
        mark = cli.audit("mark")
        proc = move("--check", "--diff", playbook="move_rollback.yml")
        assert proc.returncode == 0, proc.stdout[-6000:]
        assert writes_since(mark) == []
        rc, out, landed = move_killed(
            None, random.Random(10).uniform(0, 3), playbook="move_rollback.yml",
            marker="move_rollback : The old Deployments back to the replicas they had]")
        assert rc == -signal.SIGKILL and "PLAY RECAP" not in out, out[-6000:]
        proc = move(*NOT_NOW)
        assert proc.returncode != 0
        assert "A rollback of move shop is recorded" in proc.stdout, proc.stdout[-3000:]
        proc = move("-e", "cloudhop_move_reverse_keep=0", playbook="move_rollback.yml")
        assert proc.returncode == 0, proc.stdout[-6000:]
        probes_stop()

        step("after the rollback")
        state = in_lab(STATE)
        assert state["old"]["deployments"] == plan["replicas"]
        assert state["new"]["deployments"] == {}
        assert state["old"]["ingresses"] == ["api", "shop"] and state["new"]["ingresses"] == []
        assert state["old"]["proxy_ns"] == [] and state["new"]["proxy_ns"] == []
        assert "cloudhop-proxy" not in state["old"]["classes"] + state["new"]["classes"]
        assert in_lab(INGRESS_SPECS) == {i["name"]: i["spec"] for i in plan["ingresses"]}
        old = fixture.mongo_hosts(fixture.DEFAULTS, "vsphere")
        rs = in_lab(RS_FULL % old[0])
        assert rs["members"] == {h: [1, 1.0] for h in old} and rs["primary"][0] in old
        dig = in_lab(DIG)
        assert dig["shop.example.test"][-1] == "198.18.0.100" and dig["shop.example.test"][1] == "10"
        assert [k for k in in_lab(LEDGER)["data"] if k.startswith("phase.")] == []
        # the move can start again
        proc = move("--tags", "move_preflight")
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert in_lab(LEDGER)["data"]["phase.move_preflight"]["status"] == "done"
    finally:
        for name in probes:
            lab("probe", "stop", "--name", name)
        lab("down")
