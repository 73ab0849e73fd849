"""API server semantics of the lab, through the real kubernetes client and raw HTTPS."""

import json
import threading
import time

import pytest
from kubernetes import client, watch

from .conftest import deployment, wait_for

# ------------------------------------------------------------------ discovery


def test_discovery_documents(raw):
    code, version = raw("GET", "/version")
    assert code == 200 and version["major"] == "1" and version["gitVersion"].startswith("v1.")
    code, api = raw("GET", "/api")
    assert code == 200 and api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    code, groups = raw("GET", "/apis")
    names = {g["name"]: g for g in groups["groups"]}
    assert {"apps", "policy", "apiextensions.k8s.io", "cluster.k8s.io"} <= set(names)
    assert names["apps"]["preferredVersion"]["groupVersion"] == "apps/v1"
    code, group = raw("GET", "/apis/cluster.k8s.io")
    assert code == 200 and group["kind"] == "APIGroup"
    code = raw("GET", "/apis/no.such.group/v1")[0]
    assert code == 404


def test_discovery_resource_details(raw):
    core_list = raw("GET", "/api/v1")[1]
    res = {r["name"]: r for r in core_list["resources"]}
    assert res["pods"]["namespaced"] is True and res["pods"]["kind"] == "Pod"
    assert res["nodes"]["namespaced"] is False and "no" in res["nodes"]["shortNames"]
    assert res["pods/eviction"]["kind"] == "Eviction" and res["pods/eviction"]["group"] == \
        "policy" and res["pods/eviction"]["verbs"] == ["create"]
    assert set(res["pods"]["verbs"]) >= {"create", "delete", "get", "list", "patch", "update",
                                         "watch", "deletecollection"}
    assert "pods/status" in res and "services/status" in res
    apps_list = raw("GET", "/apis/apps/v1")[1]
    res = {r["name"]: r for r in apps_list["resources"]}
    assert res["deployments/scale"]["kind"] == "Scale"
    assert res["deployments/scale"]["group"] == "autoscaling"
    assert "deploy" in res["deployments"]["shortNames"]
    md_list = raw("GET", "/apis/cluster.k8s.io/v1alpha1")[1]
    res = {r["name"]: r for r in md_list["resources"]}
    assert res["machinedeployments"]["kind"] == "MachineDeployment"
    assert {"machinedeployments/status", "machinedeployments/scale",
            "machines/status"} <= set(res)
    assert "machines/scale" not in res


