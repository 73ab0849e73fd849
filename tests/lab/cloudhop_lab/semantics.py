"""Per-kind defaulting, validation and immutability, as the real registry strategies do them.

Only what the lab's clients and controllers can observe is modelled; every rule here is one a
real kube-apiserver enforces, with the same field paths and reasons.
"""

import base64
import binascii
import ipaddress
import re

from . import validation
from .validation import duplicate, forbidden, invalid as inv, not_supported, required as req

PROTECTED_GROUP = re.compile(r"(.*\.)?(k8s\.io|kubernetes\.io)$")
MAX_DATA_SIZE = 1024 * 1024  # core.MaxSecretSize: a ConfigMap's or Secret's data, in bytes


def validate_meta(kind, obj, causes, namespaced=None):
    """apimachinery's ValidateObjectMeta with the kind's name rule (validation.py)."""
    validation.validate_object_meta(kind, obj.get("metadata") or {}, namespaced, causes)


# --------------------------------------------------------------------------- defaulting


def default_pod_spec(spec):
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})
        for p in c.get("ports") or []:
            p.setdefault("protocol", "TCP")


def _default_claim_spec(spec):
    spec.setdefault("volumeMode", "Filesystem")
    spec.setdefault("storageClassName", "lab-local")


CLAIM_ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]


def _validate_claim_spec(spec, causes, prefix):
    """ValidatePersistentVolumeClaimSpec: access modes and a storage request."""
    if not isinstance(spec, dict):
        req(causes, prefix)
        return
    modes = spec.get("accessModes") or []
    if not modes:
        req(causes, prefix + ".accessModes", "at least 1 access mode is required")
    for mode in modes:
        if mode not in CLAIM_ACCESS_MODES:
            not_supported(causes, prefix + ".accessModes", mode, CLAIM_ACCESS_MODES)
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        req(causes, prefix + ".resources[storage]")


def _default_rolling(strategy, kind):
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        if kind == "DaemonSet":
            ru.setdefault("maxUnavailable", 1)
            ru.setdefault("maxSurge", 0)
        else:
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")


def default(kind, obj):
    spec = obj.get("spec")
    if kind == "Pod":
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        tolerations = spec.setdefault("tolerations", [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": 300})
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet") and \
            isinstance(spec, dict):
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        if kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate",
                                               "rollingUpdate": {"partition": 0}})
            spec.setdefault("persistentVolumeClaimRetentionPolicy",
                            {"whenDeleted": "Retain", "whenScaled": "Retain"})
            for tmpl in spec.get("volumeClaimTemplates") or []:
                if isinstance(tmpl.get("spec"), dict):
                    tmpl["spec"].setdefault("volumeMode", "Filesystem")
        spec.setdefault("revisionHistoryLimit", 10)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            _default_rolling(spec.setdefault("strategy", {}), kind)
        if kind == "DaemonSet":
            _default_rolling(spec.setdefault("updateStrategy", {}), kind)
        tmpl = spec.get("template")
        if isinstance(tmpl, dict) and isinstance(tmpl.get("spec"), dict):
            default_pod_spec(tmpl["spec"])
    elif kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            if "port" in p:
                p.setdefault("targetPort", p["port"])
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        meta = obj.setdefault("metadata", {})
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
    elif kind == "PodDisruptionBudget":
        obj.setdefault("spec", {})
    elif kind == "PersistentVolumeClaim" and isinstance(spec, dict):
        # volumeMode by defaulting; storageClassName by the DefaultStorageClass admission
        # plugin (the lab's default class), both at create: the claim's spec is immutable after
        _default_claim_spec(spec)


# --------------------------------------------------------------------------- validation


def _selector_matches_template(spec, causes, prefix="spec"):
    from .selectors import selector_matches  # local import: avoid a cycle at import time
    sel = spec.get("selector")
    if not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions")):
        req(causes, prefix + ".selector")
        return
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not selector_matches(sel, labels):
        inv(causes, prefix + ".template.metadata.labels", labels,
            "`selector` does not match template `labels`")


