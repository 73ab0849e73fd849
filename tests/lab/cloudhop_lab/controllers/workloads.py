"""The workload controllers of kube-controller-manager: Deployment, ReplicaSet and DaemonSet
(rollouts with maxSurge/maxUnavailable, minReadySeconds, revision history)."""

import time

from .. import errors
from ..podutil import dc, now_iso, pod_active, pod_available, pod_ready, name_suffix
from .base import Controller, owned_by, owner_ref, resolve, rollout_plan, template_hash
from .scheduler import fits

POD_GVR = ("", "v1", "pods")
NODE_GVR = ("", "v1", "nodes")


def pod_from_template(owner, template, name, extra_labels=None, node_name=None):
    meta = dc(template.get("metadata") or {})
    meta.pop("creationTimestamp", None)
    meta["name"] = name
    meta["namespace"] = owner["metadata"]["namespace"]
    meta["labels"] = dict(meta.get("labels") or {}, **(extra_labels or {}))
    meta["ownerReferences"] = [owner_ref(owner)]
    meta["generateName"] = owner["metadata"]["name"] + "-"
    spec = dc(template.get("spec") or {})
    if node_name:
        spec["nodeName"] = node_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


class DeploymentController(Controller):
    name = "deployment-controller"

    def reconcile(self):
        rs_rt = self.rt("apps", "v1", "replicasets")
        dep_rt = self.rt("apps", "v1", "deployments")
        all_rs = self.ls("apps", "v1", "replicasets")
        for dep in self.ls("apps", "v1", "deployments"):
            with self.isolated(dep):
                if dep["metadata"].get("deletionTimestamp"):
                    continue
                ns = dep["metadata"]["namespace"]
                spec = dep["spec"]
                owned = [rs for rs in all_rs if rs["metadata"]["namespace"] == ns and owned_by(rs, dep)]
                tmpl = dc(spec["template"])
                h = template_hash(tmpl)
                new = next((rs for rs in owned
                            if rs["metadata"].get("labels", {}).get("pod-template-hash") == h), None)
                revisions = [int(rs["metadata"].get("annotations", {})
                                 .get("deployment.kubernetes.io/revision", "0")) for rs in owned]
                if new is None and not spec.get("paused"):
                    tmpl.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = h
                    sel = dc(spec["selector"])
                    sel.setdefault("matchLabels", {})["pod-template-hash"] = h
                    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
                        "name": "%s-%s" % (dep["metadata"]["name"], h), "namespace": ns,
                        "labels": dict(tmpl["metadata"]["labels"]),
                        "annotations": {"deployment.kubernetes.io/revision":
                                        str(max(revisions + [0]) + 1),
                                        "deployment.kubernetes.io/desired-replicas":
                                        str(spec.get("replicas", 1))},
                        "ownerReferences": [owner_ref(dep)]},
                        "spec": {"replicas": 0, "selector": sel, "template": tmpl,
                                 "minReadySeconds": spec.get("minReadySeconds", 0)}}
                    try:
                        new = self.api.create(rs_rt, ns, rs)
                    except errors.ApiError as exc:
                        if exc.code != 409:
                            raise
                        continue
                    owned.append(new)
                desired = spec.get("replicas", 1)
                olds = [(rs, rs["spec"].get("replicas", 0),
                         (rs.get("status") or {}).get("readyReplicas", 0))
                        for rs in owned if new is None or rs["metadata"]["uid"] != new["metadata"]["uid"]]
                if new is not None:
                    new_ready = (new.get("status") or {}).get("readyReplicas", 0)
                    if spec.get("paused"):
                        want_new, plan = new["spec"].get("replicas", 0), {}
                    else:
                        want_new, plan = rollout_plan(desired, spec.get("strategy"),
                                                      new["spec"].get("replicas", 0), new_ready, olds)
                    if want_new != new["spec"].get("replicas"):
                        self.api.patch(rs_rt, ns, new["metadata"]["name"], "merge",
                                       {"spec": {"replicas": want_new}})
                    for rs, replicas, _ready in olds:
                        target = plan.get(rs["metadata"]["name"], replicas)
                        if target != replicas:
                            self.api.patch(rs_rt, ns, rs["metadata"]["name"], "merge",
                                           {"spec": {"replicas": target}})
                # history clean-up
                limit = spec.get("revisionHistoryLimit", 10)
                idle = sorted([rs for rs, r, _ready in olds if r == 0 and
                               not (rs.get("status") or {}).get("replicas")],
                              key=lambda r: r["metadata"]["creationTimestamp"])
                for rs in idle[:max(0, len(idle) - limit)]:
                    self.api.delete(rs_rt, ns, rs["metadata"]["name"])
                self._status(dep_rt, dep, owned, new)

    def _status(self, dep_rt, dep, owned, new):
        def st(rs, field):
            return (rs.get("status") or {}).get(field, 0)
        desired = dep["spec"].get("replicas", 1)
        replicas = sum(st(rs, "replicas") for rs in owned)
        ready = sum(st(rs, "readyReplicas") for rs in owned)
        available = sum(st(rs, "availableReplicas") for rs in owned)
        updated = st(new, "replicas") if new else 0
        ru = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
        max_unavail = resolve(ru.get("maxUnavailable", "25%"), desired, False)
        complete = updated == desired and replicas == desired and available == desired
        old = dep.get("status") or {}
        conds = {c["type"]: c for c in old.get("conditions") or []}

        def cond(ctype, status, reason, message):
            prev = conds.get(ctype)
            if prev and prev["status"] == status and prev.get("reason") == reason:
                return prev
            return {"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastUpdateTime": now_iso(), "lastTransitionTime": now_iso()}
        name = new["metadata"]["name"] if new else ""
        status = {
            "observedGeneration": dep["metadata"].get("generation", 1),
            "replicas": replicas, "updatedReplicas": updated, "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": max(0, desired - available) if replicas or desired else 0,
            "conditions": [
                cond("Available", "True" if available >= desired - max_unavail else "False",
                     "MinimumReplicasAvailable" if available >= desired - max_unavail
                     else "MinimumReplicasUnavailable",
                     "Deployment has minimum availability."),
                cond("Progressing", "True",
                     "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                     'ReplicaSet "%s" has %s.' % (name, "successfully progressed" if complete
                                                  else "is progressing")),
            ]}
        for k in ("readyReplicas", "availableReplicas", "unavailableReplicas", "replicas",
                  "updatedReplicas"):
            if not status[k]:
                status.pop(k)
        self.set_status(dep_rt, dep, status)


