# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target-cloud credentials: a Google service-account key's format (``parse_service_account``),
and their validation with the clouds' own libraries (boto3, google-auth).

No message built here contains a credential value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

try:
    import boto3
    import botocore.exceptions
    HAS_BOTO3 = True
except ImportError:
    HAS_BOTO3 = False

try:
    from google.oauth2 import service_account as google_sa
    HAS_GOOGLE_AUTH = True
except ImportError:
    HAS_GOOGLE_AUTH = False

try:
    import google.auth.exceptions
    import google.auth.transport.requests
    HAS_GOOGLE_TRANSPORT = True
except ImportError:
    HAS_GOOGLE_TRANSPORT = False

# a scope every service account may ask a token for; the token is only looked at, never used
TOKEN_CHECK_SCOPE = "https://www.googleapis.com/auth/cloud-platform.read-only"


def aws_caller_identity(access_key_id, secret_access_key, region, endpoint_url=None):
    """STS GetCallerIdentity with the given keys -> {account, arn, user_id}."""
    if not HAS_BOTO3:
        raise MigrationError("aws.validate needs boto3 on the controller (pip install boto3)")
    try:
        sts = boto3.client("sts", aws_access_key_id=access_key_id,
                           aws_secret_access_key=secret_access_key, region_name=region,
                           endpoint_url=endpoint_url or None)
        ident = sts.get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        raise MigrationError("AWS rejected the target credentials (STS GetCallerIdentity: %s %s); "
                             "check aws.access_key_id and aws.secret_access_key"
                             % (err.get("Code"), err.get("Message", "")))
    except botocore.exceptions.BotoCoreError as exc:
        raise MigrationError("cannot validate the AWS credentials: %s; check aws.endpoint_url "
                             "and network access to STS" % exc)
    return {"account": ident.get("Account"), "arn": ident.get("Arn"),
            "user_id": ident.get("UserId")}


def google_credentials(info, scopes=None):
    """google-auth's service-account credentials of ``info``; a key it cannot use is a
    MigrationError whose message names fields, never key material."""
    if not HAS_GOOGLE_AUTH:
        raise MigrationError("gcp.service_account needs google-auth on the controller "
                             "(pip install google-auth)")
    try:
        return google_sa.Credentials.from_service_account_info(info, scopes=scopes)
    except (ValueError, TypeError, KeyError) as exc:
        # google-auth's messages name fields, never key material; keep only the first line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "BEGIN" in reason or len(reason) > 200:
            reason = "the private key cannot be parsed"
        raise MigrationError("gcp.service_account is not a usable service-account key (%s); "
                             "download a fresh JSON key for %s"
                             % (reason, info.get("client_email", "the service account")))


def gcp_service_account(info, fetch_token=False):
    """Load the key with google-auth (parses the private key) -> {client_email, project_id}.
    With ``fetch_token``, also obtain an access token from the key's token_uri: Google refuses a
    deleted or disabled key and a disabled account there."""
    creds = google_credentials(info)
    if fetch_token:
        if not HAS_GOOGLE_TRANSPORT:
            raise MigrationError("gcp.fetch_token needs requests on the controller "
                                 "(pip install requests)")
        try:
            creds.with_scopes([TOKEN_CHECK_SCOPE]).refresh(
                google.auth.transport.requests.Request())
        except google.auth.exceptions.RefreshError as exc:
            reason = str(exc.args[0] if exc.args else exc).split(",", maxsplit=1)[0][:200]
            raise MigrationError("Google refused a token for %s (%s); the key is deleted or "
                                 "disabled, or the account is: create a new key for an enabled "
                                 "service account" % (creds.service_account_email, reason))
        except google.auth.exceptions.TransportError as exc:
            raise MigrationError("cannot reach the token endpoint of gcp.service_account (%s); "
                                 "check network access to its token_uri"
                                 % type(exc).__name__)
    return {"client_email": creds.service_account_email, "project_id": creds.project_id}


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
