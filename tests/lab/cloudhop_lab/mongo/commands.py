"""The commands of the lab's MongoDB member (member.py), one function each, as mongod answers
them: the handshake, the replica-set commands (and the members' own), CRUD with write concern
and retryable writes. Each takes the member, the database, the command document and the
connection, and returns the reply (``ok: 1`` is added) or raises MongoError."""

import bisect
import copy
import random
import socket
import threading
import time

import bson
from bson.binary import Binary
from bson.int64 import Int64
from bson.timestamp import Timestamp

from . import query, replset as rs, scram, wire
from .errors import MongoError
from .member import MAX_WIRE, OPLOG_NS, VERSION, Peer, key_of, lsid_key, now_dt


def _reply_common(m):
    return m.reply_common()


def _hello(m, db, cmd, conn, legacy=False):
    with m.cv:
        tv = cmd.get("topologyVersion")
        if isinstance(tv, dict) and cmd.get("maxAwaitTimeMS") is not None:
            # an awaitable hello: answer when the topology changes, or after maxAwaitTimeMS
            deadline = time.monotonic() + int(cmd["maxAwaitTimeMS"]) / 1000.0
            while tv.get("processId") == m.process_id and \
                    int(tv.get("counter", -1)) == m.topo_counter and not m.stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                m.cv.wait(left)
        primary = m.state == rs.PRIMARY
        out = {"ismaster" if legacy else "isWritablePrimary": primary}
        if cmd.get("helloOk"):
            out["helloOk"] = True
        cfg = m.config
        if cfg is None:
            out.update({"secondary": False, "isreplicaset": True,
                        "info": "Does not have a valid replica set config"})
        else:
            mine = m.my_member() or {}
            visible = [x for x in cfg["members"] if not x.get("hidden")]
            out.update({
                # by configured priority: a newlyAdded member is listed as it will be
                "hosts": [x["host"] for x in visible if x["priority"] > 0],
                "passives": [x["host"] for x in visible if x["priority"] == 0],
                "setName": m.set_name, "setVersion": cfg["version"],
                "secondary": m.state == rs.SECONDARY,
                "lastWrite": {"opTime": rs.optime_doc(m.applied()),
                              "lastWriteDate": now_dt(),
                              "majorityOpTime": rs.optime_doc(m.commit_point),
                              "majorityWriteDate": now_dt()}})
            if m.me is not None and rs.member(cfg, m.me) is not None:
                out["me"] = m.me
            if not out["passives"]:
                del out["passives"]
            if mine.get("hidden"):
                out["hidden"] = True
            if mine.get("tags"):
                out["tags"] = mine["tags"]
            ph = m.primary_host()
            if ph:
                out["primary"] = ph
            if primary:
                out["electionId"] = rs.election_id(m.term)
            if m.state not in (rs.PRIMARY, rs.SECONDARY):
                out["secondary"] = False
    out["topologyVersion"] = {"processId": m.process_id, "counter": Int64(m.topo_counter)}
    mechs = cmd.get("saslSupportedMechs")
    if isinstance(mechs, str) and "." in mechs and tuple(mechs.split(".", 1)) in m.users:
        out["saslSupportedMechs"] = ["SCRAM-SHA-256"]
    out.update({"maxBsonObjectSize": 16777216, "maxMessageSizeBytes": 48000000,
                "maxWriteBatchSize": 100000, "localTime": now_dt(),
                "logicalSessionTimeoutMinutes": 30, "connectionId": conn["id"],
                "minWireVersion": 0, "maxWireVersion": MAX_WIRE, "readOnly": False})
    out.update(_reply_common(m))
    return out


def _sasl_start(m, db, cmd, conn):
    if cmd.get("mechanism") != "SCRAM-SHA-256":
        raise MongoError(2, "Received authentication for mechanism %s which is not enabled"
                         % cmd.get("mechanism"))
    conv = conn["sasl"] = scram.ServerConversation(m.users)
    try:
        first = conv.start(db, cmd.get("payload") or b"")
    except (ValueError, KeyError, UnicodeDecodeError):
        raise MongoError(18, "Authentication failed.") from None
    return {"conversationId": 1, "done": False, "payload": Binary(first)}


