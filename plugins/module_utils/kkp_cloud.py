# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A KKP Cluster's cloud: the provider blocks of ``spec.cloud``, the merge patch that switches
it to the target provider (and the one that removes the source's credentials), the restore from
a backup, the target settings' checks and the views with secrets masked.

Pure functions over plain dicts; the modules do the reads and writes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.k8s_names import AWS_REGION_ANNOTATION
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, dig, merge_patch_apply)

# Fields that hold a provider's credentials inside spec.cloud.<provider>
CREDENTIAL_FIELDS = {
    "vsphere": ("username", "password", "credentialsReference"),
    "aws": ("accessKeyID", "secretAccessKey", "credentialsReference"),
    "gcp": ("serviceAccount", "credentialsReference"),
}


# module option -> spec.cloud.<provider> field
CLOUD_FIELDS = {
    "aws": (("vpc_id", "vpcID"), ("security_group_id", "securityGroupID"),
            ("route_table_id", "routeTableID"), ("instance_profile_name", "instanceProfileName"),
            ("role_arn", "roleARN")),
    "gcp": (("network", "network"), ("subnetwork", "subnetwork")),
}


def provider_blocks(cluster):
    """The provider blocks set in spec.cloud (everything but ``dc``)."""
    return [k for k, v in (dig(cluster, "spec", "cloud") or {}).items()
            if k != "dc" and isinstance(v, dict)]


def current_provider(cluster):
    blocks = provider_blocks(cluster)
    if len(blocks) != 1:
        raise MigrationError("Cluster %s has %d provider blocks in spec.cloud (%s); expected "
                             "exactly one. Restore it from the backup before switching"
                             % (cluster["metadata"]["name"], len(blocks), ", ".join(blocks)))
    return blocks[0]


def target_block(provider, settings, credentials_ref):
    block = {"credentialsReference": dict(credentials_ref)}
    for option, field in CLOUD_FIELDS[provider]:
        value = (settings or {}).get(option)
        block[field] = value if value is not None else ""
    return block


def remove_credentials_patch(cluster, provider):
    """Merge patch that nulls the provider's credential fields (step 3 of the original)."""
    block = dig(cluster, "spec", "cloud", provider) or {}
    cleared = dict((f, None) for f in CREDENTIAL_FIELDS.get(provider, ()) if block.get(f) not in
                   (None,))
    if not cleared:
        return None
    patch = {"spec": {"cloud": {provider: cleared}}}
    return None if merge_patch_apply(cluster, patch) == cluster else patch


def switch_patch(cluster, provider, dc, settings, credentials_ref, region=None):
    """Merge patch that moves spec.cloud to ``provider``; None when it is already there.

    Drops the old provider block and its clean-up finalizers (``kubermatic.k8c.io/cleanup-<old>-*``
    must not run against a cloud the cluster left), sets the target block, ``dc`` and, for aws,
    the region annotation.
    """
    source = current_provider(cluster)
    cloud = {"dc": dc}
    patch = {"spec": {"cloud": cloud}}
    if source != provider:
        cloud[source] = None
        cloud[provider] = target_block(provider, settings, credentials_ref)
        fins = cluster["metadata"].get("finalizers") or []
        kept = [f for f in fins if not f.startswith("kubermatic.k8c.io/cleanup-%s-" % source)]
        if kept != fins:
            patch["metadata"] = {"finalizers": kept}
    else:
        # already switched: converge the target block's fields that were given
        cloud[provider] = {"credentialsReference": dict(credentials_ref)}
        for option, field in CLOUD_FIELDS[provider]:
            if (settings or {}).get(option) is not None:
                cloud[provider][field] = settings[option]
    if provider == "aws" and region:
        patch.setdefault("metadata", {})["annotations"] = {AWS_REGION_ANNOTATION: region}
    if source == "aws" and provider != "aws" and \
            AWS_REGION_ANNOTATION in (cluster["metadata"].get("annotations") or {}):
        patch.setdefault("metadata", {})["annotations"] = {AWS_REGION_ANNOTATION: None}
    if merge_patch_apply(cluster, patch) == cluster:
        return None
    return patch


