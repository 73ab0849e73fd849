#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cluster_cloud
short_description: Switch a KKP cluster's cloud provider in the seed
version_added: 0.1.0
description:
  - Moves C(spec.cloud) of a KKP C(Cluster) from its current provider (for example C(vsphere)) to
    the target (C(aws) or C(gcp)) with JSON merge patches only (Cluster is a custom resource).
  - Before any change it writes a backup of the whole Cluster object (mode 0600, in a directory
    created with mode 0700), and asks the server for a dry run of the patch.
  - I(state=switched) removes the old provider block and the old provider's clean-up finalizers
    (C(kubermatic.k8c.io/cleanup-<old>-*)), sets the target block with its
    C(credentialsReference), the datacenter C(dc), the provider settings and, for AWS, the
    C(kubermatic.io/aws-region) annotation.
  - I(state=restored) puts C(spec.cloud), the region annotation and the provider clean-up
    finalizers back from a backup this module wrote (I(restore_from)); for a rollback.
  - I(state=source_credentials_removed) only nulls the current provider's credentials
    (C(username), C(password), C(credentialsReference) for vSphere), the first step of the
    original procedure.
  - Refuses to run on an unpaused cluster (the seed would reconcile a half-made change) unless
    I(allow_unpaused=true), and on a cluster that is being deleted.
  - Returns what the new MachineDeployment needs, cluster ID, project ID and the target cloud spec.
  - Check mode asks the API server for a dry run and shows a diff of C(spec.cloud); no backup is
    written.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - cloudhop.k8s_migration.attributes.api
  - cloudhop.k8s_migration.kkp_cluster
options:
  provider:
    description: The target cloud provider. Required for I(state=switched).
    type: str
    choices: [aws, gcp]
  state:
    description: C(switched) moves the cluster; C(source_credentials_removed) clears the current
      provider's credentials only; C(restored) puts the cloud back from I(restore_from).
    type: str
    choices: [switched, source_credentials_removed, restored]
    default: switched
  dc:
    description: Name of the target datacenter as the KKP Seed defines it. Required for
      I(state=switched).
    type: str
  credentials_secret:
    description: Name of the credential Secret in C(kubermatic). Defaults to
      C(credential-<provider>-<cluster>), as M(cloudhop.k8s_migration.cloud_credentials) creates it.
    type: str
  aws:
    description: Target settings for I(provider=aws). Empty IDs are left for KKP to create.
    type: dict
    suboptions:
      region:
        description: The AWS region, stored in the C(kubermatic.io/aws-region) annotation.
        type: str
      vpc_id:
        description: C(vpcID).
        type: str
      security_group_id:
        description: C(securityGroupID).
        type: str
      route_table_id:
        description: C(routeTableID).
        type: str
      instance_profile_name:
        description: C(instanceProfileName).
        type: str
      role_arn:
        description: C(roleARN).
        type: str
  gcp:
    description: Target settings for I(provider=gcp).
    type: dict
    suboptions:
      network:
        description: C(network), for example C(global/networks/default).
        type: str
      subnetwork:
        description: C(subnetwork), for example C(regions/europe-west3/subnetworks/default).
        type: str
  backup_dir:
    description: Directory for the backup of the Cluster object (created with mode 0700).
    type: path
    required: true
  restore_from:
    description: A backup file written by this module, for I(state=restored).
    type: path
  allow_unpaused:
    description: Change an unpaused cluster. The seed may then reconcile between the steps.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Switch the cluster to AWS (paused before, unpaused after)
  cloudhop.k8s_migration.cluster_cloud:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    provider: aws
    dc: aws-eu-central-1a
    aws:
      region: eu-central-1
      vpc_id: vpc-0a1b2c3d
    backup_dir: /var/backups/cloudhop
  register: switch

- name: Show what the new MachineDeployment gets
  ansible.builtin.debug:
    var: switch.metadata
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
previous_provider:
  description: The provider before this task.
  returned: always
  type: str
  sample: vsphere
backup_path:
  description: The backup of the whole Cluster written before the change (mode 0600).
  returned: when changed and not in check mode
  type: str
  sample: /var/backups/cloudhop/cluster-x8p9sk2tzv-20261122T101500.000000Z.json
metadata:
  description: What a MachineDeployment for the target cloud needs.
  returned: always
  type: dict
  contains:
    cluster_id:
      description: The cluster ID.
      type: str
      returned: always
    project_id:
      description: The KKP project ID (label C(project-id)).
      type: str
      returned: always
    provider:
      description: The target provider.
      type: str
      returned: always
    dc:
      description: The datacenter.
      type: str
      returned: always
    region:
      description: The AWS region annotation.
      type: str
      returned: always
    cloud:
      description: The target provider's block of C(spec.cloud).
      type: dict
      returned: always
    kubelet_version:
      description: The cluster's Kubernetes version.
      type: str
      returned: always
  sample: {"cluster_id": "x8p9sk2tzv", "project_id": "k7xz5qd2wm", "provider": "aws",
           "dc": "aws-eu-central-1a", "region": "eu-central-1",
           "cloud": {"vpcID": "vpc-0a1b2c3d"}, "kubelet_version": "1.30.5"}
