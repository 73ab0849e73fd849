#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: mongodb_replset_info
short_description: Read a MongoDB replica set's config and members, and plan the move's reconfigs
version_added: 0.1.0
description:
  - Reads C(replSetGetConfig) and C(replSetGetStatus) of a replica set through the same login as
    the community.mongodb modules (their options and helpers), and returns every member's
    config (every field, for C(community.mongodb.mongodb_replicaset) with C(reconfigure)), its
    state, health, whether it is C(newlyAdded) and how many seconds it is behind the primary.
  - With I(plan), also the reconfigs of the cluster-to-cluster move that are still to do,
    computed from this config and primary - C(join) adds I(new_members) one per reconfig
    without vote or priority; C(transfer) moves votes and priority from I(from_members) to
    I(to_members) one vote per reconfig, with the old primary's C(stepdown) in between;
    C(remove) removes I(remove_members) (non-voting ones) one per reconfig. A resumed run
    gets only the steps left.
  - Checks first that I(login_host) belongs to the replica set I(replica_set) (a direct
    C(hello)), so a wrong name fails at once and says what the member reported.
  - Reads only; check mode runs the same reads.
author:
  - cloudhop contributors (@cloudhop)
extends_documentation_fragment:
  - community.mongodb.login_options
  - community.mongodb.ssl_options
options:
  replica_set:
    description: The replica set's name.
    type: str
    required: true
  plan:
    description: Which plan to return in I(steps) (C(none) - none).
    type: str
    choices: [none, join, transfer, remove]
    default: none
  new_members:
    description: C(join) - the hosts (C(name:port)) to add.
    type: list
    elements: str
    default: []
  from_members:
    description: C(transfer) - the hosts that give up their votes and priority.
    type: list
    elements: str
    default: []
  to_members:
    description: C(transfer) - the hosts that get them.
    type: list
    elements: str
    default: []
  remove_members:
    description: C(remove) - the hosts to remove.
    type: list
    elements: str
    default: []
  priority:
    description: C(transfer) - the priority the receiving members get.
    type: float
    default: 1
  priorities:
    description:
      - C(transfer) - a priority of its own for some receiving members (C(name:port) - priority),
        in place of I(priority); a rollback gives the old members the priorities they had.
    type: dict
    default: {}
notes:
  - Needs pymongo on the host that runs it (the controller, for the move).
  - Hosts are compared exactly, as community.mongodb does; give them as C(name:port).
"""

EXAMPLES = r"""
- name: Where the replica set stands, and the joins still to do
  cloudhop.k8s_migration.mongodb_replset_info:
    login_host: 10.2.0.200
    login_port: 27017
    login_user: "{{ mongo_admin_user }}"
    login_password: "{{ mongo_admin_password }}"
    replica_set: rs0
    plan: join
    new_members: [172.31.0.200:27017, 172.31.0.201:27017, 172.31.0.202:27017]
  register: rs

- name: Apply the first one
  community.mongodb.mongodb_replicaset:
    login_host: "{{ rs.primary.split(':')[0] }}"
    login_port: "{{ rs.primary.split(':')[1] | int }}"
    replica_set: rs0
    reconfigure: true
    members: "{{ rs.steps[0].members }}"
  when: rs.steps | length > 0
"""

RETURN = r"""
set_name:
  description: The replica set's name.
  returned: always
  type: str
  sample: rs0
primary:
  description: The primary's host, or null when there is none.
  returned: always
  type: str
  sample: 10.2.0.201:27017
version:
  description: The config's version.
  returned: always
  type: int
  sample: 7
members:
  description:
    - Every member's config (every field) with C(state) (C(PRIMARY), C(SECONDARY), C(STARTUP2),
      C(DOWN) ...), C(health), C(lag_seconds) behind the primary (null when unknown) and
      C(newly_added).
  returned: always
  type: list
  elements: dict
  sample: [{"_id": 3, "host": "172.31.0.200:27017", "priority": 0.0, "votes": 0,
            "state": "SECONDARY", "health": 1.0, "lag_seconds": 0, "newly_added": false}]
steps:
  description:
    - The reconfigs (and step-down) of I(plan) still to do, in order - each C(action)
      (C(reconfig) or C(stepdown)), C(why), and C(members) (the whole member list to give
      C(community.mongodb.mongodb_replicaset)) or C(host) (the primary to step down).
  returned: always
  type: list
  elements: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import replset_plan as rp

try:
    from ansible_collections.community.mongodb.plugins.module_utils.mongodb_common import (
        convert_bson_values_recur, get_mongodb_client, mongo_auth, mongodb_common_argument_spec,
        rename_ssl_option_for_pymongo4, ssl_connection_options)
    HAS_COMMUNITY_MONGODB = True