def _sasl_continue(m, db, cmd, conn):
    conv = conn.pop("sasl", None)
    if conv is None:
        raise MongoError(17, "No SASL session state found")
    ok, final = conv.finish(cmd.get("payload") or b"")
    if not ok:
        raise MongoError(18, "Authentication failed.")
    conn["user"] = conv.user
    return {"conversationId": 1, "done": True, "payload": Binary(final)}


def _build_info(m, db, cmd, conn):
    return {"version": VERSION, "gitVersion": "cloudhop-lab",
            "versionArray": [int(x) for x in VERSION.split(".")] + [0], "bits": 64,
            "maxBsonObjectSize": 16777216, "storageEngines": ["wiredTiger"],
            "javascriptEngine": "none", "modules": [], "openssl": {"running": "disabled"},
            "debug": False, "allocator": "system", "sysInfo": "deprecated",
            "buildEnvironment": {"target_os": "linux", "target_arch": "x86_64"}}


def _require_config(m):
    if m.config is None:
        raise MongoError(94, "no replset config has been received")


def _initiate(m, db, cmd, conn):
    raw = cmd.get("replSetInitiate")
    if not isinstance(raw, dict):
        # rs.initiate() with no config: this host under its own name, as mongod does
        raw = {"_id": m.set_name, "version": 1, "members": [{"_id": 0, "host": m.me or "%s:%d" % (
            socket.gethostname(), m.port)}]}
    # which member is this one (network calls, not under the lock)
    me = m.find_self(raw) if isinstance(raw.get("members"), list) else None
    with m.cv:
        if m.config is not None:
            raise MongoError(23, "already initialized")
        if me is not None:
            m.me = me
        if raw.get("version", 1) != 1:
            raise MongoError(103, "Configuration used to initiate a replica set must  have "
                                  "version 1, but found %s" % raw.get("version"))
        for x in raw.get("members") or []:
            if isinstance(x, dict) and "newlyAdded" in x:
                raise MongoError(93, "Member %s, with _id %s, has a newlyAdded field, which is "
                                     "not valid for initial configuration of a replica set."
                                 % (x.get("host"), x.get("_id")))
        cfg = rs.normalize(raw, m.set_name, True)
        cfg["term"] = Int64(0)
        mine = rs.member(cfg, m.me)
        if mine is None:
            raise MongoError(74, "No host described in new configuration with {version: 1, "
                                 "term: 0} for replica set %s maps to this node" % m.set_name)
        if not rs.electable(mine):
            raise MongoError(104, "This node, %s, with _id %s is not electable under the new "
                                  "configuration with {version: 1, term: 0} for replica set %s"
                             % (m.me, mine["_id"], m.set_name))
        m.config = cfg
        m.initial_synced = True
        m.state = rs.SECONDARY
        m._save_state()
        m._log([{"ts": m._next_ts(), "t": Int64(-1), "v": Int64(2), "op": "n", "ns": "",
                 "o": {"msg": "initiating set"}, "wall": now_dt()}])
        m.primary_seen = 0.0  # a single electable node elects itself at once
        m.cv.notify_all()
    threading.Thread(target=m.run_election, args=("initiate",), daemon=True).start()
    return {}


def _get_config(m, db, cmd, conn):
    with m.cv:
        _require_config(m)
        out = {"config": copy.deepcopy(m.config)}
        if cmd.get("commitmentStatus"):
            out["commitmentStatus"] = m.state == rs.PRIMARY and m.config_committed()
    return out


