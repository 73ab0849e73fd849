# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration's network plan (controller side): CIDRs and their overlaps, and the MTU
budget of VXLAN over the tunnel. netaddr does the CIDR work.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

try:
    import netaddr
    HAS_NETADDR = True
except ImportError:
    HAS_NETADDR = False

VXLAN_OVERHEAD = 50
VIRTUAL_NODE_NETWORK = "10.254.0.0/16"


def cidr(name, value):
    if not HAS_NETADDR:
        raise MigrationError("the netaddr Python library is needed on the controller "
                             "(pip install netaddr)")
    try:
        return netaddr.IPNetwork(value)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        raise MigrationError("%s: %r is not a CIDR (for example 10.20.0.0/24)" % (name, value))


def cidr_conflicts(networks):
    """networks: {label: cidr or None}. Returns a list of messages, one per overlapping pair
    (None and '' entries are ignored: not known)."""
    nets = [(label, cidr(label, value)) for label, value in sorted(networks.items()) if value]
    out = []
    for i, (la, na) in enumerate(nets):
        for lb, nb in nets[i + 1:]:
            if na.first <= nb.last and nb.first <= na.last:
                out.append("%s %s overlaps %s %s" % (la, na, lb, nb))
    return out


# the tunnel's MTU when cloudhop_vpn_tunnel_mtu is 0: OpenVPN's tun device default (TCP carries
# what the underlay cannot); WireGuard: the underlay's minus its IPv6 overhead, as wg-quick does
OPENVPN_TUNNEL_MTU = 1500
WIREGUARD_OVERHEAD = {"ipv4": 60, "ipv6": 80}


def mtu_budget(underlay_mtu, tunnel_mtu, veth_mtu=None, overhead=VXLAN_OVERHEAD,
               backend="openvpn"):
    """VXLAN over the tunnel: flannel.1 gets tunnel MTU - 50; pods must fit in it. A tunnel
    MTU of 0 is the backend's own (OPENVPN_TUNNEL_MTU, or the underlay's minus WireGuard's 80).
    A WireGuard tunnel larger than the underlay leaves is allowed when asked for (``fragments``):
    pods whose MTU was made for VXLAN over the host network need it, unless they restart."""
    underlay_mtu, asked = int(underlay_mtu), int(tunnel_mtu or 0)
    wireguard = backend == "wireguard"
    tunnel_mtu = asked or (underlay_mtu - WIREGUARD_OVERHEAD["ipv6"] if wireguard
                           else OPENVPN_TUNNEL_MTU)
    flannel = tunnel_mtu - overhead
    out = {"underlay_mtu": underlay_mtu, "tunnel_mtu": tunnel_mtu, "vxlan_overhead": overhead,
           "flannel_mtu": flannel, "pod_mtu": int(veth_mtu) if veth_mtu else None,
           "backend": backend, "problems": [],
           # WireGuard's own packets larger than the underlay's MTU: the nodes fragment them
           "fragments": wireguard and tunnel_mtu + WIREGUARD_OVERHEAD["ipv4"] > underlay_mtu}
    if flannel < 1280 and wireguard and not asked:
        out["problems"].append(
            "the MTU budget is too small: the underlay's MTU %d leaves WireGuard %d and flannel.1 "
            "over it %d (< 1280); the nodes need an underlay MTU of at least %d"
            % (underlay_mtu, tunnel_mtu, flannel, 1280 + overhead + WIREGUARD_OVERHEAD["ipv6"]))
    elif flannel < 1280:
        out["problems"].append("flannel.1 over the tunnel would get MTU %d (< 1280): raise the "
                               "tunnel's MTU (cloudhop_vpn_tunnel_mtu %d, at least %d)"
                               % (flannel, tunnel_mtu, 1280 + overhead))
    if veth_mtu and int(veth_mtu) > flannel and wireguard:
        out["problems"].append(
            "canal-config veth_mtu %s is larger than flannel.1's MTU over WireGuard (%d = %d - "
            "VXLAN's %d): pods would send packets VXLAN cannot carry. Either set veth_mtu to %d "
            "or less (canal's pods, then every pod, restart to take it), or set "
            "cloudhop_vpn_tunnel_mtu to %d: WireGuard's packets then exceed the underlay's MTU "
            "%d by up to %d bytes, and the nodes fragment them"
            % (veth_mtu, flannel, tunnel_mtu, overhead, flannel, int(veth_mtu) + overhead,
               underlay_mtu, int(veth_mtu) + overhead + WIREGUARD_OVERHEAD["ipv4"] - underlay_mtu))
    elif veth_mtu and int(veth_mtu) > flannel:
        out["problems"].append(
            "canal-config veth_mtu %s is larger than flannel.1's MTU over the tunnel (%d): pods "
            "would send packets VXLAN cannot carry; set veth_mtu to %d or less, or raise "
            "cloudhop_vpn_tunnel_mtu (%d) to %d"
            % (veth_mtu, flannel, flannel, tunnel_mtu, int(veth_mtu) + overhead))
    return out
