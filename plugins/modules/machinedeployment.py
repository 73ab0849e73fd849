#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: machinedeployment
short_description: Pause, unpause, create for a target cloud, or delete a MachineDeployment
version_added: 0.1.0
description:
  - Manages machine-controller C(MachineDeployment) objects (C(cluster.k8s.io/v1alpha1)) in the
    B(user) cluster, with JSON merge patches (they are custom resources).
  - I(state=paused) / I(state=unpaused) set C(spec.paused), which stops or resumes rollouts.
  - I(state=present) renders a MachineDeployment for a target provider from a I(source)
    MachineDeployment. It keeps the operating system, its spec, the kubelet version, the
    C(sshPublicKeys) and the labels, sets the provider spec with the cluster's tags
    (C(kubernetes.io/cluster/<id>) on AWS, C(kubernetes-cluster-<id>) on GCE), the name, the
    selector and I(replicas).
  - I(wait_ready) waits until that many Nodes of the MachineDeployment are Ready. A machine that
    reports an error (for example a provider mismatch because the cluster's cloud was not
    switched) fails the wait at once with machine-controller's message.
  - I(state=absent) deletes it; machine-controller drains the nodes (respecting
    PodDisruptionBudgets) and deletes the machines.
  - Check mode asks the API server for a dry run and does not wait.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - cloudhop.k8s_migration.attributes.api
options:
  name:
    description: Name of the MachineDeployment.
    type: str
    required: true
  namespace:
    description: Namespace of the MachineDeployments.
    type: str
    default: kube-system
  state:
    description: The wanted state.
    type: str
    choices: [paused, unpaused, present, absent]
    default: present
  source:
    description: For I(state=present), the MachineDeployment to take OS, kubelet version, SSH keys
      and labels from.
    type: str
  provider:
    description: For I(state=present), the target C(cloudProvider).
    type: str
    choices: [aws, gce]
  cloud_provider_spec:
    description:
      - For I(state=present), C(cloudProviderSpec) of the target, in machine-controller's
        spelling.
      - C(aws) needs at least C(region), C(availabilityZone) and C(instanceType) (and usually
        C(vpcId), C(subnetId), C(instanceProfile), C(securityGroupIDs), C(diskSize),
        C(diskType)); C(gce) needs C(zone) and C(machineType).
      - The cluster tag is added to C(tags).
    type: dict
  cluster_id:
    description: For I(state=present), the KKP cluster ID (for the tags and the C(system/cluster)
      label); M(cloudhop.k8s_migration.cluster_cloud) returns it.
    type: str
  project_id:
    description: The KKP project ID for the C(system/project) label; kept from the source if unset.
    type: str
  operating_system:
    description: Override the source's C(operatingSystem).
    type: str
  replicas:
    description: For I(state=present), the number of machines.
    type: int
    default: 1
  wait_ready:
    description: Wait until this many Nodes of the MachineDeployment are Ready (0 = do not wait).
    type: int
    default: 0
  wait_timeout:
    description: Seconds to wait for I(wait_ready).
    type: int
    default: 900
"""

EXAMPLES = r"""
- name: Stop rollouts of the old workers
  cloudhop.k8s_migration.machinedeployment:
    kubeconfig: user.kubeconfig
    name: to-migrate-vsphere-node
    state: paused

- name: Three AWS workers like the vSphere ones
  cloudhop.k8s_migration.machinedeployment:
    kubeconfig: user.kubeconfig
    name: aws-workers
    source: to-migrate-vsphere-node
    provider: aws
    cluster_id: x8p9sk2tzv
    cloud_provider_spec:
      region: eu-central-1
      availabilityZone: eu-central-1a
      instanceType: t3.large
      vpcId: vpc-0a1b2c3d
      subnetId: subnet-0a1b2c3d
      diskSize: 50
      diskType: gp3
    replicas: 3
    wait_ready: 3
    wait_timeout: 1200
  register: md