def _reconfig(m, db, cmd, conn):
    raw = cmd.get("replSetReconfig")
    force = bool(cmd.get("force"))
    max_ms = cmd.get("maxTimeMS")
    with m.cv:
        _require_config(m)
        if not force and m.state != rs.PRIMARY:
            raise MongoError(10107, "replSetReconfig should only be run on a writable PRIMARY. "
                                    "Current state %s;" % rs.STATES.get(m.state))
        if not force and not m.config_committed():
            raise MongoError(308, "Cannot run replSetReconfig because the current config: "
                                  "{version: %d, term: %d} is not yet committed"
                             % (m.config["version"], int(m.config.get("term", -1))))
        if isinstance(raw, dict):
            raw = dict(raw)
            raw.pop("term", None)
            raw.setdefault("settings", {})
            raw["settings"] = dict(raw["settings"])
            raw["settings"].setdefault("replicaSetId",
                                       m.config["settings"].get("replicaSetId"))
        new = rs.normalize(raw, m.set_name, False)
        rs.mark_newly_added(m.config, new)
        rs.check_reconfig(m.config, new, force)
        if force:
            new["version"] = max(new["version"], m.config["version"] + random.randint(
                10000, 100000))
            new["term"] = Int64(-1)
        else:
            new["term"] = Int64(m.term)
            mine = rs.member(new, m.me)
            if mine is None or not rs.electable(mine):
                raise MongoError(104, "This node, %s, with _id %s is not electable under the "
                                      "new configuration with {version: %d, term: %d} for "
                                      "replica set %s" % (m.me, (mine or {}).get("_id"),
                                                          new["version"], m.term, m.set_name))
        m._install(new, "replSetReconfig")
        version = new["version"]
    deadline = time.monotonic() + (max_ms / 1000.0 if max_ms else 60.0)
    # a majority of the new config's voters must have installed it
    for host in [x["host"] for x in m.others()]:
        threading.Thread(target=m.heartbeat, args=(host,), daemon=True).start()
    with m.cv:
        # the primary's own successor (a newlyAdded removal) counts as this one installed
        while not (m.config["version"] >= version and m.config_committed()):
            if m.state != rs.PRIMARY and not force:
                raise MongoError(189, "the primary stepped down while the reconfig waited")
            if time.monotonic() > deadline:
                raise MongoError(50, "operation exceeded time limit")
            m.cv.wait(0.1)
    return {}


def _status(m, db, cmd, conn):
    with m.cv:
        _require_config(m)
        members = []
        for x in m.config["members"]:
            if x["host"] == m.me:
                doc = {"_id": x["_id"], "name": m.me, "health": 1.0, "state": m.state,
                       "stateStr": rs.STATES[m.state],
                       "uptime": int(time.monotonic() - m.started),
                       # the date of the last applied op's timestamp, as mongod reports it
                       "optime": rs.optime_doc(m.applied()),
                       "optimeDate": m.applied()[0].as_datetime(),
                       "syncSourceHost": m.sync_source if m.state != rs.PRIMARY else "",
                       "configVersion": m.config["version"],
                       "configTerm": m.config.get("term", -1), "self": True}
                if m.state == rs.PRIMARY:
                    doc["electionTime"] = m.election_time
                    doc["electionDate"] = now_dt()
            else:
                p = m.peers.get(x["host"]) or Peer(x["host"])
                up = m.healthy(x["host"])
                state = p.state if up else (rs.DOWN if p.health == 0 else rs.STARTUP)
                doc = {"_id": x["_id"], "name": x["host"], "health": 1.0 if up else 0.0,
                       "state": state,
                       # what rs.status() shows for a member it cannot reach
                       "stateStr": rs.STATES.get(state, "UNKNOWN") if up else
                       "(not reachable/healthy)",
                       "uptime": int(time.monotonic() - (p.last_ok or time.monotonic())),
                       "optime": rs.optime_doc(p.applied),
                       "optimeDurable": rs.optime_doc(p.durable),
                       "optimeDate": p.applied[0].as_datetime(),
                       "optimeDurableDate": p.durable[0].as_datetime(),
                       "lastHeartbeatMessage": "" if up else p.last_error,
                       "pingMs": Int64(p.ping_ms), "syncSourceHost": p.sync_source,
                       "configVersion": p.config_version}
            members.append(doc)
        return {"set": m.set_name, "date": now_dt(), "myState": m.state, "term": Int64(m.term),
                "heartbeatIntervalMillis": Int64(int(m.hb_interval() * 1000)),
                "majorityVoteCount": rs.majority(m.config),
                "writeMajorityCount": rs.majority(m.config),
                "votingMembersCount": len(rs.voters(m.config)),
                "optimes": {"lastCommittedOpTime": rs.optime_doc(m.commit_point),
                            "appliedOpTime": rs.optime_doc(m.applied()),
                            "durableOpTime": rs.optime_doc(m.applied())},
                "members": members, **_reply_common(m)}


