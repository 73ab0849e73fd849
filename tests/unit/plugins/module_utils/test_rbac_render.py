"""docs/rbac/seed.yaml rendered for the user clusters of an inventory."""

import os

import pytest
import yaml

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import rbac_render
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

SEED = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "docs", "rbac", "seed.yaml")


def seed_docs():
    with open(SEED, encoding="utf-8") as fh:
        return list(yaml.safe_load_all(fh))


def key(obj):
    return (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])


def test_each_cluster_gets_the_example_namespaces_objects_and_the_rest_stays_once():
    out = rbac_render.for_clusters(seed_docs(), ["abc123def4", "x8p9sk2tzv", "abc123def4"])
    keys = [key(o) for o in out]
    assert len(keys) == len(set(keys))
    bindings = [o for o in out if o["kind"] == "RoleBinding" and
                o["metadata"]["name"] == "cloudhop-migrator-cluster"]
    namespaces = [b["metadata"]["namespace"] for b in bindings]
    assert namespaces == ["cluster-abc123def4", "cluster-x8p9sk2tzv"]
    # the cluster-wide roles and the credentials' Role in kubermatic: once each
    assert keys.count(("ClusterRole", None, "cloudhop-migrator")) == 1
    assert keys.count(("Role", "kubermatic", "cloudhop-migrator-credentials")) == 1
    # nothing of the example's id is left in another cluster's objects
    other = [o for o in out if o["metadata"].get("namespace") == "cluster-abc123def4"]
    assert other and "x8p9sk2tzv" not in yaml.safe_dump(other)
    # the input is not changed
    assert "cluster-abc123def4" not in yaml.safe_dump(seed_docs())


def test_single_objects_and_lists_both_count():
    docs = [{"kind": "List", "items": [
        {"kind": "Role", "metadata": {"name": "r", "namespace": "cluster-ex"}}]},
        {"kind": "ClusterRole", "metadata": {"name": "c"}}, None]
    out = rbac_render.for_clusters(docs, ["one", "two"], example_id="ex")
    assert [key(o) for o in out] == [("ClusterRole", None, "c"), ("Role", "cluster-one", "r"),
                                     ("Role", "cluster-two", "r")]


@pytest.mark.parametrize("ids, message", [
    ([], "no user cluster to render the RBAC for"),
    (["Cluster-1"], "'Cluster-1' is not a KKP cluster id"),
    (["a" * 56], "is not a KKP cluster id"),
    ([None], "None is not a KKP cluster id"),
])
def test_bad_cluster_ids_are_refused_naming_them(ids, message):
    with pytest.raises(MigrationError, match=message):
        rbac_render.for_clusters(seed_docs(), ids)


def test_a_file_without_the_example_namespace_is_refused():
    with pytest.raises(MigrationError, match="no object in the example namespace cluster-x8p9"):
        rbac_render.for_clusters([{"kind": "ClusterRole", "metadata": {"name": "c"}}], ["one"])
