"""Pod runtime of the data plane: pods realized by image/role inside real namespaces.

- app pods (image ``cloudhop/echo:*``): their own namespace, a ``cali*`` veth to the node with a
  /32 route on the node side (calico style: ``default via 169.254.1.1`` + proxy ARP), an IP from
  the node's podCIDR, and a real HTTP server (``echo.py``);
- MongoDB pods (image ``cloudhop/mongo-double:*``): a pod namespace like the app's and a real
  MongoDB member process (``mongo/member.py``) started with the container's mongod flags; its
  ``--dbpath`` is the directory of the pod's claim (``.lab/volumes/<volume name>``), so the
  data outlives the pod as a PersistentVolume's does; the pod starts only once its claims are
  bound, and is ready once the port listens (its tcpSocket readiness probe);
- canal pods (hostNetwork): the flannel agent (``flannel.py``) runs for the node; the pod's
  ``FLANNELD_IFACE`` is read from ``canal-config`` when the container starts, as an env var from
  a ConfigMap is, so a ConfigMap change takes effect only after a restart;
- other images: a Running pod with no process, and a warning in the lab log.
Nodes without a namespace (the seed's node) fall back to the process-less runtime.
"""

import hashlib
import ipaddress
import logging
import os
import signal
import sys
import time

from ..controllers.kubelet import FakeRuntime, shutdown_seconds
from ..podutil import internal_ip as _internal_ip
from . import netns as nsx
from .ingress import ingress_class
from .nodes import node_ns
from .openvpn import SEED_NS, OpenVPNProcess, is_openvpn
from .wireguard import HubPodNet, WireGuardProcess, is_wireguard

LOG = logging.getLogger("cloudhop_lab")
ECHO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "echo.py")
MONGO_IMAGE = "cloudhop/mongo-double"


# the kubelet's crash-loop back-off: the first restart at once, then 10 s doubling to 300 s
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0


def restart_if_crashed(proc, state, held=False):
    """restartPolicy Always: a container (``proc``, an OpenVPN or WireGuard process) whose
    process died is started again, the first time at once, then after 10 s doubling to 300 s
    (kubelet's crash-loop back-off). ``state`` is the pod's [restarts, time of the next try];
    ``held``: it starts and crashes at once, and the back-off grows."""
    if proc is None or proc.alive():
        return
    now = time.monotonic()
    if state[1] is None:
        state[1] = now + (min(BACKOFF_START * 2 ** (state[0] - 1), BACKOFF_MAX)
                          if state[0] else 0.0)
    if now < state[1]:
        return
    state[0], state[1] = state[0] + 1, None
    if not held:
        proc.start()


def vpn_restart_counts(vpn, restarts, pod):
    """The kubelet's restartCount of a pod's VPN container, or None if it has none."""
    proc = vpn.get(pod["metadata"]["uid"])
    if proc is None:
        return None
    return {proc.container["name"]: restarts.get(pod["metadata"]["uid"], [0])[0]}


def pod_ns(uid):
    return nsx.ns_name("p-" + uid[:12])


def cali_name(ns, name):
    return "cali" + hashlib.sha1(("%s.%s" % (ns, name)).encode()).hexdigest()[:11]


def role(pod):
    images = [c.get("image", "") for c in pod["spec"].get("containers") or []]
    if any(i.startswith("cloudhop/echo") for i in images):
        return "echo"
    if any(i.startswith(MONGO_IMAGE) for i in images):
        return "mongo"
    if any("flannel" in i or "calico/node" in i for i in images):
        return "canal"
    if any("ingress-nginx/controller" in i for i in images):
        return "ingress"
    return None


