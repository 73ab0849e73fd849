#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: wireguard_keys
short_description: WireGuard keys of the VPN hubs and node slots, kept on the controller
version_added: 0.1.0
description:
  - Makes and keeps the X25519 keys of the WireGuard VPN backend in I(path) - one per hub
    (C(hub-<i>.key)) and one per node slot (C(slot-<k>.key)) - as C(wg genkey) writes them
    (base64 text), mode 0600 in a 0700 directory, and returns their public keys.
  - A key that is there is kept, so a resumed run keeps the same keys; I(rotate=true) makes
    every key anew (the hubs and nodes then need the new ones - re-run the C(seed_vpn) and
    C(vpn_overlay) phases).
  - A key file that cannot be read or is not a key fails the task, naming the file, before
    anything is written.
  - The private keys are not returned; the roles read them from the files (no_log) into the
    hubs' and nodes' Secrets.
  - Run it on the controller (C(delegate_to=localhost)).
author:
  - cloudhop contributors (@cloudhop)
attributes:
  check_mode:
    description: Reads and checks the keys that are there; writes none, and says which it would make.
    support: full
  diff_mode:
    description: The key files made or made anew (names only).
    support: full
options:
  path:
    description: The key directory (made 0700 when missing).
    type: path
    required: true
  hubs:
    description: How many hubs (C(hub-0) to C(hub-<hubs - 1>)).
    type: int
    required: true
  slots:
    description: How many node slots (C(slot-0) to C(slot-<slots - 1>)).
    type: int
    required: true
  rotate:
    description: Make every key anew.
    type: bool
    default: false
requirements:
  - cryptography
"""

EXAMPLES = r"""
- name: The hubs' and nodes' WireGuard keys
  cloudhop.k8s_migration.wireguard_keys:
    path: ~/.cloudhop/backups/x8p9sk2tzv/vpn-wg
    hubs: 2
    slots: 32
  delegate_to: localhost
  register: wg_keys
"""

RETURN = r"""
hub_public_keys:
  description: The hubs' public keys, hub 0 first (null in check mode for a key not made yet).
  returned: always
  type: list
  elements: str
  sample: [hHd0U0bWY8ZP5NnZrDXyzdFqO4Hn3pdNmk5Fz3hqdEE=]
slot_public_keys:
  description: The node slots' public keys, slot 0 first.
  returned: always
  type: list
  elements: str
made:
  description: The keys made (or that would be made, in check mode), by name.
  returned: always
  type: list
  elements: str
  sample: [hub-0, hub-1, slot-0]
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils.common import MigrationError
from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import wireguard


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            hubs=dict(type="int", required=True),
            slots=dict(type="int", required=True),
            rotate=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params["hubs"] <= wireguard.MAX_HUBS or params["slots"] < 1:
        module.fail_json(msg="hubs must be 1 to %d and slots at least 1 (hubs=%s, slots=%s)"
                         % (wireguard.MAX_HUBS, params["hubs"], params["slots"]))
    hubs = ["hub-%d" % i for i in range(params["hubs"])]
    slots = ["slot-%d" % k for k in range(params["slots"])]
    names = hubs + slots
    directory = params["path"]  # type path: ~ expanded
    try:
        if not wireguard.HAS_CRYPTOGRAPHY:
            raise MigrationError("the cryptography Python library is needed on the controller")
        # every key that is there is read (and checked) before any is made
        wireguard.ensure_keys(directory, names, rotate=names if params["rotate"] else (),
                              check_mode=True)
        keys, made = wireguard.ensure_keys(directory, names,
                                           rotate=names if params["rotate"] else (),
                                           check_mode=module.check_mode)
    except MigrationError as exc:
        module.fail_json(msg=str(exc))
    pub = {n: (wireguard.public_key(k) if k else None) for n, k in keys.items()}
    result = {"changed": bool(made), "made": made,
              "hub_public_keys": [pub[n] for n in hubs],
              "slot_public_keys": [pub[n] for n in slots]}
    if module._diff:
        result["diff"] = {"before": "".join("%s.key\n" % n for n in names if n not in made),
                          "after": "".join("%s.key\n" % n for n in names)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