def _validate_pod_spec(spec, causes, prefix):
    if not isinstance(spec, dict):
        req(causes, prefix)
        return
    containers = spec.get("containers")
    if not containers:
        req(causes, prefix + ".containers")
        return
    names = set()
    for i, c in enumerate(containers):
        field = "%s.containers[%d]" % (prefix, i)
        if not isinstance(c, dict):
            inv(causes, field, c, "must be an object")
            continue
        if not c.get("name"):
            req(causes, field + ".name")
        elif c["name"] in names:
            duplicate(causes, field + ".name", c["name"])
        else:
            names.add(c["name"])
        if not c.get("image"):
            req(causes, field + ".image")
        for j, p in enumerate(c.get("ports") or []):
            port = p.get("containerPort")
            if not isinstance(port, int) or not 0 < port < 65536:
                inv(causes, "%s.ports[%d].containerPort" % (field, j), port,
                    "must be between 1 and 65535, inclusive")
    gp = spec.get("terminationGracePeriodSeconds")
    if gp is not None and (not isinstance(gp, int) or gp < 0):
        inv(causes, prefix + ".terminationGracePeriodSeconds", gp,
            "must be greater than or equal to 0")


def _int_or_percent(value):
    if isinstance(value, int) and value >= 0:
        return True
    return isinstance(value, str) and re.fullmatch(r"\d+%", value) is not None


def validate(kind, obj, causes, opts=None):
    """The kind's own validation (pkg/apis/<group>/validation), after ObjectMeta's."""
    spec = obj.get("spec")
    if kind == "Pod":
        _validate_pod_spec(spec, causes, "spec")
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"):
        _validate_workload(kind, spec, causes)
        if kind == "StatefulSet" and isinstance(spec, dict):
            policy = spec.get("podManagementPolicy")
            if policy not in (None, "OrderedReady", "Parallel"):
                not_supported(causes, "spec.podManagementPolicy", policy,
                              ["OrderedReady", "Parallel"])
            for i, tmpl in enumerate(spec.get("volumeClaimTemplates") or []):
                for msg in validation.dns1123_subdomain(str(
                        (tmpl.get("metadata") or {}).get("name") or "")):
                    inv(causes, "spec.volumeClaimTemplates[%d].metadata.name" % i,
                        (tmpl.get("metadata") or {}).get("name"), msg)
                _validate_claim_spec(tmpl.get("spec"), causes,
                                     "spec.volumeClaimTemplates[%d].spec" % i)
    elif kind == "PersistentVolumeClaim":
        _validate_claim_spec(spec, causes, "spec")
    elif kind == "Service":
        _validate_service(spec, causes)
    elif kind == "PodDisruptionBudget":
        if isinstance(spec, dict):
            if "minAvailable" in spec and "maxUnavailable" in spec:
                inv(causes, "spec", spec, "minAvailable and maxUnavailable cannot be both set")
            for f in ("minAvailable", "maxUnavailable"):
                if f in spec and not _int_or_percent(spec[f]):
                    inv(causes, "spec." + f, spec[f], "must be an integer or percentage")
            _validate_label_selector(spec.get("selector"), "spec.selector", causes)
    elif kind in ("Secret", "ConfigMap"):
        _validate_data(kind, obj, causes)
    elif kind == "Ingress":
        _validate_ingress(spec or {}, causes)
    elif kind == "IngressClass":
        # ValidateIngressClass: a controller, a domain-prefixed path of at most 250 characters
        controller = (spec or {}).get("controller") if isinstance(spec, dict) else None
        if not controller:
            req(causes, "spec.controller")
        elif len(controller) > 250 or "/" not in controller:
            inv(causes, "spec.controller", controller,
                "must be a domain-prefixed path (such as \"acme.io/foo\")")
    elif kind == "Node":
        cidr = (spec or {}).get("podCIDR")
        if cidr:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                inv(causes, "spec.podCIDR", cidr, "must be a valid CIDR")
    elif kind == "CustomResourceDefinition":
        _validate_crd(obj, causes)


def _validate_label_selector(selector, field, causes):
    """ValidateLabelSelector: matchLabels as labels, matchExpressions' keys and operators."""
    if not isinstance(selector, dict):
        return
    validation.validate_labels(selector.get("matchLabels") or {}, field + ".matchLabels", causes)
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        here = "%s.matchExpressions[%d]" % (field, i)
        for msg in validation.qualified_name(str(expr.get("key") or "")):
            inv(causes, here + ".key", expr.get("key"), msg)
        op = expr.get("operator")
        if op in ("In", "NotIn") and not expr.get("values"):
            req(causes, here + ".values",
                "must be specified when `operator` is 'In' or 'NotIn'")
        elif op in ("Exists", "DoesNotExist") and expr.get("values"):
            forbidden(causes, here + ".values",
                      "may not be specified when `operator` is 'Exists' or "
                      "'DoesNotExist'")
        elif op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            not_supported(causes, here + ".operator", op,
                          ["DoesNotExist", "Exists", "In", "NotIn"])


