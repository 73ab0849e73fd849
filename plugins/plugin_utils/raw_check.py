# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base of the node-side checks that run one raw command and judge on the controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible.plugins.action import ActionBase

from ansible_collections.cloudhop.k8s_migration.plugins.plugin_utils.fanout import NodeFanout


class RawCheckAction(ActionBase):
    """Read-only (runs in check mode), nothing copied to the node, options validated first.

    Subclasses set ``ARGUMENT_SPEC`` and implement ``check(args, task_vars, result)``, which
    refuses bad options and then runs ``self.raw(command)`` on this task's host, or
    ``self.fan_out(...)`` on many nodes at once.
    """

    TRANSFERS_FILES = False
    _requires_connection = True
    ARGUMENT_SPEC = {}

    def run(self, tmp=None, task_vars=None):
        self._supports_check_mode = True
        result = super(RawCheckAction, self).run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        result["changed"] = False
        return self.check(args, task_vars or {}, result)

    def check(self, args, task_vars, result):
        raise NotImplementedError

    def raw(self, command):
        """(rc, stdout, stderr) of one command on the node, without Python."""
        # /bin/sh whatever the login shell is; an explicit executable also spares the node the
        # external "sleep 0" Ansible appends by default
        res = self._low_level_execute_command(command, executable="/bin/sh")
        return res.get("rc"), res.get("stdout", ""), res.get("stderr", "")

    def fan_out(self, task_vars, nodes, sweep, again, timeout, interval):
        """Many nodes at once: ``sweep(fan, nodes)`` -> {node: result} of one run (its
        ``fan.run(command, nodes)`` runs a command on them all, ``plugin_utils/fanout.py``).
        Nodes whose result ``again(result)`` calls unsettled run again, every ``interval`` s,
        until ``timeout`` s have passed. Returns (results, None): one entry per node, in order,
        with ``item`` and ``attempts``, as a loop's; or (None, message) when a node is not in
        the inventory, before anything runs."""
        fan = NodeFanout(self, task_vars)
        unknown = fan.unknown(nodes)
        if unknown:
            return None, ("nodes: %s %s not in the inventory (check the nodes inventory source "
                          "and the group the list comes from)"
                          % (", ".join(unknown), "is" if len(unknown) == 1 else "are"))
        results, attempts = {}, dict.fromkeys(nodes, 0)
        deadline = time.monotonic() + timeout
        todo = nodes
        try:
            while True:
                for node in todo:
                    attempts[node] += 1
                results.update(sweep(fan, todo))
                todo = [n for n in nodes if again(results[n])]
                if not todo or time.monotonic() >= deadline:  # checked again for ``timeout``
                    break
                time.sleep(interval)
        finally:
            fan.close()
        return [dict(results[n], item=n, attempts=attempts[n], changed=False)
                for n in nodes], None
