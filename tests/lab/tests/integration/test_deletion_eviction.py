"""Finalizers, garbage collection, namespace deletion, graceful pod deletion and evictions."""

import json
import time

import pytest
from kubernetes import client

from .conftest import deployment, wait_for


def _gone(fn):
    try:
        fn()
    except client.ApiException as exc:
        return exc.status == 404
    return False


def test_finalizers_hold_deletion_until_removed(core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "f",
                                                        "finalizers": ["lab.test/keep"]}})
    core.delete_namespaced_config_map("f", ns)
    cm = core.read_namespaced_config_map("f", ns)
    assert cm.metadata.deletion_timestamp is not None
    assert cm.metadata.finalizers == ["lab.test/keep"]
    # while being deleted the object can still be updated, but not un-deleted
    cm = core.patch_namespaced_config_map("f", ns, {"data": {"x": "1"}})
    assert cm.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("f", ns, {"metadata": {"finalizers": None}})
    assert _gone(lambda: core.read_namespaced_config_map("f", ns))


def test_background_garbage_collection_of_dependents(core, apps, ns):
    apps.create_namespaced_deployment(ns, deployment("gc", replicas=2))
    wait_for(lambda: len(core.list_namespaced_pod(ns).items) == 2, what="2 pods")
    rs = apps.list_namespaced_replica_set(ns).items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].kind == "Deployment"
    apps.delete_namespaced_deployment("gc", ns)
    wait_for(lambda: not apps.list_namespaced_replica_set(ns).items, what="RS collected")
    wait_for(lambda: not core.list_namespaced_pod(ns).items, timeout=30, what="pods collected")


def test_orphan_propagation_keeps_dependents(core, apps, ns):
    apps.create_namespaced_deployment(ns, deployment("orph", replicas=1))
    wait_for(lambda: apps.list_namespaced_replica_set(ns).items, what="RS")
    apps.delete_namespaced_deployment("orph", ns, propagation_policy="Orphan")
    wait_for(lambda: _gone(lambda: apps.read_namespaced_deployment("orph", ns)),
             what="deployment gone")
    time.sleep(1.5)
    rs = apps.list_namespaced_replica_set(ns).items
    assert len(rs) == 1 and not rs[0].metadata.owner_references


def test_foreground_deletion_waits_for_dependents(core, apps, ns):
    apps.create_namespaced_deployment(ns, deployment("fg", replicas=1))
    wait_for(lambda: core.list_namespaced_pod(ns).items, what="pod")
    apps.delete_namespaced_deployment("fg", ns, propagation_policy="Foreground")
    dep = apps.read_namespaced_deployment("fg", ns)
    assert "foregroundDeletion" in dep.metadata.finalizers
    wait_for(lambda: _gone(lambda: apps.read_namespaced_deployment("fg", ns)), timeout=30,
             what="deployment gone after its dependents")
    assert not apps.list_namespaced_replica_set(ns).items


def test_namespace_deletion_removes_contents(core):
    core.create_namespace({"metadata": {"name": "t-nsdel"}})
    core.create_namespaced_config_map("t-nsdel", {"metadata": {"name": "a"}})
    core.create_namespaced_config_map("t-nsdel", {"metadata": {"name": "held",
                                                               "finalizers": ["lab.test/k"]}})
    core.delete_namespace("t-nsdel")
    assert core.read_namespace("t-nsdel").status.phase == "Terminating"
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("t-nsdel", {"metadata": {"name": "b"}})
    assert exc.value.status == 403
    wait_for(lambda: _gone(lambda: core.read_namespaced_config_map("a", "t-nsdel")),
             what="contents deleted")
    # the namespace waits for its last object's finalizer
    assert core.read_namespace("t-nsdel").status.phase == "Terminating"
    core.patch_namespaced_config_map("held", "t-nsdel", {"metadata": {"finalizers": None}})
    wait_for(lambda: _gone(lambda: core.read_namespace("t-nsdel")), what="namespace gone")


def test_pod_graceful_deletion(core, ns):
    node = core.list_node().items[0].metadata.name
    core.create_namespaced_pod(ns, {"metadata": {
        "name": "slow", "annotations": {"lab.cloudhop.io/shutdown-seconds": "1.0"}},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5,
                 "containers": [{"name": "c", "image": "x"}]}})
    wait_for(lambda: core.read_namespaced_pod("slow", ns).status.phase == "Running",
             what="running")
    started = time.monotonic()
    out = core.delete_namespaced_pod("slow", ns)
    assert out.metadata.deletion_timestamp is not None
    assert out.metadata.deletion_grace_period_seconds == 5
    assert core.read_namespaced_pod("slow", ns).metadata.deletion_timestamp is not None
    wait_for(lambda: _gone(lambda: core.read_namespaced_pod("slow", ns)), what="pod gone")
    # it stopped when its container exited (1 s), not at once and not after the full grace
    assert 0.8 < time.monotonic() - started < 4.5


