# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Deployment and what it needs, made portable to another cluster (the move's
``deployment_copy``): pure functions, unit-tested.

- :func:`references`: the ConfigMaps, Secrets and ServiceAccount a pod template names (volumes,
  projected volumes, ``envFrom``, ``env[].valueFrom``, ``imagePullSecrets``,
  ``serviceAccountName``), each with whether the reference is optional, and its
  PersistentVolumeClaims (data a copy cannot carry);
- :func:`selects`: a Service's selector against the template's labels (a PDB's label
  selector: ``workloads.selector_matches``);
- :func:`portable`: an object without what only its cluster knows - status, uid,
  resourceVersion, creationTimestamp, generation, managedFields, ownerReferences, the
  Deployment's revision and kubectl's last-applied annotations, a Service's cluster IPs and
  node ports (the other cluster allocates its own), a ServiceAccount's token Secrets - and with
  an annotation naming where it came from;
- :func:`contains`: whether an object in the target already holds everything the portable
  one says (the server adds its defaults, which are not a difference).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import workloads
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

ORIGIN = "cloudhop.io/moved-from"
DROP_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields",
                 "ownerReferences", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
DROP_ANNOTATIONS = ("deployment.kubernetes.io/revision",
                    "kubectl.kubernetes.io/last-applied-configuration")
DROP_SERVICE_SPEC = ("clusterIP", "clusterIPs", "healthCheckNodePort", "loadBalancerIP")
# Secrets the other cluster makes itself (or that only mean something in this one)
CLUSTER_SECRET_TYPES = ("kubernetes.io/service-account-token",)
ORDER = ("ServiceAccount", "ConfigMap", "Secret", "Service", "PodDisruptionBudget",
         "Deployment")


def _add(out, kind, name, optional):
    if not name:
        return
    key = (kind, name)
    # a name referenced once as required is required
    out[key] = out.get(key, True) and bool(optional)


def references(pod_spec):
    """{(kind, name): optional} of the ConfigMaps, Secrets and ServiceAccount a pod spec names.
    The namespace's ``default`` ServiceAccount is left out: every namespace has its own."""
    out = {}
    spec = pod_spec or {}
    for vol in spec.get("volumes") or []:
        if vol.get("configMap"):
            _add(out, "ConfigMap", vol["configMap"].get("name"), vol["configMap"].get("optional"))
        if vol.get("secret"):
            _add(out, "Secret", vol["secret"].get("secretName"), vol["secret"].get("optional"))
        for src in (vol.get("projected") or {}).get("sources") or []:
            if src.get("configMap"):
                _add(out, "ConfigMap", src["configMap"].get("name"),
                     src["configMap"].get("optional"))
            if src.get("secret"):
                _add(out, "Secret", src["secret"].get("name"), src["secret"].get("optional"))
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for ef in c.get("envFrom") or []:
            if ef.get("configMapRef"):
                _add(out, "ConfigMap", ef["configMapRef"].get("name"),
                     ef["configMapRef"].get("optional"))
            if ef.get("secretRef"):
                _add(out, "Secret", ef["secretRef"].get("name"), ef["secretRef"].get("optional"))
        for env in c.get("env") or []:
            ref = env.get("valueFrom") or {}
            if ref.get("configMapKeyRef"):
                _add(out, "ConfigMap", ref["configMapKeyRef"].get("name"),
                     ref["configMapKeyRef"].get("optional"))
            if ref.get("secretKeyRef"):
                _add(out, "Secret", ref["secretKeyRef"].get("name"),
                     ref["secretKeyRef"].get("optional"))
    for ips in spec.get("imagePullSecrets") or []:
        _add(out, "Secret", ips.get("name"), False)
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if sa and sa != "default":
        _add(out, "ServiceAccount", sa, False)
    for vol in spec.get("volumes") or []:
        if vol.get("persistentVolumeClaim"):
            _add(out, "PersistentVolumeClaim", vol["persistentVolumeClaim"].get("claimName"),
                 False)
    return out


def selects(selector, labels):
    """A Service's selector (a map): non-empty, and every pair in the labels."""
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


def pdb_selects(pdb, labels):
    """A PodDisruptionBudget's label selector against a pod template's labels (a null selector
    selects nothing, an empty one everything, as in policy/v1)."""
    return workloads.selector_matches((pdb.get("spec") or {}).get("selector"), labels)


def set_env(pod_spec, env):
    """Give the env variables named in ``env`` (name -> value) these values in every container
    (and init container) of ``pod_spec`` that has them - a value replaces a ``valueFrom``.
    Raises MigrationError naming a variable no container has."""
    found = set()
    for container in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
        for var in container.get("env") or []:
            if var.get("name") in env:
                var.pop("valueFrom", None)
                var["value"] = str(env[var["name"]])
                found.add(var["name"])
    missing = sorted(set(env) - found)
    if missing:
        raise MigrationError("env: no container has %s; name variables the Deployment's "
                             "containers set (env), to give them the new cluster's values"
                             % ", ".join(missing))


