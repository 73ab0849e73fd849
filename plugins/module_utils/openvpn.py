# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenVPN overlay: the VPN network and arguments of the cluster's openvpn-server, and the
node-level client rendered from the cluster's own client (containers, volumes, node hooks,
readiness probe). Pure functions over plain dicts and lists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.k8s_names import (
    NODE_HOOKS_CONFIGMAP, NODE_HOOKS_VOLUME)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.network import cidr


def openvpn_server_cidr(args):
    """The VPN network from the openvpn-server's ``--server <net> <mask>`` arguments."""
    args = list(args or [])
    for i, arg in enumerate(args):
        if arg == "--server" and i + 2 < len(args):
            return str(cidr("openvpn-server --server", "%s/%s" % (args[i + 1], args[i + 2])).cidr)
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


NODE_HOOKS_DIR = "/etc/cloudhop"


NODE_HOOKS_SCRIPT = "node-hooks.sh"


def openvpn_node_hooks(pod_cidr):
    """The OpenVPN options that run the node hooks (roles/vpn_overlay/files/node-hooks.sh) when
    the tunnel comes up and when the client exits: the VXLAN bridge between the host network and
    the tunnel, and the blackhole route for the pod CIDR (the soft switchover of flannel's
    underlay). The script is run by /bin/sh, so the ConfigMap volume's file mode does not
    matter."""
    net = str(cidr("pod CIDR (cloudhop_pod_cidr)", pod_cidr).cidr)
    cmd = "/bin/sh %s/%s" % (NODE_HOOKS_DIR, NODE_HOOKS_SCRIPT)
    return ["--script-security", "2", "--up", "%s up %s" % (cmd, net),
            "--down", "%s down %s" % (cmd, net)]


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