def _heartbeat(m, db, cmd, conn):
    with m.cv:
        if cmd.get("replSetHeartbeat") != m.set_name and m.config is not None:
            raise MongoError(108, "replica set names do not match")
        sender = cmd.get("from", "")
        their = (int(cmd.get("configVersion", -2)), int(cmd.get("configTerm", -1)))
        mine = (m.config["version"], int(m.config.get("term", -1))) if m.config else (-2, -1)
        if int(cmd.get("term", -1)) > m.term and m.config is not None:
            m._set_term(int(cmd["term"]))
        out = {"set": m.set_name, "state": m.state, "term": Int64(m.term),
               "configVersion": mine[0], "configTerm": Int64(mine[1]),
               "opTime": rs.optime_doc(m.applied()), "durableOpTime": rs.optime_doc(m.applied()),
               "wallTime": now_dt(), "syncingTo": m.sync_source,
               "lastCommittedOpTime": rs.optime_doc(m.commit_point)}
        if m.state == rs.PRIMARY:
            out["electionTime"] = m.election_time
        if m.config is not None and their < mine:
            out["config"] = m.config
    if their > mine and sender:
        # the sender has a newer config: fetch it with a heartbeat of our own
        # (its reply carries it)
        threading.Thread(target=m.heartbeat, args=(sender,), daemon=True).start()
    return out


def _request_votes(m, db, cmd, conn):
    with m.cv:
        _require_config(m)
        term = int(cmd["term"])
        dry = bool(cmd.get("dryRun"))
        out = {"term": Int64(m.term), "voteGranted": False, "reason": ""}
        cand = cmd.get("candidateIndex", -1)
        members = m.config["members"]
        host = members[cand]["host"] if 0 <= cand < len(members) else None
        if term < m.term:
            out["reason"] = "candidate's term (%d) is lower than mine (%d)" % (term, m.term)
        elif int(cmd.get("configVersion", -1)) != m.config["version"]:
            out["reason"] = "candidate's config version differs from mine"
        elif rs.optime_key(rs.optime_from(cmd.get("lastAppliedOpTime"))) < rs.optime_key(
                m.applied()):
            out["reason"] = "candidate's data is staler than mine"
        elif not dry and m.voted.get(term) not in (None, host):
            out["reason"] = "already voted for another candidate (%s) this term (%d)" % (
                m.voted[term], term)
        else:
            out["voteGranted"] = True
            if not dry:
                m.voted[term] = host
                if term > m.term:
                    m._set_term(term)
                m._save_state()
                m.primary_seen = time.monotonic()
        out["term"] = Int64(m.term)
    return out


def _update_position(m, db, cmd, conn):
    with m.cv:
        for op in cmd.get("optimes") or []:
            host = op.get("host")
            if host is None:
                x = next((y for y in (m.config or {}).get("members") or []
                          if y["_id"] == op.get("memberId")), None)
                host = x and x["host"]
            if host and host != m.me:
                pos = rs.optime_from(op.get("appliedOpTime"))
                if rs.optime_key(pos) > rs.optime_key(m.positions.get(host, rs.NULL_OPTIME)):
                    m.positions[host] = pos
        m._advance_commit()
        m.clear_newly_added()
    return {}


def _step_down(m, db, cmd, conn):
    secs = float(cmd.get("replSetStepDown") or 60)
    catch_up = float(cmd.get("secondaryCatchUpPeriodSecs", 10))
    force = bool(cmd.get("force"))
    if catch_up > secs:
        raise MongoError(2, "stepdown period must be longer than secondaryCatchUpPeriodSecs")
    deadline = time.monotonic() + catch_up
    with m.cv:
        if m.state != rs.PRIMARY:
            raise MongoError(10107, "not primary so can't step down")
        while True:
            target = None
            for x in m.config["members"]:
                if x["host"] != m.me and rs.electable(x) and m.healthy(x["host"]) and \
                        rs.optime_key(m.positions.get(x["host"], rs.NULL_OPTIME)) >= \
                        rs.optime_key(m.applied()):
                    if target is None or rs.priority(x) > rs.priority(target):
                        target = x
            if target is not None or time.monotonic() >= deadline:
                break
            m.cv.wait(0.05)
        if target is None and not force:
            raise MongoError(262, "No electable secondaries caught up as of %s. Please use the "
                                  "replSetStepDown command with the argument {force: true} to "
                                  "force node to step down." % now_dt().isoformat())
        m._step_down_locked("replSetStepDown", seconds=secs)
    if target is not None:
        # election handoff: the caught-up secondary runs for election at once
        threading.Thread(target=_handoff, args=(m, target["host"]), daemon=True).start()
    return {}


