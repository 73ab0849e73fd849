#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_forwarding_rule_info
short_description: List a region's Compute Engine forwarding rules, or those of one Kubernetes Service
version_added: 0.1.0
description:
  - Lists the regional forwarding rules of a project through the Compute Engine v1 REST API,
    authenticated with google-auth as a service account (read-only scope).
  - With I(service), returns only the rules the GCP cloud controller manager created for that
    Service, which it marks with the description C({"kubernetes.io/service-name":"<ns>/<name>"}).
    With I(address) as well, only the rule at that address.
  - Needs C(compute.forwardingRules.list) on the project (role C(roles/compute.viewer)).
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - cloudhop.k8s_migration.attributes.info
  - cloudhop.k8s_migration.gcp
options:
  region:
    description: The region, for example C(europe-west3).
    type: str
    required: true
  service:
    description: Only the rules of this Kubernetes Service, as C(<namespace>/<name>).
    type: str
  address:
    description: Only the rules at this IP address (with I(service)).
    type: str
"""

EXAMPLES = r"""
- name: The load balancer the cloud controller manager made for the ingress
  cloudhop.k8s_migration.gcp_forwarding_rule_info:
    service_account: /secure/gcp-sa.json
    region: europe-west3
    service: ingress-nginx/ingress-nginx-controller
  register: ingress_rules
"""

RETURN = r"""
forwarding_rules:
  description: The matching forwarding rules, as the API returns them.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "IPAddress": "203.0.113.7",
            "description": "{\"kubernetes.io/service-name\":\"ingress-nginx/ingress-nginx\"}"}]
names:
  description: The names of all forwarding rules of the region, matching or not.
  returned: always
  type: list
  elements: str
  sample: ["a1b2c3d4e5f60718293a4b5c6d7e8f90"]
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.gcp import (
    COMPUTE_READ_SCOPE, GoogleModule, rules_for_service)


def run(mod):
    p = mod.params
    if p["address"] and not p["service"]:
        raise MigrationError("address needs service: give the Service (<namespace>/<name>) whose "
                             "rule should have that address")
    api = mod.api([COMPUTE_READ_SCOPE])
    rules = api.forwarding_rules(p["project"] or api.project, p["region"])
    found = rules_for_service(rules, p["service"], p["address"]) if p["service"] else rules
    return {"changed": False, "forwarding_rules": found,
            "names": [r.get("name") for r in rules]}


def main():
    GoogleModule(dict(region={"type": "str", "required": True}, service={"type": "str"},
                      address={"type": "str"})).run(run)


if __name__ == "__main__":
    main()