def test_created_crd_appears_in_discovery_and_deleting_it_removes_it(raw):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.cloudhop.io"},
           "spec": {"group": "example.cloudhop.io", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                              "shortNames": ["wd"]},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object", "properties": {
                                          "spec": {"type": "object", "properties": {
                                              "size": {"type": "integer"}},
                                              "required": ["size"]}}}}}]}}
    code = raw("GET", "/apis/example.cloudhop.io/v1")[0]
    assert code == 404
    code, body = raw("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert code == 201, body
    try:
        code, lst = raw("GET", "/apis/example.cloudhop.io/v1")
        assert code == 200
        assert [r["name"] for r in lst["resources"]] == ["widgets"]
        assert lst["resources"][0]["shortNames"] == ["wd"]
        # structural schema: type errors are 422, unknown fields are pruned
        path = "/apis/example.cloudhop.io/v1/namespaces/default/widgets"
        code, err = raw("POST", path, {"apiVersion": "example.cloudhop.io/v1", "kind": "Widget",
                                       "metadata": {"name": "w"}, "spec": {"size": "big"}})
        assert code == 422 and err["reason"] == "Invalid" and "spec.size" in err["message"]
        code, err = raw("POST", path, {"apiVersion": "example.cloudhop.io/v1", "kind": "Widget",
                                       "metadata": {"name": "w"}, "spec": {}})
        assert code == 422 and "spec.size" in err["message"]
        code, obj = raw("POST", path, {"apiVersion": "example.cloudhop.io/v1", "kind": "Widget",
                                       "metadata": {"name": "w"},
                                       "spec": {"size": 3, "colour": "red"}})
        assert code == 201 and obj["spec"] == {"size": 3}
    finally:
        code = raw("DELETE",
                   "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                   "widgets.example.cloudhop.io")[0]
        assert code == 200
    code = raw("GET", "/apis/example.cloudhop.io/v1")[0]
    assert code == 404


def test_protected_group_crd_needs_approval_annotation(raw):
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "gadgets.cluster.x-k8s.io"},
           "spec": {"group": "cluster.x-k8s.io", "scope": "Namespaced",
                    "names": {"plural": "gadgets", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    # x-k8s.io is not protected; k8s.io is
    crd2 = json.loads(json.dumps(crd).replace("cluster.x-k8s.io", "gadgets.k8s.io"))
    crd2["metadata"]["name"] = "gadgets.gadgets.k8s.io"
    code, err = raw("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd2)
    assert code == 422
    assert "api-approved.kubernetes.io" in err["message"]


# ------------------------------------------------------------------ metadata and errors


def test_object_metadata(core, ns):
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert cm.metadata.uid and cm.metadata.creation_timestamp
    rv1 = int(cm.metadata.resource_version)
    cm2 = core.create_namespaced_config_map(ns, {"metadata": {"name": "b"}})
    assert int(cm2.metadata.resource_version) > rv1
    patched = core.patch_namespaced_config_map("a", ns, {"data": {"k": "w"}})
    assert int(patched.metadata.resource_version) > int(cm2.metadata.resource_version)
    assert patched.metadata.uid == cm.metadata.uid
    # a write that changes nothing is not persisted: same resourceVersion
    again = core.patch_namespaced_config_map("a", ns, {"data": {"k": "w"}})
    assert again.metadata.resource_version == patched.metadata.resource_version


def test_generation_bumps_on_spec_changes_only(apps, ns):
    dep = apps.create_namespaced_deployment(ns, deployment("gen"))
    assert dep.metadata.generation == 1
    dep = apps.patch_namespaced_deployment("gen", ns, {"metadata": {"labels": {"x": "y"}}})
    assert dep.metadata.generation == 1
    dep = apps.patch_namespaced_deployment("gen", ns, {"spec": {"replicas": 2}})
    assert dep.metadata.generation == 2
    # status writes never bump generation
    st = apps.read_namespaced_deployment_status("gen", ns)
    assert st.metadata.generation == 2


def test_error_statuses(core, ns, raw):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "dup"}})
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "dup"}})
    body = json.loads(exc.value.body)
    assert exc.value.status == 409 and body["reason"] == "AlreadyExists"
    assert body["kind"] == "Status" and body["details"]["name"] == "dup"
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_config_map("missing", ns)
    assert exc.value.status == 404 and json.loads(exc.value.body)["reason"] == "NotFound"
    # stale resourceVersion on PUT
    cm = core.read_namespaced_config_map("dup", ns)
    core.patch_namespaced_config_map("dup", ns, {"data": {"a": "1"}})
    cm.data = {"b": "2"}
    with pytest.raises(client.ApiException) as exc:
        core.replace_namespaced_config_map("dup", ns, cm)
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "Conflict"
    # invalid object
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "Not_Valid"}})
    body = json.loads(exc.value.body)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    # missing namespace
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert exc.value.status == 404 and "namespaces" in json.loads(exc.value.body)["message"]
    # auth
    code, body = raw("GET", "/api/v1/namespaces", token="wrong")
    assert code == 401 and body["reason"] == "Unauthorized"
    code, body = raw("GET", "/api/v1/namespaces", token="")
    assert code == 401


def test_invalid_workloads_are_rejected_with_field_paths(apps, ns):
    bad = deployment("bad")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as exc:
        apps.create_namespaced_deployment(ns, bad)
    assert exc.value.status == 422
    assert "spec.template.metadata.labels" in exc.value.body
    bad = deployment("bad2")
    bad["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(client.ApiException) as exc:
        apps.create_namespaced_deployment(ns, bad)
    assert exc.value.status == 422 and "spec.template.spec.containers" in exc.value.body
    apps.create_namespaced_deployment(ns, deployment("sel"))
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment("sel", ns, {"spec": {"selector": {
            "matchLabels": {"app": "sel", "x": "y"}}, "template": {"metadata": {
                "labels": {"app": "sel", "x": "y"}}}}})
    assert exc.value.status == 422 and "field is immutable" in exc.value.body


@pytest.mark.parametrize("body,ctype", [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"\xff\xfe", "application/json"),
    (b"", "application/json"),
    (b'{"metadata": "x"}', "application/json"),
    (b'{"kind": "Secret", "metadata": {"name": "x"}}', "application/json"),
])
def test_malformed_bodies_get_status_errors_not_crashes(raw, ns, body, ctype):
    code, resp = raw("POST", "/api/v1/namespaces/%s/configmaps" % ns, raw=body, ctype=ctype)
    assert code == 400, resp
    assert resp["kind"] == "Status" and resp["reason"] == "BadRequest"
    # the server is still healthy afterwards
    code = raw("GET", "/api/v1/namespaces/%s/configmaps" % ns)[0]
    assert code == 200


