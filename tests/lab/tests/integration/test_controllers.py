"""Simulated controllers: workloads, scheduler, KKP seed controller, machine-controller."""

import datetime
import json
import os
import time

import pytest
from kubernetes import client

from .conftest import deployment, wait_for
from cloudhop_lab.dataplane.netns import ns_name

NODE_NS = ns_name("n-")  # this lab instance's node namespaces

CID = "x8p9sk2tzv"
MD = "to-migrate-vsphere-node"
MD_ARGS = ("cluster.k8s.io", "v1alpha1", "kube-system", "machinedeployments")


def _pods(core, ns, selector=None):
    return [p for p in core.list_namespaced_pod(ns, label_selector=selector).items
            if not p.metadata.deletion_timestamp]


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


# ------------------------------------------------------------------ workloads


def test_deployment_rollout_restart_replaces_pods_within_strategy(core, apps, ns):
    dep = deployment("roll", replicas=4, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": 0.3}
    apps.create_namespaced_deployment(ns, dep)

    def complete():
        d = apps.read_namespaced_deployment("roll", ns)
        s = d.status
        return (s.observed_generation == d.metadata.generation and s.updated_replicas == 4
                and s.ready_replicas == 4 and s.available_replicas == 4 and s.replicas == 4
                and not s.unavailable_replicas)
    wait_for(complete, what="initial rollout")
    before = {p.metadata.name for p in _pods(core, ns)}
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    apps.patch_namespaced_deployment("roll", ns, {"spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})
    ready_counts, totals = [], []

    def observe():
        pods = _pods(core, ns)
        ready_counts.append(sum(1 for p in pods if _ready(p)))
        # maxSurge bounds what the Deployment controller asks for: the ReplicaSets' replicas (the
        # pods themselves lag: a scaled-down ReplicaSet deletes its pod a moment later)
        totals.append(sum(r.spec.replicas or 0 for r in apps.list_namespaced_replica_set(ns).items))
        return complete() and not ({p.metadata.name for p in pods} & before)
    wait_for(observe, timeout=30, interval=0.02, what="restart rollout")
    # maxUnavailable 0: never fewer than 4 ready; maxSurge 1: never more than 5 pods asked for
    assert min(ready_counts) >= 4, ready_counts
    assert max(totals) <= 5, totals
    rs = apps.list_namespaced_replica_set(ns).items
    assert len(rs) == 2
    assert sorted(r.spec.replicas for r in rs) == [0, 4]
    conds = {c.type: c for c in apps.read_namespaced_deployment("roll", ns).status.conditions}
    assert conds["Progressing"].reason == "NewReplicaSetAvailable"
    assert conds["Available"].status == "True"


def test_daemonset_places_one_pod_per_matching_node_and_updates(core, apps, ns):
    nodes = [n.metadata.name for n in core.list_node().items]
    ds = {"metadata": {"name": "agent"},
          "spec": {"selector": {"matchLabels": {"app": "agent"}},
                   "template": {"metadata": {"labels": {"app": "agent"}},
                                "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    apps.create_namespaced_daemon_set(ns, ds)

    def placed():
        d = apps.read_namespaced_daemon_set("agent", ns)
        pods = _pods(core, ns, "app=agent")
        return d.status.number_ready == len(nodes) and \
            sorted(p.spec.node_name for p in pods) == sorted(nodes) and pods
    pods = wait_for(placed, what="one pod per node")
    status = apps.read_namespaced_daemon_set("agent", ns).status
    assert status.desired_number_scheduled == len(nodes)
    assert status.updated_number_scheduled == len(nodes)
    old = {p.metadata.name for p in pods}
    apps.patch_namespaced_daemon_set("agent", ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "y"}]}}}})
    wait_for(lambda: placed() and not ({p.metadata.name for p in _pods(core, ns, "app=agent")}
                                       & old) and
             apps.read_namespaced_daemon_set("agent", ns).status.observed_generation == 2,
             timeout=30, what="rolling update of the daemonset")
    # nodeSelector restricts placement
    first = nodes[0]
    apps.patch_namespaced_daemon_set("agent", ns, {"spec": {"template": {"spec": {
        "nodeSelector": {"kubernetes.io/hostname": first}}}}})
    wait_for(lambda: [p.spec.node_name for p in _pods(core, ns, "app=agent")] == [first],
             timeout=30, what="pods only on the selected node")


