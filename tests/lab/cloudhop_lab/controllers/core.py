"""kube-controller-manager, kube-scheduler and kubelet behaviour the lab needs."""

import random
import time

from .. import errors
from ..api import dc, now_iso, parse_iso, pod_available, pod_ready
from ..selectors import selector_matches
from .base import Controller, owned_by, owner_ref, resolve, rollout_plan, template_hash

POD_GVR = ("", "v1", "pods")
NODE_GVR = ("", "v1", "nodes")


def _suffix(n=5):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _i in range(n))


def _active(pod):
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def node_ready(node):
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def tolerates(tolerations, taint):
    for t in tolerations or []:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_taints(node):
    taints = list((node.get("spec") or {}).get("taints") or [])
    if (node.get("spec") or {}).get("unschedulable"):
        taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
    if not node_ready(node):
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    return taints


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
        if status != old:
            cur = dc(dep)
            cur["status"] = status
            self.api.update(dep_rt, dep["metadata"]["namespace"], dep["metadata"]["name"], cur,
                            sub="status")


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
                active = [p for p in mine if _active(p)]
                want = rs["spec"].get("replicas", 1)
                if len(active) < want:
                    for _i in range(want - len(active)):
                        pod = pod_from_template(rs, rs["spec"]["template"],
                                                "%s-%s" % (rs["metadata"]["name"], _suffix()))
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
                if status != (rs.get("status") or {}):
                    cur = dc(rs)
                    cur["status"] = status
                    self.api.update(rs_rt, ns, rs["metadata"]["name"], cur, sub="status")


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
                active = [p for p in mine if _active(p)]
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
                                                                           _suffix()),
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
        if status != (ds.get("status") or {}):
            cur = dc(ds)
            cur["status"] = status
            self.api.update(ds_rt, ds["metadata"]["namespace"], ds["metadata"]["name"], cur,
                            sub="status")


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


class FakeRuntime:
    """Pod runtime without processes: IPs from the node's podCIDR, Ready at once.

    The data plane replaces it with one that realizes pods as network namespaces.
    """

    def __init__(self):
        self.ips = {}  # pod uid -> ip
        self.stopping = {}  # pod uid -> monotonic time the kubelet began stopping it
        self.started = {}  # pod uid -> monotonic start time

    def start(self, pod, node):
        self.started.setdefault(pod["metadata"]["uid"], time.monotonic())
        if pod["metadata"]["uid"] in self.ips:
            return self.ips[pod["metadata"]["uid"]]
        if pod["spec"].get("hostNetwork"):
            return internal_ip(node)
        cidr = (node.get("spec") or {}).get("podCIDR")
        if not cidr:
            return None
        import ipaddress  # pylint: disable=import-outside-toplevel
        net = ipaddress.ip_network(cidr)
        used = set(self.ips.values())
        for host in list(net.hosts())[1:]:
            if str(host) not in used:
                self.ips[pod["metadata"]["uid"]] = str(host)
                return str(host)
        return None

    def ready(self, pod):
        """Ready once every readiness probe's initialDelaySeconds has passed."""
        started = self.started.get(pod["metadata"]["uid"])
        if started is None:
            return False
        delay = max([(c.get("readinessProbe") or {}).get("initialDelaySeconds", 0)
                     for c in pod["spec"].get("containers") or []] + [0])
        return time.monotonic() >= started + delay

    def restart_counts(self, pod):  # pylint: disable=unused-argument
        """{container: how often the kubelet restarted it} (containers not named: 0)."""
        return {}

    def stopped(self, pod):
        """Stop the pod's containers; True once they are gone."""
        uid = pod["metadata"]["uid"]
        started = self.stopping.setdefault(uid, time.monotonic())
        if time.monotonic() < started + shutdown_seconds(pod):
            return False
        self.forget(uid)
        return True

    def forget(self, uid):
        self.ips.pop(uid, None)
        self.stopping.pop(uid, None)
        self.started.pop(uid, None)


