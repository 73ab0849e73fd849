# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WireGuard backend of the VPN overlay (controller side): keys, the address plan of hubs
and node slots, the slot of each node, the hubs' configuration and the MTU budget.

The VPN network (``cloudhop_vpn_cidr``) is shared out so that every address is the same
whichever hub carries it: hub ``i`` has the (``i``+1)-th host address, node slot ``k`` the
(``SLOT_BASE``+``k``)-th. Every hub has every slot as a peer (its public key, AllowedIPs its
/32), so a node can move between hubs without any hub changing; a node is given a slot by name
(ConfigMap ``cloudhop-vpn-wg-nodes``) and reads that slot's private key from the nodes' Secret.
Keys are X25519 (``cryptography``), kept as ``wg genkey`` writes them: base64 text, 0600.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.network import cidr

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

MAX_HUBS = 8
SLOT_BASE = 16  # the hubs take the host addresses 1..MAX_HUBS; node slots start here


def _need_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise MigrationError("the cryptography Python library is needed on the controller for "
                             "WireGuard keys (it comes with ansible-core; pip install cryptography)")


def public_key(private_b64):
    """The base64 public key of a base64 X25519 private key (``wg pubkey``)."""
    _need_cryptography()
    try:
        raw = base64.b64decode(private_b64.strip(), validate=True)
    except (ValueError, TypeError, AttributeError):
        raise MigrationError("not a WireGuard key (base64 of 32 bytes)")
    if len(raw) != 32:
        raise MigrationError("not a WireGuard key: %d bytes, not 32" % len(raw))
    pub = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(pub).decode("ascii")


def new_private_key():
    """A new base64 X25519 private key (``wg genkey``)."""
    _need_cryptography()
    raw = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def read_key(path):
    """The base64 private key in ``path``; a clear error when it cannot be read or is not a
    key."""
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationError("WireGuard key %s cannot be read (%s): make it readable by the "
                             "user running Ansible (mode 0600), or remove it to have a new one "
                             "made" % (path, getattr(exc, "strerror", None) or exc))
    try:
        public_key(text)
    except MigrationError as exc:
        raise MigrationError("WireGuard key %s is %s: remove it to have a new one made"
                             % (path, exc))
    return text


def hub_names(count, base="cloudhop-vpn-hub"):
    """The hubs' object names: the first keeps the single hub's name."""
    return [base if i == 0 else "%s-%d" % (base, i + 1) for i in range(int(count))]


def address_plan(vpn_cidr, hubs, slots):
    """{hubs: [address/prefix], slots: [address/prefix], prefix} for ``hubs`` hubs and
    ``slots`` node slots in the VPN network."""
    net = cidr("VPN network (cloudhop_vpn_cidr)", vpn_cidr)
    hubs, slots = int(hubs), int(slots)
    problems = plan_problems(vpn_cidr, hubs, slots)
    if problems:
        raise MigrationError("; ".join(problems))
    first = net.first
    return {"prefix": net.prefixlen, "cidr": str(net.cidr),
            "hubs": ["%s/%d" % (_ip(first + 1 + i), net.prefixlen) for i in range(hubs)],
            "slots": ["%s/%d" % (_ip(first + SLOT_BASE + k), net.prefixlen)
                      for k in range(slots)]}


def _ip(value):
    import netaddr  # pylint: disable=import-outside-toplevel
    return str(netaddr.IPAddress(value))


def slot_capacity(vpn_cidr):
    net = cidr("VPN network (cloudhop_vpn_cidr)", vpn_cidr)
    return max(0, net.size - SLOT_BASE - 1)  # the broadcast address is not a node's


def plan_problems(vpn_cidr, hubs, slots):
    out = []
    if not 1 <= int(hubs) <= MAX_HUBS:
        out.append("cloudhop_vpn_hub.count is %s: give 1 to %d hubs (2 keep every node "
                   "connected when one fails)" % (hubs, MAX_HUBS))
    capacity = slot_capacity(vpn_cidr)
    if int(slots) > capacity:
        out.append("cloudhop_vpn_hub.slots is %s, but the VPN network %s has room for %d "
                   "nodes: lower the slots or give a larger cloudhop_vpn_cidr"
                   % (slots, vpn_cidr, capacity))
    return out


