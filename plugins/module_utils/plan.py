# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning logic of the migration roles (controller side): the network plan and its
checks, the OpenVPN server's arguments, and the per-phase figures of a traffic probe.
netaddr does the CIDR work.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import time

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import k8s_names
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

try:
    import netaddr
    HAS_NETADDR = True
except ImportError:
    HAS_NETADDR = False

VXLAN_OVERHEAD = 50
VIRTUAL_NODE_NETWORK = "10.254.0.0/16"


def _net(name, value):
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
    nets = [(label, _net(label, cidr)) for label, cidr in sorted(networks.items()) if cidr]
    out = []
    for i, (la, na) in enumerate(nets):
        for lb, nb in nets[i + 1:]:
            if na.first <= nb.last and nb.first <= na.last:
                out.append("%s %s overlaps %s %s" % (la, na, lb, nb))
    return out


def openvpn_server_cidr(args):
    """The VPN network from the openvpn-server's ``--server <net> <mask>`` arguments."""
    args = list(args or [])
    for i, arg in enumerate(args):
        if arg == "--server" and i + 2 < len(args):
            return str(_net("openvpn-server --server", "%s/%s" % (args[i + 1], args[i + 2])).cidr)
    raise MigrationError("the openvpn-server container has no --server <network> <netmask> "
                         "argument; set cloudhop_vpn_cidr")


def openvpn_server_args(current, extra):
    """The server's arguments with every flag of ``extra`` present once, in the original order
    (idempotent: an argument list that has them all comes back unchanged)."""
    out = list(current or [])
    for flag in extra or []:
        if flag not in out:
            out.append(flag)
    return out


def openvpn_pushed_routes(server_args):
    """The ``route ...`` options the openvpn-server pushes (``--push "route <net> <mask>"``)."""
    args = list(server_args or [])
    return [args[i + 1] for i, arg in enumerate(args[:-1])
            if arg == "--push" and str(args[i + 1]).split()[:1] == ["route"]]


def _is_openvpn(container):
    words = list(container.get("command") or []) + list(container.get("args") or [])
    return any(str(w).rsplit("/", 1)[-1] == "openvpn" for w in words)


NODE_HOOKS_CONFIGMAP = k8s_names.NODE_HOOKS_CONFIGMAP
NODE_HOOKS_VOLUME = k8s_names.NODE_HOOKS_VOLUME
NODE_HOOKS_DIR = "/etc/cloudhop"
NODE_HOOKS_SCRIPT = "node-hooks.sh"


def openvpn_node_hooks(pod_cidr):
    """The OpenVPN options that run the node hooks (roles/vpn_overlay/files/node-hooks.sh) when
    the tunnel comes up and when the client exits: the VXLAN bridge between the host network and
    the tunnel, and the blackhole route for the pod CIDR (the soft switchover of flannel's
    underlay). The script is run by /bin/sh, so the ConfigMap volume's file mode does not
    matter."""
    cidr = str(_net("pod CIDR (cloudhop_pod_cidr)", pod_cidr).cidr)
    cmd = "/bin/sh %s/%s" % (NODE_HOOKS_DIR, NODE_HOOKS_SCRIPT)
    return ["--script-security", "2", "--up", "%s up %s" % (cmd, cidr),
            "--down", "%s down %s" % (cmd, cidr)]


def _set_option(args, option, values):
    """args with ``option values...`` present once: replaced where the option stands, else
    appended."""
    out = list(args)
    if option in out:
        i = out.index(option)
        out[i + 1:i + 1 + len(values)] = values
        return out
    return out + [option] + values


# the node-level client retries a lost server every second and at most every 5 s (OpenVPN's
# default doubles the wait after 5 tries up to 300 s: a hub back after a minute's outage would
# leave nodes without a tunnel for up to another minute)
NODE_CONNECT_RETRY = ["1", "5"]


def _with_connect_retry(args):
    out = list(args)
    if "--connect-retry" in out:
        i = out.index("--connect-retry")
        j = i + 1
        while j < len(out) and j < i + 3 and not out[j].startswith("--"):
            j += 1
        return out[:i + 1] + NODE_CONNECT_RETRY + out[j:]
    return out + ["--connect-retry"] + NODE_CONNECT_RETRY


def openvpn_readiness_probe(vpn_interface):
    """Ready while the tunnel device has its IPv4 address: the DaemonSet's rollout then means
    every node's tunnel is up, and a node whose client lost the server shows NotReady."""
    return {"exec": {"command": ["sh", "-c", "ip -4 -o addr show dev %s | grep -q inet"
                                 % vpn_interface]},
            "periodSeconds": 2, "failureThreshold": 1, "timeoutSeconds": 2}