class ReplicaSetController(Controller):
    name = "replicaset-controller"

    def reconcile(self):
        pod_rt = self.rt(*POD_GVR)
        rs_rt = self.rt("apps", "v1", "replicasets")
        pods = self.ls(*POD_GVR)
        for rs in self.ls("apps", "v1", "replicasets"):
            with self.isolated(rs):
                if rs["metadata"].get("deletionTimestamp"):
                    continue
                ns = rs["metadata"]["namespace"]
                mine = [p for p in pods if p["metadata"]["namespace"] == ns and owned_by(p, rs)]
                active = [p for p in mine if pod_active(p)]
                want = rs["spec"].get("replicas", 1)
                if len(active) < want:
                    for _i in range(want - len(active)):
                        pod = pod_from_template(rs, rs["spec"]["template"],
                                                "%s-%s" % (rs["metadata"]["name"], name_suffix()))
                        self.api.create(pod_rt, ns, pod)
                elif len(active) > want:
                    def rank(p):
                        return (bool(p["spec"].get("nodeName")), pod_ready(p),
                                p["metadata"]["creationTimestamp"])
                    for p in sorted(active, key=rank)[:len(active) - want]:
                        try:
                            self.api.delete(pod_rt, ns, p["metadata"]["name"])
                        except errors.ApiError as exc:
                            if exc.code != 404:
                                raise
                ready = sum(1 for p in active if pod_ready(p))
                status = {"replicas": len(active),
                          "fullyLabeledReplicas": len(active),
                          "readyReplicas": ready, "availableReplicas": ready,
                          "observedGeneration": rs["metadata"].get("generation", 1)}
                status = {k: v for k, v in status.items() if v or k in ("replicas",)}
                self.set_status(rs_rt, rs, status)


