"""Per-kind defaulting, validation and immutability, as the real registry strategies do them.

Only what the lab's clients and controllers can observe is modelled; every rule here is one a
real kube-apiserver enforces, with the same field paths and reasons.
"""

import base64
import binascii
import ipaddress
import re

DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
PROTECTED_GROUP = re.compile(r"(.*\.)?(k8s\.io|kubernetes\.io)$")

# kinds whose names must be DNS-1123 labels rather than subdomains
LABEL_NAMED = {"Namespace", "Service"}


def req(causes, field, msg="Required value"):
    causes.append((field, "FieldValueRequired", msg))


def inv(causes, field, value, msg):
    causes.append((field, "FieldValueInvalid", "Invalid value: %s: %s" % (_repr(value), msg)))


def _repr(value):
    if isinstance(value, str):
        return '"%s"' % value
    return str(value)


def validate_meta(kind, obj, causes):
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        req(causes, "metadata.name", "Required value: name or generateName is required")
    else:
        pattern, limit = (DNS1123_LABEL, 63) if kind in LABEL_NAMED else (DNS1123_SUBDOMAIN, 253)
        if len(name) > limit or not pattern.fullmatch(name):
            inv(causes, "metadata.name", name,
                "a lowercase RFC 1123 %s must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character"
                % ("label" if kind in LABEL_NAMED else "subdomain"))
    for key, value in (meta.get("labels") or {}).items():
        name_part = key.rsplit("/", 1)[-1]
        if not LABEL_NAME.fullmatch(name_part or "") or len(name_part) > 63:
            inv(causes, "metadata.labels", key, "name part must consist of alphanumeric "
                "characters, '-', '_' or '.'")
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.fullmatch(value):
            inv(causes, "metadata.labels", value, "a valid label must be an empty string or "
                "consist of alphanumeric characters, '-', '_' or '.'")
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            inv(causes, "metadata.annotations", key, "annotation values must be strings")


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
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet") and isinstance(spec, dict):
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
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
            causes.append((field + ".name", "FieldValueDuplicate",
                           'Duplicate value: "%s"' % c["name"]))
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
    spec = obj.get("spec")
    if kind == "Pod":
        _validate_pod_spec(spec, causes, "spec")
    elif kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        if not isinstance(spec, dict):
            req(causes, "spec")
            return
        _selector_matches_template(spec, causes)
        _validate_pod_spec((spec.get("template") or {}).get("spec"), causes,
                           "spec.template.spec")
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            inv(causes, "spec.replicas", replicas, "must be greater than or equal to 0")
        ru = ((spec.get("strategy") or spec.get("updateStrategy") or {})
              .get("rollingUpdate") or {})
        for f in ("maxSurge", "maxUnavailable"):
            if f in ru and not _int_or_percent(ru[f]):
                inv(causes, "spec.strategy.rollingUpdate." + f, ru[f],
                    "a valid percent string must be a numeric string followed by an ending '%'")
    elif kind == "Service":
        if not isinstance(spec, dict):
            req(causes, "spec")
            return
        if spec.get("type") not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
            causes.append(("spec.type", "FieldValueNotSupported",
                           'Unsupported value: "%s": supported values: "ClusterIP", '
                           '"ExternalName", "LoadBalancer", "NodePort"' % spec.get("type")))
        if spec.get("type") != "ExternalName" and not spec.get("ports") and \
                spec.get("clusterIP") != "None":
            req(causes, "spec.ports")
        for i, p in enumerate(spec.get("ports") or []):
            port = p.get("port")
            if not isinstance(port, int) or not 0 < port < 65536:
                inv(causes, "spec.ports[%d].port" % i, port,
                    "must be between 1 and 65535, inclusive")
            if len(spec.get("ports")) > 1 and not p.get("name"):
                req(causes, "spec.ports[%d].name" % i)
    elif kind == "PodDisruptionBudget":
        if isinstance(spec, dict):
            if "minAvailable" in spec and "maxUnavailable" in spec:
                causes.append(("spec", "FieldValueInvalid",
                               "Invalid value: minAvailable and maxUnavailable cannot be both "
                               "set"))
            for f in ("minAvailable", "maxUnavailable"):
                if f in spec and not _int_or_percent(spec[f]):
                    inv(causes, "spec." + f, spec[f], "must be an integer or percentage")
    elif kind == "Secret":
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                inv(causes, "data[%s]" % key, "<value>", "illegal base64 data")
    elif kind == "ConfigMap":
        for key, value in (obj.get("data") or {}).items():
            if not isinstance(value, str):
                inv(causes, "data[%s]" % key, value, "must be a string")
    elif kind == "Node":
        cidr = (spec or {}).get("podCIDR")
        if cidr:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                inv(causes, "spec.podCIDR", cidr, "must be a valid CIDR")
    elif kind == "CustomResourceDefinition":
        _validate_crd(obj, causes)


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
        causes.append(("spec.scope", "FieldValueNotSupported",
                       'Unsupported value: "%s": supported values: "Cluster", "Namespaced"'
                       % spec.get("scope")))
    versions = spec.get("versions") or []
    if not versions:
        req(causes, "spec.versions", "Required value: must have exactly one version marked "
            "as storage version")
    elif sum(1 for v in versions if v.get("storage")) != 1:
        inv(causes, "spec.versions", [v.get("name") for v in versions],
            "must have exactly one version marked as storage version")
    name = (obj.get("metadata") or {}).get("name")
    if names.get("plural") and group and name != "%s.%s" % (names.get("plural"), group):
        inv(causes, "metadata.name", name, 'must be spec.names.plural+"."+spec.group')
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if PROTECTED_GROUP.fullmatch(group) and "api-approved.kubernetes.io" not in annotations:
        req(causes, 'metadata.annotations[api-approved.kubernetes.io]',
            'Required value: protected groups must have approval annotation '
            '"api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/'
            'pull/1111')


def immutable(kind, old, new, causes):
    """Fields a real update strategy refuses to change."""
    o_spec, n_spec = old.get("spec") or {}, new.get("spec") or {}
    if kind in ("Deployment", "ReplicaSet", "DaemonSet"):
        if o_spec.get("selector") != n_spec.get("selector"):
            inv(causes, "spec.selector", n_spec.get("selector"), "field is immutable")
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
            causes.append(("spec", "FieldValueForbidden",
                           "Forbidden: pod updates may not change fields other than "
                           "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                           "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
                           "to existing tolerations), `spec.terminationGracePeriodSeconds`"))
    elif kind == "CustomResourceDefinition":
        for f in ("group", "scope"):
            if o_spec.get(f) != n_spec.get(f):
                inv(causes, "spec." + f, n_spec.get(f), "field is immutable")
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
        causes.append((path, "FieldValueNotSupported", 'Unsupported value: %s: supported '
                       'values: %s' % (_repr(value), ", ".join(_repr(e) for e in schema["enum"]))))
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
