# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one wrapper around kubernetes.core for this collection's API modules.

Auth options, client creation and library checks come from kubernetes.core (``AUTH_ARG_SPEC``,
``AnsibleK8SModule``, ``get_api_client``). ``Kube`` adds what every module here needs on top:
get-or-None, merge patches (never strategic: Cluster and MachineDeployment are custom
resources), the server's dry run in check mode, and Kubernetes errors turned into
``MigrationError`` with the object named.

Failures that pass are retried: 429 and 5xx answers, timeouts and refused connections, with
exponential backoff (``BACKOFF``), and then reported with every attempt's outcome. Writes computed
from a read object carry its resourceVersion, so a concurrent writer gets them a 409 Conflict
instead of a lost update; ``retry_on_conflict`` reads again and redoes the change (client-go's
RetryOnConflict).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import time
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, ModuleWrapper, redo_on_conflict)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.rollout import (
    Gone, wait_rolled_out)

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
    # never raised: without the kubernetes library the module fails before any call
    class ApiException(Exception):
        pass

    class NotFoundError(Exception):
        pass

    class ResourceNotFoundError(Exception):
        pass

try:
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.waiter import RESOURCE_PREDICATES
    from kubernetes.dynamic.resource import ResourceInstance
except ImportError:  # the module fails with missing_required_lib via KubeModule
    RESOURCE_PREDICATES = ResourceInstance = None

try:
    from urllib3.exceptions import HTTPError as TransportError
except ImportError:  # pragma: no cover - urllib3 comes with the kubernetes client
    TransportError = OSError

MERGE = "application/merge-patch+json"
DRY_RUN = "All"
RETRY_STATUS = (429, 500, 502, 503, 504)
BACKOFF = (1, 2, 4, 8)  # seconds before each retry: 5 attempts within about 15 s
REQUEST_TIMEOUT = 30  # seconds for one API request
CONFLICT_RETRIES = 3


def _status(exc):
    """The Status object in a Kubernetes API error's body, or None."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return None
    return status if isinstance(status, dict) else None


def api_error_reason(exc):
    """The ``reason`` of a Kubernetes API error's Status (``Conflict``, ``AlreadyExists``...)."""
    return (_status(exc) or {}).get("reason")


def api_error_message(exc):
    """The Status message of a Kubernetes API error, or the exception text."""
    status = _status(exc)
    if status is None:
        return "%s (HTTP %s)" % (getattr(exc, "reason", str(exc)), getattr(exc, "status", "?"))
    text = "%s (HTTP %s, %s)" % (
        status.get("message"), getattr(exc, "status", "?"), status.get("reason", ""))
    if status.get("reason") == "Forbidden":
        text += ("; the kubeconfig's user lacks this permission: grant it (docs/rbac/ in the "
                 "collection lists every verb and resource it uses)")
    return text


def k8s_argument_spec(**extra):
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(extra)
    return spec


