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