def _pdb_setup(core, apps, ns, replicas=3, min_available=2):
    dep = deployment("web", replicas=replicas)
    dep["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": 2}
    apps.create_namespaced_deployment(ns, dep)
    client.PolicyV1Api(core.api_client).create_namespaced_pod_disruption_budget(ns, {
        "metadata": {"name": "web"},
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": "web"}}}})
    wait_for(lambda: (client.PolicyV1Api(core.api_client).read_namespaced_pod_disruption_budget(
        "web", ns).status.current_healthy or 0) == replicas, what="PDB status")
    return [p.metadata.name for p in core.list_namespaced_pod(ns).items]


def _evict(core, ns, name):
    core.create_namespaced_pod_eviction(name, ns, {"apiVersion": "policy/v1",
                                                   "kind": "Eviction",
                                                   "metadata": {"name": name,
                                                                "namespace": ns}})


def test_eviction_honours_pod_disruption_budget(core, apps, ns):
    pods = _pdb_setup(core, apps, ns)
    policy = client.PolicyV1Api(core.api_client)
    pdb = policy.read_namespaced_pod_disruption_budget("web", ns)
    assert pdb.status.disruptions_allowed == 1 and pdb.status.desired_healthy == 2
    assert pdb.status.expected_pods == 3
    _evict(core, ns, pods[0])
    assert _gone(lambda: core.read_namespaced_pod(pods[0], ns)) or \
        core.read_namespaced_pod(pods[0], ns).metadata.deletion_timestamp is not None
    pdb = policy.read_namespaced_pod_disruption_budget("web", ns)
    assert pdb.status.disruptions_allowed == 0
    with pytest.raises(client.ApiException) as exc:
        _evict(core, ns, pods[1])
    body = json.loads(exc.value.body)
    assert exc.value.status == 429 and body["reason"] == "TooManyRequests"
    assert "disruption budget" in body["message"]
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    # the evicted pod is replaced; once the replacement is Ready, eviction is allowed again
    wait_for(lambda: policy.read_namespaced_pod_disruption_budget(
        "web", ns).status.disruptions_allowed == 1, timeout=30, what="budget restored")
    _evict(core, ns, pods[1])


def test_pending_pod_is_evicted_regardless_of_budget(core, apps, ns):
    _pdb_setup(core, apps, ns, replicas=1, min_available=1)
    core.create_namespaced_pod(ns, {"metadata": {"name": "pending", "labels": {"app": "web"}},
                                    "spec": {"nodeSelector": {"no": "such-node"},
                                             "containers": [{"name": "c", "image": "x"}]}})
    wait_for(lambda: any(c.reason == "Unschedulable" for c in
                         core.read_namespaced_pod("pending", ns).status.conditions or []),
             what="unschedulable condition")
    _evict(core, ns, "pending")
    wait_for(lambda: _gone(lambda: core.read_namespaced_pod("pending", ns)), what="evicted")


def test_eviction_with_two_budgets_is_an_error(core, apps, ns):
    pods = _pdb_setup(core, apps, ns, replicas=2, min_available=0)
    client.PolicyV1Api(core.api_client).create_namespaced_pod_disruption_budget(ns, {
        "metadata": {"name": "web2"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}})
    with pytest.raises(client.ApiException) as exc:
        _evict(core, ns, pods[0])
    assert exc.value.status == 500 and "more than one" in exc.value.body


def test_no_new_finalizers_on_an_object_being_deleted(core, ns):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "fin",
                                                        "finalizers": ["lab.test/a"]}})
    core.delete_namespaced_config_map("fin", ns)
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_config_map("fin", ns, {"metadata": {
            "finalizers": ["lab.test/a", "lab.test/b"]}})
    assert exc.value.status == 422 and "no new finalizers" in exc.value.body
    # removing one is what finalizers are for
    core.patch_namespaced_config_map("fin", ns, {"metadata": {"finalizers": None}})
    assert _gone(lambda: core.read_namespaced_config_map("fin", ns))
