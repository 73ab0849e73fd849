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


def _mover_authz():
    """User mover: reads pods and secrets in namespace shop, may bind ClusterRole view, and
    may escalate (write any rules into) Roles named open in shop."""
    store = {
        "ClusterRole": [{"metadata": meta("view"), "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}],
        "Role": [
            {"metadata": meta("mover", "shop"), "rules": [
                {"apiGroups": [""], "resources": ["pods", "secrets"],
                 "verbs": ["get", "list", "watch"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
                 "verbs": ["bind"], "resourceNames": ["view"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                 "verbs": ["escalate"], "resourceNames": ["open"]}]},
            {"metadata": meta("reader", "shop"), "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]},
            {"metadata": meta("writer", "shop"), "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]}],
        "RoleBinding": [{"metadata": meta("mover", "shop"),
                         "roleRef": {"kind": "Role", "name": "mover"},
                         "subjects": [{"kind": "User", "name": "mover"}]}],
        "ClusterRoleBinding": [{"metadata": meta("admin"),
                                "roleRef": {"kind": "ClusterRole", "name": "view"},
                                "subjects": [{"kind": "Group", "name": "system:masters"}]}]}
    return rbac.Authorizer(lambda kind: store.get(kind, []), {"admin": ["system:masters"]})


def _role(kind, name, ns, rules):
    return {"kind": kind, "metadata": meta(name, ns), "rules": rules}


def _binding(kind, name, ns, ref_kind, ref_name):
    return {"kind": kind, "metadata": meta(name, ns),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref_kind,
                        "name": ref_name},
            "subjects": [{"kind": "ServiceAccount", "name": "proxy", "namespace": "shop"}]}


def test_a_role_may_grant_only_what_its_writer_holds_there():
    authz = _mover_authz()
    held = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    assert rbac.escalation(authz, "mover", _role("Role", "proxy", "shop", held)) is None
    # the same rules in another namespace, or cluster-wide: not held there
    why = rbac.escalation(authz, "mover", _role("Role", "proxy", "other", held))
    assert 'user "mover" (groups=["system:authenticated"]) is attempting to grant RBAC ' \
        'permissions not currently held:' in why
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' in why
    assert rbac.escalation(authz, "mover", _role("ClusterRole", "proxy", None, held))
    more = held + [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["delete"]}]
    why = rbac.escalation(authz, "mover", _role("Role", "proxy", "shop", more))
    assert why.endswith('{APIGroups:[""], Resources:["secrets"], Verbs:["delete"]}')
    # escalate on that Role's name: any rules in an update of it; a create has no name in its
    # request, so the grant limited by resourceNames does not cover it (kube-apiserver)
    assert rbac.escalation(authz, "mover", _role("Role", "open", "shop", more)) is None
    assert rbac.escalation(authz, "mover", _role("Role", "open", "shop", more), creating=True)
    # system:masters: anything
    assert rbac.escalation(authz, "admin", _role("ClusterRole", "x", None, more)) is None


def test_a_binding_needs_the_roles_rules_or_bind_on_the_role():
    authz = _mover_authz()
    # a Role whose rules the mover holds in shop
    assert rbac.escalation(authz, "mover", _binding("RoleBinding", "b", "shop", "Role",
                                                    "reader")) is None
    why = rbac.escalation(authz, "mover", _binding("RoleBinding", "b", "shop", "Role", "writer"))
    assert "not currently held" in why and 'Verbs:["delete"]' in why
    # bind on ClusterRole view: in a RoleBinding of shop, not in a ClusterRoleBinding
    assert rbac.escalation(authz, "mover", _binding("RoleBinding", "b", "shop", "ClusterRole",
                                                    "view")) is None
    assert rbac.escalation(authz, "mover", _binding("ClusterRoleBinding", "b", None,
                                                    "ClusterRole", "view"))
    assert rbac.escalation(authz, "mover", _binding("RoleBinding", "b", "shop", "Role",
                                                    "nowhere")) == 'roles "nowhere" not found'


def test_the_api_refuses_an_escalating_write_with_kube_apiservers_words(api):
    authz = _mover_authz()
    api.escalation = lambda user, obj, creating=False: rbac.escalation(authz, user, obj, creating)
    api.create(api.rt("", "v1", "namespaces"), None,
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    rt = api.rt("rbac.authorization.k8s.io", "v1", "roles")
    api.requester.user = "mover"
    try:
        ok = api.create(rt, "shop", _role("Role", "proxy", "shop", [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]))
        assert ok["metadata"]["name"] == "proxy"
        with pytest.raises(Exception) as err:
            api.create(rt, "shop", _role("Role", "more", "shop", [
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]), dry_run=True)
        assert err.value.code == 403
        assert str(err.value.message).startswith(
            'roles.rbac.authorization.k8s.io "more" is forbidden: user "mover"')
        # an update that adds a rule not held is refused too
        ok["rules"].append({"apiGroups": ["apps"], "resources": ["deployments"],
                            "verbs": ["delete"]})
        with pytest.raises(Exception) as err:
            api.update(rt, "shop", "proxy", ok)
        assert err.value.code == 403
    finally:
        api.requester.user = None