def test_scheduler_honours_cordon_and_daemonsets_ignore_it(core, apps, ns):
    nodes = [n.metadata.name for n in core.list_node().items]
    target = nodes[0]
    core.patch_node(target, {"spec": {"unschedulable": True}})
    try:
        apps.create_namespaced_deployment(ns, deployment("spread", replicas=6))
        wait_for(lambda: len([p for p in _pods(core, ns, "app=spread") if p.spec.node_name])
                 == 6, what="6 scheduled")
        used = {p.spec.node_name for p in _pods(core, ns, "app=spread")}
        assert target not in used and len(used) == len(nodes) - 1
        # the canal DaemonSet still has its pod on the cordoned node
        canal = _pods(core, "kube-system", "k8s-app=canal")
        assert target in {p.spec.node_name for p in canal}
    finally:
        core.patch_node(target, {"spec": {"unschedulable": None}})


def test_taints_and_tolerations(core, ns):
    target = core.list_node().items[0].metadata.name
    core.patch_node(target, {"spec": {"taints": [{"key": "lab", "value": "x",
                                                  "effect": "NoSchedule"}]}})
    try:
        tolerate = [{"key": "lab", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]
        for name, tol in (("plain", None), ("tolerant", tolerate)):
            spec = {"nodeSelector": {"kubernetes.io/hostname": target},
                    "containers": [{"name": "c", "image": "x"}]}
            if tol:
                spec["tolerations"] = tol
            core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": spec})
        wait_for(lambda: core.read_namespaced_pod("tolerant", ns).spec.node_name == target,
                 what="tolerant pod scheduled")
        assert core.read_namespaced_pod("plain", ns).spec.node_name is None
    finally:
        core.patch_node(target, {"spec": {"taints": None}})


def test_endpoints_follow_ready_pods(core):
    ep = core.read_namespaced_endpoints("echo", "echo")
    pods = _pods(core, "echo", "app=echo")
    assert sorted(a.ip for a in ep.subsets[0].addresses) == sorted(p.status.pod_ip for p in pods)
    assert ep.subsets[0].ports[0].port == 8080  # named targetPort resolved


# ------------------------------------------------------------------ KKP seed controller


def _cluster(seed_custom):
    return seed_custom.get_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", CID)


def _pause(seed_custom, value):
    seed_custom.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", CID,
                                            {"spec": {"pause": value}})


def _wait_cloud_condition(seed_custom, status):
    """Wait until KKP reports the cloud condition with this status; return the condition."""
    def cond():
        c = _cluster(seed_custom)["status"]["conditions"]["CloudControllerReconcilledSuccessfully"]
        return c if c["status"] == status else None
    return wait_for(cond, what="cloud condition %s" % status)


def _vpn_args(seed_client):
    dep = client.AppsV1Api(seed_client).read_namespaced_deployment("openvpn-server",
                                                                   "cluster-" + CID)
    return dep.spec.template.spec.containers[0].args


def test_kkp_status_of_the_fixture_cluster(seed_custom):
    cluster = _cluster(seed_custom)
    conds = cluster["status"]["conditions"]
    assert isinstance(conds, dict)  # kubermatic.k8c.io keeps a map keyed by type
    for ctype in ("SeedResourcesUpToDate", "ClusterControllerReconciledSuccessfully",
                  "CloudControllerReconcilledSuccessfully"):
        assert conds[ctype]["status"] == "True"
    assert cluster["status"]["namespaceName"] == "cluster-" + CID
    assert "kubermatic.k8c.io/cleanup-vsphere-folder" in cluster["metadata"]["finalizers"]


def test_kkp_unpause_undoes_a_manual_openvpn_patch(seed_custom, seed_client):
    apps = client.AppsV1Api(seed_client)
    canonical = _vpn_args(seed_client)
    assert "--client-to-client" not in canonical
    _pause(seed_custom, True)
    try:
        apps.patch_namespaced_deployment("openvpn-server", "cluster-" + CID, {
            "spec": {"template": {"spec": {"containers": [{
                "name": "openvpn-server", "args": canonical + ["--client-to-client"]}]}}}})
        # paused: the manual change stays (give the controller several passes)
        time.sleep(2.5)
        assert "--client-to-client" in _vpn_args(seed_client)
    finally:
        _pause(seed_custom, False)
    wait_for(lambda: _vpn_args(seed_client) == canonical, what="openvpn-server reset")