def portable(obj, origin, namespace=None, replicas=None, env=None):
    """A copy of ``obj`` for another cluster (see the module docstring). ``origin`` goes to the
    annotation ``cloudhop.io/moved-from``; ``namespace`` replaces its namespace; ``replicas``
    a Deployment's replicas; ``env`` values for its containers' env variables (set_env)."""
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.setdefault("metadata", {})
    for key in DROP_METADATA:
        meta.pop(key, None)
    if namespace:
        meta["namespace"] = namespace
    ann = dict(meta.get("annotations") or {})
    for key in DROP_ANNOTATIONS:
        ann.pop(key, None)
    ann[ORIGIN] = origin
    meta["annotations"] = ann
    kind = out.get("kind")
    spec = out.get("spec") or {}
    if kind == "Service":
        headless = spec.get("clusterIP") == "None"
        for key in DROP_SERVICE_SPEC:
            spec.pop(key, None)
        if headless:  # not an address: what makes it headless, kept
            spec["clusterIP"] = "None"
        for port in spec.get("ports") or []:
            port.pop("nodePort", None)
    elif kind == "ServiceAccount":
        out.pop("secrets", None)
    elif kind == "Deployment":
        if replicas is not None:
            spec["replicas"] = replicas
        if env:
            set_env((spec.get("template") or {}).get("spec") or {}, env)
    return out


def contains(existing, desired):
    """Whether ``existing`` holds every field of ``desired`` with the same value (dicts by
    key, lists item by item with the same length). The ``moved-from`` annotation is compared
    too: an object of the same name that came from elsewhere is a conflict."""
    if isinstance(desired, dict):
        if not isinstance(existing, dict):
            return False
        return all(k in existing and contains(existing[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(existing, list) or len(existing) != len(desired):
            return False
        return all(contains(e, d) for e, d in zip(existing, desired))
    if isinstance(desired, (int, float)) and not isinstance(desired, bool) and \
            isinstance(existing, (int, float)) and not isinstance(existing, bool):
        return float(existing) == float(desired)
    if isinstance(desired, bool) or isinstance(existing, bool):
        return type(existing) is type(desired) and existing == desired
    return existing == desired


def differences(existing, desired, path=""):
    """The paths where ``existing`` does not hold ``desired`` (for the error message); the
    values are not shown (a Secret's data would be)."""
    if isinstance(desired, dict) and isinstance(existing, dict):
        out = []
        for k, v in sorted(desired.items()):
            sub = "%s.%s" % (path, k) if path else k
            if k not in existing:
                out.append(sub + " (missing)")
            else:
                out += differences(existing[k], v, sub)
        return out
    return [] if contains(existing, desired) else [path or "(the object)"]


DB_ENV = re.compile(r"(?i)(mongo|database|postgres|mysql|redis|^db_|_db$|^db$)")
DB_URI = re.compile(r"(?i)^(mongodb(\+srv)?|postgres(ql)?|mysql|redis)://")


def uses_database(pod_spec):
    """Whether a pod template talks to a database, as its env says: a variable named like one
    (MONGODB_URI, DATABASE_URL, DB_HOST ...) or a value with a database URL's scheme."""
    for c in ((pod_spec or {}).get("containers") or []) + (
            (pod_spec or {}).get("initContainers") or []):
        for env in c.get("env") or []:
            if DB_ENV.search(env.get("name") or "") or DB_URI.match(str(env.get("value") or "")):
                return True
    return False


# the API version of each kind a move copies (deployment_copy) and later deletes (cleanup,
# rollback), in one place
MOVED_KINDS = {"ServiceAccount": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1",
               "PodDisruptionBudget": "policy/v1", "Deployment": "apps/v1"}


def moved_api_version(kind):
    """The apiVersion of a kind the move copies; a kind it does not copy is an error."""
    if kind not in MOVED_KINDS:
        raise MigrationError("the move copies no objects of kind %r (it copies %s)"
                             % (kind, ", ".join(sorted(MOVED_KINDS))))
    return MOVED_KINDS[kind]


def move_order(deployments):
    """The default order of a move: Deployments that use no database first (they move
    without touching the data path), then those that do; by name within each."""
    return [d["metadata"]["name"] for d in sorted(
        deployments, key=lambda d: (uses_database(((d.get("spec") or {}).get("template") or {})
                                                  .get("spec")), d["metadata"]["name"]))]


def sort_objects(objects):
    """Creation order: what a Deployment needs before it."""
    return sorted(objects, key=lambda o: (ORDER.index(o["kind"]) if o["kind"] in ORDER
                                          else len(ORDER), o["metadata"]["name"]))
