# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Workloads during a drain: those not fully available, and the PodDisruptionBudgets that hold
pods (a budget with no disruption allowed whose selector matches them). Pure functions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError


def unavailable_workloads(resources):
    """Deployments (availableReplicas) and StatefulSets (readyReplicas) below spec.replicas,
    as ``namespace/name (have/want)``; [] when every one is fully available."""
    out = []
    for obj in resources or []:
        want = (obj.get("spec") or {}).get("replicas", 1)
        status = obj.get("status") or {}
        field = "readyReplicas" if obj.get("kind") == "StatefulSet" else "availableReplicas"
        have = status.get(field) or 0
        gen_ok = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 0)
        if have < want or not gen_ok:
            out.append("%s/%s (%d/%d)" % (obj["metadata"].get("namespace"),
                                          obj["metadata"]["name"], have, want))
    return out


def selector_matches(selector, labels):
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) selects these
    labels. An empty selector selects everything, as in a policy/v1 PodDisruptionBudget; a
    missing one (None) selects nothing."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise MigrationError("label selector operator %r is not one of In, NotIn, Exists, "
                                 "DoesNotExist" % op)
    return True


def blocking_pdbs(pdbs, pods):
    """The PodDisruptionBudgets that allow no disruption now and cover at least one of these
    pods (say, the pods still on a node whose drain timed out), as ``namespace/name (...)``
    with the budget's figures and the pods it holds."""
    out = []
    for pdb in pdbs or []:
        meta, spec, status = pdb["metadata"], pdb.get("spec") or {}, pdb.get("status") or {}
        if status.get("disruptionsAllowed", 0) > 0:
            continue
        held = sorted(p["metadata"]["name"] for p in pods or []
                      if p["metadata"].get("namespace") == meta.get("namespace") and
                      not p["metadata"].get("deletionTimestamp") and
                      selector_matches(spec.get("selector"), p["metadata"].get("labels")))
        if not held:
            continue
        rule = ("minAvailable %s" % spec["minAvailable"] if "minAvailable" in spec else
                "maxUnavailable %s" % spec.get("maxUnavailable"))
        out.append("%s/%s (%s: %s of %s pods healthy, %s needed, 0 disruptions allowed; "
                   "holds %s)" % (meta.get("namespace"), meta["name"], rule,
                                  status.get("currentHealthy", "?"),
                                  status.get("expectedPods", "?"),
                                  status.get("desiredHealthy", "?"), ", ".join(held)))
    return out


def pdb_shortfall(pdb, name, namespace=""):
    """Why a PodDisruptionBudget does not (yet) allow its Deployment's old pods to go: '' when
    its controller has observed its current generation and counts at least the healthy pods it
    asks for (status.currentHealthy >= status.desiredHealthy); otherwise a sentence naming it
    (a missing budget - ``pdb`` None - included). A status not observed yet counts as not met."""
    what = "PodDisruptionBudget %s%s" % (namespace + "/" if namespace else "", name)
    if not pdb:
        return what + " does not exist"
    status = pdb.get("status") or {}
    meta = pdb.get("metadata") or {}
    current = int(status.get("currentHealthy") or 0)
    desired = status.get("desiredHealthy")
    observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 1)
    if observed and desired is not None and current >= int(desired):
        return ""
    return "%s has %d healthy pods of the %s it asks for%s" % (
        what, current, desired if desired is not None else "?",
        "" if observed else " (its status not yet observed)")