def machine_metadata(cluster, provider):
    """What a MachineDeployment for the new cloud needs from the Cluster."""
    return {"cluster_id": cluster["metadata"]["name"],
            "project_id": (cluster["metadata"].get("labels") or {}).get("project-id", ""),
            "provider": provider,
            "dc": dig(cluster, "spec", "cloud", "dc"),
            "region": (cluster["metadata"].get("annotations") or {}).get(AWS_REGION_ANNOTATION),
            "cloud": dig(cluster, "spec", "cloud", provider) or {},
            "kubelet_version": dig(cluster, "spec", "version")}


SECRET_VALUE_FIELDS = ("username", "password", "accessKeyID", "secretAccessKey", "serviceAccount")


def masked_cloud(cloud):
    """spec.cloud for diffs and results: inline credential values replaced by <hidden>."""
    out = {}
    for key, value in (cloud or {}).items():
        if isinstance(value, dict):
            out[key] = dict((k, "<hidden>" if k in SECRET_VALUE_FIELDS and v else
                             (masked_cloud(v) if isinstance(v, dict) else v))
                            for k, v in value.items())
        else:
            out[key] = value
    return out


def cloud_view(cluster):
    """The parts of a Cluster a cloud switch changes, safe to show."""
    return {"cloud": masked_cloud(dig(cluster, "spec", "cloud")),
            "aws_region": (cluster["metadata"].get("annotations") or {}).get(
                AWS_REGION_ANNOTATION),
            "finalizers": list(cluster["metadata"].get("finalizers") or [])}


AWS_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$")


def check_cloud_settings(provider, dc, settings):
    if not dc:
        raise MigrationError("dc is empty; set it to the target datacenter's name as defined in "
                             "the KKP Seed (for example aws-eu-central-1a)")
    settings = settings or {}
    if provider == "aws":
        region = settings.get("region")
        if not region:
            raise MigrationError("aws.region is required for an AWS target; set it to the "
                                 "region of the target VPC (for example eu-central-1)")
        if not AWS_REGION_RE.match(region):
            raise MigrationError("aws.region %r is not an AWS region name (like eu-central-1)"
                                 % region)
        for key, prefix in (("vpc_id", "vpc-"), ("security_group_id", "sg-"),
                            ("route_table_id", "rtb-")):
            if settings.get(key) and not settings[key].startswith(prefix):
                raise MigrationError("aws.%s %r must start with %r; leave it empty to let KKP "
                                     "create one" % (key, settings[key], prefix))


def restore_patch(cluster, backup):
    """Merge patch that puts spec.cloud, the region annotation and the provider finalizers back
    as they were in ``backup`` (a Cluster object saved by ``cluster_cloud``); None if they are."""
    if dig(backup, "metadata", "name") != cluster["metadata"]["name"] or \
            not isinstance(dig(backup, "spec", "cloud"), dict):
        raise MigrationError("the backup is not a Cluster %s object with spec.cloud; give the "
                             "file cluster_cloud wrote for this cluster"
                             % cluster["metadata"]["name"])
    want_cloud = backup["spec"]["cloud"]
    cloud = dict(want_cloud)
    for key in dig(cluster, "spec", "cloud") or {}:
        if key not in want_cloud:
            cloud[key] = None
    live_fins = cluster["metadata"].get("finalizers") or []
    old_fins = backup["metadata"].get("finalizers") or []
    # provider clean-up finalizers as in the backup; every other finalizer stays as it is now
    fins = [f for f in live_fins if not f.startswith("kubermatic.k8c.io/cleanup-") or
            f in old_fins]
    fins += [f for f in old_fins if f not in fins and f.startswith("kubermatic.k8c.io/cleanup-")]
    patch = {"spec": {"cloud": cloud}, "metadata": {
        "annotations": {AWS_REGION_ANNOTATION: (backup["metadata"].get("annotations") or {}).get(
            AWS_REGION_ANNOTATION)}}}
    if fins != live_fins:
        patch["metadata"]["finalizers"] = fins
    return None if merge_patch_apply(cluster, patch) == cluster else patch
