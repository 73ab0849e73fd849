#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: deployment_copy
short_description: Copy a Deployment and what it needs from one cluster to another
version_added: 0.1.0
description:
  - The cluster-to-cluster move's step "deploy the Deployment, deploy its Service" - reads a
    Deployment in the source cluster (I(source_kubeconfig)) and creates it in the target
    cluster (the usual connection options), with what it needs, in this order - its
    ServiceAccount (not C(default)), the ConfigMaps and Secrets its pod template names
    (volumes, projected volumes, C(envFrom), C(env[].valueFrom), C(imagePullSecrets)), the
    Services whose selector picks its pods, the PodDisruptionBudgets whose selector does, then
    the Deployment.
  - Objects are made portable - status, uid, resourceVersion, creationTimestamp, generation,
    managedFields and ownerReferences go; so do the Deployment's revision and kubectl's
    last-applied annotations, a Service's cluster IPs (a headless one stays headless), node
    ports and requested load balancer address (the target allocates its own), a ServiceAccount's token Secrets. Secrets of type
    C(kubernetes.io/service-account-token) are not copied. Images, env, probes, resources,
    labels and annotations are kept. Every object gets the annotation
    C(cloudhop.io/moved-from) naming its origin.
  - Every object is read and compared before anything is written. An object of the same name
    that already holds everything the copy says is left alone (the target's defaults are not a
    difference; the Deployment's replicas are not compared, as the move scales it); any other
    is a conflict, and the module fails naming it and the differing fields (never a Secret's
    values) without writing anything.
  - A missing object the pod template needs fails the module too, unless the reference is
    C(optional); so does a PersistentVolumeClaim volume (its data is not copied).
  - With I(wait), waits until the Deployment is available (kubernetes.core's readiness of a
    Deployment), on a watch.
  - Check mode asks the target API server for a dry run of each create; nothing is written and
    nothing is waited for.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - cloudhop.k8s_migration.attributes.api
options:
  name:
    description: The Deployment's name.
    type: str
    required: true
  namespace:
    description: Its namespace in the source cluster.
    type: str
    required: true
  target_namespace:
    description: The namespace in the target cluster (it must exist); by default I(namespace).
    type: str
  source_kubeconfig:
    description: Path of the source cluster's kubeconfig.
    type: path
    required: true
  source_context:
    description: The context of I(source_kubeconfig) to use; its current context by default.
    type: str
  source_name:
    description: A name for the source cluster in the C(cloudhop.io/moved-from) annotation.
    type: str
    default: source
  replicas:
    description: The copy's replicas; by default the source Deployment's.
    type: int
  env:
    description:
      - Values for env variables of the copy's containers (name -> value), for what differs in
        the new cluster (for example a database URI naming the new environment's members).
        Every container (and init container) that sets a variable of that name gets the value;
        a value replaces a C(valueFrom). A name no container sets fails.
      - Never logged; the diff shows C(<set by env>).
    type: dict
    default: {}
    version_added: 0.1.0
  include:
    description: Which kinds besides the Deployment to copy.
    type: list
    elements: str
    choices: [ServiceAccount, ConfigMap, Secret, Service, PodDisruptionBudget]
    default: [ServiceAccount, ConfigMap, Secret, Service, PodDisruptionBudget]
  wait:
    description: Wait until the Deployment is available in the target.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait before failing with the Deployment's progress.
    type: int
    default: 300
notes:
  - The source is only read (C(get), C(list) of the kinds above in I(namespace)); the target
    needs C(get) and C(create) of them in I(target_namespace) and C(watch) of Deployments
    (docs/rbac).
"""

EXAMPLES = r"""
- name: Move the api Deployment's objects to the new cluster
  cloudhop.k8s_migration.deployment_copy:
    source_kubeconfig: old.kubeconfig
    source_name: old-vsphere
    kubeconfig: new.kubeconfig
    namespace: shop
    name: api

- name: See what would be created (a server-side dry run in the new cluster)
  cloudhop.k8s_migration.deployment_copy:
    source_kubeconfig: old.kubeconfig
    kubeconfig: new.kubeconfig
    namespace: shop
    name: web
    replicas: 2
  check_mode: true
  diff: true
"""

RETURN = r"""
objects:
  description: Every object of the copy, in creation order, and what happened to it.
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Secret", "name": "shop-tls", "action": "unchanged"},
           {"kind": "Service", "name": "api", "action": "created"},
           {"kind": "Deployment", "name": "api", "action": "created"}]
skipped:
  description: References not copied, with why (an optional one that does not exist, a
    service-account token).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "Secret", "name": "legacy-token", "why": "type kubernetes.io/service-account-token"}]