def openvpn_node_containers(containers, server_args, pod_cidr=None, vpn_interface=None):
    """The in-cluster openvpn-client's containers, made into the node-level VPN client: every
    container privileged, and the OpenVPN process told to ignore the routes the server pushes
    for the in-cluster client (pod, service and virtual node networks). With ``pod_cidr``, the
    OpenVPN process also runs the node hooks (``openvpn_node_hooks``) from the ConfigMap volume
    ``NODE_HOOKS_VOLUME`` mounted at ``NODE_HOOKS_DIR``. With ``vpn_interface``, it is Ready
    only while that tunnel device has an address (``openvpn_readiness_probe``). A lost server
    is retried every 1 to 5 s (``NODE_CONNECT_RETRY``).

    A node needs only the VPN network itself (``10.20.0.0/24 via ... dev kube``, pushed by
    ``--server`` with ``--client-to-client``). A pushed pod-network route on every node would
    catch pod traffic whenever flannel's more specific routes are missing (flannel re-creates
    flannel.1 on every underlay change) and send it to the seed, which has no route back; a
    pushed service-network route would send host-network Service traffic through the tunnel.
    """
    if not containers:
        raise MigrationError("the in-cluster openvpn-client Deployment has no containers")
    filters = []
    for route in openvpn_pushed_routes(server_args):
        filters += ["--pull-filter", "ignore", route]
    hooks = openvpn_node_hooks(pod_cidr) if pod_cidr else []
    out, found = [], False
    for container in containers:
        new = dict(container)
        new["securityContext"] = dict(container.get("securityContext") or {}, privileged=True)
        if _is_openvpn(container):
            found = True
            args = list(container.get("args") or [])
            for i in range(0, len(filters), 3):
                triple = filters[i:i + 3]
                if not any(args[j:j + 3] == triple for j in range(len(args))):
                    args += triple
            for i in range(0, len(hooks), 2):
                args = _set_option(args, hooks[i], [hooks[i + 1]])
            new["args"] = _with_connect_retry(args)
            if vpn_interface:
                new["readinessProbe"] = openvpn_readiness_probe(vpn_interface)
            if hooks:
                mounts = [m for m in container.get("volumeMounts") or []
                          if m.get("name") != NODE_HOOKS_VOLUME]
                new["volumeMounts"] = mounts + [{"name": NODE_HOOKS_VOLUME,
                                                 "mountPath": NODE_HOOKS_DIR, "readOnly": True}]
        out.append(new)
    if not found:
        raise MigrationError("no container of the in-cluster openvpn-client Deployment runs "
                             "openvpn (command or args naming the openvpn binary)")
    return out


def openvpn_node_volumes(volumes):
    """The in-cluster client's pod volumes plus the node hooks' ConfigMap (idempotent)."""
    out = [v for v in volumes or [] if v.get("name") != NODE_HOOKS_VOLUME]
    return out + [{"name": NODE_HOOKS_VOLUME,
                   "configMap": {"name": NODE_HOOKS_CONFIGMAP, "defaultMode": 0o555}}]


def mtu_budget(underlay_mtu, tunnel_mtu, veth_mtu=None, overhead=VXLAN_OVERHEAD):
    """VXLAN over the tunnel: flannel.1 gets tunnel MTU - 50; pods must fit in it."""
    underlay_mtu, tunnel_mtu = int(underlay_mtu), int(tunnel_mtu)
    flannel = tunnel_mtu - overhead
    out = {"underlay_mtu": underlay_mtu, "tunnel_mtu": tunnel_mtu, "vxlan_overhead": overhead,
           "flannel_mtu": flannel, "pod_mtu": int(veth_mtu) if veth_mtu else None,
           "problems": []}
    if flannel < 1280:
        out["problems"].append("flannel.1 over the tunnel would get MTU %d (< 1280): raise the "
                               "tunnel's MTU (cloudhop_vpn_tunnel_mtu %d, at least %d)"
                               % (flannel, tunnel_mtu, 1280 + overhead))
    if veth_mtu and int(veth_mtu) > flannel:
        out["problems"].append(
            "canal-config veth_mtu %s is larger than flannel.1's MTU over the tunnel (%d): pods "
            "would send packets VXLAN cannot carry; set veth_mtu to %d or less, or raise "
            "cloudhop_vpn_tunnel_mtu (%d) to %d"
            % (veth_mtu, flannel, flannel, tunnel_mtu, int(veth_mtu) + overhead))
    return out


def _pct(values, q):
    values = sorted(values)
    if not values:
        return None
    return values[min(len(values) - 1, int(round(q / 100.0 * (len(values) - 1))))]