def _validate_workload(kind, spec, causes):
    """ValidateDeploymentSpec / ValidateReplicaSetSpec / ValidateDaemonSetSpec."""
    if not isinstance(spec, dict):
        req(causes, "spec")
        return
    _selector_matches_template(spec, causes)
    _validate_label_selector(spec.get("selector"), "spec.selector", causes)
    tmeta = (spec.get("template") or {}).get("metadata") or {}
    validation.validate_labels(tmeta.get("labels") or {}, "spec.template.metadata.labels",
                               causes)
    validation.validate_annotations(tmeta.get("annotations") or {},
                                    "spec.template.metadata.annotations", causes)
    tspec = (spec.get("template") or {}).get("spec")
    _validate_pod_spec(tspec, causes, "spec.template.spec")
    policy = (tspec or {}).get("restartPolicy") if isinstance(tspec, dict) else None
    if policy not in (None, "Always"):
        not_supported(causes, "spec.template.spec.restartPolicy", policy, ["Always"])
    for f in ("replicas", "minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(f)
        if value is not None and (not isinstance(value, int) or value < 0):
            inv(causes, "spec." + f, value, "must be greater than or equal to 0")
    deadline, ready = spec.get("progressDeadlineSeconds"), spec.get("minReadySeconds") or 0
    if kind == "Deployment" and isinstance(deadline, int) and isinstance(ready, int) and \
            deadline <= ready:
        inv(causes, "spec.progressDeadlineSeconds", deadline,
            "must be greater than minReadySeconds")
    strategy = "strategy" if kind == "Deployment" else "updateStrategy"
    ru = (spec.get(strategy) or {}).get("rollingUpdate") or {}
    if kind == "StatefulSet":
        ru = {}  # partition, and maxUnavailable behind a feature gate
    for f in ("maxSurge", "maxUnavailable"):
        if f in ru and not _int_or_percent(ru[f]):
            inv(causes, "spec.%s.rollingUpdate.%s" % (strategy, f), ru[f],
                "a valid percent string must be a numeric string followed by an ending '%'")


PORT_PROTOCOLS = ["SCTP", "TCP", "UDP"]


def _validate_service(spec, causes):
    """ValidateService: the parts a lab client can reach."""
    if not isinstance(spec, dict):
        req(causes, "spec")
        return
    stype = spec.get("type")
    if stype not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        not_supported(causes, "spec.type", stype,
                      ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])
    ports = spec.get("ports") or []
    if stype != "ExternalName" and not ports and spec.get("clusterIP") != "None":
        req(causes, "spec.ports")
    if stype == "ExternalName":
        cname = (spec.get("externalName") or "").rstrip(".")
        if not cname:
            req(causes, "spec.externalName")
        for msg in validation.dns1123_subdomain(cname) if cname else []:
            inv(causes, "spec.externalName", cname, msg)
    names, seen = set(), set()
    for i, p in enumerate(ports):
        here = "spec.ports[%d]" % i
        name = p.get("name")
        if len(ports) > 1 and not name:
            req(causes, here + ".name")
        elif name:
            for msg in validation.dns1123_label(name):
                inv(causes, here + ".name", name, msg)
            if name in names:
                duplicate(causes, here + ".name", name)
            names.add(name)
        port = p.get("port")
        if not isinstance(port, int) or not 0 < port < 65536:
            inv(causes, here + ".port", port, "must be between 1 and 65535, inclusive")
        # (absent = defaulted: the server defaults before it validates)
        if p.get("protocol", "TCP") not in PORT_PROTOCOLS:
            not_supported(causes, here + ".protocol", p.get("protocol"),
                          PORT_PROTOCOLS)
        _validate_port_num_or_name(p.get("targetPort"), here + ".targetPort", causes)
        if stype == "ClusterIP" and p.get("nodePort"):
            forbidden(causes, here + ".nodePort",
                      "may not be used when `type` is 'ClusterIP'")
        if (p.get("protocol"), port) in seen:
            duplicate(causes, here, {"port": port, "protocol": p.get("protocol")})
        seen.add((p.get("protocol"), port))
    if spec.get("selector") is not None:
        validation.validate_labels(spec["selector"], "spec.selector", causes)
    affinity = spec.get("sessionAffinity", "None")
    if affinity not in ("ClientIP", "None"):
        not_supported(causes, "spec.sessionAffinity", affinity, ["ClientIP", "None"])
    etp = spec.get("externalTrafficPolicy")
    if etp and stype not in ("NodePort", "LoadBalancer") and not spec.get("externalIPs"):
        inv(causes, "spec.externalTrafficPolicy", etp,
            "may only be set for externally-accessible services")
    elif etp and etp not in ("Cluster", "Local"):
        not_supported(causes, "spec.externalTrafficPolicy", etp, ["Cluster", "Local"])


