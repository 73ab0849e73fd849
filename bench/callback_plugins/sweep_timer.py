# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark's clock for bench/route_sweep.py (not part of the collection).

Writes to ``$CLOUDHOP_SWEEP_TIMER`` a JSON object: ``task_start`` (the route_verify task started,
before its first host is queued) and ``results`` (one monotonic timestamp per host result), so
the benchmark can tell the task's own time from the playbook's start-up and play changes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: sweep_timer
type: aggregate
short_description: Timestamps of the route_verify task for bench/route_sweep.py
description:
  - Records when the route_verify task starts and when each host's result arrives.
options: {}
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sweep_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.task_start = None
        self.results = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        if task.action.endswith("route_verify") and self.task_start is None:
            self.task_start = time.monotonic()

    def _result(self, result, *_args, **_kwargs):
        if result.task.action.endswith("route_verify"):
            self.results[result.host.get_name()] = time.monotonic()

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_unreachable = _result

    def v2_playbook_on_stats(self, stats):
        with open(os.environ["CLOUDHOP_SWEEP_TIMER"], "w", encoding="utf-8") as fh:
            json.dump({"task_start": self.task_start, "results": self.results}, fh)