replicas:
  description: The copy's replicas.
  returned: always
  type: int
  sample: 2
waited:
  description: Seconds from the create until the Deployment was available.
  returned: when I(wait) is true, the Deployment was created or not yet available, and not in check mode
  type: float
  sample: 6.1
diff:
  description: The objects to create (Secrets' values hidden), before (none) and after.
  returned: when diff mode is on
  type: dict
api_retries:
  description:
    - How many API requests failed transiently (429, 5xx, timeout, refused connection) and
      passed on a retry with backoff. A warning lists them.
  returned: when not zero
  type: int
  sample: 1
"""

import copy

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kube import (
    Kube, KubeModule, other_client, wait_ready)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import portable as pt

API = pt.MOVED_KINDS


def gather(src, p):
    """The source objects to copy (in creation order) and the references skipped."""
    ns, name = p["namespace"], p["name"]
    what = "Deployment %s/%s" % (ns, name)
    dep = src.get("apps/v1", "Deployment", name, ns)
    if dep is None:
        raise MigrationError("%s does not exist in the source cluster (source_kubeconfig); "
                             "check namespace and name" % what)
    template = (dep.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    wanted, skipped, missing = [dep], [], []
    refs = pt.references(template.get("spec"))
    claims = sorted(ref for kind, ref in refs if kind == "PersistentVolumeClaim")
    if claims:
        raise MigrationError("%s mounts PersistentVolumeClaim %s: its data cannot be copied with "
                             "the Deployment; move the data first (or leave this Deployment "
                             "out of the move)" % (what, ", ".join(claims)))
    for (kind, ref), optional in sorted(refs.items()):
        if kind not in p["include"]:
            continue
        obj = src.get("v1", kind, ref, ns)
        if obj is None:
            if optional:
                skipped.append({"kind": kind, "name": ref, "why": "optional, does not exist"})
            else:
                missing.append("%s %s" % (kind, ref))
            continue
        if kind == "Secret" and obj.get("type") in pt.CLUSTER_SECRET_TYPES:
            skipped.append({"kind": kind, "name": ref, "why": "type %s" % obj["type"]})
            continue
        wanted.append(obj)
    if missing:
        raise MigrationError("%s needs %s, which %s not exist in namespace %s of the source "
                             "cluster; create %s or mark the reference optional" % (
                                 what, ", ".join(missing), "does" if len(missing) == 1 else "do",
                                 ns, "it" if len(missing) == 1 else "them"))
    if "Service" in p["include"]:
        wanted += [s for s in src.list("v1", "Service", ns)
                   if pt.selects((s.get("spec") or {}).get("selector"), labels)]
    if "PodDisruptionBudget" in p["include"]:
        wanted += [b for b in src.list("policy/v1", "PodDisruptionBudget", ns)
                   if pt.pdb_selects(b, labels)]
    return dep, pt.sort_objects(wanted), skipped


def compared(obj):
    """What is compared with the target's object: a Deployment's replicas are not (the move
    scales it)."""
    if obj["kind"] != "Deployment":
        return obj
    out = dict(obj, spec=dict(obj["spec"]))
    out["spec"].pop("replicas", None)
    return out


def shown(obj, env=None):
    """An object for the diff: a Secret's values hidden, and the values given by ``env``."""
    if obj["kind"] == "Deployment" and env:
        obj = copy.deepcopy(obj)
        pod = (obj.get("spec") or {}).get("template", {}).get("spec") or {}
        for container in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            for var in container.get("env") or []:
                if var.get("name") in env:
                    var["value"] = "<set by env>"
        return obj
    if obj["kind"] != "Secret":
        return obj
    return dict(obj, data={k: "<hidden>" for k in obj.get("data") or {}},
                stringData={k: "<hidden>" for k in obj.get("stringData") or {}})


def run(mod):
    p = mod.params
    target_ns = p["target_namespace"] or p["namespace"]
    src = Kube(other_client(p["source_kubeconfig"], p["source_context"]))
    dst = mod.kube
    if dst.get("v1", "Namespace", target_ns) is None:
        raise MigrationError("namespace %s does not exist in the target cluster; create it "
                             "first (the move's preflight lists what the target needs)"
                             % target_ns)
    dep, objects, skipped = gather(src, p)
    replicas = p["replicas"] if p["replicas"] is not None else (dep.get("spec") or {}).get(
        "replicas", 1)
    if replicas < 0:
        raise MigrationError("replicas must be 0 or more")
    plan, conflicts = [], []
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        desired = pt.portable(obj, "%s/%s/%s" % (p["source_name"], p["namespace"], name),
                              target_ns, replicas if kind == "Deployment" else None,
                              p["env"] if kind == "Deployment" else None)
        existing = dst.get(API[kind], kind, name, target_ns)
        if existing is None:
            plan.append((desired, "created"))
        elif pt.contains(existing, compared(desired)):
            plan.append((desired, "unchanged"))
        else:
            conflicts.append("%s %s/%s (%s)" % (kind, target_ns, name, ", ".join(
                pt.differences(existing, compared(desired))[:5])))
    if conflicts:
        raise MigrationError(
            "the target cluster already has objects of these names that differ from the copy: "
            "%s. Nothing was written; remove or rename them, or move the Deployment to another "
            "namespace (target_namespace)" % "; ".join(conflicts), conflicts=conflicts)
    result = {"changed": any(a == "created" for _d, a in plan), "replicas": replicas,
              "skipped": skipped,
              "objects": [{"kind": d["kind"], "name": d["metadata"]["name"], "action": a}
                          for d, a in plan]}
    if mod.diff_mode:
        result["diff"] = {"before": {}, "after": {
            "%s/%s" % (d["kind"], d["metadata"]["name"]): shown(d, p["env"])
            for d, a in plan if a == "created"}}
    created = None
    for desired, action in plan:
        if action == "created":
            out = dst.create(API[desired["kind"]], desired["kind"], desired, target_ns)
            if desired["kind"] == "Deployment":
                created = out
    if p["wait"] and not mod.check_mode:
        current = created or dst.get("apps/v1", "Deployment", p["name"], target_ns)
        _obj, _events, result["waited"] = wait_ready(
            dst, "apps/v1", "Deployment", p["name"], target_ns, current, p["wait_timeout"],
            "Deployment %s/%s in the target cluster" % (target_ns, p["name"]))
    return result


def main():
    KubeModule(dict(
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        target_namespace={"type": "str"},
        source_kubeconfig={"type": "path", "required": True},
        source_context={"type": "str"},
        source_name={"type": "str", "default": "source"},
        replicas={"type": "int"},
        env={"type": "dict", "default": {}, "no_log": True},
        include={"type": "list", "elements": "str",
                 "choices": ["ServiceAccount", "ConfigMap", "Secret", "Service",
                             "PodDisruptionBudget"],
                 "default": ["ServiceAccount", "ConfigMap", "Secret", "Service",
                             "PodDisruptionBudget"]},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 300},
    ), retry_counts=True).run(run)


if __name__ == "__main__":
    main()
