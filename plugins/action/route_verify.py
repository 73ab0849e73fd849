# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""route_verify: one raw command on the node, parsing and judging on the controller.

Nodes may have no Python (Flatcar), and a module sweep costs far more than one SSH command per
node, so nothing is copied to the node: ``ip`` prints its state and
``module_utils/netcheck.py`` parses and judges it here. With ``nodes`` the command runs on all
of them at once (``plugin_utils/fanout.py``), and nodes short only of peer pod routes are
checked again for ``settle_timeout``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.netcheck import (
    COMMAND, COMMAND_TEXT, ROUTE_VERIFY_SPEC, ParseError, check_options, judge, node_options,
    parse_output, settling, summary, violation_text)
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.fanout import NodeError
from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.raw_check import (
    RawCheckAction)


def verdict(opts, rc, out, err, text=False):
    """One node's result from its command's output. None when the JSON listings could not be
    read and the text ones should be asked for (an iproute2 without -j: old or busybox)."""
    try:
        if rc != 0:
            raise ParseError(err or "rc %s" % rc)
        model = parse_output(out)
    except ParseError as exc:
        if not text:
            return None
        if rc != 0:
            return dict(failed=True, rc=rc, msg="cannot read the node's network state with ip: %s"
                        % (err or out or "").strip()[:500])
        return dict(failed=True, msg="cannot parse the node's ip output: %s" % exc)
    violations = judge(model, opts)
    res = dict(ok=not violations, violations=violations,
               network=summary(model, routes=opts.get("return_routes", True)))
    if violations and opts["fail_on_violation"]:
        res["failed"] = True
        res["msg"] = "%d network check(s) failed: %s" % (len(violations), "; ".join(
            violation_text(v) for v in violations))
    return res


class ActionModule(RawCheckAction):
    ARGUMENT_SPEC = ROUTE_VERIFY_SPEC

    def check(self, args, task_vars, result):
        problem = check_options(args)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        if args["nodes"] is not None:
            return self.check_nodes(args, task_vars, result)
        res = verdict(args, *self.raw(COMMAND))
        if res is None:
            res = verdict(args, *self.raw(COMMAND_TEXT), text=True)
        result.update(res)
        return result

    def check_nodes(self, args, task_vars, result):
        nodes = list(dict.fromkeys(args["nodes"]))
        opts = dict((n, node_options(args, n)) for n in nodes)
        items, problem = self.fan_out(task_vars, nodes, lambda fan, todo: self._sweep(
            fan, todo, opts), settling, args["settle_timeout"], args["settle_interval"])
        if problem:
            result.update(failed=True, msg=problem)
            return result
        result["results"] = items
        result["ok"] = all(i.get("ok") for i in items)
        problems = ["%s: %s" % (i["item"], i["msg"]) for i in items if i.get("failed")]
        if args["fail_on_unreachable"]:
            problems += ["%s: did not answer over SSH: %s" % (i["item"], i["msg"])
                         for i in items if i.get("ssh_unreachable")]
        if problems:
            result["failed"] = True
            result["msg"] = "route_verify failed on %d of %d nodes: %s" % (
                len(problems), len(nodes), " | ".join(problems))
        return result

    @staticmethod
    def _sweep(fan, nodes, opts):
        """{node: result} of one run on ``nodes``, the text listings asked of those that need
        them."""
        out, text = {}, []
        for node, got in fan.run(COMMAND, nodes).items():
            out[node] = got.result() if isinstance(got, NodeError) else verdict(opts[node], *got)
            if out[node] is None:
                text.append(node)
        for node, got in (fan.run(COMMAND_TEXT, text).items() if text else ()):
            out[node] = got.result() if isinstance(got, NodeError) else \
                verdict(opts[node], *got, text=True)
        return out
