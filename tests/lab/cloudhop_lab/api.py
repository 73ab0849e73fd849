"""The state and write semantics of one emulated Kubernetes API server.

HTTP handlers and the in-process controllers both go through this class, so controllers see
the same conflicts, defaulting and watch events a real controller would.
"""

import collections
import ipaddress
import random
import string
import threading
import time
import uuid

from . import errors, patching, semantics, validation
from .podutil import dc, now_iso
from .allocation import Allocation
from .subresources import Subresources
from .kinds import Registry
from .selectors import (field_matches, label_matches, parse_field_selector,
                        parse_label_selector)

EVENT_HISTORY = 50000


def _strip_volatile(obj):
    o = dict(obj)
    meta = dict(o.get("metadata") or {})
    for f in ("resourceVersion", "managedFields", "generation"):
        meta.pop(f, None)
    o["metadata"] = meta
    return o


def _spec_part(obj):
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Api(Subresources, Allocation):
    """One cluster's API: resource registry, object storage, watch history."""

    def __init__(self, name, service_cidr="10.240.16.0/20", version="v1.31.4"):
        self.name = name
        self.version = version
        self.registry = Registry()
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.rv = 1
        self.data = collections.defaultdict(dict)  # (group, plural) -> {(ns, name): obj}
        self.events = collections.deque(maxlen=EVENT_HISTORY)  # (rv, key, type, obj, old)
        self.service_net = ipaddress.ip_network(service_cidr)
        self.on_change = []  # callables(key) run after each committed write (outside lock)
        self.compacted = 0  # watches from an older resourceVersion get 410 Expired
        self.rbac = None  # optional authorizer callable(user, verb, rt, ns, sub, name) -> bool
        # optional RBAC escalation check callable(user, obj) -> None or why not (rbac.escalation)
        self.escalation = None
        self.requester = threading.local()  # .user: who the serving thread's request is from

    # ------------------------------------------------------------------ helpers

    def rt_for(self, api_version, kind):
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise errors.ApiError(404, "NotFound", 'the server could not find the requested '
                                  'resource (kind %s in %s)' % (kind, api_version))
        return rt

    def rt(self, group, version, plural):
        return self.registry.get(group, version, plural)

    def _bump(self):
        self.rv += 1
        return str(self.rv)

    def _emit(self, rt, etype, obj, old=None):
        self.events.append((int(obj["metadata"]["resourceVersion"]), rt.key, etype, obj, old))
        self.cond.notify_all()

    def _committed(self, rt):
        for cb in list(self.on_change):
            try:
                cb(rt.key)
            except Exception:  # pylint: disable=broad-except
                pass

    def _check_ns(self, rt, ns, creating=False):
        if not rt.namespaced:
            return
        if not ns:
            raise errors.bad_request("an empty namespace may not be set during creation"
                                     if creating else "namespace is required")
        nsrt = self.registry.get("", "v1", "namespaces")
        nsobj = self.data[nsrt.key].get(("", ns))
        if nsobj is None:
            raise errors.namespace_not_found(ns)
        if creating and nsobj["metadata"].get("deletionTimestamp"):
            raise errors.ApiError(403, "Forbidden", "%s \"%s\" is forbidden: unable to create "
                                  "new content in namespace %s because it is being terminated"
                                  % (rt.plural, "", ns))

    def _with_version(self, rt, obj):
        """Objects are stored once per (group, plural); answer in the requested version."""
        if obj.get("apiVersion") != rt.api_version:
            obj = dict(obj, apiVersion=rt.api_version)
        return obj

    # ------------------------------------------------------------------ reads

    def get(self, rt, ns, name):
        with self.lock:
            obj = self.data[rt.key].get((ns or "", name))
            if obj is None:
                raise errors.not_found(rt, name)
            return dc(self._with_version(rt, obj))

    def try_get(self, rt, ns, name):
        with self.lock:
            obj = self.data[rt.key].get((ns or "", name))
            return dc(self._with_version(rt, obj)) if obj is not None else None

    def list(self, rt, ns=None, label_selector=None, field_selector=None, copy_objs=True):
        lreqs = parse_label_selector(label_selector) if isinstance(label_selector, str) \
            else (label_selector or [])
        freqs = parse_field_selector(field_selector, rt.kind) if isinstance(field_selector, str) \
            else (field_selector or [])
        with self.lock:
            items = []
            for (ons, _name), obj in sorted(self.data[rt.key].items()):
                if ns and ons != ns:
                    continue
                if lreqs and not label_matches(lreqs, obj["metadata"].get("labels")):
                    continue
                if freqs and not field_matches(freqs, obj):
                    continue
                items.append(self._with_version(rt, obj))
            rv = str(self.rv)
        if copy_objs:
            items = [dc(i) for i in items]
        return items, rv

    # ------------------------------------------------------------------ create

    def _prepare_new(self, rt, ns, obj):
        if not isinstance(obj, dict):
            raise errors.bad_request("the object provided is unrecognized (must be a JSON object)")
        obj = dc(obj)
        if obj.get("kind") and obj["kind"] != rt.kind:
            raise errors.bad_request("the API version in the data (%s) does not match the "
                                     "expected API version (%s)" % (obj.get("apiVersion"),
                                                                    rt.api_version)
                                     if obj.get("apiVersion") != rt.api_version else
                                     "the kind in the data (%s) does not match the expected "
                                     "kind (%s)" % (obj["kind"], rt.kind))
        if obj.get("apiVersion") and obj["apiVersion"] != rt.api_version:
            raise errors.bad_request("the API version in the data (%s) does not match the "
                                     "expected API version (%s)" % (obj["apiVersion"],
                                                                    rt.api_version))
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = ns or meta.get("namespace")
        else:
            meta.pop("namespace", None)
        return obj

    def _validate(self, rt, obj, old=None):
        causes = []
        if old is None:
            # custom resources' names are DNS subdomains whatever their kind is called
            validation.validate_object_meta(rt.kind if rt.builtin else None, obj["metadata"],
                                            rt.namespaced, causes)
        else:
            validation.validate_object_meta_update(obj["metadata"], old["metadata"], causes)
        if rt.schema is not None:
            pruned = semantics.schema_prune_validate(
                {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")},
                rt.schema, "", causes)
            for k in [k for k in obj if k not in ("apiVersion", "kind", "metadata")]:
                if k in pruned:
                    obj[k] = pruned[k]
                else:
                    obj.pop(k)
        if rt.builtin:
            semantics.validate(rt.kind, obj, causes)
        if old is not None:
            semantics.immutable(rt.kind, old, obj, causes)
        elif rt.builtin and rt.kind == "Ingress":
            semantics.validate_ingress_create(obj, causes)
        if causes:
            raise errors.invalid(rt, obj["metadata"].get("name") or "", causes)

    def create(self, rt, ns, obj, dry_run=False, manager=None, internal=False):
        obj = self._prepare_new(rt, ns, obj)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(
                random.choice(string.ascii_lowercase + string.digits) for _i in range(5))
        with self.lock:
            self._check_ns(rt, meta.get("namespace"), creating=True)
            if rt.builtin:
                semantics.default(rt.kind, obj)
            self._admit_create(rt, obj)
            self._check_escalation(rt, obj, creating=True)
            if rt.status and rt.kind not in ("Node",):
                obj.pop("status", None)
                if rt.kind == "Pod":
                    obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
                elif rt.kind == "Namespace":
                    obj["status"] = {"phase": "Active"}
                elif rt.kind == "Service":
                    obj["status"] = {"loadBalancer": {}}
            self._validate(rt, obj)
            key = (meta.get("namespace") or "", meta["name"])
            if key in self.data[rt.key]:
                raise errors.already_exists(rt, meta["name"])
            for f in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "managedFields", "selfLink"):
                meta.pop(f, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_iso()
            meta["generation"] = 1
            patching.record_update(None, obj, manager, now_iso(), rt.api_version, _schema(rt))
            if dry_run:
                meta["resourceVersion"] = str(self.rv)
                if rt.kind == "Service":
                    self._allocate_service(obj, dry_run=True)
                return dc(obj)
            if rt.kind == "Service":
                self._allocate_service(obj)
            meta["resourceVersion"] = self._bump()
            self.data[rt.key][key] = obj
            self._after_write(rt, None, obj)
            self._emit(rt, "ADDED", obj)
            out = dc(obj)
        self._committed(rt)
        return out

    def _check_escalation(self, rt, obj, creating=False):
        """The RBAC registry's escalation prevention on a Role, ClusterRole or binding write."""
        user = getattr(self.requester, "user", None)
        if self.escalation is None or user is None or \
                rt.group != "rbac.authorization.k8s.io" or rt.kind not in (
                    "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
            return
        why = self.escalation(user, dict(obj, kind=rt.kind), creating)
        if why:
            raise errors.ApiError(403, "Forbidden", '%s.%s "%s" is forbidden: %s' % (
                rt.plural, rt.group, (obj.get("metadata") or {}).get("name"), why),
                {"name": (obj.get("metadata") or {}).get("name"), "kind": rt.plural,
                 "group": rt.group})

    def _admit_create(self, rt, obj):
        if rt.kind == "CustomResourceDefinition":
            obj.setdefault("status", {})
        elif rt.kind == "Ingress" and rt.builtin:
            self._default_ingress_class(obj)

    def _default_ingress_class(self, obj):
        """The DefaultIngressClass admission plugin: an Ingress created with no class (neither
        spec.ingressClassName nor the deprecated annotation) gets the IngressClass annotated
        ``ingressclass.kubernetes.io/is-default-class: "true"`` (of several, the newest)."""
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict) or spec.get("ingressClassName") or (
                (obj["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")):
            return
        defaults = sorted(
            ((c["metadata"].get("creationTimestamp") or "", c["metadata"]["name"])
             for c in self.data.get(("networking.k8s.io", "ingressclasses"), {}).values()
             if (c["metadata"].get("annotations") or {}).get(
                 "ingressclass.kubernetes.io/is-default-class") == "true"), reverse=True)
        if defaults:
            spec["ingressClassName"] = defaults[0][1]

    # ------------------------------------------------------------------ update

    def _finish_update(self, rt, old, new, sub, dry_run, manager, put=False):
        """Common tail of PUT and PATCH: preserve, validate, short-circuit no-ops, store."""
        if sub is None:
            self._check_escalation(rt, dict(new, metadata=dict(
                new.get("metadata") or {}, namespace=old["metadata"].get("namespace"))))
        meta = new.setdefault("metadata", {})
        ometa = old["metadata"]
        if put and not rt.builtin and not meta.get("resourceVersion"):
            # custom resources do not allow unconditional updates
            raise errors.invalid(rt, ometa["name"], [(
                "metadata.resourceVersion", "FieldValueInvalid",
                "Invalid value: 0x0: must be specified for an update")])
        if meta.get("name") != ometa["name"]:
            raise errors.bad_request("the name of the object (%s) does not match the name on "
                                     "the URL (%s)" % (meta.get("name"), ometa["name"]))
        if rt.namespaced and meta.get("namespace") not in (None, ometa.get("namespace")):
            raise errors.bad_request("the namespace of the provided object does not match "
                                     "the namespace sent on the request")
        given_rv = meta.get("resourceVersion")
        if given_rv and given_rv != ometa["resourceVersion"]:
            raise errors.conflict(rt, ometa["name"])
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if not meta.get("uid"):  # rest.BeforeUpdate: the stored uid unless one is given
            meta["uid"] = ometa.get("uid")
        for f in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                  "namespace", "generation"):
            if f in ometa:
                meta[f] = ometa[f]
            else:
                meta.pop(f, None)
        if sub == "status":
            # the status subresource changes only the status (the rest is the stored object),
            # and like any write it gets a new resourceVersion and a watch event
            kept = dc(old)
            kept["status"] = new.get("status")
            if kept["status"] is None:
                kept.pop("status")
            new = kept
            meta = new["metadata"]
        elif rt.status:
            if "status" in old:
                new["status"] = dc(old["status"])
            else:
                new.pop("status", None)
        if rt.builtin:
            semantics.default(rt.kind, new)
        if not given_rv:
            meta["resourceVersion"] = ometa["resourceVersion"]
        if ometa.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(ometa.get("finalizers") or [])
            if added:
                raise errors.invalid(rt, ometa["name"], [(
                    "metadata.finalizers", "FieldValueForbidden",
                    "Forbidden: no new finalizers can be added if the object is being "
                    "deleted, found new finalizers %s" % sorted(added))])
        self._validate(rt, new, old)
        if rt.kind == "Service":
            new.setdefault("spec", {}).setdefault("clusterIP", old["spec"].get("clusterIP"))
            self._allocate_service(new, dry_run=True, old=old)
        if _spec_part(new) != _spec_part(old) or (
                not rt.status and new.get("status") != old.get("status")):
            meta["generation"] = ometa.get("generation", 1) + 1
        if "managedFields" not in meta and ometa.get("managedFields"):
            meta["managedFields"] = dc(ometa["managedFields"])
        patching.record_update(old, new, manager, now_iso(), rt.api_version, _schema(rt), sub)
        # a write that changes nothing (managedFields aside) is not persisted: same
        # resourceVersion, no event
        if _strip_volatile(new) == _strip_volatile(old):
            return dc(old)
        if dry_run:
            return dc(new)
        meta["resourceVersion"] = self._bump()
        key = (ometa.get("namespace") or "", ometa["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and \
                not (rt.kind == "Namespace" and (new.get("spec") or {}).get("finalizers")) and \
                rt.kind != "Pod":
            del self.data[rt.key][key]
            self._after_delete(rt, new)
            self._emit(rt, "DELETED", new, old)
            return dc(new)
        if rt.kind == "Pod" and meta.get("deletionTimestamp") and not meta.get("finalizers") \
                and meta.get("deletionGracePeriodSeconds") == 0:
            del self.data[rt.key][key]
            self._emit(rt, "DELETED", new, old)
            return dc(new)
        self.data[rt.key][key] = new
        self._after_write(rt, old, new)
        self._emit(rt, "MODIFIED", new, old)
        return dc(new)

    def update(self, rt, ns, name, obj, sub=None, dry_run=False, manager=None):
        if not isinstance(obj, dict):
            raise errors.bad_request("the object provided is unrecognized (must be a JSON object)")
        if obj.get("kind") and obj.get("kind") != rt.kind:
            raise errors.bad_request("the kind in the data (%s) does not match the expected kind "
                                     "(%s)" % (obj.get("kind"), rt.kind))
        with self.lock:
            old = self.data[rt.key].get((ns or "", name))
            if old is None:
                raise errors.not_found(rt, name)
            out = self._finish_update(rt, old, dc(obj), sub, dry_run, manager, put=True)
        self._committed(rt)
        return self._with_version(rt, out)

    def patch(self, rt, ns, name, ptype, body, sub=None, dry_run=False, manager=None,
              force=False):
        with self.lock:
            old = self.data[rt.key].get((ns or "", name))
            if ptype == "apply":
                if not manager:
                    raise errors.bad_request("PatchOptions.meta.k8s.io \"\" is invalid: "
                                             "fieldManager: Required value: is required for "
                                             "apply patch")
                if not isinstance(body, dict):
                    raise errors.bad_request("error decoding YAML: the object is not a mapping")
                if old is None:
                    if sub:
                        raise errors.not_found(rt, name)
                    applied = patching.apply(None, body, manager, force, _schema(rt),
                                             now_iso(), rt.api_version)
                    applied.setdefault("metadata", {})["name"] = name
                    return self._create_applied(rt, ns, applied, dry_run)
            if old is None:
                raise errors.not_found(rt, name)
            current = dc(old)
            if ptype == "merge":
                if not isinstance(body, dict):
                    raise errors.bad_request("json: cannot unmarshal into a merge patch: "
                                             "must be a JSON object")
                new = patching.merge_patch(current, body)
            elif ptype == "json":
                new = patching.json_patch(current, body)
            elif ptype == "strategic":
                if not rt.builtin:
                    raise errors.unsupported_media(
                        "the body of the request was in an unknown format - accepted media "
                        "types include: application/json-patch+json, "
                        "application/merge-patch+json, application/apply-patch+yaml")
                if not isinstance(body, dict):
                    raise errors.bad_request("json: cannot unmarshal array into Go value of "
                                             "type map[string]interface {}")
                new = patching.strategic_merge(current, body, patching.schema_for(rt.kind))
            elif ptype == "apply":
                if body.get("kind") and body.get("kind") != rt.kind:
                    raise errors.bad_request("the kind in the data does not match")
                new = patching.apply(current, body, manager, force, _schema(rt), now_iso(),
                                     rt.api_version)
            else:
                raise errors.unsupported_media("unsupported patch type")
            if not isinstance(new, dict):
                raise errors.ApiError(422, "Invalid", "the patch result is not an object")
            new_meta = new.setdefault("metadata", {})
            if new_meta.get("resourceVersion") in (None, ""):
                new_meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            mgr = None if ptype == "apply" else manager
            out = self._finish_update(rt, old, new, sub, dry_run, mgr)
        self._committed(rt)
        return self._with_version(rt, out)

    def _create_applied(self, rt, ns, applied, dry_run):
        managed = applied["metadata"].pop("managedFields", None)
        out = self.create(rt, ns, applied, dry_run=dry_run, manager=None)
        if dry_run:
            out["metadata"]["managedFields"] = managed
            return out
        with self.lock:
            key = (ns or "", out["metadata"]["name"])
            stored = self.data[rt.key][key]
            stored["metadata"]["managedFields"] = managed
            out["metadata"]["managedFields"] = managed
        return out

    # ------------------------------------------------------------------ delete

    def delete(self, rt, ns, name, opts=None, dry_run=False):
        opts = opts or {}
        with self.lock:
            old = self.data[rt.key].get((ns or "", name))
            if old is None:
                raise errors.not_found(rt, name)
            pre = opts.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"]["uid"]:
                raise errors.conflict(rt, name, "Precondition failed: UID in precondition: %s, "
                                      "UID in object meta: %s" % (pre["uid"],
                                                                  old["metadata"]["uid"]))
            if pre.get("resourceVersion") and pre["resourceVersion"] != \
                    old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name, "Precondition failed: ResourceVersion in "
                                      "precondition: %s, ResourceVersion in object meta: %s"
                                      % (pre["resourceVersion"],
                                         old["metadata"]["resourceVersion"]))
            new = dc(old)
            meta = new["metadata"]
            policy = opts.get("propagationPolicy")
            if opts.get("orphanDependents") is True:
                policy = "Orphan"
            finalizers = list(meta.get("finalizers") or [])
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            grace = None
            if rt.kind == "Pod":
                grace = opts.get("gracePeriodSeconds")
                if grace is None:
                    grace = (old.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
                if not (old.get("spec") or {}).get("nodeName") or \
                        (old.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    grace = 0
            pending_ns = rt.kind == "Namespace"
            if finalizers or pending_ns or (grace or 0) > 0:
                if meta.get("deletionTimestamp"):
                    if rt.kind == "Pod" and grace is not None and \
                            grace < meta.get("deletionGracePeriodSeconds", 0):
                        meta["deletionGracePeriodSeconds"] = grace
                        meta["deletionTimestamp"] = now_iso(grace)
                    else:
                        return dc(old), False
                else:
                    meta["deletionTimestamp"] = now_iso(grace or 0)
                    meta["deletionGracePeriodSeconds"] = grace or 0
                    meta["generation"] = meta.get("generation", 1) + 1
                meta["finalizers"] = finalizers or None
                if meta["finalizers"] is None:
                    del meta["finalizers"]
                if pending_ns:
                    new.setdefault("status", {})["phase"] = "Terminating"
                if dry_run:
                    return dc(new), False
                meta["resourceVersion"] = self._bump()
                self.data[rt.key][(ns or "", name)] = new
                self._emit(rt, "MODIFIED", new, old)
                out = dc(new)
                deleted = False
            else:
                if dry_run:
                    return dc(old), True
                meta["resourceVersion"] = self._bump()
                if rt.kind == "Pod":
                    meta["deletionTimestamp"] = meta.get("deletionTimestamp") or now_iso()
                    meta["deletionGracePeriodSeconds"] = 0
                del self.data[rt.key][(ns or "", name)]
                self._after_delete(rt, new)
                self._emit(rt, "DELETED", new, old)
                out = dc(new)
                deleted = True
        self._committed(rt)
        return self._with_version(rt, out), deleted

    def finalize_delete(self, rt, ns, name):
        """Remove an object whose graceful deletion completed (kubelet confirmed)."""
        with self.lock:
            old = self.data[rt.key].get((ns or "", name))
            if old is None:
                return
            new = dc(old)
            new["metadata"]["resourceVersion"] = self._bump()
            del self.data[rt.key][(ns or "", name)]
            self._after_delete(rt, new)
            self._emit(rt, "DELETED", new, old)
        self._committed(rt)

    def delete_collection(self, rt, ns, label_selector=None, field_selector=None, opts=None,
                          dry_run=False):
        items = self.list(rt, ns, label_selector, field_selector)[0]
        out = []
        for item in items:
            try:
                obj = self.delete(rt, item["metadata"].get("namespace"),
                                  item["metadata"]["name"], opts, dry_run)[0]
                out.append(obj)
            except errors.ApiError as exc:
                if exc.code != 404:
                    raise
        return out

    # ------------------------------------------------------------------ hooks

    def _after_write(self, rt, old, new):
        if rt.kind == "CustomResourceDefinition":
            self._register_crd(new)

    def _after_delete(self, rt, obj):
        if rt.kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            key = (spec.get("group"), (spec.get("names") or {}).get("plural"))
            self.data.pop(key, None)
            self.registry.remove_crd(obj["metadata"]["name"])
        if rt.kind == "Service":
            pass

    def events_since(self, since_rv, timeout):
        """Block until events newer than since_rv exist (or timeout); return them."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                oldest = self.oldest_rv()
                if since_rv < oldest:
                    raise errors.gone("too old resource version: %d (%d)" % (since_rv, oldest))
                if self.rv > since_rv:
                    return [e for e in self.events if e[0] > since_rv], self.rv
                left = deadline - time.monotonic()
                if left <= 0:
                    return [], self.rv
                self.cond.wait(left)

    def oldest_rv(self):
        """The oldest resourceVersion a watch can start from."""
        with self.lock:
            floor = self.events[0][0] - 1 if len(self.events) == self.events.maxlen else 0
            return max(self.compacted, floor)

    def compact(self):
        """Drop the watch history, as an etcd compaction does: older RVs get 410 Expired."""
        with self.cond:
            self.events.clear()
            self._bump()
            self.compacted = self.rv  # every resourceVersion before the compaction is gone
            self.cond.notify_all()
            return self.rv

    def wait_change(self, since_rv, timeout):
        """Controllers: wait until the store moved past since_rv; return the new rv."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.rv <= since_rv:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return self.rv


def _schema(rt):
    """Merge keys for apply/ownership: the built-in type's, or ObjectMeta's for custom
    resources (their lists are atomic, but metadata is the same ObjectMeta everywhere)."""
    return patching.schema_for(rt.kind) if rt.builtin else {"metadata": patching.META}
