"""One member of the lab's MongoDB replica set: a real process serving the wire protocol.

What it does, after the MongoDB manual (tests/lab/README.md lists the pages):
- handshake: ``hello`` / ``isMaster`` (OP_MSG, and legacy OP_QUERY) with the topology fields
  drivers discover a replica set by (setName, setVersion, hosts, passives, primary, me,
  electionId, lastWrite, logicalSessionTimeoutMinutes);
- replica-set commands: replSetInitiate, replSetGetConfig, replSetReconfig, replSetGetStatus,
  replSetStepDown, replSetFreeze, replSetStepUp, and the members' own replSetHeartbeat,
  replSetRequestVotes and replSetUpdatePosition;
- elections (protocol version 1: terms, one vote per term, a majority of voting members,
  dry runs, priority takeover, election handoff after a step-down), a primary that cannot see a
  majority steps down;
- replication: secondaries tail the oplog of their sync source (``find`` + ``getMore`` on
  ``local.oplog.rs``, tailable and awaitData) over TCP, report their positions
  (replSetUpdatePosition); the commit point follows a majority of voters; a new member runs an
  initial sync (STARTUP2: clone, then the oplog from the clone's start); a member whose oplog
  diverged from its sync source rolls back to the common point (ROLLBACK);
- CRUD (insert, find, getMore, killCursors, update, delete, count, aggregate for counting),
  write concern (w: N / "majority" / wtimeout; the implicit default is majority), retryable
  writes (lsid + txnNumber answered once), NotWritablePrimary with RetryableWriteError,
  InterruptedDueToStepdown for writes waiting on a primary that steps down;
- data and oplog kept under ``--dbpath`` (a pod restart keeps them).
"""

import argparse
import copy
import datetime
import json
import logging
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time
from collections import OrderedDict

import bson
from bson.binary import Binary
from bson.int64 import Int64
from bson.timestamp import Timestamp

from . import replset as rs, scram, wire
from .errors import MongoError

LOG = logging.getLogger("cloudhop_lab.mongo")
VERSION = "7.0.14"
MAX_WIRE = 21
OPLOG_NS = "local.oplog.rs"
# what mongod answers before authentication
NO_AUTH = ("_isSelf", "hello", "isMaster", "ismaster", "saslStart", "saslContinue", "ping", "buildInfo",
           "buildinfo", "endSessions", "logout")


def now_dt():
    return datetime.datetime.now(datetime.timezone.utc)


def key_of(value):
    return bson.encode({"k": value})


def lsid_key(lsid):
    return bson.encode({"id": lsid.get("id")})


class Peer:
    def __init__(self, host):
        self.host = host
        self.health = None  # None: not heard of yet
        self.state = rs.STARTUP
        self.term = -1
        self.applied = rs.NULL_OPTIME
        self.durable = rs.NULL_OPTIME
        self.config_version = -2
        self.last_ok = None
        self.last_try = None
        self.ping_ms = 0
        self.last_error = ""
        self.election_time = None
        self.sync_source = ""


