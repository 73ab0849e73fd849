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

Escalation prevention (``escalation``), as the RBAC registry enforces it on every create and
update of a Role, ClusterRole or binding (dry runs too): a user may write a Role or ClusterRole
only with rules it holds itself (in the Role's namespace; cluster-wide for a ClusterRole) or with
the ``escalate`` verb on it, and a binding only to a role whose rules it holds (in the binding's
namespace; cluster-wide for a ClusterRoleBinding) or with the ``bind`` verb on that role.
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


RBAC_GROUP = "rbac.authorization.k8s.io"
RBAC_KINDS = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings",
              "ClusterRoleBinding": "clusterrolebindings"}


def _rule_text(group, resource, verb, name=None):
    return '{APIGroups:["%s"], Resources:["%s"], %sVerbs:["%s"]}' % (
        group, resource, ('ResourceNames:["%s"], ' % name) if name else "", verb)


def _not_held(authz, user, rules, namespace):
    """The permissions of ``rules`` the user does not hold (in ``namespace``, or cluster-wide)."""
    missing = []
    for rule in rules or []:
        if rule.get("nonResourceURLs"):
            if not authz.allowed(user, "*", "*", "*"):
                missing.append("{NonResourceURLs:%s}" % rule["nonResourceURLs"])
            continue
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                base, _sep, sub = resource.partition("/")
                for verb in rule.get("verbs") or []:
                    for name in rule.get("resourceNames") or [None]:
                        if not authz.allowed(user, verb, group, base, sub or None, namespace,
                                             name):
                            missing.append(_rule_text(group, resource, verb, name))
    return missing


def escalation(authz, user, obj, creating=False):
    """Why ``user`` may not write the RBAC object ``obj`` (Role, ClusterRole or a binding), as
    kube-apiserver words it; None when it may. ``escalate`` is authorized with the request's
    name, as kube-apiserver does (RoleEscalationAuthorized): a create has none, so a grant
    limited by resourceNames does not let a user create the Role, only update it."""
    kind = obj.get("kind")
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name")
    if kind in ("Role", "ClusterRole"):
        scope = ns if kind == "Role" else None
        if authz.allowed(user, "escalate", RBAC_GROUP, RBAC_KINDS[kind], None, scope,
                         None if creating else name):
            return None
        missing = _not_held(authz, user, obj.get("rules"), scope)
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = obj.get("roleRef") or {}
        ref_kind, ref_name = ref.get("kind"), ref.get("name")
        scope = ns if kind == "RoleBinding" else None
        if ref_kind in RBAC_KINDS and authz.allowed(user, "bind", RBAC_GROUP, RBAC_KINDS[ref_kind],
                                                    None, scope, ref_name):
            return None
        roles = [r for r in authz.objects(ref_kind) if r["metadata"]["name"] == ref_name and
                 (ref_kind == "ClusterRole" or r["metadata"].get("namespace") == ns)] \
            if ref_kind in ("Role", "ClusterRole") else []
        if not roles:
            return '%s "%s" not found' % (RBAC_KINDS.get(ref_kind, "roles"), ref_name)
        missing = _not_held(authz, user, roles[0].get("rules"), scope)
    else:
        return None
    if not missing:
        return None
    groups = sorted(user_groups(user, authz.groups.get(user, ())))
    return ('user "%s" (groups=%s) is attempting to grant RBAC permissions not currently held:\n%s'
            % (user, "[%s]" % " ".join('"%s"' % g for g in groups), "\n".join(missing)))
