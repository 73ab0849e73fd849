#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: gcp_dns_record
short_description: Set or delete a record set in a Google Cloud DNS managed zone
version_added: 0.1.0
description:
  - Sets (I(state=present)) or deletes (I(state=absent)) one resource record set of a Cloud DNS
    managed zone through the Cloud DNS v1 REST API, authenticated with google-auth as a service
    account. M(cloudhop.k8s_migration.gcp_dns_record_info) reads one.
  - A change deletes the record set exactly as it was read and adds the wanted one, in one
    atomic Cloud DNS change. When another writer changed the set in between, Cloud DNS refuses
    the change (HTTP 412 or 409); the module then reads the set again and retries, up to three
    times, and says so in RV(retries).
  - With I(wait), returns once the change is C(done), that is once the zone's name servers serve
    it.
  - 429 and 5xx answers are retried with backoff; any other error fails with Google's reason and
    message.
  - The service account needs C(dns.managedZones.list), C(dns.resourceRecordSets.list) and
    C(dns.changes.create)/C(dns.changes.get) on the project (role C(roles/dns.admin) has them).
author:
  - cloudhop contributors (@cloudhop)
attributes:
  check_mode:
    description:
      - Cloud DNS has no dry run. Check mode reads the record set and reports the change it would
        make; nothing is written.
    support: full
  diff_mode:
    description: Returns the record set before and after.
    support: full
extends_documentation_fragment:
  - cloudhop.k8s_migration.gcp
  - cloudhop.k8s_migration.gcp.record
options:
  state:
    description:
      - C(present) makes the record set hold I(values) with I(ttl).
      - C(absent) deletes it.
    type: str
    default: present
    choices: [present, absent]
  values:
    description: The record set's data, for I(state=present).
    type: list
    elements: str
  ttl:
    description: The record set's TTL in seconds, for I(state=present).
    type: int
    default: 300
  wait:
    description: Wait until Cloud DNS reports the change C(done).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the change.
    type: int
    default: 300
notes:
  - The record set's data is compared as a set; C(values) in another order is no change.
"""

EXAMPLES = r"""
- name: Point the application's record at the new load balancer
  cloudhop.k8s_migration.gcp_dns_record:
    service_account: /secure/dns-sa.json
    zone: example.com
    record: app.example.com
    values: [203.0.113.7]
    ttl: 60

- name: Delete a record in another project's zone
  cloudhop.k8s_migration.gcp_dns_record:
    service_account: "{{ lookup('ansible.builtin.file', '/secure/dns-sa.json') | from_json }}"
    project: dns-prod
    zone: example.com
    record: old.example.com
    state: absent
"""

RETURN = r"""
record:
  description: The record set as the module leaves it (would leave it, in check mode), or null if absent.
  returned: always
  type: dict
  sample: {"name": "app.example.com.", "type": "A", "ttl": 60, "rrdatas": ["203.0.113.7"]}
previous:
  description: The record set as read before any change, or null if absent.
  returned: always
  type: dict
  sample: {"name": "app.example.com.", "type": "A", "ttl": 300, "rrdatas": ["198.51.100.4"]}
managed_zone:
  description: The managed zone's resource name.
  returned: always
  type: str
  sample: example-com
change:
  description: The Cloud DNS change (C(id), C(status)) when one was made.
  returned: when changed and not in check mode
  type: dict
  sample: {"id": "7", "status": "done"}
retries:
  description: How often the change was read again and retried after a concurrent writer.
  returned: always
  type: int
  sample: 0
"""

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import (
    MigrationError, redo_on_conflict)
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.gcp import (
    DNS_SCOPE, GoogleApiError, GoogleModule, fqdn, read_record, record_spec, rrset_change,
    simple_rrset)

CONFLICT_RETRIES = 3


def run(mod):
    p = mod.params
    present = p["state"] == "present"
    if present and not p["values"]:
        raise MigrationError("values is empty: give the record's data (for example the new load "
                             "balancer's address), or state=absent to delete the record")
    if p["ttl"] < 0 or p["ttl"] > 604800:
        raise MigrationError("ttl %d is out of range (0 to 604800 seconds)" % p["ttl"])
    api = mod.api([DNS_SCOPE])
    project, zone, current = read_record(mod, api)
    name = fqdn(p["record"])
    result = {"changed": False, "managed_zone": zone, "previous": simple_rrset(current),
              "record": simple_rrset(current), "retries": 0}
    state = {"current": current}

    def attempt():
        """The change from the record set last read, made (not in check mode)."""
        change = rrset_change(state["current"], name, p["type"], p["ttl"],
                              p["values"] if present else None)
        if change is None:
            return
        result["changed"] = True
        after = simple_rrset(change["additions"][0]) if change["additions"] else None
        if not mod.check_mode:
            made = api.change(project, zone, change)
            if p["wait"]:
                made = api.wait_change(project, zone, made, p["wait_timeout"])
            result["change"] = {"id": made.get("id"), "status": made.get("status")}
        result["record"] = after

    def reread(_exc):
        # another writer changed the set since it was read (409, or 412 for a stale deletion)
        result["retries"] += 1
        state["current"] = api.rrset(project, zone, name, p["type"])

    redo_on_conflict(attempt, lambda exc: isinstance(exc, GoogleApiError) and exc.code in (409, 412),
                     CONFLICT_RETRIES, reread)
    if mod.diff_mode:
        result["diff"] = {"before": result["previous"] or {}, "after": result["record"] or {}}
    return result


def main():
    spec = record_spec()
    spec.update(
        state={"type": "str", "default": "present", "choices": ["present", "absent"]},
        values={"type": "list", "elements": "str"},
        ttl={"type": "int", "default": 300},
        wait={"type": "bool", "default": True},
        wait_timeout={"type": "int", "default": 300},
    )
    GoogleModule(spec).run(run)


if __name__ == "__main__":
    main()