@pytest.mark.parametrize("body", [b"{", b"null", b"42", b'"str"', b'[{"op": "nope"}]'])
def test_malformed_patches(raw, core, ns, body):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "p"}})
    path = "/api/v1/namespaces/%s/configmaps/p" % ns
    for ctype in ("application/merge-patch+json", "application/json-patch+json",
                  "application/strategic-merge-patch+json"):
        code, resp = raw("PATCH", path, raw=body, ctype=ctype)
        assert code in (400, 422), (ctype, body, code, resp)
        assert resp["kind"] == "Status"
    code = raw("PATCH", path, raw=b"{}", ctype="text/plain")[0]
    assert code == 415


# ------------------------------------------------------------------ patches


def test_merge_patch_null_deletes(core, ns, raw):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "m", "labels": {"a": "1",
                                                                                "b": "2"}},
                                           "data": {"x": "1", "y": "2"}})
    code, obj = raw("PATCH", "/api/v1/namespaces/%s/configmaps/m" % ns,
                    {"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"y": None}},
                    ctype="application/merge-patch+json")
    assert code == 200
    assert obj["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert obj["data"] == {"x": "1"}


def test_json_patch_with_test_op(core, ns, raw):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "j"}, "data": {"x": "1"}})
    path = "/api/v1/namespaces/%s/configmaps/j" % ns
    code, obj = raw("PATCH", path, [{"op": "test", "path": "/data/x", "value": "1"},
                                    {"op": "replace", "path": "/data/x", "value": "2"},
                                    {"op": "add", "path": "/data/y", "value": "3"}],
                    ctype="application/json-patch+json")
    assert code == 200 and obj["data"] == {"x": "2", "y": "3"}
    code, err = raw("PATCH", path, [{"op": "test", "path": "/data/x", "value": "1"},
                                    {"op": "remove", "path": "/data/y"}],
                    ctype="application/json-patch+json")
    assert code == 422 and err["reason"] == "Invalid"
    assert core.read_namespaced_config_map("j", ns).data == {"x": "2", "y": "3"}


