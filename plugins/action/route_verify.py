# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""route_verify: one raw command on the node, parsing and judging on the controller.

Nodes may have no Python (Flatcar), and a module sweep costs far more than one SSH command per
node, so nothing is copied to the node: ``ip`` prints its state and
``module_utils/netcheck.py`` parses and judges it here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.netcheck import (
    COMMAND, COMMAND_TEXT, ROUTE_VERIFY_SPEC, ParseError, check_options, judge, parse_output,
    summary, violation_text)
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.raw_check import (
    RawCheckAction)


class ActionModule(RawCheckAction):
    ARGUMENT_SPEC = ROUTE_VERIFY_SPEC

    def check(self, args, task_vars, result):
        problem = check_options(args)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        rc, out, err = self.raw(COMMAND)
        try:
            if rc != 0:
                raise ParseError(err or "rc %s" % rc)
            model = parse_output(out)
        except ParseError:
            # an iproute2 without -j (old or busybox): the text listings, one more round trip
            rc, out, err = self.raw(COMMAND_TEXT)
            if rc != 0:
                result.update(failed=True, rc=rc,
                              msg="cannot read the node's network state with ip: %s"
                              % (err or out or "").strip()[:500])
                return result
            try:
                model = parse_output(out)
            except ParseError as exc:
                result.update(failed=True, msg="cannot parse the node's ip output: %s" % exc)
                return result
        violations = judge(model, args)
        result.update(ok=not violations, violations=violations, network=summary(model))
        if violations and args["fail_on_violation"]:
            result["failed"] = True
            result["msg"] = "%d network check(s) failed: %s" % (len(violations), "; ".join(
                violation_text(v) for v in violations))
        return result
