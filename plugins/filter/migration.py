# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the migration; each is documented in plugins/filter/<name>.yml and its logic lives
in module_utils (network, openvpn, workloads, phases, kkp_cluster, k8s_names, ingress, portable,
move_ingress), unit-tested
there."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import (
    ingress, k8s_names, kkp_cluster, move_ingress, network, openvpn, phases, portable, rbac_render,
    wireguard, workloads)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError


def _plain(value):
    """``value`` as plain dicts, lists and scalars. ansible-core 2.19 hands filters lazy
    containers that carry the templar and every variable with them; ``copy.deepcopy`` of one
    (the logic in module_utils copies what it changes) copied all of that: 10 s of CPU for
    one Ingress list in a move. Plain data costs what its size says."""
    if isinstance(value, dict):
        return dict((_plain(k), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*[_plain(a) for a in args],
                        **dict((k, _plain(v)) for k, v in kwargs.items()))
        except MigrationError as exc:
            raise AnsibleFilterError(str(exc))
    run.__name__ = func.__name__
    return run


def ingress_lb_service(service, target_cloud, mode="auto"):
    second = ingress.needs_second_service(service, mode)
    return {"name": ingress.service_name(((service or {}).get("metadata") or {}).get("name"),
                                         target_cloud, second), "second": second}


def cluster_problems(cluster, provider=None):
    return kkp_cluster.reconcile_problems(cluster or {}, provider)


def wg_hub_config(private_key, plan, port):
    return wireguard.hub_config(private_key, port, plan["slot_public_keys"],
                                plan["slot_addresses"])


def wg_assign(current, nodes, plan):
    new, added = wireguard.assign_slots(nodes, current, plan["slot_addresses"])
    return {"slots": new, "added": added}


class FilterModule(object):
    def filters(self):
        return {
            "cidr_conflicts": _wrap(network.cidr_conflicts),
            "openvpn_server_cidr": _wrap(openvpn.openvpn_server_cidr),
            "openvpn_server_args": _wrap(openvpn.openvpn_server_args),
            "openvpn_node_containers": _wrap(openvpn.openvpn_node_containers),
            "openvpn_node_volumes": _wrap(openvpn.openvpn_node_volumes),
            "mtu_budget": _wrap(network.mtu_budget),
            "probe_phase_stats": _wrap(phases.probe_phase_stats),
            "cluster_problems": _wrap(cluster_problems),
            "unavailable_workloads": _wrap(workloads.unavailable_workloads),
            "blocking_pdbs": _wrap(workloads.blocking_pdbs),
            "pdb_shortfall": _wrap(workloads.pdb_shortfall),
            "phase_windows": _wrap(phases.phase_windows),
            "fleet_summary": _wrap(phases.fleet_summary),
            "fleet_wave": _wrap(phases.fleet_wave),
            "name_problems": _wrap(k8s_names.check),
            "ingress_lb_service": _wrap(ingress_lb_service),
            "move_order": _wrap(portable.move_order),
            "moved_api_version": _wrap(portable.moved_api_version),
            "move_ingresses": _wrap(move_ingress.render_all),
            "move_ingress_problems": _wrap(move_ingress.problems_all),
            "move_ingress_paths": _wrap(move_ingress.paths),
            "rbac_for_clusters": _wrap(rbac_render.for_clusters),
            "vpn_check": _wrap(wireguard.vpn_check),
            "wg_plan": _wrap(wireguard.plan),
            "wg_hub_config": _wrap(wg_hub_config),
            "wg_assign": _wrap(wg_assign),
        }
