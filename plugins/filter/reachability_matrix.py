# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: reachability_matrix
short_description: Assemble the rows of the reachability_matrix task into an N x N matrix
version_added: 0.1.0
description:
  - Takes the registered results of M(cloudhop.k8s_migration.reachability_matrix) of every node
    (a dict C(node -> result), for example from C(hostvars)) and returns the matrix with every
    failure named.
  - A node that did not report (unreachable over SSH, failed) shows as C(not probed) and counts
    as a failure.
author:
  - cloudhop contributors (@cloudhop)
options:
  _input:
    description: The registered result of the reachability_matrix task, by node name.
    type: dict
    required: true
  targets:
    description: The same I(targets) the task got, to name addresses in failures.
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: Assemble the matrix once
  ansible.builtin.set_fact:
    matrix: "{{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'reach')))
      | cloudhop.k8s_migration.reachability_matrix(targets) }}"
  run_once: true
"""

RETURN = r"""
_value:
  description:
    - C(nodes), C(matrix), C(failures) and C(ok).
    - C(matrix[from][to]) is C(ok), C(-) on the diagonal, C(not probed), C(not sampled) (a
      pair the task's I(peers) left out, not a failure), or the word C(fail) followed by the
      failing kinds (for example C(pod)).
    - Each failure has C(from), C(to), C(kind), C(address) and C(reason).
  type: dict
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.matrix import assemble


def reachability_matrix(results, targets=None):
    rows = {}
    for node, res in (results or {}).items():
        if isinstance(res, dict) and isinstance(res.get("row"), dict) and not res.get("failed"):
            rows[node] = res["row"]
        else:
            rows.setdefault(node, None)
    addresses = dict((t["name"], t) for t in targets or [])
    reported = dict((k, v) for k, v in rows.items() if v is not None)
    out = assemble(reported, addresses)
    missing = sorted(k for k, v in rows.items() if v is None)
    if missing:
        everyone = sorted(set(out["nodes"]) | set(missing))
        for src in missing:
            out["matrix"][src] = dict((dst, "-" if dst == src else "not probed")
                                      for dst in everyone)
            out["failures"].append({"from": src, "to": None, "kind": None, "address": None,
                                    "reason": "%s did not report (task failed or host "
                                              "unreachable)" % src})
        out["nodes"] = everyone
        out["ok"] = False
    return out


class FilterModule(object):
    def filters(self):
        return {"reachability_matrix": reachability_matrix}
