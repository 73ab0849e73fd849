"""The lab's RBAC authorizer: bindings, subjects, rule matching."""

import pytest

from cloudhop_lab import rbac


def meta(name, ns=None):
    out = {"name": name}
    if ns:
        out["namespace"] = ns
    return out


STORE = {
    "ClusterRole": [
        {"metadata": meta("seed-reader"), "rules": [
            {"apiGroups": ["kubermatic.k8c.io"], "resources": ["clusters"],
             "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
            {"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"],
             "resourceNames": ["cloudhop-migration"]}]},
        {"metadata": meta("everything"), "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}],
    "Role": [
        {"metadata": meta("secrets", "cluster-x"), "rules": [
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]}]}],
    "ClusterRoleBinding": [
        {"metadata": meta("migrator"), "roleRef": {"kind": "ClusterRole", "name": "seed-reader"},
         "subjects": [{"kind": "User", "name": "migrator"},
                      {"kind": "ServiceAccount", "name": "awx", "namespace": "tower"}]}],
    "RoleBinding": [
        {"metadata": meta("secrets", "cluster-x"), "roleRef": {"kind": "Role", "name": "secrets"},
         "subjects": [{"kind": "Group", "name": "migrators"}]},
        {"metadata": meta("all-in-ns", "scratch"),
         "roleRef": {"kind": "ClusterRole", "name": "everything"},
         "subjects": [{"kind": "User", "name": "migrator"}]}],
}


def authz(groups=None):
    return rbac.Authorizer(lambda kind: STORE.get(kind, []), groups)


@pytest.mark.parametrize("user,args,want", [
    ("migrator", ("get", "kubermatic.k8c.io", "clusters"), True),
    ("migrator", ("patch", "kubermatic.k8c.io", "clusters"), False),
    ("migrator", ("get", "kubermatic.k8c.io", "clusters", None, "cluster-x", "x"), True),
    ("system:serviceaccount:tower:awx", ("list", "kubermatic.k8c.io", "clusters"), True),
    ("system:serviceaccount:other:awx", ("list", "kubermatic.k8c.io", "clusters"), False),
    # a subresource needs its own entry; "*/sub" grants it on every resource
    ("migrator", ("create", "", "pods", "eviction", "ns"), True),
    ("migrator", ("create", "", "pods", None, "ns"), False),
    ("migrator", ("patch", "apps", "deployments", "scale", "ns", "d"), True),
    ("migrator", ("patch", "apps", "deployments", None, "ns", "d"), False),
    # resourceNames: only that object, never a request without a name
    ("migrator", ("patch", "", "configmaps", None, "cluster-x", "cloudhop-migration"), True),
    ("migrator", ("patch", "", "configmaps", None, "cluster-x", "other"), False),
    # a RoleBinding grants in its namespace only, here through a ClusterRole
    ("migrator", ("delete", "", "secrets", None, "scratch", "s"), True),
    ("migrator", ("delete", "", "secrets", None, "cluster-x", "s"), False),
    ("migrator", ("delete", "", "nodes", None, None, "n"), False),
])
def test_decisions(user, args, want):
    assert authz().allowed(user, *args) is want


def test_groups_come_from_the_token_and_masters_may_do_anything():
    a = authz({"alice": ["migrators"], "admin": ["system:masters"]})
    assert a.allowed("alice", "create", "", "secrets", None, "cluster-x")
    assert not a.allowed("bob", "create", "", "secrets", None, "cluster-x")
    assert a.allowed("admin", "deletecollection", "", "nodes")