except ImportError:
    HAS_COMMUNITY_MONGODB = False

    def mongodb_common_argument_spec(ssl_options=True):  # pylint: disable=unused-argument
        return {}

PYMONGO_ERROR = None
try:
    import pymongo
    from pymongo.errors import PyMongoError
    HAS_PYMONGO = True
except ImportError:
    PYMONGO_ERROR = traceback.format_exc()
    HAS_PYMONGO = False

    class PyMongoError(Exception):
        pass


def check_set_name(module):
    """A direct hello to login_host (with the TLS options, as community.mongodb connects): the
    set it belongs to, before anything waits on it."""
    p = module.params
    params = {"host": p["login_host"], "port": p["login_port"], "directConnection": True,
              "serverSelectionTimeoutMS": 5000}
    if p["ssl"]:
        params = rename_ssl_option_for_pymongo4(ssl_connection_options(params, module))
    client = pymongo.MongoClient(**params)
    try:
        hello = client.admin.command("hello")
    finally:
        client.close()
    name = hello.get("setName")
    if name != p["replica_set"]:
        module.fail_json(msg="%s:%s %s; replica_set is %s. Check login_host and replica_set"
                         % (p["login_host"], p["login_port"],
                            "is a member of replica set %s" % name if name else
                            "is not a member of an initiated replica set", p["replica_set"]))


def members_with_status(config, status):
    by_name = {m.get("name"): m for m in status.get("members") or []}
    primary = next((m for m in status.get("members") or [] if m.get("stateStr") == "PRIMARY"),
                   None)
    out = []
    for m in config["members"]:
        m = dict(m)
        st = by_name.get(m["host"]) or {}
        lag = None
        if primary is not None and st.get("optimeDate") and primary.get("optimeDate"):
            lag = max(0, int((primary["optimeDate"] - st["optimeDate"]).total_seconds()))
        m["newly_added"] = bool(m.pop("newlyAdded", False))
        m.update(state=st.get("stateStr", "UNKNOWN"), health=st.get("health"), lag_seconds=lag)
        out.append(m)
    return out, (primary or {}).get("name")


def plain_members(config):
    """The member documents as mongodb_replicaset gets them back (no newlyAdded)."""
    return [{k: v for k, v in m.items() if k != "newlyAdded"} for m in config["members"]]


def main():
    argument_spec = mongodb_common_argument_spec()
    argument_spec.update(
        replica_set={"type": "str", "required": True},
        plan={"type": "str", "default": "none", "choices": ["none", "join", "transfer", "remove"]},
        new_members={"type": "list", "elements": "str", "default": []},
        from_members={"type": "list", "elements": "str", "default": []},
        to_members={"type": "list", "elements": "str", "default": []},
        remove_members={"type": "list", "elements": "str", "default": []},
        priority={"type": "float", "default": 1},
        priorities={"type": "dict", "default": {}},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_COMMUNITY_MONGODB:
        module.fail_json(msg="this module needs the community.mongodb collection (its login "
                             "helpers): ansible-galaxy collection install community.mongodb")
    if not HAS_PYMONGO:
        module.fail_json(msg=missing_required_lib("pymongo"), exception=PYMONGO_ERROR)
    p = module.params
    try:
        check_set_name(module)
        client = get_mongodb_client(module)
        client = mongo_auth(module, client)
        config = client.admin.command("replSetGetConfig")["config"]
        status = client.admin.command("replSetGetStatus")
    except PyMongoError as exc:
        module.fail_json(msg="reading replica set %s through %s:%s failed: %s" % (
            p["replica_set"], p["login_host"], p["login_port"], exc))
    members, primary = members_with_status(config, status)
    current = [convert_bson_values_recur(m) for m in plain_members(config)]
    try:
        if p["plan"] == "join":
            steps = rp.join_steps(current, p["new_members"], primary)
        elif p["plan"] == "transfer":
            steps = rp.transfer_steps(current, p["from_members"], p["to_members"], primary,
                                      p["priority"], p["priorities"])
        elif p["plan"] == "remove":
            steps = rp.remove_steps(current, p["remove_members"], primary)
        else:
            steps = []
    except rp.PlanError as exc:
        module.fail_json(msg="replica set %s: %s" % (p["replica_set"], exc))
    module.exit_json(changed=False, set_name=config["_id"], primary=primary,
                     version=int(config["version"]),
                     members=[convert_bson_values_recur(m) for m in members], steps=steps)


if __name__ == "__main__":
    main()
