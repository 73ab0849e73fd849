"""kube-controller-manager's other controllers the lab needs (disruption, endpoints, garbage
collector, service accounts), and ``standard_controllers``: every controller of one cluster.
The workload controllers are in workloads.py, the scheduler in scheduler.py, the kubelet and its
runtime interface in kubelet.py."""

import time

from .. import errors
from ..podutil import dc, now_iso, parse_iso, pod_active, pod_ready
from ..selectors import selector_matches
from .base import Controller, resolve
from .kubelet import Kubelet
from .scheduler import Scheduler
from .workloads import (DaemonSetController, DeploymentController, ReplicaSetController,
                        StatefulSetController)

POD_GVR = ("", "v1", "pods")
NODE_GVR = ("", "v1", "nodes")


class DisruptionController(Controller):
    name = "disruption-controller"

    def reconcile(self):
        pdb_rt = self.rt("policy", "v1", "poddisruptionbudgets")
        pods = self.ls(*POD_GVR)
        rss = {r["metadata"]["uid"]: r for r in self.ls("apps", "v1", "replicasets")}
        deps = {d["metadata"]["uid"]: d for d in self.ls("apps", "v1", "deployments")}
        now = time.time()
        for pdb in self.ls("policy", "v1", "poddisruptionbudgets"):
            with self.isolated(pdb):
                ns = pdb["metadata"]["namespace"]
                spec = pdb.get("spec") or {}
                sel = spec.get("selector")
                matching = [p for p in pods if p["metadata"]["namespace"] == ns and sel is not None
                            and selector_matches(sel, p["metadata"].get("labels"))]
                old = pdb.get("status") or {}
                disrupted = {}
                for pname, ts in (old.get("disruptedPods") or {}).items():
                    pod = next((p for p in matching if p["metadata"]["name"] == pname), None)
                    if pod is not None and not pod["metadata"].get("deletionTimestamp") and \
                            now - parse_iso(ts) < 120:
                        disrupted[pname] = ts
                healthy = sum(1 for p in matching if pod_active(p) and pod_ready(p)
                              and p["metadata"]["name"] not in disrupted)
                expected = len(matching)
                if "maxUnavailable" in spec or isinstance(spec.get("minAvailable"), str):
                    scales = {}
                    for p in matching:
                        for ref in p["metadata"].get("ownerReferences") or []:
                            rs = rss.get(ref.get("uid"))
                            if rs is None:
                                continue
                            top = next((deps[r["uid"]] for r in rs["metadata"].get("ownerReferences")
                                        or [] if r.get("uid") in deps), rs)
                            scales[top["metadata"]["uid"]] = top["spec"].get("replicas", 1)
                    expected = sum(scales.values()) if scales else len(matching)
                if "maxUnavailable" in spec:
                    desired = max(0, expected - resolve(spec["maxUnavailable"], expected, True))
                elif "minAvailable" in spec:
                    desired = resolve(spec["minAvailable"], expected, True)
                else:
                    desired = expected
                allowed = max(0, healthy - desired)
                status = {"observedGeneration": pdb["metadata"].get("generation", 1),
                          "currentHealthy": healthy, "desiredHealthy": desired,
                          "expectedPods": expected, "disruptionsAllowed": allowed}
                if disrupted:
                    status["disruptedPods"] = disrupted
                prev = {c["type"]: c for c in old.get("conditions") or []}.get("DisruptionAllowed")
                flag = "True" if allowed > 0 else "False"
                if prev and prev.get("status") == flag:
                    status["conditions"] = [prev]
                else:
                    status["conditions"] = [{
                        "type": "DisruptionAllowed", "status": flag,
                        "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                        "message": "", "observedGeneration": pdb["metadata"].get("generation", 1),
                        "lastTransitionTime": now_iso()}]
                self.set_status(pdb_rt, pdb, status)