class Kube(object):
    """Thin verbs over the kubernetes.core dynamic client. ``dry_run`` = check mode."""

    def __init__(self, client, dry_run=False, backoff=BACKOFF, sleep=time.sleep,
                 request_timeout=REQUEST_TIMEOUT):
        self.client = client  # kubernetes.core K8SClient
        self.dry_run = dry_run
        self.backoff = backoff
        self.sleep = sleep
        self.request_timeout = request_timeout
        self.retried = []    # "what: outcome" of every transient failure that was retried
        self.conflicts = []  # objects a concurrent writer changed between read and write
        self.rediscovered = set()  # (apiVersion, kind) whose discovery was read afresh
        self._hints = {}     # (apiVersion, kind) -> what to tell when the server lacks it

    def resource(self, api_version, kind, what=None):
        if what:
            self._hints[(api_version, kind)] = what
        try:
            return self.client.resource(kind, api_version)
        except ResourceNotFoundError:
            raise self._not_served(api_version, kind)

    def _not_served(self, api_version, kind):
        what = self._hints.get((api_version, kind))
        return MigrationError(
            "the API server does not serve %s %s%s; check the kubeconfig/context points at "
            "the right cluster and that the CRD is installed"
            % (api_version, kind, " (" + what + ")" if what else ""),
            api_version=api_version, kind=kind, status=404)

    def _rediscover(self, api_version, kind):
        """After a 404 without an object name (the server has no such resource) for a resource
        the client's discovery cache lists: the cache (kept per server URL in the temp directory)
        may describe another server that answered at the same URL (a port-forward, an SSH
        tunnel, another lab). Read discovery afresh, once per resource; raise the clear "does not
        serve" error when the server indeed lacks it, else return and let the caller try again."""
        if (api_version, kind) in self.rediscovered:
            raise self._not_served(api_version, kind)
        self.rediscovered.add((api_version, kind))
        try:
            self.client.resources.invalidate_cache()
        except Exception:  # pylint: disable=broad-except
            pass  # a cache file we cannot rewrite: the live discovery below still decides
        if not self.serves(api_version, kind):
            raise self._not_served(api_version, kind)

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

    def _call(self, what, func, *args, **kwargs):
        """func(...), with API errors as MigrationError; ``missing_ok`` turns an object's 404
        into None. ``served`` = (apiVersion, kind) of the resource: a 404 that names no object
        means the server lacks the resource, and discovery is checked again (``_rediscover``).
        429, 5xx, timeouts and connection errors are retried after ``backoff`` seconds."""
        missing_ok = kwargs.pop("missing_ok", False)
        served = kwargs.pop("served", None)
        kwargs.setdefault("_request_timeout", self.request_timeout)
        failures = []
        for attempt in range(len(self.backoff) + 1):
            try:
                return func(*args, **kwargs).to_dict()
            except NotFoundError as exc:
                if not ((_status(exc) or {}).get("details") or {}).get("name") and served:
                    self._rediscover(*served)
                    return self._call(what, func, *args, missing_ok=missing_ok, served=served,
                                      **kwargs)
                if missing_ok:
                    return None
                raise MigrationError("%s failed: %s" % (what, api_error_message(exc)),
                                     status=404, reason=api_error_reason(exc))
            except ApiException as exc:  # DynamicApiError is one
                status = getattr(exc, "status", None)
                outcome = api_error_message(exc)
                if status not in RETRY_STATUS:
                    raise MigrationError(
                        "%s failed: %s%s" % (what, outcome, _after(failures)), status=status,
                        reason=api_error_reason(exc), after_retries=len(failures))
            except (TransportError, OSError) as exc:  # timeouts, refused connections
                outcome, status = "%s: %s" % (type(exc).__name__, exc), None
            failures.append(outcome)
            if attempt < len(self.backoff):
                self.retried.append("%s: %s" % (what, outcome))
                self.sleep(self.backoff[attempt])
        raise MigrationError(
            "%s failed %d times over %d s (%s); the API server is overloaded or unreachable. "
            "Check it, then run again."
            % (what, len(failures), sum(self.backoff), "; ".join(_unique(failures))),
            status=status, after_retries=len(failures) - 1)

    def get(self, api_version, kind, name, namespace=None):
        return self._call("reading %s %s" % (kind, _ref(name, namespace)),
                          self.resource(api_version, kind).get, name=name,
                          namespace=namespace, missing_ok=True, served=(api_version, kind))

    def list(self, api_version, kind, namespace=None, label_selector=None):
        out = self._call("listing %s" % kind, self.resource(api_version, kind).get,
                         namespace=namespace, label_selector=label_selector,
                         served=(api_version, kind))
        return out.get("items") or []

    def _params(self):
        return {"dry_run": DRY_RUN} if self.dry_run else {}

    def merge_patch(self, api_version, kind, name, patch, namespace=None, resource_version=None):
        """``resource_version``: the one of the object the patch was computed from; the server
        refuses the patch with 409 Conflict if the object has changed since."""
        if resource_version:
            patch = copy.deepcopy(patch)
            patch.setdefault("metadata", {})["resourceVersion"] = resource_version
        return self._call("patching %s %s" % (kind, _ref(name, namespace)),
                          self.resource(api_version, kind).patch, body=patch, name=name,
                          namespace=namespace, content_type=MERGE, served=(api_version, kind),
                          **self._params())

    def create(self, api_version, kind, body, namespace=None):
        name = body.get("metadata", {}).get("name")
        try:
            return self._call("creating %s %s" % (kind, _ref(name, namespace)),
                              self.resource(api_version, kind).create, body=body,
                              namespace=namespace, served=(api_version, kind),
                              **self._params())
        except MigrationError as exc:
            # an attempt that timed out may have created it: then the retry finds it there
            if exc.details.get("reason") != "AlreadyExists" or \
                    not exc.details.get("after_retries"):
                raise
            return self.get(api_version, kind, name, namespace)

    def delete(self, api_version, kind, name, namespace=None):
        """Delete; None when it was already gone."""
        return self._call("deleting %s %s" % (kind, _ref(name, namespace)),
                          self.resource(api_version, kind).delete, name=name,
                          namespace=namespace, missing_ok=True, served=(api_version, kind),
                          **self._params())


def _ref(name, namespace):
    return "%s/%s" % (namespace, name) if namespace else str(name)


def _unique(items):
    return [x for i, x in enumerate(items) if x not in items[:i]]


def _after(failures):
    return " (after %d retried failures: %s)" % (len(failures), "; ".join(_unique(failures))) \
        if failures else ""


