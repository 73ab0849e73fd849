# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every key and name the collection writes passes the same validation as the lab's API server
(tests/lab/cloudhop_lab/validation.py, apimachinery's rules), and preflight's name check agrees
with that validation, so a name preflight lets through is one kube-apiserver takes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import sys

import jinja2
import pytest
import yaml

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import (
    k8s_names, kkp_cloud, openvpn)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import rollout
from ansible_collections.cloudhop.k8s_migration.plugins.filter import migration as migration_filters

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "lab"))
from cloudhop_lab import validation  # noqa: E402 pylint: disable=wrong-import-position
# the longest cluster ID preflight lets through: credential-gcp-<id> is a label value (63)
LONGEST_ID = "x" * (63 - len("credential-gcp-"))


def _ok(rule, value):
    """The lab's verdict: no error for this value under kube-apiserver's rule."""
    causes = []
    if rule == "annotation":
        validation.validate_annotations({value: ""}, "f", causes)
        return not causes
    if rule == "label":
        validation.validate_labels({value: ""}, "f", causes)
        return not causes
    funcs = {"label-value": validation.label_value, "config-key": validation.config_map_key,
             "qualified-name": validation.qualified_name,
             "dns1123-label": validation.dns1123_label,
             "dns1123-subdomain": validation.dns1123_subdomain,
             "dns1035-label": validation.dns1035_label}
    if rule in funcs:
        return not funcs[rule](value)
    return not validation.name_errors(rule, value)


def test_every_fixed_key_and_name_in_module_utils():
    assert _ok("annotation", k8s_names.MIN_READY_BEFORE)
    assert rollout.MIN_READY_BEFORE == k8s_names.MIN_READY_BEFORE
    assert _ok("annotation", k8s_names.RESTARTED_AT)
    assert _ok("annotation", kkp_cloud.AWS_REGION_ANNOTATION)
    for key in (k8s_names.MANAGED_BY, k8s_names.CLUSTER_LABEL):
        assert _ok("label", key)
    assert _ok("label-value", k8s_names.MANAGER)
    for name in (k8s_names.LEDGER_CONFIGMAP, k8s_names.NODE_HOOKS_CONFIGMAP):
        assert _ok("ConfigMap", name)
    assert _ok("dns1123-label", openvpn.NODE_HOOKS_VOLUME)  # a pod's volume name


def test_the_old_annotation_key_is_refused():
    assert not _ok("annotation", "cloudhop.k8s_migration/min-ready-seconds-before")