def _handoff(m, host):
    try:
        m.call(host, {"replSetStepUp": 1, "skipDryRun": True}, timeout=10)
    except (OSError, EOFError, wire.ProtocolError):
        pass


def _step_up(m, db, cmd, conn):
    with m.cv:
        _require_config(m)
        if m.state == rs.PRIMARY:
            return {"info": "already primary"}
    if not m.run_election("stepUpRequest", skip_dry_run=bool(cmd.get("skipDryRun"))):
        raise MongoError(125, "Election failed.")
    return {}


def _freeze(m, db, cmd, conn):
    secs = float(cmd.get("replSetFreeze") or 0)
    with m.cv:
        _require_config(m)
        if m.state == rs.PRIMARY:
            raise MongoError(95, "cannot freeze node when primary or running for election. "
                                 "state: Primary")
        if secs <= 0:
            m.freeze_until = 0.0
            return {"info": "unfreezing"}
        m.freeze_until = time.monotonic() + secs
    return {}


# ---------------------------------------------------------------------- data commands

def _ns(db, cmd, name):
    coll = cmd.get(name)
    if not isinstance(coll, str) or not coll:
        raise MongoError(73, "Invalid namespace specified '%s.%s'" % (db, coll))
    return "%s.%s" % (db, coll)


def _check_readable(m, cmd):
    mode = ((cmd.get("$readPreference") or {}).get("mode") or "primary")
    if m.state == rs.PRIMARY:
        return
    if m.state == rs.SECONDARY and mode != "primary":
        return
    if m.state == rs.SECONDARY:
        raise MongoError(13435, "not primary and secondaryOk=false")
    raise MongoError(13436, "node is not in primary or recovering state")


def _check_writable(m, cmd):
    if m.state != rs.PRIMARY:
        raise MongoError(10107, "not primary", labels=["RetryableWriteError"]
                         if "txnNumber" in cmd else [])


def _write_concern(cmd):
    wc = dict(cmd.get("writeConcern") or {})
    wc.setdefault("w", "majority")
    return wc


def _retry(m, cmd, op):
    """A retried write (same lsid and txnNumber): its first result, from the session table."""
    if "lsid" not in cmd or "txnNumber" not in cmd:
        return None
    rec = m.sessions.get(lsid_key(cmd["lsid"]))
    txn = int(cmd["txnNumber"])
    if rec is None or rec["txn"] < txn:
        return None
    if rec["txn"] > txn:
        raise MongoError(225, "Retryable write with txnNumber %d is prohibited on session %s "
                              "because a newer retryable write with txnNumber %d has already "
                              "started on this session." % (txn, cmd["lsid"].get("id"),
                                                            rec["txn"]))
    out = {"n": sum(1 for o in rec["ops"] if o["op"] in ("i", "u", "d"))}
    if op == "update":
        ups = [{"index": o["stmt"], "_id": o["id"]} for o in rec["ops"] if o["op"] == "i"]
        out["nModified"] = sum(1 for o in rec["ops"] if o["op"] == "u")
        if ups:
            out["upserted"] = ups
    return out


def _finish_write(m, cmd, out, op):
    wce = m.wait_write_concern(op, _write_concern(cmd))
    if wce:
        out["writeConcernError"] = wce
    out.update(_reply_common(m))
    return out


def _write_command(kind):
    """A write command: on the primary only, a retried write answered from the session table,
    the write concern waited for after the write."""
    def wrap(fn):
        def run(m, db, cmd, conn):
            ns = _ns(db, cmd, kind)
            with m.cv:
                _check_writable(m, cmd)
                done = _retry(m, cmd, kind)
                out = done if done is not None else fn(m, ns, m._coll(ns), cmd)
                return _finish_write(m, cmd, out, m.applied())
        return run
    return wrap


