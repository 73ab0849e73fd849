#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: rollout_restart
short_description: Restart a DaemonSet, Deployment or StatefulSet and wait for its rollout, on a watch
version_added: 0.1.0
description:
  - Does what C(kubectl rollout restart) does, then what C(kubectl rollout status) does. It sets
    the pod template's C(kubectl.kubernetes.io/restartedAt) annotation with a JSON merge patch,
    so the controller replaces every pod, then waits until the rollout is complete.
  - Complete means kubernetes.core's readiness of the kind (as C(kubernetes.core.k8s) with
    I(wait=true)); for a DaemonSet the controller has observed the new generation, and updated,
    ready and desired pods agree, none unavailable.
  - The wait watches the object from the resourceVersion the patch returned and ends at the
    first event that shows the rollout complete, so the next task starts right after it
    (C(kubernetes.core.k8s) checks every I(wait_sleep) seconds, at least one). A watch the server
    closes is opened again; a 410 Gone reads the object afresh.
  - Each run is a new restart (as with kubectl), so the task reports C(changed) unless the
    template already carries the same I(restarted_at).
  - Check mode asks the API server for a dry run of the patch; nothing is written and nothing is
    waited for.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - cloudhop.k8s_migration.attributes.api
options:
  kind:
    description: The kind of the workload (API group C(apps/v1)).
    type: str
    required: true
    choices: [DaemonSet, Deployment, StatefulSet]
  name:
    description: Its name.
    type: str
    required: true
  namespace:
    description: Its namespace.
    type: str
    required: true
  restarted_at:
    description:
      - The value of the annotation, by default the current time in UTC as kubectl writes it
        (RFC 3339, in seconds, for example C(2026-12-01T10:00:00Z)).
      - The same value twice restarts nothing the second time.
    type: str
  wait:
    description: Wait until the rollout is complete.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before failing with the rollout's progress.
    type: int
    default: 600
  min_ready_seconds:
    description:
      - Pace the rollout - C(spec.minReadySeconds) for its duration, so the controller replaces
        the next pod only once the new one has been Ready that long (for a DaemonSet with
        C(maxUnavailable) 1, one node at a time, this many seconds apart).
      - The object's own value is recorded in its annotation
        C(k8s-migration.cloudhop.io/min-ready-seconds-before) and put back when the rollout is
        complete or has failed; a run resumed after a kill puts back the value from before the
        first paced run.
      - Needs I(wait=true).
    type: int
"""

EXAMPLES = r"""
- name: Restart canal on every node and wait until each runs its new pod, ready
  cloudhop.k8s_migration.rollout_restart:
    kubeconfig: user.kubeconfig
    kind: DaemonSet
    namespace: kube-system
    name: canal
    wait_timeout: 600
  register: canal

- name: Restart canal node by node, each node's new pod Ready 2 s before the next one's turn
  cloudhop.k8s_migration.rollout_restart:
    kubeconfig: user.kubeconfig
    kind: DaemonSet
    namespace: kube-system
    name: canal
    min_ready_seconds: 2

- name: Show how long the rollout took
  ansible.builtin.debug:
    msg: "canal rolled out in {{ canal.waited }} s ({{ canal.watch_events }} watch events)"
"""

RETURN = r"""
restarted_at:
  description: The annotation's value set by this task.
  returned: always
  type: str
  sample: "2026-12-01T10:00:00Z"
previous_restarted_at:
  description: The annotation's value before this task (null when it had none).
  returned: always
  type: str
  sample: "2026-11-30T08:12:44Z"
generation:
  description: C(metadata.generation) after the patch (in check mode, what the dry run returned).
  returned: always
  type: int
  sample: 4
status:
  description:
    - The rollout's figures when the task ended (C(generation), C(observedGeneration) and the
      kind's pod counts).
  returned: always
  type: dict
  sample: {"generation": 4, "observedGeneration": 4, "desiredNumberScheduled": 6, "updatedNumberScheduled": 6, "numberReady": 6}
waited:
  description: Seconds from the patch to the event that showed the rollout complete.
  returned: when I(wait) is true and not in check mode
  type: float
  sample: 7.412
watch_events:
  description: Watch events of the object seen while waiting.
  returned: when I(wait) is true and not in check mode
  type: int
  sample: 14
min_ready_seconds_restored:
  description: The object's own minReadySeconds, put back after a paced rollout (null - unset).
  returned: with I(min_ready_seconds), when not in check mode
  type: int
  sample: 0
api_retries:
  description:
    - How many API requests failed transiently (429, 5xx, timeout, refused connection) and
      passed on a retry with backoff. A warning lists them.
  returned: when not zero
  type: int
  sample: 1
diff:
  description: The annotation before and after.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"restartedAt": "2026-11-30T08:12:44Z"}, "after": {"restartedAt": "2026-12-01T10:00:00Z"}}
"""

import time

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kube import (
    KubeModule, wait_ready)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.rollout import (
    KINDS, progress, restart_patch, restarted_at_of, restore_patch)

API_VERSION = "apps/v1"


def run(mod):
    p = mod.params
    kind, name, ns = p["kind"], p["name"], p["namespace"]
    what = "%s %s/%s" % (kind, ns, name)
    before = mod.kube.get(API_VERSION, kind, name, ns)
    if before is None:
        raise MigrationError("%s does not exist; check kind, namespace and name" % what)
    if p["min_ready_seconds"] is not None and (p["min_ready_seconds"] < 0 or not p["wait"]):
        raise MigrationError("min_ready_seconds must be 0 or more and needs wait: true (the "
                             "object's own value is put back after the rollout)")
    stamp = p["restarted_at"] or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    previous = restarted_at_of(before)
    after = mod.kube.merge_patch(API_VERSION, kind, name,
                                 restart_patch(stamp, before, p["min_ready_seconds"]), ns)
    restore = restore_patch(after) if not mod.check_mode else None
    try:
        result = finish(mod, kind, name, ns, what, stamp, previous, after)
    except MigrationError as exc:
        if restore is not None:  # the object's own minReadySeconds back, also after a failure
            try:
                mod.kube.merge_patch(API_VERSION, kind, name, restore, ns)
            except MigrationError as also:
                raise MigrationError("%s; putting back its minReadySeconds failed too: %s"
                                     % (exc, also))
        raise
    if restore is not None:
        mod.kube.merge_patch(API_VERSION, kind, name, restore, ns)
        result["min_ready_seconds_restored"] = restore["spec"]["minReadySeconds"]
    return result


def finish(mod, kind, name, ns, what, stamp, previous, after):
    p = mod.params
    result = {"changed": previous != stamp, "restarted_at": stamp,
              "previous_restarted_at": previous,
              "generation": (after.get("metadata") or {}).get("generation")}
    if mod.diff_mode:
        result["diff"] = {"before": {"restartedAt": previous}, "after": {"restartedAt": stamp}}
    if p["wait"] and not mod.check_mode:
        after, result["watch_events"], result["waited"] = wait_ready(
            mod.kube, API_VERSION, kind, name, ns, after, p["wait_timeout"], what)
    result["status"] = progress(after)
    return result


def main():
    KubeModule(dict(
        kind={"type": "str", "required": True, "choices": list(KINDS)},
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        restarted_at={"type": "str"},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 600},
        min_ready_seconds={"type": "int"},
    ), retry_counts=True).run(run)


if __name__ == "__main__":
    main()
