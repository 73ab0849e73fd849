"""The lab's MongoDB double (cloudhop_lab/mongo) against unmodified pymongo: members as real
processes on loopback addresses of clh-ctl (127.0.3.x:27017), replicating over TCP.

Every test asserts a behaviour of mongod from the MongoDB manual that a simpler server would
not have: the handshake drivers discover a replica set by, replica-set commands and their
errors, majority writes, retryable writes, step-downs, elections, partitions and rollbacks.
"""

import os
import socket
import struct
import subprocess
import sys
import time
import uuid

import bson
import pytest
from bson.binary import Binary, UUID_SUBTYPE
from bson.int64 import Int64

pymongo = pytest.importorskip("pymongo")
from pymongo import MongoClient, WriteConcern  # noqa: E402
from pymongo.errors import OperationFailure  # noqa: E402

from cloudhop_lab.mongo import wire  # noqa: E402

FAST = {"heartbeatIntervalMillis": 200, "electionTimeoutMillis": 1500, "heartbeatTimeoutSecs": 2}


class ReplicaSet:
    """Member processes of set rs0 on 127.0.3.<n>:27017, each with its own dbpath."""

    def __init__(self, base):
        self.base = base
        self.procs = {}
        self.clients = []
        self.directs = {}

    @staticmethod
    def host(n):
        return "127.0.3.%d:27017" % n

    def start(self, n, extra=()):
        host = self.host(n)
        dbpath = os.path.join(self.base, str(n))
        log = open(dbpath + ".log", "ab")  # pylint: disable=consider-using-with
        self.procs[n] = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "cloudhop_lab.mongo.member", "--host", host,
             "--bind", host.split(":")[0], "--port", "27017", "--replSet", "rs0",
             "--dbpath", dbpath, *extra], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host.split(":")[0], 27017), timeout=0.2).close()
                return host
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("member %s did not listen" % host)

    def kill(self, n, sig=9):
        proc = self.procs.pop(n, None)
        if proc is not None:
            proc.send_signal(sig)
            proc.wait(timeout=10)

    def stop_all(self):
        for c in self.clients + list(self.directs.values()):  # a client ends its sessions
            c.close()                                          # on a member as it closes
        for n in list(self.procs):
            self.kill(n, 15)

    def direct(self, n, **kw):
        """A direct connection to member n (one client per member and options, kept)."""
        key = (n, tuple(sorted(kw.items())))
        if key not in self.directs:
            self.directs[key] = MongoClient(self.host(n), directConnection=True,
                                            serverSelectionTimeoutMS=3000, **kw)
        return self.directs[key]

    def client(self, hosts=None, **kw):
        c = MongoClient(hosts or [self.host(n) for n in sorted(self.procs)], replicaset="rs0",
                        serverSelectionTimeoutMS=20000, **kw)
        self.clients.append(c)
        return c


