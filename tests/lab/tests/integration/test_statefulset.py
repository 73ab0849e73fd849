"""The lab's StatefulSet controller and volume binder, as kube-controller-manager behaves:
ordinal names created in order (each once the one before is Ready), stable identities that
come back after a deletion, one claim per pod and template kept when pods go, scale-down from
the highest ordinal, rolling updates from the highest ordinal down to the partition, and the
spec fields kube-apiserver refuses to change."""

import pytest
from kubernetes.client.exceptions import ApiException

from .conftest import wait_for


def statefulset(name, replicas=3, policy=None, partition=None, image="cloudhop/echo:lab"):
    labels = {"app": name}
    spec = {"serviceName": name, "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": image,
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/healthz",
                                                               "port": 8080},
                                                   "periodSeconds": 1}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}]}
    if policy:
        spec["podManagementPolicy"] = policy
    if partition is not None:
        spec["updateStrategy"] = {"type": "RollingUpdate",
                                  "rollingUpdate": {"partition": partition}}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name}, "spec": spec}


def _pods(core, ns):
    return {p.metadata.name: p for p in core.list_namespaced_pod(ns).items
            if not p.metadata.deletion_timestamp}


def _ready(pod):
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def test_ordered_creation_identity_claims_scale_down_and_rolling_update(core, apps, ns):
    apps.create_namespaced_stateful_set(ns, statefulset("db"))
    seen = []

    def all_ready():
        pods = _pods(core, ns)
        names = sorted(pods)
        if not seen or seen[-1] != names:
            seen.append(names)
        return names == ["db-0", "db-1", "db-2"] and all(_ready(p) for p in pods.values())
    wait_for(all_ready, timeout=60, interval=0.02, what="three ready pods")
    # OrderedReady: db-1 only after db-0, db-2 only after db-1
    assert [s for s in seen if s] == [["db-0"], ["db-0", "db-1"], ["db-0", "db-1", "db-2"]], seen
    pod = _pods(core, ns)["db-1"]
    assert pod.spec.hostname == "db-1" and pod.spec.subdomain == "db"
    assert pod.metadata.labels["statefulset.kubernetes.io/pod-name"] == "db-1"
    assert pod.metadata.labels["apps.kubernetes.io/pod-index"] == "1"
    assert [v.persistent_volume_claim.claim_name for v in pod.spec.volumes
            if v.persistent_volume_claim] == ["data-db-1"]
    claims = {c.metadata.name: c for c in core.list_namespaced_persistent_volume_claim(ns).items}
    assert sorted(claims) == ["data-db-0", "data-db-1", "data-db-2"]
    wait_for(lambda: all(c.status.phase == "Bound" for c in
                         core.list_namespaced_persistent_volume_claim(ns).items),
             what="claims bound")
    # a deleted pod comes back under its name, with its claim
    uid = pod.metadata.uid
    core.delete_namespaced_pod("db-1", ns)
    wait_for(lambda: "db-1" in _pods(core, ns) and _pods(core, ns)["db-1"].metadata.uid != uid
             and _ready(_pods(core, ns)["db-1"]), timeout=30, what="db-1 back")
    # status
    wait_for(lambda: apps.read_namespaced_stateful_set("db", ns).status.ready_replicas == 3,
             what="readyReplicas 3")
    # scale down: the highest ordinal goes, its claim stays (Retain)
    apps.patch_namespaced_stateful_set("db", ns, {"spec": {"replicas": 2}})
    wait_for(lambda: sorted(_pods(core, ns)) == ["db-0", "db-1"], timeout=30, what="db-2 gone")
    assert "data-db-2" in {c.metadata.name for c in
                           core.list_namespaced_persistent_volume_claim(ns).items}
    # a rolling update with partition 1 replaces db-1 only
    before = {n: p.metadata.uid for n, p in _pods(core, ns).items()}
    apps.patch_namespaced_stateful_set("db", ns, {"spec": {
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        "template": {"metadata": {"annotations": {"restart": "1"}}}}})
    wait_for(lambda: "db-1" in _pods(core, ns) and
             _pods(core, ns)["db-1"].metadata.uid != before["db-1"] and
             _ready(_pods(core, ns)["db-1"]), timeout=30, what="db-1 updated")
    assert _pods(core, ns)["db-0"].metadata.uid == before["db-0"]
    sts = apps.read_namespaced_stateful_set("db", ns)
    assert sts.spec.pod_management_policy == "OrderedReady"
    # kube-apiserver refuses changes to other spec fields
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_stateful_set("db", ns, {"spec": {"serviceName": "other"}})
    assert exc.value.status == 422 and "updates to statefulset spec for fields other than" in \
        exc.value.body


def test_parallel_creates_every_pod_without_waiting_and_ordered_ready_waits(core, apps, ns):
    """Pods that do not become Ready during the test (an hour's initialDelaySeconds):
    OrderedReady stops at ordinal 0, Parallel creates them all."""
    import time  # pylint: disable=import-outside-toplevel
    for name, policy in (("ord", None), ("par", "Parallel")):
        sts = statefulset(name, replicas=3, policy=policy)
        sts["spec"]["template"]["spec"]["containers"][0]["readinessProbe"][
            "initialDelaySeconds"] = 3600
        apps.create_namespaced_stateful_set(ns, sts)
    wait_for(lambda: sorted(n for n in _pods(core, ns) if n.startswith("par-")) ==
             ["par-0", "par-1", "par-2"], what="all Parallel pods")
    time.sleep(2)
    assert sorted(n for n in _pods(core, ns) if n.startswith("ord-")) == ["ord-0"]
    assert not any(_ready(p) for p in _pods(core, ns).values())


def test_claims_are_validated_and_immutable_once_bound(core, ns):
    """kube-apiserver's claim rules: access modes and a storage request are required; the
    class and volume mode are defaulted at create; only binding (volumeName) and the requests
    change afterwards."""
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_persistent_volume_claim(ns, {
            "metadata": {"name": "bad"}, "spec": {"resources": {"requests": {}}}})
    assert exc.value.status == 422
    assert "spec.accessModes" in exc.value.body and "spec.resources[storage]" in exc.value.body
    core.create_namespaced_persistent_volume_claim(ns, {
        "metadata": {"name": "ok"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                             "resources": {"requests": {"storage": "1Gi"}}}})
    wait_for(lambda: core.read_namespaced_persistent_volume_claim("ok", ns).status.phase ==
             "Bound", what="bound")
    pvc = core.read_namespaced_persistent_volume_claim("ok", ns)
    assert pvc.spec.storage_class_name == "lab-local" and pvc.spec.volume_mode == "Filesystem"
    assert pvc.spec.volume_name == "pvc-" + pvc.metadata.uid
    with pytest.raises(ApiException) as exc:
        core.patch_namespaced_persistent_volume_claim("ok", ns, {"spec": {
            "storageClassName": "other"}})
    assert exc.value.status == 422 and "spec is immutable after creation" in exc.value.body