def test_kkp_reports_missing_credentials(seed_custom):
    _pause(seed_custom, True)
    try:
        seed_custom.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", CID, {
            "spec": {"cloud": {"vsphere": {"credentialsReference": {
                "name": "credential-vsphere-missing", "namespace": "kubermatic"}}}}})
    finally:
        _pause(seed_custom, False)
    try:
        cond = _wait_cloud_condition(seed_custom, "False")
        assert "credential-vsphere-missing" in cond["message"]
        assert _cluster(seed_custom)["status"]["extendedHealth"][
            "cloudProviderInfrastructure"] == "HealthStatusDown"
    finally:
        seed_custom.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", CID, {
            "spec": {"cloud": {"vsphere": {"credentialsReference": {
                "name": "credential-vsphere-" + CID, "namespace": "kubermatic"}}}}})
        _wait_cloud_condition(seed_custom, "True")


def test_kkp_requires_exactly_one_provider_block(seed_custom):
    _pause(seed_custom, True)
    try:
        seed_custom.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", CID, {
            "spec": {"cloud": {"aws": {"credentialsReference": {
                "name": "credential-aws-" + CID, "namespace": "kubermatic"}}}}})
    finally:
        _pause(seed_custom, False)
    try:
        cond = _wait_cloud_condition(seed_custom, "False")
        assert "exactly one provider block" in cond["message"]
        assert _cluster(seed_custom)["status"]["errorReason"] == "InvalidConfiguration"
    finally:
        seed_custom.patch_cluster_custom_object("kubermatic.k8c.io", "v1", "clusters", CID, {
            "spec": {"cloud": {"aws": None}}})
        _wait_cloud_condition(seed_custom, "True")
        assert "errorReason" not in _cluster(seed_custom)["status"]


def test_kkp_strategic_patch_on_cluster_is_rejected(seed_raw):
    code, err = seed_raw("PATCH", "/apis/kubermatic.k8c.io/v1/clusters/" + CID,
                         {"spec": {"pause": True}},
                         ctype="application/strategic-merge-patch+json")
    assert code == 415, err


# ------------------------------------------------------------------ machine-controller


def _md(custom):
    return custom.get_namespaced_custom_object(*MD_ARGS, MD)


def _md_nodes(core):
    return [n for n in core.list_node().items
            if n.metadata.name.startswith(MD) and not n.metadata.deletion_timestamp]


def _scale(custom, replicas):
    custom.patch_namespaced_custom_object(*MD_ARGS, MD, {"spec": {"replicas": replicas}})


def test_machine_deployment_scales_nodes_with_pod_cidrs(custom, core):
    _scale(custom, 5)
    try:
        nodes = wait_for(lambda: len(_md_nodes(core)) == 5 and _md_nodes(core),
                         timeout=30, what="5 nodes")
        cidrs = [n.spec.pod_cidr for n in nodes]
        assert len(set(cidrs)) == 5 and all(c.startswith("172.25.") for c in cidrs)
        for n in nodes:
            assert n.metadata.labels["system/cluster"] == CID
            assert n.metadata.labels["machine-controller/owned-by"]
            assert n.status.addresses[0].address.startswith("10.2.")
        wait_for(lambda: (_md(custom).get("status") or {}).get("readyReplicas") == 5,
                 what="MD status")
        # every one of them is a real machine that answers SSH with its own name
        from .test_dataplane import ssh  # pylint: disable=import-outside-toplevel
        for n in nodes:
            out = ssh(n.status.addresses[0].address, "hostname")
            assert out.returncode == 0 and out.stdout.strip() == n.metadata.name, out.stderr
    finally:
        _scale(custom, 3)
    wait_for(lambda: len(_md_nodes(core)) == 3 and
             len(custom.list_namespaced_custom_object(
                 "cluster.k8s.io", "v1alpha1", "kube-system", "machines")["items"]) == 3,
             timeout=60, what="back to 3 nodes")
    # the app survived the scale-down (drains respect its PDB)
    wait_for(lambda: len([p for p in _pods(core, "echo", "app=echo") if _ready(p)]) == 3,
             timeout=30, what="echo ready")