def test_strategic_merge_patch_list_semantics(apps, ns):
    dep = deployment("smp")
    dep["spec"]["template"]["spec"]["containers"] = [
        {"name": "a", "image": "img-a", "args": ["--one", "--two"],
         "env": [{"name": "E1", "value": "1"}, {"name": "E2", "value": "2"}],
         "ports": [{"containerPort": 80}],
         "volumeMounts": [{"name": "v", "mountPath": "/data"}]},
        {"name": "b", "image": "img-b"}]
    dep["spec"]["template"]["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    apps.create_namespaced_deployment(ns, dep)
    out = apps.patch_namespaced_deployment("smp", ns, {"spec": {"template": {"spec": {
        "containers": [{"name": "a", "args": ["--three"],
                        "env": [{"name": "E2", "value": "two"}, {"name": "E3", "value": "3"}],
                        "ports": [{"containerPort": 443}]},
                       {"name": "b", "$patch": "delete"},
                       {"name": "c", "image": "img-c"}]}}}})
    cs = {c.name: c for c in out.spec.template.spec.containers}
    assert set(cs) == {"a", "c"}
    assert cs["a"].args == ["--three"]  # plain lists are replaced whole
    assert cs["a"].image == "img-a"  # untouched fields stay
    assert [(e.name, e.value) for e in cs["a"].env] == [("E1", "1"), ("E2", "two"), ("E3", "3")]
    assert sorted(p.container_port for p in cs["a"].ports) == [80, 443]
    assert [m.mount_path for m in cs["a"].volume_mounts] == ["/data"]
    # $patch: replace replaces a whole list
    out = apps.patch_namespaced_deployment("smp", ns, {"spec": {"template": {"spec": {
        "containers": [{"$patch": "replace"}, {"name": "z", "image": "img-z"}]}}}})
    assert [c.name for c in out.spec.template.spec.containers] == ["z"]


def test_strategic_merge_patch_is_415_on_custom_resources(raw):
    path = "/apis/cluster.k8s.io/v1alpha1/namespaces/kube-system/machinedeployments/" \
           "to-migrate-vsphere-node"
    code, err = raw("PATCH", path, {"spec": {"paused": True}},
                    ctype="application/strategic-merge-patch+json")
    assert code == 415 and err["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in err["message"]
    code, md = raw("GET", path)
    assert not md["spec"].get("paused")


def test_server_side_apply_conflicts_and_force(raw, ns):
    path = "/api/v1/namespaces/%s/configmaps/ssa" % ns
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
           "data": {"owned": "a", "shared": "1"}}
    code, obj = raw("PATCH", path + "?fieldManager=alice", cfg,
                    ctype="application/apply-patch+yaml")
    assert code == 200 and obj["data"] == {"owned": "a", "shared": "1"}
    assert obj["metadata"]["managedFields"][0]["manager"] == "alice"
    code, err = raw("PATCH", path, cfg, ctype="application/apply-patch+yaml")
    assert code == 400 and "fieldManager" in err["message"]
    bob = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
           "data": {"shared": "2", "bob": "b"}}
    code, err = raw("PATCH", path + "?fieldManager=bob", bob,
                    ctype="application/apply-patch+yaml")
    assert code == 409 and err["reason"] == "Conflict" and "alice" in err["message"]
    code, obj = raw("PATCH", path + "?fieldManager=bob&force=true", bob,
                    ctype="application/apply-patch+yaml")
    assert code == 200 and obj["data"] == {"owned": "a", "shared": "2", "bob": "b"}
    # alice stops applying "owned": it is removed; "shared" now belongs to bob and stays
    code, obj = raw("PATCH", path + "?fieldManager=alice",
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
                     "data": {}}, ctype="application/apply-patch+yaml")
    assert code == 200 and obj["data"] == {"shared": "2", "bob": "b"}


# ------------------------------------------------------------------ dry run


def test_dry_run_never_stores(core, apps, ns, raw, user_audit):
    user_audit.mark()
    cm = core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"}, "data": {"a": "1"}},
                                           dry_run="All")
    assert cm.metadata.name == "dry" and cm.metadata.uid
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_config_map("dry", ns)
    assert exc.value.status == 404
    real = core.create_namespaced_config_map(ns, {"metadata": {"name": "dry"},
                                                  "data": {"a": "1"}})
    rv = real.metadata.resource_version
    out = core.patch_namespaced_config_map("dry", ns, {"data": {"a": "2"}}, dry_run="All")
    assert out.data == {"a": "2"}
    real.data = {"a": "3"}
    out = core.replace_namespaced_config_map("dry", ns, real, dry_run="All")
    assert out.data == {"a": "3"}
    core.delete_namespaced_config_map("dry", ns, dry_run="All")
    # a dry-run validation error is still an error
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map(ns, {"metadata": {"name": "BAD"}}, dry_run="All")
    assert exc.value.status == 422
    code = raw("PATCH", "/apis/apps/v1/namespaces/%s/deployments/none?dryRun=All" % ns,
               {"spec": {}}, ctype="application/merge-patch+json")[0]
    assert code == 404
    after = core.read_namespaced_config_map("dry", ns)
    assert after.metadata.resource_version == rv and after.data == {"a": "1"}
    records = [r for r in user_audit.since() if r.get("name") == "dry"]
    dry = [r for r in records if r["dryRun"]]
    assert {r["verb"] for r in dry} == {"create", "patch", "update", "delete"}
    assert all(r["query"].find("dryRun=All") >= 0 for r in dry)


# ------------------------------------------------------------------ selectors


