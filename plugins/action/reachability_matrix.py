# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reachability_matrix: each node pings its peers with one raw command; the rows of all nodes
in the play are assembled into the N x N matrix on the controller (filter of the same name)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.matrix import (
    MATRIX_SPEC, check_targets, parse_probe, probe_command, probe_list)
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.raw_check import (
    RawCheckAction)


class ActionModule(RawCheckAction):
    ARGUMENT_SPEC = MATRIX_SPEC

    def check(self, args, task_vars, result):
        problem = check_targets(args["targets"], args["kinds"])
        # the node this runs on: the delegated host when the task is delegated to the node
        me = self._task.delegate_to or task_vars.get("inventory_hostname")
        if problem is None and me not in [t["name"] for t in args["targets"]]:
            problem = ("%s is not in targets; every probing node must be a target (name = its "
                       "inventory hostname)" % me)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        probes = probe_list(args["targets"], me, args["kinds"])
        rc, out, err = self.raw(probe_command(probes, args["count"], args["timeout"]))
        if rc != 0:
            result.update(failed=True, rc=rc, msg="the probe command failed on %s: %s"
                          % (me, err.strip()[:500]))
            return result
        row = parse_probe(out, probes)
        unanswered = ["%s %s (%s)" % (node, kind, ip)
                      for node, kind, ip in probes if not row[node][kind]]
        result.update(row=row, unanswered=unanswered)
        if unanswered and args["fail_on_unreachable"]:
            result.update(failed=True, msg="%s cannot reach: %s" % (me, ", ".join(unanswered)))
        return result
