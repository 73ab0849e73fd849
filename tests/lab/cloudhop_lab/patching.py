"""PATCH semantics of kube-apiserver: merge, JSON, strategic merge and (simplified) apply.

Strategic merge knows the merge keys of the built-in types the lab serves
(k8s.io/api ``patchMergeKey`` / ``patchStrategy`` tags). Server-side apply is simplified:
ownership is tracked per leaf field (atomic lists are leaves, keyed lists are per item), conflicts
are raised when another manager owns a field the applied config sets to a different value, and
fields a manager stops applying are removed unless another manager still owns them.
"""

import copy
import json

import jsonpatch

from .errors import ApiError, bad_request

# --------------------------------------------------------------------------- strategic schema


class L:
    """A list with a merge key (patchStrategy=merge). key None = list of primitives (set)."""

    def __init__(self, key, item=None):
        self.key = key
        self.item = item or {}


CONTAINER = {
    "env": L("name"), "ports": L("containerPort"), "volumeMounts": L("mountPath"),
    "volumeDevices": L("devicePath"),
}
POD_SPEC = {
    "containers": L("name", CONTAINER), "initContainers": L("name", CONTAINER),
    "ephemeralContainers": L("name", CONTAINER), "volumes": L("name"),
    "imagePullSecrets": L("name"), "hostAliases": L("ip"),
}
META = {"finalizers": L(None), "ownerReferences": L("uid")}
CONDITIONS = {"conditions": L("type")}
POD_TEMPLATE = {"metadata": META, "spec": POD_SPEC}
WORKLOAD = {"metadata": META, "spec": {"template": POD_TEMPLATE}, "status": CONDITIONS}

SCHEMAS = {
    "Pod": {"metadata": META, "spec": POD_SPEC, "status": CONDITIONS},
    "Deployment": WORKLOAD, "ReplicaSet": WORKLOAD, "DaemonSet": WORKLOAD,
    "Service": {"metadata": META, "spec": {"ports": L("port")}},
    "Node": {"metadata": META, "spec": {"taints": L("key")},
             "status": {"conditions": L("type"), "addresses": L("type")}},
    "PodDisruptionBudget": {"metadata": META, "status": CONDITIONS},
    "Namespace": {"metadata": META, "status": CONDITIONS},
    "CustomResourceDefinition": {"metadata": META, "status": CONDITIONS},
}


def schema_for(kind):
    return SCHEMAS.get(kind, {"metadata": META})


# --------------------------------------------------------------------------- merge patch


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch: objects merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --------------------------------------------------------------------------- JSON patch


def json_patch(target, ops):
    if not isinstance(ops, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    try:
        return jsonpatch.JsonPatch(ops).apply(copy.deepcopy(target))
    except jsonpatch.JsonPatchTestFailed as exc:
        raise ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                       "request: testing value failed: %s" % exc) from exc
    except (jsonpatch.JsonPatchConflict, jsonpatch.InvalidJsonPatch, jsonpatch.JsonPointerException,
            KeyError, IndexError, TypeError) as exc:
        raise ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                       "request: %s" % exc) from exc


# --------------------------------------------------------------------------- strategic merge

_DELETE = object()


def _item_key(item, key):
    return item.get(key) if isinstance(item, dict) else None


def _merge_list(orig, patch, spec):
    orig = copy.deepcopy(orig) if isinstance(orig, list) else []
    if spec.key is None:  # set of primitives
        if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return [p for p in patch if not isinstance(p, dict)]
        for p in patch:
            if p not in orig:
                orig.append(p)
        return orig
    if any(isinstance(p, dict) and p.get("$patch") == "replace" and len(p) == 1 for p in patch):
        return [_strip(p) for p in patch if not (isinstance(p, dict) and p.get("$patch"))]
    for p in patch:
        if not isinstance(p, dict):
            raise bad_request("unable to find api field in struct for the merge key %r" % spec.key)
        k = p.get(spec.key)
        if k is None:
            raise bad_request("map: %s does not contain declared merge key: %s" % (p, spec.key))
        idx = next((i for i, o in enumerate(orig) if _item_key(o, spec.key) == k), None)
        if p.get("$patch") == "delete":
            if idx is not None:
                orig.pop(idx)
            continue
        if idx is None:
            orig.append(_strip(p))
        else:
            orig[idx] = strategic_merge(orig[idx], p, spec.item)
    return orig