def default_slots(vpn_cidr, nodes):
    """Slots for ``nodes`` nodes (old and new) with room for replacements: three per node, at
    least 32, at most what the VPN network holds."""
    return min(slot_capacity(vpn_cidr), max(32, 3 * int(nodes)))


def assign_slots(nodes, current, slots_addresses):
    """Each node of ``nodes`` keeps its slot in ``current`` ({node: "<slot> <address/prefix>"})
    or gets the lowest free one. Nodes gone keep theirs (their agent may still run); returns
    (the new map, the nodes that got a slot now). Raises when the slots run out."""
    out = dict(current or {})
    used = set()
    for value in out.values():
        try:
            used.add(int(str(value).split()[0]))
        except (ValueError, IndexError):
            raise MigrationError("ConfigMap kube-system/cloudhop-vpn-wg-nodes has an entry %r "
                                 "that is not '<slot> <address>': delete the entry (its node "
                                 "gets a slot again)" % (value,))
    added = []
    free = (k for k in range(len(slots_addresses)) if k not in used)
    for node in sorted(set(nodes or []) - set(out)):
        k = next(free, None)
        if k is None:
            raise MigrationError("no WireGuard slot left for node %s: all %d are taken; raise "
                                 "cloudhop_vpn_hub.slots (the hubs then get the new peers)"
                                 % (node, len(slots_addresses)))
        out[node] = "%d %s" % (k, slots_addresses[k])
        added.append(node)
    return out, added


def hub_config(private_key, listen_port, slot_public_keys, slot_addresses, keepalive=1):
    """A hub's ``wg setconf`` file: its key and port, every slot as a peer."""
    lines = ["[Interface]", "PrivateKey = %s" % private_key, "ListenPort = %d" % int(listen_port)]
    for k, pub in enumerate(slot_public_keys):
        addr = slot_addresses[k].split("/")[0]
        lines += ["", "[Peer]", "# slot %d" % k, "PublicKey = %s" % pub,
                  "AllowedIPs = %s/32" % addr, "PersistentKeepalive = %d" % int(keepalive)]
    return "\n".join(lines) + "\n"


def node_hubs(public_keys, endpoints, addresses):
    """The node agent's hub list: ``<public key>@<host:port>@<address>`` words, in order of
    preference."""
    return " ".join("%s@%s@%s" % (pub, ep, addr.split("/")[0])
                    for pub, ep, addr in zip(public_keys, endpoints, addresses))


def _makedirs_private(directory):
    """``directory`` and every missing parent made 0700 (os.makedirs gives the parents the
    umask's mode)."""
    missing = []
    path = os.path.abspath(directory)
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for path in reversed(missing):
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # the umask may have taken bits away, never added


def ensure_keys(directory, names, rotate=(), check_mode=False):
    """``<directory>/<name>.key`` for every name: read when there, made (0600) when not, made
    again when the name is in ``rotate``. Returns ({name: private}, [names made]). In check
    mode nothing is written and missing keys come back as None."""
    keys, made = {}, []
    if os.path.isdir(directory) and not os.access(directory, os.R_OK | os.X_OK):
        raise MigrationError("the WireGuard key directory %s cannot be read: make it readable "
                             "by the user running Ansible (mode 0700)" % directory)
    for name in names:
        path = os.path.join(directory, "%s.key" % name)
        if os.path.lexists(path) and name not in rotate:
            keys[name] = read_key(path)
            continue
        made.append(name)
        if check_mode:
            keys[name] = None
            continue
        _makedirs_private(directory)
        key = new_private_key()
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        os.rename(tmp, path)
        keys[name] = key
    return keys, made


BACKENDS = ("openvpn", "wireguard")


NODE_PORTS = (30000, 32767)  # kube-apiserver's default --service-node-port-range


def vpn_check(backend, mode, count=1, vpn_cidr=None, slots=0, nodes=0, node_port=None):
    """{problems, slots}: what is wrong with the VPN variables, before anything is written (the
    backend, the VPN mode it needs, the hub count, the slots, and in VPN mode hub the hubs'
    NodePorts: ``node_port`` .. ``node_port`` + count - 1 for WireGuard, ``node_port`` for the
    OpenVPN hub), and the WireGuard slots to make (``slots``, or with 0 ``default_slots`` for
    ``nodes`` nodes; 0 without a VPN network)."""
    problems = _vpn_problems(backend, mode, count, vpn_cidr, slots, nodes)
    if not problems and mode == "hub" and node_port is not None:
        problems = _node_port_problems(
            node_port, int(count),
            "cloudhop_vpn_hub.%s" % ("wireguard_node_port" if backend == "wireguard"
                                     else "node_port"))
    resolved = 0
    if backend == "wireguard" and vpn_cidr and not problems:
        resolved = int(slots or 0) or default_slots(vpn_cidr, nodes)
    return {"problems": problems, "slots": resolved}