class DaemonSetController(Controller):
    name = "daemonset-controller"

    def reconcile(self):
        pod_rt = self.rt(*POD_GVR)
        ds_rt = self.rt("apps", "v1", "daemonsets")
        nodes = self.ls(*NODE_GVR)
        pods = self.ls(*POD_GVR)
        for ds in self.ls("apps", "v1", "daemonsets"):
            with self.isolated(ds):
                if ds["metadata"].get("deletionTimestamp"):
                    continue
                ns = ds["metadata"]["namespace"]
                tmpl = ds["spec"]["template"]
                h = template_hash(tmpl)
                spec = tmpl.get("spec") or {}
                ds_spec = dict(spec, tolerations=list(spec.get("tolerations") or []) + [
                    {"key": k, "operator": "Exists", "effect": e} for k, e in (
                        ("node.kubernetes.io/not-ready", "NoExecute"),
                        ("node.kubernetes.io/unreachable", "NoExecute"),
                        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                        ("node.kubernetes.io/unschedulable", "NoSchedule"),
                        ("node.kubernetes.io/not-ready", "NoSchedule"))])
                eligible = {n["metadata"]["name"]: n for n in nodes
                            if not n["metadata"].get("deletionTimestamp") and fits(ds_spec, n)}
                mine = [p for p in pods if p["metadata"]["namespace"] == ns and owned_by(p, ds)]
                active = [p for p in mine if pod_active(p)]
                by_node = {}
                for p in active:
                    by_node.setdefault(p["spec"].get("nodeName"), []).append(p)
                strategy = ds["spec"].get("updateStrategy") or {}
                # a pod counts as available once Ready for minReadySeconds (IsPodAvailable): the
                # rolling update waits for that before it replaces the next node's pod
                min_ready = ds["spec"].get("minReadySeconds") or 0
                max_unavail = resolve((strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1),
                                      len(eligible), True) or 1
                # misscheduled pods go
                for node_name, plist in by_node.items():
                    if node_name not in eligible:
                        for p in plist:
                            self.api.delete(pod_rt, ns, p["metadata"]["name"])
                unavailable = 0
                old_pods = []
                for node_name in eligible:
                    plist = by_node.get(node_name, [])
                    if not plist:
                        terminating = [p for p in mine if p["spec"].get("nodeName") == node_name]
                        if not terminating:
                            tmpl_l = dict(tmpl)
                            tmpl_l["spec"] = dict(ds_spec, affinity={"nodeAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [{"matchFields": [{
                                        "key": "metadata.name", "operator": "In",
                                        "values": [node_name]}]}]}}})
                            pod = pod_from_template(ds, tmpl_l, "%s-%s" % (ds["metadata"]["name"],
                                                                           name_suffix()),
                                                    {"controller-revision-hash": h,
                                                     "pod-template-generation":
                                                     str(ds["metadata"].get("generation", 1))},
                                                    node_name=node_name)
                            self.api.create(pod_rt, ns, pod)
                        unavailable += 1
                        continue
                    p = plist[0]
                    for extra in plist[1:]:
                        self.api.delete(pod_rt, ns, extra["metadata"]["name"])
                    if not pod_available(p, min_ready):
                        unavailable += 1
                    if p["metadata"].get("labels", {}).get("controller-revision-hash") != h:
                        old_pods.append(p)
                if strategy.get("type", "RollingUpdate") == "RollingUpdate":
                    budget = max_unavail - unavailable
                    # unavailable old pods first, then available ones within the budget
                    now = time.time()
                    for p in sorted(old_pods, key=lambda q: pod_available(q, min_ready, now)):
                        if not pod_available(p, min_ready, now):
                            self.api.delete(pod_rt, ns, p["metadata"]["name"])
                        elif budget > 0:
                            self.api.delete(pod_rt, ns, p["metadata"]["name"])
                            budget -= 1
                self._status(ds_rt, ds, eligible, active, h, min_ready)

    def _status(self, ds_rt, ds, eligible, active, h, min_ready=0):
        on_eligible = [p for p in active if p["spec"].get("nodeName") in eligible]
        ready = [p for p in on_eligible if pod_ready(p)]
        available = [p for p in on_eligible if pod_available(p, min_ready)]
        updated = [p for p in on_eligible
                   if p["metadata"].get("labels", {}).get("controller-revision-hash") == h]
        status = {
            "currentNumberScheduled": len({p["spec"].get("nodeName") for p in on_eligible}),
            "desiredNumberScheduled": len(eligible),
            "numberMisscheduled": len(active) - len(on_eligible),
            "numberReady": len(ready),
            "numberAvailable": len(available),
            "numberUnavailable": max(0, len(eligible) - len(available)),
            "updatedNumberScheduled": len(updated),
            "observedGeneration": ds["metadata"].get("generation", 1),
        }
        status = {k: v for k, v in status.items()
                  if v or k in ("currentNumberScheduled", "desiredNumberScheduled",
                                "numberMisscheduled", "numberReady")}
        self.set_status(ds_rt, ds, status)


