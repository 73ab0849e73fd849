# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse a node's ``ip`` output and judge it against what the migration expects.

Pure functions, standard library only. The ``route_verify`` action plugin runs one ``raw``
command on the node (no Python needed there) and calls ``parse_json`` (or ``parse_text`` when
the node's iproute2 has no ``-j``) and ``judge`` on the controller.

The model:
``{"links": {name: {"flags", "mtu", "kind", "vxlan": {"id", "local", "port", "dev"}}},
"addrs": {name: [{"local", "prefixlen", "peer"}]}, "routes": [{"dst", "gateway", "dev",
"flags", "scope", "protocol", "prefsrc"}]}``
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re

SEPARATOR = "@@cloudhop@@"
# One command, one SSH round trip, two ``ip`` processes: with ``-d`` the address listing carries
# every link's details too (kind, VXLAN id/port/local/underlay, MTU), so no third listing.
COMMAND = "ip -d -j addr show; echo %s; ip -j route show table main; echo %s" % (
    SEPARATOR, SEPARATOR)
COMMAND_TEXT = ("ip addr show; echo %s; ip route show table main; echo %s; ip -d link show"
                % (SEPARATOR, SEPARATOR))
ROUTE_VERIFY_SPEC = dict(
    vpn_cidr={"type": "str"},
    vpn_interface={"type": "str", "default": "kube"},
    flannel_interface={"type": "str", "default": "flannel.1"},
    flannel_vni={"type": "int", "default": 1},
    flannel_port={"type": "int", "default": 8472},
    flannel_underlay={"type": "str"},
    peer_pod_cidrs={"type": "list", "elements": "str", "default": []},
    check_mtu={"type": "bool", "default": True},
    vxlan_overhead={"type": "int", "default": 50},
    fail_on_violation={"type": "bool", "default": True},
    nodes={"type": "list", "elements": "str"},
    node_pod_cidrs={"type": "dict", "default": {}},
    settle_timeout={"type": "float", "default": 0},
    settle_interval={"type": "float", "default": 0.5},
    fail_on_unreachable={"type": "bool", "default": True},
    routes_for={"type": "list", "elements": "str"},
)


class ParseError(Exception):
    pass


def _norm_dst(dst):
    if dst in ("default", "0.0.0.0/0"):
        return "default"
    try:
        return str(ipaddress.ip_network(dst, strict=False))
    except ValueError:
        return dst


def split_output(stdout):
    parts = stdout.split(SEPARATOR)
    if len(parts) != 3:
        raise ParseError("expected three listings separated by %s, got %d parts"
                         % (SEPARATOR, len(parts)))
    return [p.strip() for p in parts]


def parse_json(addr_out, route_out, link_out):
    try:
        addrs, routes, links = json.loads(addr_out), json.loads(route_out), json.loads(link_out)
    except ValueError as exc:
        raise ParseError("ip -j output is not JSON (%s); the node's iproute2 may lack -j" % exc)
    model = {"links": {}, "addrs": {}, "routes": []}
    for item in addrs:
        name = item.get("ifname")
        model["links"][name] = {"flags": list(item.get("flags") or []), "mtu": item.get("mtu"),
                                "kind": None, "vxlan": None, "ifindex": item.get("ifindex"),
                                "operstate": item.get("operstate")}
        model["addrs"][name] = [{"local": a.get("local"), "prefixlen": a.get("prefixlen"),
                                 "peer": a.get("address")}
                                for a in item.get("addr_info") or [] if a.get("family") == "inet"]
    for item in links + [a for a in addrs if "linkinfo" in a]:  # ip -d addr has the details
        info = item.get("linkinfo") or {}
        link = model["links"].setdefault(item.get("ifname"), {
            "flags": list(item.get("flags") or []), "mtu": item.get("mtu"), "kind": None,
            "vxlan": None, "ifindex": item.get("ifindex")})
        link["kind"] = info.get("info_kind")
        link["mac"] = item.get("address")
        if link["kind"] == "vxlan":
            data = info.get("info_data") or {}
            link["vxlan"] = {"id": data.get("id"), "local": data.get("local"),
                             "port": data.get("port"), "dev": data.get("link")}
    for r in routes:
        model["routes"].append({"dst": _norm_dst(r.get("dst")), "type": r.get("type", "unicast"),
                                "gateway": r.get("gateway"),
                                "dev": r.get("dev"), "flags": list(r.get("flags") or []),
                                "scope": r.get("scope"), "protocol": r.get("protocol"),
                                "prefsrc": r.get("prefsrc")})
    return model


LINK_RE = re.compile(r"^(\d+):\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>(.*)$")
INET_RE = re.compile(r"^\s+inet\s+([\d.]+)(?:/(\d+))?(?:\s+peer\s+([\d.]+)(?:/(\d+))?)?")


def parse_addr_text(text):
    """``ip addr`` / ``ip -d link`` text -> (links, addrs)."""
    links, addrs, cur = {}, {}, None
    for line in text.splitlines():
        m = LINK_RE.match(line)
        if m:
            cur = m.group(2)
            rest = m.group(4).split()
            mtu = int(rest[rest.index("mtu") + 1]) if "mtu" in rest else None
            links[cur] = {"flags": m.group(3).split(","), "mtu": mtu, "kind": None,
                          "vxlan": None, "ifindex": int(m.group(1))}
            addrs.setdefault(cur, [])
            continue
        if cur is None:
            continue
        m = INET_RE.match(line)
        if m:
            local, plen, peer, peer_len = m.groups()
            addrs[cur].append({"local": local, "peer": peer,
                               "prefixlen": int(peer_len or plen or 32)})
            continue
        words = line.split()
        if words[:1] == ["vxlan"] and "id" in words:
            vx = {"id": int(words[words.index("id") + 1]), "local": None, "port": None,
                  "dev": None}
            for key, field in (("local", "local"), ("dstport", "port"), ("dev", "dev")):
                if key in words:
                    vx[field] = words[words.index(key) + 1]
            if vx["port"] is not None:
                vx["port"] = int(vx["port"])
            links[cur]["kind"], links[cur]["vxlan"] = "vxlan", vx
        elif words[:1] and words[0].startswith("link/"):
            links[cur]["mac"] = words[1] if len(words) > 1 and ":" in words[1] else None
    return links, addrs


# route types ``ip route`` prints before the destination (unicast prints none)
ROUTE_TYPES = ("blackhole", "unreachable", "prohibit", "throw", "local", "broadcast",
               "anycast", "multicast", "nat")


def parse_route_text(text):
    routes = []
    for line in text.splitlines():
        words = line.split()
        rtype = "unicast"
        if words and words[0] in ROUTE_TYPES:
            rtype = words.pop(0)
        if not words:
            continue
        r = {"dst": _norm_dst(words[0]), "type": rtype, "gateway": None, "dev": None, "flags": [],
             "scope": None, "protocol": None, "prefsrc": None}
        i = 1
        keys = {"via": "gateway", "dev": "dev", "scope": "scope", "proto": "protocol",
                "src": "prefsrc", "metric": None, "table": None}
        while i < len(words):
            w = words[i]
            if w in keys and i + 1 < len(words):
                if keys[w]:
                    r[keys[w]] = words[i + 1]
                i += 2
            else:
                r["flags"].append(w)
                i += 1
        routes.append(r)
    return routes


def parse_text(addr_out, route_out, link_out=""):
    links, addrs = parse_addr_text(addr_out)
    dlinks, dummy = parse_addr_text(link_out)
    for name, link in dlinks.items():
        if name in links:
            links[name]["kind"] = link["kind"] or links[name]["kind"]
            links[name]["vxlan"] = link["vxlan"] or links[name]["vxlan"]
        else:
            links[name] = link
    return {"links": links, "addrs": addrs, "routes": parse_route_text(route_out)}


def _json_part(text):
    """The JSON document of one listing, skipping what a login shell printed before it (a raw
    command runs on a tty, so a profile's messages land in stdout); None if there is none."""
    for i, line in enumerate(text.splitlines()):
        if line.startswith("["):
            return "\n".join(text.splitlines()[i:])
    return None


def parse_output(stdout):
    """The raw command's stdout (JSON or text listings) -> model."""
    addr_out, route_out, link_out = split_output(stdout)
    parts = [_json_part(p) for p in (addr_out, route_out, link_out)]
    if parts[0] is not None and parts[1] is not None:
        model = parse_json(parts[0], parts[1], parts[2] or "[]")
    else:
        lines = addr_out.splitlines()
        start = next((i for i, ln in enumerate(lines) if LINK_RE.match(ln)), len(lines))
        model = parse_text("\n".join(lines[start:]), route_out, link_out)
    if not model["links"]:
        raise ParseError("no interface found in the node's ip output; the first lines were: %r"
                         % stdout[:200])
    return model


# what to do, for the checks whose expected/found alone does not say it
HINTS = {
    "vpn_interface_exists": "no tunnel device %(interface)s on this node: its VPN client is not "
                            "connected (look at the openvpn-client or, with WireGuard, the "
                            "cloudhop-vpn-wg pod on this node), or "
                            "vpn_interface (cloudhop_vpn_interface) is not the device the client's "
                            "config creates (its dev line)",
}


def violation_text(v):
    """One violation as the line a failure message shows: check, expected, found, and a hint."""
    text = "%s: expected %s, found %s" % (v["check"], v["expected"], v["found"])
    if v["check"] in HINTS:
        text += " (%s)" % (HINTS[v["check"]] % v)
    return text


def _v(check, expected, found, iface=None):
    out = {"check": check, "expected": expected, "found": found}
    if iface:
        out["interface"] = iface
    return out


def default_route_dev(model):
    for r in model["routes"]:
        if r["dst"] == "default":
            return r["dev"]
    return None


def judge(model, opts):
    """Violations of the expectations in ``opts`` (the route_verify options)."""
    violations = []
    links, addrs = model["links"], model["addrs"]
    vpn_if = opts.get("vpn_interface") or "kube"
    if opts.get("vpn_cidr"):
        vpn_net = ipaddress.ip_network(opts["vpn_cidr"], strict=False)
        link = links.get(vpn_if)
        if link is None:
            violations.append(_v("vpn_interface_exists", "interface %s" % vpn_if, "missing",
                                 vpn_if))
        else:
            if "UP" not in link["flags"]:
                violations.append(_v("vpn_interface_up", "UP", ",".join(link["flags"]), vpn_if))
            if "POINTOPOINT" not in link["flags"]:
                violations.append(_v("vpn_interface_pointopoint", "POINTOPOINT",
                                     ",".join(link["flags"]), vpn_if))
            mine = [a["local"] for a in addrs.get(vpn_if, [])
                    if ipaddress.ip_address(a["local"]) in vpn_net]
            if not mine:
                violations.append(_v("vpn_address", "an address in %s" % vpn_net,
                                     [a["local"] for a in addrs.get(vpn_if, [])] or "none",
                                     vpn_if))
        via = [r for r in model["routes"] if r["dst"] == str(vpn_net)]
        if not any(r["dev"] == vpn_if for r in via):
            violations.append(_v("vpn_route", "%s dev %s" % (vpn_net, vpn_if),
                                 ["%s dev %s" % (r["dst"], r["dev"]) for r in via] or "no route"))
    fl_if = opts.get("flannel_interface") or "flannel.1"
    underlay = opts.get("flannel_underlay")
    if underlay == "default":
        underlay = default_route_dev(model)
    fl = links.get(fl_if)
    check_flannel = bool(underlay)
    if check_flannel and fl is None:
        violations.append(_v("flannel_exists", "interface %s" % fl_if, "missing", fl_if))
    elif fl is not None and check_flannel:
        vx = fl.get("vxlan") or {}
        if fl.get("kind") != "vxlan":
            violations.append(_v("flannel_kind", "vxlan", fl.get("kind"), fl_if))
        if vx.get("id") != opts.get("flannel_vni", 1):
            violations.append(_v("flannel_vni", opts.get("flannel_vni", 1), vx.get("id"), fl_if))
        if vx.get("port") not in (None, opts.get("flannel_port", 8472)):
            violations.append(_v("flannel_port", opts.get("flannel_port", 8472), vx.get("port"),
                                 fl_if))
        if underlay:
            local_addrs = [a["local"] for a in addrs.get(underlay, [])]
            if underlay not in links:
                violations.append(_v("flannel_underlay", "underlay interface %s" % underlay,
                                     "missing", fl_if))
            elif vx.get("local") not in local_addrs:
                violations.append(_v("flannel_underlay",
                                     "VXLAN local address on %s (%s)"
                                     % (underlay, ", ".join(local_addrs) or "no address"),
                                     "local %s (dev %s)" % (vx.get("local"), vx.get("dev")),
                                     fl_if))
            if opts.get("check_mtu", True) and underlay in links and fl.get("mtu") and \
                    links[underlay].get("mtu"):
                limit = links[underlay]["mtu"] - opts.get("vxlan_overhead", 50)
                if fl["mtu"] > limit:
                    violations.append(_v("flannel_mtu", "<= %d (%s mtu %d - %d)"
                                         % (limit, underlay, links[underlay]["mtu"],
                                            opts.get("vxlan_overhead", 50)), fl["mtu"], fl_if))
    by_dst = {}  # one pass over the routes: a node checks every other node's subnet
    for r in model["routes"]:
        by_dst.setdefault(r["dst"], []).append(r)
    for cidr in opts.get("peer_pod_cidrs") or []:
        net = ipaddress.ip_network(cidr, strict=False)
        want = "%s via %s dev %s onlink" % (net, net.network_address, fl_if)
        found = by_dst.get(str(net), [])
        good = [r for r in found if r["dev"] == fl_if and "onlink" in r["flags"] and
                r["gateway"] == str(net.network_address)]
        if not good:
            violations.append(_v("peer_pod_route", want, [
                "%s via %s dev %s %s" % (r["dst"], r["gateway"], r["dev"], " ".join(r["flags"]))
                for r in found] or "no route"))
    return violations


def check_options(opts):
    """Bad option values -> message, before anything runs on a node."""
    for key in ("vpn_cidr",):
        if opts.get(key):
            try:
                ipaddress.ip_network(opts[key], strict=False)
            except ValueError:
                return "%s %r is not a CIDR (like 10.20.0.0/24)" % (key, opts[key])
    for cidr in opts.get("peer_pod_cidrs") or []:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return "peer_pod_cidrs: %r is not a CIDR (like 172.25.1.0/24)" % cidr
    if opts.get("node_pod_cidrs") and opts.get("nodes") is None:
        return ("node_pod_cidrs needs nodes: it gives each of them the other nodes' pod CIDRs as "
                "peers; for one node set peer_pod_cidrs")
    for node, cidr in (opts.get("node_pod_cidrs") or {}).items():
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (TypeError, ValueError):
            return "node_pod_cidrs: %r of node %s is not a CIDR (like 172.25.1.0/24)" % (cidr, node)
    if opts.get("routes_for") is not None and opts.get("nodes") is None:
        return "routes_for needs nodes: one node's result always has its routes"
    if opts.get("nodes") is not None and not opts["nodes"]:
        return "nodes is empty: name the inventory hosts to check (for example cloudhop_nodes)"
    if (opts.get("settle_timeout") or 0) < 0 or opts.get("settle_interval", 0.5) <= 0:
        return ("settle_timeout must be 0 or more and settle_interval more than 0 (got %s, %s)"
                % (opts.get("settle_timeout"), opts.get("settle_interval")))
    return None


def node_options(opts, node):
    """The options of one of ``opts["nodes"]``: its peers are ``peer_pod_cidrs`` plus the pod
    CIDRs ``node_pod_cidrs`` gives the other nodes; its routes are returned when ``routes_for``
    is unset or names it."""
    mine = dict(opts)
    mine["return_routes"] = opts.get("routes_for") is None or node in opts["routes_for"]
    mine["peer_pod_cidrs"] = list(opts.get("peer_pod_cidrs") or []) + [
        cidr for name, cidr in sorted((opts.get("node_pod_cidrs") or {}).items())
        if name != node]
    return mine


def settling(result):
    """Whether a node's result may still settle: it answered, and lacks only routes to other
    nodes' pod subnets, which flannel adds once it sees a new node's lease (any other failed
    check is final)."""
    violations = result.get("violations") or []
    return bool(violations) and all(v["check"] == "peer_pod_route" for v in violations)


def summary(model, routes=True):
    """Structured facts for the result: interfaces, the default route, VXLAN settings, and the
    routes unless ``routes`` is false (a node has a route to every other node's pod subnet: at
    100 nodes, 100 results of 100 routes each cost the controller more than the check)."""
    default = next(({"dev": r["dev"], "gateway": r["gateway"]} for r in model["routes"]
                    if r["dst"] == "default"), None)
    out = {"interfaces": dict((name, dict(link, addresses=model["addrs"].get(name, [])))
                              for name, link in model["links"].items()),
           "default_route": default,
           "vxlan": dict((name, link["vxlan"]) for name, link in model["links"].items()
                         if link.get("vxlan"))}
    if routes:
        out["routes"] = model["routes"]
    return out
