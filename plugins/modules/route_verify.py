#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: route_verify
short_description: Check a worker node's VPN, VXLAN and pod routes against expectations
version_added: 0.1.0
description:
  - Reads a worker node's interfaces, routes and VXLAN settings with B(one) C(raw) command
    (C(ip -d -j addr; ip -j route), run by C(/bin/sh)) and parses and judges the output on the
    controller. Nodes need no Python (Flatcar works), and the cost is one SSH command per node.
  - With I(nodes), one task checks many nodes at once. The command runs on every node
    concurrently (at most C(forks) at a time) through Ansible's connection plugin for that node
    (C(ansible_connection), ssh by default) with the options of the node's own variables
    (C(ansible_host), C(ansible_user), C(ansible_ssh_private_key_file),
    C(ansible_ssh_common_args), ...) and of the configuration (C(ssh_args), ControlPersist,
    host key checking). A loop delegated to each node checks one node after another; at 100
    lab nodes that took 30 s where one parallel SSH sweep takes 9 s. Play and task variables of
    the calling play do not apply to the nodes' connections, and there is no become.
  - When the node's iproute2 has no C(-j), the text listings are parsed instead.
  - Each check is driven by an option, and is skipped when the option is unset.
  - I(vpn_cidr) - the I(vpn_interface) exists, is UP and point-to-point, has an address in
    I(vpn_cidr), and I(vpn_cidr) is routed via it.
  - I(flannel_underlay) - I(flannel_interface) is a VXLAN device with VNI I(flannel_vni) and
    port I(flannel_port) whose local (underlay) address is on I(flannel_underlay) (the host NIC
    before the overlay switch, C(kube) after), and its MTU is at most the underlay's minus
    I(vxlan_overhead).
  - I(peer_pod_cidrs) - each is routed C(<cidr> via <network address> dev flannel.1 onlink).
  - Returns the node's network as structured facts and a list of violations, each with expected
    and found. Read-only; runs in check mode too.
  - This is an action plugin; this file carries its documentation.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - cloudhop.k8s_migration.attributes.info
  - cloudhop.k8s_migration.attributes.node_check
options:
  vpn_cidr:
    description: The VPN network (for example C(10.20.0.0/24)); enables the VPN checks.
    type: str
  vpn_interface:
    description: Name of the VPN tun interface.
    type: str
    default: kube
  flannel_interface:
    description: Name of flannel's VXLAN device.
    type: str
    default: flannel.1
  flannel_vni:
    description: Expected VXLAN network identifier.
    type: int
    default: 1
  flannel_port:
    description: Expected VXLAN UDP port.
    type: int
    default: 8472
  flannel_underlay:
    description:
      - The interface whose address flannel's VXLAN must use as local address, for example
        C(kube) after the overlay switch, or C(default) for the interface of the default route.
      - Enables the flannel checks.
    type: str
  peer_pod_cidrs:
    description: Pod CIDRs of the other nodes, each expected via I(flannel_interface) onlink.
    type: list
    elements: str
    default: []
  check_mtu:
    description: Check that the VXLAN MTU fits the underlay's.
    type: bool
    default: true
  vxlan_overhead:
    description: Bytes of VXLAN encapsulation (50 for IPv4).
    type: int
    default: 50
  fail_on_violation:
    description: Fail the task when any check fails (otherwise only report).
    type: bool
    default: true
  nodes:
    description:
      - Inventory hosts to check, all at once, from this task (which then needs no
        C(delegate_to)). The result has one entry per node in C(results).
      - Unset, the task checks the host it runs on (or is delegated to).
    type: list
    elements: str
  node_pod_cidrs:
    description:
      - With I(nodes), each node's pod CIDR by node name (for example from the C(nodes)
        inventory plugin's C(node_pod_cidr)); each node is expected to route every other node's,
        in addition to I(peer_pod_cidrs).
    type: dict
    default: {}
  settle_timeout:
    description:
      - With I(nodes), how long (seconds) to check again, every I(settle_interval), the nodes
        whose only failed checks are C(peer_pod_route). Flannel adds the route to a new node's
        subnet when it sees the node's lease, so right after nodes join or flannel restarts the
        last routes may lag. Any other failed check is final at once. C(0) checks once.
    type: float
    default: 0
  settle_interval:
    description: Seconds between the checks of I(settle_timeout).
    type: float
    default: 0.5
  fail_on_unreachable:
    description:
      - With I(nodes), fail the task when a node does not answer over SSH. With C(false), such a
        node's entry is marked C(ssh_unreachable) with SSH's message, every other node is still
        checked, and the caller decides (the roles name every such node in one failure).
    type: bool
    default: true
  routes_for:
    description:
      - With I(nodes), the nodes whose entry includes their whole routing table
        (C(network.routes)); the others report C(network.default_route) only. Unset, every
        node's does. A node routes every other node's pod subnet, so at 100 nodes the full
        tables of all cost the controller more than the check.
    type: list
    elements: str