class EndpointsController(Controller):
    name = "endpoints-controller"

    def reconcile(self):
        ep_rt = self.rt("", "v1", "endpoints")
        pods = self.ls(*POD_GVR)
        eps = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
               for e in self.ls("", "v1", "endpoints")}
        for svc in self.ls("", "v1", "services"):
            with self.isolated(svc):
                sel = (svc.get("spec") or {}).get("selector")
                if not sel:
                    continue
                ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
                ready, not_ready = [], []
                ports = None
                for p in pods:
                    if p["metadata"]["namespace"] != ns or p["metadata"].get("deletionTimestamp"):
                        continue
                    if not selector_matches({"matchLabels": sel}, p["metadata"].get("labels")):
                        continue
                    ip = (p.get("status") or {}).get("podIP")
                    if not ip:
                        continue
                    addr = {"ip": ip, "nodeName": p["spec"].get("nodeName"),
                            "targetRef": {"kind": "Pod", "namespace": ns,
                                          "name": p["metadata"]["name"],
                                          "uid": p["metadata"]["uid"]}}
                    (ready if pod_ready(p) else not_ready).append(addr)
                    if ports is None:
                        ports = self._ports(svc, p)
                subsets = []
                if ready or not_ready:
                    subset = {"ports": ports or []}
                    if ready:
                        subset["addresses"] = sorted(ready, key=lambda a: a["ip"])
                    if not_ready:
                        subset["notReadyAddresses"] = sorted(not_ready, key=lambda a: a["ip"])
                    subsets.append(subset)
                body = {"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": name, "namespace": ns,
                                     "labels": dict(svc["metadata"].get("labels") or {})}}
                if subsets:
                    body["subsets"] = subsets
                cur = eps.get((ns, name))
                if cur is None:
                    self.api.create(ep_rt, ns, body)
                elif cur.get("subsets") != body.get("subsets"):
                    new = dc(cur)
                    new["subsets"] = body.get("subsets")
                    if new["subsets"] is None:
                        new.pop("subsets")
                    self.api.update(ep_rt, ns, name, new)

    @staticmethod
    def _ports(svc, pod):
        out = []
        for sp in svc["spec"].get("ports") or []:
            target = sp.get("targetPort", sp.get("port"))
            if isinstance(target, str):
                target = next((cp["containerPort"] for c in pod["spec"].get("containers") or []
                               for cp in c.get("ports") or [] if cp.get("name") == target), None)
                if target is None:
                    continue
            port = {"port": target, "protocol": sp.get("protocol", "TCP")}
            if sp.get("name"):
                port["name"] = sp["name"]
            out.append(port)
        return out