def wait_for(pred, timeout=20, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def states(rset, n=1):
    st = rset.direct(n).admin.command("replSetGetStatus")
    return {m["name"]: m["stateStr"] for m in st["members"]}


def primary_of(rset, members):
    for n in members:
        try:
            if rset.direct(n).admin.command("hello").get("isWritablePrimary"):
                return n
        except pymongo.errors.PyMongoError:
            pass
    return None


@pytest.fixture
def rset(tmp_path):
    r = ReplicaSet(str(tmp_path))
    yield r
    r.stop_all()
    partition_heal()


def initiated(rset, members=(1, 2, 3), member_opts=None):
    member_opts = member_opts or {}
    for n in members:
        rset.start(n)
    cfg = {"_id": "rs0", "members": [dict({"_id": n, "host": rset.host(n)},
                                          **member_opts.get(n, {})) for n in members],
           "settings": dict(FAST)}
    assert rset.direct(members[0]).admin.command("replSetInitiate", cfg)["ok"] == 1
    assert wait_for(lambda: primary_of(rset, members)), "no primary elected"
    assert wait_for(lambda: sorted(states(rset, primary_of(rset, members)).values()) ==
                    ["PRIMARY"] + ["SECONDARY"] * (len(members) - 1))
    return cfg


def raw_command(host, doc, op=wire.OP_MSG):
    """One command over a fresh socket; the reply document."""
    name, port = host.split(":")
    with socket.create_connection((name, int(port)), timeout=5) as s:
        if op == wire.OP_MSG:
            s.sendall(wire.build_msg(doc))
        else:  # legacy OP_QUERY on admin.$cmd, as drivers send the first isMaster
            q = bson.encode(doc)
            body = struct.pack("<i", 0) + b"admin.$cmd\0" + struct.pack("<ii", 0, -1) + q
            s.sendall(struct.pack("<iiii", 16 + len(body), 7, 0, wire.OP_QUERY) + body)
        _rid, to, code, body = wire.read_message(s)
        if code == wire.OP_REPLY:
            assert struct.unpack("<i", body[16:20])[0] == 1  # numberReturned
            return {"op": "OP_REPLY", "responseTo": to, **bson.decode(body[20:])}
        return {"op": "OP_MSG", **wire.parse_msg(body)[1]}


# -------------------------------------------------------------------------- handshake

def test_handshake_over_op_query_and_op_msg_and_discovery_from_a_secondary(rset):
    rset.start(1)
    ghost = raw_command(rset.host(1), {"isMaster": 1}, op=wire.OP_QUERY)
    assert ghost["op"] == "OP_REPLY" and ghost["responseTo"] == 7
    assert ghost["ismaster"] is False and ghost["isreplicaset"] is True  # not initiated yet
    rset.start(2)
    rset.start(3)
    initiated_now = {"_id": "rs0", "members": [{"_id": n, "host": rset.host(n)}
                                               for n in (1, 2, 3)], "settings": dict(FAST)}
    rset.direct(1).admin.command("replSetInitiate", initiated_now)
    primary = wait_for(lambda: primary_of(rset, (1, 2, 3)))
    secondary = next(n for n in (1, 2, 3) if n != primary)
    wait_for(lambda: rset.direct(secondary).admin.command("hello").get("primary"))
    hello = raw_command(rset.host(secondary), {"hello": 1, "$db": "admin"})
    assert hello["op"] == "OP_MSG" and hello["isWritablePrimary"] is False
    assert hello["secondary"] is True and hello["setName"] == "rs0"
    assert hello["me"] == rset.host(secondary) and hello["primary"] == rset.host(primary)
    assert sorted(hello["hosts"]) == sorted(rset.host(n) for n in (1, 2, 3))
    legacy = raw_command(rset.host(primary), {"isMaster": 1}, op=wire.OP_QUERY)
    assert legacy["ismaster"] is True and legacy["electionId"] is not None
    assert legacy["maxWireVersion"] >= pymongo.common.MIN_SUPPORTED_WIRE_VERSION
    assert legacy["logicalSessionTimeoutMinutes"] == 30  # sessions: retryable writes on
    # pymongo, given only the secondary, finds the primary through the topology fields
    client = rset.client([rset.host(secondary)])
    client.app.items.insert_one({"x": 1})
    assert client.primary == (rset.host(primary).split(":")[0], 27017)


def test_unknown_commands_bad_values_and_malformed_messages_get_mongod_errors(rset):
    initiated(rset)
    p = primary_of(rset, (1, 2, 3))
    s = next(n for n in (1, 2, 3) if n != p)
    unknown = raw_command(rset.host(p), {"frobnicate": 1, "$db": "admin"})
    assert (unknown["ok"], unknown["code"], unknown["codeName"]) == (0, 59, "CommandNotFound")
    assert unknown["errmsg"] == "no such command: 'frobnicate'"
    with pytest.raises(OperationFailure) as exc:
        rset.direct(p).admin.command("replSetInitiate", {})
    assert exc.value.code == 23  # AlreadyInitialized
    with pytest.raises(pymongo.errors.NotPrimaryError) as exc:
        rset.direct(s).admin.command("replSetStepDown", 10)
    assert exc.value.details["code"] == 10107
    with pytest.raises(OperationFailure) as exc:
        rset.direct(p).admin.command("replSetFreeze", 10)
    assert exc.value.code == 95  # NotSecondary
    # garbage on the wire: the connection is dropped, the member serves on
    host, port = rset.host(p).split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(struct.pack("<iiii", 30, 1, 0, wire.OP_MSG) + b"\0\0\0\0\x05garbagegar")
        sock.settimeout(5)
        assert sock.recv(100) == b""
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(struct.pack("<iiii", 16, 1, 0, 1) + b"")  # an OP_REPLY sent to a server
        _r, _t, code, body = wire.read_message(sock)
        assert wire.parse_msg(body)[1]["code"] == 2
    assert rset.direct(p).admin.command("ping")["ok"] == 1


# -------------------------------------------------------------------------- writes

def test_majority_and_w1_writes_replicate_and_retryable_writes_apply_once(rset):
    initiated(rset)
    client = rset.client()
    coll = client.app.orders
    coll.insert_one({"_id": 1, "n": 1})  # the implicit default write concern: majority
    coll.with_options(write_concern=WriteConcern(w=1)).insert_one({"_id": 2})
    coll.update_one({"_id": 1}, {"$inc": {"n": 5}, "$set": {"s": "x"}})
    coll.update_one({"_id": 3}, {"$set": {"up": True}}, upsert=True)
    coll.delete_one({"_id": 2})
    assert sorted(d["_id"] for d in coll.find()) == [1, 3]
    assert coll.find_one({"_id": 1})["n"] == 6
    for n in (1, 2, 3):
        c = rset.direct(n, readPreference="secondaryPreferred")
        assert wait_for(lambda c=c: sorted(d["_id"] for d in c.app.orders.find()) == [1, 3])
    with pytest.raises(pymongo.errors.DuplicateKeyError):
        coll.insert_one({"_id": 1})
    # many documents and getMore
    coll.insert_many([{"k": i} for i in range(250)])
    assert len(list(coll.find({"k": {"$gte": 0}}).batch_size(50))) == 250
    assert coll.count_documents({"k": {"$lt": 100}}) == 100
    # _id equality and $in (mongod's _id index) find what the scan finds, and nothing else
    ks = [d["_id"] for d in coll.find({"k": {"$in": [3, 7, 11]}})]
    assert [d["k"] for d in coll.find({"_id": {"$in": ks + ["none", 99]}})] == [3, 7, 11]
    assert coll.find_one({"_id": ks[1]})["k"] == 7 and coll.find_one({"_id": "none"}) is None
    assert [d["_id"] for d in coll.find({"_id": {"$in": [3, 1]}})] == [1, 3]
    # the same retryable write sent twice (lsid + txnNumber), as a driver retries it
    p = primary_of(rset, (1, 2, 3))
    lsid = {"id": Binary(uuid.uuid4().bytes, UUID_SUBTYPE)}
    cmd = {"insert": "orders", "documents": [{"_id": "once"}], "lsid": lsid,
           "txnNumber": Int64(1), "$db": "app"}
    first = raw_command(rset.host(p), dict(cmd))
    again = raw_command(rset.host(p), dict(cmd))
    assert first["n"] == again["n"] == 1 and "writeErrors" not in again
    assert coll.count_documents({"_id": "once"}) == 1
    old = raw_command(rset.host(p), dict(cmd, txnNumber=Int64(0)))
    assert old["code"] == 225  # TransactionTooOld


def test_a_secondary_refuses_writes_with_the_label_drivers_retry_on(rset):
    initiated(rset)
    p = primary_of(rset, (1, 2, 3))
    s = next(n for n in (1, 2, 3) if n != p)
    lsid = {"id": Binary(uuid.uuid4().bytes, UUID_SUBTYPE)}
    retryable = raw_command(rset.host(s), {"insert": "c", "documents": [{"a": 1}],
                                           "lsid": lsid, "txnNumber": Int64(1), "$db": "app"})
    assert (retryable["code"], retryable["codeName"]) == (10107, "NotWritablePrimary")
    assert retryable["errorLabels"] == ["RetryableWriteError"]
    plain = raw_command(rset.host(s), {"insert": "c", "documents": [{"a": 1}], "$db": "app"})
    assert plain["code"] == 10107 and "errorLabels" not in plain
    read = raw_command(rset.host(s), {"find": "c", "$db": "app"})
    assert read["code"] == 13435  # NotPrimaryNoSecondaryOk
    ok = raw_command(rset.host(s), {"find": "c", "$db": "app",
                                    "$readPreference": {"mode": "secondaryPreferred"}})
    assert ok["ok"] == 1


def test_wtimeout_when_no_majority_can_acknowledge(rset):
    initiated(rset)
    client = rset.client()
    p = primary_of(rset, (1, 2, 3))
    for n in (1, 2, 3):
        if n != p:
            rset.kill(n)
    coll = client.app.get_collection("c", write_concern=WriteConcern(w="majority",
                                                                     wtimeout=500))
    with pytest.raises(pymongo.errors.WTimeoutError) as exc:
        coll.insert_one({"x": 1})
    assert exc.value.code == 64
    # w:1 is acknowledged by the primary alone
    client.app.get_collection("c", write_concern=WriteConcern(w=1)).insert_one({"y": 1})
    # the killed members are DOWN (state 8, health 0, the heartbeat's error) once their
    # heartbeats have failed for heartbeatTimeoutSecs

    def down():
        st = rset.direct(p).admin.command("replSetGetStatus")
        return [m for m in st["members"] if m["name"] != rset.host(p) and m["health"] == 0]
    gone = wait_for(lambda: len(down()) == 2 and down(), timeout=10)
    assert [(m["state"], m["stateStr"]) for m in gone] == [(8, "(not reachable/healthy)")] * 2
    assert all(m["lastHeartbeatMessage"] for m in gone)


# -------------------------------------------------------------------------- reconfig

def reconfig(client, change, **kw):
    cfg = client.admin.command("replSetGetConfig")["config"]
    cfg["version"] += 1
    change(cfg)
    return client.admin.command("replSetReconfig", cfg, **kw)


def test_reconfig_rules_of_mongod(rset):
    initiated(rset)
    client = rset.client()
    p = primary_of(rset, (1, 2, 3))
    others = [n for n in (1, 2, 3) if n != p]

    def members(cfg):
        return {m["host"]: m for m in cfg["members"]}
    # the version must grow
    cfg = client.admin.command("replSetGetConfig")["config"]
    with pytest.raises(OperationFailure) as exc:
        client.admin.command("replSetReconfig", cfg)
    assert exc.value.code == 103
    # a non-voting member must have priority 0
    with pytest.raises(OperationFailure) as exc:
        reconfig(client, lambda c: members(c)[rset.host(others[0])].update(votes=0))
    assert exc.value.code == 93 and "priority must be 0 when non-voting" in str(exc.value)
    # two voters made non-voters at once: refused
    with pytest.raises(OperationFailure) as exc:
        reconfig(client, lambda c: [members(c)[rset.host(n)].update(votes=0, priority=0)
                                    for n in others])
    assert exc.value.code == 93
    assert "can only add or remove at most 1 voting member" in str(exc.value)
    # the primary cannot get priority 0
    with pytest.raises(OperationFailure) as exc:
        reconfig(client, lambda c: members(c)[rset.host(p)].update(priority=0))
    assert exc.value.code == 104
    # one at a time is fine
    reconfig(client, lambda c: members(c)[rset.host(others[0])].update(votes=0, priority=0))
    # two new voting members at once: accepted, both newlyAdded until they are SECONDARY
    rset.start(4)
    rset.start(5)
    reconfig(client, lambda c: c["members"].extend(
        [{"_id": n, "host": rset.host(n), "priority": 0} for n in (4, 5)]))
    cfg = client.admin.command("replSetGetConfig")["config"]
    added = [m for m in cfg["members"] if m["_id"] in (4, 5)]
    assert all(m["votes"] == 1 and m["priority"] == 0 for m in added)
    assert wait_for(lambda: all(not m.get("newlyAdded") for m in client.admin.command(
        "replSetGetConfig")["config"]["members"]), timeout=30)
    st = states(rset, p)
    assert st[rset.host(4)] == st[rset.host(5)] == "SECONDARY"
    assert client.admin.command("replSetGetStatus")["votingMembersCount"] == 4
    # the new members hold the data written before they joined (initial sync)
    assert wait_for(lambda: rset.direct(5, readPreference="secondaryPreferred")
                    .admin.command("ping"))


def test_new_member_initial_sync_then_secondary(rset):
    initiated(rset)
    client = rset.client()
    client.app.c.insert_many([{"i": i} for i in range(100)])
    rset.start(4)
    seen = set()

    def watch():
        st = states(rset, primary_of(rset, (1, 2, 3)))
        seen.add(st.get(rset.host(4)))
        return st.get(rset.host(4)) == "SECONDARY"
    reconfig(client, lambda c: c["members"].append({"_id": 4, "host": rset.host(4),
                                                    "priority": 0, "votes": 0}))
    assert wait_for(watch, timeout=30), seen
    direct = rset.direct(4, readPreference="secondaryPreferred")
    assert direct.app.c.count_documents({}) == 100
    client.app.c.insert_one({"i": 100})
    assert wait_for(lambda: direct.app.c.count_documents({}) == 101)
    hello = direct.admin.command("hello")
    assert rset.host(4) in hello["passives"]  # priority 0: a passive member


# -------------------------------------------------------------------------- step-down, elections

def test_stepdown_needs_a_caught_up_electable_secondary_and_keeps_the_old_primary_out(rset):
    initiated(rset, members=(1, 2, 3), member_opts={1: {"priority": 3}})
    client = rset.client()
    assert wait_for(lambda: primary_of(rset, (1, 2, 3)) == 1)
    # no electable secondary: refused after secondaryCatchUpPeriodSecs
    reconfig(client, lambda c: [m.update(priority=0) for m in c["members"] if m["_id"] != 1])
    t0 = time.monotonic()
    with pytest.raises(OperationFailure) as exc:
        client.admin.command("replSetStepDown", 10, secondaryCatchUpPeriodSecs=1)
    assert exc.value.code == 262 and time.monotonic() - t0 >= 0.9
    assert primary_of(rset, (1, 2, 3)) == 1
    reconfig(client, lambda c: [m.update(priority=1) for m in c["members"] if m["_id"] != 1])
    client.app.c.insert_one({"before": True})
    t0 = time.monotonic()
    client.admin.command("replSetStepDown", 4, secondaryCatchUpPeriodSecs=2)
    new = wait_for(lambda: primary_of(rset, (2, 3)), timeout=10)
    handoff = time.monotonic() - t0
    assert new in (2, 3) and handoff < 3, handoff
    client.app.c.insert_one({"after": True})  # the driver finds the new primary
    # priority 3 would take over at once, but a stepped-down member waits out its seconds
    time.sleep(2)
    assert primary_of(rset, (1, 2, 3)) == new
    assert wait_for(lambda: primary_of(rset, (1, 2, 3)) == 1, timeout=15)  # then takes over
    assert client.app.c.count_documents({}) == 2


def test_priority_takeover_and_freeze(rset):
    initiated(rset)
    client = rset.client()
    p = primary_of(rset, (1, 2, 3))
    target = next(n for n in (1, 2, 3) if n != p)
    other = next(n for n in (1, 2, 3) if n not in (p, target))
    rset.direct(target).admin.command("replSetFreeze", 5)
    reconfig(client, lambda c: [m.update(priority=5) for m in c["members"]
                                if m["host"] == rset.host(target)])
    time.sleep(2.5)
    assert primary_of(rset, (1, 2, 3)) == p  # frozen: no takeover yet
    rset.direct(target).admin.command("replSetFreeze", 0)
    assert wait_for(lambda: primary_of(rset, (1, 2, 3)) == target, timeout=15)
    assert primary_of(rset, (p, other)) is None


def partition(ip_a, ip_b):
    for rule in (["-s", ip_a, "-d", ip_b], ["-s", ip_b, "-d", ip_a]):
        subprocess.run(["iptables", "-w", "-I", "INPUT", *rule, "-m", "comment", "--comment",
                        "cloudhop-mongo-test", "-j", "DROP"], check=True)


def partition_heal():
    out = subprocess.run(["iptables", "-w", "-S", "INPUT"], capture_output=True, text=True,
                         check=False).stdout
    for line in out.splitlines():
        if "cloudhop-mongo-test" in line:
            subprocess.run(["iptables", "-w"] + line.replace("-A", "-D", 1).split(),
                           check=False)


def test_a_partitioned_primary_steps_down_and_its_w1_write_is_rolled_back(rset):
    initiated(rset)
    client = rset.client()
    client.app.c.insert_one({"_id": "committed"})
    p = primary_of(rset, (1, 2, 3))
    others = [n for n in (1, 2, 3) if n != p]

    def ip(n):
        return rset.host(n).split(":")[0]
    old = rset.direct(p)
    for n in others:
        partition(ip(p), ip(n))
    # acknowledged by the old primary alone, at once: w:1
    old.app.get_collection("c", write_concern=WriteConcern(w=1)).insert_one({"_id": "w1"})
    with pytest.raises(pymongo.errors.PyMongoError):
        old.app.get_collection("c", write_concern=WriteConcern(w="majority", wtimeout=500)) \
            .insert_one({"_id": "majority"})
    new = wait_for(lambda: primary_of(rset, others), timeout=15)
    assert new in others
    assert wait_for(lambda: not old.admin.command("hello")["isWritablePrimary"], timeout=10)
    rset.client([rset.host(n) for n in others]).app.c.insert_one({"_id": "new-term"})
    partition_heal()
    # the old primary rolls its diverged writes back and follows the new primary
    assert wait_for(lambda: sorted(d["_id"] for d in rset.direct(
        p, readPreference="secondaryPreferred").app.c.find()) == ["committed", "new-term"],
        timeout=20)
    assert client.app.c.find_one({"_id": "w1"}) is None
    assert os.listdir(os.path.join(rset.base, str(p), "rollback"))


# -------------------------------------------------------------------------- community.mongodb

PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/community.mongodb.mongodb:
      login_port: 27017
  tasks:
    - name: Initiate the set (validate - three voting members)
      community.mongodb.mongodb_replicaset:
        login_host: 127.0.3.1
        replica_set: rs0
        members: [127.0.3.1:27017, 127.0.3.2:27017, 127.0.3.3:27017]
        election_timeout_millis: 1500
        heartbeat_timeout_secs: 2
      register: init

    - name: Again - already initiated
      community.mongodb.mongodb_replicaset:
        login_host: 127.0.3.2
        replica_set: rs0
        members: [127.0.3.1:27017, 127.0.3.2:27017, 127.0.3.3:27017]
      register: again

    - name: Wait for a healthy set
      community.mongodb.mongodb_status:
        login_host: 127.0.3.1
        replica_set: rs0
        validate: minimal
        poll: 30
        interval: 1
      register: status

    - name: What the server says of itself
      community.mongodb.mongodb_info:
        login_host: 127.0.3.1
      register: info

    - name: The primary, by hello
      ansible.builtin.set_fact:
        primary: "{{ (status.replicaset | dict2items | selectattr('value', 'equalto', 'PRIMARY')
                     | first).key }}"

    - name: Give 127.0.3.3 priority 5 (reconfigure with member dicts, on the primary)
      community.mongodb.mongodb_replicaset:
        login_host: "{{ primary.split(':')[0] }}"
        replica_set: rs0
        reconfigure: true
        members:
          - {host: 127.0.3.1:27017, priority: 1}
          - {host: 127.0.3.2:27017, priority: 1}
          - {host: 127.0.3.3:27017, priority: 5}
      register: reconfigured

    - name: Until 127.0.3.3 has taken over (priority takeover)
      community.mongodb.mongodb_status:
        login_host: 127.0.3.3
        replica_set: rs0
        validate: minimal
      register: after
      until: after.replicaset['127.0.3.3:27017'] == 'PRIMARY'
      retries: 30
      delay: 1

    - name: Step down a secondary - nothing to do
      community.mongodb.mongodb_stepdown:
        login_host: 127.0.3.1
        poll: 1
      register: on_secondary

    - name: Step the primary down
      community.mongodb.mongodb_stepdown:
        login_host: 127.0.3.3
        stepdown_seconds: 30
        secondary_catch_up: 5
      register: stepdown

    - name: Someone else is primary now
      community.mongodb.mongodb_status:
        login_host: 127.0.3.1
        replica_set: rs0
        validate: minimal
      register: final
      until: "'PRIMARY' in final.replicaset.values() and final.replicaset['127.0.3.3:27017'] == 'SECONDARY'"
      retries: 30
      delay: 1

    - name: Results
      ansible.builtin.copy:
        dest: "{{ out }}"
        content: "{{ {'init': init.changed, 'again': again.changed, 'status': status.replicaset,
                     'version': info.general.version, 'dbs': info.databases | list,
                     'reconfigured': reconfigured.changed, 'on_secondary': on_secondary.changed,
                     'stepdown': stepdown.changed, 'final': final.replicaset} | to_json }}"
        mode: "0600"
