# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KKP credential Secrets: the ``credential-<provider>-<cluster>`` Secret in namespace
``kubermatic`` that a Cluster's ``credentialsReference`` points at, its data per provider, the
patch that brings a live Secret to the wanted one, and the AWS key format check.

Pure functions over plain dicts; the modules do the reads and writes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, dig)

CREDENTIALS_NAMESPACE = "kubermatic"


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