@_write_command("insert")
def _insert(m, ns, coll, cmd):
    docs = cmd.get("documents") or []
    ordered = cmd.get("ordered", True)
    entries, errors, seen = [], [], set()
    for i, d in enumerate(docs):
        d = dict(d)
        if "_id" not in d:
            d = dict({"_id": bson.ObjectId()}, **d)
        k = key_of(d["_id"])
        if k in coll or k in seen:
            errors.append({"index": i, "code": 11000,
                           "errmsg": "E11000 duplicate key error collection: %s index: _id_ "
                                     "dup key: { _id: %r }" % (ns, d["_id"]),
                           "keyPattern": {"_id": 1}, "keyValue": {"_id": d["_id"]}})
            if ordered:
                break
            continue
        seen.add(k)
        entries.append(m._entry("i", ns, d, cmd=cmd, stmt=i))
    if entries:
        m._log(entries)
    out = {"n": len(entries)}
    if errors:
        out["writeErrors"] = errors
    return out


@_write_command("update")
def _update(m, ns, coll, cmd):
    n = modified = 0
    upserted = []
    for i, u in enumerate(cmd.get("updates") or []):
        targets = [d for d in coll.values() if query.matches(d, u.get("q"))]
        if not u.get("multi"):
            targets = targets[:1]
        for d in targets:
            new = query.apply_update(d, u.get("u") or {})
            n += 1
            if new != d:
                modified += 1
                m._log([m._entry("u", ns, new, o2={"_id": d["_id"]}, cmd=cmd, stmt=i)])
        if not targets and u.get("upsert"):
            base = query.upsert_base(u.get("q"))
            new = query.apply_update(base, u.get("u") or {}, inserting=True)
            if "_id" not in new:
                new = dict({"_id": bson.ObjectId()}, **new)
            m._log([m._entry("i", ns, new, cmd=cmd, stmt=i)])
            upserted.append({"index": i, "_id": new["_id"]})
            n += 1
    out = {"n": n, "nModified": modified}
    if upserted:
        out["upserted"] = upserted
    return out


@_write_command("delete")
def _delete(m, ns, coll, cmd):
    n = 0
    for i, d in enumerate(cmd.get("deletes") or []):
        targets = [x for x in coll.values() if query.matches(x, d.get("q"))]
        if d.get("limit", 0) == 1:
            targets = targets[:1]
        for x in targets:
            m._log([m._entry("d", ns, {"_id": x["_id"]}, cmd=cmd, stmt=i)])
            n += 1
    return {"n": n}


def _cursor(m, ns, docs, batch_size, extra=None):
    batch_size = batch_size or 101
    first, rest = docs[:batch_size], docs[batch_size:]
    cid = 0
    if rest or (extra and extra.get("tailable")):
        m.next_cursor += 1
        cid = m.next_cursor
        m.cursors[cid] = dict({"ns": ns, "docs": rest}, **(extra or {}))
    return {"cursor": {"firstBatch": first, "id": Int64(cid), "ns": ns}}


def _id_lookup(flt):
    """The _id values of a filter on _id alone (equality or $in): what mongod finds through
    the _id index, not by a collection scan; None for any other filter."""
    if not isinstance(flt, dict) or list(flt) != ["_id"]:
        return None
    value = flt["_id"]
    if isinstance(value, dict):
        if list(value) == ["$in"] and isinstance(value["$in"], list) and not any(
                isinstance(v, (dict, list)) for v in value["$in"]):
            return value["$in"]
        return None
    return None if isinstance(value, list) else [value]


