"""A stale discovery cache (the kubernetes client keeps one per server URL in the temp directory;
another server that answered at the same URL wrote it) and 404s: module_utils/kube.py reads
discovery afresh once and says clearly what is wrong instead of an "unexpected error: 404"."""

import json

import pytest
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import NotFoundError

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import kube as kube_utils
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError


class Answer:
    def __init__(self, obj):
        self.obj = obj

    def to_dict(self):
        return self.obj


def not_found(name=None):
    """kube-apiserver's 404: an object's names it; a resource the server lacks names none."""
    exc = ApiException(status=404, reason="Not Found")
    body = {"kind": "Status", "reason": "NotFound", "code": 404, "details": {},
            "message": "the server could not find the requested resource"}
    if name:
        body.update(message='configmaps "%s" not found' % name,
                    details={"name": name, "kind": "configmaps"})
    exc.body = json.dumps(body).encode()
    return NotFoundError(exc)


class Resource:
    def __init__(self, script):
        self.script = script

    def get(self, **_kwargs):
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        return Answer(item)

    patch = get


class Discoverer:
    def __init__(self):
        self.invalidated = 0

    def invalidate_cache(self):
        self.invalidated += 1


class Client:
    """resource() answers from the (stale) cache; client.request is the live discovery GET."""

    def __init__(self, script, live_kinds):
        self._res = Resource(script)
        self.resources = Discoverer()
        self.live_kinds = live_kinds
        self.client = self

    def resource(self, kind, api_version):  # pylint: disable=unused-argument
        return self._res

    def request(self, _method, path):
        if not self.live_kinds:
            raise not_found()
        return {"resources": [{"name": k.lower() + "s", "kind": k} for k in self.live_kinds]}


def test_a_cached_resource_the_server_lacks_is_said_clearly_after_one_rediscovery():
    client = Client([not_found()], live_kinds=[])
    kube = kube_utils.Kube(client, sleep=lambda _s: None)
    kube.resource("cluster.k8s.io/v1alpha1", "MachineDeployment",
                  "machine-controller CRDs; point kubeconfig at the user cluster")
    with pytest.raises(MigrationError) as err:
        kube.list("cluster.k8s.io/v1alpha1", "MachineDeployment", "kube-system")
    assert "does not serve cluster.k8s.io/v1alpha1 MachineDeployment" in err.value.msg
    assert "point kubeconfig at the user cluster" in err.value.msg
    assert client.resources.invalidated == 1


def test_a_get_on_a_stale_cache_is_not_taken_for_a_missing_object():
    client = Client([not_found()], live_kinds=[])
    kube = kube_utils.Kube(client, sleep=lambda _s: None)
    with pytest.raises(MigrationError) as err:
        kube.get("v1", "ConfigMap", "x", "ns")
    assert "does not serve v1 ConfigMap" in err.value.msg


def test_a_resource_the_fresh_discovery_finds_is_tried_once_more():
    client = Client([not_found(), {"items": [{"metadata": {"name": "a"}}]}],
                    live_kinds=["ConfigMap"])
    kube = kube_utils.Kube(client, sleep=lambda _s: None)
    assert kube.list("v1", "ConfigMap", "ns") == [{"metadata": {"name": "a"}}]
    assert client.resources.invalidated == 1


def test_an_objects_404_is_a_clear_error_or_none():
    kube = kube_utils.Kube(Client([not_found("x"), not_found("x")], live_kinds=["ConfigMap"]),
                           sleep=lambda _s: None)
    assert kube.get("v1", "ConfigMap", "x", "ns") is None
    with pytest.raises(MigrationError) as err:
        kube.merge_patch("v1", "ConfigMap", "x", {"data": {"a": "b"}}, "ns")
    assert err.value.msg.startswith('patching ConfigMap ns/x failed: configmaps "x" not found')
    assert err.value.details["status"] == 404