class NetnsPodRuntime(FakeRuntime):
    def __init__(self, api, lab_dir, flannel=None, ingress=None, cluster=""):
        super().__init__()
        self.cluster = cluster  # the cluster's id, in the echo app's answers
        self.ingress = ingress
        self.api = api
        self.dir = os.path.join(lab_dir, "pods")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.flannel = flannel
        self.procs = {}  # uid -> Popen
        self.vpn = {}  # uid -> OpenVPNProcess or WireGuardProcess
        self.restarts = {}  # uid -> [restarts, monotonic time of the next try] (vpn processes)
        self.meta = {}  # uid -> dict(kind, ns, node, ip, cali, ready_file)
        self.warned = set()

    # -------------------------------------------------------------- start

    def start(self, pod, node):
        node_name = node["metadata"]["name"]
        if not nsx.ns_exists(node_ns(node_name)):
            return super().start(pod, node)
        uid = pod["metadata"]["uid"]
        if uid in self.meta:
            # the sandbox exists already (a status write after the first start lost a race):
            # like a CRI runtime, never start a pod twice
            return self.meta[uid].get("ip") or _internal_ip(node)
        self.started.setdefault(uid, time.monotonic())
        kind = role(pod)
        if kind == "canal":
            iface = self._env_from_configmap(pod, "FLANNELD_IFACE")
            self.meta[uid] = {"kind": "canal", "node": node_name}
            if self.flannel is not None:
                self.flannel.canal_started(node_name, iface or "", uid)
            return _internal_ip(node)
        vpn = next((c for c in pod["spec"].get("containers") or [] if is_openvpn(c)), None)
        wg = next((c for c in pod["spec"].get("containers") or [] if is_wireguard(c)), None)
        if pod["spec"].get("hostNetwork"):
            self.meta[uid] = {"kind": "host", "node": node_name}
            if kind == "ingress" and self.ingress is not None:
                self.ingress.pod_started(uid, node_name, klass=ingress_class(pod))
            elif wg is not None:
                proc = WireGuardProcess(self.api, pod, wg, node_ns(node_name), self.dir,
                                        node=node_name, host_ip=_internal_ip(node),
                                        pod_ip=_internal_ip(node))
                self.vpn[uid] = proc
                proc.start()
            elif vpn is not None:
                self._start_vpn(pod, vpn, node_ns(node_name))
            else:
                self._warn(pod)
            return _internal_ip(node)
        claims = self._claim_dirs(pod) if kind == "mongo" else {}
        if claims is None:
            return None  # a claim is not bound yet: the pod waits for its volume
        ip = self._allocate(pod, node)
        if ip is None:
            return None
        if kind == "echo":
            self._start_echo(pod, node, ip)
        elif kind == "mongo":
            self._start_mongo(pod, node, ip, claims)
        elif kind == "ingress" and self.ingress is not None:
            self.ingress.pod_started(uid, node_name, self._plumb(pod, node, ip), ip,
                                     ingress_class(pod))
        elif vpn is not None:
            self._start_vpn(pod, vpn, self._plumb(pod, node, ip))
        else:
            self._warn(pod)
            self._plumb(pod, node, ip)
        return ip

    def _start_vpn(self, pod, container, netns):
        proc = OpenVPNProcess(self.api, pod, container, netns, self.dir)
        self.vpn[pod["metadata"]["uid"]] = proc
        proc.start()

    def _warn(self, pod):
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key not in self.warned:
            self.warned.add(key)
            LOG.warning("pod %s/%s: image %s is not realized by the lab; it runs with no "
                        "process", key[0], key[1],
                        ",".join(c.get("image", "") for c in pod["spec"]["containers"]))

    @staticmethod
    def _env(pod, env_name):
        """A literal env value of the pod's containers ('' if none)."""
        for c in pod["spec"].get("containers") or []:
            for env in c.get("env") or []:
                if env.get("name") == env_name and "value" in env:
                    return env["value"]
        return ""

    def _env_from_configmap(self, pod, env_name):
        for c in pod["spec"].get("containers") or []:
            for env in c.get("env") or []:
                if env.get("name") != env_name:
                    continue
                if "value" in env:
                    return env["value"]
                ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
                if ref:
                    cm = self.api.try_get(self.api.rt("", "v1", "configmaps"),
                                          pod["metadata"]["namespace"], ref["name"])
                    return ((cm or {}).get("data") or {}).get(ref["key"], "")
        return ""

    def _allocate(self, pod, node):
        cidr = (node.get("spec") or {}).get("podCIDR")
        if not cidr:
            return None
        used = {m.get("ip") for m in self.meta.values()} | set(self.ips.values())
        for host in list(ipaddress.ip_network(cidr).hosts())[1:]:
            if str(host) not in used:
                self.ips[pod["metadata"]["uid"]] = str(host)
                return str(host)
        return None

    def _plumb(self, pod, node, ip):
        uid = pod["metadata"]["uid"]
        nns, pns = node_ns(node["metadata"]["name"]), pod_ns(uid)
        cali = cali_name(pod["metadata"]["namespace"], pod["metadata"]["name"])
        nsx.create(pns)
        nsx.veth(nns, cali, pns, "eth0", mtu=1450)
        nsx.add_addr(pns, "eth0", ip, 32)
        ipr = nsx.handle(pns)
        eth0 = nsx.index(ipr, "eth0")
        nsx.route(pns, "add", dst="169.254.1.1", dst_len=32, oif=eth0, scope=253)
        nsx.route(pns, "add", dst="0.0.0.0", dst_len=0, gateway="169.254.1.1", oif=eth0)
        # as Felix configures a workload interface: proxy ARP, and no proxy_delay - the
        # kernel's default delays each proxied ARP reply up to 0.8 s (neigh proxy_delay), so
        # a new pod's first answers (its ARP for 169.254.1.1) would wait for it
        nsx.sysctls(nns, [("net.ipv4.conf.%s.proxy_arp" % cali, 1),
                          ("net.ipv4.neigh.%s.proxy_delay" % cali, 0)])
        nnode = nsx.handle(nns)
        nsx.route(nns, "add", dst=ip, dst_len=32, oif=nsx.index(nnode, cali), scope=253)
        self.meta[uid] = {"kind": "pod", "node": node["metadata"]["name"], "ip": ip,
                          "cali": cali, "netns": pns}
        return pns

    def _start_echo(self, pod, node, ip):
        uid = pod["metadata"]["uid"]
        pns = self._plumb(pod, node, ip)
        port = 8080
        for c in pod["spec"].get("containers") or []:
            for p in c.get("ports") or []:
                port = p.get("containerPort", port)
        ready_file = os.path.join(self.dir, uid + ".ready")
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        cloud = (node["metadata"].get("annotations") or {}).get("lab.cloudhop.io/cloud", "")
        self.procs[uid] = nsx.spawn(pns, [
            sys.executable, ECHO, "--port", str(port), "--pod", pod["metadata"]["name"],
            "--namespace", pod["metadata"]["namespace"], "--node", node["metadata"]["name"],
            "--cloud", cloud, "--cluster", self.cluster,
            "--app", (pod["metadata"].get("labels") or {}).get("app", ""),
            "--ready-file", ready_file] + (["--mongo-uri", self._env(pod, "MONGODB_URI")]
                                           if self._env(pod, "MONGODB_URI") else []),
            os.path.join(self.dir, uid + ".log"))
        self.meta[uid]["ready_file"] = ready_file

    def _claim_dirs(self, pod):
        """{mountPath: directory} of the pod's persistentVolumeClaim volumes, or None while a
        claim is missing or not bound."""
        ns = pod["metadata"]["namespace"]
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        out = {}
        for c in pod["spec"].get("containers") or []:
            for vm in c.get("volumeMounts") or []:
                claim = (volumes.get(vm["name"]) or {}).get("persistentVolumeClaim")
                if not claim:
                    continue
                pvc = self.api.try_get(self.api.rt("", "v1", "persistentvolumeclaims"), ns,
                                       claim["claimName"])
                if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound":
                    return None
                path = os.path.join(os.path.dirname(self.dir), "volumes",
                                    pvc["spec"]["volumeName"])
                os.makedirs(path, mode=0o700, exist_ok=True)
                out[vm["mountPath"].rstrip("/")] = path
        return out

    def _start_mongo(self, pod, node, ip, claims):
        uid = pod["metadata"]["uid"]
        pns = self._plumb(pod, node, ip)
        container = next(c for c in pod["spec"]["containers"]
                         if c.get("image", "").startswith(MONGO_IMAGE))
        args = []
        for arg in (container.get("command") or [])[1:] + (container.get("args") or []):
            for mount in sorted(claims, key=len, reverse=True):
                if arg == mount or arg.startswith(mount + "/"):
                    arg = claims[mount] + arg[len(mount):]
                    break
            args.append(arg)
        ready_file = os.path.join(self.dir, uid + ".ready")
        if os.path.exists(ready_file):
            os.unlink(ready_file)
        self.procs[uid] = nsx.spawn(pns, [sys.executable, "-m", "cloudhop_lab.mongo.member"] +
                                    args + ["--ready-file", ready_file],
                                    os.path.join(self.dir, uid + ".log"))
        self.meta[uid]["ready_file"] = ready_file

    # -------------------------------------------------------------- ready / stop

    def ready(self, pod):
        uid = pod["metadata"]["uid"]
        meta = self.meta.get(uid)
        if meta is None:
            return super().ready(pod)
        if meta["kind"] == "canal":
            return self.flannel is None or self.flannel.node_ready(meta["node"])
        if uid in self.vpn:
            restart_if_crashed(self.vpn[uid], self.restarts.setdefault(uid, [0, None]))
            return self.vpn[uid].ready()
        if self.ingress is not None and uid in self.ingress.pods:
            return self.ingress.pod_ready(uid)
        if not super().ready(pod):
            return False
        proc = self.procs.get(uid)
        if proc is not None:
            return proc.poll() is None and os.path.exists(meta.get("ready_file", ""))
        return True

    def restart_counts(self, pod):
        return vpn_restart_counts(self.vpn, self.restarts, pod) or super().restart_counts(pod)

    def stopped(self, pod):
        """preStop first (the pod keeps serving), then SIGTERM; torn down once stopped."""
        uid = pod["metadata"]["uid"]
        proc = self.procs.get(uid)
        started = self.stopping.get(uid)
        if started is not None and time.monotonic() >= started + shutdown_seconds(pod) and \
                proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        # FakeRuntime.stopped waits out the preStop time, then forget() tears the pod down
        return super().stopped(pod)

    def forget(self, uid):
        self._teardown(uid, self.meta.get(uid), self.procs.get(uid))
        super().forget(uid)

    def _teardown(self, uid, meta, proc):
        self.restarts.pop(uid, None)
        vpn = self.vpn.pop(uid, None)
        if vpn is not None:
            vpn.stop()
        if self.ingress is not None:
            self.ingress.pod_stopped(uid)
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=5)
            self.procs.pop(uid, None)
        if meta and meta.get("kind") == "pod":
            # CNI DEL: the host-side veth (and its /32 route) goes first and synchronously;
            # the kernel would only reap it when it gets round to destroying the namespace
            nns = node_ns(meta["node"])
            if nsx.ns_exists(nns):
                with nsx.LOCK:
                    try:
                        ipr = nsx.handle(nns)
                        idx = nsx.index(ipr, meta["cali"])
                        if idx is not None:
                            ipr.link("del", index=idx)
                    except Exception as exc:  # pylint: disable=broad-except
                        LOG.warning("CNI DEL of %s on %s: %s", meta["cali"], nns, exc)
            nsx.remove(meta["netns"])
        if meta and meta.get("kind") == "canal" and self.flannel is not None:
            self.flannel.canal_stopped(meta["node"], uid)
        self.meta.pop(uid, None)


