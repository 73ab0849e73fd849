# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""reachability_matrix: each node pings its peers with one raw command; the rows of all nodes
in the play are assembled into the N x N matrix on the controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.matrix import (
    MATRIX_SPEC, check_targets, parse_probe, probe_command, probe_list)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super(ActionModule, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=MATRIX_SPEC)
        problem = check_targets(args["targets"], args["kinds"])
        if problem:
            result.update(failed=True, msg=problem)
            return result
        me = task_vars.get("inventory_hostname")
        if me not in [t["name"] for t in args["targets"]]:
            result.update(failed=True, msg="%s is not in targets; every node of the play must "
                                           "be a target (name = inventory_hostname)" % me)
            return result
        probes = probe_list(args["targets"], me, args["kinds"])
        res = self._low_level_execute_command(
            probe_command(probes, args["count"], args["timeout"]))
        if res.get("rc") != 0:
            result.update(failed=True, rc=res.get("rc"),
                          msg="the probe command failed on %s: %s"
                          % (me, (res.get("stderr") or "").strip()[:500]))
            return result
        row = parse_probe(res.get("stdout", ""), probes)
        unanswered = ["%s %s (%s)" % (node, kind, ip)
                      for node, kind, ip in probes if not row[node][kind]]
        result.update(changed=False, row=row, unanswered=unanswered)
        if unanswered and args["fail_on_unreachable"]:
            result.update(failed=True, msg="%s cannot reach: %s" % (me, ", ".join(unanswered)))
        return result
