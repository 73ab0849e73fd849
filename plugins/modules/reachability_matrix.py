#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: reachability_matrix
short_description: Probe every other node's VPN address and a pod IP from each node
version_added: 0.1.0
description:
  - Runs on every node of the play (in parallel, as Ansible's forks allow). Each node pings
    every other node's VPN address and a pod IP on that node, all at once, with B(one) C(raw)
    shell command; nodes need C(ping), not Python.
  - With I(peers), each node probes a ring sample of the others instead (see there).
  - Returns the node's row. The filter C(cloudhop.k8s_migration.reachability_matrix) assembles
    the rows of all nodes into the N x N matrix with the failures named (see the examples).
  - With I(nodes), one task has every one of those nodes probe at once, through Ansible's
    connection plugin for each node with the node's own variables (as
    M(cloudhop.k8s_migration.route_verify) does with I(nodes)), and returns their rows in
    C(results).
  - Read-only; runs in check mode too.
  - This is an action plugin; this file carries its documentation.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - cloudhop.k8s_migration.attributes.info
  - cloudhop.k8s_migration.attributes.node_check
options:
  targets:
    description:
      - Every node of the play with its addresses - C(name) (the inventory hostname), C(vpn)
        (its address on the VPN, for example from M(cloudhop.k8s_migration.route_verify)) and
        C(pod) (the IP of a pod running on it).
      - A node does not probe itself.
    type: list
    elements: dict
    required: true
  kinds:
    description: Which addresses to probe.
    type: list
    elements: str
    default: [vpn, pod]
  count:
    description: Pings per address; one answer counts as reachable.
    type: int
    default: 3
  timeout:
    description: Seconds to wait for each answer.
    type: int
    default: 2
  fail_on_unreachable:
    description: Fail this node's task when it cannot reach a target (otherwise the matrix
      filter reports it).
    type: bool
    default: false
  nodes:
    description:
      - Inventory hosts that probe, all at once, from this task (which then needs no
        C(delegate_to)); each must be one of I(targets). The result has one entry per node in
        C(results).
      - Unset, the host the task runs on (or is delegated to) probes.
    type: list
    elements: str
  settle_timeout:
    description:
      - With I(nodes), how long (seconds, all nodes together) a node whose probes got no answer
        probes again, every I(settle_interval). VPN clients that reconnect after a server
        restart converge within seconds. C(0) probes once.
    type: float
    default: 0
  settle_interval:
    description: Seconds between the probes of I(settle_timeout).
    type: float
    default: 1.0
  parallel:
    description:
      - At most this many pings at a time on each node, with C(xargs -P), so each one that
        ends starts the next; C(0) starts them all at once. Every probing node pings each
        target address I(count) times, and over a VPN with a hub every ping crosses the hub. At
        20 nodes, all at once is 800 pings through it within a fraction of a second, in the
        middle of the traffic the gate guards. A silent target holds its slot for I(timeout),
        so a node with many silent targets takes longer to answer.
      - The nodes need C(xargs) with C(-P) (GNU findutils, busybox) when this is below the
        number of targets.
    type: int
    default: 0
  peers:
    description:
      - Probe a ring sample instead of every pair - each node probes the I(peers) nodes that
        follow it in the order of I(targets) (cyclically, from I(peers_offset) x I(peers) places
        further), so every node probes I(peers) others and is probed by as many. The pairs left
        out are C(not sampled) in the matrix, not failures. C(0) (or I(peers) of at least the
        number of other nodes) probes every pair.
      - For a gate that runs often (after every drain), N x I(peers) pairs instead of
        N x (N - 1), and with the next I(peers_offset) each time the runs go round every pair.
    type: int
    default: 0
  peers_offset:
    description:
      - With I(peers), which sample - C(0) the nearest nodes, C(1) the next I(peers), and so
        on round the ring.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Every node probes every other node
  cloudhop.k8s_migration.reachability_matrix:
    targets:
      - {name: node-a, vpn: 10.20.0.6, pod: 172.25.0.5}
      - {name: node-b, vpn: 10.20.0.10, pod: 172.25.1.7}
  register: reach

- name: Assemble the N x N matrix
  ansible.builtin.set_fact:
    matrix: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'reach')))
      | cloudhop.k8s_migration.reachability_matrix }}"
  run_once: true

- name: The same from one task on the controller, every node at once
  cloudhop.k8s_migration.reachability_matrix:
    nodes: [node-a, node-b]
    targets:
      - {name: node-a, vpn: 10.20.0.6, pod: 172.25.0.5}
      - {name: node-b, vpn: 10.20.0.10, pod: 172.25.1.7}
    settle_timeout: 10
  register: reach_all

- name: A ring sample - each node probes 3 others, the next 3 when run with peers_offset 1
  cloudhop.k8s_migration.reachability_matrix:
    nodes: "{{ groups['nodes'] }}"
    targets: "{{ node_addresses }}"
    peers: 3
    peers_offset: "{{ drain_index }}"
  register: reach_sample

- name: Assemble that matrix
  ansible.builtin.set_fact:
    matrix_all: "{{ dict(reach_all.results | map(attribute='item') | zip(reach_all.results))
      | cloudhop.k8s_migration.reachability_matrix }}"

- name: Gate - all green
  ansible.builtin.assert:
    that: matrix.ok
    fail_msg: "unreachable: {{ matrix.failures }}"
  run_once: true
"""

RETURN = r"""
row:
  description: For every other node, per kind, whether it answered.
  returned: success
  type: dict
  sample: {"node-b": {"vpn": true, "pod": false}}
unanswered:
  description: The targets that did not answer, as C(node kind (ip)).
  returned: success
  type: list
  elements: str
  sample: ["node-b pod (172.25.1.7)"]
results:
  description:
    - With I(nodes), one entry per probing node, in the order of I(nodes) - C(item) (the node),
      C(row), C(unanswered), C(attempts) (how often it probed), and C(failed) and C(msg) when
      its probe command failed. A node that did not answer over SSH has C(ssh_unreachable) and
      SSH's C(msg) (and fails the task).
  returned: with I(nodes)
  type: list
  elements: dict
  sample: [{"item": "node-a", "row": {"node-b": {"vpn": true, "pod": true}}, "unanswered": [],
            "attempts": 1}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.matrix import MATRIX_SPEC


def main():
    module = AnsibleModule(argument_spec=MATRIX_SPEC, supports_check_mode=True)
    module.fail_json(msg="cloudhop.k8s_migration.reachability_matrix runs as an action plugin")


if __name__ == "__main__":
    main()
