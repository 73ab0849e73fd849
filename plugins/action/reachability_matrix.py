# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reachability_matrix: each node pings its peers with one raw command; the rows of all nodes
are assembled into the N x N matrix on the controller (filter of the same name). With ``nodes``
every node probes at once, from one task (``plugin_utils/fanout.py``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.matrix import (
    MATRIX_SPEC, check_nodes, check_peers, check_targets, probe_command, probe_plan, row_result)
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.fanout import NodeError
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.raw_check import (
    RawCheckAction)


class ActionModule(RawCheckAction):
    ARGUMENT_SPEC = MATRIX_SPEC

    def check(self, args, task_vars, result):
        problem = check_targets(args["targets"], args["kinds"]) or (
            "parallel must be 0 (every ping at once) or more (got %d)" % args["parallel"]
            if args["parallel"] < 0 else None) or check_peers(
            args["peers"], args["peers_offset"]) or check_nodes(
            args["nodes"], args["targets"], args["settle_timeout"], args["settle_interval"])
        if problem is None and args["nodes"] is None:
            # the node this runs on: the delegated host when the task is delegated to the node
            me = self._task.delegate_to or task_vars.get("inventory_hostname")
            if me not in [t["name"] for t in args["targets"]]:
                problem = ("%s is not in targets; every probing node must be a target (name = "
                           "its inventory hostname)" % me)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        if args["nodes"] is not None:
            return self.check_nodes(args, task_vars, result)
        probes, skipped = self.plan(args, me)
        result.update(row_result(me, probes, *self.raw(probe_command(
            probes, args["count"], args["timeout"], args["parallel"])),
            args["fail_on_unreachable"], skipped))
        return result

    @staticmethod
    def plan(args, me):
        """What node ``me`` probes, and the other nodes it leaves out (``peers``)."""
        return probe_plan(args["targets"], me, args["kinds"], args["peers"], args["peers_offset"])

    def check_nodes(self, args, task_vars, result):
        nodes = list(dict.fromkeys(args["nodes"]))
        plans = dict((n, self.plan(args, n)) for n in nodes)

        def sweep(fan, todo):
            got = fan.run(lambda n: probe_command(plans[n][0], args["count"], args["timeout"],
                                                  args["parallel"]), todo)
            return dict((n, r.result() if isinstance(r, NodeError) else row_result(
                n, plans[n][0], *r, fail_on_unreachable=args["fail_on_unreachable"],
                skipped=plans[n][1])) for n, r in got.items())
        # a node whose probes got no answer probes again (VPN clients reconnecting after a
        # server restart converge within seconds), for settle_timeout, all nodes together
        items, problem = self.fan_out(task_vars, nodes, sweep, lambda r: bool(r.get(
            "unanswered")), args["settle_timeout"], args["settle_interval"])
        if problem:
            result.update(failed=True, msg=problem)
            return result
        result["results"] = items
        # a node that did not answer over SSH has no row: always a failure here
        problems = ["%s: %s" % (i["item"], i["msg"]) for i in items
                    if i.get("failed") or i.get("ssh_unreachable")]
        if problems:
            result["failed"] = True
            result["msg"] = "reachability_matrix failed on %d of %d nodes: %s" % (
                len(problems), len(nodes), " | ".join(problems))
        return result
