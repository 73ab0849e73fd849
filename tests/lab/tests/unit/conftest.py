"""Fixtures of the lab's unit tests."""

import pytest

from cloudhop_lab.api import Api

NS = "kube-system"


@pytest.fixture(name="api")
def fixture_api():
    """A lab API server in memory, with namespace kube-system."""
    api = Api("unit")
    api.create(api.rt("", "v1", "namespaces"), None,
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    return api