def _node_port_problems(node_port, count, name):
    try:
        first = int(node_port)
    except (TypeError, ValueError):
        return ["%s is %r: give a NodePort, %d-%d" % (name, node_port, NODE_PORTS[0],
                                                      NODE_PORTS[1])]
    last = first + count - 1
    if first < NODE_PORTS[0] or last > NODE_PORTS[1]:
        return ["%s %d: the %d hubs take NodePorts %d-%d, outside the NodePort range %d-%d - "
                "give a lower one" % (name, first, count, first, last, NODE_PORTS[0],
                                      NODE_PORTS[1])
                if count > 1 else
                "%s %d is outside the NodePort range %d-%d" % (name, first, NODE_PORTS[0],
                                                               NODE_PORTS[1])]
    return []


def _vpn_problems(backend, mode, count, vpn_cidr, slots, nodes):
    out = []
    if backend not in BACKENDS:
        return ["cloudhop_vpn_backend is %r: use openvpn or wireguard" % (backend,)]
    try:
        count = int(count)
    except (TypeError, ValueError):
        return ["cloudhop_vpn_hub.count is %r: give a number of hubs, 1 to %d"
                % (count, MAX_HUBS)]
    if backend == "wireguard" and mode != "hub":
        out.append("cloudhop_vpn_backend=wireguard needs a VPN hub of the migration's own "
                   "(cloudhop_vpn_mode hub or auto): the seed's openvpn-server is KKP's and "
                   "stays OpenVPN")
    if count != 1 and mode != "hub":
        out.append("cloudhop_vpn_hub.count is %d, but cloudhop_vpn_mode is seed: the seed has "
                   "one openvpn-server; more than one VPN server needs the migration's own hubs "
                   "(cloudhop_vpn_mode=hub)" % count)
    elif count != 1 and backend != "wireguard":
        out.append("cloudhop_vpn_hub.count is %d: more than one hub needs "
                   "cloudhop_vpn_backend=wireguard (OpenVPN hubs: one)" % count)
    elif backend == "wireguard" and vpn_cidr:
        asked = int(slots or 0)
        slots = asked or default_slots(vpn_cidr, nodes)
        out += plan_problems(vpn_cidr, count, slots)
        if not out and slots < int(nodes):
            out.append(("cloudhop_vpn_hub.slots is %d, fewer than the %d nodes old and new: "
                        "raise it" % (slots, int(nodes))) if asked else
                       ("the VPN network %s has room for %d nodes, fewer than the %d old and "
                        "new: give a larger cloudhop_vpn_cidr"
                        % (vpn_cidr, slot_capacity(vpn_cidr), int(nodes))))
    elif count < 1:
        out.append("cloudhop_vpn_hub.count is %d: give 1 to %d hubs" % (count, MAX_HUBS))
    return out


def plan(vpn_cidr, count, slots, hub_public_keys, slot_public_keys, address, node_port,
         names_base="cloudhop-vpn-hub"):
    """All the roles need of the WireGuard hubs and slots: per hub its name, address, public
    key, NodePort and endpoint; the slots' addresses and public keys; and the node agent's hub
    list (``node_hubs``)."""
    addrs = address_plan(vpn_cidr, count, slots)
    names = hub_names(count, names_base)
    keys = list(hub_public_keys or []) + [None] * int(count)  # None: not made yet (check mode)
    hubs = [{"name": names[i], "index": i, "address": addrs["hubs"][i],
             "public_key": keys[i],
             "node_port": int(node_port) + i,
             "endpoint": "%s:%d" % (address, int(node_port) + i)} for i in range(count)]
    return {"cidr": addrs["cidr"], "hubs": hubs, "slot_addresses": addrs["slots"],
            "slot_public_keys": list(slot_public_keys or []),
            "node_hubs": node_hubs([h["public_key"] or "" for h in hubs],
                                   [h["endpoint"] for h in hubs], [h["address"] for h in hubs])}
