"""Label and field selectors with the syntax of k8s.io/apimachinery/pkg/labels and fields."""

import re

from .errors import bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VAL = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"


def _split_top(text):
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text):
    """Return a list of requirements (key, op, values). Raises 400 on bad syntax."""
    reqs = []
    if not text:
        return reqs
    for part in _split_top(text):
        m = re.fullmatch(r"(%s)\s+(in|notin)\s+\(([^)]*)\)" % _KEY, part)
        if m:
            values = [v.strip() for v in m.group(4).split(",") if v.strip()]
            for v in values:
                if not re.fullmatch(_VAL, v):
                    raise bad_request("unable to parse requirement: invalid label value: %r" % v)
            reqs.append((m.group(1), m.group(3), values))
            continue
        m = re.fullmatch(r"!\s*(%s)" % _KEY, part)
        if m:
            reqs.append((m.group(1), "!", []))
            continue
        m = re.fullmatch(r"(%s)\s*(==|!=|=)\s*(%s)" % (_KEY, _VAL), part)
        if m:
            op = "=" if m.group(3) in ("=", "==") else "!="
            reqs.append((m.group(1), op, [m.group(4)]))
            continue
        m = re.fullmatch(_KEY, part)
        if m:
            reqs.append((part, "exists", []))
            continue
        raise bad_request("unable to parse requirement: %r: found invalid syntax" % part)
    return reqs


def label_matches(reqs, labels):
    labels = labels or {}
    for key, op, values in reqs:
        has = key in labels
        val = labels.get(key)
        if op == "=" and not (has and val == values[0]):
            return False
        if op == "!=" and has and val == values[0]:
            return False
        if op == "in" and not (has and val in values):
            return False
        if op == "notin" and has and val in values:
            return False
        if op == "exists" and not has:
            return False
        if op == "!" and has:
            return False
    return True


def selector_to_reqs(selector):
    """A metav1.LabelSelector (matchLabels/matchExpressions) as requirements."""
    if selector is None:
        return None
    reqs = []
    for k, v in sorted((selector.get("matchLabels") or {}).items()):
        reqs.append((k, "=", [v]))
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        reqs.append((expr["key"], ops[expr["operator"]], list(expr.get("values") or [])))
    return reqs


def selector_matches(selector, labels):
    """Semantics of metav1.LabelSelectorAsSelector: an empty selector matches everything."""
    if selector is None:
        return False
    return label_matches(selector_to_reqs(selector), labels)


# Field selectors supported per kind, beyond metadata.name / metadata.namespace.
FIELD_PATHS = {
    "Pod": {"spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "status.podIP", "spec.hostNetwork"},
    "Node": {"spec.unschedulable"},
    "Event": {"involvedObject.kind", "involvedObject.name", "involvedObject.namespace",
              "involvedObject.uid", "reason", "type", "source"},
    "Secret": {"type"},
    "Namespace": {"status.phase"},
}


def parse_field_selector(text, kind):
    reqs = []
    if not text:
        return reqs
    allowed = {"metadata.name", "metadata.namespace"} | FIELD_PATHS.get(kind, set())
    for part in _split_top(text):
        m = re.fullmatch(r"([A-Za-z.]+)\s*(==|!=|=)\s*(.*)", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (text, part))
        field, op, value = m.group(1), m.group(2), m.group(3)
        if field not in allowed:
            raise bad_request('field label not supported: %s' % field)
        reqs.append((field, "!=" if op == "!=" else "=", value))
    return reqs


def _field_value(obj, path):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            cur = None
            break
        cur = cur.get(part)
    if cur is None:
        # unset booleans select as "false", unset strings as ""
        if path in ("spec.unschedulable", "spec.hostNetwork"):
            return "false"
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def field_matches(reqs, obj):
    for field, op, value in reqs:
        actual = _field_value(obj, field)
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
    return True
