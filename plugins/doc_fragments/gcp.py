# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # The service account and API root of the modules that call Google's REST APIs.
    DOCUMENTATION = r"""
options:
  service_account:
    description:
      - The service account's JSON key, as a file path, as JSON text or as a dict.
      - Tokens come from the key's C(token_uri). Its private key never shows in output.
    type: raw
    required: true
  project:
    description: The project to call the API on. Defaults to the key's C(project_id).
    type: str
  endpoint_url:
    description:
      - The root of the Google APIs, instead of C(https://dns.googleapis.com) and
        C(https://compute.googleapis.com), for a private endpoint or a test double.
    type: str
requirements:
  - google-auth >= 2.0
  - requests
"""

    # The record set that gcp_dns_record and gcp_dns_record_info address.
    RECORD = r"""
options:
  zone:
    description: The DNS name of the managed zone, for example C(example.com).
    type: str
    required: true
  managed_zone:
    description:
      - The managed zone's resource name, for when several zones of the project serve I(zone).
      - When unset, the one public zone whose DNS name is I(zone) is used.
    type: str
  record:
    description: The record's name, inside I(zone); the trailing dot is optional.
    type: str
    required: true
  type:
    description: The record type.
    type: str
    default: A
    choices: [A, AAAA, CNAME, TXT]
"""