diff:
  description: C(spec.cloud), the region annotation and the finalizers before and after, inline
    credential values hidden.
  returned: when diff mode is on
  type: dict
  sample: {"before": {"cloud": {"dc": "vsphere-dc1"}}, "after": {"cloud": {"dc": "aws-eu-central-1a"}}}
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.args import KKP_CLUSTER_ARG_SPEC
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.backup import (
    check_backup_dir, read_backup, write_backup)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kkp_cloud import (
    check_cloud_settings, cloud_view, current_provider, machine_metadata, provider_blocks,
    remove_credentials_patch, restore_patch, switch_patch)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kkp_cluster import get_cluster, refuse_deleting
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.k8s_names import credential_secret_name
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kkp_credentials import CREDENTIALS_NAMESPACE
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kube import KubeModule, retry_on_conflict


def _attempt(mod, provider, settings):
    """Read the Cluster, compute the change from it, dry-run it, back up, write it with the
    resourceVersion read (a concurrent writer makes the server answer 409: see
    retry_on_conflict)."""
    p = mod.params
    api_version, cluster = get_cluster(mod.kube, p["cluster"], p["api_group"])
    # a rollback must work on a cluster left with zero or two provider blocks
    if p["state"] != "restored":
        source = current_provider(cluster)
    else:
        blocks = provider_blocks(cluster)
        source = blocks[0] if len(blocks) == 1 else None
    provider = provider or source
    secret = p["credentials_secret"] or credential_secret_name(provider or "", p["cluster"])
    ref = {"name": secret, "namespace": CREDENTIALS_NAMESPACE}
    if p["state"] == "switched":
        patch = switch_patch(cluster, provider, p["dc"], settings, ref, settings.get("region"))
    elif p["state"] == "restored":
        patch = restore_patch(cluster, read_backup(p["restore_from"]))
    else:
        patch = remove_credentials_patch(cluster, source)
    result = {"changed": patch is not None, "previous_provider": source}
    after = cluster
    if patch is not None:
        refuse_deleting(cluster, "change the cloud of")
        version = cluster["metadata"]["resourceVersion"]
        if not (cluster.get("spec") or {}).get("pause") and not p["allow_unpaused"]:
            raise MigrationError(
                "Cluster %s is not paused; the seed would reconcile a half-made cloud switch. "
                "Pause it first (cloudhop.k8s_migration.cluster_pause paused=true) or set "
                "allow_unpaused: true" % p["cluster"])
        if p["state"] == "switched" and mod.kube.get("v1", "Secret", secret,
                                                     CREDENTIALS_NAMESPACE) is None:
            msg = ("credential Secret %s/%s does not exist; create it first with "
                   "cloudhop.k8s_migration.cloud_credentials or set credentials_secret"
                   % (CREDENTIALS_NAMESPACE, secret))
            if not mod.check_mode:
                raise MigrationError(msg)
            mod.module.warn(msg + " (ignored in check mode: an earlier task may create it)")
        # the server's dry run first: a refused patch fails here, before the backup and the write
        dry = mod.kube.dry_run
        mod.kube.dry_run = True
        try:
            after = mod.kube.merge_patch(api_version, "Cluster", p["cluster"], patch,
                                         resource_version=version)
        finally:
            mod.kube.dry_run = dry
        if not mod.check_mode:
            result["backup_path"] = write_backup(p["backup_dir"], "cluster-" + p["cluster"],
                                                 cluster)
            after = mod.kube.merge_patch(api_version, "Cluster", p["cluster"], patch,
                                         resource_version=version)
    result.update(after=after, before=cluster)
    return result


def run(mod):
    p = mod.params
    provider = p["provider"]
    settings = (p.get(provider) if provider else None) or {}
    check_backup_dir(p["backup_dir"])
    if p["state"] == "switched":
        check_cloud_settings(provider, p["dc"], settings)
    result = retry_on_conflict(mod.kube, "Cluster %s" % p["cluster"],
                               lambda: _attempt(mod, provider, settings))
    after, cluster = result.pop("after"), result.pop("before")
    result["metadata"] = machine_metadata(after, current_provider(after))
    if mod.diff_mode:
        result["diff"] = {"before": cloud_view(cluster), "after": cloud_view(after)}
    return result


def main():
    spec = dict(KKP_CLUSTER_ARG_SPEC)
    spec.update(
        provider={"type": "str", "choices": ["aws", "gcp"]},
        state={"type": "str", "default": "switched",
               "choices": ["switched", "source_credentials_removed", "restored"]},
        dc={"type": "str"},
        credentials_secret={"type": "str", "no_log": False},
        aws={"type": "dict", "options": {
            "region": {"type": "str"}, "vpc_id": {"type": "str"},
            "security_group_id": {"type": "str"}, "route_table_id": {"type": "str"},
            "instance_profile_name": {"type": "str"}, "role_arn": {"type": "str"}}},
        gcp={"type": "dict", "options": {"network": {"type": "str"},
                                         "subnetwork": {"type": "str"}}},
        backup_dir={"type": "path", "required": True},
        restore_from={"type": "path"},
        allow_unpaused={"type": "bool", "default": False},
    )
    KubeModule(spec, retry_counts=True,
               required_if=[("state", "switched", ("dc", "provider")),
                            ("state", "restored", ("restore_from",))]).run(run)


if __name__ == "__main__":
    main()
