"""Replica-set configuration and optimes, by the MongoDB manual's rules.

- A config (``replSetInitiate`` / ``replSetReconfig`` / ``replSetGetConfig``): ``_id`` (the set
  name), ``version``, ``term``, ``members`` (``_id``, ``host``, ``priority`` default 1, ``votes``
  default 1, ``hidden``, ``arbiterOnly``, ``buildIndexes``, ``tags``, ``secondaryDelaySecs``,
  ``newlyAdded``), ``settings`` (``heartbeatIntervalMillis`` 2000, ``heartbeatTimeoutSecs`` 10,
  ``electionTimeoutMillis`` 10000, ``chainingAllowed``, ``replicaSetId``).
- Checks as mongod's ``ReplSetConfig::validate`` and ``repl_set_config_checks.cpp``: member
  ``_id`` and host unique, ``host`` with a port, at most 7 voters and 50 members, votes 0 or 1,
  a non-voter has priority 0, hidden members have priority 0, at least one electable member; a
  reconfig's version must grow, the set name and id stay, a host keeps its ``_id``, and a
  non-force reconfig adds or removes at most one voter (a ``newlyAdded`` member does not vote).
- An optime is ``{ts: Timestamp, t: term}``, compared by term first, then timestamp.
"""

import copy

from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from .errors import MongoError

STATES = {0: "STARTUP", 1: "PRIMARY", 2: "SECONDARY", 3: "RECOVERING", 5: "STARTUP2",
          6: "UNKNOWN", 7: "ARBITER", 8: "DOWN", 9: "ROLLBACK", 10: "REMOVED"}
STARTUP, PRIMARY, SECONDARY, RECOVERING, STARTUP2, DOWN, ROLLBACK, REMOVED = 0, 1, 2, 3, 5, 8, 9, 10
NULL_OPTIME = (Timestamp(0, 0), -1)
SETTINGS = {"chainingAllowed": True, "heartbeatIntervalMillis": 2000, "heartbeatTimeoutSecs": 10,
            "electionTimeoutMillis": 10000, "catchUpTimeoutMillis": -1,
            "catchUpTakeoverDelayMillis": 30000, "getLastErrorModes": {},
            "getLastErrorDefaults": {"w": 1, "wtimeout": 0}}
MEMBER = {"arbiterOnly": False, "buildIndexes": True, "hidden": False, "priority": 1.0,
          "tags": {}, "secondaryDelaySecs": Int64(0), "votes": 1}


def optime_key(op):
    ts, t = op
    return (int(t), ts.time, ts.inc)


def optime_doc(op):
    return {"ts": op[0], "t": Int64(op[1])}


def optime_from(doc):
    if not doc:
        return NULL_OPTIME
    return (doc["ts"], int(doc["t"]))


def votes(member):
    """A member's vote as it counts now: a newlyAdded member does not vote yet."""
    return 0 if member.get("newlyAdded") else int(member.get("votes", 1))


def priority(member):
    return 0.0 if member.get("newlyAdded") else float(member.get("priority", 1))


def electable(member):
    return priority(member) > 0 and votes(member) > 0 and not member.get("arbiterOnly")


def voters(config):
    return [m for m in config["members"] if votes(m) > 0]


def majority(config):
    return len(voters(config)) // 2 + 1


