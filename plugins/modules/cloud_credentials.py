#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cloud_credentials
short_description: Create the target cloud's credential Secret for a KKP cluster
version_added: 0.1.0
description:
  - Renders and applies the Secret KKP reads a cluster's cloud credentials from,
    C(credential-<provider>-<clusterID>) in namespace C(kubermatic), type C(Opaque), labelled
    C(name=<same name>) and C(project-id=<projectID>).
  - C(aws) stores C(accessKeyId) and C(secretAccessKey). With I(aws.validate) the keys are first
    checked with STS C(GetCallerIdentity) (boto3).
  - C(gcp) stores C(serviceAccount), the base64 of the service-account JSON (so the Secret's data
    holds base64 of base64, as KKP expects). The key is loaded with google-auth first, and with
    I(gcp.fetch_token) a token is obtained with it.
  - Bad or malformed credentials fail before anything is written.
  - Every credential value is C(no_log); results and diffs show data keys with hidden values.
  - Check mode asks the API server for a dry run.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - cloudhop.k8s_migration.attributes.api
  - cloudhop.k8s_migration.kkp_cluster
options:
  provider:
    description: The target cloud provider.
    type: str
    required: true
    choices: [aws, gcp]
  state:
    description:
      - C(present) creates or updates the Secret; C(absent) deletes it (for a rollback).
    type: str
    choices: [present, absent]
    default: present
  secret_name:
    description: Name of the Secret. Defaults to C(credential-<provider>-<cluster>).
    type: str
  aws:
    description: AWS credentials, for I(provider=aws).
    type: dict
    suboptions:
      access_key_id:
        description: Access key ID of the target account.
        type: str
      secret_access_key:
        description: Secret access key of the target account.
        type: str
      validate:
        description: Check the keys with STS C(GetCallerIdentity) before writing.
        type: bool
        default: false
      region:
        description: Region for the STS call.
        type: str
        default: us-east-1
      endpoint_url:
        description: STS endpoint URL (for tests against moto or a private endpoint).
        type: str
  gcp:
    description: GCP credentials, for I(provider=gcp).
    type: dict
    suboptions:
      service_account:
        description:
          - The service-account key, as the path of the JSON key file, as JSON text, or as a dict.
          - Must have C(type=service_account), C(project_id), C(client_email) and C(private_key).
        type: raw
      validate:
        description: Load the key with google-auth (parses the private key) before writing.
        type: bool
        default: true
      fetch_token:
        description:
          - With I(gcp.validate), also obtain an access token from the key's C(token_uri). Google
            refuses a deleted or disabled key, or a disabled account, there.
          - The token is not used or returned.
        type: bool
        default: false
requirements:
  - boto3 (for I(aws.validate))
  - google-auth (for I(gcp.validate))
"""

EXAMPLES = r"""
- name: AWS credentials for the target cloud, checked with STS first
  cloudhop.k8s_migration.cloud_credentials:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    provider: aws
    aws:
      access_key_id: "{{ vault_aws_access_key_id }}"
      secret_access_key: "{{ vault_aws_secret_access_key }}"
      validate: true
  register: creds

- name: GCP credentials from a key file
  cloudhop.k8s_migration.cloud_credentials:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    provider: gcp
    gcp:
      service_account: /secure/gcp-sa.json

- name: Use the reference when switching the cloud
  cloudhop.k8s_migration.cluster_cloud:
    kubeconfig: seed.kubeconfig
    cluster: x8p9sk2tzv
    provider: aws
    dc: aws-eu-central-1a
    credentials_secret: "{{ creds.credentials_reference.name }}"
    aws:
      region: eu-central-1
    backup_dir: /var/backups/cloudhop
"""

RETURN = r"""
credentials_reference:
  description: The C(credentialsReference) for the Cluster's C(spec.cloud.<provider>).
  returned: always
  type: dict
  sample: {"name": "credential-aws-x8p9sk2tzv", "namespace": "kubermatic"}
secret:
  description: The Secret as written (or as the dry run returned), data values hidden.
  returned: always
  type: dict
  sample: {"metadata": {"name": "credential-aws-x8p9sk2tzv", "namespace": "kubermatic",
           "labels": {"name": "credential-aws-x8p9sk2tzv", "project-id": "k7xz5qd2wm"}},
           "type": "Opaque", "data": {"accessKeyId": "<hidden>", "secretAccessKey": "<hidden>"}}
identity:
  description: Who the credentials belong to (STS caller identity, or the service account).
  returned: when validated
  type: dict
  sample: {"account": "123456789012", "arn": "arn:aws:iam::123456789012:user/kkp"}
