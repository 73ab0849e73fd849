# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names and keys this collection writes into Kubernetes objects, and kube-apiserver's rules
for them (apimachinery's ``IsDNS1123Label``, ``IsDNS1123Subdomain``, ``IsDNS1035Label``,
``IsQualifiedName``, ``IsValidLabelValue``, ``IsConfigMapKey``).

Every fixed key the Python code writes lives here (the roles' own keys are in their YAML), so
one unit test can run each through the lab's kube-apiserver validation; the names built from
inputs (``cluster-<id>``, ``credential-<provider>-<id>``, the second ingress Service, the target
MachineDeployment) are checked by ``check`` in preflight (filter ``name_problems``), before
anything is written, with the variable named.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# --- keys and names the collection writes ----------------------------------------------------

# annotations
MIN_READY_BEFORE = "k8s-migration.cloudhop.io/min-ready-seconds-before"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what kubectl rollout restart sets
AWS_REGION_ANNOTATION = "kubermatic.io/aws-region"  # KKP's own key
# labels
MANAGED_BY = "app.kubernetes.io/managed-by"
CLUSTER_LABEL = "cloudhop.io/cluster"
SUBJECT_LABEL = "cloudhop.io/subject"  # a ledger that is not a KKP cluster's (a move's)
MANAGER = "cloudhop"
# objects of fixed name
LEDGER_CONFIGMAP = "cloudhop-migration"
NODE_HOOKS_CONFIGMAP = "cloudhop-vpn-node-hooks"
NODE_HOOKS_VOLUME = "cloudhop-node-hooks"


def credential_secret_name(provider, cluster_id):
    """KKP's name of a cluster's credential Secret (namespace kubermatic); also its ``name``
    label's value."""
    return "credential-%s-%s" % (provider, cluster_id)


# --- kube-apiserver's rules -------------------------------------------------------------------

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_FORMATS = {
    # rule: (pattern, most characters, what it is)
    "dns1123-label": (_LABEL, 63, "lower-case letters, digits and '-', starting and ending "
                                  "with a letter or digit"),
    "dns1123-subdomain": (_LABEL + r"(\." + _LABEL + ")*", 253,
                          "lower-case letters, digits, '-' and '.', each part starting and "
                          "ending with a letter or digit"),
    "dns1035-label": (r"[a-z]([-a-z0-9]*[a-z0-9])?", 63,
                      "lower-case letters, digits and '-', starting with a letter and ending "
                      "with a letter or digit"),
    "label-value": (r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", 63,
                    "empty, or letters, digits, '-', '_' and '.', starting and ending with a "
                    "letter or digit"),
    "config-key": (r"[-._a-zA-Z0-9]+", 253, "letters, digits, '-', '_' and '.'"),
}
# the rule for each kind's metadata.name (pkg/apis/*/validation: ValidateServiceName is a
# DNS-1035 label, a Namespace's name a DNS-1123 label, most others DNS-1123 subdomains)
NAME_RULES = {"Service": "dns1035-label", "Namespace": "dns1123-label"}


def problems(rule, value):
    """What is wrong with ``value`` under ``rule`` (a rule of _FORMATS, ``qualified-name`` or a
    kind, whose name rule applies), as a list of sentences; empty when kube-apiserver takes it."""
    if rule == "qualified-name":
        prefix, slash, name = value.rpartition("/")
        out = ["prefix %s" % p for p in problems("dns1123-subdomain", prefix)] if slash else []
        if prefix.count("/"):
            out.append("at most one '/'")
        return out + ["name part %s" % p for p in problems(
            "label-value", name) or (["must not be empty"] if not name else [])]
    pattern, limit, what = _FORMATS[rule if rule in _FORMATS else
                                    NAME_RULES.get(rule, "dns1123-subdomain")]
    out = ["must be at most %d characters (it has %d)" % (limit, len(value))] \
        if len(value) > limit else []
    if not re.match(r"(?:%s)\Z" % pattern, value):
        out.append("must be %s" % what)
    if rule == "config-key" and (value.startswith("..") or value == "."):
        out.append("must not be '.' or start with '..'")
    return out


def check(names):
    """``names``: dicts ``var`` (the variable it comes from), ``rule`` (see ``problems``),
    ``name``, ``what`` (the object, e.g. ``Service ingress-nginx/x-aws``). Returns one sentence
    per invalid name, naming the variable and the fix."""
    out = []
    for item in names:
        found = problems(item["rule"], str(item["name"]))
        if found:
            what = item.get("what") or item["rule"]
            out.append("%s: %s %r would be refused by the API server: %s; choose a %s that "
                       "gives a valid name" % (item["var"], what, str(item["name"]),
                                               "; ".join(found), item["var"]))
    return out
