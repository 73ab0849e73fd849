# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KKP seed objects: Cluster discovery, pause, reconcile state, cloud switch, credential Secrets.

The pure functions (``pause_patch``, ``reconcile_problems``, ``switch_patch``,
``credential_secret``...) take and return plain dicts; the ``Kube`` calls are kept in the few
functions that read or write, so unit tests reach the logic without a cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import re
import time

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import k8s_names
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, dig, merge_patch_apply)

KKP_GROUPS = ("kubermatic.k8c.io", "kubermatic.k8s.io")
CREDENTIALS_NAMESPACE = "kubermatic"
# Conditions the seed controllers set once they reconciled a cluster (note KKP's own spelling
# of "Reconcilled" in the cloud controller's condition).
RECONCILED_CONDITIONS = ("ClusterControllerReconciledSuccessfully",
                         "CloudControllerReconcilledSuccessfully", "SeedResourcesUpToDate")
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
AWS_REGION_ANNOTATION = k8s_names.AWS_REGION_ANNOTATION


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

credential_secret_name = k8s_names.credential_secret_name


def _b64(raw):
    if not isinstance(raw, bytes):
        raw = raw.encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


AWS_KEY_ID_RE = re.compile(r"^\w{16,128}$")


def check_aws_keys(access_key_id, secret_access_key):
    if not access_key_id:
        raise MigrationError("aws.access_key_id is empty; set it to the target account's access "
                             "key ID (e.g. from a vault)")
    if not AWS_KEY_ID_RE.match(access_key_id):
        raise MigrationError("aws.access_key_id is not an AWS access key ID (16-128 letters or "
                             "digits); check you did not pass the secret key or a quoted value")
    if not secret_access_key:
        raise MigrationError("aws.secret_access_key is empty; set it to the target account's "
                             "secret access key")
    if len(secret_access_key) < 16 or any(c.isspace() for c in secret_access_key):
        raise MigrationError("aws.secret_access_key does not look like an AWS secret key "
                             "(too short or contains white space)")


SA_REQUIRED = ("type", "project_id", "client_email", "private_key")


def parse_service_account(value, read_file=None):
    """Service-account JSON given as dict, JSON text or a file path -> (dict, canonical text)."""
    if isinstance(value, dict):
        info = value
    elif isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            info = json.loads(value)
        except ValueError as exc:
            raise MigrationError("gcp.service_account is not valid JSON (%s); pass the key file "
                                 "as downloaded from GCP" % exc.args[0].split(":")[0])
    elif isinstance(value, str) and value:
        try:
            text = read_file(value) if read_file else open(value).read()
        except (IOError, OSError) as exc:
            raise MigrationError("gcp.service_account: cannot read %s (%s); give the path of the "
                                 "service-account key file" % (value, exc.strerror or exc))
        try:
            info = json.loads(text)
        except ValueError as exc:
            raise MigrationError("gcp.service_account: %s is not valid JSON (%s); pass the key "
                                 "file as downloaded from GCP"
                                 % (value, exc.args[0].split(":")[0]))
    else:
        raise MigrationError("gcp.service_account is empty; give the key file path or its "
                             "JSON as a dict")
    if not isinstance(info, dict):
        raise MigrationError("gcp.service_account must be a JSON object, got %s"
                             % type(info).__name__)
    missing = [k for k in SA_REQUIRED if not info.get(k)]
    if missing:
        raise MigrationError("gcp.service_account lacks %s; create a key for a service account "
                             "(IAM > Service accounts > Keys > JSON)" % ", ".join(missing))
    if info["type"] != "service_account":
        raise MigrationError("gcp.service_account has type %r, not 'service_account'; user or "
                             "external-account credentials cannot run KKP" % info["type"])
    return info, json.dumps(info, sort_keys=True, separators=(",", ":"))


def credential_data(provider, params):
    """The Secret's decoded data values (what KKP reads) for the target provider."""
    if provider == "aws":
        aws = params.get("aws") or {}
        return {"accessKeyId": aws.get("access_key_id") or "",
                "secretAccessKey": aws.get("secret_access_key") or ""}
    if provider == "gcp":
        # KKP's serviceAccount value is base64 of the JSON; the Secret's data base64s it again
        return {"serviceAccount": _b64(params["_sa_text"])}
    raise MigrationError("provider %r is not supported; use aws or gcp" % provider)


def credential_secret(name, project_id, data):
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": CREDENTIALS_NAMESPACE,
                         "labels": {"name": name, "project-id": project_id}},
            "type": "Opaque",
            "data": dict((k, _b64(v)) for k, v in sorted(data.items()))}


def secret_patch(live, want):
    """Merge patch from the live Secret to the wanted one (labels, type, data), or None."""
    patch = {}
    labels = dict((k, v) for k, v in want["metadata"]["labels"].items()
                  if dig(live, "metadata", "labels", k) != v)
    if labels:
        patch["metadata"] = {"labels": labels}
    if (live.get("data") or {}) != want["data"]:
        extra = dict((k, None) for k in (live.get("data") or {}) if k not in want["data"])
        patch["data"] = dict(want["data"], **extra)
    if live.get("type", "Opaque") != want["type"]:
        raise MigrationError("Secret %s/%s exists with type %s, not Opaque; delete it or choose "
                             "another name with secret_name"
                             % (live["metadata"]["namespace"], live["metadata"]["name"],
                                live.get("type")))
    return patch or None


def masked_secret(secret):
    """The Secret for diffs and results: data keys kept, values hidden."""
    if secret is None:
        return {}
    out = dict((k, v) for k, v in secret.items() if k in ("apiVersion", "kind", "type"))
    out["metadata"] = dict((k, v) for k, v in (secret.get("metadata") or {}).items()
                           if k in ("name", "namespace", "labels"))
    out["data"] = dict((k, "<hidden>") for k in sorted(secret.get("data") or {}))
    return out


# --- cloud switch ----------------------------------------------------------------------------

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