def normalize(raw, set_name, initiate):
    """A validated config with mongod's defaults filled in; raises MongoError 93/103."""
    if not isinstance(raw, dict):
        raise MongoError(93, "replica set config must be an object")
    cfg = copy.deepcopy(raw)
    if cfg.get("_id") != set_name:
        raise MongoError(93 if initiate else 103,
                         "Attempting to %s a replica set with name %s, but command line reports "
                         "%s; rejecting" % ("initiate" if initiate else "reconfigure",
                                            cfg.get("_id"), set_name))
    version = cfg.get("version", 1)
    if not isinstance(version, int) or version < 1:
        raise MongoError(93, "version field value of %r is out of range" % (version,))
    cfg["version"] = int(version)
    members = cfg.get("members")
    if not isinstance(members, list) or not members:
        raise MongoError(93, "Replica set configuration must contain at least one member")
    if len(members) > 50:
        raise MongoError(93, "Replica set configuration contains %d members, but must have at "
                             "most 50" % len(members))
    ids, hosts, out = set(), set(), []
    for m in members:
        if not isinstance(m, dict) or "_id" not in m or "host" not in m:
            raise MongoError(93, "Replica set configuration members need an _id and a host")
        host = str(m["host"])
        if ":" not in host:
            host += ":27017"
        if m["_id"] in ids:
            raise MongoError(93, "Found two member configurations with same _id field, "
                                 "members.%d._id == %s" % (len(out), m["_id"]))
        if host in hosts:
            raise MongoError(93, "Found two member configurations with same host field, "
                                 "members.%d.host == %s" % (len(out), host))
        ids.add(m["_id"])
        hosts.add(host)
        member = dict(MEMBER, **m)
        member["host"] = host
        member["votes"] = int(member["votes"])
        member["priority"] = float(member["priority"])
        if member["votes"] not in (0, 1):
            raise MongoError(93, "votes field value is %d but must be 0 or 1" % member["votes"])
        if member["votes"] == 0 and member["priority"] != 0:
            raise MongoError(93, "priority must be 0 when non-voting (votes:0)")
        if member["hidden"] and member["priority"] != 0:
            raise MongoError(93, "priority must be 0 when hidden=true")
        if member["arbiterOnly"]:
            raise MongoError(93, "the lab's MongoDB has no arbiters (member %s)" % host)
        out.append(member)
    cfg["members"] = out
    if sum(1 for m in out if m["votes"]) > 7:
        raise MongoError(93, "Replica set configuration contains %d voting members, but must "
                             "be at most 7" % sum(1 for m in out if m["votes"]))
    if not any(m["priority"] > 0 and m["votes"] for m in out):
        raise MongoError(93, "Replica set configuration must contain at least one "
                             "electable member")
    settings = dict(SETTINGS, **(cfg.get("settings") or {}))
    settings.setdefault("replicaSetId", ObjectId())
    cfg["settings"] = settings
    cfg.setdefault("protocolVersion", Int64(1))
    cfg.setdefault("writeConcernMajorityJournalDefault", True)
    return cfg


def check_reconfig(old, new, force):
    """mongod's validateOldAndNewConfigsCompatible and validateSingleNodeChange."""
    if not force and new["version"] <= old["version"]:
        raise MongoError(103, "New replica set configuration version and term must be greater "
                              "than old, but {version: %d, term: %d} is not greater than "
                              "{version: %d, term: %d} for replica set %s" % (
                                  new["version"], int(new.get("term", -1)), old["version"],
                                  int(old.get("term", -1)), new["_id"]))
    if old["settings"].get("replicaSetId") != new["settings"].get("replicaSetId"):
        raise MongoError(103, "New and old configurations differ in replica set ID; old was %s, "
                              "and new is %s" % (old["settings"].get("replicaSetId"),
                                                 new["settings"].get("replicaSetId")))
    for mn in new["members"]:
        for mo in old["members"]:
            if mo["host"] == mn["host"] and mo["_id"] != mn["_id"]:
                raise MongoError(103, "New and old configurations both have members with host "
                                      "of %s but in the new configuration the _id field is %s "
                                      "and in the old configuration it is %s for replica set %s"
                                 % (mo["host"], mn["_id"], mo["_id"], new["_id"]))
    if not force:
        before = {m["_id"] for m in voters(old)}
        after = {m["_id"] for m in voters(new)}
        if len(before ^ after) > 1:
            raise MongoError(93, "Non force replica set reconfig can only add or remove at most "
                                 "1 voting member.")


def mark_newly_added(old, new):
    """As the primary does (4.4+): a new member with votes 1 joins with ``newlyAdded: true`` and
    does not count as a voter until it is SECONDARY (the primary then removes the flag by a
    reconfig of its own). A member keeps the flag while it has it; what the user sends for it
    is not taken."""
    known = {m["_id"]: m for m in old["members"]}
    for m in new["members"]:
        m.pop("newlyAdded", None)
        before = known.get(m["_id"])
        if m["votes"] and (before is None or before.get("newlyAdded")):
            m["newlyAdded"] = True


def member(config, host):
    for m in (config or {}).get("members") or []:
        if m["host"] == host:
            return m
    return None


def election_id(term):
    """electionId as mongod makes it (OID::fromTerm): max timestamp, then the term."""
    return ObjectId(b"\x7f\xff\xff\xff" + int(term).to_bytes(8, "big"))