def _validate_port_num_or_name(value, field, causes):
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value < 65536:
            inv(causes, field, value, "must be between 1 and 65535, inclusive")
    elif isinstance(value, str):
        for msg in validation.port_name(value):
            inv(causes, field, value, msg)
    elif value is not None:
        inv(causes, field, value, "must contain an int or string")


def _validate_data(kind, obj, causes):
    """ValidateConfigMap / ValidateSecret: data keys, their total size, a Secret's type."""
    size = 0
    for bag in ("data", "binaryData") if kind == "ConfigMap" else ("data",):
        for key, value in (obj.get(bag) or {}).items():
            for msg in validation.config_map_key(key):
                inv(causes, "%s[%s]" % (bag, key), key, msg)
            if kind == "Secret" or bag == "binaryData":
                try:
                    size += len(base64.b64decode(value, validate=True))
                except (binascii.Error, TypeError, ValueError):
                    inv(causes, "%s[%s]" % (bag, key), "<value>", "illegal base64 data")
            elif not isinstance(value, str):
                inv(causes, "data[%s]" % key, value, "must be a string")
            else:
                size += len(value.encode())
            if bag == "data" and key in (obj.get("binaryData") or {}):
                inv(causes, "data[%s]" % key, key, "duplicate of key present in binaryData")
    if size > MAX_DATA_SIZE:
        validation.too_long(causes, "data" if kind == "Secret" else "", MAX_DATA_SIZE)
    data = obj.get("data") or {}
    needs = {"kubernetes.io/tls": ("tls.crt", "tls.key"),
             "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
             "kubernetes.io/dockercfg": (".dockercfg",),
             "kubernetes.io/ssh-auth": ("ssh-privatekey",)}.get(obj.get("type"), ())
    for key in needs if kind == "Secret" else ():
        if key not in data:
            req(causes, "data[%s]" % key)
    if kind == "Secret" and obj.get("type") == "kubernetes.io/basic-auth" and \
            "username" not in data and "password" not in data:
        req(causes, "data[username]")
        req(causes, "data[password]")
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token" and \
            not annotations.get("kubernetes.io/service-account.name"):
        req(causes,
            "metadata.annotations[kubernetes.io/service-account.name]")


PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]


