"""kube-scheduler as the lab needs it: node selectors, required node affinity, taints and
tolerations, host ports, spreading (the predicates the DaemonSet controller shares)."""

from .. import errors
from ..podutil import dc, node_ready, node_taints, now_iso, tolerates
from .base import Controller

POD_GVR = ("", "v1", "pods")
NODE_GVR = ("", "v1", "nodes")


def _affinity_ok(spec, node):
    labels = node["metadata"].get("labels") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    terms = ((((spec.get("affinity") or {}).get("nodeAffinity") or {})
              .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
             .get("nodeSelectorTerms"))
    if not terms:
        return True
    for term in terms:
        ok = True
        for expr in term.get("matchExpressions") or []:
            val = labels.get(expr["key"])
            op = expr["operator"]
            if op == "In" and val not in expr.get("values", []):
                ok = False
            elif op == "NotIn" and val in expr.get("values", []):
                ok = False
            elif op == "Exists" and expr["key"] not in labels:
                ok = False
            elif op == "DoesNotExist" and expr["key"] in labels:
                ok = False
        for field in term.get("matchFields") or []:
            if field["key"] == "metadata.name" and \
                    node["metadata"]["name"] not in field.get("values", []):
                ok = False
        if ok:
            return True
    return False


def host_ports(pod_spec):
    """Host ports a pod claims (hostNetwork pods claim their container ports)."""
    ports = set()
    for c in pod_spec.get("containers") or []:
        for p in c.get("ports") or []:
            port = p.get("hostPort") or (p.get("containerPort") if pod_spec.get("hostNetwork")
                                         else None)
            if port:
                ports.add((p.get("protocol", "TCP"), port))
    return ports


def fits(pod_spec, node, used_ports=None):
    if not _affinity_ok(pod_spec, node):
        return False
    if used_ports and host_ports(pod_spec) & used_ports:
        return False
    for taint in node_taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                not tolerates(pod_spec.get("tolerations"), taint):
            return False
    return True


class Scheduler(Controller):
    name = "kube-scheduler"

    def reconcile(self):
        pod_rt = self.rt(*POD_GVR)
        nodes = [n for n in self.ls(*NODE_GVR) if not n["metadata"].get("deletionTimestamp")]
        pods = self.ls(*POD_GVR)
        load, ports = {}, {}
        for p in pods:
            if p["spec"].get("nodeName"):
                load[p["spec"]["nodeName"]] = load.get(p["spec"]["nodeName"], 0) + 1
                ports.setdefault(p["spec"]["nodeName"], set()).update(host_ports(p["spec"]))
        for p in pods:
            if p["spec"].get("nodeName") or p["metadata"].get("deletionTimestamp"):
                continue
            if p["spec"].get("schedulerName", "default-scheduler") != "default-scheduler":
                continue
            candidates = [n for n in nodes if node_ready(n) and
                          fits(p["spec"], n, ports.get(n["metadata"]["name"]))]
            ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
            if not candidates:
                conds = (p.get("status") or {}).get("conditions") or []
                if not any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                           for c in conds):
                    cur = dc(p)
                    unschedulable = {
                        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                        "message": "0/%d nodes are available: no node matches the pod's "
                                   "scheduling requirements." % len(nodes),
                        "lastTransitionTime": now_iso()}
                    cur["status"]["conditions"] = [
                        c for c in conds if c.get("type") != "PodScheduled"] + [unschedulable]
                    self.api.update(pod_rt, ns, name, cur, sub="status")
                continue
            # spread: fewest pods of the same owner first, then fewest pods overall
            owner = [r.get("uid") for r in p["metadata"].get("ownerReferences") or []]
            same = {}
            for q in pods:
                if q["spec"].get("nodeName") and owner and \
                        [r.get("uid") for r in q["metadata"].get("ownerReferences") or []] == owner:
                    same[q["spec"]["nodeName"]] = same.get(q["spec"]["nodeName"], 0) + 1
            best = min(candidates, key=lambda n: (same.get(n["metadata"]["name"], 0),
                                                  load.get(n["metadata"]["name"], 0),
                                                  n["metadata"]["name"]))
            try:
                self.api.bind(ns, name, {"target": {"kind": "Node",
                                                    "name": best["metadata"]["name"]}})
            except errors.ApiError as exc:
                if exc.code not in (404, 409):
                    raise
                continue
            load[best["metadata"]["name"]] = load.get(best["metadata"]["name"], 0) + 1
            ports.setdefault(best["metadata"]["name"], set()).update(host_ports(p["spec"]))
            same[best["metadata"]["name"]] = same.get(best["metadata"]["name"], 0) + 1
            p["spec"]["nodeName"] = best["metadata"]["name"]
