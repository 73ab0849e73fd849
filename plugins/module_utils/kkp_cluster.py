# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The KKP Cluster on the seed: which API group serves it, reading it, its pause, its
reconcile state (conditions, the OpenVPN server) and the wait for a reconcile.

The cloud switch is in ``kkp_cloud``, the credential Secrets in ``kkp_credentials``. The pure
functions (``pause_patch``, ``reconcile_problems``...) take and return plain dicts; the ``Kube``
calls are kept in the few functions that read or write, so unit tests reach the logic without a
cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import k8s_names
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, dig, merge_patch_apply)

KKP_GROUPS = ("kubermatic.k8c.io", "kubermatic.k8s.io")
# Conditions the seed controllers set once they reconciled a cluster (note KKP's own spelling
# of "Reconcilled" in the cloud controller's condition).
RECONCILED_CONDITIONS = ("ClusterControllerReconciledSuccessfully",
                         "CloudControllerReconcilledSuccessfully", "SeedResourcesUpToDate")


def cluster_api_version(kube, api_group="auto"):
    """apiVersion of the Cluster kind the seed serves (discovery), or a clear error."""
    served = [g for g in KKP_GROUPS if kube.serves(g + "/v1", "Cluster")]
    if api_group == "auto":
        if not served:
            raise MigrationError(
                "the seed serves no KKP Cluster API (tried %s); check that kubeconfig/context "
                "point at the seed cluster, not the user cluster" % ", ".join(
                    g + "/v1" for g in KKP_GROUPS))
        return served[0] + "/v1"
    if api_group not in served:
        raise MigrationError(
            "api_group %s: the seed does not serve %s/v1 Clusters (it serves: %s); set "
            "api_group to auto or to the group the seed serves"
            % (api_group, api_group, ", ".join(served) or "none"),
            served_groups=served)
    return api_group + "/v1"


def get_cluster(kube, name, api_group="auto"):
    """(apiVersion, Cluster) or MigrationError naming the clusters that exist."""
    if not name or k8s_names.problems("dns1123-label", name):
        raise MigrationError("cluster %r is not a valid KKP cluster ID (lower-case letters, "
                             "digits and '-'); set cluster to the Cluster's metadata.name" % name)
    api_version = cluster_api_version(kube, api_group)
    obj = kube.get(api_version, "Cluster", name)
    if obj is None:
        names = sorted(c["metadata"]["name"] for c in kube.list(api_version, "Cluster"))
        raise MigrationError(
            "Cluster %s not found in %s; the seed has: %s. Set cluster to one of them"
            % (name, api_version, ", ".join(names) or "no clusters"),
            clusters=names)
    return api_version, obj


def refuse_deleting(cluster, action):
    if dig(cluster, "metadata", "deletionTimestamp"):
        raise MigrationError(
            "Cluster %s is being deleted (deletionTimestamp %s); refusing to %s it. Wait for the "
            "deletion to finish or restore the cluster first"
            % (cluster["metadata"]["name"], cluster["metadata"]["deletionTimestamp"], action))


def pause_state(cluster):
    spec = cluster.get("spec") or {}
    return {"pause": bool(spec.get("pause")), "pause_reason": spec.get("pauseReason") or ""}


def pause_patch(cluster, pause, reason=None):
    """Merge patch that brings spec.pause/pauseReason to the wanted state, or None."""
    want = {"pause": pause}
    if reason is not None:
        want["pauseReason"] = reason
    elif not pause and (cluster.get("spec") or {}).get("pauseReason"):
        want["pauseReason"] = None  # an unpaused cluster keeps no stale reason
    patch = {"spec": want}
    if merge_patch_apply(cluster, patch) == cluster:
        return None
    return patch


def conditions(cluster):
    """status.conditions as {type: condition} for both the map (k8c.io) and list (k8s.io) forms."""
    raw = dig(cluster, "status", "conditions", default={}) or {}
    if isinstance(raw, list):
        return dict((c.get("type"), c) for c in raw if isinstance(c, dict))
    return dict(raw)


def reconcile_problems(cluster, provider=None):
    """Why the seed does not (yet) report this cluster reconciled; [] when it does."""
    problems = []
    if (cluster.get("spec") or {}).get("pause"):
        problems.append("the cluster is paused")
    conds = conditions(cluster)
    for ctype in RECONCILED_CONDITIONS:
        cond = conds.get(ctype)
        if cond is None:
            problems.append("condition %s not reported yet" % ctype)
        elif cond.get("status") != "True":
            problems.append("condition %s is %s: %s"
                            % (ctype, cond.get("status"), cond.get("message", "")))
    status = cluster.get("status") or {}
    if status.get("errorReason"):
        problems.append("status.errorReason %s: %s"
                        % (status["errorReason"], status.get("errorMessage", "")))
    for part, health in sorted((status.get("extendedHealth") or {}).items()):
        if health != "HealthStatusUp":
            problems.append("extendedHealth.%s is %s" % (part, health))
    if provider:
        if provider not in (dig(cluster, "spec", "cloud") or {}):
            problems.append("spec.cloud has no %s block" % provider)
        prefix = "kubermatic.k8c.io/cleanup-%s-" % provider
        if provider in ("aws", "gcp", "vsphere") and not any(
                f.startswith(prefix) for f in cluster["metadata"].get("finalizers") or []):
            problems.append("the %s cloud provider has not initialised yet (no %s* finalizer)"
                            % (provider, prefix))
    return problems


def openvpn_problems(kube, cluster):
    """The seed's openvpn-server (if the cluster has one) must run its latest spec."""
    if dig(cluster, "spec", "clusterNetwork", "konnectivityEnabled"):
        return []
    ns = dig(cluster, "status", "namespaceName") or "cluster-" + cluster["metadata"]["name"]
    dep = kube.get("apps/v1", "Deployment", "openvpn-server", ns)
    if dep is None:
        return []
    st = dep.get("status") or {}
    if st.get("observedGeneration") != dep["metadata"].get("generation") or \
            st.get("updatedReplicas", 0) < 1 or st.get("availableReplicas", 0) < 1:
        return ["openvpn-server in %s is not rolled out yet" % ns]
    return []


def wait_reconciled(kube, api_version, name, timeout, provider=None, interval=0.5):
    """Poll until reconcile_problems() is empty; returns (cluster, seconds waited)."""
    start = time.time()
    problems = []
    while True:
        cluster = kube.get(api_version, "Cluster", name)
        if cluster is None:
            raise MigrationError("Cluster %s disappeared while waiting for it to reconcile" % name)
        problems = reconcile_problems(cluster, provider) or openvpn_problems(kube, cluster)
        if not problems:
            return cluster, round(time.time() - start, 2)
        if time.time() - start >= timeout:
            raise MigrationError(
                "Cluster %s was not reconciled within %ss: %s. Check the seed's controllers "
                "(kubectl describe cluster %s) and raise wait_timeout if it is only slow"
                % (name, timeout, "; ".join(problems), name), problems=problems)
        time.sleep(interval)


# --- credentials -----------------------------------------------------------------------------


# --- cloud switch ----------------------------------------------------------------------------
