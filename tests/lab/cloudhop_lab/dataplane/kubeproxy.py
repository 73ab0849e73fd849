"""kube-proxy of the lab's user cluster: NodePorts as nftables DNAT in every node's namespace.

What real kube-proxy (iptables/nftables mode) does for a ``NodePort`` or ``LoadBalancer``
Service, and what the migration depends on:
- traffic to ``<node IP>:<nodePort>`` is DNATed to one of the Service's *ready* endpoints,
  chosen at random, wherever in the cluster that endpoint runs; an endpoint on another node is
  reached over the pod network (flannel), so across clouds only over the VPN overlay;
- with ``externalTrafficPolicy: Cluster`` (the default) the source is masqueraded to the node,
  so replies come back the same way; with ``Local`` only endpoints on the node are used and the
  source is kept;
- a Service with no ready endpoint rejects the connection (TCP reset).
The masquerade is where real kube-proxy (iptables and IPVS modes) keeps it, in iptables' nat
table: chain KUBE-POSTROUTING (marked packets: clear the mark, MASQUERADE --random-fully),
jumped to first from POSTROUTING. So the kernel forgets these connections when the device they
were masqueraded out of goes down (flannel.1 re-created), and a rule inserted ahead of that jump
wins, both as on a real node.
Cordoned and drained nodes keep forwarding: kube-proxy is a DaemonSet-like node agent, so a
load balancer that still targets an old node keeps working while the pods are elsewhere.
Rules follow Endpoints changes on every pass (level-triggered, resync 0.5 s).
"""

import logging

from ..controllers.base import Controller
from ..podutil import internal_ip
from . import netns as nsx
from .nodes import node_ns

LOG = logging.getLogger("cloudhop_lab")
TABLE = "clh_kube_proxy"


def ready_endpoints(ep):
    """[(address, {port name: port})] of an Endpoints object's ready addresses."""
    out = []
    for subset in (ep or {}).get("subsets") or []:
        ports = {p.get("name", ""): p["port"] for p in subset.get("ports") or []}
        for addr in subset.get("addresses") or []:
            out.append((addr, ports))
    return out


def ruleset(node_name, ip, services, endpoints):
    """The nftables ruleset of one node (pure: unit-tested)."""
    dnat, reject = [], []
    for svc in sorted(services, key=lambda s: (s["metadata"]["namespace"],
                                               s["metadata"]["name"])):
        spec = svc.get("spec") or {}
        if spec.get("type") not in ("NodePort", "LoadBalancer"):
            continue
        key = (svc["metadata"]["namespace"], svc["metadata"]["name"])
        local = spec.get("externalTrafficPolicy") == "Local"
        ready = ready_endpoints(endpoints.get(key))
        if local:
            ready = [(a, p) for a, p in ready if a.get("nodeName") == node_name]
        for port in spec.get("ports") or []:
            if not port.get("nodePort") or port.get("protocol", "TCP") != "TCP":
                continue
            targets = []
            for addr, ports in ready:
                tport = ports.get(port.get("name", ""))
                if tport is None and len(ports) == 1:
                    tport = next(iter(ports.values()))
                if tport is not None:
                    targets.append((addr["ip"], tport))
            targets = sorted(set(targets))
            match = "ip daddr %s tcp dport %d" % (ip, port["nodePort"])
            if not targets:
                reject.append("  %s reject with tcp reset" % match)
                continue
            choice = ", ".join("%d : %s . %d" % (i, t_ip, t_port)
                               for i, (t_ip, t_port) in enumerate(targets))
            dnat.append("  %s %sdnat ip to numgen random mod %d map { %s }" % (
                match, "" if local else "meta mark set meta mark or 0x4000 ", len(targets), choice))
    return ("table ip %s\ndelete table ip %s\ntable ip %s {\n"
            " chain prerouting {\n  type nat hook prerouting priority dstnat; policy accept;\n"
            "%s\n }\n"
            " chain input {\n  type filter hook input priority filter; policy accept;\n%s\n }\n"
            "}\n" % (TABLE, TABLE, TABLE, "\n".join(dnat), "\n".join(reject)))


# kube-proxy's KUBE-POSTROUTING; the mark is cleared before masquerading, so an encapsulated
# (VXLAN) copy of the packet is not masqueraded again on its way out of the underlay
POSTROUTING = ("-m mark ! --mark 0x4000/0x4000 -j RETURN",
               "-j MARK --xor-mark 0x4000",
               '-m comment --comment "kubernetes service traffic requiring SNAT" '
               "-j MASQUERADE --random-fully")
POSTROUTING_JUMP = ["POSTROUTING", "-m", "comment", "--comment", "kubernetes postrouting rules",
                    "-j", "KUBE-POSTROUTING"]


class KubeProxy(Controller):
    name = "kube-proxy"
    resync = 0.5

    def __init__(self, api):
        super().__init__(api)
        self.applied = {}  # node -> ruleset text

    def reconcile(self):
        services = self.ls("", "v1", "services")
        endpoints = {(e["metadata"]["namespace"], e["metadata"]["name"]): e
                     for e in self.ls("", "v1", "endpoints")}
        seen = set()
        for node in self.ls("", "v1", "nodes"):
            name = node["metadata"]["name"]
            ip = internal_ip(node)
            if not ip or not nsx.ns_exists(node_ns(name)):
                continue
            seen.add(name)
            with self.isolated(node):
                text = ruleset(name, ip, services, endpoints)
                if name not in self.applied:  # the same on every node, from its start
                    nsx.iptables_chain(node_ns(name), "nat", "KUBE-POSTROUTING", POSTROUTING,
                                       POSTROUTING_JUMP, first=True)
                if self.applied.get(name) != text:
                    nsx.nft(node_ns(name), text)
                    self.applied[name] = text
        for gone in set(self.applied) - seen:
            self.applied.pop(gone, None)