class GarbageCollector(Controller):
    """ownerReference garbage collection (background, foreground, orphan) and the namespace
    controller."""

    name = "garbage-collector"

    def reconcile(self):
        api = self.api
        uids = {}
        everything = []
        for rt in api.registry.all():
            if (rt.group, rt.plural) in {(r.group, r.plural) for r, _objs in everything}:
                continue
            objs = api.list(rt, copy_objs=False)[0]
            everything.append((rt, objs))
            for o in objs:
                uids[o["metadata"]["uid"]] = (rt, o)
        for rt, objs in everything:
            for o in objs:
                meta = o["metadata"]
                refs = meta.get("ownerReferences") or []
                if refs and not meta.get("deletionTimestamp"):
                    alive = [r for r in refs if r.get("uid") in uids]
                    if not alive:
                        self._delete(rt, o)
                        continue
                    fg_owner = next((uids[r["uid"]][1] for r in alive
                                     if "foregroundDeletion" in
                                     (uids[r["uid"]][1]["metadata"].get("finalizers") or [])),
                                    None)
                    if fg_owner is not None:
                        self._delete(rt, o, {"propagationPolicy": "Foreground"})
        for rt, objs in everything:
            for o in objs:
                fins = o["metadata"].get("finalizers") or []
                if not o["metadata"].get("deletionTimestamp"):
                    continue
                uid = o["metadata"]["uid"]
                dependents = [(drt, d) for drt, dobjs in everything for d in dobjs
                              if any(r.get("uid") == uid for r in
                                     d["metadata"].get("ownerReferences") or [])]
                if "orphan" in fins:
                    for drt, d in dependents:
                        refs = [r for r in d["metadata"]["ownerReferences"] if r["uid"] != uid]
                        api.patch(drt, d["metadata"].get("namespace"), d["metadata"]["name"],
                                  "merge", {"metadata": {"ownerReferences": refs or None}})
                    self._drop_finalizer(rt, o, "orphan")
                elif "foregroundDeletion" in fins:
                    blocking = [d for _drt, d in dependents
                                if any(r.get("uid") == uid and r.get("blockOwnerDeletion")
                                       for r in d["metadata"]["ownerReferences"])]
                    if not blocking:
                        self._drop_finalizer(rt, o, "foregroundDeletion")
        self._namespaces(everything)

    def _delete(self, rt, obj, opts=None):
        try:
            self.api.delete(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], opts)
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

    def _drop_finalizer(self, rt, obj, fin):
        fins = [f for f in obj["metadata"].get("finalizers") or [] if f != fin]
        self.api.patch(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"], "merge",
                       {"metadata": {"finalizers": fins or None}})

    def _namespaces(self, everything):
        ns_rt = self.rt("", "v1", "namespaces")
        for ns in self.api.list(ns_rt, copy_objs=False)[0]:
            with self.isolated(ns):
                if not ns["metadata"].get("deletionTimestamp"):
                    continue
                name = ns["metadata"]["name"]
                left = 0
                for rt, objs in everything:
                    if not rt.namespaced:
                        continue
                    for o in objs:
                        if o["metadata"].get("namespace") == name:
                            left += 1
                            if not o["metadata"].get("deletionTimestamp"):
                                self._delete(rt, o)
                if left == 0 and (ns.get("spec") or {}).get("finalizers"):
                    cur = dc(ns)
                    cur["spec"]["finalizers"] = []
                    self.api.update(ns_rt, None, name, cur)


class ServiceAccountController(Controller):
    """Every active namespace gets a ``default`` ServiceAccount."""

    name = "serviceaccount-controller"

    def reconcile(self):
        sa_rt = self.rt("", "v1", "serviceaccounts")
        have = {s["metadata"]["namespace"] for s in self.ls("", "v1", "serviceaccounts")
                if s["metadata"]["name"] == "default"}
        for ns in self.ls("", "v1", "namespaces"):
            with self.isolated(ns):
                name = ns["metadata"]["name"]
                if name not in have and not ns["metadata"].get("deletionTimestamp"):
                    try:
                        self.api.create(sa_rt, name, {"metadata": {"name": "default"}})
                    except errors.ApiError as exc:
                        if exc.code not in (403, 404, 409):
                            raise


class PersistentVolumeController(Controller):
    """A dynamic provisioner and the PV binder: every pending claim is bound at once to a
    volume of its own (``pvc-<uid>``), with the size and access modes it asked for, as a
    default StorageClass with Immediate binding does. The data of a claim lives as long as the
    claim (the pod runtime keeps it per claim)."""

    name = "persistentvolume-controller"

    def reconcile(self):
        rt = self.rt("", "v1", "persistentvolumeclaims")
        for pvc in self.ls("", "v1", "persistentvolumeclaims"):
            with self.isolated(pvc):
                if (pvc.get("status") or {}).get("phase") == "Bound":
                    continue
                spec = pvc.get("spec") or {}
                if not spec.get("volumeName"):
                    cur = dc(pvc)
                    cur["spec"]["volumeName"] = "pvc-" + pvc["metadata"]["uid"]
                    pvc = self.api.update(rt, pvc["metadata"]["namespace"],
                                          pvc["metadata"]["name"], cur)
                size = ((spec.get("resources") or {}).get("requests") or {}).get("storage",
                                                                                 "1Gi")
                self.set_status(rt, pvc, {
                    "phase": "Bound", "capacity": {"storage": size},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"]})


def standard_controllers(api, runtime=None):
    return [DeploymentController(api), ReplicaSetController(api), DaemonSetController(api),
            StatefulSetController(api), PersistentVolumeController(api),
            Scheduler(api), Kubelet(api, runtime), DisruptionController(api),
            EndpointsController(api), GarbageCollector(api), ServiceAccountController(api)]