def _strip(obj):
    """Remove patch directives from an object that is inserted as a whole."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not k.startswith("$")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def strategic_merge(orig, patch, schema):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip({k: v for k, v in patch.items() if k != "$patch"})
    if patch.get("$patch") == "delete":
        return _DELETE
    result = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    retain = patch.get("$retainKeys")
    orders = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in (value or [])]
            continue
        if key.startswith("$"):
            raise bad_request("unknown patch directive %r" % key)
        sub = schema.get(key) if isinstance(schema, dict) else None
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(sub, L):
            result[key] = _merge_list(result.get(key), value, sub)
        elif isinstance(value, dict):
            merged = strategic_merge(result.get(key), value, sub if isinstance(sub, dict) else {})
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = _strip(copy.deepcopy(value))
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    for field, order in orders.items():
        sub = schema.get(field) if isinstance(schema, dict) else None
        items = result.get(field)
        if not isinstance(items, list) or not isinstance(sub, L):
            continue
        if sub.key is None:
            keyed = order
            rank = {v: i for i, v in enumerate(keyed)}
            items.sort(key=lambda v, rank=rank: rank.get(v, len(rank)))
        else:
            rank = {o.get(sub.key): i for i, o in enumerate(order) if isinstance(o, dict)}
            items.sort(key=lambda v, rank=rank, k=sub.key: rank.get(_item_key(v, k), len(rank)))
    return result


# --------------------------------------------------------------------------- server-side apply

_UNMANAGED_META = {"name", "namespace", "uid", "resourceVersion", "generation",
                   "creationTimestamp", "managedFields", "selfLink", "deletionTimestamp",
                   "deletionGracePeriodSeconds", "generateName"}


def _key_token(item, key):
    return "k:" + json.dumps({key: item.get(key)}, separators=(",", ":"))


def leaf_paths(obj, schema, skip_status=True, _prefix=()):
    """Set of owned leaf paths in an object, as tuples of fieldsV1 tokens."""
    out = set()
    if not isinstance(obj, dict):
        return out
    for key, value in obj.items():
        if not _prefix and key in ("apiVersion", "kind"):
            continue
        if not _prefix and key == "status" and skip_status:
            continue
        if _prefix == ("f:metadata",) and key in _UNMANAGED_META:
            continue
        path = _prefix + ("f:" + key,)
        sub = schema.get(key) if isinstance(schema, dict) else None
        if isinstance(value, dict) and value:
            out |= leaf_paths(value, sub if isinstance(sub, dict) else {}, skip_status, path)
        elif isinstance(value, dict):
            continue  # an empty map owns no leaf
        elif isinstance(value, list) and isinstance(sub, L) and sub.key:
            for item in value:
                if isinstance(item, dict) and sub.key in item:
                    ipath = path + (_key_token(item, sub.key),)
                    inner = leaf_paths(item, sub.item, skip_status, ipath)
                    out |= inner or {ipath}
        elif isinstance(value, list) and isinstance(sub, L):
            for item in value:
                out.add(path + ("v:" + json.dumps(item, separators=(",", ":")),))
        else:
            out.add(path)
    return out


def value_at(obj, path):
    cur = obj
    for tok in path:
        if tok.startswith("f:"):
            if not isinstance(cur, dict) or tok[2:] not in cur:
                return _DELETE
            cur = cur[tok[2:]]
        elif tok.startswith("k:"):
            (k, v), = json.loads(tok[2:]).items()
            cur = next((i for i in cur or [] if isinstance(i, dict) and i.get(k) == v), _DELETE)
            if cur is _DELETE:
                return cur
        elif tok.startswith("v:"):
            v = json.loads(tok[2:])
            return v if isinstance(cur, list) and v in cur else _DELETE
    return cur


def remove_path(obj, path):
    """Delete the field at path (and prune emptied parent maps)."""
    parents = []
    cur = obj
    for tok in path[:-1]:
        parents.append(cur)
        nxt = value_at(cur, (tok,))
        if nxt is _DELETE or not isinstance(nxt, (dict, list)):
            return
        cur = nxt
    last = path[-1]
    if last.startswith("f:") and isinstance(cur, dict):
        cur.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(cur, list):
        (k, v), = json.loads(last[2:]).items()
        cur[:] = [i for i in cur if not (isinstance(i, dict) and i.get(k) == v)]
    elif last.startswith("v:") and isinstance(cur, list):
        v = json.loads(last[2:])
        cur[:] = [i for i in cur if i != v]


def paths_to_fields_v1(paths):
    tree = {}
    for path in sorted(paths):
        node = tree
        for tok in path:
            node = node.setdefault(tok, {})
            if tok.startswith("k:"):
                node.setdefault(".", {})
    return tree


def fields_v1_to_paths(tree, prefix=()):
    out = set()
    for tok, sub in (tree or {}).items():
        if tok == ".":
            continue
        path = prefix + (tok,)
        children = {k: v for k, v in (sub or {}).items() if k != "."}
        if children:
            out |= fields_v1_to_paths(children, path)
        else:
            out.add(path)
    return out


def _owners(managed):
    owners = []
    for entry in managed or []:
        owners.append((entry, fields_v1_to_paths(entry.get("fieldsV1"))))
    return owners


def _overlaps(a, b):
    return a[:len(b)] == b or b[:len(a)] == a


def apply(live, applied, manager, force, schema, now, api_version):
    """Server-side apply of ``applied`` onto ``live`` (None when creating).

    Returns the new object. Raises 409 Conflict naming the fields and their managers.
    """
    new_paths = leaf_paths(applied, schema)
    live = copy.deepcopy(live) if live else {}
    managed = list((live.get("metadata") or {}).get("managedFields") or [])
    owners = _owners(managed)
    conflicts = []
    for entry, paths in owners:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            continue
        for p in new_paths:
            for q in paths:
                if _overlaps(p, q) and value_at(live, q) != value_at(applied, q):
                    conflicts.append((entry.get("manager"), q))
    if conflicts and not force:
        causes = [{"reason": "FieldManagerConflict",
                   "message": 'conflict with "%s"' % m,
                   "field": "." + ".".join(t[2:] if t.startswith("f:") else "[%s]" % t[2:]
                                           for t in q)} for m, q in conflicts]
        msg = "Apply failed with %d conflict%s: %s" % (
            len(causes), "" if len(causes) == 1 else "s",
            "; ".join("%s: %s" % (c["message"], c["field"]) for c in causes))
        raise ApiError(409, "Conflict", msg, {"causes": causes})
    previous = set()
    new_managed = []
    for entry, paths in owners:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            previous = paths
            continue
        # fields taken over by force (or set to the same value: shared ownership stays)
        kept = {q for q in paths if not any(_overlaps(p, q) for p in new_paths)
                or value_at(live, q) == value_at(applied, q)}
        if kept:
            entry = dict(entry, fieldsV1=paths_to_fields_v1(kept))
            new_managed.append(entry)
    merged = _apply_merge(live, applied, schema)
    still_owned = set()
    for entry in new_managed:
        still_owned |= fields_v1_to_paths(entry.get("fieldsV1"))
    for p in sorted(previous - new_paths, key=len, reverse=True):
        if not any(_overlaps(p, q) for q in still_owned | new_paths):
            remove_path(merged, p)
    new_managed.append({"manager": manager, "operation": "Apply", "apiVersion": api_version,
                        "time": now, "fieldsType": "FieldsV1",
                        "fieldsV1": paths_to_fields_v1(new_paths)})
    merged.setdefault("metadata", {})["managedFields"] = new_managed
    return merged


def _apply_merge(live, applied, schema):
    """Merge applied config into live: maps merge, keyed lists merge per item, rest replaces."""
    if not isinstance(applied, dict):
        return copy.deepcopy(applied)
    result = copy.deepcopy(live) if isinstance(live, dict) else {}
    for key, value in applied.items():
        sub = schema.get(key) if isinstance(schema, dict) else None
        if isinstance(value, dict):
            result[key] = _apply_merge(result.get(key), value, sub if isinstance(sub, dict) else {})
        elif isinstance(value, list) and isinstance(sub, L) and sub.key:
            cur = copy.deepcopy(result.get(key)) if isinstance(result.get(key), list) else []
            for item in value:
                idx = next((i for i, o in enumerate(cur)
                            if _item_key(o, sub.key) == _item_key(item, sub.key)), None)
                if idx is None:
                    cur.append(copy.deepcopy(item))
                else:
                    cur[idx] = _apply_merge(cur[idx], item, sub.item)
            result[key] = cur
        elif isinstance(value, list) and isinstance(sub, L):
            cur = list(result.get(key) or [])
            result[key] = cur + [v for v in value if v not in cur]
        else:
            result[key] = copy.deepcopy(value)
    return result


def record_update(old, new, manager, now, api_version, schema, subresource=None):
    """managedFields bookkeeping for a non-apply write: the writer owns what it changed."""
    if not manager:
        return
    old_paths = leaf_paths(old or {}, schema, skip_status=subresource != "status")
    new_paths = leaf_paths(new, schema, skip_status=subresource != "status")
    changed = {p for p in new_paths
               if p not in old_paths or value_at(old or {}, p) != value_at(new, p)}
    removed = old_paths - new_paths
    managed = list((old or {}).get("metadata", {}).get("managedFields") or []) if old else []
    out = []
    mine = None
    for entry in managed:
        paths = fields_v1_to_paths(entry.get("fieldsV1"))
        if entry.get("manager") == manager and entry.get("operation") == "Update" and \
                entry.get("subresource", "") == (subresource or ""):
            mine = paths
            continue
        paths = {q for q in paths if not any(_overlaps(p, q) for p in changed | removed)}
        if paths:
            out.append(dict(entry, fieldsV1=paths_to_fields_v1(paths)))
    mine = ((mine or set()) - removed) | changed
    mine = {p for p in mine if value_at(new, p) is not _DELETE}
    if mine:
        entry = {"manager": manager, "operation": "Update", "apiVersion": api_version,
                 "time": now, "fieldsType": "FieldsV1", "fieldsV1": paths_to_fields_v1(mine)}
        if subresource:
            entry["subresource"] = subresource
        out.append(entry)
    if out:
        new.setdefault("metadata", {})["managedFields"] = out
    else:
        new.setdefault("metadata", {}).pop("managedFields", None)
