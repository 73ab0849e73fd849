"""Retry logic of module_utils/kube.py: transient API failures (429, 5xx, timeouts, refused
connections) retried with backoff and then reported, 4xx never retried, a create that a retry
finds already done, the resourceVersion precondition on patches, and retry_on_conflict."""

import json

import pytest
from kubernetes.client.rest import ApiException
from urllib3.exceptions import ReadTimeoutError

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import kube as kube_utils
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError


class Answer:
    def __init__(self, obj):
        self.obj = obj

    def to_dict(self):
        return self.obj


def api_error(status, reason, message="boom"):
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "reason": reason, "message": message}).encode()
    return exc


class Resource:
    """Answers a scripted sequence: exceptions are raised, anything else returned."""

    def __init__(self, script):
        self.script = list(script)
        self.calls = []

    def _next(self, verb, kwargs):
        self.calls.append((verb, kwargs))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return Answer(item)

    def get(self, **kwargs):
        return self._next("get", kwargs)

    def patch(self, **kwargs):
        return self._next("patch", kwargs)

    def create(self, **kwargs):
        return self._next("create", kwargs)


class Client:
    def __init__(self, resource):
        self._resource = resource

    def resource(self, kind, api_version):  # pylint: disable=unused-argument
        return self._resource


def make(script):
    res = Resource(script)
    sleeps = []
    return kube_utils.Kube(Client(res), sleep=sleeps.append), res, sleeps


def test_5xx_and_timeouts_are_retried_with_growing_backoff():
    kube, res, sleeps = make([api_error(503, "ServiceUnavailable"),
                              ReadTimeoutError(None, "/apis", "Read timed out."),
                              api_error(429, "TooManyRequests"), {"metadata": {"name": "c"}}])
    assert kube.get("v1", "ConfigMap", "c", "ns") == {"metadata": {"name": "c"}}
    assert sleeps == [1, 2, 4]
    assert len(kube.retried) == 3 and "HTTP 503" in kube.retried[0]
    assert "ReadTimeoutError" in kube.retried[1]
    # every request carries a timeout, so a hung API server is a timeout, not a hang
    assert all(kw.get("_request_timeout") == kube_utils.REQUEST_TIMEOUT for _v, kw in res.calls)


def test_a_failure_that_lasts_is_reported_with_every_outcome():
    kube, res, sleeps = make([api_error(503, "ServiceUnavailable")] * 3 +
                             [ConnectionRefusedError(111, "Connection refused")] * 2)
    with pytest.raises(MigrationError) as err:
        kube.merge_patch("v1", "ConfigMap", "c", {"data": {"a": "b"}}, "ns")
    msg = err.value.msg
    assert msg.startswith("patching ConfigMap ns/c failed 5 times over 15 s")
    assert "HTTP 503" in msg and "Connection refused" in msg and "run again" in msg
    assert msg.count("HTTP 503") == 1  # the same outcome is named once
    assert sleeps == [1, 2, 4, 8] and len(res.calls) == 5


@pytest.mark.parametrize("status,reason", [(400, "BadRequest"), (403, "Forbidden"),
                                           (409, "Conflict"), (422, "Invalid")])
def test_client_errors_are_not_retried(status, reason):
    kube, res, sleeps = make([api_error(status, reason, "no")])
    with pytest.raises(MigrationError) as err:
        kube.merge_patch("v1", "ConfigMap", "c", {"data": {}}, "ns")
    assert sleeps == [] and len(res.calls) == 1
    assert err.value.details["status"] == status and err.value.details["reason"] == reason
    assert "HTTP %d" % status in err.value.msg


def test_a_create_whose_first_attempt_landed_is_not_an_error():
    obj = {"metadata": {"name": "c", "namespace": "ns"}}
    kube, res, dummy = make([ReadTimeoutError(None, "/api", "Read timed out."),
                             api_error(409, "AlreadyExists"), obj])
    assert kube.create("v1", "ConfigMap", obj, "ns") == obj
    assert [v for v, _kw in res.calls] == ["create", "create", "get"]


def test_a_create_that_finds_someone_elses_object_fails():
    obj = {"metadata": {"name": "c", "namespace": "ns"}}
    kube, dummy, dummy2 = make([api_error(409, "AlreadyExists", "configmaps \"c\" exists")])
    with pytest.raises(MigrationError) as err:
        kube.create("v1", "ConfigMap", obj, "ns")
    assert "AlreadyExists" in err.value.msg


def test_a_patch_carries_the_resource_version_it_was_computed_from():
    kube, res, dummy = make([{}])
    patch = {"spec": {"pause": True}}
    kube.merge_patch("kubermatic.k8c.io/v1", "Cluster", "x", patch, resource_version="42")
    body = res.calls[0][1]["body"]
    assert body == {"spec": {"pause": True}, "metadata": {"resourceVersion": "42"}}
    assert patch == {"spec": {"pause": True}}  # the caller's patch is not changed


def conflict():
    return MigrationError("patching Cluster x failed: modified (HTTP 409, Conflict)",
                          status=409, reason="Conflict")


def test_retry_on_conflict_redoes_the_read_and_the_change():
    kube, dummy, dummy2 = make([])
    outcomes = [conflict(), conflict(), "written"]

    def attempt():
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out
    assert kube_utils.retry_on_conflict(kube, "Cluster x", attempt) == "written"
    assert kube.conflicts == ["Cluster x", "Cluster x"]


def test_retry_on_conflict_gives_up_with_a_clear_message():
    kube, dummy, dummy2 = make([])

    def attempt():
        raise conflict()
    with pytest.raises(MigrationError) as err:
        kube_utils.retry_on_conflict(kube, "Cluster x", attempt, retries=3)
    assert "Cluster x was changed by another writer" in err.value.msg
    assert "4 times in a row (409 Conflict)" in err.value.msg
    assert len(kube.conflicts) == 4


def test_retry_on_conflict_leaves_other_errors_alone():
    kube, dummy, dummy2 = make([])
    calls = []

    def attempt():
        calls.append(1)
        raise MigrationError("exists", status=409, reason="AlreadyExists")
    with pytest.raises(MigrationError):
        kube_utils.retry_on_conflict(kube, "Cluster x", attempt)
    assert len(calls) == 1 and kube.conflicts == []


def test_forbidden_points_at_docs_rbac():
    exc = api_error(403, "Forbidden", 'machinedeployments.cluster.k8s.io "md" is forbidden: User '
                    '"cloudhop-migrator" cannot patch resource "machinedeployments"')
    text = kube_utils.api_error_message(exc)
    assert text.startswith('machinedeployments.cluster.k8s.io "md" is forbidden: User '
                           '"cloudhop-migrator" cannot patch') and "(HTTP 403, Forbidden)" in text
    assert "docs/rbac/" in text
    assert "docs/rbac/" not in kube_utils.api_error_message(api_error(409, "Conflict"))
