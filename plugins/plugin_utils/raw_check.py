# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Base of the node-side checks that run one raw command and judge on the controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase


class RawCheckAction(ActionBase):
    """Read-only (runs in check mode), nothing copied to the node, options validated first.

    Subclasses set ``ARGUMENT_SPEC`` and implement ``check(args, task_vars, result)``, which
    returns a message for bad options (or None) and then runs ``self.raw(command)``.
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
        res = self._low_level_execute_command(command)
        return res.get("rc"), res.get("stdout", ""), res.get("stderr", "")