def test_machine_deployment_rolling_update_keeps_capacity(custom, core):
    """A template change replaces every machine; maxSurge 1 / maxUnavailable 0 keeps 3 Ready."""
    before = {n.metadata.name for n in _md_nodes(core)}
    custom.patch_namespaced_custom_object(*MD_ARGS, MD, {"spec": {"template": {"metadata": {
        "annotations": {"lab.cloudhop.io/rollout": str(time.time())}}}}})
    ready, totals = [], []

    def done():
        nodes = _md_nodes(core)
        ready.append(sum(1 for n in nodes if not n.spec.unschedulable and any(
            c.type == "Ready" and c.status == "True" for c in n.status.conditions)))
        machines = custom.list_namespaced_custom_object("cluster.k8s.io", "v1alpha1",
                                                        "kube-system", "machines")["items"]
        # a machine being deleted (draining) does not count against maxSurge, as in
        # machine-controller; its node lingers until the drain is done
        totals.append(len([m for m in machines if not m["metadata"].get("deletionTimestamp")]))
        sets = custom.list_namespaced_custom_object("cluster.k8s.io", "v1alpha1",
                                                    "kube-system", "machinesets")["items"]
        return len(nodes) == 3 and not ({n.metadata.name for n in nodes} & before) and \
            len(sets) == 1
    wait_for(done, timeout=120, interval=0.05, what="rolling update of the workers")
    assert min(ready) >= 3, ready
    assert max(totals) <= 4, totals
    status = _md(custom)["status"]
    assert status["updatedReplicas"] == 3 and status["readyReplicas"] == 3
    wait_for(lambda: len([p for p in _pods(core, "echo", "app=echo") if _ready(p)]) == 3,
             timeout=30, what="echo ready after the node rollover")


def test_paused_machine_deployment_is_left_alone(custom, core):
    custom.patch_namespaced_custom_object(*MD_ARGS, MD, {"spec": {"paused": True}})
    try:
        _scale(custom, 4)
        time.sleep(2.0)
        assert len(_md_nodes(core)) == 3
        sets = custom.list_namespaced_custom_object("cluster.k8s.io", "v1alpha1",
                                                    "kube-system", "machinesets")["items"]
        assert [s["spec"]["replicas"] for s in sets] == [3]
    finally:
        _scale(custom, 3)
        custom.patch_namespaced_custom_object(*MD_ARGS, MD, {"spec": {"paused": None}})


def test_machine_for_another_cloud_reports_an_error(custom, core):
    md = _md(custom)
    aws = {"apiVersion": "cluster.k8s.io/v1alpha1", "kind": "MachineDeployment",
           "metadata": {"name": "aws-workers", "namespace": "kube-system"},
           "spec": json.loads(json.dumps(md["spec"]))}
    aws["spec"]["replicas"] = 1
    aws["spec"]["selector"] = {"matchLabels": {"name": "aws-workers"}}
    aws["spec"]["template"]["metadata"]["labels"] = {"name": "aws-workers"}
    aws["spec"]["template"]["spec"]["providerSpec"]["value"]["cloudProvider"] = "aws"
    aws["spec"]["template"]["spec"]["providerSpec"]["value"]["cloudProviderSpec"] = {
        "region": "eu-central-1", "availabilityZone": "eu-central-1a", "instanceType": "t3.large"}
    custom.create_namespaced_custom_object("cluster.k8s.io", "v1alpha1", "kube-system",
                                           "machinedeployments", aws)
    try:
        def errored():
            machines = [m for m in custom.list_namespaced_custom_object(
                "cluster.k8s.io", "v1alpha1", "kube-system", "machines")["items"]
                if m["metadata"]["name"].startswith("aws-workers")]
            return machines and (machines[0].get("status") or {}).get("errorMessage") and \
                machines[0]
        machine = wait_for(errored, what="machine error")
        assert machine["status"]["errorReason"] == "InvalidConfiguration"
        assert '"aws"' in machine["status"]["errorMessage"]
        assert '"vsphere"' in machine["status"]["errorMessage"]
        assert not [n for n in core.list_node().items
                    if n.metadata.name.startswith("aws-workers")]
    finally:
        custom.delete_namespaced_custom_object("cluster.k8s.io", "v1alpha1", "kube-system",
                                               "machinedeployments", "aws-workers")
    wait_for(lambda: not [m for m in custom.list_namespaced_custom_object(
        "cluster.k8s.io", "v1alpha1", "kube-system", "machines")["items"]
        if m["metadata"]["name"].startswith("aws-workers")], timeout=30, what="cleanup")


