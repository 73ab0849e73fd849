# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""machine-controller MachineDeployments: render one for a target cloud, judge its rollout."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import time

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import k8s_names
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, dig, merge_patch_apply)

API_VERSION = "cluster.k8s.io/v1alpha1"
NAMESPACE = "kube-system"
REQUIRED_SPEC = {
    "aws": ("region", "availabilityZone", "instanceType"),
    "gce": ("zone", "machineType"),
}


def check_name(name, option="name"):
    # a DNS-1123 label: the name is also the value of the MachineSets' and Machines' name label
    if not name or k8s_names.problems("dns1123-label", name):
        raise MigrationError("%s %r is not a valid MachineDeployment name (lower-case letters, "
                             "digits and '-', at most 63 characters)" % (option, name))


def cluster_tags(provider, cluster_id, tags):
    """Provider tags with the cluster's tag added, as the clouds' controllers look for it."""
    if provider == "aws":
        out = dict(tags or {})
        out.setdefault("kubernetes.io/cluster/%s" % cluster_id, "")
        return out
    out = list(tags or [])
    if "kubernetes-cluster-%s" % cluster_id not in out:
        out.append("kubernetes-cluster-%s" % cluster_id)
    return out


def render(source, name, provider, cloud_spec, cluster_id, replicas, project_id=None,
           operating_system=None):
    """A MachineDeployment for ``provider`` that keeps the source's OS, kubelet version,
    sshPublicKeys and labels, with its own name, selector and replicas, unpaused."""
    if provider not in REQUIRED_SPEC:
        raise MigrationError("provider %r is not supported; use aws or gce" % provider)
    missing = [k for k in REQUIRED_SPEC[provider] if not (cloud_spec or {}).get(k)]
    if missing:
        raise MigrationError("cloud_provider_spec lacks %s for a %s MachineDeployment; add them "
                             "(machine-controller spelling, e.g. %s)"
                             % (", ".join(missing), provider, REQUIRED_SPEC[provider][0]))
    src_spec = source.get("spec") or {}
    src_value = dig(src_spec, "template", "spec", "providerSpec", "value") or {}
    if not src_value:
        raise MigrationError("MachineDeployment %s has no spec.template.spec.providerSpec.value; "
                             "choose a machine-controller MachineDeployment as source"
                             % source["metadata"]["name"])
    spec = copy.deepcopy(src_spec)
    spec.pop("paused", None)
    spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": {"name": name}}
    tmpl_meta = copy.deepcopy(dig(spec, "template", "metadata") or {})
    tmpl_meta["labels"] = dict(tmpl_meta.get("labels") or {}, name=name)
    spec["template"]["metadata"] = tmpl_meta
    mspec = spec["template"]["spec"]
    labels = dict(dig(mspec, "metadata", "labels") or {})
    labels["system/cluster"] = cluster_id
    if project_id:
        labels["system/project"] = project_id
    mspec.setdefault("metadata", {})["labels"] = labels
    cps = copy.deepcopy(cloud_spec)
    cps["tags"] = cluster_tags(provider, cluster_id, cps.get("tags"))
    value = {"cloudProvider": provider, "cloudProviderSpec": cps,
             "operatingSystem": operating_system or src_value.get("operatingSystem"),
             "operatingSystemSpec": copy.deepcopy(src_value.get("operatingSystemSpec") or {}),
             "sshPublicKeys": list(src_value.get("sshPublicKeys") or [])}
    mspec["providerSpec"] = {"value": value}
    meta = {"name": name, "namespace": source["metadata"].get("namespace", NAMESPACE)}
    for key in ("labels", "annotations"):
        if source["metadata"].get(key):
            meta[key] = copy.deepcopy(source["metadata"][key])
    return {"apiVersion": API_VERSION, "kind": "MachineDeployment", "metadata": meta,
            "spec": spec}


def update_patch(live, want):
    """Merge patch bringing the live MD's spec (and labels/annotations) to ``want``, or None."""
    patch = {"spec": want["spec"]}
    for key in ("labels", "annotations"):
        if want["metadata"].get(key):
            patch.setdefault("metadata", {})[key] = want["metadata"][key]
    if "paused" in (live.get("spec") or {}) and "paused" not in want["spec"]:
        patch["spec"] = dict(want["spec"], paused=None)
    merged = merge_patch_apply(live, patch)
    if merged["spec"] == live.get("spec") and merged["metadata"] == live["metadata"]:
        return None
    return patch


def owned_by(objs, owner):
    uid = owner["metadata"].get("uid")
    return [o for o in objs if any(r.get("uid") == uid
                                   for r in o["metadata"].get("ownerReferences") or [])]


def node_ready(node):
    for cond in dig(node, "status", "conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def rollout(md, machinesets, machines, nodes):
    """Progress of a MachineDeployment: its machines, their nodes, and machine errors."""
    mine = owned_by(machines, md) + [m for ms in owned_by(machinesets, md)
                                     for m in owned_by(machines, ms)]
    by_name = dict((n["metadata"]["name"], n) for n in nodes)
    out = {"machines": [], "ready": [], "errors": []}
    for m in mine:
        name = m["metadata"]["name"]
        st = m.get("status") or {}
        node = dig(st, "nodeRef", "name")
        out["machines"].append(name)
        if st.get("errorReason") or st.get("errorMessage"):
            out["errors"].append({"machine": name, "reason": st.get("errorReason"),
                                  "message": st.get("errorMessage")})
        if node and node in by_name and node_ready(by_name[node]) and \
                not m["metadata"].get("deletionTimestamp"):
            out["ready"].append(node)
    out["ready"].sort()
    out["machines"].sort()
    return out


def wait_ready(kube, md, count, timeout, interval=0.5):
    name = md["metadata"]["name"]
    ns = md["metadata"]["namespace"]
    start = time.time()
    while True:
        state = rollout(md, kube.list(API_VERSION, "MachineSet", ns),
                        kube.list(API_VERSION, "Machine", ns), kube.list("v1", "Node"))
        state["waited"] = round(time.time() - start, 2)
        if state["errors"]:
            first = state["errors"][0]
            raise MigrationError(
                "MachineDeployment %s/%s: machine %s reports %s: %s. For a provider mismatch, "
                "switch the cluster's cloud first (cloudhop.k8s_migration.cluster_cloud)"
                % (ns, name, first["machine"], first["reason"], first["message"]),
                progress=state)
        if len(state["ready"]) >= count:
            return state
        if time.time() - start >= timeout:
            raise MigrationError(
                "MachineDeployment %s/%s: %d of %d nodes Ready after %ss (machines: %s); check "
                "the machine-controller logs or raise wait_timeout"
                % (ns, name, len(state["ready"]), count, timeout,
                   ", ".join(state["machines"]) or "none"), progress=state)
        time.sleep(interval)