def test_label_selectors(core, ns):
    for name, labels in (("a", {"env": "prod", "tier": "web"}),
                         ("b", {"env": "dev", "tier": "web"}),
                         ("c", {"env": "prod"}), ("d", {})):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": labels}})

    def names(sel):
        return sorted(i.metadata.name for i in
                      core.list_namespaced_config_map(ns, label_selector=sel).items)
    assert names("env=prod") == ["a", "c"]
    assert names("env==prod") == ["a", "c"]
    assert names("env!=prod") == ["b", "d"]
    assert names("env in (prod,dev)") == ["a", "b", "c"]
    assert names("env notin (prod)") == ["b", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", "d"]
    assert names("env=prod,tier=web") == ["a"]
    with pytest.raises(client.ApiException) as exc:
        names("env in prod")
    assert exc.value.status == 400


def test_field_selectors(core, apps, ns):
    apps.create_namespaced_deployment(ns, deployment("fs", replicas=3))
    pods = wait_for(lambda: [p for p in core.list_namespaced_pod(ns).items
                             if p.status.phase == "Running"] if len(
        core.list_namespaced_pod(ns, field_selector="status.phase=Running").items) == 3
        else None, what="3 running pods")
    node = pods[0].spec.node_name
    on_node = core.list_namespaced_pod(ns, field_selector="spec.nodeName=%s" % node).items
    assert on_node and all(p.spec.node_name == node for p in on_node)
    name = pods[0].metadata.name
    assert [p.metadata.name for p in core.list_namespaced_pod(
        ns, field_selector="metadata.name=%s" % name).items] == [name]
    assert name not in [p.metadata.name for p in core.list_namespaced_pod(
        ns, field_selector="metadata.name!=%s" % name).items]
    assert core.list_namespaced_pod(ns, field_selector="metadata.namespace=%s" % ns).items
    assert not core.list_namespaced_pod(ns, field_selector="status.phase=Pending").items
    schedulable = core.list_node(field_selector="spec.unschedulable=false").items
    assert len(schedulable) == len(core.list_node().items)
    with pytest.raises(client.ApiException) as exc:
        core.list_namespaced_pod(ns, field_selector="spec.bogus=1")
    assert exc.value.status == 400


def test_pagination(core, ns):
    for i in range(7):
        core.create_namespaced_config_map(ns, {"metadata": {"name": "p%d" % i}})
    first = core.list_namespaced_config_map(ns, limit=3)
    assert len(first.items) == 3 and first.metadata._continue
    seen = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=token)
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert sorted(seen) == ["p%d" % i for i in range(7)]


# ------------------------------------------------------------------ watch


def test_watch_from_resource_version(core, ns):
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    events = []

    def consume():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv,
                           timeout_seconds=5):
            events.append((ev["type"], ev["object"].metadata.name))
            if len(events) == 3:
                w.stop()
    # the changes happen before the watch starts: a watch from a resourceVersion replays them
    core.create_namespaced_config_map(ns, {"metadata": {"name": "w"}})
    core.patch_namespaced_config_map("w", ns, {"data": {"a": "b"}})
    core.delete_namespaced_config_map("w", ns)
    t = threading.Thread(target=consume)
    t.start()
    t.join(10)
    assert events == [("ADDED", "w"), ("MODIFIED", "w"), ("DELETED", "w")]


def test_watch_without_rv_lists_first_and_honours_selector_and_timeout(core, ns, raw):
    core.create_namespaced_config_map(ns, {"metadata": {"name": "pre", "labels": {"w": "1"}}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "other"}})
    started = time.monotonic()
    w = watch.Watch()
    got = [(e["type"], e["object"].metadata.name) for e in w.stream(
        core.list_namespaced_config_map, ns, label_selector="w=1", timeout_seconds=1)]
    assert got == [("ADDED", "pre")]
    assert 0.8 < time.monotonic() - started < 5


def test_watch_from_a_compacted_resource_version_is_expired(core, ns, raw, lab_admin):
    old_rv = core.list_namespaced_config_map(ns).metadata.resource_version
    code, body = raw("GET", "/api/v1/namespaces/%s/configmaps?watch=1&resourceVersion=%s"
                     "&timeoutSeconds=1" % (ns, old_rv))
    assert code == 200  # still in the history
    assert lab_admin({"cmd": "compact", "cluster": "user"})["ok"]
    code, body = raw("GET", "/api/v1/namespaces/%s/configmaps?watch=1&resourceVersion=%s"
                     "&timeoutSeconds=1" % (ns, old_rv))
    assert code == 410 and body["reason"] == "Expired"
    # a fresh resourceVersion works again
    new_rv = core.list_namespaced_config_map(ns).metadata.resource_version
    code = raw("GET", "/api/v1/namespaces/%s/configmaps?watch=1&resourceVersion=%s"
               "&timeoutSeconds=1" % (ns, new_rv))[0]
    assert code == 200


