# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``kubectl rollout restart`` and ``kubectl rollout status`` for DaemonSets, Deployments and
StatefulSets, with the wait on a watch.

The restart sets the pod template's ``kubectl.kubernetes.io/restartedAt`` annotation (what
kubectl does), so the controller rolls every pod. The wait watches the object from the
resourceVersion the patch returned and stops at the first event whose object is rolled out,
by kubernetes.core's own readiness definitions (``waiter.RESOURCE_PREDICATES``): it reacts to
the controller's status update, not to the next tick of a poll. A watch the server ends
(timeoutSeconds) is opened again from the last resourceVersion seen; a 410 Gone (that version
is no longer in the server's window) reads the object afresh and watches from there, as
client-go's informers do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import time

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.k8s_names import (
    MIN_READY_BEFORE, RESTARTED_AT)

KINDS = ("DaemonSet", "Deployment", "StatefulSet")
WATCH_CHUNK = 60  # seconds one watch request may stay open (timeoutSeconds)


class Gone(Exception):
    """The watch's resourceVersion is older than the server keeps (HTTP 410)."""

# MIN_READY_BEFORE: the object's own minReadySeconds while a restart paces it ("" = unset), so
# the restore (also of a run resumed after a kill) puts back the value from before the first
# paced restart


def restart_patch(restarted_at, obj=None, min_ready_seconds=None):
    """The restart's merge patch. With ``min_ready_seconds``, also that ``spec.minReadySeconds``
    (the controller then replaces the next pod only once the new one has been Ready that long)
    and, unless already recorded, the object's own value in MIN_READY_BEFORE."""
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: restarted_at}}}}}
    if min_ready_seconds is not None:
        patch["spec"]["minReadySeconds"] = min_ready_seconds
        annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
        if MIN_READY_BEFORE not in annotations:
            own = ((obj or {}).get("spec") or {}).get("minReadySeconds")
            patch["metadata"] = {"annotations": {
                MIN_READY_BEFORE: "" if own is None else str(own)}}
    return patch


def restore_patch(obj):
    """The merge patch that puts back the minReadySeconds recorded in MIN_READY_BEFORE (None when
    nothing is recorded)."""
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    if MIN_READY_BEFORE not in annotations:
        return None
    own = annotations[MIN_READY_BEFORE]
    return {"metadata": {"annotations": {MIN_READY_BEFORE: None}},
            "spec": {"minReadySeconds": int(own) if own.strip() else None}}


def restarted_at_of(obj):
    meta = (((obj or {}).get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (meta.get("annotations") or {}).get(RESTARTED_AT)


def progress(obj):
    """The status figures a rollout is judged on, for messages and the result."""
    status = (obj or {}).get("status") or {}
    keep = ("observedGeneration", "desiredNumberScheduled", "updatedNumberScheduled",
            "numberReady", "numberUnavailable", "replicas", "updatedReplicas", "readyReplicas",
            "availableReplicas", "unavailableReplicas")
    out = dict((k, status[k]) for k in keep if k in status)
    out["generation"] = ((obj or {}).get("metadata") or {}).get("generation")
    return out


def wait_rolled_out(watch, get, ready, timeout, current, what, clock=time.monotonic):
    """Wait until ``ready(obj)``, from ``current`` (the object as the restart's patch returned
    it: a patch that changed nothing leaves it rolled out, and no event would come).

    watch(resource_version, seconds) -> iterable of (event type, object dict) after that version;
    it raises Gone for a 410. get() -> the object now. Returns (object, events seen, seconds).
    Raises MigrationError when the object is deleted or ``timeout`` passes, with its progress."""
    start = clock()
    deadline = start + timeout
    rv, last, events = current["metadata"]["resourceVersion"], current, 0
    if ready(current):
        return current, 0, 0.0
    while True:
        left = deadline - clock()
        if left <= 0:
            raise MigrationError(
                "%s did not finish its rollout within %s s (%s); look at its pods (kubectl "
                "rollout status, describe) and run again" % (
                    what, timeout, ", ".join("%s=%s" % kv for kv in sorted(progress(last).items()))),
                progress=progress(last))
        try:
            for etype, obj in watch(rv, int(math.ceil(min(left, WATCH_CHUNK)))):
                if etype == "BOOKMARK":
                    rv = obj["metadata"]["resourceVersion"]
                    continue
                events += 1
                if etype == "DELETED":
                    raise MigrationError("%s was deleted during its rollout" % what)
                rv, last = obj["metadata"]["resourceVersion"], obj
                if ready(obj):
                    return obj, events, round(clock() - start, 3)
                if clock() >= deadline:
                    break
        except Gone:
            last = get()
            if last is None:
                raise MigrationError("%s was deleted during its rollout" % what)
            rv = last["metadata"]["resourceVersion"]
            if ready(last):
                return last, events, round(clock() - start, 3)