def _literals(node, path=""):
    """(what, value) of every literal name, label, annotation, finalizer and data key in a role's
    YAML: Kubernetes objects' metadata, module options named labels/annotations, data keys."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            yield from _literals(item, "%s[%d]" % (path, i))
        return
    if not isinstance(node, dict):
        return
    meta = node.get("metadata") if isinstance(node.get("metadata"), dict) else None
    if meta is not None and isinstance(node.get("kind"), str):
        if isinstance(meta.get("name"), str):
            yield node["kind"], meta["name"], path
        for fin in meta.get("finalizers") or []:
            yield "qualified-name", fin, path
        for bag in ("data", "stringData"):
            if isinstance(node.get(bag), dict):
                for key in node[bag]:
                    yield "config-key", key, path
    for key, value in node.items():
        if key in ("labels", "annotations", "common_labels") and isinstance(value, dict):
            for k, v in value.items():
                yield ("annotation" if key == "annotations" else "label"), k, path
                if key != "annotations" and isinstance(v, str):
                    yield "label-value", v, path
        else:
            yield from _literals(value, "%s.%s" % (path, key))


def test_every_literal_key_and_name_in_the_roles():
    checked = []
    for fname in sorted(glob.glob(os.path.join(REPO, "roles", "*", "*", "*.yml"))):
        with open(fname) as fh:
            doc = yaml.safe_load(fh)
        for rule, value, path in _literals(doc):
            if "{{" in str(value):
                continue  # built from inputs: test_names_built_from_inputs and preflight
            checked.append(value)
            assert _ok(rule, str(value)), "%s%s: %s %r" % (os.path.relpath(fname, REPO), path,
                                                           rule, value)
    # the walk finds what the roles write (a walk that finds nothing would pass vacuously)
    for expected in ("app.kubernetes.io/managed-by", "cloudhop-vpn-node-hooks", "openvpn-client"):
        assert expected in checked


CASES = ["a", "a-b", "a.b", "-a", "a-", "A", "aB", "1a", "a_b", "a/b", "a/b/c", "/a", "a/",
         "example.com/Key_1.x", "Example.com/x", "ex_ample.com/x", "..a", ".", "a..b", "a b",
         "x" * 63, "x" * 64, "x" * 253, "x" * 254, ("a" * 63 + ".") * 3 + "a" * 61, "", "é"]


@pytest.mark.parametrize("rule", ["dns1123-label", "dns1123-subdomain", "dns1035-label",
                                  "label-value", "config-key", "qualified-name", "Service",
                                  "Namespace", "ConfigMap"])
def test_preflights_check_agrees_with_the_lab(rule):
    for value in CASES:
        if rule == "qualified-name" and not value:
            continue
        assert (not k8s_names.problems(rule, value)) == _ok(rule, value), (rule, value)


def _task(path, name):
    with open(os.path.join(REPO, path)) as fh:
        return next(t for t in yaml.safe_load(fh) if t["name"] == name)


def _preflight_names(cluster_id, ingress_service, target_cloud="aws", target_md="",
                     ledger="cloudhop-migration"):
    """The names preflight's check builds, rendered from the roles' own YAML (the expressions
    the phases write with), with the collection's filters."""
    env = jinja2.Environment()
    env.filters.update(("cloudhop.k8s_migration." + k, v)
                       for k, v in migration_filters.FilterModule().filters().items())
    names = _task("roles/preflight/tasks/main.yml", "Check the names this migration will write")
    target = _task("roles/cloudhop/tasks/nodes.yml", "The nodes of this cluster")

    def value(text, scope):
        text = str(text)
        if text.startswith("{{") and text.endswith("}}") and text.count("{{") == 1:
            return env.compile_expression(text[2:-2].strip())(**scope)
        return env.from_string(text).render(**scope)

    scope = {"cloudhop_cluster_id": cluster_id, "cloudhop_target_cloud": target_cloud,
             "cloudhop_ledger_name": ledger, "cloudhop_target_machinedeployment": target_md,
             "cloudhop_ingress_service": {"namespace": "ingress-nginx",
                                          "name": ingress_service["metadata"]["name"]},
             "preflight_ingress": {"resources": [ingress_service]}}
    scope["cloudhop_target_md"] = value(
        target["ansible.builtin.set_fact"]["cloudhop_target_md"], scope)
    scope["preflight_lb"] = value(names["vars"]["preflight_lb"], scope)
    return [dict(item, name=value(item["name"], scope)) for item in names["vars"]["preflight_names"]]


METALLB = {"metadata": {"name": "ingress-nginx-controller",
                        "annotations": {"metallb.universe.tf/address-pool": "vsphere"}}}


def test_names_built_from_inputs_pass_the_lab_at_the_longest_cluster_id():
    for cloud in ("aws", "gcp"):
        names = _preflight_names(LONGEST_ID, METALLB, cloud)
        assert k8s_names.check(names) == []
        for item in names:
            assert _ok(item["rule"], item["name"]), item
        by_var = {(n["var"], n["rule"]): n["name"] for n in names}
        assert by_var[("cloudhop_ingress_service", "Service")] == "ingress-nginx-controller-" + cloud
        assert by_var[("cloudhop_target_machinedeployment", "dns1123-label")] == cloud + "-workers"
        assert by_var[("cloudhop_cluster_id", "Namespace")] == "cluster-" + LONGEST_ID
    # the module's credential Secret is the name preflight checks
    assert k8s_names.credential_secret_name("gcp", LONGEST_ID) in [
        n["name"] for n in _preflight_names(LONGEST_ID, METALLB, "gcp")]


def test_preflight_refuses_what_the_lab_refuses():
    long_svc = dict(METALLB, metadata=dict(METALLB["metadata"], name="s" * 60))
    problems = k8s_names.check(_preflight_names("x8p9sk2tzv", long_svc))
    assert len(problems) == 1 and problems[0].startswith("cloudhop_ingress_service: ")
    assert "at most 63 characters (it has 64)" in problems[0]
    assert not _ok("Service", "s" * 60 + "-aws")
    # without MetalLB there is no second Service, and the 60-character name itself is fine
    plain = {"metadata": {"name": "s" * 60}}
    assert k8s_names.check(_preflight_names("x8p9sk2tzv", plain)) == []
    too_long_id = LONGEST_ID + "x"
    assert [p.split(":")[0] for p in k8s_names.check(_preflight_names(too_long_id, METALLB, "gcp"))] \
        == ["cloudhop_cluster_id"]
    assert not _ok("label-value", k8s_names.credential_secret_name("gcp", too_long_id))
