"""Selectors, validation and rollout arithmetic of the lab (no server)."""

import pytest

from cloudhop_lab import errors, selectors, semantics
from cloudhop_lab.controllers.base import resolve, rollout_plan

LABELS = {"env": "prod", "tier": "web"}


@pytest.mark.parametrize("sel,want", [
    ("env=prod", True), ("env==prod", True), ("env!=prod", False), ("env=dev", False),
    ("env in (dev, prod)", True), ("env notin (prod)", False), ("tier", True),
    ("!tier", False), ("!missing", True), ("missing", False), ("missing!=x", True),
    ("env=prod,tier=web", True), ("env=prod,tier=db", False), ("", True),
])
def test_label_selector(sel, want):
    assert selectors.label_matches(selectors.parse_label_selector(sel), LABELS) is want


@pytest.mark.parametrize("bad", ["env in prod", "=x", "env=(x)", "a b"])
def test_bad_label_selector(bad):
    with pytest.raises(errors.ApiError) as exc:
        selectors.parse_label_selector(bad)
    assert exc.value.code == 400


def test_label_selector_object_semantics():
    assert selectors.selector_matches({}, LABELS)  # empty selector matches everything
    assert not selectors.selector_matches(None, LABELS)  # nil selector matches nothing
    assert selectors.selector_matches({"matchExpressions": [
        {"key": "env", "operator": "In", "values": ["prod"]},
        {"key": "gone", "operator": "DoesNotExist"}]}, LABELS)


def test_field_selector():
    pod = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"nodeName": "a"},
           "status": {"phase": "Running"}}
    reqs = selectors.parse_field_selector("spec.nodeName=a,status.phase!=Pending", "Pod")
    assert selectors.field_matches(reqs, pod)
    node = {"metadata": {"name": "n"}, "spec": {}}
    assert selectors.field_matches(
        selectors.parse_field_selector("spec.unschedulable=false", "Node"), node)
    with pytest.raises(errors.ApiError):
        selectors.parse_field_selector("spec.nodeName=a", "ConfigMap")


def _causes(kind, obj):
    causes = []
    semantics.validate_meta(kind, obj, causes)
    semantics.validate(kind, obj, causes)
    return [c[0] for c in causes]


def test_validation_field_paths():
    assert _causes("ConfigMap", {"metadata": {"name": "UPPER"}}) == ["metadata.name"]
    service = {"metadata": {"name": "a.b"},
               "spec": {"ports": [{"port": 80}], "type": "ClusterIP"}}
    assert _causes("Service", service) == ["metadata.name"]  # services need DNS labels
    assert "spec.ports[0].port" in _causes("Service", {"metadata": {"name": "s"}, "spec": {
        "type": "ClusterIP", "ports": [{"port": 70000}]}})
    assert "spec.selector" in _causes("Deployment", {"metadata": {"name": "d"}, "spec": {
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    assert "spec" in _causes("PodDisruptionBudget", {"metadata": {"name": "p"}, "spec": {
        "minAvailable": 1, "maxUnavailable": 1}})
    assert "data[k]" in _causes("Secret", {"metadata": {"name": "s"}, "data": {"k": "!!"}})
    assert _causes("Pod", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "i"}]}}) == []


def test_crd_schema_pruning_and_types():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "n": {"type": "integer"}, "e": {"type": "string", "enum": ["a", "b"]},
        "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        "required": ["n"]}}}
    causes = []
    out = semantics.schema_prune_validate({"spec": {"n": 1, "x": 2, "open": {"y": 1}}}, schema,
                                          "", causes)
    assert causes == [] and out == {"spec": {"n": 1, "open": {"y": 1}}}
    causes = []
    semantics.schema_prune_validate({"spec": {"n": "1", "e": "c"}}, schema, "", causes)
    assert [c[0] for c in causes] == ["spec.n", "spec.e"]


@pytest.mark.parametrize("value,total,up,want", [
    (1, 10, True, 1), ("25%", 10, True, 3), ("25%", 10, False, 2), ("0%", 3, True, 0),
    ("100%", 3, False, 3)])
def test_resolve_int_or_percent(value, total, up, want):
    assert resolve(value, total, up) == want


def _rs(name, ts="2026-01-01T00:00:00Z"):
    return {"metadata": {"name": name, "creationTimestamp": ts}}


def test_rollout_plan_surge_and_unavailable():
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    # start: 3 old ready, new has 0 -> new may go to 1 (surge), nothing old removed yet
    new, plan = rollout_plan(3, strategy, 0, 0, [(_rs("old"), 3, 3)])
    assert new == 1 and plan == {"old": 3}
    # new pod ready -> one old may go
    new, plan = rollout_plan(3, strategy, 1, 1, [(_rs("old"), 3, 3)])
    assert new == 1 and plan == {"old": 2}
    # recreate: old first
    new, plan = rollout_plan(3, {"type": "Recreate"}, 0, 0, [(_rs("old"), 3, 3)])
    assert new == 0 and plan == {"old": 0}
    new, plan = rollout_plan(3, {"type": "Recreate"}, 0, 0, [(_rs("old"), 0, 0)])
    assert new == 3
    # unready old replicas are removed first even without budget
    new, plan = rollout_plan(2, strategy, 1, 0, [(_rs("old"), 2, 1)])
    assert plan == {"old": 1}