def epoch(value):
    """Epoch seconds from a number or the ledger's ``YYYY-MM-DDTHH:MM:SSZ``; None stays None."""
    if value is None or isinstance(value, (int, float)):
        return value
    try:
        return float(calendar.timegm(time.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        raise MigrationError("%r is not a time (YYYY-MM-DDTHH:MM:SSZ)" % (value,))


def _ok(rec):
    return bool(rec.get("ok")) if "ok" in rec else rec.get("status") == 200


def probe_phase_stats(records, phases):
    """Per phase figures of an external traffic probe.

    records: [{t: epoch seconds, ok: bool (or status: 200), ms: latency}], phases:
    [{name, started, finished}] (epoch seconds or ledger times). Returns [{phase, requests, failed, p50_ms, p99_ms, longest_gap_s}]; the
    longest gap is the longest time without a successful request inside the phase window.
    """
    out = []
    records = sorted(records or [], key=lambda r: r["t"])
    for ph in phases or []:
        start, end = epoch(ph.get("started")), epoch(ph.get("finished"))
        if start is None or end is None:
            continue
        inside = [r for r in records if start <= r["t"] <= end]
        ok_times = [start] + [r["t"] for r in inside if _ok(r)] + [end]
        gap = max(b - a for a, b in zip(ok_times, ok_times[1:])) if inside else None
        lat = [r["ms"] for r in inside if _ok(r) and r.get("ms") is not None]
        out.append({"phase": ph["name"], "requests": len(inside),
                    "failed": len([r for r in inside if not _ok(r)]),
                    "p50_ms": _pct(lat, 50), "p99_ms": _pct(lat, 99),
                    "longest_gap_s": round(gap, 3) if gap is not None else None})
    return out


def unavailable_workloads(resources):
    """Deployments (availableReplicas) and StatefulSets (readyReplicas) below spec.replicas,
    as ``namespace/name (have/want)``; [] when every one is fully available."""
    out = []
    for obj in resources or []:
        want = (obj.get("spec") or {}).get("replicas", 1)
        status = obj.get("status") or {}
        field = "readyReplicas" if obj.get("kind") == "StatefulSet" else "availableReplicas"
        have = status.get(field) or 0
        gen_ok = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        if have < want or not gen_ok:
            out.append("%s/%s (%d/%d)" % (obj["metadata"].get("namespace"),
                                          obj["metadata"]["name"], have, want))
    return out


def selector_matches(selector, labels):
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) selects these
    labels. An empty selector selects everything, as in a policy/v1 PodDisruptionBudget; a
    missing one (None) selects nothing."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise MigrationError("label selector operator %r is not one of In, NotIn, Exists, "
                                 "DoesNotExist" % op)
    return True


def blocking_pdbs(pdbs, pods):
    """The PodDisruptionBudgets that allow no disruption now and cover at least one of these
    pods (say, the pods still on a node whose drain timed out), as ``namespace/name (...)``
    with the budget's figures and the pods it holds."""
    out = []
    for pdb in pdbs or []:
        meta, spec, status = pdb["metadata"], pdb.get("spec") or {}, pdb.get("status") or {}
        if status.get("disruptionsAllowed", 0) > 0:
            continue
        held = sorted(p["metadata"]["name"] for p in pods or []
                      if p["metadata"].get("namespace") == meta.get("namespace") and
                      not p["metadata"].get("deletionTimestamp") and
                      selector_matches(spec.get("selector"), p["metadata"].get("labels")))
        if not held:
            continue
        rule = ("minAvailable %s" % spec["minAvailable"] if "minAvailable" in spec else
                "maxUnavailable %s" % spec.get("maxUnavailable"))
        out.append("%s/%s (%s: %s of %s pods healthy, %s needed, 0 disruptions allowed; "
                   "holds %s)" % (meta.get("namespace"), meta["name"], rule,
                                  status.get("currentHealthy", "?"),
                                  status.get("expectedPods", "?"),
                                  status.get("desiredHealthy", "?"), ", ".join(held)))
    return out


PHASES = ("preflight", "workers_pause", "seed_vpn", "vpn_overlay", "target_cloud",
          "target_workers", "ingress", "workload_move", "dns_cutover", "cleanup", "report")


def phase_windows(phases, order=PHASES):
    """The ledger's phase records in migration order, as [{name, status, started, finished,
    seconds, attempts, message}] (times as in the ledger; seconds None while unfinished)."""
    out = []
    for name in order:
        rec = (phases or {}).get(name)
        if not rec:
            continue
        start, end = epoch(rec.get("started")), epoch(rec.get("finished"))
        out.append({"name": name, "status": rec.get("status"), "started": rec.get("started"),
                    "finished": rec.get("finished"), "attempts": rec.get("attempts"),
                    "message": rec.get("message"),
                    "seconds": (end - start) if start is not None and end is not None else None})
    return out