STS_POD_NAME = "statefulset.kubernetes.io/pod-name"
STS_POD_INDEX = "apps.kubernetes.io/pod-index"
REVISION = "controller-revision-hash"


class StatefulSetController(Controller):
    """kube-controller-manager's StatefulSet controller, as far as a database needs it:
    pods ``<name>-<ordinal>`` with stable names, ``hostname``/``subdomain`` (the governing
    Service) and the labels ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/
    pod-index`` and ``controller-revision-hash``; one PersistentVolumeClaim per pod and
    volumeClaimTemplate (``<template>-<name>-<ordinal>``, kept when pods go: retention policy
    Retain); ``OrderedReady`` (default: create in ordinal order, each once the one before is
    Running and Ready; remove from the highest ordinal, one at a time) or ``Parallel``; a
    RollingUpdate replaces pods from the highest ordinal down to ``partition``, each once the
    one before is Ready again; ``OnDelete`` waits for pods to be deleted. A deleted pod comes
    back under the same name, with the same claims."""

    name = "statefulset-controller"

    def reconcile(self):
        pod_rt = self.rt(*POD_GVR)
        sts_rt = self.rt("apps", "v1", "statefulsets")
        pvc_rt = self.rt("", "v1", "persistentvolumeclaims")
        pods = self.ls(*POD_GVR)
        claims = {(c["metadata"]["namespace"], c["metadata"]["name"])
                  for c in self.ls("", "v1", "persistentvolumeclaims")}
        for sts in self.ls("apps", "v1", "statefulsets"):
            with self.isolated(sts):
                if sts["metadata"].get("deletionTimestamp"):
                    continue
                self._sync(sts, sts_rt, pod_rt, pvc_rt, pods, claims)

    def _pod(self, sts, ordinal, revision):
        name = "%s-%d" % (sts["metadata"]["name"], ordinal)
        pod = pod_from_template(sts, sts["spec"]["template"], name, extra_labels={
            STS_POD_NAME: name, STS_POD_INDEX: str(ordinal), REVISION: revision})
        pod["metadata"].pop("generateName", None)
        pod["spec"]["hostname"] = name
        if sts["spec"].get("serviceName"):
            pod["spec"]["subdomain"] = sts["spec"]["serviceName"]
        volumes = list(pod["spec"].get("volumes") or [])
        for tmpl in sts["spec"].get("volumeClaimTemplates") or []:
            claim = "%s-%s" % (tmpl["metadata"]["name"], name)
            volumes = [v for v in volumes if v.get("name") != tmpl["metadata"]["name"]]
            volumes.append({"name": tmpl["metadata"]["name"],
                            "persistentVolumeClaim": {"claimName": claim}})
        if volumes:
            pod["spec"]["volumes"] = volumes
        return pod

    def _claims(self, sts, ordinal, pvc_rt, claims):
        ns = sts["metadata"]["namespace"]
        for tmpl in sts["spec"].get("volumeClaimTemplates") or []:
            name = "%s-%s-%d" % (tmpl["metadata"]["name"], sts["metadata"]["name"], ordinal)
            if (ns, name) in claims:
                continue
            meta = dc(tmpl.get("metadata") or {})
            meta.update(name=name, namespace=ns, labels=dict(
                meta.get("labels") or {}, **(sts["spec"]["selector"].get("matchLabels") or {})))
            self.api.create(pvc_rt, ns, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                         "metadata": meta, "spec": dc(tmpl.get("spec") or {})})
            claims.add((ns, name))

    def _sync(self, sts, sts_rt, pod_rt, pvc_rt, pods, claims):
        ns = sts["metadata"]["namespace"]
        spec = sts["spec"]
        want = spec.get("replicas", 1)
        revision = "%s-%s" % (sts["metadata"]["name"], template_hash(spec["template"]))
        parallel = spec.get("podManagementPolicy") == "Parallel"
        strategy = spec.get("updateStrategy") or {"type": "RollingUpdate"}
        mine = {}
        for p in pods:
            if p["metadata"]["namespace"] == ns and owned_by(p, sts):
                idx = (p["metadata"].get("labels") or {}).get(STS_POD_INDEX)
                if idx is not None and idx.isdigit():
                    mine[int(idx)] = p

        def ready(p):
            return pod_active(p) and pod_ready(p) and not p["metadata"].get("deletionTimestamp")
        # scale up: create missing ordinals below replicas (in order unless Parallel)
        for ordinal in range(want):
            p = mine.get(ordinal)
            if p is None:
                self._claims(sts, ordinal, pvc_rt, claims)
                created = self.api.create(pod_rt, ns, self._pod(sts, ordinal, revision))
                mine[ordinal] = created
                if not parallel:
                    break
            elif not parallel and not ready(p):
                break  # OrderedReady: the next waits for this one
        else:
            # scale down: the highest ordinal first (one at a time unless Parallel)
            extra = sorted((o for o in mine if o >= want), reverse=True)
            for ordinal in extra:
                p = mine[ordinal]
                if not p["metadata"].get("deletionTimestamp"):
                    self.api.delete(pod_rt, ns, p["metadata"]["name"])
                if not parallel:
                    break
            if not extra and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                # the highest ordinal not on this revision, down to partition, once all are Ready
                partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
                if all(ready(mine[o]) for o in range(want) if o in mine):
                    for ordinal in sorted(mine, reverse=True):
                        p = mine[ordinal]
                        if ordinal >= partition and (p["metadata"].get("labels") or {}).get(
                                REVISION) != revision:
                            self.api.delete(pod_rt, ns, p["metadata"]["name"])
                            break
        active = [p for o, p in mine.items() if o < want and pod_active(p)]
        n_ready = sum(1 for p in active if ready(p))
        current = sum(1 for p in active if (p["metadata"].get("labels") or {}).get(REVISION) ==
                      revision)
        status = {"observedGeneration": sts["metadata"].get("generation", 1),
                  "replicas": len(active), "readyReplicas": n_ready,
                  "availableReplicas": n_ready, "currentReplicas": current,
                  "updatedReplicas": current, "currentRevision": revision,
                  "updateRevision": revision, "collisionCount": 0}
        keep = ("replicas", "availableReplicas")
        status = {k: v for k, v in status.items() if v or k in keep}
        self.set_status(sts_rt, sts, status)