def shutdown_seconds(pod):
    """How long a stopping pod keeps running before its processes get SIGTERM: the kubelet
    first runs each container's preStop hook (``sleep N``, or ingress-nginx's /wait-shutdown,
    modelled as 2 s), bounded by terminationGracePeriodSeconds; annotation
    lab.cloudhop.io/shutdown-seconds overrides it."""
    ann = (pod["metadata"].get("annotations") or {}).get("lab.cloudhop.io/shutdown-seconds")
    if ann is not None:
        return float(ann)
    hook = 0.0
    for c in pod["spec"].get("containers") or []:
        cmd = ((((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {})
               .get("command") or [])
        if cmd and cmd[0].endswith("sleep") and len(cmd) > 1:
            try:
                hook = max(hook, float(cmd[1]))
            except ValueError:
                pass
        elif cmd and cmd[0].endswith("wait-shutdown"):
            hook = max(hook, 2.0)
    return min(hook, float(pod["spec"].get("terminationGracePeriodSeconds", 30)))


def internal_ip(node):
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address")
    return None


class Kubelet(Controller):
    """All nodes' kubelets: run bound pods through the runtime, report status, finish
    graceful deletions."""

    name = "kubelet"
    resync = 0.25

    def __init__(self, api, runtime=None):
        super().__init__(api)
        self.runtime = runtime or FakeRuntime()

    def reconcile(self):
        pod_rt = self.rt(*POD_GVR)
        nodes = {n["metadata"]["name"]: n for n in self.ls(*NODE_GVR)}
        for p in self.ls(*POD_GVR):
            with self.isolated(p):
                node_name = p["spec"].get("nodeName")
                if not node_name:
                    continue
                ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
                node = nodes.get(node_name)
                if node is None:
                    # pod GC: pods bound to a node that no longer exists are force-deleted
                    self.runtime.forget(p["metadata"]["uid"])
                    self.api.finalize_delete(pod_rt, ns, name)
                    continue
                if p["metadata"].get("deletionTimestamp"):
                    deadline = parse_iso(p["metadata"]["deletionTimestamp"])
                    if self.runtime.stopped(p) or time.time() >= deadline:
                        if not p["metadata"].get("finalizers"):
                            self.api.finalize_delete(pod_rt, ns, name)
                    continue
                if not node_ready(node):
                    continue
                status = p.get("status") or {}
                if status.get("phase") == "Pending":
                    ip = self.runtime.start(p, node)
                    if ip is None:
                        continue
                    ready = self.runtime.ready(p)
                    self._write_status(pod_rt, p, ip, internal_ip(node), ready)
                elif status.get("phase") == "Running":
                    ready = self.runtime.ready(p)
                    restarts = self.runtime.restart_counts(p)
                    counted = dict((c["name"], c.get("restartCount", 0))
                                   for c in status.get("containerStatuses") or [])
                    if ready != pod_ready(p) or any(counted.get(name, 0) != n
                                                    for name, n in restarts.items()):
                        self._write_status(pod_rt, p, status.get("podIP"), status.get("hostIP"),
                                           ready, restarts)

    def _write_status(self, pod_rt, pod, ip, host_ip, ready, restarts=None):
        cur = dc(pod)
        now = now_iso()
        st = cur.setdefault("status", {})
        st.update({"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": host_ip,
                   "hostIPs": [{"ip": host_ip}]})
        st.setdefault("startTime", now)
        flag = "True" if ready else "False"
        old = {c["type"]: c for c in st.get("conditions") or []}

        def cond(t, s):
            prev = old.get(t)
            if prev and prev.get("status") == s:
                return prev
            return {"type": t, "status": s, "lastProbeTime": None, "lastTransitionTime": now}
        st["conditions"] = [cond("PodReadyToStartContainers", "True"),
                            cond("Initialized", "True"), cond("Ready", flag),
                            cond("ContainersReady", flag), cond("PodScheduled", "True")]
        st["containerStatuses"] = [{
            "name": c["name"], "image": c.get("image"), "imageID": "lab://" + c.get("image", ""),
            "containerID": "lab://%s/%s" % (pod["metadata"]["uid"], c["name"]),
            "ready": ready, "started": True, "restartCount": (restarts or {}).get(c["name"], 0),
            "state": {"running": {"startedAt": st["startTime"]}}}
            for c in pod["spec"].get("containers") or []]
        self.api.update(pod_rt, pod["metadata"]["namespace"], pod["metadata"]["name"], cur,
                        sub="status")


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
                healthy = sum(1 for p in matching if _active(p) and pod_ready(p)
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
                if status != old:
                    cur = dc(pdb)
                    cur["status"] = status
                    self.api.update(pdb_rt, ns, pdb["metadata"]["name"], cur, sub="status")


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


def standard_controllers(api, runtime=None):
    return [DeploymentController(api), ReplicaSetController(api), DaemonSetController(api),
            Scheduler(api), Kubelet(api, runtime), DisruptionController(api),
            EndpointsController(api), GarbageCollector(api), ServiceAccountController(api)]