# ------------------------------------------------------------------ status and scale


def test_status_subresource_rule(custom):
    md = custom.get_namespaced_custom_object("cluster.k8s.io", "v1alpha1", "kube-system",
                                             "machinedeployments", "to-migrate-vsphere-node")
    replicas = md["status"]["replicas"]
    out = custom.patch_namespaced_custom_object(
        "cluster.k8s.io", "v1alpha1", "kube-system", "machinedeployments",
        "to-migrate-vsphere-node", {"status": {"replicas": 99}})
    assert out["status"]["replicas"] == replicas
    scale = custom.get_namespaced_custom_object_scale(
        "cluster.k8s.io", "v1alpha1", "kube-system", "machinedeployments",
        "to-migrate-vsphere-node")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == md["spec"]["replicas"]


def test_custom_resource_update_needs_resource_version(raw):
    path = "/apis/cluster.k8s.io/v1alpha1/namespaces/kube-system/machinedeployments/" \
           "to-migrate-vsphere-node"
    md = raw("GET", path)[1]
    del md["metadata"]["resourceVersion"]
    code, err = raw("PUT", path, md)
    assert code == 422 and "resourceVersion" in err["message"]


def test_deployment_scale_subresource(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("sc", replicas=1))
    apps.patch_namespaced_deployment_scale("sc", ns, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("sc", ns).spec.replicas == 3
    scale = apps.read_namespaced_deployment_scale("sc", ns)
    assert scale.spec.replicas == 3
    wait_for(lambda: apps.read_namespaced_deployment_scale("sc", ns).status.replicas == 3,
             what="scale status")
    assert "app=sc" in apps.read_namespaced_deployment_scale("sc", ns).status.selector


BUILTIN = [("", "v1", "namespaces", False), ("", "v1", "nodes", False), ("", "v1", "pods", True),
           ("", "v1", "services", True), ("", "v1", "endpoints", True),
           ("", "v1", "configmaps", True), ("", "v1", "secrets", True),
           ("", "v1", "serviceaccounts", True), ("", "v1", "events", True),
           ("apps", "v1", "deployments", True), ("apps", "v1", "daemonsets", True),
           ("apps", "v1", "replicasets", True), ("policy", "v1", "poddisruptionbudgets", True),
           ("apiextensions.k8s.io", "v1", "customresourcedefinitions", False)]


@pytest.mark.parametrize("group,version,plural,namespaced", BUILTIN)
def test_builtin_kinds_are_served(raw, group, version, plural, namespaced):
    base = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
    code, lst = raw("GET", base)
    entry = next(r for r in lst["resources"] if r["name"] == plural)
    assert entry["namespaced"] is namespaced
    code, items = raw("GET", "%s/%s" % (base, plural))
    assert code == 200 and items["kind"] == entry["kind"] + "List"
    assert "resourceVersion" in items["metadata"]


def test_simple_builtin_objects_round_trip(core, ns):
    wait_for(lambda: core.read_namespaced_service_account("default", ns),
             what="default service account")
    core.create_namespaced_service_account(ns, {"metadata": {"name": "sa"}})
    core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    secret = core.read_namespaced_secret("s", ns)
    assert secret.type == "Opaque" and secret.data == {"k": "dg=="}  # stringData -> data
    core.create_namespaced_event(ns, {"metadata": {"name": "e"}, "involvedObject": {
        "kind": "Pod", "name": "p", "namespace": ns}, "reason": "Test", "message": "m",
        "type": "Normal"})
    assert [e.reason for e in core.list_namespaced_event(
        ns, field_selector="involvedObject.name=p").items] == ["Test"]
    svc = core.create_namespaced_service(ns, {"metadata": {"name": "svc"}, "spec": {
        "type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}})
    assert svc.spec.cluster_ip.startswith("10.240.") and svc.spec.ports[0].target_port == 80
    assert 30000 <= svc.spec.ports[0].node_port <= 32767
    with pytest.raises(client.ApiException) as exc:
        core.patch_namespaced_service("svc", ns, {"spec": {"clusterIP": "10.240.16.99"}})
    assert exc.value.status == 422 and "immutable" in exc.value.body