def retry_on_conflict(kube, what, attempt, retries=CONFLICT_RETRIES):
    """``attempt()`` reads the object afresh, computes its change from what it read and writes it
    with the resourceVersion it read. A 409 Conflict means another writer changed the object in
    between: read again and redo, up to ``retries`` times. Returns what ``attempt()`` returns;
    every conflict is recorded in ``kube.conflicts``."""
    def conflict(exc):
        return exc.details.get("status") == 409 and exc.details.get("reason") != "AlreadyExists"

    try:
        return redo_on_conflict(attempt, conflict, retries,
                                lambda _exc: kube.conflicts.append(what))
    except MigrationError as exc:
        if not conflict(exc):
            raise
        kube.conflicts.append(what)
        raise MigrationError(
            "%s was changed by another writer between each read and write, %d times in a row "
            "(409 Conflict); nothing of this task was written. Find the other writer (the "
            "object's metadata.managedFields names the managers), stop it or let it finish, then "
            "run again" % (what, retries + 1), status=409, conflicts=retries + 1)


def wait_ready(kube, api_version, kind, name, namespace, current, timeout, what):
    """Watch the object from ``current`` until kubernetes.core's readiness of its kind holds
    (as C(kubernetes.core.k8s) with wait=true, but ending at the first event that shows it);
    returns (object, watch events seen, seconds waited). A watch the server closes is opened
    again; a 410 Gone reads the object afresh."""
    predicate = RESOURCE_PREDICATES[kind]
    resource = kube.resource(api_version, kind)

    def ready(obj):
        return predicate(ResourceInstance(None, obj))

    def watch(resource_version, seconds):
        try:
            for event in kube.client.client.watch(
                    resource, namespace=namespace, name=name, resource_version=resource_version,
                    timeout=seconds):
                yield event["type"], event["raw_object"]
        except ApiException as exc:
            if getattr(exc, "status", None) == 410:
                raise Gone()
            raise MigrationError("watching %s failed: %s" % (what, api_error_message(exc)))
        except (TransportError, OSError):
            time.sleep(0.5)  # a dropped watch: the caller opens it again

    return wait_rolled_out(watch, lambda: kube.get(api_version, kind, name, namespace), ready,
                           timeout, current, what)


def other_client(kubeconfig, context=None):
    """A client for a second cluster (a module's ``source_*`` options), through kubernetes.core
    as the module's own."""
    try:
        return get_api_client(kubeconfig=kubeconfig, context=context)
    except CoreException as exc:
        raise MigrationError("cannot build a Kubernetes client for %s: %s; check the kubeconfig "
                             "and context" % (kubeconfig, exc))


class KubeModule(ModuleWrapper):
    """AnsibleK8SModule plus one client factory and one way to fail."""

    def __init__(self, argument_spec, retry_counts=False, **kwargs):
        """retry_counts: return ``conflicts`` and ``api_retries`` (when not zero) besides the
        warnings every module gives; the module's RETURN documents them."""
        kwargs.setdefault("supports_check_mode", True)
        self.retry_counts = retry_counts
        if not HAS_K8S_CORE:
            AnsibleModule(argument_spec={}, bypass_checks=True).fail_json(
                msg="this module needs the kubernetes.core collection (a dependency of "
                    "cloudhop.k8s_migration): ansible-galaxy collection install kubernetes.core")
        self.module = AnsibleK8SModule(argument_spec=k8s_argument_spec(**argument_spec), **kwargs)
        self._kube = None

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
        """Call func(self) -> result dict; exit_json or fail_json exactly once. Retried
        conflicts and transient API failures are reported as one warning line each."""
        try:
            result = func(self)
        except MigrationError as exc:
            self._report_retries(failed=True)
            self.module.fail_json(msg=exc.msg, **exc.details)
        except ApiException as exc:  # a call outside Kube's verbs: the Status says what it is
            self._report_retries(failed=True)
            self.module.fail_json(msg="the API server refused a request: %s"
                                  % api_error_message(exc), status=getattr(exc, "status", None),
                                  reason=api_error_reason(exc))
        except Exception as exc:  # pylint: disable=broad-except
            self.module.fail_json(msg="unexpected error: %s" % exc,
                                  exception=traceback.format_exc())
        result.update(self._report_retries())
        self.module.exit_json(**result)

    def _report_retries(self, failed=False):
        """Warnings for what was retried; the counts, for the result, when not zero. (After a
        failure its message lists its own retries.)"""
        kube = self._kube
        if kube is None:
            return {}
        if kube.conflicts:
            self.module.warn(
                "%s was changed by another writer between read and write (409 Conflict); read "
                "it again and redid the change (%d time%s)" % (
                    ", ".join(_unique(kube.conflicts)), len(kube.conflicts),
                    "" if len(kube.conflicts) == 1 else "s"))
        if kube.retried and not failed:
            self.module.warn("the API server failed %d request%s that passed on a retry: %s" % (
                len(kube.retried), "" if len(kube.retried) == 1 else "s",
                "; ".join(_unique(kube.retried))))
        if not self.retry_counts:
            return {}
        out = {"conflicts": len(kube.conflicts), "api_retries": len(kube.retried)}
        return dict((k, v) for k, v in out.items() if v)
