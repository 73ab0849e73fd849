"""The lab's networks: an "internet" segment, one private network per cloud behind its router.

    clh-inet   bridge br-inet, 198.18.0.0/24 (public addresses: routers, seed VPN endpoint,
               load balancers, DNS, probe client, clh-ctl)
    clh-rt-X   router of cloud X: public leg on br-inet, private bridge br-X with the cloud's
               gateway address, forwarding on, source NAT to its public address
    nodes      veth into br-X, default route via the gateway (like a DHCP-configured VM)
    clh-ctl    the operator's machine: a leg on the internet and a management leg in every
               cloud network (a bastion's view), forwarding off

Private networks of different clouds cannot reach each other: no router knows another cloud's
private prefix, and the internet segment has no route to any of them - until a peering links
two of them (``link``: what a cloud's VPC peering or a site-to-site VPN gives): a transit link
between the two routers and a route to the other's private network on each, with no NAT on the
way (the nodes see each other's own addresses). Only the two networks are routed, never pod or
service networks, so two clusters with the same pod CIDR can be linked.
"""

import ipaddress

from . import netns as nsx

INET_NS = nsx.ns_name("inet")
CTL_NS = nsx.ns_name("ctl")
CLOUD_IFACES = {"vsphere": "ens192", "aws": "ens5", "gcp": "ens4"}
ROUTER_PUBLIC = {"vsphere": 2, "aws": 3, "gcp": 4}
CTL_PUBLIC_HOST = 5
CLIENT_NS = nsx.ns_name("client")
CLIENT_PUBLIC_HOST = 200


def router_ns(cloud):
    return nsx.ns_name("rt-" + cloud)


