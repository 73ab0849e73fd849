"""Resource types served by a lab API server: the built-in kinds and the ones CRDs add."""

import threading

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUB_VERBS = ["get", "patch", "update"]


class ResourceType:
    """What discovery says about one resource, plus what the server needs to serve it."""

    def __init__(self, group, version, plural, kind, namespaced, singular=None, short_names=(),
                 status=False, scale=None, extra_subresources=None, builtin=True,
                 categories=(), schema=None, crd_name=None, verbs=None):
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
        self.singular = singular or kind.lower()
        self.short_names = list(short_names)
        self.status = status
        # scale: dict(specReplicasPath, statusReplicasPath, labelSelectorPath) as in a CRD
        self.scale = scale
        # name -> dict(kind, group, version, verbs)
        self.extra_subresources = extra_subresources or {}
        self.builtin = builtin
        self.categories = list(categories)
        self.schema = schema
        self.crd_name = crd_name
        self.verbs = verbs or list(VERBS)

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def key(self):
        return (self.group, self.plural)

    @property
    def list_kind(self):
        return self.kind + "List"

    def subresources(self):
        subs = {}
        if self.status:
            subs["status"] = {"kind": self.kind, "group": self.group, "version": self.version,
                              "verbs": SUB_VERBS}
        if self.scale:
            subs["scale"] = {"kind": "Scale", "group": "autoscaling", "version": "v1",
                             "verbs": SUB_VERBS}
        subs.update(self.extra_subresources)
        return subs

    def discovery(self):
        out = [{
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }]
        if self.short_names:
            out[0]["shortNames"] = list(self.short_names)
        if self.categories:
            out[0]["categories"] = list(self.categories)
        for name, sub in sorted(self.subresources().items()):
            entry = {"name": "%s/%s" % (self.plural, name), "singularName": "",
                     "namespaced": self.namespaced, "kind": sub["kind"], "verbs": sub["verbs"]}
            if sub["group"] != self.group or sub["version"] != self.version:
                entry["group"] = sub["group"]
                entry["version"] = sub["version"]
            out.append(entry)
        return out


def builtin_types():
    r = ResourceType
    eviction = {"eviction": {"kind": "Eviction", "group": "policy", "version": "v1",
                             "verbs": ["create"]}}
    binding = {"binding": {"kind": "Binding", "group": "", "version": "v1", "verbs": ["create"]}}
    scale = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
             "labelSelectorPath": ".status.selector"}
    return [
        r("", "v1", "namespaces", "Namespace", False, short_names=["ns"], status=True,
          verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
        r("", "v1", "nodes", "Node", False, short_names=["no"], status=True),
        r("", "v1", "pods", "Pod", True, short_names=["po"], status=True, categories=["all"],
          extra_subresources=dict(eviction, **binding)),
        r("", "v1", "services", "Service", True, short_names=["svc"], status=True,
          categories=["all"],
          verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update",
                 "watch"]),
        r("", "v1", "endpoints", "Endpoints", True, short_names=["ep"]),
        r("", "v1", "configmaps", "ConfigMap", True, short_names=["cm"]),
        r("", "v1", "secrets", "Secret", True),
        r("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=["sa"]),
        r("", "v1", "events", "Event", True, short_names=["ev"]),
        r("apps", "v1", "deployments", "Deployment", True, short_names=["deploy"], status=True,
          scale=scale, categories=["all"]),
        r("apps", "v1", "replicasets", "ReplicaSet", True, short_names=["rs"], status=True,
          scale=scale, categories=["all"]),
        r("apps", "v1", "daemonsets", "DaemonSet", True, short_names=["ds"], status=True,
          categories=["all"]),
        r("apps", "v1", "statefulsets", "StatefulSet", True, short_names=["sts"], status=True,
          scale=scale, categories=["all"]),
        r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True,
          short_names=["pvc"], status=True),
        r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True,
          short_names=["pdb"], status=True),
        r("networking.k8s.io", "v1", "ingresses", "Ingress", True, short_names=["ing"],
          status=True),
        r("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False),
        r("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
          False, short_names=["crd", "crds"], status=True),
        # RBAC: what the lab's authorizer (rbac.py) decides from
        r("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
        r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    ]


class Registry:
    """Thread-safe table of resource types; CRDs add and remove entries at run time."""

    def __init__(self):
        self._lock = threading.RLock()
        self._types = {}
        for rt in builtin_types():
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def add(self, rt):
        with self._lock:
            self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_crd(self, crd_name):
        with self._lock:
            for k in [k for k, v in self._types.items() if v.crd_name == crd_name]:
                del self._types[k]

    def get(self, group, version, plural):
        with self._lock:
            return self._types.get((group, version, plural))

    def all(self):
        with self._lock:
            return list(self._types.values())

    def by_kind(self, api_version, kind):
        group, _sep, version = api_version.rpartition("/")
        with self._lock:
            for rt in self._types.values():
                if rt.group == group and rt.version == version and rt.kind == kind:
                    return rt
        return None

    def groups(self):
        """{group: [versions]} with the storage/preferred version first."""
        out = {}
        with self._lock:
            for rt in self._types.values():
                versions = out.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return out

    def versions_of(self, group):
        """All versions served for a group, preferred first."""
        return self.groups().get(group, [])

    def in_group_version(self, group, version):
        with self._lock:
            return [rt for (g, v, _p), rt in self._types.items() if g == group and v == version]