def _find(m, db, cmd, conn):
    ns = _ns(db, cmd, "find")
    with m.cv:
        _check_readable(m, cmd)
        if ns == OPLOG_NS:
            since = ((cmd.get("filter") or {}).get("ts") or {}).get("$gte")
            start = 0 if not isinstance(since, Timestamp) else bisect.bisect_left(
                m.oplog, (since.time, since.inc), key=lambda e: (e["ts"].time, e["ts"].inc))
            docs = [e for e in m.oplog[start:] if query.matches(e, cmd.get("filter"))]
            if (cmd.get("sort") or {}).get("$natural") == -1:
                docs.reverse()
        else:
            ids = _id_lookup(cmd.get("filter"))
            coll = m._coll(ns)
            if ids is not None:  # mongod answers an _id equality or $in from the _id index
                wanted = set(key_of(i) for i in ids)
                docs = [d for k, d in coll.items() if k in wanted]
            else:
                docs = [d for d in coll.values() if query.matches(d, cmd.get("filter"))]
            query.sort_docs(docs, cmd.get("sort"))
        docs = docs[int(cmd.get("skip") or 0):]
        if cmd.get("limit"):
            docs = docs[:abs(int(cmd["limit"]))]
        docs = [query.project(d, cmd.get("projection")) for d in docs]
        extra = None
        if ns == OPLOG_NS and cmd.get("tailable"):
            last = docs[-1]["ts"] if docs else ((cmd.get("filter") or {}).get("ts") or {}).get(
                "$gte")
            extra = {"tailable": True, "after": last, "await": bool(cmd.get("awaitData"))}
        out = _cursor(m, ns, docs, cmd.get("batchSize") or (None if extra else 101), extra)
        if extra and m.cursors.get(int(out["cursor"]["id"])) is not None and \
                out["cursor"]["firstBatch"]:
            m.cursors[int(out["cursor"]["id"])]["after"] = out["cursor"]["firstBatch"][-1]["ts"]
        out.update(_reply_common(m))
        return out


def _get_more(m, db, cmd, conn):
    cid = int(cmd.get("getMore"))
    with m.cv:
        cur = m.cursors.get(cid)
        if cur is None:
            raise MongoError(43, "cursor id %d not found" % cid)
        size = cmd.get("batchSize") or 101
        if cur.get("tailable"):
            deadline = time.monotonic() + (cmd.get("maxTimeMS") or 1000) / 1000.0
            while True:
                after = cur.get("after")
                # the oplog is in timestamp order: start after the last entry sent
                start = 0 if after is None else bisect.bisect_right(
                    m.oplog, (after.time, after.inc),
                    key=lambda e: (e["ts"].time, e["ts"].inc))
                batch = m.oplog[start:start + size]
                if batch or not cur.get("await") or time.monotonic() >= deadline:
                    break
                m.cv.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            if batch:
                cur["after"] = batch[-1]["ts"]
            return {"cursor": {"nextBatch": batch, "id": Int64(cid), "ns": cur["ns"]},
                    **_reply_common(m)}
        batch, cur["docs"] = cur["docs"][:size], cur["docs"][size:]
        if not cur["docs"]:
            del m.cursors[cid]
            cid = 0
        return {"cursor": {"nextBatch": batch, "id": Int64(cid), "ns": cur["ns"]}}


def _kill_cursors(m, db, cmd, conn):
    killed, missing = [], []
    with m.cv:
        for cid in cmd.get("cursors") or []:
            (killed if m.cursors.pop(int(cid), None) is not None else missing).append(cid)
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [],
            "cursorsUnknown": []}


def _count(m, db, cmd, conn):
    ns = _ns(db, cmd, "count")
    with m.cv:
        _check_readable(m, cmd)
        n = sum(1 for d in m._coll(ns).values() if query.matches(d, cmd.get("query")))
    n = max(0, n - int(cmd.get("skip") or 0))
    if cmd.get("limit"):
        n = min(n, abs(int(cmd["limit"])))
    return {"n": n}