def test_deleting_a_machine_drains_its_node_first_respecting_pdbs(custom, core):
    policy = client.PolicyV1Api(core.api_client)
    machines = custom.list_namespaced_custom_object("cluster.k8s.io", "v1alpha1",
                                                    "kube-system", "machines")["items"]
    victim = next(m for m in machines
                  if any(p.spec.node_name == m["status"]["nodeRef"]["name"]
                         for p in _pods(core, "echo", "app=echo")))
    node = victim["status"]["nodeRef"]["name"]
    # a budget that allows no disruption at all: the drain must stop at the echo pod
    policy.patch_namespaced_pod_disruption_budget("echo", "echo", {"spec": {"minAvailable": 3}})
    try:
        custom.delete_namespaced_custom_object("cluster.k8s.io", "v1alpha1", "kube-system",
                                               "machines", victim["metadata"]["name"])
        wait_for(lambda: core.read_node(node).spec.unschedulable, what="node cordoned")
        time.sleep(2.0)
        assert node in [n.metadata.name for n in core.list_node().items]
        assert any(p.spec.node_name == node for p in _pods(core, "echo", "app=echo"))
        machine = custom.get_namespaced_custom_object(
            "cluster.k8s.io", "v1alpha1", "kube-system", "machines", victim["metadata"]["name"])
        assert machine["metadata"]["deletionTimestamp"]
    finally:
        policy.patch_namespaced_pod_disruption_budget("echo", "echo", {"spec": {"minAvailable": 2}})
    wait_for(lambda: node not in [n.metadata.name for n in core.list_node().items],
             timeout=60, what="node removed after the drain")
    wait_for(lambda: len(_md_nodes(core)) == 3, timeout=60, what="replacement machine")
    wait_for(lambda: len([p for p in _pods(core, "echo", "app=echo") if _ready(p)]) == 3,
             timeout=30, what="echo back to 3 ready")


@pytest.mark.parametrize("replicas", [0])
def test_scale_to_zero_removes_all_nodes_then_back(custom, core, replicas):
    pdb_api = client.PolicyV1Api(core.api_client)
    # PDBs would (correctly) block draining the last nodes; lift them (the app's and the
    # ingress controller's) for this test
    pdbs = {}
    for ns, name in (("echo", "echo"), ("ingress-nginx", "ingress-nginx-controller")):
        pdbs[(ns, name)] = pdb_api.read_namespaced_pod_disruption_budget(name, ns)
        pdb_api.delete_namespaced_pod_disruption_budget(name, ns)
    try:
        _scale(custom, replicas)
        wait_for(lambda: not _md_nodes(core), timeout=60, what="no nodes")
        assert _md(custom)["spec"]["replicas"] == 0
        wait_for(lambda: not [n for n in os.listdir("/run/netns") if n.startswith(NODE_NS + MD)],
                 what="no node namespaces left")
    finally:
        _scale(custom, 3)
        for (ns, name), pdb in pdbs.items():
            pdb_api.create_namespaced_pod_disruption_budget(ns, {
                "metadata": {"name": name}, "spec": {
                    "minAvailable": pdb.spec.min_available,
                    "selector": {"matchLabels": pdb.spec.selector.match_labels}}})
    wait_for(lambda: len(_md_nodes(core)) == 3, timeout=60, what="3 nodes again")
    wait_for(lambda: len([p for p in _pods(core, "echo", "app=echo") if _ready(p)]) == 3,
             timeout=30, what="echo back")
