"""The kubelet and the container runtime interface it drives: ``FakeRuntime`` (pod IPs from the
node's podCIDR, Ready after the readiness delay) is the interface the data plane's runtimes
implement with real network namespaces and processes."""

import ipaddress
import time

from ..podutil import dc, internal_ip, node_ready, now_iso, parse_iso, pod_ready
from .base import Controller

POD_GVR = ("", "v1", "pods")
NODE_GVR = ("", "v1", "nodes")


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