def _aggregate(m, db, cmd, conn):
    ns = _ns(db, cmd, "aggregate")
    with m.cv:
        _check_readable(m, cmd)
        docs = list(m._coll(ns).values())
        for stage in cmd.get("pipeline") or []:
            (name, arg), = stage.items()
            if name == "$match":
                docs = [d for d in docs if query.matches(d, arg)]
            elif name == "$skip":
                docs = docs[int(arg):]
            elif name == "$limit":
                docs = docs[:int(arg)]
            elif name == "$sort":
                docs = query.sort_docs(docs, arg)
            elif name == "$count":
                docs = [{arg: len(docs)}] if docs else []
            elif name == "$group" and set(arg) == {"_id", "n"} and arg["n"] == {"$sum": 1} \
                    and not isinstance(arg["_id"], (str, dict)):
                docs = [{"_id": arg["_id"], "n": len(docs)}] if docs else []
            else:
                raise MongoError(2, "the lab's MongoDB does not run pipeline stage %s" % name)
        return _cursor(m, ns, docs, (cmd.get("cursor") or {}).get("batchSize") or 101)


def _list_databases(m, db, cmd, conn):
    with m.cv:
        names = sorted({ns.split(".")[0] for ns, c in m.data.items() if c} | {"admin", "local"}
                       if m.config else {"admin", "local"})
    dbs = [{"name": n, "sizeOnDisk": Int64(8192), "empty": False} for n in names]
    if cmd.get("nameOnly"):
        dbs = [{"name": d["name"]} for d in dbs]
    return {"databases": dbs, "totalSize": Int64(8192 * len(dbs))}


def _list_collections(m, db, cmd, conn):
    with m.cv:
        names = sorted(ns.split(".", 1)[1] for ns, c in m.data.items()
                       if ns.split(".")[0] == db and c)
    docs = [{"name": n, "type": "collection"} if cmd.get("nameOnly") else
            {"name": n, "type": "collection", "options": {}, "info": {"readOnly": False}}
            for n in names]
    with m.cv:
        return _cursor(m, "%s.$cmd.listCollections" % db, docs, 1000)


def _drop(m, db, cmd, conn):
    ns = _ns(db, cmd, "drop")
    with m.cv:
        _check_writable(m, cmd)
        if not m.data.get(ns):
            raise MongoError(26, "ns not found")
        m._log([m._entry("c", db + ".$cmd", {"drop": cmd["drop"]})])
        return _finish_write(m, cmd, {"ns": ns, "nIndexesWas": 1}, m.applied())


def _get_parameter(m, db, cmd, conn):
    params = {"featureCompatibilityVersion": {"version": "7.0"},
              "enableElectionHandoff": True, "maxBSONDepth": 200,
              "authenticationMechanisms": ["SCRAM-SHA-256"]}
    if cmd.get("getParameter") in ("*", {"allParameters": True}):
        return dict(params)
    return {k: v for k, v in params.items() if k in cmd}


COMMANDS = {
    "hello": _hello,
    "saslStart": _sasl_start, "saslContinue": _sasl_continue,
    "logout": lambda m, db, cmd, conn: conn.update(user=None) or {},
    "ismaster": lambda m, db, cmd, conn: _hello(m, db, cmd, conn, legacy=True),
    "isMaster": lambda m, db, cmd, conn: _hello(m, db, cmd, conn, legacy=True),
    "ping": lambda m, db, cmd, conn: dict(_reply_common(m)),
    # internal: how a member finds itself behind a load balancer or NAT (repl/isself.cpp)
    "_isSelf": lambda m, db, cmd, conn: {"id": m.instance_id},
    "buildInfo": _build_info, "buildinfo": _build_info,
    "endSessions": lambda m, db, cmd, conn: {},
    "getParameter": _get_parameter,
    "listDatabases": _list_databases, "listCollections": _list_collections,
    "usersInfo": lambda m, db, cmd, conn: {"users": []},
    "rolesInfo": lambda m, db, cmd, conn: {"roles": []},
    "whatsmyuri": lambda m, db, cmd, conn: {"you": conn["peer"]},
    "replSetInitiate": _initiate, "replSetGetConfig": _get_config,
    "replSetReconfig": _reconfig, "replSetGetStatus": _status,
    "replSetHeartbeat": _heartbeat, "replSetRequestVotes": _request_votes,
    "replSetUpdatePosition": _update_position, "replSetStepDown": _step_down,
    "replSetStepUp": _step_up, "replSetFreeze": _freeze,
    "insert": _insert, "update": _update, "delete": _delete, "find": _find,
    "getMore": _get_more, "killCursors": _kill_cursors, "count": _count,
    "aggregate": _aggregate, "drop": _drop,
}