notes:
  - Needs C(ip) (iproute2) on the node; C(become) if the SSH user may not read the routes.
"""

EXAMPLES = r"""
- name: Before the overlay switch - flannel on the host NIC
  cloudhop.k8s_migration.route_verify:
    flannel_underlay: default

- name: After the switch - VPN up and flannel over it, every peer routed
  cloudhop.k8s_migration.route_verify:
    vpn_cidr: 10.20.0.0/24
    flannel_underlay: kube
    peer_pod_cidrs: "{{ groups['workers'] | difference([inventory_hostname])
      | map('extract', hostvars, 'node_pod_cidr') | list }}"
  register: routes

- name: Every node of the cluster at once, from the controller, peers from the nodes inventory
  cloudhop.k8s_migration.route_verify:
    nodes: "{{ groups['workers'] }}"
    node_pod_cidrs: "{{ dict(groups['workers'] | zip(groups['workers'] | map('extract', hostvars, 'node_pod_cidr'))) }}"
    vpn_cidr: 10.20.0.0/24
    flannel_underlay: kube
    settle_timeout: 30
    routes_for: []
  register: all_routes
"""

RETURN = r"""
ok:
  description: Whether every check passed (with I(nodes), on every node, and every node answered).
  returned: always
  type: bool
  sample: true
results:
  description:
    - With I(nodes), one entry per node, in the order of I(nodes) - C(item) (the node), C(ok),
      C(violations), C(network), C(attempts) (how often it was checked), and C(failed) and C(msg)
      when its checks failed. A node that did not answer over SSH has C(ssh_unreachable) and SSH's
      C(msg) instead.
  returned: with I(nodes)
  type: list
  elements: dict
  sample: [{"item": "worker-1", "ok": true, "violations": [], "attempts": 1,
            "network": {"default_route": {"dev": "kube", "gateway": null}}}]
violations:
  description: The failed checks with what was expected and what was found.
  returned: without I(nodes) (with I(nodes), in each entry of C(results))
  type: list
  elements: dict
  sample: [{"check": "flannel_underlay", "interface": "flannel.1",
            "expected": "VXLAN local address on kube (10.20.0.46)",
            "found": "local 10.2.9.219 (dev ens192)"}]
network:
  description: The node's network as parsed.
  returned: without I(nodes) (with I(nodes), in each entry of C(results))
  type: dict
  contains:
    interfaces:
      description: Interfaces by name with flags, MTU, kind, VXLAN settings and IPv4 addresses.
      type: dict
      returned: always
    default_route:
      description: The default route's C(dev) and C(gateway) (null without one).
      type: dict
      returned: always
    routes:
      description: Routes of the main table.
      type: list
      returned: unless I(routes_for) leaves the node out
    vxlan:
      description: VXLAN devices by name (C(id), C(local), C(port), C(dev)).
      type: dict
      returned: always
  sample: {"vxlan": {"flannel.1": {"id": 1, "local": "10.20.0.46", "port": 8472, "dev": "kube"}}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.netcheck import ROUTE_VERIFY_SPEC


def main():
    module = AnsibleModule(argument_spec=ROUTE_VERIFY_SPEC, supports_check_mode=True)
    module.fail_json(msg="cloudhop.k8s_migration.route_verify runs as an action plugin; call it "
                     "as a task, not as a module file")


if __name__ == "__main__":
    main()
