"""Pure patch logic of the lab (no server)."""

import pytest

from cloudhop_lab import errors, patching


def test_merge_patch_rfc7386_examples():
    # examples from RFC 7386 appendix A
    cases = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, want in cases:
        assert patching.merge_patch(target, patch) == want


def test_merge_patch_does_not_mutate_input():
    target = {"a": {"b": 1}}
    patching.merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_json_patch_test_failure_is_422():
    with pytest.raises(errors.ApiError) as exc:
        patching.json_patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])
    assert exc.value.code == 422
    with pytest.raises(errors.ApiError) as exc:
        patching.json_patch({"a": 1}, {"op": "add"})
    assert exc.value.code == 400
    assert patching.json_patch({"a": [1]}, [{"op": "add", "path": "/a/-", "value": 2}]) == \
        {"a": [1, 2]}


POD = {"spec": {"containers": [
    {"name": "a", "image": "ia", "args": ["1", "2"], "env": [{"name": "X", "value": "1"}],
     "ports": [{"containerPort": 80}]},
    {"name": "b", "image": "ib"}]}}


def test_strategic_merge_keys_and_directives():
    schema = patching.schema_for("Pod")
    out = patching.strategic_merge(POD, {"spec": {"containers": [
        {"name": "a", "args": ["3"], "env": [{"name": "Y", "value": "2"}]},
        {"name": "b", "$patch": "delete"}]}}, schema)
    (a,) = out["spec"]["containers"]
    assert a["args"] == ["3"] and a["image"] == "ia"
    assert a["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]
    out = patching.strategic_merge(POD, {"spec": {
        "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
        "containers": [{"name": "b", "image": "ib2"}]}}, schema)
    assert [c["name"] for c in out["spec"]["containers"]] == ["b", "a"]
    assert out["spec"]["containers"][0]["image"] == "ib2"
    out = patching.strategic_merge({"metadata": {"finalizers": ["x", "y"]}},
                                   {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"],
                                                 "finalizers": ["z"]}}, schema)
    assert out["metadata"]["finalizers"] == ["y", "z"]
    out = patching.strategic_merge({"spec": {"m": {"a": 1, "b": 2}}},
                                   {"spec": {"m": {"$patch": "replace", "c": 3}}}, schema)
    assert out["spec"]["m"] == {"c": 3}


def test_strategic_merge_missing_merge_key_is_bad_request():
    with pytest.raises(errors.ApiError) as exc:
        patching.strategic_merge(POD, {"spec": {"containers": [{"image": "x"}]}},
                                 patching.schema_for("Pod"))
    assert exc.value.code == 400


def test_service_ports_merge_by_port_not_container_port():
    svc = {"spec": {"ports": [{"port": 80, "name": "http"}]}}
    out = patching.strategic_merge(svc, {"spec": {"ports": [{"port": 443, "name": "https"}]}},
                                   patching.schema_for("Service"))
    assert [p["port"] for p in out["spec"]["ports"]] == [80, 443]


def test_apply_ownership_conflict_force_and_removal():
    schema = patching.schema_for("ConfigMap")
    live = patching.apply(None, {"data": {"a": "1", "b": "2"}}, "alice", False, schema, "t",
                          "v1")
    live = patching.apply(live, {"data": {"b": "2", "c": "3"}}, "bob", False, schema, "t", "v1")
    # same value for b: shared ownership, no conflict
    assert live["data"] == {"a": "1", "b": "2", "c": "3"}
    with pytest.raises(errors.ApiError) as exc:
        patching.apply(live, {"data": {"b": "9"}}, "bob", False, schema, "t", "v1")
    assert exc.value.code == 409 and "alice" in exc.value.message
    live = patching.apply(live, {"data": {"b": "9"}}, "bob", True, schema, "t", "v1")
    assert live["data"] == {"a": "1", "b": "9"}  # bob dropped c; b forced
    live = patching.apply(live, {"data": {}}, "alice", False, schema, "t", "v1")
    assert live["data"] == {"b": "9"}  # alice dropped a; b now belongs to bob only
    managers = {m["manager"] for m in live["metadata"]["managedFields"]}
    assert managers == {"alice", "bob"}


def test_fields_v1_round_trip():
    paths = patching.leaf_paths({"spec": {"containers": [{"name": "a", "image": "x"}],
                                          "replicas": 2}}, patching.schema_for("Deployment"))
    tree = patching.paths_to_fields_v1(paths)
    assert tree["f:spec"]["f:replicas"] == {}
    assert patching.fields_v1_to_paths(tree) == paths


def test_record_update_transfers_changed_fields():
    schema = patching.schema_for("ConfigMap")
    old = patching.apply(None, {"data": {"a": "1"}}, "alice", False, schema, "t", "v1")
    new = {"data": {"a": "2"}, "metadata": dict(old["metadata"])}
    patching.record_update(old, new, "kubectl-edit", "t", "v1", schema)
    owners = {m["manager"]: m for m in new["metadata"]["managedFields"]}
    assert set(owners) == {"kubectl-edit"}
    assert owners["kubectl-edit"]["operation"] == "Update"
