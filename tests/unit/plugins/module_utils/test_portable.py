"""A Deployment made portable: what its pods reference, which Services and PDBs select it,
what only the old cluster knows stripped, and the comparison that tells a copy already there
from a conflict."""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import portable as pt

POD_SPEC = {
    "serviceAccountName": "api",
    "imagePullSecrets": [{"name": "registry"}],
    "volumes": [{"name": "cfg", "configMap": {"name": "api-config"}},
                {"name": "tls", "secret": {"secretName": "api-tls", "optional": True}},
                {"name": "all", "projected": {"sources": [
                    {"configMap": {"name": "feature-flags"}}, {"secret": {"name": "api-tls"}},
                    {"serviceAccountToken": {"path": "token"}}]}}],
    "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "db-init"}}]}],
    "containers": [{"name": "api", "env": [
        {"name": "A", "value": "1"},
        {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "api-config", "key": "b"}}},
        {"name": "C", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw",
                                                     "optional": True}}},
        {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "envFrom": [{"configMapRef": {"name": "common", "optional": True}}]}]}


def test_references_every_way_a_pod_names_a_configmap_secret_or_service_account():
    assert pt.references(POD_SPEC) == {
        ("ServiceAccount", "api"): False, ("Secret", "registry"): False,
        ("ConfigMap", "api-config"): False,
        # optional in the volume, required in the projection: required
        ("Secret", "api-tls"): False,
        ("ConfigMap", "feature-flags"): False, ("Secret", "db-init"): False,
        ("Secret", "db"): True, ("ConfigMap", "common"): True}
    assert pt.references({"serviceAccountName": "default", "containers": []}) == {}
    assert pt.references({"volumes": [{"name": "d", "persistentVolumeClaim": {
        "claimName": "data"}}]}) == {("PersistentVolumeClaim", "data"): False}


def test_service_and_pdb_selectors():
    labels = {"app": "api", "tier": "backend"}
    assert pt.selects({"app": "api"}, labels)
    assert not pt.selects({"app": "web"}, labels) and not pt.selects({}, labels)

    def pdb(selector):
        return {"spec": {"selector": selector}}
    assert pt.pdb_selects(pdb({"matchLabels": {"app": "api"}}), labels)
    assert pt.pdb_selects(pdb({"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["backend", "db"]},
        {"key": "canary", "operator": "DoesNotExist"}]}), labels)
    assert not pt.pdb_selects(pdb({"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["backend"]}]}), labels)
    assert not pt.pdb_selects(pdb({"matchExpressions": [
        {"key": "zone", "operator": "Exists"}]}), labels)
    assert pt.pdb_selects(pdb({}), labels)  # policy/v1: an empty selector selects all
    assert not pt.pdb_selects({"spec": {}}, labels)  # a null one nothing


def test_portable_strips_what_only_the_old_cluster_knows():
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "api", "namespace": "shop", "uid": "u", "resourceVersion": "7",
                        "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{}],
                        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}",
                                        "team": "payments"},
                        "labels": {"app": "api"}},
           "spec": {"type": "NodePort", "clusterIP": "10.240.16.20",
                    "clusterIPs": ["10.240.16.20"], "selector": {"app": "api"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http",
                               "nodePort": 31000}]},
           "status": {"loadBalancer": {}}}
    out = pt.portable(svc, "old/shop/api", "shop2")
    assert out["metadata"] == {"name": "api", "namespace": "shop2", "labels": {"app": "api"},
                               "annotations": {"team": "payments", pt.ORIGIN: "old/shop/api"}}
    assert out["spec"] == {"type": "NodePort", "selector": {"app": "api"}, "ports": [
        {"name": "http", "port": 80, "targetPort": "http"}]}
    assert "status" not in out and svc["spec"]["clusterIP"] == "10.240.16.20"  # not mutated
    headless = dict(svc, spec=dict(svc["spec"], type="ClusterIP", clusterIP="None",
                                   clusterIPs=["None"]))
    assert pt.portable(headless, "o")["spec"]["clusterIP"] == "None"
    assert "clusterIPs" not in pt.portable(headless, "o")["spec"]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "api", "generation": 4, "ownerReferences": [{}],
                        "annotations": {"deployment.kubernetes.io/revision": "3"}},
           "spec": {"replicas": 0, "template": {"spec": POD_SPEC}}}
    out = pt.portable(dep, "o", replicas=2)
    assert out["spec"]["replicas"] == 2 and out["spec"]["template"]["spec"] == POD_SPEC
    assert out["metadata"] == {"name": "api", "annotations": {pt.ORIGIN: "o"}}
    sa = pt.portable({"kind": "ServiceAccount", "metadata": {"name": "api"},
                      "secrets": [{"name": "api-token-x"}],
                      "imagePullSecrets": [{"name": "registry"}]}, "o")
    assert "secrets" not in sa and sa["imagePullSecrets"] == [{"name": "registry"}]


