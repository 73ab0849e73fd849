"""Helpers the API server, the controllers and the data plane share: timestamps as the API
serializes them, JSON copies, and kube's pod and node utilities (podutil.GetPodReadyCondition,
IsPodAvailable, node readiness, taints and tolerations, a node's InternalIP)."""

import datetime
import json
import random
import time


def now_iso(offset=0.0):
    ts = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def dc(obj):
    """Deep copy of JSON data (faster than copy.deepcopy for plain JSON)."""
    return json.loads(json.dumps(obj))


def ready_condition(pod):
    """The pod's Ready condition (podutil.GetPodReadyCondition), or None."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def pod_ready(pod):
    return (ready_condition(pod) or {}).get("status") == "True"


def pod_available(pod, min_ready_seconds=0, now=None):
    """kube's podutil.IsPodAvailable: Ready, and Ready for at least ``min_ready_seconds`` by the
    Ready condition's lastTransitionTime (whole seconds, as the API serializes it)."""
    if not pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    try:
        since = parse_iso(ready_condition(pod)["lastTransitionTime"])
    except (KeyError, TypeError, ValueError):
        return False
    return since + min_ready_seconds < (time.time() if now is None else now)


def name_suffix(n=5):
    return "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _i in range(n))


def pod_active(pod):
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def node_ready(node):
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def tolerates(tolerations, taint):
    for t in tolerations or []:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t.get("key") == taint["key"]):
            return True
        if t.get("key") == taint["key"] and t.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_taints(node):
    taints = list((node.get("spec") or {}).get("taints") or [])
    if (node.get("spec") or {}).get("unschedulable"):
        taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
    if not node_ready(node):
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
    return taints


def internal_ip(node):
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP":
            return a.get("address")
    return None