def validate_ingress_create(obj, causes):
    """ValidateIngressCreate: the deprecated class annotation, when set beside
    spec.ingressClassName, must name the same class."""
    annotation = (obj["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")
    cls = (obj.get("spec") or {}).get("ingressClassName")
    if annotation is not None and cls is not None and annotation != cls:
        inv(causes, "annotations.kubernetes.io/ingress.class", annotation,
            "must match `ingressClassName` when both are specified")


def _validate_ingress(spec, causes):
    """networking/v1 ValidateIngressSpec: hosts, paths, path types and backends."""
    if not spec.get("rules") and not spec.get("defaultBackend"):
        inv(causes, "spec.rules", [], "either `defaultBackend` or `rules` must be specified")
    if spec.get("defaultBackend"):
        _validate_ingress_backend(spec["defaultBackend"], "spec.defaultBackend", causes)
    for i, rule in enumerate(spec.get("rules") or []):
        here = "spec.rules[%d]" % i
        _validate_ingress_host(rule.get("host"), here + ".host", causes)
        http = rule.get("http")
        if http is None:
            continue
        if not http.get("paths"):
            req(causes, here + ".http.paths")
        for j, path in enumerate(http.get("paths") or []):
            _validate_ingress_path(path, "%s.http.paths[%d]" % (here, j), causes)
    for i, tls in enumerate(spec.get("tls") or []):
        for j, host in enumerate(tls.get("hosts") or []):
            _validate_ingress_host(host, "spec.tls[%d].hosts[%d]" % (i, j), causes)
        if tls.get("secretName"):
            for msg in validation.dns1123_subdomain(tls["secretName"]):
                inv(causes, "spec.tls[%d].secretName" % i, tls["secretName"], msg)


INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")


def _validate_ingress_path(path, field, causes):
    """validateHTTPIngressPath: a path type first; Exact and Prefix paths absolute and free of
    the sequences a proxy would normalise, an ImplementationSpecific path absolute if given."""
    ptype, value = path.get("pathType"), path.get("path") or ""
    if not ptype:
        req(causes, field + ".pathType", "pathType must be specified")
        return
    if ptype in ("Exact", "Prefix"):
        if not value.startswith("/"):
            inv(causes, field + ".path", value, "must be an absolute path")
        for seq in INVALID_PATH_SEQUENCES if value else ():
            if seq in value:
                inv(causes, field + ".path", value, "must not contain '%s'" % seq)
        for suffix in INVALID_PATH_SUFFIXES if value else ():
            if value.endswith(suffix):
                inv(causes, field + ".path", value, "cannot end with '%s'" % suffix)
    elif ptype == "ImplementationSpecific":
        if value and not value.startswith("/"):
            inv(causes, field + ".path", value, "must be an absolute path")
    else:
        not_supported(causes, field + ".pathType", ptype, PATH_TYPES)
    _validate_ingress_backend(path.get("backend"), field + ".backend", causes)


def _validate_ingress_host(host, field, causes):
    if not host:
        return
    try:
        ipaddress.ip_address(host)
        inv(causes, field, host, "must be a DNS name, not an IP address")
        return
    except ValueError:
        pass
    check = validation.wildcard_dns1123_subdomain if "*" in host else \
        validation.dns1123_subdomain
    for msg in check(host):
        inv(causes, field, host, msg)


def _validate_ingress_backend(backend, field, causes):
    backend = backend if isinstance(backend, dict) else {}
    service, resource = backend.get("service"), backend.get("resource")
    if service and resource:
        inv(causes, field, "", "cannot set both resource and service backends")
    elif not service and not resource:
        inv(causes, field, "", "resource or service backend is required")
    if not service:
        return
    if not service.get("name"):
        req(causes, field + ".service.name")
    else:
        for msg in validation.dns1035_label(service["name"]):
            inv(causes, field + ".service.name", service["name"], msg)
    port = service.get("port") or {}
    if port.get("name") and port.get("number"):
        inv(causes, field + ".service.port", port, "cannot set both port name & port number")
    elif port.get("name"):
        for msg in validation.port_name(port["name"]):
            inv(causes, field + ".service.port.name", port["name"], msg)
    elif port.get("number"):
        _validate_port_num_or_name(port["number"], field + ".service.port.number", causes)
    else:
        req(causes, field + ".service.port", "port name or number is required")


def _validate_crd(obj, causes):
    spec = obj.get("spec") or {}
    group = spec.get("group") or ""
    names = spec.get("names") or {}
    if not group:
        req(causes, "spec.group")
    if not names.get("plural"):
        req(causes, "spec.names.plural")
    if not names.get("kind"):
        req(causes, "spec.names.kind")
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        not_supported(causes, "spec.scope", spec.get("scope"), ["Cluster", "Namespaced"])
    versions = spec.get("versions") or []
    if not versions:
        req(causes, "spec.versions", "must have exactly one version marked as storage version")
    elif sum(1 for v in versions if v.get("storage")) != 1:
        inv(causes, "spec.versions", [v.get("name") for v in versions],
            "must have exactly one version marked as storage version")
    name = (obj.get("metadata") or {}).get("name")
    if names.get("plural") and group and name != "%s.%s" % (names.get("plural"), group):
        inv(causes, "metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if PROTECTED_GROUP.fullmatch(group) and "api-approved.kubernetes.io" not in annotations:
        req(causes, 'metadata.annotations[api-approved.kubernetes.io]',
            'protected groups must have approval annotation "api-approved.kubernetes.io", see '
            'https://github.com/kubernetes/enhancements/pull/1111')


def immutable(kind, old, new, causes):
    """Fields a real update strategy refuses to change."""
    o_spec, n_spec = old.get("spec") or {}, new.get("spec") or {}
    if kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        if o_spec.get("selector") != n_spec.get("selector"):
            inv(causes, "spec.selector", n_spec.get("selector"), "field is immutable")
    elif kind == "PersistentVolumeClaim":
        # binding sets volumeName once; requests may change; nothing else
        def fixed(spec):
            view = dict(spec, resources=None)
            if not o_spec.get("volumeName"):
                view.pop("volumeName", None)
            return view
        if fixed(o_spec) != fixed(n_spec):
            forbidden(causes, "spec", "spec is immutable after creation except "
                      "resources.requests and volumeAttributesClassName for bound claims")
    elif kind == "StatefulSet":
        keep = ("replicas", "ordinals", "template", "updateStrategy",
                "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
        if {k: v for k, v in o_spec.items() if k not in keep} != \
                {k: v for k, v in n_spec.items() if k not in keep}:
            forbidden(causes, "spec", "updates to statefulset spec for fields other than "
                      "'replicas', 'ordinals', 'template', 'updateStrategy', "
                      "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
                      "forbidden")
    elif kind == "Service":
        if o_spec.get("clusterIP") and n_spec.get("clusterIP") not in (None, o_spec["clusterIP"]):
            inv(causes, "spec.clusterIP", n_spec.get("clusterIP"), "field is immutable")
    elif kind == "Pod":
        def mutable_view(spec):
            view = dict(spec)
            view["containers"] = [dict(c, image=None) for c in spec.get("containers") or []]
            for f in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"):
                view.pop(f, None)
            return view
        if o_spec.get("nodeName") and o_spec.get("nodeName") != n_spec.get("nodeName"):
            inv(causes, "spec.nodeName", n_spec.get("nodeName"), "field is immutable")
        elif mutable_view(dict(o_spec, nodeName=None)) != \
                mutable_view(dict(n_spec, nodeName=None)):
            forbidden(causes, "spec", "pod updates may not change fields other than "
                      "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                      "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions to "
                      "existing tolerations), `spec.terminationGracePeriodSeconds`")
    elif kind == "CustomResourceDefinition":
        for f in ("group", "scope"):
            if o_spec.get(f) != n_spec.get(f):
                inv(causes, "spec." + f, n_spec.get(f), "field is immutable")
    elif kind == "IngressClass" and o_spec.get("controller") != n_spec.get("controller"):
        inv(causes, "spec.controller", n_spec.get("controller"), "field is immutable")
    elif kind == "Secret" and old.get("type") != new.get("type"):
        inv(causes, "type", new.get("type"), "field is immutable")


# --------------------------------------------------------------------------- CRD schemas

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def schema_prune_validate(value, schema, path, causes):
    """Structural-schema pruning and type/required/enum validation of a custom resource.

    Returns the pruned value. Unknown fields are dropped unless the schema preserves them,
    exactly as an apiextensions server does with a structural schema.
    """
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields") and \
            "properties" not in schema:
        return value
    if value is None:
        if not schema.get("nullable"):
            return value
        return value
    typ = schema.get("type")
    if typ in ("integer", "number"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if typ == "integer":
            ok = ok and float(value).is_integer()
        if not ok:
            causes.append((path, "FieldValueTypeInvalid",
                           'Invalid value: "%s": %s in body must be of type %s: "%s"'
                           % (_typename(value), path, typ, _typename(value))))
            return value
    elif typ in _TYPES and not isinstance(value, _TYPES[typ]):
        if not (schema.get("x-kubernetes-int-or-string") and isinstance(value, (int, str))):
            causes.append((path, "FieldValueTypeInvalid",
                           'Invalid value: "%s": %s in body must be of type %s: "%s"'
                           % (_typename(value), path, typ, _typename(value))))
            return value
    if "enum" in schema and value not in schema["enum"]:
        not_supported(causes, path, value, schema["enum"])
    if isinstance(value, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        out = {}
        for k, v in value.items():
            sub_path = "%s.%s" % (path, k) if path else k
            if props is not None and k in props:
                out[k] = schema_prune_validate(v, props[k], sub_path, causes)
            elif isinstance(addl, dict):
                out[k] = schema_prune_validate(v, addl, sub_path, causes)
            elif props is None or schema.get("x-kubernetes-preserve-unknown-fields") or addl is True:
                out[k] = v
            # else: pruned
        for r in schema.get("required") or []:
            if r not in out:
                req(causes, "%s.%s" % (path, r) if path else r)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [schema_prune_validate(v, schema["items"], "%s[%d]" % (path, i), causes)
                for i, v in enumerate(value)]
    return value


def _typename(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if isinstance(value, float) else "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
