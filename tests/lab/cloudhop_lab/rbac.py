"""Kubernetes RBAC authorization for the lab's API servers (rbac.authorization.k8s.io/v1).

Decides a resource request (user, groups, verb, API group, resource, subresource, namespace,
name) from the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings the API server itself
stores, as kube-apiserver's RBAC authorizer does:

- a ClusterRoleBinding grants its ClusterRole's rules in every namespace and cluster-wide;
- a RoleBinding grants its Role's (same namespace) or ClusterRole's rules in its namespace only;
- subjects: ``User``, ``Group``, ``ServiceAccount`` (user ``system:serviceaccount:<ns>:<name>``,
  groups ``system:serviceaccounts`` and ``system:serviceaccounts:<ns>``); every authenticated
  user is in ``system:authenticated``; group ``system:masters`` is allowed everything;
- a rule matches on apiGroups (``*``), verbs (``*``), resources (``*``, ``resource/sub``,
  ``*/sub``: a subresource needs its own entry, ``pods`` does not grant ``pods/eviction``) and
  resourceNames (a non-empty list never matches a request without a name: create, list, watch,
  deletecollection);
- there is no deny: the request is allowed when any rule of any binding that names the user
  matches.

A refused request gets kube-apiserver's Forbidden (``errors.forbidden``).
"""

SUPERUSER_GROUP = "system:masters"


def subject_matches(subject, user, groups):
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == "system:serviceaccount:%s:%s" % (subject.get("namespace"), name)
    return False


def resource_matches(entries, resource, sub):
    """kube-apiserver's ResourceMatches: ``*`` is every resource and subresource, otherwise the
    exact ``resource[/sub]``, or ``*/sub`` for that subresource of every resource."""
    want = resource + ("/" + sub if sub else "")
    return any(entry in ("*", want) or (sub and entry == "*/" + sub) for entry in entries or [])


def rule_allows(rule, verb, group, resource, sub, name):
    if not any(g in ("*", group) for g in rule.get("apiGroups") or []):
        return False
    if not any(v in ("*", verb) for v in rule.get("verbs") or []):
        return False
    if not resource_matches(rule.get("resources"), resource, sub):
        return False
    names = rule.get("resourceNames") or []
    if names and (not name or name not in names):
        return False
    return True


def user_groups(user, groups=()):
    out = set(groups) | {"system:authenticated"}
    if user and user.startswith("system:serviceaccount:"):
        ns = user.split(":")[2]
        out |= {"system:serviceaccounts", "system:serviceaccounts:" + ns}
    return out


class Authorizer:
    """``objects(kind)`` -> the stored objects of Role, ClusterRole, RoleBinding or
    ClusterRoleBinding; ``groups`` maps a user to its groups (what the token says)."""

    def __init__(self, objects, groups=None):
        self.objects = objects
        self.groups = groups or {}

    def _roles(self, binding):
        ref = binding.get("roleRef") or {}
        if ref.get("kind") == "ClusterRole":
            return [r for r in self.objects("ClusterRole")
                    if r["metadata"]["name"] == ref.get("name")]
        ns = binding["metadata"].get("namespace")
        return [r for r in self.objects("Role") if r["metadata"]["name"] == ref.get("name")
                and r["metadata"].get("namespace") == ns]

    def allowed(self, user, verb, group, resource, sub=None, namespace=None, name=None):
        groups = user_groups(user, self.groups.get(user, ()))
        if SUPERUSER_GROUP in groups:
            return True
        bindings = list(self.objects("ClusterRoleBinding"))
        if namespace:  # a RoleBinding grants in its own namespace only
            bindings += [b for b in self.objects("RoleBinding")
                         if b["metadata"].get("namespace") == namespace]
        for binding in bindings:
            if not any(subject_matches(s, user, groups) for s in binding.get("subjects") or []):
                continue
            for role in self._roles(binding):
                for rule in role.get("rules") or []:
                    if rule_allows(rule, verb, group, resource, sub, name):
                        return True
        return False