def test_contains_ignores_server_defaults_but_not_differences():
    desired = {"spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"app": "a"}},
               "data": {"k": "v"}}
    existing = {"spec": {"ports": [{"port": 80, "targetPort": "http", "protocol": "TCP"}],
                         "selector": {"app": "a"}, "clusterIP": "10.0.0.1",
                         "sessionAffinity": "None"},
                "data": {"k": "v"}, "metadata": {"uid": "x"}}
    assert pt.contains(existing, desired)
    assert pt.contains({"cpu": 1.0}, {"cpu": 1})
    assert not pt.contains({"flag": 1}, {"flag": True})
    changed = {"spec": dict(existing["spec"], selector={"app": "b"}), "data": {"k": "other"}}
    assert not pt.contains(changed, desired)
    assert pt.differences(changed, desired) == ["data.k", "spec.selector.app"]
    assert not pt.contains({"spec": {"ports": []}}, {"spec": {"ports": [{"port": 80}]}})
    assert pt.differences({}, {"a": 1}) == ["a (missing)"]


def test_creation_order_puts_what_the_deployment_needs_first():
    objs = [{"kind": k, "metadata": {"name": n}} for k, n in [
        ("Deployment", "api"), ("Service", "api"), ("Secret", "b"), ("ConfigMap", "c"),
        ("PodDisruptionBudget", "api"), ("ServiceAccount", "api"), ("Secret", "a")]]
    assert [(o["kind"], o["metadata"]["name"]) for o in pt.sort_objects(objs)] == [
        ("ServiceAccount", "api"), ("ConfigMap", "c"), ("Secret", "a"), ("Secret", "b"),
        ("Service", "api"), ("PodDisruptionBudget", "api"), ("Deployment", "api")]


def _dep(name, env):
    return {"metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "env": env}]}}}}


def test_move_order_puts_deployments_without_a_database_first():
    deps = [_dep("api", [{"name": "MONGODB_URI", "value": "mongodb://db:27017/x"}]),
            _dep("web", [{"name": "PORT", "value": "80"}]),
            _dep("worker", [{"name": "QUEUE", "value": "redis://cache:6379/0"}]),
            _dep("billing", [{"name": "DB_HOST", "valueFrom": {"secretKeyRef": {
                "name": "db", "key": "host"}}}]),
            _dep("cart", []), _dep("static", [{"name": "DEBUG", "value": "0"}])]
    assert pt.move_order(deps) == ["cart", "static", "web", "api", "billing", "worker"]
    assert not pt.uses_database({"containers": [{"env": [{"name": "DBG", "value": "1"}]}]})


def test_env_gives_the_new_clusters_values_and_refuses_a_name_no_container_sets():
    import pytest
    from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
        MigrationError)
    init = {"name": "init", "env": [
        {"name": "MONGODB_URI", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}
    app = {"name": "app", "env": [{"name": "MONGODB_URI", "value": "mongodb://10.2.0.200:27017/shop"},
                                  {"name": "MODE", "value": "a"}]}
    dep = {"kind": "Deployment", "metadata": {"name": "api"}, "spec": {"replicas": 2, "template": {
        "spec": {"initContainers": [init], "containers": [app]}}}}
    uri = "mongodb://172.31.0.200:27017/shop"
    out = pt.portable(dep, "old/shop/api", env={"MONGODB_URI": uri})
    pod = out["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["env"] == [{"name": "MONGODB_URI", "value": uri}]
    assert pod["containers"][0]["env"] == [{"name": "MONGODB_URI", "value": uri},
                                           {"name": "MODE", "value": "a"}]
    # the source object is untouched
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"].startswith(
        "mongodb://10.2")
    with pytest.raises(MigrationError, match="env: no container has DB_HOST"):
        pt.portable(dep, "old/shop/api", env={"DB_HOST": "x", "MODE": "b"})


def test_moved_api_version_is_the_one_the_copy_writes_and_refuses_other_kinds():
    import pytest
    from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
        MigrationError)
    assert pt.moved_api_version("PodDisruptionBudget") == "policy/v1"
    assert pt.moved_api_version("Deployment") == "apps/v1"
    assert pt.moved_api_version("Secret") == "v1"
    # deployment_copy writes every kind with this map: one place for both
    from ansible_collections.cloudhop.k8s_migration.plugins.modules import deployment_copy
    assert deployment_copy.API is pt.MOVED_KINDS
    with pytest.raises(MigrationError, match="no objects of kind 'Ingress'.*ConfigMap, Deployment"):
        pt.moved_api_version("Ingress")


def test_pdb_shortfall_names_a_budget_not_met_missing_or_not_observed():
    from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.workloads import (
        pdb_shortfall)
    met = {"metadata": {"generation": 2},
           "status": {"observedGeneration": 2, "currentHealthy": 3, "desiredHealthy": 3}}
    assert pdb_shortfall(met, "api", "shop") == ""
    short = {"metadata": {"generation": 2},
             "status": {"observedGeneration": 2, "currentHealthy": 2, "desiredHealthy": 3}}
    assert pdb_shortfall(short, "api", "shop") == \
        "PodDisruptionBudget shop/api has 2 healthy pods of the 3 it asks for"
    # counts of an older generation (minAvailable just raised) do not count as met
    stale = {"metadata": {"generation": 3}, "status": dict(met["status"])}
    assert "not yet observed" in pdb_shortfall(stale, "api", "shop")
    assert pdb_shortfall({"metadata": {"generation": 1}, "status": {"observedGeneration": 1}}, "api") == \
        "PodDisruptionBudget api has 0 healthy pods of the ? it asks for"
    assert pdb_shortfall(None, "api", "shop") == "PodDisruptionBudget shop/api does not exist"
