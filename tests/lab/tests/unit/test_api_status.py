"""The lab API's status subresource: a status write changes only the status, gets a new
resourceVersion and a MODIFIED watch event (a watch from the previous version sees it), and a
stale resourceVersion on it is a 409, as on kube-apiserver."""

import pytest

from cloudhop_lab import errors
from cloudhop_lab.api import Api


@pytest.fixture(name="api")
def fixture_api():
    api = Api("unit")
    api.create(api.rt("", "v1", "namespaces"), None,
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}})
    return api


def _ds(api):
    rt = api.rt("apps", "v1", "daemonsets")
    created = api.create(rt, "kube-system", {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "canal", "namespace": "kube-system"},
        "spec": {"selector": {"matchLabels": {"k8s-app": "canal"}},
                 "template": {"metadata": {"labels": {"k8s-app": "canal"}},
                              "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    return rt, created


def test_a_status_write_gets_a_new_resource_version_and_a_watch_event(api):
    rt, ds = _ds(api)
    before = ds["metadata"]["resourceVersion"]
    cur = dict(ds, status={"observedGeneration": 1, "numberReady": 3},
               metadata=dict(ds["metadata"], labels={"ignored": "yes"}))
    out = api.update(rt, "kube-system", "canal", cur, sub="status")
    assert int(out["metadata"]["resourceVersion"]) > int(before)
    stored = api.get(rt, "kube-system", "canal")
    assert stored["metadata"]["resourceVersion"] == out["metadata"]["resourceVersion"]
    assert stored["status"]["numberReady"] == 3
    assert "labels" not in stored["metadata"]  # /status ignores everything but the status
    events = api.events_since(int(before), 0.1)[0]
    assert [(e[2], e[3]["status"]["numberReady"]) for e in events if e[1] == rt.key] == \
        [("MODIFIED", 3)]


def test_a_stale_resource_version_on_a_status_write_is_a_conflict(api):
    rt, ds = _ds(api)
    api.update(rt, "kube-system", "canal", dict(ds, status={"numberReady": 1}), sub="status")
    with pytest.raises(errors.ApiError) as exc:
        api.update(rt, "kube-system", "canal", dict(ds, status={"numberReady": 2}), sub="status")
    assert exc.value.code == 409
