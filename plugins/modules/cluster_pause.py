#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_pause
short_description: Pause or unpause a KKP user cluster in the seed
version_added: 0.1.0
description:
  - Sets C(spec.pause) and C(spec.pauseReason) of a KKP C(Cluster) to the wanted state with a
    JSON merge patch (Cluster is a custom resource; strategic merge patches are refused).
  - While a cluster is paused the seed controllers leave its control-plane objects alone, so
    manual changes (for example to C(openvpn-server)) stay. On unpause they reconcile everything
    back, which is why callers re-check such changes after an unpause.
  - Returns the previous state so that a play can restore it.
  - With I(wait_reconciled), waits after an unpause until the seed reports the cluster reconciled
    (its reconcile conditions C(True), no C(errorReason), every C(extendedHealth) entry up and
    C(openvpn-server) rolled out).
  - Check mode asks the API server for a dry run; nothing is written and no wait happens.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - cloudhop.k8s_migration.attributes.api
  - cloudhop.k8s_migration.kkp_cluster
options:
  paused:
    description: The wanted value of C(spec.pause).
    type: bool
    required: true
  reason:
    description:
      - The wanted C(spec.pauseReason), shown to other KKP users.
      - When unset, a pause keeps the current reason and an unpause clears it.
    type: str
  wait_reconciled:
    description:
      - After unpausing (or when already unpaused), wait until the seed reports the cluster
        reconciled.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for the reconcile before failing with what is still missing.
    type: int
    default: 300
"""

EXAMPLES = r"""
- name: Pause the user cluster while the VPN server is patched
  cloudhop.k8s_migration.cluster_pause:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    paused: true
    reason: cloudhop worker migration
  register: pause

- name: Unpause and wait for the seed to reconcile
  cloudhop.k8s_migration.cluster_pause:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    paused: false
    wait_reconciled: true
    wait_timeout: 600

- name: Put back what it was before the play
  cloudhop.k8s_migration.cluster_pause:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    paused: "{{ pause.previous.pause }}"
    reason: "{{ pause.previous.pause_reason }}"
"""

RETURN = r"""
conflicts:
  description:
    - How many times another writer changed an object between this task's read and write
      (409 Conflict), after which the task read it again and redid its change. A warning
      names the objects.
  returned: when not zero
  type: int
  sample: 1
api_retries:
  description:
    - How many API requests failed transiently (429, 5xx, timeout, refused connection) and
      passed on a retry with backoff. A warning lists them.
  returned: when not zero
  type: int
  sample: 2
api_version:
  description: apiVersion of the Cluster kind the seed serves (found by discovery).
  returned: always
  type: str
  sample: kubermatic.k8c.io/v1
previous:
  description: C(spec.pause) and C(spec.pauseReason) before this task.
  returned: always
  type: dict
  sample: {"pause": false, "pause_reason": ""}
current:
  description: The state after this task (in check mode, what the dry run returned).
  returned: always
  type: dict
  sample: {"pause": true, "pause_reason": "cloudhop worker migration"}
reconciled:
  description: Whether the seed reported the cluster reconciled (only with I(wait_reconciled)).
  returned: when wait_reconciled and not in check mode
  type: bool
  sample: true
waited:
  description: Seconds spent waiting for the reconcile.
  returned: when wait_reconciled and not in check mode
  type: float
  sample: 1.5
diff:
  description: C(spec.pause) and C(spec.pauseReason) before and after.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"pause": false}, "after": {"pause": true}}
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.args import KKP_CLUSTER_ARG_SPEC
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kkp_cluster import (
    get_cluster, pause_patch, pause_state, refuse_deleting, wait_reconciled)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kube import KubeModule, retry_on_conflict


def run(mod):
    p = mod.params

    def attempt():
        api_version, cluster = get_cluster(mod.kube, p["cluster"], p["api_group"])
        patch = pause_patch(cluster, p["paused"], p["reason"])
        after = cluster
        if patch is not None:
            refuse_deleting(cluster, "pause" if p["paused"] else "unpause")
            after = mod.kube.merge_patch(api_version, "Cluster", p["cluster"], patch,
                                         resource_version=cluster["metadata"]["resourceVersion"])
        return api_version, pause_state(cluster), patch, after

    api_version, previous, patch, after = retry_on_conflict(
        mod.kube, "Cluster %s" % p["cluster"], attempt)
    result = {"changed": patch is not None, "api_version": api_version, "previous": previous,
              "current": pause_state(after)}
    if mod.diff_mode:
        result["diff"] = {"before": previous, "after": result["current"]}
    if p["wait_reconciled"] and not p["paused"] and not mod.check_mode:
        dummy, result["waited"] = wait_reconciled(mod.kube, api_version, p["cluster"],
                                                  p["wait_timeout"])
        result["reconciled"] = True
    return result


def main():
    spec = dict(KKP_CLUSTER_ARG_SPEC)
    spec.update(paused={"type": "bool", "required": True}, reason={"type": "str"},
                wait_reconciled={"type": "bool", "default": False},
                wait_timeout={"type": "int", "default": 300})
    KubeModule(spec, retry_counts=True).run(run)


if __name__ == "__main__":
    main()
