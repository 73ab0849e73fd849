# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument-spec constants shared by modules (documented once in doc_fragments)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

KKP_CLUSTER_ARG_SPEC = {
    "cluster": {"type": "str", "required": True},
    "api_group": {"type": "str", "default": "auto",
                  "choices": ["auto", "kubermatic.k8c.io", "kubermatic.k8s.io"]},
}
