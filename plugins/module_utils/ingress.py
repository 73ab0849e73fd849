# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ingress's load balancer: whether the ingress phase gives the target cloud's load balancer
a second Service, and that Service's name (preflight checks the name, the ingress phase makes
the Service). Pure functions over plain dicts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError

MODES = ("auto", "always", "never")


def needs_second_service(service, mode="auto"):
    """``always``, ``never``, or ``auto``: when the current Service is bound to the old cloud's
    load balancer, which a ``spec.loadBalancerClass`` or a MetalLB annotation (``metallb.*``)
    shows, the target cloud's controller would not take it over."""
    if mode not in MODES:
        raise MigrationError("ingress_second_service is %r; use one of %s"
                             % (mode, ", ".join(MODES)))
    if mode != "auto":
        return mode == "always"
    service = service or {}
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    return "loadBalancerClass" in (service.get("spec") or {}) or \
        any(key.startswith("metallb.") for key in annotations)


def service_name(name, target_cloud, second):
    """The Service that gets the target cloud's load balancer: ``<name>-<cloud>`` when it is a
    second Service, else the ingress Service itself."""
    return "%s-%s" % (name, target_cloud) if second else name
