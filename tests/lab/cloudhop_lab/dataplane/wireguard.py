"""Real WireGuard for the lab: the migration's WireGuard hubs in the seed and its node agents.

Any pod whose container image is a WireGuard one (its name holds ``wireguard``) runs the
container's command line for real: the node agent (DaemonSet ``cloudhop-vpn-wg``, host network)
in its node's namespace, a hub (Deployment ``cloudhop-vpn-hub``...) in a network namespace of
its own. This kernel has no WireGuard module, so the scripts fall back to ``wireguard-go`` as
they do on real nodes without it. wireguard-go's control socket lives at
``/run/wireguard/<interface>.sock``: one path for the whole host, which two nodes' interfaces of
the same name would share. So each process runs, as in a container, in a mount namespace of its
own with a private ``/run/wireguard`` (tmpfs) and a PID namespace of its own: when the script
ends, its wireguard-go ends with it, and its tun device goes (the kernel's interface would stay;
the scripts remove theirs on SIGTERM).

A hub pod's namespace hangs off the seed node (``clh-seed``) by a veth with a /30 of
``HUB_NET``: pods have addresses of their own, and two hubs, each with the VPN network's
addresses and routes on its interface, do not meet - as in a real seed, where each is a pod.
The seed's NodePorts (``SeedNodePorts``) DNAT a Service's UDP and TCP NodePorts to the ready
pods its selector matches.

A container's output goes to ``wireguard.log`` in its pod's directory, every line stamped with
the time it was written, as a container runtime keeps a container's log (the scripts' own lines
carry no time): when an agent moved to another hub, next to the probe's requests.

Ready: a node agent while its status file (in its private ``/run/wireguard``) names a live hub
- the pod's readiness probe, modelled by that check; a hub while its interface has its address.
"""

import ipaddress
import logging
import os
import shutil
import signal
import time
import zlib

from . import netns as nsx
from .volumes import command_line, materialize

LOG = logging.getLogger("cloudhop_lab")
HUB_NET = ipaddress.ip_network("10.99.0.0/16")
STATUS = "/run/wireguard/cloudhop-status"
# the container's own /run/wireguard and PIDs; SIGTERM to unshare reaches the script (PID 1)
WRAP = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
        "--kill-child=SIGTERM", "sh", "-c",
        'mount -t tmpfs -o mode=0700 tmpfs /run/wireguard && exec "$@"', "wg-container"]


def is_wireguard(container):
    return "wireguard" in container.get("image", "") and bool(
        (container.get("command") or []) + (container.get("args") or []))


def _env(pod, container, node, host_ip, pod_ip):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    fields = {"spec.nodeName": node, "status.hostIP": host_ip, "status.podIP": pod_ip,
              "metadata.name": pod["metadata"]["name"],
              "metadata.namespace": pod["metadata"]["namespace"]}
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = ((item.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
            if ref in fields and fields[ref] is not None:
                env[item["name"]] = fields[ref]
    return env


class WireGuardProcess:
    """One WireGuard container of a pod, run from the pod's container spec."""

    def __init__(self, api, pod, container, netns, base_dir, node="", host_ip="", pod_ip=""):
        self.api = api
        self.pod = pod
        self.container = container
        self.netns = netns
        self.dir = os.path.join(base_dir, pod["metadata"]["uid"])
        self.node, self.host_ip, self.pod_ip = node, host_ip, pod_ip
        self.proc = None
        argv = (container.get("command") or []) + (container.get("args") or [])
        self.iface = argv[argv.index("--iface") + 1] if "--iface" in argv[:-1] else "wg0"
        self.agent = any(str(a).endswith("wg-node.sh") for a in argv)

    def start(self):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.makedirs("/run/wireguard", mode=0o700, exist_ok=True)  # the mount point
        mounts = materialize(self.api, self.pod, self.dir)
        argv = command_line(self.container, mounts, self.dir)
        env = _env(self.pod, self.container, self.node, self.host_ip, self.pod_ip)
        self.proc = nsx.spawn(self.netns, WRAP + argv, os.path.join(self.dir, "wireguard.log"),
                              env=env, timestamps=True)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def iface_up(self):
        if not self.alive():
            return False
        with nsx.LOCK:
            ipr = nsx.handle(self.netns)
            idx = nsx.index(ipr, self.iface)
            return idx is not None and bool(ipr.get_addr(family=2, index=idx))

    def status(self):
        """The node agent's status file ({active, live}), read through its mount namespace."""
        if not self.alive():
            return {}
        path = "/proc/%d/root%s" % (self.proc.pid, STATUS)
        try:
            with open(path, encoding="utf-8") as fh:
                return dict(line.strip().split("=", 1) for line in fh if "=" in line)
        except OSError:
            return {}

    def ready(self):
        if self.agent:
            return self.iface_up() and bool(self.status().get("live", "").strip())
        return self.iface_up()

    def kill(self):
        """SIGKILL to the container's PID 1, as a crash: the PID namespace goes, wireguard-go
        with it, and so its interface."""
        if self.alive():
            init = self._init_pid()
            if init:
                try:
                    os.kill(init, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            else:
                self.proc.kill()
            self.proc.wait()

    def _init_pid(self):
        """The container's PID 1 (unshare's child): its death ends the PID namespace."""
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid),
                      encoding="ascii") as fh:
                return int(fh.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, grace=5.0):
        """The kubelet's stop: SIGTERM to the container's PID 1 (its trap removes the
        interface and runs the node hooks' "down"), SIGKILL after ``grace`` seconds - PID 1
        of a PID namespace ignores a signal it has no handler for."""
        if self.alive():
            init = self._init_pid()
            if init:
                os.kill(init, signal.SIGTERM)
                deadline = time.monotonic() + grace
                while self.alive() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if self.alive():
                    try:
                        os.kill(init, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            nsx.terminate(self.proc, timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


class HubPodNet:
    """Network namespaces of the seed's WireGuard hub pods: ``clh-wh-<uid>``, a veth
    ``wh<hash>`` from clh-seed with a /30 of HUB_NET (seed .1, pod .2, default route via .1)."""

    def __init__(self, seed_ns):
        self.seed_ns = seed_ns
        self.used = {}  # uid -> slot of HUB_NET

    def create(self, uid):
        slot = next(k for k in range(1, HUB_NET.num_addresses // 4)
                    if k not in self.used.values())
        self.used[uid] = slot
        base = HUB_NET.network_address + 4 * slot
        ns = nsx.ns_name("wh-" + uid[:10])
        veth = "wh%08x" % (zlib.crc32(uid.encode()) & 0xFFFFFFFF)
        nsx.create(ns)
        nsx.veth(self.seed_ns, veth, ns, "eth0")
        nsx.add_addr(self.seed_ns, veth, str(base + 1), 30)
        nsx.add_addr(ns, "eth0", str(base + 2), 30)
        ipr = nsx.handle(ns)
        nsx.route(ns, "add", dst="0.0.0.0", dst_len=0, gateway=str(base + 1),
                  oif=nsx.index(ipr, "eth0"))
        nsx.sysctls(self.seed_ns, [("net.ipv4.conf.%s.forwarding" % veth, 1),
                                   ("net.ipv4.conf.eth0.forwarding", 1)])
        return ns, str(base + 2)

    def remove(self, uid):
        if self.used.pop(uid, None) is None:
            return
        ns = nsx.ns_name("wh-" + uid[:10])
        nsx.remove(ns)  # its end of the veth goes with it, and so the seed's