"""


def test_community_mongodb_modules_initiate_reconfigure_status_stepdown_info(rset, tmp_path):
    import json  # pylint: disable=import-outside-toplevel
    for n in (1, 2, 3):
        rset.start(n)
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    out = tmp_path / "out.json"
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           str(play), "-e", "out=%s" % out], capture_output=True, text=True,
                          timeout=300, check=False, cwd=repo,
                          env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(repo, "ansible.cfg")))
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["init"] is True and res["again"] is False
    assert sorted(res["status"].values()) == ["PRIMARY", "SECONDARY", "SECONDARY"]
    assert res["version"] == "7.0.14" and "admin" in res["dbs"]
    assert res["reconfigured"] is True
    assert res["on_secondary"] is False and res["stepdown"] is True
    assert res["final"]["127.0.3.3:27017"] == "SECONDARY"
    cfg = rset.direct(1).admin.command("replSetGetConfig")["config"]
    assert [m["priority"] for m in cfg["members"]] == [1, 1, 5]


# -------------------------------------------------------------------------- finding itself

class Forwarder:
    """A TCP forwarder (what a load balancer or a NAT is to the members): listen -> target."""

    def __init__(self, listen, target):
        import threading  # pylint: disable=import-outside-toplevel
        self.target = target
        self.srv = socket.create_server(listen, reuse_port=False)
        self.srv.settimeout(0.2)
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import threading  # pylint: disable=import-outside-toplevel
        while not self.stopped:
            try:
                a = self.srv.accept()[0]
            except OSError:
                continue
            try:
                b = socket.create_connection(self.target, timeout=2)
            except OSError:
                a.close()
                continue
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self.pipe, args=(x, y), daemon=True).start()

    @staticmethod
    def pipe(src, dst):
        try:
            src.settimeout(None)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.stopped = True
        self.srv.close()


def test_members_without_host_find_themselves_directly_and_behind_a_forwarder(tmp_path):
    """mongod needs no name of its own: it finds itself in a config by address and port, or
    (behind a load balancer, as cross-cluster members are) by asking each host's _isSelf."""
    procs, fwds, clients = [], [], []
    try:
        for n in (1, 2, 3):
            dbpath = str(tmp_path / str(n))
            log = open(dbpath + ".log", "ab")  # pylint: disable=consider-using-with
            procs.append(subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, "-m", "cloudhop_lab.mongo.member", "--bind", "127.0.3.1",
                 "--port", str(27100 + n), "--replSet", "rs0", "--dbpath", dbpath],
                stdout=log, stderr=log))
            fwds.append(Forwarder(("127.0.3.9", 27200 + n), ("127.0.3.1", 27100 + n)))
        for n in (1, 2, 3):
            assert wait_for(lambda n=n: _listens("127.0.3.1", 27100 + n), 10)
        direct = MongoClient("127.0.3.1:27101", directConnection=True,
                             serverSelectionTimeoutMS=3000)
        clients.append(direct)
        hello = direct.admin.command("hello")
        assert "me" not in hello and hello["info"] == "Does not have a valid replica set config"
        # no member of this config is member 1 (its _isSelf gives another instance id)
        with pytest.raises(OperationFailure) as err:
            direct.admin.command("replSetInitiate", {"_id": "rs0", "members": [
                {"_id": 2, "host": "127.0.3.9:27202"}]})
        assert err.value.code == 74
        behind = ["127.0.3.9:%d" % (27200 + n) for n in (1, 2, 3)]
        cfg = {"_id": "rs0", "settings": dict(FAST),
               "members": [{"_id": n, "host": h} for n, h in zip((1, 2, 3), behind)]}
        assert direct.admin.command("replSetInitiate", cfg)["ok"] == 1
        for n, host in zip((1, 2, 3), behind):
            c = MongoClient("127.0.3.1:%d" % (27100 + n), directConnection=True,
                            serverSelectionTimeoutMS=3000)
            clients.append(c)
            assert wait_for(lambda c=c, host=host: c.admin.command("hello").get("me") == host,
                            20), "member %d did not find itself as %s" % (n, host)
        rs_client = MongoClient(behind, replicaset="rs0", serverSelectionTimeoutMS=20000)
        clients.append(rs_client)
        rs_client.shop.orders.with_options(write_concern=WriteConcern(w="majority")).insert_one(
            {"_id": "behind"})
        st = rs_client.admin.command("replSetGetStatus")
        assert sorted(m["stateStr"] for m in st["members"]) == ["PRIMARY", "SECONDARY",
                                                                "SECONDARY"]
        assert sum(1 for m in st["members"] if m.get("self")) == 1
    finally:
        for c in clients:
            c.close()
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        for f in fwds:
            f.close()