diff:
  description: The Secret before and after, data values hidden; C(data_changed) tells whether
    any credential value changed.
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {"data": {"accessKeyId": "<hidden>"}}}
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.args import KKP_CLUSTER_ARG_SPEC
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.clouds import (
    aws_caller_identity, gcp_service_account, parse_service_account)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kkp_cluster import get_cluster
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.k8s_names import credential_secret_name
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kkp_credentials import (
    CREDENTIALS_NAMESPACE, check_aws_keys, credential_data, credential_secret, masked_secret,
    secret_patch)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.kube import KubeModule


def validated_data(mod, provider):
    """Check the credentials (before any API call) -> (data, identity or None)."""
    p = dict(mod.params)
    identity = None
    if provider == "aws":
        aws = p.get("aws") or {}
        check_aws_keys(aws.get("access_key_id"), aws.get("secret_access_key"))
        if aws.get("validate"):
            identity = aws_caller_identity(aws["access_key_id"], aws["secret_access_key"],
                                           aws.get("region"), aws.get("endpoint_url"))
    else:
        gcp = p.get("gcp") or {}
        value = gcp.get("service_account")
        if isinstance(value, str) and value.lstrip().startswith("{"):
            mod.module._module.no_log_values.add(value)
        elif isinstance(value, dict) and isinstance(value.get("private_key"), str):
            mod.module._module.no_log_values.add(value["private_key"])
        info, text = parse_service_account(value)
        mod.module._module.no_log_values.update(
            v for v in (info.get("private_key"), info.get("private_key_id"), text)
            if isinstance(v, str) and len(v) > 8)
        if gcp.get("validate", True):
            identity = gcp_service_account(info, gcp.get("fetch_token", False))
        p["_sa_text"] = text
    return credential_data(provider, p), identity


def run(mod):
    p = mod.params
    provider = p["provider"]
    if p["state"] == "present" and not p.get(provider):
        raise MigrationError("provider %s needs the %s option with its credentials"
                             % (provider, provider))
    data = identity = None
    if p["state"] == "present":
        data, identity = validated_data(mod, provider)
    dummy, cluster = get_cluster(mod.kube, p["cluster"], p["api_group"])
    project_id = (cluster["metadata"].get("labels") or {}).get("project-id")
    if not project_id:
        raise MigrationError("Cluster %s has no project-id label; KKP credential Secrets need it "
                             "(label the Cluster with its project ID)" % p["cluster"])
    name = p["secret_name"] or credential_secret_name(provider, p["cluster"])
    ref = {"name": name, "namespace": CREDENTIALS_NAMESPACE}
    live = mod.kube.get("v1", "Secret", name, CREDENTIALS_NAMESPACE)
    result = {"changed": False, "credentials_reference": ref, "secret": masked_secret(live)}
    if identity:
        result["identity"] = identity
    after = live
    if p["state"] == "absent":
        if live is not None:
            mod.kube.delete("v1", "Secret", name, CREDENTIALS_NAMESPACE)
            result["changed"], after = True, None
    else:
        want = credential_secret(name, project_id, data)
        if live is None:
            after = mod.kube.create("v1", "Secret", want, CREDENTIALS_NAMESPACE)
            result["changed"] = True
        else:
            patch = secret_patch(live, want)
            if patch:
                after = mod.kube.merge_patch("v1", "Secret", name, patch, CREDENTIALS_NAMESPACE)
                result["changed"] = True
        result["secret"] = masked_secret(after)
    if mod.diff_mode:
        result["diff"] = {"before": masked_secret(live), "after": masked_secret(after),
                          "data_changed": (live or {}).get("data") != (after or {}).get("data")}
    return result


def main():
    spec = dict(KKP_CLUSTER_ARG_SPEC)
    spec.update(
        provider={"type": "str", "required": True, "choices": ["aws", "gcp"]},
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        secret_name={"type": "str"},
        aws={"type": "dict", "options": {
            "access_key_id": {"type": "str", "no_log": True},
            "secret_access_key": {"type": "str", "no_log": True},
            "validate": {"type": "bool", "default": False},
            "region": {"type": "str", "default": "us-east-1"},
            "endpoint_url": {"type": "str"}}},
        gcp={"type": "dict", "options": {
            # not no_log as a whole: its type value "service_account" and a file path would be
            # masked in every message; the key material is added to no_log_values instead
            "service_account": {"type": "raw", "no_log": False},
            "validate": {"type": "bool", "default": True},
            "fetch_token": {"type": "bool", "default": False}}},
    )
    KubeModule(spec).run(run)


if __name__ == "__main__":
    main()
