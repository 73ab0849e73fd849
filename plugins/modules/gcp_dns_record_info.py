#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_dns_record_info
short_description: Read a record set of a Google Cloud DNS managed zone
version_added: 0.1.0
description:
  - Reads one resource record set of a Cloud DNS managed zone through the Cloud DNS v1 REST API,
    authenticated with google-auth as a service account (read-only scope).
  - A record set that does not exist is RV(record=null), not an error; a zone the project does
    not have is an error that lists the zones it has.
  - The service account needs C(dns.managedZones.list) and C(dns.resourceRecordSets.list) on the
    project (role C(roles/dns.reader)).
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - cloudhop.k8s_migration.attributes.info
  - cloudhop.k8s_migration.gcp
  - cloudhop.k8s_migration.gcp.record
"""

EXAMPLES = r"""
- name: Read the application's record
  cloudhop.k8s_migration.gcp_dns_record_info:
    service_account: /secure/dns-sa.json
    zone: example.com
    record: app.example.com
  register: app_record

- name: Show where it points
  ansible.builtin.debug:
    msg: "{{ app_record.record.rrdatas | default([]) }}"
"""

RETURN = r"""
record:
  description: The record set, or null if the zone has none of that name and type.
  returned: always
  type: dict
  sample: {"name": "app.example.com.", "type": "A", "ttl": 300, "rrdatas": ["198.51.100.4"]}
managed_zone:
  description: The managed zone's resource name.
  returned: always
  type: str
  sample: example-com
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.gcp import (
    DNS_READ_SCOPE, GoogleModule, read_record, record_spec, simple_rrset)


def run(mod):
    dummy, zone, current = read_record(mod, mod.api([DNS_READ_SCOPE]))
    return {"changed": False, "managed_zone": zone, "record": simple_rrset(current)}


def main():
    GoogleModule(record_spec()).run(run)


if __name__ == "__main__":
    main()