class Member:
    def __init__(self, me, set_name, dbpath, source=None, key_file=None, users_file=None,
                 port=27017):
        # this member's name in the config: given (--host), or found in each config it installs
        # as mongod finds itself (repl/isself.cpp): a host that resolves to one of its own
        # addresses on its own port, or one whose _isSelf answers with its instance id
        # (a load balancer or a NAT in between: the way cross-cluster members are reached)
        self.me = me
        self.fixed_me = bool(me)
        self.port = port
        self.instance_id = bson.ObjectId()
        self.self_hosts = {}  # host -> True / False, as _isSelf answered
        self.source = source
        # SCRAM-SHA-256 (a lab option): (db, user) -> credentials; members authenticate to
        # each other as __system@local with the key file
        self.users = {}
        self.internal = None
        if key_file:
            self.internal = ("local", "__system", scram.key_file_password(key_file))
            self.users[("local", "__system")] = scram.credentials(self.internal[2])
        if users_file:
            with open(users_file, encoding="utf-8") as fh:
                for db, users in json.load(fh).items():
                    for user, password in users.items():
                        self.users[(db, user)] = scram.credentials(password)
        self.auth_on = bool(self.users)
        self.set_name = set_name
        self.dbpath = dbpath
        self.cv = threading.Condition()
        self.config = None
        self.term = 0
        self.voted = {}  # term -> candidate host
        self.state = rs.STARTUP
        self.oplog = []
        self.data = {}  # ns -> OrderedDict(key -> doc)
        self.base = {}  # ns -> docs the initial sync cloned (the oplog is replayed on it)
        self.sessions = {}  # lsid key -> {"txn": n, "ops": [...]}
        self.peers = {}
        self.positions = {}  # host -> applied optime (as the primary hears it)
        self.commit_point = rs.NULL_OPTIME
        self.last_ts = Timestamp(0, 0)
        self.stepdown_until = 0.0
        self.freeze_until = 0.0
        self.primary_seen = time.monotonic()
        self.election_time = None
        self.cursors = {}
        self.next_cursor = random.randint(1 << 40, 1 << 50)
        self.started = time.monotonic()
        self.sync_source = ""
        self.connections = 0
        self.stepdown_epoch = 0  # bumps at each step-down: waiting writes are interrupted
        self.stop = threading.Event()
        self.clients = {}
        self.initial_synced = False
        self.wake_sync = threading.Event()
        self.last_majority = time.monotonic()
        self.process_id = bson.ObjectId()  # topologyVersion: drivers stream hello on it
        self.topo_counter = 0
        self._jitter = None
        self._takeover_since = None
        os.makedirs(dbpath, exist_ok=True)
        self._load()

    # ------------------------------------------------------------------ persistence

    def _path(self, name):
        return os.path.join(self.dbpath, name)

    def _load(self):
        if os.path.exists(self._path("state.bson")):
            with open(self._path("state.bson"), "rb") as fh:
                st = bson.decode(fh.read(), wire.OPTS)
            self.config = st.get("config")
            self.term = int(st.get("term", 0))
            self.voted = {int(k): v for k, v in (st.get("voted") or {}).items()}
            self.initial_synced = bool(st.get("initialSynced"))
        if os.path.exists(self._path("base.bson")):
            with open(self._path("base.bson"), "rb") as fh:
                st = bson.decode(fh.read(), wire.OPTS)
            self.base = {ns: list(docs) for ns, docs in (st.get("data") or {}).items()}
        if os.path.exists(self._path("oplog.bson")):
            with open(self._path("oplog.bson"), "rb") as fh:
                self.oplog = list(bson.decode_file_iter(fh, wire.OPTS))
        self._rebuild()
        if self.config is not None and self.me is not None:
            self.state = rs.SECONDARY if self.initial_synced else rs.STARTUP2

    def _save_state(self):
        doc = {"config": self.config, "term": Int64(self.term),
               "voted": {str(k): v for k, v in self.voted.items()},
               "initialSynced": self.initial_synced}
        tmp = self._path("state.bson.tmp")
        with open(tmp, "wb") as fh:
            fh.write(bson.encode(doc, codec_options=wire.OPTS))
        os.replace(tmp, self._path("state.bson"))

    def _save_base(self):
        tmp = self._path("base.bson.tmp")
        with open(tmp, "wb") as fh:
            fh.write(bson.encode({"data": self.base}, codec_options=wire.OPTS))
        os.replace(tmp, self._path("base.bson"))

    def _append_oplog(self, entries):
        with open(self._path("oplog.bson"), "ab") as fh:
            for e in entries:
                fh.write(bson.encode(e, codec_options=wire.OPTS))

    def _rewrite_oplog(self):
        tmp = self._path("oplog.bson.tmp")
        with open(tmp, "wb") as fh:
            for e in self.oplog:
                fh.write(bson.encode(e, codec_options=wire.OPTS))
        os.replace(tmp, self._path("oplog.bson"))

    def _rebuild(self):
        """Data and sessions from the initial sync's clone and the oplog."""
        self.data, self.sessions = {}, {}
        for ns, docs in self.base.items():
            coll = self.data.setdefault(ns, OrderedDict())
            for d in docs:
                coll[key_of(d["_id"])] = d
        for e in self.oplog:
            self._apply(e)

    # ------------------------------------------------------------------ optimes

    def applied(self):
        if not self.oplog:
            return rs.NULL_OPTIME
        return (self.oplog[-1]["ts"], int(self.oplog[-1]["t"]))

    def _next_ts(self):
        now = int(time.time())
        last = self.last_ts
        ts = Timestamp(now, 1) if now > last.time else Timestamp(last.time, last.inc + 1)
        self.last_ts = ts
        return ts

    def settings(self):
        return (self.config or {}).get("settings") or rs.SETTINGS

    def hb_interval(self):
        return self.settings().get("heartbeatIntervalMillis", 2000) / 1000.0

    def election_timeout(self):
        return self.settings().get("electionTimeoutMillis", 10000) / 1000.0

    def hb_timeout(self):
        return float(self.settings().get("heartbeatTimeoutSecs", 10))

    def my_member(self):
        return rs.member(self.config, self.me)

    def others(self):
        return [m for m in (self.config or {}).get("members") or [] if m["host"] != self.me]

    def peer(self, host):
        p = self.peers.get(host)
        if p is None:
            p = self.peers[host] = Peer(host)
        return p

    def healthy(self, host):
        """Up, as mongod sees a member: its last heartbeat answered, or it has failed for less
        than heartbeatTimeoutSecs (a heartbeat that hangs counts once it times out)."""
        p = self.peers.get(host)
        return bool(p and p.health == 1)

    def primary_host(self):
        if self.state == rs.PRIMARY:
            return self.me
        best = None
        for p in self.peers.values():
            if self.healthy(p.host) and p.state == rs.PRIMARY and rs.member(self.config, p.host):
                if best is None or p.term > best.term:
                    best = p
        return best.host if best else None

    # ------------------------------------------------------------------ applying the oplog

    def _coll(self, ns):
        return self.data.setdefault(ns, OrderedDict())

    def _apply(self, e):
        op, ns = e["op"], e.get("ns", "")
        if op == "i":
            self._coll(ns)[key_of(e["o"]["_id"])] = e["o"]
        elif op == "u":
            self._coll(ns)[key_of(e["o2"]["_id"])] = e["o"]
        elif op == "d":
            self._coll(ns).pop(key_of(e["o"]["_id"]), None)
        elif op == "c" and "drop" in e["o"]:
            self.data.pop(ns.split(".")[0] + "." + e["o"]["drop"], None)
        elif op == "c" and "dropDatabase" in e["o"]:
            db = ns.split(".")[0]
            for name in [n for n in self.data if n.split(".")[0] == db]:
                del self.data[name]
        if "lsid" in e and "txnNumber" in e:
            k = lsid_key(e["lsid"])
            txn = int(e["txnNumber"])
            cur = self.sessions.get(k)
            if cur is None or cur["txn"] != txn:
                cur = self.sessions[k] = {"txn": txn, "ops": []}
            # an update command's insert is its upsert: its _id is what a retry answers with
            cur["ops"].append({"op": op, "id": e["o"].get("_id") if op == "i" else None,
                               "stmt": e.get("stmtId")})
        if e["ts"].time > self.last_ts.time or (e["ts"].time == self.last_ts.time and
                                                e["ts"].inc > self.last_ts.inc):
            self.last_ts = e["ts"]

    def _log(self, entries):
        """Primary: append and apply (under the lock)."""
        for e in entries:
            self.oplog.append(e)
            self._apply(e)
        self._append_oplog(entries)
        self._advance_commit()
        self.cv.notify_all()

    def _entry(self, op, ns, o, o2=None, cmd=None, stmt=0):
        e = {"ts": self._next_ts(), "t": Int64(self.term), "v": Int64(2), "op": op, "ns": ns,
             "o": o, "wall": now_dt()}
        if o2 is not None:
            e["o2"] = o2
        if cmd is not None and "lsid" in cmd and "txnNumber" in cmd:
            e["lsid"] = cmd["lsid"]
            e["txnNumber"] = Int64(cmd["txnNumber"])
            e["stmtId"] = stmt
        return e

    # ------------------------------------------------------------------ commit point

    def _advance_commit(self):
        if self.state != rs.PRIMARY or self.config is None:
            return
        optimes = []
        for m in rs.voters(self.config):
            if m["host"] == self.me:
                optimes.append(self.applied())
            else:
                optimes.append(self.positions.get(m["host"], rs.NULL_OPTIME))
        optimes.sort(key=rs.optime_key, reverse=True)
        need = rs.majority(self.config)
        if len(optimes) < need:
            return
        cand = optimes[need - 1]
        # Raft: a primary commits only optimes of its own term by counting
        if cand[1] == self.term and rs.optime_key(cand) > rs.optime_key(self.commit_point):
            self.commit_point = cand
            self.cv.notify_all()

    def _acked(self, op, w):
        """Members (this one included) whose applied optime has reached ``op``."""
        n = 1 if rs.optime_key(self.applied()) >= rs.optime_key(op) else 0
        for host, pos in self.positions.items():
            if rs.member(self.config, host) and rs.optime_key(pos) >= rs.optime_key(op):
                n += 1
        return n >= w

    def wait_write_concern(self, op, wc):
        """None when satisfied, else the writeConcernError; raises 11602 on a step-down."""
        w = wc.get("w", "majority")
        if w == 0 or w == 1 and op is not None:
            return None
        timeout = wc.get("wtimeout") or 0
        deadline = time.monotonic() + timeout / 1000.0 if timeout else None
        if isinstance(w, int) and w > len((self.config or {}).get("members") or [1]):
            return {"code": 100, "codeName": "UnsatisfiableWriteConcern",
                    "errmsg": "Not enough data-bearing nodes", "errInfo": {"writeConcern": wc}}
        if isinstance(w, str) and w != "majority":
            return {"code": 79, "codeName": "UnknownReplWriteConcern",
                    "errmsg": "unrecognized getLastError mode: %s" % w}
        epoch = self.stepdown_epoch
        while True:
            if op is None or (w == "majority" and rs.optime_key(self.commit_point) >=
                              rs.optime_key(op)) or (isinstance(w, int) and self._acked(op, w)):
                return None
            if self.stepdown_epoch != epoch or self.state != rs.PRIMARY:
                raise MongoError(11602, "operation was interrupted because of a step down: "
                                        "the write may or may not have replicated",
                                 labels=["RetryableWriteError"])
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return {"code": 64, "codeName": "WriteConcernTimeout",
                        "errmsg": "waiting for replication timed out",
                        "errInfo": {"wtimeout": True, "writeConcern": wc}}
            self.cv.wait(0.2 if left is None else min(0.2, left))

    # ------------------------------------------------------------------ state changes

    def _topology_changed(self):
        """What a driver's awaitable hello waits for (topologyVersion.counter). Like mongod,
        heartbeat every member at once on such a change, so that the set's views converge."""
        self.topo_counter += 1
        self.cv.notify_all()
        for m in self.others():
            threading.Thread(target=self.heartbeat, args=(m["host"],), daemon=True).start()

    def _set_term(self, term):
        if term > self.term:
            self.term = term
            self._save_state()
            if self.state == rs.PRIMARY:
                self._step_down_locked("a higher term %d was seen" % term)

    def _step_down_locked(self, why, seconds=0.0):
        LOG.info("stepping down: %s", why)
        self.state = rs.SECONDARY
        self.stepdown_until = max(self.stepdown_until, time.monotonic() + seconds)
        self.stepdown_epoch += 1
        self.primary_seen = time.monotonic()
        self.positions = {}
        self._topology_changed()
        self.wake_sync.set()

    def _become_primary(self):
        LOG.info("won the election for term %d", self.term)
        self.state = rs.PRIMARY
        self.last_majority = time.monotonic()
        self.election_time = self._next_ts()
        self.positions = {}
        self.cursors = {k: v for k, v in self.cursors.items() if v.get("ns") != OPLOG_NS}
        self._log([{"ts": self.election_time, "t": Int64(self.term), "v": Int64(2), "op": "n",
                    "ns": "", "o": {"msg": "new primary"}, "wall": now_dt()}])
        self._topology_changed()

    # ------------------------------------------------------------------ the network

    def client(self, host):
        c = self.clients.get(host)
        if c is None:
            c = self.clients[host] = wire.Client(host, timeout=min(self.hb_timeout(), 5),
                                                 source=self.source, auth=self.internal)
        return c

    def call(self, host, doc, timeout):
        return self.client(host).command("admin", doc, timeout=timeout)

    # ------------------------------------------------------------------ heartbeats

    def heartbeat(self, host):
        with self.cv:
            cfg = self.config or {"version": -2, "term": -1}
            req = {"replSetHeartbeat": self.set_name, "configVersion": cfg["version"],
                   "configTerm": Int64(cfg.get("term", -1)), "hbv": 1, "from": self.me,
                   "fromId": (self.my_member() or {}).get("_id", -1), "term": Int64(self.term)}
        t0 = time.monotonic()
        p = self.peer(host)
        p.last_try = t0
        try:
            reply = self.call(host, req, timeout=min(self.hb_timeout(), 5))
        except (OSError, EOFError, wire.ProtocolError) as exc:
            with self.cv:
                p.last_error = str(exc)
                if p.last_ok is None or time.monotonic() - p.last_ok >= self.hb_timeout():
                    if p.health != 0:
                        LOG.info("member %s is down (%s)", host, exc)
                        if p.state == rs.PRIMARY:
                            self._topology_changed()
                    p.health = 0
                    p.state = rs.DOWN
            return
        with self.cv:
            if not reply.get("ok"):
                p.last_error = reply.get("errmsg", "")
                return
            p.health, p.last_ok, p.ping_ms = 1, time.monotonic(), int(
                (time.monotonic() - t0) * 1000)
            before = p.state
            p.state = reply.get("state", rs.STARTUP)
            if before != p.state and rs.PRIMARY in (before, p.state):
                self._topology_changed()
            p.term = int(reply.get("term", -1))
            p.applied = rs.optime_from(reply.get("opTime"))
            p.durable = rs.optime_from(reply.get("durableOpTime"))
            p.config_version = reply.get("configVersion", -2)
            p.election_time = reply.get("electionTime")
            p.sync_source = reply.get("syncingTo", "")
            if self.state == rs.PRIMARY and rs.member(self.config, host):
                cur = self.positions.get(host, rs.NULL_OPTIME)
                if rs.optime_key(p.applied) > rs.optime_key(cur):
                    self.positions[host] = p.applied
                    self._advance_commit()
                self.clear_newly_added()
            if p.state == rs.PRIMARY and p.term >= self.term:
                self.primary_seen = time.monotonic()
            lc = rs.optime_from(reply.get("lastCommittedOpTime"))
            if self.state != rs.PRIMARY and rs.optime_key(lc) > rs.optime_key(self.commit_point):
                self.commit_point = lc
            if p.term > self.term and self.config is not None:
                self._set_term(p.term)
            cfg = reply.get("config")
            if not (cfg and (self.config is None or (cfg["version"], int(cfg.get("term", -1))) >
                             (self.config["version"], int(self.config.get("term", -1))))):
                return
            if self.fixed_me or rs.member(cfg, self.me) is not None:
                self._install(cfg, "heartbeat from %s" % host)
                return
        me = self.find_self(cfg)  # network calls: never under the lock
        with self.cv:
            if self.config is None or (cfg["version"], int(cfg.get("term", -1))) > (
                    self.config["version"], int(self.config.get("term", -1))):
                self.me = me or self.me
                self._install(cfg, "heartbeat from %s" % host)

    # ------------------------------------------------------------------ finding itself

    def is_self(self, host):
        """mongod's isSelf: the host's port is ours and its addresses are ours, or the member
        behind it answers _isSelf with our instance id."""
        if self.fixed_me:
            return host == self.me
        if host in self.self_hosts:
            return self.self_hosts[host]
        name, port = host.rsplit(":", 1) if ":" in host else (host, "27017")
        try:
            if int(port) == self.port:
                addrs = {a[4][0] for a in socket.getaddrinfo(
                    name, None, socket.AF_INET, socket.SOCK_STREAM)}
                local = bool(addrs)
                for addr in addrs:
                    with socket.socket() as probe:
                        try:
                            probe.bind((addr, 0))  # binds only to an address of this host
                        except OSError:
                            local = False
                if local:
                    self.self_hosts[host] = True
                    return True
            c = wire.Client(host, timeout=2.0)
            try:
                reply = c.command("admin", {"_isSelf": 1}, timeout=2.0)
            finally:
                c.close()
        except (OSError, EOFError, ValueError, wire.ProtocolError):
            return False  # not known yet: asked again with the next config or retry
        found = reply.get("id") == self.instance_id
        self.self_hosts[host] = found
        return found

    def find_self(self, cfg):
        """The host of the config's member that is this one, or None."""
        if self.fixed_me:
            return self.me if rs.member(cfg, self.me) else None
        for x in (cfg or {}).get("members") or []:
            if isinstance(x, dict) and self.is_self(str(x.get("host", ""))):
                return x["host"]
        return None

    def _refind_self(self):
        """A config but no place in it (started without --host, or our address was not
        reachable yet): look again, as mongod does on each config."""
        with self.cv:
            cfg = self.config
            if self.fixed_me or cfg is None or rs.member(cfg, self.me) is not None:
                return
        me = self.find_self(cfg)
        if me is None:
            return
        with self.cv:
            if self.config is cfg:
                self.me = me
                LOG.info("found myself in the config as %s", me)
                self._install(cfg, "finding myself")

    def _install(self, cfg, why):
        LOG.info("installing config version %d (term %s) from %s", cfg["version"],
                 cfg.get("term"), why)
        first = self.config is None
        self.config = cfg
        if rs.member(cfg, self.me) is None:
            self.state = rs.REMOVED
        elif first or self.state in (rs.STARTUP, rs.REMOVED):
            self.state = rs.SECONDARY if self.initial_synced else rs.STARTUP2
        self._save_state()
        self.primary_seen = time.monotonic()
        self.wake_sync.set()
        self._topology_changed()

    def heartbeat_loop(self, host):
        while not self.stop.is_set():
            with self.cv:
                gone = self.config is None or rs.member(self.config, host) is None
            if gone:
                return
            self.heartbeat(host)
            self.stop.wait(self.hb_interval())

    def topology_loop(self):
        """Starts a heartbeat thread for every other member; elections; liveness."""
        running = {}
        next_find = 0.0
        while not self.stop.is_set():
            if time.monotonic() >= next_find:
                next_find = time.monotonic() + 1.0
                self._refind_self()
            with self.cv:
                hosts = [m["host"] for m in self.others()] if self.config and (
                    self.me is not None) else []
            for host in hosts:
                if host not in running or not running[host].is_alive():
                    running[host] = threading.Thread(target=self.heartbeat_loop, args=(host,),
                                                     daemon=True, name="hb-" + host)
                    running[host].start()
            try:
                self.check_election()
            except Exception:  # pylint: disable=broad-except
                LOG.exception("election check")
            self.stop.wait(0.05)

    def check_election(self):
        with self.cv:
            if self.config is None:
                return
            me = self.my_member()
            now = time.monotonic()
            if self.state == rs.PRIMARY:
                seen = sum(1 for m in rs.voters(self.config)
                           if m["host"] == self.me or self.healthy(m["host"]))
                if seen >= rs.majority(self.config):
                    self.last_majority = now
                elif now - self.last_majority > self.election_timeout():
                    self._step_down_locked("can't see a majority of the set, relinquishing "
                                           "primary")
                return
            if self.state != rs.SECONDARY or me is None or not rs.electable(me):
                return
            if now < self.freeze_until or now < self.stepdown_until:
                return
            primary = self.primary_host()
            reason = None
            if primary is None:
                if self._jitter is None:
                    self._jitter = random.uniform(0, 0.15) * self.election_timeout()
                if now - self.primary_seen > self.election_timeout() + self._jitter:
                    reason = "electionTimeout"
            else:
                pm = rs.member(self.config, primary)
                if pm is not None and rs.priority(me) > rs.priority(pm):
                    p = self.peers[primary]
                    fresh = p.applied[0].time - self.applied()[0].time <= 2
                    rank = sum(1 for m in self.config["members"]
                               if rs.priority(m) > rs.priority(me) and
                               (m["host"] == self.me or self.healthy(m["host"])))
                    wait = (rank + 1) * self.hb_interval()
                    if self._takeover_since is None:
                        self._takeover_since = now
                    elif fresh and now - self._takeover_since >= wait:
                        reason = "priorityTakeover"
                else:
                    self._takeover_since = None
        if reason:
            self._jitter = None
            self._takeover_since = None
            self.run_election(reason)

    def run_election(self, reason, skip_dry_run=False):
        with self.cv:
            if self.state != rs.SECONDARY or self.config is None:
                return False
            me = self.my_member()
            if me is None or not rs.electable(me):
                return False
            cfg = self.config
            term = self.term + 1
            last = self.applied()
            req = {"replSetRequestVotes": 1, "setName": self.set_name, "term": Int64(term),
                   "candidateIndex": cfg["members"].index(me), "configVersion": cfg["version"],
                   "configTerm": Int64(cfg.get("term", -1)),
                   "lastAppliedOpTime": rs.optime_doc(last)}
            voters_ = [m["host"] for m in rs.voters(cfg) if m["host"] != self.me]
            need = rs.majority(cfg)
        LOG.info("running for election (%s), term %d", reason, term)
        if not skip_dry_run and self._votes(voters_, dict(req, dryRun=True), need - 1) + 1 < need:
            with self.cv:
                self.primary_seen = time.monotonic()
            return False
        with self.cv:
            if self.term >= term or self.state != rs.SECONDARY:
                return False
            self.term = term
            self.voted[term] = self.me
            self._save_state()
        granted = self._votes(voters_, dict(req, dryRun=False), need - 1) + 1
        with self.cv:
            if self.term != term or self.state != rs.SECONDARY:
                return False
            if granted >= need:
                self._become_primary()
                return True
            self.primary_seen = time.monotonic()
            return False

    def _votes(self, hosts, req, need):
        """Votes granted by ``hosts``, counted as they come (own connections, so a member that
        does not answer holds no heartbeat's connection up): returns once ``need`` are in, all
        have answered, or the election timeout has passed."""
        done = threading.Condition()
        state = {"granted": 0, "answered": 0, "terms": []}
        timeout = self.election_timeout()

        def ask(host):
            c = wire.Client(host, timeout=timeout, source=self.source, auth=self.internal)
            try:
                reply = c.command("admin", req, timeout=timeout)
            except (OSError, EOFError, wire.ProtocolError):
                reply = {}
            finally:
                c.close()
            with done:
                state["answered"] += 1
                state["granted"] += 1 if reply.get("voteGranted") else 0
                state["terms"].append(int(reply.get("term", -1)))
                done.notify_all()
        for h in hosts:
            threading.Thread(target=ask, args=(h,), daemon=True).start()
        deadline = time.monotonic() + timeout
        with done:
            while state["granted"] < need and state["answered"] < len(hosts):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                done.wait(left)
            granted, terms = state["granted"], list(state["terms"])
        with self.cv:
            if terms and max(terms) > self.term and not req.get("dryRun"):
                self._set_term(max(terms))
        return granted

    # ------------------------------------------------------------------ syncing

    def sync_loop(self):
        while not self.stop.is_set():
            self.wake_sync.wait(0.2)
            self.wake_sync.clear()
            with self.cv:
                if self.config is None or self.state not in (rs.SECONDARY, rs.STARTUP2,
                                                             rs.RECOVERING):
                    continue
                source = self._choose_source()
                self.sync_source = source or ""
                need_initial = not self.initial_synced
            if not source:
                continue
            try:
                if need_initial:
                    self.initial_sync(source)
                else:
                    self.tail(source)
            except (OSError, EOFError, wire.ProtocolError, MongoError) as exc:
                LOG.info("sync from %s: %s", source, exc)
                self.stop.wait(0.3)

    def _choose_source(self):
        primary = self.primary_host()
        if primary and primary != self.me:
            return primary
        mine = rs.optime_key(self.applied())
        best = None
        for p in self.peers.values():
            if self.healthy(p.host) and p.state in (rs.PRIMARY, rs.SECONDARY) and \
                    rs.optime_key(p.applied) > mine:
                if best is None or rs.optime_key(p.applied) > rs.optime_key(best.applied):
                    best = p
        return best.host if best else None

    def initial_sync(self, source):
        """STARTUP2: the source's data (every collection) and oplog from where the clone began."""
        LOG.info("initial sync from %s", source)
        c = wire.Client(source, timeout=10, source=self.source, auth=self.internal)
        try:
            top = c.command("local", {"find": "oplog.rs", "sort": {"$natural": -1}, "limit": 1,
                                      "$readPreference": {"mode": "secondaryPreferred"}})
            begin = (top.get("cursor") or {}).get("firstBatch") or []
            begin_ts = begin[0]["ts"] if begin else None
            dbs = c.command("admin", {"listDatabases": 1, "nameOnly": True,
                                      "$readPreference": {"mode": "secondaryPreferred"}})
            base = {}
            for db in dbs.get("databases") or []:
                if db["name"] == "local":
                    continue
                colls = self._all(c, db["name"], {"listCollections": 1, "nameOnly": True})
                for coll in colls:
                    docs = self._all(c, db["name"], {"find": coll["name"], "batchSize": 1000})
                    base["%s.%s" % (db["name"], coll["name"])] = docs
            entries = []
            if begin_ts is not None:
                entries = self._all(c, "local", {"find": "oplog.rs",
                                                 "filter": {"ts": {"$gte": begin_ts}},
                                                 "batchSize": 1000})
        finally:
            c.close()
        with self.cv:
            self.base, self.oplog = base, entries
            self._rewrite_oplog()
            self._save_base()
            self._rebuild()
            self.initial_synced = True
            if self.state == rs.STARTUP2:
                self.state = rs.SECONDARY
            self._save_state()
            self._topology_changed()
        LOG.info("initial sync done: %d collections, %d oplog entries", len(base), len(entries))

    @staticmethod
    def _all(c, db, cmd):
        reply = c.command(db, dict(cmd, **{"$readPreference": {"mode": "secondaryPreferred"}}))
        if not reply.get("ok"):
            raise MongoError(reply.get("code", 1), reply.get("errmsg", "initial sync failed"))
        cur = reply["cursor"]
        out = list(cur.get("firstBatch") or [])
        while cur.get("id"):
            reply = c.command(db, {"getMore": cur["id"], "collection": cur["ns"].split(".", 1)[1],
                                   "batchSize": 1000})
            cur = reply["cursor"]
            out += cur.get("nextBatch") or []
        return out

    def tail(self, source):
        with self.cv:
            last = self.oplog[-1] if self.oplog else None
        c = wire.Client(source, timeout=10, source=self.source, auth=self.internal)
        try:
            flt = {"ts": {"$gte": last["ts"]}} if last else {}
            reply = c.command("local", {"find": "oplog.rs", "filter": flt, "tailable": True,
                                        "awaitData": True, "batchSize": 500,
                                        "$readPreference": {"mode": "secondaryPreferred"}})
            if not reply.get("ok"):
                raise MongoError(reply.get("code", 1), reply.get("errmsg", ""))
            cur = reply["cursor"]
            batch = cur.get("firstBatch") or []
            if last is not None:
                if not batch or batch[0]["ts"] != last["ts"] or int(batch[0]["t"]) != int(
                        last["t"]):
                    self.rollback(c, source)
                    return
                batch = batch[1:]
            self.report_position(c)
            while not self.stop.is_set():
                if batch:
                    with self.cv:
                        if self.state not in (rs.SECONDARY, rs.RECOVERING):
                            return
                        self.oplog.extend(batch)
                        for e in batch:
                            self._apply(e)
                        self._append_oplog(batch)
                        self.cv.notify_all()
                    self.report_position(c)
                with self.cv:
                    if self.state != rs.SECONDARY or self._choose_source() != source:
                        return
                if not cur.get("id"):
                    return
                reply = c.command("local", {"getMore": cur["id"], "collection": "oplog.rs",
                                            "batchSize": 500, "maxTimeMS": 500,
                                            "term": Int64(self.term)}, timeout=5)
                if not reply.get("ok"):
                    raise MongoError(reply.get("code", 1), reply.get("errmsg", ""))
                cur = reply["cursor"]
                batch = cur.get("nextBatch") or []
        finally:
            c.close()

    def report_position(self, c):
        with self.cv:
            me = self.my_member()
            if me is None:
                return
            op = rs.optime_doc(self.applied())
            doc = {"replSetUpdatePosition": 1, "optimes": [{
                "memberId": me["_id"], "host": self.me, "appliedOpTime": op,
                "durableOpTime": op, "cfgver": self.config["version"]}]}
        try:
            c.command("admin", doc, timeout=5)
        except (OSError, EOFError, wire.ProtocolError):
            pass

    def rollback(self, c, source):
        """This member's oplog diverged from the source's: go back to the common point, undo
        what came after (written to dbpath/rollback/), then sync on (MongoDB: ROLLBACK)."""
        with self.cv:
            self.state = rs.ROLLBACK
            mine = list(self.oplog)
        LOG.warning("rollback against %s", source)
        theirs = {}
        try:
            reply = c.command("local", {"find": "oplog.rs", "batchSize": 100000,
                                        "$readPreference": {"mode": "secondaryPreferred"}})
            for e in (reply.get("cursor") or {}).get("firstBatch") or []:
                theirs[(e["ts"].time, e["ts"].inc, int(e["t"]))] = True
        finally:
            with self.cv:
                common = len(mine)
                while common > 0 and (mine[common - 1]["ts"].time, mine[common - 1]["ts"].inc,
                                      int(mine[common - 1]["t"])) not in theirs:
                    common -= 1
                undone = mine[common:]
                if undone:
                    rdir = self._path("rollback")
                    os.makedirs(rdir, exist_ok=True)
                    with open(os.path.join(rdir, "removed.%d.bson" % int(time.time())),
                              "ab") as fh:
                        for e in undone:
                            fh.write(bson.encode(e, codec_options=wire.OPTS))
                self.oplog = mine[:common]
                self._rewrite_oplog()
                self._rebuild()
                self.state = rs.SECONDARY
                self.cv.notify_all()
        LOG.warning("rolled back %d oplog entries to the common point", len(undone))

    def reply_common(self):
        """$clusterTime and operationTime, as a replica-set member adds to every reply."""
        if self.config is None:
            return {}
        return {"$clusterTime": {"clusterTime": self.last_ts, "signature": {
            "hash": Binary(b"\0" * 20), "keyId": Int64(0)}}, "operationTime": self.last_ts}

    def clear_newly_added(self):
        """The primary removes newlyAdded once the member is a SECONDARY (a reconfig of its
        own), when the current config is committed."""
        if self.state != rs.PRIMARY or self.config is None:
            return
        done = [x for x in self.config["members"] if x.get("newlyAdded") and
                self.healthy(x["host"]) and self.peers[x["host"]].state == rs.SECONDARY]
        if not done or not self.config_committed():
            return
        new = copy.deepcopy(self.config)
        for x in new["members"]:
            if x["host"] == done[0]["host"]:
                del x["newlyAdded"]
        new["version"] += 1
        new["term"] = Int64(self.term)
        self._install(new, "newlyAdded removal for %s" % done[0]["host"])

    def config_committed(self):
        """A majority of the config's voters have installed it (as heartbeats report)."""
        n = sum(1 for x in rs.voters(self.config) if x["host"] == self.me or (
            self.healthy(x["host"]) and self.peers[x["host"]].config_version >=
            self.config["version"]))
        return n >= rs.majority(self.config)

    # ------------------------------------------------------------------ commands

    def handle(self, db, cmd, conn):
        from .commands import COMMANDS  # pylint: disable=import-outside-toplevel
        name = next(iter(cmd))
        fn = COMMANDS.get(name) or COMMANDS.get(name.lower())
        if fn is None:
            raise MongoError(59, "no such command: '%s'" % name)
        if self.auth_on and conn.get("user") is None and name not in NO_AUTH:
            raise MongoError(13, "Command %s requires authentication" % name)
        out = fn(self, db, cmd, conn)
        out.setdefault("ok", 1.0)
        return out