def _listens(host, port):
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


# -------------------------------------------------------------------------- authentication

def test_scram_sha_256_authentication_between_members_and_for_clients(rset, tmp_path):
    import json  # pylint: disable=import-outside-toplevel
    key = tmp_path / "keyfile"
    key.write_text("cloudhop lab key file\n")
    key.chmod(0o600)
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"admin": {"app": "s3cret-lab-pw"}}))
    extra = ("--keyFile", str(key), "--users", str(users))
    for n in (1, 2, 3):
        rset.start(n, extra)
    anonymous = rset.direct(1)
    assert anonymous.admin.command("ping")["ok"] == 1  # allowed before authentication
    with pytest.raises(OperationFailure) as exc:
        anonymous.admin.command("replSetGetStatus")
    assert exc.value.code == 13  # Unauthorized
    wrong = rset.direct(1, username="app", password="wrong", authSource="admin")
    with pytest.raises(pymongo.errors.OperationFailure) as exc:
        wrong.admin.command("ping")
    assert exc.value.code == 18  # AuthenticationFailed
    admin = rset.direct(1, username="app", password="s3cret-lab-pw", authSource="admin")
    admin.admin.command("replSetInitiate", {"_id": "rs0", "members": [
        {"_id": n, "host": rset.host(n)} for n in (1, 2, 3)], "settings": dict(FAST)})
    client = rset.client(username="app", password="s3cret-lab-pw", authSource="admin")
    # the members see each other, authenticated (heartbeats with the key file): one primary, two
    # secondaries - waited for, as initiated() does, before the first write: right after
    # replSetInitiate a second election can follow under load (electionTimeout 1.5 s here), and
    # a write then meets NotWritablePrimary as it would on a real set
    assert wait_for(lambda: sorted(m["stateStr"] for m in client.admin.command(
        "replSetGetStatus")["members"]) == ["PRIMARY", "SECONDARY", "SECONDARY"])
    client.app.c.insert_one({"x": 1})  # majority: the members replicate, authenticated
    # every member asks for authentication, a secondary too
    with pytest.raises(OperationFailure) as exc:
        rset.direct(2, readPreference="secondaryPreferred").app.c.find_one()
    assert exc.value.code == 13
    reader = rset.direct(2, readPreference="secondaryPreferred", username="app",
                         password="s3cret-lab-pw", authSource="admin")
    assert wait_for(lambda: reader.app.c.find_one({"x": 1}) is not None)
