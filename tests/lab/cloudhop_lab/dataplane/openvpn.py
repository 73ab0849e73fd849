"""Real OpenVPN for the lab: the seed's server and the user cluster's clients.

Server: the ``openvpn-server`` pod of namespace ``cluster-<id>`` (or any seed pod whose
container runs openvpn, such as the migration's own VPN hub) runs ``openvpn`` with the pod's own
command line inside ``clh-seed`` (the seed node, on the internet segment). The NodePorts of the
seed's Services are realized by nftables redirects to their container ports (SeedNodePorts),
kept in step with the Services as kube-proxy keeps its rules. When the Deployment changes,
the Deployment controller replaces the pod and the new pod's process starts once the old one is
gone, so the server always runs the args the API shows.

Clients: any pod whose container runs ``openvpn --config ...`` - the in-cluster client or the
migration's hostNetwork DaemonSet - runs it in the pod's network namespace (the node's, for
hostNetwork pods). Ready = the tun device has its address.
"""

import ipaddress
import logging
import os
import shutil

from ..controllers.base import Controller
from . import netns as nsx
from .volumes import command_line, materialize

LOG = logging.getLogger("cloudhop_lab")
SEED_NS = nsx.ns_name("seed")


def is_openvpn(container):
    cmd = " ".join((container.get("command") or []) + (container.get("args") or []))
    return "openvpn" in container.get("image", "") and "openvpn" in cmd


def tun_name(argv):
    for i, arg in enumerate(argv):
        if arg == "--dev" and i + 1 < len(argv):
            return argv[i + 1]
    return None