# ---------------------------------------------------------------------- the server

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        m = self.server.member
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with m.cv:
            m.connections += 1
            conn = {"id": m.connections, "peer": "%s:%d" % self.client_address, "user": None}
        while not m.stop.is_set():
            try:
                rid, _to, op, body = wire.read_message(sock)
            except (EOFError, OSError, wire.ProtocolError):
                return
            try:
                if op == wire.OP_MSG:
                    flags, cmd = wire.parse_msg(body)
                    db = cmd.pop("$db", "admin")
                    reply = self.run(m, db, cmd, conn)
                    if flags & wire.MORE_TO_COME:
                        continue  # an unacknowledged write: no reply
                    streaming = bool(flags & wire.EXHAUST_ALLOWED) and reply.get("ok") and \
                        "topologyVersion" in cmd and \
                        next(iter(cmd)) in ("hello", "isMaster", "ismaster")
                    if not streaming:
                        sock.sendall(wire.build_msg(reply, response_to=rid))
                        continue
                    # the streaming protocol: replies with moreToCome, one per topology change
                    # or maxAwaitTimeMS, until the connection closes
                    while not m.stop.is_set():
                        out_id = wire.next_id()
                        sock.sendall(wire.build_msg(reply, response_to=rid,
                                                    flags=wire.MORE_TO_COME, request_id=out_id))
                        rid = out_id
                        cmd["topologyVersion"] = reply["topologyVersion"]
                        reply = self.run(m, db, cmd, conn)
                elif op == wire.OP_QUERY:
                    name, cmd = wire.parse_query(body)
                    if "$query" in cmd:
                        cmd = cmd["$query"]
                    reply = self.run(m, name.split(".")[0], cmd, conn) if name.endswith(
                        ".$cmd") else MongoError(2, "OP_QUERY is only supported for commands"
                                                 ).reply()
                    sock.sendall(wire.build_reply(reply, response_to=rid))
                else:
                    reply = MongoError(2, "unsupported op code %d" % op).reply()
                    sock.sendall(wire.build_msg(reply, response_to=rid))
            except wire.ProtocolError:
                return
            except (OSError, EOFError):
                return

    @staticmethod
    def run(m, db, cmd, conn):
        if not cmd:
            return MongoError(2, "no command in the message").reply()
        try:
            return m.handle(db, cmd, conn)
        except MongoError as exc:
            out = exc.reply()
            out.update(m.reply_common())
            return out
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            LOG.exception("command %s", next(iter(cmd)))
            return MongoError(2, "%s: %s" % (type(exc).__name__, exc)).reply()
        except Exception as exc:  # pylint: disable=broad-except
            # never a crash: whatever went wrong is the command's error
            LOG.exception("command %s", next(iter(cmd)))
            return MongoError(1, "%s: %s" % (type(exc).__name__, exc)).reply()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(me, set_name, dbpath, bind, port, key_file=None, users_file=None):
    member = Member(me, set_name, dbpath, source=bind if bind not in ("0.0.0.0", "") else None,
                    key_file=key_file, users_file=users_file, port=port)
    srv = Server((bind, port), Handler)
    srv.member = member
    for target in (member.topology_loop, member.sync_loop):
        threading.Thread(target=target, daemon=True, name=target.__name__).start()
    return member, srv


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cloudhop_lab.mongo.member")
    parser.add_argument("--host", help="this member's name:port in the config (default: found "
                                       "in the config as mongod finds itself)")
    parser.add_argument("--bind", "--bind_ip", default="0.0.0.0",
                        help="one address to listen on (mongod's --bind_ip, one address)")
    parser.add_argument("--bind_ip_all", action="store_const", dest="bind", const="0.0.0.0",
                        help="listen on every address (mongod's flag)")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--replSet", dest="repl_set", required=True)
    parser.add_argument("--dbpath", required=True)
    parser.add_argument("--keyFile", dest="key_file",
                        help="authentication on: members authenticate to each other with it")
    parser.add_argument("--users", help='JSON file {"<db>": {"<user>": "<password>"}}')
    parser.add_argument("--ready-file", help="written once the port listens (what the pod's "
                                             "tcpSocket readiness probe sees; lab runtime)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s " + (args.host or "") + " %(message)s")
    member, srv = serve(args.host, args.repl_set, args.dbpath, args.bind, args.port,
                        args.key_file, args.users)
    if args.ready_file:
        with open(args.ready_file, "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))

    def stop(*_):
        member.stop.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("waiting for connections on %s:%d", args.bind, args.port)
    srv.serve_forever()


if __name__ == "__main__":
    main()