class Topology:
    def __init__(self, opts):
        self.opts = opts
        self.public = ipaddress.ip_network(opts["public_cidr"])
        self.networks = {c: ipaddress.ip_network(n) for c, n in opts["networks"].items()}

    def public_ip(self, host):
        return str(self.public.network_address + host)

    def gateway(self, cloud):
        return str(self.networks[cloud].network_address + 1)

    def ctl_ip(self, cloud):
        return str(self.networks[cloud].network_address + 5)

    def build(self):
        plen = self.public.prefixlen
        nsx.create(INET_NS)
        nsx.bridge(INET_NS, "br-inet")
        nsx.create(CTL_NS)
        nsx.veth(INET_NS, "ctl0", CTL_NS, "inet0")
        nsx.enslave(INET_NS, "ctl0", "br-inet")
        nsx.add_addr(CTL_NS, "inet0", self.public_ip(CTL_PUBLIC_HOST), plen)
        for cloud, net in self.networks.items():
            rns = router_ns(cloud)
            nsx.create(rns)
            nsx.veth(INET_NS, "rt-" + cloud[:6], rns, "inet0")
            nsx.enslave(INET_NS, "rt-" + cloud[:6], "br-inet")
            nsx.add_addr(rns, "inet0", self.public_ip(ROUTER_PUBLIC[cloud]), plen)
            nsx.bridge(rns, "br-" + cloud[:6], self.gateway(cloud), net.prefixlen)
            nsx.sysctls(rns, [("net.ipv4.ip_forward", 1)])
            # source NAT to the router's public address, as a cloud NAT gateway does: to its
            # one fixed address (snat), not masquerade - the kernel drops masqueraded
            # connections on device events, and here (6.18) the deletion of any namespace's
            # ifindex 2 (a node's ens192, as a node goes) flushed the NAT of every connection
            # leaving through inet0 (ifindex 2 too): all other nodes' VPN tunnels were reset
            # when one cluster's old nodes were deleted. A cloud's NAT keeps the others'.
            nsx.nft(rns, "table ip nat {\n chain postrouting {\n"
                         "  type nat hook postrouting priority 100;\n"
                         "  ip saddr %s oifname \"inet0\" snat to %s\n }\n}\n"
                    % (net, self.public_ip(ROUTER_PUBLIC[cloud])))
            # management leg of the operator's machine (no forwarding in clh-ctl)
            nsx.veth(rns, "ctl", CTL_NS, "mgmt-" + cloud[:6])
            nsx.enslave(rns, "ctl", "br-" + cloud[:6])
            nsx.add_addr(CTL_NS, "mgmt-" + cloud[:6], self.ctl_ip(cloud), net.prefixlen)
        nsx.sysctls(CTL_NS, [("net.ipv4.ip_forward", 0)])
        # the probe's client, somewhere on the internet
        nsx.create(CLIENT_NS)
        nsx.veth(INET_NS, "client0", CLIENT_NS, "eth0")
        nsx.enslave(INET_NS, "client0", "br-inet")
        nsx.add_addr(CLIENT_NS, "eth0", self.public_ip(CLIENT_PUBLIC_HOST), plen)

    PEERING = ipaddress.ip_network("169.254.250.0/24")  # transit /30s, one per pair

    def _peering(self, a, b):
        a, b = sorted((a, b))
        clouds = sorted(self.networks)
        pair = clouds.index(a) * len(clouds) + clouds.index(b)
        base = self.PEERING.network_address + 4 * pair
        return a, b, str(base + 1), str(base + 2)

    def link(self, a, b):
        """Peer the private networks of clouds a and b (idempotent). Returns the link."""
        for cloud in (a, b):
            if cloud not in self.networks:
                raise ValueError("no cloud network %r (have: %s)" % (cloud, ", ".join(
                    sorted(self.networks))))
        if a == b:
            raise ValueError("a peering needs two different cloud networks")
        a, b, ip_a, ip_b = self._peering(a, b)
        ns_a, ns_b = router_ns(a), router_ns(b)
        dev_a, dev_b = "pe-" + b[:6], "pe-" + a[:6]
        with nsx.LOCK:  # pyroute2's sockets are not thread-safe
            exists = nsx.index(nsx.handle(ns_a), dev_a) is not None
        if not exists:
            nsx.veth(ns_a, dev_a, ns_b, dev_b)
            nsx.add_addr(ns_a, dev_a, ip_a, 30)
            nsx.add_addr(ns_b, dev_b, ip_b, 30)
            ipr_a, ipr_b = nsx.handle(ns_a), nsx.handle(ns_b)
            nsx.route(ns_a, "add", dst=str(self.networks[b].network_address),
                      dst_len=self.networks[b].prefixlen, gateway=ip_b,
                      oif=nsx.index(ipr_a, dev_a))
            nsx.route(ns_b, "add", dst=str(self.networks[a].network_address),
                      dst_len=self.networks[a].prefixlen, gateway=ip_a,
                      oif=nsx.index(ipr_b, dev_b))
        return {"between": [a, b], "networks": [str(self.networks[a]), str(self.networks[b])],
                "transit": [ip_a, ip_b]}

    def unlink(self, a, b):
        """Remove the peering of a and b (its routes go with the link). Idempotent."""
        a, b, _ip_a, _ip_b = self._peering(a, b)
        with nsx.LOCK:
            ipr = nsx.handle(router_ns(a))
            idx = nsx.index(ipr, "pe-" + b[:6])
            if idx is not None:
                ipr.link("del", index=idx)

    def links(self):
        out = []
        clouds = sorted(self.networks)
        with nsx.LOCK:
            for i, a in enumerate(clouds):
                for b in clouds[i + 1:]:
                    if nsx.index(nsx.handle(router_ns(a)), "pe-" + b[:6]) is not None:
                        out.append([a, b])
        return out

    def attach_node(self, node_ns, cloud, ip, port_name):
        """Plug a node namespace into its cloud network as a DHCP-configured VM."""
        iface = CLOUD_IFACES[cloud]
        rns = router_ns(cloud)
        net = self.networks[cloud]
        nsx.veth(rns, port_name, node_ns, iface)
        nsx.enslave(rns, port_name, "br-" + cloud[:6])
        nsx.add_addr(node_ns, iface, ip, net.prefixlen)
        ipr = nsx.handle(node_ns)
        idx = nsx.index(ipr, iface)
        gw = self.gateway(cloud)
        nsx.route(node_ns, "add", dst=gw, dst_len=32, oif=idx, proto=nsx.PROTO_DHCP,
                  scope=253, prefsrc=ip, priority=100)
        nsx.route(node_ns, "add", dst="0.0.0.0", dst_len=0, gateway=gw, oif=idx,
                  proto=nsx.PROTO_DHCP, prefsrc=ip, priority=100)
        return iface