class SeedRuntime(FakeRuntime):
    """The seed node's runtime: KKP's openvpn-server pods run for real in clh-seed (or their
    cluster's clh-sp-<id>), one at a time (they share the node's port, as pods behind one
    NodePort share the Service); the migration's hubs (OpenVPN or WireGuard) each in a network
    namespace of their own (wireguard.HubPodNet), as pods."""

    def __init__(self, api, lab_dir, netns=None):
        super().__init__()
        self.api = api
        # namespace "cluster-<id>" -> the network namespace of its seed pods (SeedNetwork);
        # the first cluster's and every other seed pod: clh-seed
        self.netns = netns or {}
        self.dir = os.path.join(lab_dir, "seed-pods")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.vpn = {}
        self.held = False  # `vpn-hub hold`: every (re)start of the hub's container fails
        self.restarts = {}  # pod uid -> [restarts, monotonic time of the next try, or None]
        self.hub_net = HubPodNet(SEED_NS)

    def kill_hub(self, hold, app=None):
        """SIGKILL every VPN server process of the seed (OpenVPN, WireGuard hubs), or those of
        the pods labelled ``app=<app>`` (one hub), as a crash would; ``hold`` keeps their
        containers failing (crash-looping) until :meth:`release_hub`. The kubelet restarts them
        with its back-off otherwise. Returns the pods' names."""
        self.held = self.held or hold
        killed = []
        for proc in self.vpn.values():
            if app and (proc.pod["metadata"].get("labels") or {}).get("app") != app:
                continue
            if proc.alive():
                proc.kill()
                killed.append(proc.pod["metadata"]["name"])
        return killed

    def endpoints(self):
        """The hub pods with an address of their own (WireGuard, the migration's OpenVPN hub):
        [(namespace, labels, ip, ready)], for the seed's NodePorts."""
        return [(p.pod["metadata"]["namespace"], p.pod["metadata"].get("labels") or {},
                 p.pod_ip, p.ready()) for p in list(self.vpn.values())
                if getattr(p, "pod_ip", None)]

    def release_hub(self):
        """The crash's cause is gone: the hub's containers start at the kubelet's next sync,
        without the back-off's wait (as after deleting the crash-looping pod)."""
        self.held = False
        for state in self.restarts.values():
            state[1] = 0.0

    def hub_status(self):
        return [{"pod": p.pod["metadata"]["name"], "alive": p.alive(),
                 "tun_up": p.iface_up() if isinstance(p, WireGuardProcess) else p.tun_up(),
                 "restarts": self.restarts.get(uid, [0, None])[0]}
                for uid, p in self.vpn.items()]

    def _restart_if_crashed(self, uid):
        restart_if_crashed(self.vpn.get(uid), self.restarts.setdefault(uid, [0, None]),
                           self.held)

    def start(self, pod, node):
        uid = pod["metadata"]["uid"]
        wg = next((c for c in pod["spec"].get("containers") or [] if is_wireguard(c)), None)
        if wg is not None and nsx.ns_exists(SEED_NS):
            if uid in self.vpn:
                return self.vpn[uid].pod_ip
            netns, ip = self.hub_net.create(uid)
            proc = WireGuardProcess(self.api, pod, wg, netns, self.dir,
                                    node=node["metadata"]["name"], pod_ip=ip)
            self.vpn[uid] = proc
            proc.start()
            return ip
        container = next((c for c in pod["spec"].get("containers") or [] if is_openvpn(c)), None)
        if container is None or not nsx.ns_exists(SEED_NS):
            return super().start(pod, node)
        if uid in self.vpn:
            return getattr(self.vpn[uid], "pod_ip", None) or self.ips.get(uid)
        if (pod["metadata"].get("labels") or {}).get("app") != "openvpn-server":
            # the migration's OpenVPN hub: a pod of its own, as the WireGuard hubs (KKP's
            # openvpn-server keeps the seed node's namespace, where the lab always ran it)
            netns, ip = self.hub_net.create(uid)
            proc = OpenVPNProcess(self.api, pod, container, netns, self.dir)
            proc.pod_ip = ip
            self.vpn[uid] = proc
            proc.start()
            return ip
        netns = self.netns.get(pod["metadata"]["namespace"], SEED_NS)
        if any(p.alive() for u, p in self.vpn.items() if u != uid and p.netns == netns):
            return None  # the old server still holds the port
        ip = super().start(pod, node)
        proc = OpenVPNProcess(self.api, pod, container, netns, self.dir)
        self.vpn[uid] = proc
        proc.start()
        return ip

    def ready(self, pod):
        proc = self.vpn.get(pod["metadata"]["uid"])
        if proc is None:
            return super().ready(pod)
        self._restart_if_crashed(pod["metadata"]["uid"])
        return proc.ready()

    def restart_counts(self, pod):
        return vpn_restart_counts(self.vpn, self.restarts, pod) or super().restart_counts(pod)

    def forget(self, uid):
        self.restarts.pop(uid, None)
        proc = self.vpn.pop(uid, None)
        if proc is not None:
            proc.stop()
        self.hub_net.remove(uid)
        super().forget(uid)
