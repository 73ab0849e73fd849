"""Fixtures for tests that run against a live lab (inside clh-ctl, via tests/lab/run)."""

import json
import os
import time
import uuid

import pytest
import urllib3
from kubernetes import client, config, dynamic

from cloudhop_lab.cli import admin

LAB = os.environ.get("CLH_LAB_DIR")


def pytest_collection_modifyitems(items):
    if not LAB:
        for item in items:
            item.add_marker(pytest.mark.skip(reason="needs a running lab: run through "
                                                    "tests/lab/run after make lab-up"))


class Raw:
    """Plain HTTPS requests to one lab API server (for bodies the typed client cannot send)."""

    def __init__(self, kubeconfig):
        with open(kubeconfig, encoding="utf-8") as fh:
            cfg = json.load(fh)
        self.server = cfg["clusters"][0]["cluster"]["server"]
        self.token = cfg["users"][0]["user"]["token"]
        self.http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED",
            ca_certs=cfg["clusters"][0]["cluster"]["certificate-authority"])

    def __call__(self, method, path, body=None, ctype="application/json", token=None,
                 raw=None, headers=None):
        hdrs = {"Authorization": "Bearer %s" % (self.token if token is None else token),
                "Content-Type": ctype, "User-Agent": "lab-tests"}
        hdrs.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        resp = self.http.request(method, self.server + path, body=data, headers=hdrs,
                                 preload_content=True, timeout=30)
        try:
            payload = json.loads(resp.data) if resp.data else None
        except ValueError:
            payload = resp.data
        return resp.status, payload


@pytest.fixture(scope="session")
def seed_kubeconfig():
    return os.environ["CLH_SEED_KUBECONFIG"]


@pytest.fixture(scope="session")
def user_kubeconfig():
    return os.environ["CLH_USER_KUBECONFIG"]


@pytest.fixture(scope="session")
def seed_client(seed_kubeconfig):
    return config.new_client_from_config(seed_kubeconfig)


@pytest.fixture(scope="session")
def user_client(user_kubeconfig):
    return config.new_client_from_config(user_kubeconfig)


@pytest.fixture(scope="session")
def seed_dyn(seed_client):
    return dynamic.DynamicClient(seed_client)


@pytest.fixture(scope="session")
def user_dyn(user_client):
    return dynamic.DynamicClient(user_client)


@pytest.fixture(scope="session")
def core(user_client):
    return client.CoreV1Api(user_client)


@pytest.fixture(scope="session")
def apps(user_client):
    return client.AppsV1Api(user_client)


@pytest.fixture(scope="session")
def seed_core(seed_client):
    return client.CoreV1Api(seed_client)


@pytest.fixture(scope="session")
def custom(user_client):
    return client.CustomObjectsApi(user_client)


@pytest.fixture(scope="session")
def seed_custom(seed_client):
    return client.CustomObjectsApi(seed_client)


@pytest.fixture(scope="session")
def raw(user_kubeconfig):
    return Raw(user_kubeconfig)


@pytest.fixture(scope="session")
def seed_raw(seed_kubeconfig):
    return Raw(seed_kubeconfig)


@pytest.fixture()
def ns(core):
    """A fresh namespace in the user cluster, deleted afterwards."""
    name = "t-" + uuid.uuid4().hex[:8]
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException:
        pass


def wait_for(fn, timeout=20, interval=0.05, what="condition"):
    """Poll fn until it returns a truthy value; return it. Fails the test on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except (client.ApiException, AttributeError, KeyError, TypeError) as exc:
            # status fields are absent until a controller writes them, as in a real cluster
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s (last: %r)" % (timeout, what, last))


class AuditLog:
    """Read the lab's audit log lines written after a mark."""

    def __init__(self, cluster):
        self.path = os.path.join(LAB, "audit-%s.jsonl" % cluster)
        self.offset = 0

    def mark(self):
        self.offset = os.path.getsize(self.path)

    def since(self):
        time.sleep(0.05)
        with open(self.path, encoding="utf-8") as fh:
            fh.seek(self.offset)
            return [json.loads(line) for line in fh if line.strip()]

    def writes(self):
        return [r for r in self.since()
                if r["method"] in ("POST", "PUT", "PATCH", "DELETE") and not r["dryRun"]]


@pytest.fixture()
def user_audit():
    return AuditLog("user")


@pytest.fixture()
def seed_audit():
    return AuditLog("seed")


@pytest.fixture()
def lab_admin():
    return admin


def deployment(name, replicas=1, labels=None, image="cloudhop/echo:lab", **spec):
    labels = labels or {"app": name}
    body = {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "c", "image": image}]}}}}
    body["spec"].update(spec)
    return body
