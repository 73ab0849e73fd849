# -*- coding: utf-8 -*-
# Copyright: (c) 2026, cloudhop contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plans for moving a MongoDB replica set's members from one environment to another, as
sequences of reconfigs that mongod accepts one after the other (the MongoDB manual's rules,
``../shared/reference/cluster-move-facts.md``).

Every plan is computed from the *current* config (``replSetGetConfig``) and primary, so a
resumed run plans only what is left. Every step's member list keeps every field of every
member (community.mongodb's ``mongodb_replicaset`` replaces member documents with what it is
given), leaves out ``newlyAdded`` (the primary's own field) and is checked by
:func:`check_step` against the step before it.

- :func:`join_steps`: the new members join one per reconfig, non-voting with priority 0
  (the manual's advice for members still syncing: they cannot vote or be elected, and the old
  environment keeps its majority if the link fails).
- :func:`transfer_steps`: votes, then priority, move from the old members to the new ones,
  one vote per reconfig (mongod refuses more), alternating a new vote with an old one taken
  away so the number of voters stays odd; the old secondaries go to ``votes: 0, priority: 0``
  together (a non-voter must have priority 0); then the new members get the priority; then a
  ``stepdown`` of the old primary (it cannot get priority 0 while primary); then, on the new
  primary, the old primary itself goes to ``votes: 0, priority: 0``. Used both ways: the
  move's primary switch, and its rollback.
- :func:`remove_steps`: members removed one per reconfig, only non-voting ones (removing a
  voter is a vote change the transfer must do first).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

MAX_VOTERS = 7
MAX_MEMBERS = 50


class PlanError(ValueError):
    """A plan that cannot be made, with what to do about it."""


def parse_host(host, what="host"):
    """``name:port`` -> (name, port); a member's host must name its port (community.mongodb
    matches hosts exactly and adds no default port)."""
    if not isinstance(host, str) or ":" not in host:
        raise PlanError("%s %r: give it as name:port, for example mongo-0.example.com:27017 "
                        "(members are matched exactly, with no default port)" % (what, host))
    name, port = host.rsplit(":", 1)
    try:
        number = int(port)
    except ValueError:
        number = 0
    if not name or not 0 < number < 65536:
        raise PlanError("%s %r: the port must be a number from 1 to 65535" % (what, host))
    return name, number


def _votes(member):
    return int(member.get("votes", 1))


def _priority(member):
    return float(member.get("priority", 1))


def voters(members):
    return [m for m in members if _votes(m)]


def _clean(members):
    out = []
    for m in members:
        m = copy.deepcopy(m)
        m.pop("newlyAdded", None)
        out.append(m)
    return out


def _find(members, host):
    return next((m for m in members if m["host"] == host), None)


def check_step(before, after, primary=None):
    """Raise PlanError for a member list mongod would refuse after ``before`` (a non-force
    reconfig), or that would remove or demote the current ``primary``."""
    hosts = [m["host"] for m in after]
    ids = [m["_id"] for m in after]
    if len(set(hosts)) != len(hosts):
        raise PlanError("a host is listed twice: %s" % ", ".join(sorted(
            h for h in set(hosts) if hosts.count(h) > 1)))
    if len(set(ids)) != len(ids):
        raise PlanError("a member _id is used twice")
    if len(after) > MAX_MEMBERS:
        raise PlanError("a replica set has at most %d members, this step has %d"
                        % (MAX_MEMBERS, len(after)))
    if len(voters(after)) > MAX_VOTERS:
        raise PlanError("a replica set has at most %d voting members, this step has %d"
                        % (MAX_VOTERS, len(voters(after))))
    for m in after:
        parse_host(m["host"], "member")
        if _votes(m) not in (0, 1):
            raise PlanError("member %s: votes must be 0 or 1" % m["host"])
        if not _votes(m) and _priority(m) > 0:
            raise PlanError("member %s: a non-voting member must have priority 0" % m["host"])
        if m.get("hidden") and _priority(m) > 0:
            raise PlanError("member %s: a hidden member must have priority 0" % m["host"])
        if m.get("newlyAdded") is not None:
            raise PlanError("member %s: newlyAdded is the primary's field, not the user's"
                            % m["host"])
    if not any(_votes(m) and _priority(m) > 0 and not m.get("arbiterOnly") for m in after):
        raise PlanError("no member could be elected primary (none votes with priority > 0)")
    old = {m["host"]: m for m in before}
    for m in after:
        if m["host"] in old and old[m["host"]]["_id"] != m["_id"]:
            raise PlanError("member %s must keep its _id %s" % (m["host"], old[m["host"]]["_id"]))
    changed = {m["_id"] for m in voters(before)} ^ {m["_id"] for m in voters(after)}
    if len(changed) > 1:
        raise PlanError("a reconfig may add or remove at most one vote, this step changes %d"
                        % len(changed))
    if primary is not None and primary in old:
        mine = _find(after, primary)
        if mine is None:
            raise PlanError("the primary %s cannot be removed; step it down first" % primary)
        if _priority(mine) <= 0:
            raise PlanError("the primary %s cannot get priority 0; step it down first" % primary)


def _checked(steps, members, primary):
    before = members
    for step in steps:
        if step["action"] == "reconfig":
            check_step(before, step["members"], primary)
            before = step["members"]
        elif step["action"] == "stepdown":
            primary = None  # the next reconfig goes to whichever member is primary then
    return steps


def join_steps(members, new_hosts, primary=None):
    """One reconfig per new member: ``{host, priority: 0, votes: 0}`` with the next free
    ``_id``. A host already in the set is not added again (a resumed join)."""
    members = _clean(members)
    for host in new_hosts:
        parse_host(host, "new member")
    if len(set(new_hosts)) != len(new_hosts):
        raise PlanError("a new member is listed twice")
    steps = []
    cur = members
    for host in new_hosts:
        if _find(cur, host) is not None:
            continue
        nxt = copy.deepcopy(cur)
        nxt.append({"_id": max([m["_id"] for m in cur] + [-1]) + 1, "host": host,
                    "priority": 0, "votes": 0})
        steps.append({"action": "reconfig", "why": "add %s (priority 0, votes 0)" % host,
                      "members": nxt})
        cur = nxt
    return _checked(steps, members, primary)


def transfer_steps(members, from_hosts, to_hosts, primary, priority=1, priorities=None):
    """Move votes and priority from ``from_hosts`` to ``to_hosts`` (every one of which must be
    a member already): see the module's docstring. ``primary`` is the current primary's host;
    ``priority`` the one the receiving members get, ``priorities`` ({host: priority}) one of
    their own for some of them (a rollback gives the old members theirs back). Returns []
    when nothing is left to do."""
    members = _clean(members)
    priorities = dict(priorities or {})
    for host, value in priorities.items():
        if host not in to_hosts:
            raise PlanError("a priority for %s, which does not receive the votes" % host)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 \
                or value > 1000:
            raise PlanError("the priority of %s must be from 0 to 1000, not %r"
                            % (host, value))
    for host in list(from_hosts) + list(to_hosts):
        parse_host(host)
        if _find(members, host) is None:
            raise PlanError("%s is not a member of the replica set; add it first" % host)
    if set(from_hosts) & set(to_hosts):
        raise PlanError("a host cannot be on both sides: %s" % ", ".join(
            sorted(set(from_hosts) & set(to_hosts))))
    if primary is not None and _find(members, primary) is None:
        raise PlanError("the primary %s is not in the config" % primary)
    if len(to_hosts) > MAX_VOTERS:
        raise PlanError("at most %d members can vote; %d would" % (MAX_VOTERS, len(to_hosts)))
    steps = []
    cur = members

    def step(why, change):
        nonlocal cur
        nxt = copy.deepcopy(cur)
        for host, fields in change.items():
            _find(nxt, host).update(fields)
        steps.append({"action": "reconfig", "why": why, "members": nxt})
        cur = nxt

    gain = [h for h in to_hosts if not _votes(_find(cur, h))]
    lose = [h for h in from_hosts if _votes(_find(cur, h)) and h != primary]
    while gain or lose:
        odd = len(voters(cur)) % 2 == 1
        if gain and (odd or not lose) and len(voters(cur)) < MAX_VOTERS:
            host = gain.pop(0)
            step("%s votes (priority 0 until the votes have moved)" % host, {host: {"votes": 1}})
        elif lose:
            host = lose.pop(0)
            step("%s stops voting (votes 0, priority 0)" % host,
                 {host: {"votes": 0, "priority": 0}})
        else:
            raise PlanError("cannot give %s a vote: %d members vote already"
                            % (gain[0], len(voters(cur))))
    # the secondaries that keep their vote do not stand for election any more
    quiet = {h: {"priority": 0} for h in from_hosts if h != primary and
             _priority(_find(cur, h)) > 0}
    want = dict((h, priorities.get(h, priority)) for h in to_hosts)
    raise_ = {h: {"priority": want[h]} for h in to_hosts if _priority(_find(cur, h)) != want[h]}
    if quiet or raise_:
        groups = {}
        for host in sorted(raise_):
            groups.setdefault(want[host], []).append(host)
        why = "; ".join("priority %s for %s" % (value, ", ".join(hosts))
                        for value, hosts in groups.items()) or "priority %s for -" % priority
        if quiet:
            why += "; priority 0 for %s" % ", ".join(sorted(quiet))
        step(why, dict(raise_, **quiet))
    if primary in from_hosts:
        steps.append({"action": "stepdown", "why": "the primary %s steps down; a member of %s "
                                                   "is elected" % (primary, ", ".join(to_hosts)),
                      "host": primary})
        mine = _find(cur, primary)
        if _votes(mine) or _priority(mine) > 0:
            step("%s (primary until the step-down) stops voting (votes 0, priority 0)" % primary,
                 {primary: {"votes": 0, "priority": 0}})
    return _checked(steps, members, primary)


def remove_steps(members, hosts, primary=None):
    """One reconfig per member removed; a voting member is refused (move its vote first)."""
    members = _clean(members)
    steps = []
    cur = members
    for host in hosts:
        parse_host(host)
        m = _find(cur, host)
        if m is None:
            continue  # removed already (a resumed cleanup)
        if _votes(m):
            raise PlanError("member %s still votes; move the votes to the new members before "
                            "removing the old ones" % host)
        nxt = [x for x in copy.deepcopy(cur) if x["host"] != host]
        steps.append({"action": "reconfig", "why": "remove %s" % host, "members": nxt})
        cur = nxt
    return _checked(steps, members, primary)
