# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one wrapper around kubernetes.core for this collection's API modules.

Auth options, client creation and library checks come from kubernetes.core (``AUTH_ARG_SPEC``,
``AnsibleK8SModule``, ``get_api_client``). ``Kube`` adds what every module here needs on top:
get-or-None, merge patches (never strategic: Cluster and MachineDeployment are custom
resources), the server's dry run in check mode, and Kubernetes errors turned into
``MigrationError`` with the object named.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
    HAS_K8S_CORE = True
except ImportError:  # pragma: no cover - kubernetes.core is a declared dependency
    AUTH_ARG_SPEC = {}
    AnsibleK8SModule = CoreException = get_api_client = None
    HAS_K8S_CORE = False

try:
    from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
    from kubernetes.client.rest import ApiException
except ImportError:  # the module fails with missing_required_lib via AnsibleK8SModule
    NotFoundError = ResourceNotFoundError = ApiException = None

MERGE = "application/merge-patch+json"
DRY_RUN = "All"


def api_error_message(exc):
    """The Status message of a Kubernetes API error, or the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body)
        return "%s (HTTP %s, %s)" % (
            status.get("message"), getattr(exc, "status", "?"), status.get("reason", ""))
    except (TypeError, ValueError):
        return "%s (HTTP %s)" % (getattr(exc, "reason", str(exc)), getattr(exc, "status", "?"))


def k8s_argument_spec(**extra):
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(extra)
    return spec


class Kube(object):
    """Thin verbs over the kubernetes.core dynamic client. ``dry_run`` = check mode."""

    def __init__(self, client, dry_run=False):
        self.client = client  # kubernetes.core K8SClient
        self.dry_run = dry_run

    def resource(self, api_version, kind, what=None):
        try:
            return self.client.resource(kind, api_version)
        except ResourceNotFoundError:
            raise MigrationError(
                "the API server does not serve %s %s%s; check the kubeconfig/context points at "
                "the right cluster and that the CRD is installed"
                % (api_version, kind, " (" + what + ")" if what else ""),
                api_version=api_version, kind=kind)

    def serves(self, api_version, kind):
        """Whether the server serves ``kind`` in ``api_version`` now.

        Asks the group's discovery endpoint itself (one GET): the client's discovery cache
        outlives a CRD change (say, a seed moved to another KKP API group), and an answer from
        it would pick an API the server no longer has.
        """
        path = ("/api/%s" if api_version == "v1" else "/apis/%s") % api_version
        try:
            out = self.client.client.request("get", path)
        except NotFoundError:
            return False
        except ApiException as exc:
            raise MigrationError("discovery of %s failed: %s"
                                 % (api_version, api_error_message(exc)))
        if hasattr(out, "to_dict"):
            out = out.to_dict()
        elif isinstance(out, (bytes, str)):
            out = json.loads(out)
        return any(r.get("kind") == kind and "/" not in r.get("name", "")
                   for r in (out or {}).get("resources") or [])

    @staticmethod
    def _call(what, func, *args, **kwargs):
        """func(...), with API errors as MigrationError; ``missing_ok`` turns 404 into None."""
        missing_ok = kwargs.pop("missing_ok", False)
        try:
            return func(*args, **kwargs).to_dict()
        except NotFoundError:
            if missing_ok:
                return None
            raise
        except ApiException as exc:  # DynamicApiError is one
            raise MigrationError("%s failed: %s" % (what, api_error_message(exc)),
                                 status=getattr(exc, "status", None))

    def get(self, api_version, kind, name, namespace=None):
        return self._call("reading %s %s" % (kind, _ref(name, namespace)),
                          self.resource(api_version, kind).get, name=name,
                          namespace=namespace, missing_ok=True)

    def list(self, api_version, kind, namespace=None, label_selector=None):
        out = self._call("listing %s" % kind, self.resource(api_version, kind).get,
                         namespace=namespace, label_selector=label_selector)
        return out.get("items") or []

    def _params(self):
        return {"dry_run": DRY_RUN} if self.dry_run else {}

    def merge_patch(self, api_version, kind, name, patch, namespace=None):
        return self._call("patching %s %s" % (kind, _ref(name, namespace)),
                          self.resource(api_version, kind).patch, body=patch, name=name,
                          namespace=namespace, content_type=MERGE, **self._params())

    def create(self, api_version, kind, body, namespace=None):
        name = body.get("metadata", {}).get("name")
        return self._call("creating %s %s" % (kind, _ref(name, namespace)),
                          self.resource(api_version, kind).create, body=body,
                          namespace=namespace, **self._params())

    def delete(self, api_version, kind, name, namespace=None):
        """Delete; None when it was already gone."""
        return self._call("deleting %s %s" % (kind, _ref(name, namespace)),
                          self.resource(api_version, kind).delete, name=name,
                          namespace=namespace, missing_ok=True, **self._params())


def _ref(name, namespace):
    return "%s/%s" % (namespace, name) if namespace else str(name)


class KubeModule(object):
    """AnsibleK8SModule plus one client factory and one way to fail."""

    def __init__(self, argument_spec, **kwargs):
        kwargs.setdefault("supports_check_mode", True)
        if not HAS_K8S_CORE:
            AnsibleModule(argument_spec={}, bypass_checks=True).fail_json(
                msg="this module needs the kubernetes.core collection (a dependency of "
                    "cloudhop.k8s_migration): ansible-galaxy collection install kubernetes.core")
        self.module = AnsibleK8SModule(argument_spec=k8s_argument_spec(**argument_spec), **kwargs)
        self._kube = None

    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def diff_mode(self):
        return self.module._diff

    @property
    def kube(self):
        if self._kube is None:
            try:
                client = get_api_client(module=self.module)
            except CoreException as exc:
                raise MigrationError("cannot build a Kubernetes client: %s; check kubeconfig, "
                                     "context or host/api_key" % exc)
            self._kube = Kube(client, dry_run=self.check_mode)
        return self._kube

    def run(self, func):
        """Call func(self) -> result dict; exit_json or fail_json exactly once."""
        try:
            result = func(self)
        except MigrationError as exc:
            self.module.fail_json(msg=exc.msg, **exc.details)
        except Exception as exc:  # pylint: disable=broad-except
            self.module.fail_json(msg="unexpected error: %s" % exc,
                                  exception=traceback.format_exc())
        self.module.exit_json(**result)
