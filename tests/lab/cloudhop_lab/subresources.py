"""The subresources a lab API server serves besides status: ``scale`` (built-in kinds and custom
resources with a scale subresource), ``binding`` (the scheduler's) and ``eviction`` (the
Eviction API, honouring PodDisruptionBudgets as the disruption controller's status allows).
``Api`` inherits them; they use its store, lock and verbs."""

from . import errors
from .podutil import dc, now_iso, pod_ready
from .selectors import selector_matches


class Subresources:
    """Mixed into ``Api``."""

    def get_scale(self, rt, ns, name):
        obj = self.get(rt, ns, name)
        spec_path, status_path, sel_path = self._scale_paths(rt)
        sel = _get_path(obj, sel_path)
        if isinstance(sel, dict):
            sel = ",".join("%s=%s" % kv for kv in sorted((sel.get("matchLabels") or {}).items()))
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                  "creationTimestamp") if k in meta},
                "spec": {"replicas": _get_path(obj, spec_path) or 0},
                "status": {"replicas": _get_path(obj, status_path) or 0,
                           **({"selector": sel} if sel else {})}}

    def _scale_paths(self, rt):
        if rt.builtin:
            return ".spec.replicas", ".status.replicas", ".spec.selector"
        return (rt.scale.get("specReplicasPath"), rt.scale.get("statusReplicasPath"),
                rt.scale.get("labelSelectorPath"))

    def update_scale(self, rt, ns, name, scale, dry_run=False, manager=None):
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.ApiError(422, "Invalid", 'Scale.autoscaling "%s" is invalid: '
                                  'spec.replicas: Invalid value: %r: must be greater than or '
                                  'equal to 0' % (name, replicas))
        with self.lock:
            obj = self.get(rt, ns, name)
            want_rv = (scale.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != obj["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name)
            spec_path = self._scale_paths(rt)[0]
            _set_path(obj, spec_path, replicas)
            self.update(rt, ns, name, obj, dry_run=dry_run, manager=manager)
        return self.get_scale(rt, ns, name) if not dry_run else dict(
            self.get_scale(rt, ns, name), spec={"replicas": replicas})

    def bind(self, ns, name, binding):
        rt = self.registry.get("", "v1", "pods")
        with self.lock:
            pod = self.get(rt, ns, name)
            if pod["spec"].get("nodeName"):
                raise errors.conflict(rt, name, "pod %s is already assigned to node \"%s\""
                                      % (name, pod["spec"]["nodeName"]))
            target = (binding.get("target") or {}).get("name")
            if not target:
                raise errors.invalid(rt, name, [("target.name", "FieldValueRequired",
                                                 "Required value")])
            pod["spec"]["nodeName"] = target
            old = self.data[rt.key][(ns, name)]
            new = dc(old)
            new["spec"]["nodeName"] = target
            new["status"].setdefault("conditions", [])
            new["status"]["conditions"] = [c for c in new["status"]["conditions"]
                                           if c.get("type") != "PodScheduled"] + [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_iso()}]
            new["metadata"]["resourceVersion"] = self._bump()
            self.data[rt.key][(ns, name)] = new
            self._emit(rt, "MODIFIED", new, old)
        self._committed(rt)

    def evict(self, ns, name, eviction, dry_run=False):
        """pods/eviction: PDB-aware deletion (policy/v1 Eviction)."""
        pods = self.registry.get("", "v1", "pods")
        pdbs = self.registry.get("policy", "v1", "poddisruptionbudgets")
        if not isinstance(eviction, dict):
            raise errors.bad_request("the object provided is unrecognized")
        if (eviction.get("metadata") or {}).get("name") not in (None, name):
            raise errors.bad_request("name in URL does not match name in Eviction object")
        with self.lock:
            pod = self.get(pods, ns, name)
            opts = dict(eviction.get("deleteOptions") or {})
            phase = (pod.get("status") or {}).get("phase")
            if pod["metadata"].get("deletionTimestamp"):
                return
            if phase in ("Pending", "Succeeded", "Failed"):
                self.delete(pods, ns, name, opts, dry_run)
                return
            matching = [p for p in self.data[pdbs.key].values()
                        if p["metadata"]["namespace"] == ns and
                        selector_matches((p.get("spec") or {}).get("selector"),
                                         pod["metadata"].get("labels"))]
            if len(matching) > 1:
                raise errors.ApiError(500, "InternalError", "This pod has more than one "
                                      "PodDisruptionBudget, which the eviction subresource "
                                      "does not support.")
            if matching:
                pdb = matching[0]
                status = pdb.get("status") or {}
                if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
                    raise errors.too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        retry_after=1)
                healthy = pod_ready(pod)
                allowed = status.get("disruptionsAllowed", 0)
                unhealthy_ok = not healthy and \
                    status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0)
                if not unhealthy_ok and allowed <= 0:
                    err = errors.too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.")
                    err.details = {"causes": [{
                        "reason": "DisruptionBudget",
                        "message": "The disruption budget %s needs %d healthy pods and has %d "
                                   "currently" % (pdb["metadata"]["name"],
                                                  status.get("desiredHealthy", 0),
                                                  status.get("currentHealthy", 0))}]}
                    raise err
                if not dry_run and not unhealthy_ok:
                    new_pdb = dc(pdb)
                    st = new_pdb.setdefault("status", {})
                    st["disruptionsAllowed"] = allowed - 1
                    st.setdefault("disruptedPods", {})[name] = now_iso()
                    self._finish_update(pdbs, pdb, new_pdb, "status", False, None)
            self.delete(pods, ns, name, opts, dry_run)

    # ------------------------------------------------------------------ watch


def _get_path(obj, path):
    cur = obj
    for part in (path or "").strip(".").split("."):
        if not part:
            continue
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _set_path(obj, path, value):
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
