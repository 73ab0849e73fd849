"""A flannel (VXLAN backend, kube-subnet-mgr) agent for every node that runs a canal pod.

What it does on a node, as flanneld does:
- pick the underlay interface: FLANNELD_IFACE as the canal container saw it when it started,
  or the default-route interface when that is empty;
- create ``flannel.1`` (VXLAN VNI 1, UDP 8472, local = the interface's IPv4, MTU = its MTU - 50)
  with the podCIDR's network address /32; re-create it (new ifindex and MAC) when the
  underlay changes;
- publish ``flannel.alpha.coreos.com/public-ip`` and ``backend-data`` (VtepMAC) on the Node;
- for every peer with those annotations: ``<podCIDR> via <network> dev flannel.1 onlink``, a
  permanent neighbour entry and an FDB entry to the peer's public IP; stale peers are removed.
If the named interface does not exist, flanneld fails and the canal pod is not Ready.
"""

import ipaddress
import json
import logging

from pyroute2.netlink.exceptions import NetlinkError

from ..controllers.base import Controller
from . import netns as nsx
from .nodes import node_ns

LOG = logging.getLogger("cloudhop_lab")
ANN = "flannel.alpha.coreos.com/"
VNI, PORT = 1, 8472


class FlannelAgent(Controller):
    name = "flannel"
    resync = 0.5

    def __init__(self, api, cluster_cidr):
        super().__init__(api)
        self.cluster_cidr = cluster_cidr
        self.canal = {}  # node -> (iface setting, pod uid)
        self.state = {}  # node -> dict(iface, local, mac, index, peers={peer: tuple})
        # node -> netlink event socket in its namespace: like flanneld, the agent looks at the
        # node's links and routes again when they change, not on every pass
        self.monitors = {}

    # called by the pod runtime
    def canal_started(self, node, iface, uid):
        self.canal[node] = (iface, uid)

    def canal_stopped(self, node, uid):
        if self.canal.get(node, (None, None))[1] == uid:
            del self.canal[node]

    def node_ready(self, node):
        st = self.state.get(node)
        want = self.canal.get(node)
        return bool(st and want and st.get("setting") == want[0])

    # -------------------------------------------------------------- reconcile

    def reconcile(self):
        node_rt = self.rt("", "v1", "nodes")
        nodes = {n["metadata"]["name"]: n for n in self.ls("", "v1", "nodes")}
        for gone in set(self.state) - set(nodes):
            self.state.pop(gone, None)
        for name, (setting, uid) in list(self.canal.items()):
            with self.isolated(name):
                node = nodes.get(name)
                if node is None or not nsx.ns_exists(node_ns(name)):
                    continue
                try:
                    st = self._checked_device(name, node, setting, uid)
                    if not st["peers"]:
                        # a new flannel.1: program the peers at once, as flanneld does right
                        # after creating the device (not after the other nodes' work)
                        self._peers(name, self._peer_table(nodes))
                except (NetlinkError, OSError, RuntimeError) as exc:
                    LOG.warning("flannel on %s: %s", name, exc)
                    self.state.pop(name, None)
                    continue
                want = {ANN + "public-ip": st["local"],
                        ANN + "backend-data": json.dumps({"VNI": VNI, "VtepMAC": st["mac"]},
                                                         separators=(",", ":")),
                        ANN + "backend-type": "vxlan", ANN + "kube-subnet-manager": "true"}
                have = node["metadata"].get("annotations") or {}
                if any(have.get(k) != v for k, v in want.items()):
                    node = self.api.patch(node_rt, None, name, "merge",
                                          {"metadata": {"annotations": want}})
                    nodes[name] = node
        table = self._peer_table(nodes)
        for name in list(self.state):
            if not nsx.ns_exists(node_ns(name)):
                self.state.pop(name, None)  # the machine is gone
                continue
            if name in nodes:
                with self.isolated(name):
                    self._peers(name, table)
        for name, mon in list(self.monitors.items()):
            # the socket would keep a deleted node's namespace (and its veth) alive; a canal
            # restart keeps it (the agent's state, and flannel.1, outlive the pod)
            gone = not mon.same_namespace()
            if gone or (name not in self.state and name not in self.canal):
                self.monitors.pop(name).close()
            if gone:
                self.state.pop(name, None)

    def _checked_device(self, name, node, setting, uid):
        """The node's flannel.1, looked at again only when its namespace reported a link,
        address or route change, or the canal pod changed (netlink dumps of 100 nodes'
        routes on every pass would take a core)."""
        mon = self.monitors.get(name)
        if mon is not None and not mon.same_namespace():  # the node's namespace was made anew
            self.monitors.pop(name).close()
            self.state.pop(name, None)
            mon = None
        new = mon is None
        if new:
            mon = self.monitors[name] = nsx.Monitor(node_ns(name))
        # drained before the read: a change during it shows next pass; a new socket has seen
        # nothing yet, so the device is read once
        changed = mon.changed() or new
        st = self.state.get(name)
        if st is None or changed or st.get("setting") != setting or st.get("uid") != uid:
            st = self._device(name, node, setting)
            st["uid"] = uid
        return st

    def _underlay(self, ns, setting):
        ipr = nsx.handle(ns)
        if setting:
            idx = nsx.index(ipr, setting)
            if idx is None:
                raise RuntimeError("failed to find interface %s" % setting)
        else:
            routes = [r for r in ipr.get_routes(family=2, table=254)
                      if r["dst_len"] == 0 and r.get_attr("RTA_OIF")]
            if not routes:
                raise RuntimeError("no default route")
            idx = routes[0].get_attr("RTA_OIF")
        # on point-to-point links (tun) IFA_ADDRESS is the peer; IFA_LOCAL is ours
        addrs = [a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
                 for a in ipr.get_addr(family=2, index=idx)]
        if not addrs:
            raise RuntimeError("interface %s has no IPv4 address" % (setting or idx))
        link = ipr.get_links(idx)[0]
        return idx, link.get_attr("IFLA_IFNAME"), addrs[0], link.get_attr("IFLA_MTU")

    def _device(self, name, node, setting):
        ns = node_ns(name)
        with nsx.LOCK:
            ipr = nsx.handle(ns)
            idx, ifname, local, mtu = self._underlay(ns, setting)
            st = self.state.get(name)
            cur = nsx.index(ipr, "flannel.1")
            if cur is not None and (st is None or st["local"] != local or
                                    st["underlay"] != idx or st["index"] != cur):
                ipr.link("del", index=cur)
                cur = None
            if st is None:
                self._ip_masq(ns, node["spec"]["podCIDR"])
            if cur is None:
                ipr.link("add", ifname="flannel.1", kind="vxlan", vxlan_id=VNI,
                         vxlan_port=PORT, vxlan_local=local, vxlan_link=idx,
                         vxlan_learning=0, mtu=mtu - 50)
                cur = nsx.index(ipr, "flannel.1")
                net = ipaddress.ip_network(node["spec"]["podCIDR"])
                ipr.addr("add", index=cur, address=str(net.network_address), prefixlen=32)
                ipr.link("set", index=cur, state="up")
                st = {"peers": {}}
            mac = ipr.get_links(cur)[0].get_attr("IFLA_ADDRESS")
            st.update(setting=setting, underlay=idx, ifname=ifname, local=local, mac=mac,
                      index=cur)
            self.state[name] = st
            return st

    def _ip_masq(self, ns, subnet):
        """flanneld --ip-masq, its rules as flanneld keeps them (chain FLANNEL-POSTRTG in iptables'
        nat table, appended to POSTROUTING): no NAT inside the pod network; pod traffic leaving
        it is masqueraded; traffic from outside the pod network to another node's pods (a
        host, or a NodePort forward kube-proxy did not already masquerade) is masqueraded too."""
        net, masq = self.cluster_cidr, '-m comment --comment "flanneld masq" -j '
        nsx.iptables_chain(ns, "nat", "FLANNEL-POSTRTG", (
            "-s %s -d %s %sRETURN" % (net, net, masq),
            "-s %s ! -d 224.0.0.0/4 %sMASQUERADE --random-fully" % (net, masq),
            "! -s %s -d %s %sRETURN" % (net, subnet, masq),
            "! -s %s -d %s %sMASQUERADE --random-fully" % (net, net, masq),
        ), ["POSTROUTING", "-m", "comment", "--comment", "flanneld masq", "-j", "FLANNEL-POSTRTG"],
            first=False)

    @staticmethod
    def _peer_table(nodes):
        """node -> (podCIDR, VtepMAC, public IP) for every node flannel has published."""
        table = {}
        for peer, node in nodes.items():
            ann = node["metadata"].get("annotations") or {}
            cidr = (node.get("spec") or {}).get("podCIDR")
            if not cidr or ANN + "public-ip" not in ann:
                continue
            try:
                mac = json.loads(ann[ANN + "backend-data"])["VtepMAC"]
            except (KeyError, ValueError, TypeError):
                continue
            table[peer] = (cidr, mac, ann[ANN + "public-ip"])
        return table

    def _peers(self, name, table):
        st = self.state[name]
        ns = node_ns(name)
        want = {peer: entry for peer, entry in table.items() if peer != name}
        if want == st["peers"]:
            return
        with nsx.LOCK:
            ipr = nsx.handle(ns)
            dev = st["index"]
            for peer, entry in st["peers"].items():
                if want.get(peer) != entry:
                    self._program(ipr, dev, entry, "del")
            for peer, entry in want.items():
                if st["peers"].get(peer) != entry:
                    self._program(ipr, dev, entry, "add")
            st["peers"] = want

    @staticmethod
    def _program(ipr, dev, entry, op):
        cidr, mac, public_ip = entry
        net = ipaddress.ip_network(cidr)
        gw = str(net.network_address)
        calls = [
            lambda: ipr.neigh(op if op == "del" else "replace", dst=gw, lladdr=mac,
                              ifindex=dev, state=0x80),
            lambda: ipr.fdb("del" if op == "del" else "append", ifindex=dev, lladdr=mac,
                            dst=public_ip),
            lambda: ipr.route(op, dst=gw, dst_len=net.prefixlen, gateway=gw, oif=dev,
                              flags=4, proto=nsx.PROTO_BOOT),  # RTNH_F_ONLINK
        ]
        for call in calls if op == "add" else reversed(calls):
            try:
                call()
            except NetlinkError as exc:
                if exc.code not in (2, 3, 17, 19):  # ENOENT, ESRCH, EEXIST, ENODEV
                    raise