"""

RETURN = r"""
machinedeployment:
  description: The MachineDeployment after the task (in check mode, the dry run's answer).
  returned: when it exists
  type: dict
  sample: {"metadata": {"name": "aws-workers"}, "spec": {"replicas": 3}}
previous:
  description: C(spec.paused) and C(spec.replicas) before the task.
  returned: always
  type: dict
  sample: {"exists": true, "paused": false, "replicas": 3}
progress:
  description: Machines, Ready nodes and machine errors of the MachineDeployment.
  returned: when wait_ready > 0 and not in check mode
  type: dict
  sample: {"machines": ["aws-workers-5f9c-abcde"], "ready": ["aws-workers-5f9c-abcde"],
           "errors": [], "waited": 12.5}
diff:
  description: The MachineDeployment's spec before and after.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"paused": false}, "after": {"paused": true}}
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.machines import (
    API_VERSION, check_name, render, update_patch, wait_ready)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kube import KubeModule

KIND = "MachineDeployment"


def missing(kube, name, ns, option):
    names = sorted(m["metadata"]["name"] for m in kube.list(API_VERSION, KIND, ns))
    return MigrationError("%s: MachineDeployment %s/%s not found; the cluster has: %s"
                          % (option, ns, name, ", ".join(names) or "none"),
                          machinedeployments=names)


def run(mod):
    p = mod.params
    kube = mod.kube
    ns, name = p["namespace"], p["name"]
    check_name(name)
    if p["state"] == "present":
        for opt in ("source", "provider", "cluster_id", "cloud_provider_spec"):
            if not p[opt]:
                raise MigrationError("state=present needs %s; see the module documentation" % opt)
        check_name(p["source"], "source")
        if p["replicas"] < 0 or p["wait_ready"] > p["replicas"]:
            raise MigrationError("replicas %s / wait_ready %s: replicas must be >= 0 and "
                                 "wait_ready <= replicas" % (p["replicas"], p["wait_ready"]))
    kube.resource(API_VERSION, KIND, "machine-controller CRDs; point kubeconfig at the user "
                  "cluster")
    live = kube.get(API_VERSION, KIND, name, ns)
    previous = {"exists": live is not None,
                "paused": bool((live or {}).get("spec", {}).get("paused")),
                "replicas": (live or {}).get("spec", {}).get("replicas")}
    result = {"changed": False, "previous": previous}
    after = live
    if p["state"] in ("paused", "unpaused"):
        if live is None:
            raise missing(kube, name, ns, "name")
        want = p["state"] == "paused"
        if previous["paused"] != want:
            after = kube.merge_patch(API_VERSION, KIND, name, {"spec": {"paused": want}}, ns)
            result["changed"] = True
    elif p["state"] == "absent":
        if live is not None:
            kube.delete(API_VERSION, KIND, name, ns)
            result["changed"], after = True, None
    else:
        source = kube.get(API_VERSION, KIND, p["source"], ns)
        if source is None:
            raise missing(kube, p["source"], ns, "source")
        want = render(source, name, p["provider"], p["cloud_provider_spec"], p["cluster_id"],
                      p["replicas"], p["project_id"], p["operating_system"])
        if live is None:
            after = kube.create(API_VERSION, KIND, want, ns)
            result["changed"] = True
        else:
            patch = update_patch(live, want)
            if patch is not None:
                after = kube.merge_patch(API_VERSION, KIND, name, patch, ns)
                result["changed"] = True
        if p["wait_ready"] and not mod.check_mode:
            result["progress"] = wait_ready(kube, after, p["wait_ready"], p["wait_timeout"])
    if after is not None:
        result["machinedeployment"] = after
    if mod.diff_mode:
        result["diff"] = {"before": (live or {}).get("spec", {}),
                          "after": (after or {}).get("spec", {})}
    return result


def main():
    KubeModule(dict(
        name={"type": "str", "required": True},
        namespace={"type": "str", "default": "kube-system"},
        state={"type": "str", "default": "present",
               "choices": ["paused", "unpaused", "present", "absent"]},
        source={"type": "str"},
        provider={"type": "str", "choices": ["aws", "gce"]},
        cloud_provider_spec={"type": "dict"},
        cluster_id={"type": "str"},
        project_id={"type": "str"},
        operating_system={"type": "str"},
        replicas={"type": "int", "default": 1},
        wait_ready={"type": "int", "default": 0},
        wait_timeout={"type": "int", "default": 900},
    )).run(run)


if __name__ == "__main__":
    main()