class OpenVPNProcess:
    """One openvpn process of a pod, started from the pod's container spec."""

    def __init__(self, api, pod, container, netns, base_dir):
        self.api = api
        self.pod = pod
        self.container = container
        self.netns = netns
        self.dir = os.path.join(base_dir, pod["metadata"]["uid"])
        self.proc = None
        self.dev = None
        self.pod_ip = None  # a pod namespace of its own (the migration's hub in the seed)

    def start(self):
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        mounts = materialize(self.api, self.pod, self.dir)
        argv = command_line(self.container, mounts, self.dir)
        argv = [a.replace("/run/openvpn/", self.dir + "/") for a in argv]
        if "--status" in argv:
            os.makedirs(self.dir, exist_ok=True)
        self.dev = tun_name(argv) or self._dev_from_config(argv)
        self.proc = nsx.spawn(self.netns, argv, os.path.join(self.dir, "openvpn.log"))

    def _dev_from_config(self, argv):
        if "--config" in argv:
            with open(argv[argv.index("--config") + 1], encoding="utf-8") as fh:
                for line in fh:
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == "dev":
                        return parts[1]
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def tun_up(self):
        """The tun device exists and has an IPv4 address."""
        if not self.alive():
            return False
        with nsx.LOCK:
            ipr = nsx.handle(self.netns)
            name = self.dev if self.dev not in (None, "tun") else "tun0"
            idx = nsx.index(ipr, name)
            return idx is not None and bool(ipr.get_addr(family=2, index=idx))

    def ready(self):
        """The kubelet's Ready: with no readinessProbe, while the process runs (a client that
        lost its server keeps running and retrying); with one (the node-level client's exec
        probe, `ip -4 -o addr show dev <tun> | grep -q inet`), while the tun device has its
        address - the probe is modelled by that check, not run."""
        if self.container.get("readinessProbe"):
            return self.tun_up()
        return self.alive()

    def kill(self):
        """SIGKILL, as a crash."""
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        nsx.terminate(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def seed_pod_netns(cluster_id):
    """The network namespace of the seed pods of a user cluster after the first (its
    ``cluster-<id>`` namespace's control plane: openvpn-server, the migration's hub)."""
    return nsx.ns_name("sp-" + cluster_id)


class SeedNetwork:
    """The seed node: namespace clh-seed on the internet segment, NodePorts redirected.

    The first user cluster's seed pods run in clh-seed itself. Every further cluster's run in a
    namespace of their own (``clh-sp-<id>``, address ``10.100.<k>.2`` behind a veth), so two
    clusters' OpenVPN servers, each on port 1194 with the same VPN network and routes as KKP
    gives them, do not meet; their NodePorts are DNATed there, as kube-proxy forwards a NodePort
    to a pod on the node. Only those veths and eth0 forward: a VPN server's tun device still
    does not (clients cannot reach each other through the server without --client-to-client).
    """

    def __init__(self, topology, opts, extra_clusters=()):
        self.topology = topology
        self.opts = opts
        self.pod_ips = {}  # namespace "cluster-<id>" -> the address its seed pods listen on
        self.netns = {}  # namespace "cluster-<id>" -> its network namespace
        for spec in extra_clusters:
            k = spec["index"]
            base = ipaddress.ip_network(opts["seed_pod_cidr"]).network_address + 256 * k
            cns = "cluster-" + spec["cluster_id"]
            self.pod_ips[cns] = str(base + 2)
            self.netns[cns] = (seed_pod_netns(spec["cluster_id"]), "sp%d" % k, str(base + 1))

    def build(self):
        from .topology import INET_NS  # pylint: disable=import-outside-toplevel
        nsx.create(SEED_NS)
        nsx.veth(INET_NS, "seed0", SEED_NS, "eth0")
        nsx.enslave(INET_NS, "seed0", "br-inet")
        nsx.add_addr(SEED_NS, "eth0", self.opts["seed_public_ip"],
                     self.topology.public.prefixlen)
        # a pod's namespace does not forward: without --client-to-client, clients cannot
        # reach each other through the server
        nsx.sysctls(SEED_NS, [("net.ipv4.ip_forward", 0)])
        for cns, (netns, veth, gateway) in sorted(self.netns.items()):
            nsx.create(netns)
            nsx.veth(SEED_NS, veth, netns, "eth0")
            nsx.add_addr(SEED_NS, veth, gateway, 24)
            nsx.add_addr(netns, "eth0", self.pod_ips[cns], 24)
            ipr = nsx.handle(netns)
            nsx.route(netns, "add", dst="0.0.0.0", dst_len=0, gateway=gateway,
                      oif=nsx.index(ipr, "eth0"))
            nsx.sysctls(netns, [("net.ipv4.ip_forward", 0)])
            nsx.sysctls(SEED_NS, [("net.ipv4.conf.%s.forwarding" % veth, 1)])
        if self.netns:
            nsx.sysctls(SEED_NS, [("net.ipv4.conf.eth0.forwarding", 1)])


class SeedNodePorts(Controller):
    """kube-proxy's NodePorts on the seed node: every TCP NodePort of a seed Service is
    redirected to its (numeric) targetPort in clh-seed, where the seed's pods listen. A Service
    that goes away takes its NodePort with it."""

    name = "seed-nodeports"
    resync = 1.0

    def __init__(self, api, pod_ips=None, endpoints=None):
        super().__init__(api)
        self.applied = None
        self.pod_ips = pod_ips or {}  # namespace -> its seed pods' address (SeedNetwork)
        # () -> [(namespace, labels, ip, ready)]: pods with addresses of their own (WireGuard
        # hubs); a Service selecting one is DNATed to its ready pod's address, TCP and UDP
        self.endpoints = endpoints or (lambda: [])

    def _pod_endpoint(self, svc):
        sel = (svc.get("spec") or {}).get("selector") or {}
        if not sel:
            return None
        for ns, labels, ip, ready in self.endpoints():
            if ns == svc["metadata"]["namespace"] and ready and \
                    all(labels.get(k) == v for k, v in sel.items()):
                return ip
        return None

    def reconcile(self):
        rules = []
        for svc in self.ls("", "v1", "services"):
            spec = svc.get("spec") or {}
            if spec.get("type") not in ("NodePort", "LoadBalancer"):
                continue
            own = self._pod_endpoint(svc)
            for port in spec.get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                if own and port.get("nodePort") and isinstance(target, int):
                    rules.append("  %s dport %d dnat to %s:%d\n"
                                 % (port.get("protocol", "TCP").lower(), port["nodePort"], own,
                                    target))
                    continue
                if port.get("nodePort") and isinstance(target, int) and \
                        port.get("protocol", "TCP") == "TCP":
                    pod_ip = self.pod_ips.get(svc["metadata"]["namespace"])
                    if pod_ip:
                        rules.append("  tcp dport %d dnat to %s:%d\n"
                                     % (port["nodePort"], pod_ip, target))
                    else:
                        rules.append("  tcp dport %d redirect to :%d\n"
                                     % (port["nodePort"], target))
        rules = sorted(set(rules))
        if rules == self.applied or not nsx.ns_exists(SEED_NS):
            return
        nsx.nft(SEED_NS, "table ip nodeports\ndelete table ip nodeports\n"
                         "table ip nodeports {\n chain prerouting {\n"
                         "  type nat hook prerouting priority -100;\n%s }\n}\n" % "".join(rules))
        self.applied = rules
