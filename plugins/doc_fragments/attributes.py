# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options: {}
"""

    # Modules that write Kubernetes objects through the API server.
    API = r"""
attributes:
  check_mode:
    description: Check mode asks the API server for a dry run (C(dryRun=All)); nothing is written.
    support: full
  diff_mode:
    description: Returns the changed fields before and after, secret values hidden.
    support: full
requirements:
  - kubernetes >= 24.2.0
"""

    # Node-side checks: one raw command, judged on the controller (with INFO: read-only).
    NODE_CHECK = r"""
attributes:
  action:
    description: Runs as an action plugin on the controller; the node gets one raw command.
    support: full
"""

    # Modules that only read (info modules): they run in check mode and change nothing.
    INFO = r"""
attributes:
  check_mode:
    description: Read-only; runs in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
"""
