"""Replica-set plans for the move: every step is one reconfig mongod accepts after the one
before (checked here by the plan's own rules and, step by step, by the lab double's
implementation of mongod's: tests/lab/cloudhop_lab/mongo/replset.py), every member keeps its
fields, and a plan computed from a half-done state finishes what is left."""

import copy
import os
import sys

import pytest

from ansible_collections.cloudhop.k8s_migration.plugins.module_utils import replset_plan as rp

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "lab"))
replset = pytest.importorskip("cloudhop_lab.mongo.replset")
MongoError = pytest.importorskip("cloudhop_lab.mongo.errors").MongoError

OLD = ["10.2.0.200:27017", "10.2.0.201:27017", "10.2.0.202:27017"]
NEW = ["172.31.0.200:27017", "172.31.0.201:27017", "172.31.0.202:27017"]


def config(hosts, **extra):
    return [dict({"_id": i, "host": h, "priority": 1, "votes": 1,
                  "tags": {"env": "old"}, "hidden": False}, **extra.get(h, {}))
            for i, h in enumerate(hosts)]


def mongod_accepts(members, steps, primary):
    """Apply the steps as the double (mongod's rules) would: normalize, newlyAdded, the
    reconfig compatibility checks, and the primary's own electability; a stepdown moves the
    primary to an electable member of the receiving side."""
    cfg = replset.normalize({"_id": "rs0", "version": 1, "members": copy.deepcopy(members)},
                            "rs0", True)
    for step in steps:
        if step["action"] == "stepdown":
            assert step["host"] == primary
            cand = [m for m in cfg["members"] if replset.electable(m) and m["host"] != primary]
            assert cand, "no electable member to take over"
            primary = cand[0]["host"]
            continue
        raw = {"_id": "rs0", "version": cfg["version"] + 1, "members": step["members"],
               "settings": {"replicaSetId": cfg["settings"]["replicaSetId"]}}
        new = replset.normalize(raw, "rs0", False)
        replset.mark_newly_added(cfg, new)
        replset.check_reconfig(cfg, new, False)
        mine = replset.member(new, primary)
        assert mine is not None and replset.electable(mine), "primary not electable: %s" % step
        # the primary clears newlyAdded once the member is SECONDARY (the plan waits for it)
        for m in new["members"]:
            m.pop("newlyAdded", None)
        cfg = new
    return cfg, primary


def test_join_adds_one_non_voting_member_per_reconfig_keeping_every_field():
    members = config(OLD, **{OLD[1]: {"tags": {"env": "old", "rack": "b"}, "priority": 2}})
    steps = rp.join_steps(members, NEW, primary=OLD[0])
    assert [s["why"] for s in steps] == ["add %s (priority 0, votes 0)" % h for h in NEW]
    last = steps[-1]["members"]
    assert last[:3] == members  # untouched, every field kept
    assert last[3:] == [{"_id": 3 + i, "host": h, "priority": 0, "votes": 0}
                        for i, h in enumerate(NEW)]
    cfg, _primary = mongod_accepts(members, steps, OLD[0])
    assert len(replset.voters(cfg)) == 3


def test_join_resumes_and_rejects_hosts_without_a_port_or_twice():
    members = config(OLD) + [{"_id": 7, "host": NEW[0], "priority": 0, "votes": 0}]
    steps = rp.join_steps(members, NEW, primary=OLD[0])
    assert [s["members"][-1]["_id"] for s in steps] == [8, 9]  # the next free _id
    with pytest.raises(rp.PlanError, match="name:port"):
        rp.join_steps(members, ["172.31.0.200"])
    with pytest.raises(rp.PlanError, match="twice"):
        rp.join_steps(members, [NEW[1], NEW[1]])


def test_transfer_moves_one_vote_per_reconfig_then_priority_stepdown_and_the_old_primary():
    members = rp.join_steps(config(OLD), NEW)[-1]["members"]
    steps = rp.transfer_steps(members, OLD, NEW, primary=OLD[0])
    actions = [s["action"] for s in steps]
    assert actions == ["reconfig"] * 6 + ["stepdown", "reconfig"]
    # voters alternate 4, 3, 4, 3, 4 (never two votes changed at once)
    counts = [len(rp.voters(s["members"])) for s in steps if s["action"] == "reconfig"]
    assert counts == [4, 3, 4, 3, 4, 4, 3]
    # the new members cannot be elected before the priority step; the old primary keeps its
    # priority until it has stepped down
    for s in steps[:5]:
        assert all(m["priority"] == 0 for m in s["members"] if m["host"] in NEW)
    assert steps[6] == {"action": "stepdown", "host": OLD[0], "why": steps[6]["why"]}
    final = steps[-1]["members"]
    assert {m["host"]: (m["votes"], m["priority"]) for m in final} == dict(
        [(h, (0, 0)) for h in OLD] + [(h, (1, 1)) for h in NEW])
    assert all(m["tags"] == {"env": "old"} for m in final if m["host"] in OLD)
    cfg, primary = mongod_accepts(members, steps, OLD[0])
    assert primary in NEW and sorted(m["host"] for m in replset.voters(cfg)) == sorted(NEW)


def test_transfer_from_any_half_done_state_finishes_and_rollback_is_the_reverse():
    members = rp.join_steps(config(OLD), NEW)[-1]["members"]
    full = rp.transfer_steps(members, OLD, NEW, primary=OLD[0])
    for done in range(len(full)):
        # the state after `done` steps (a run killed there), and who is primary then
        state, primary = members, OLD[0]
        for s in full[:done]:
            if s["action"] == "stepdown":
                primary = NEW[0]
            else:
                state = s["members"]
        rest = rp.transfer_steps(state, OLD, NEW, primary=primary)
        cfg, primary = mongod_accepts(state, rest, primary)
        assert primary in NEW
        assert {m["host"]: (m["votes"], m["priority"]) for m in cfg["members"]} == dict(
            [(h, (0, 0.0)) for h in OLD] + [(h, (1, 1.0)) for h in NEW])
    # rollback: the same transfer the other way, then the new members removed
    back = rp.transfer_steps(full[-1]["members"], NEW, OLD, primary=NEW[0])
    cfg, primary = mongod_accepts(full[-1]["members"], back, NEW[0])
    assert primary in OLD
    gone = rp.remove_steps(back[-1]["members"], NEW, primary=primary)
    cfg = mongod_accepts(back[-1]["members"], gone, primary)[0]
    assert [m["host"] for m in cfg["members"]] == OLD
    assert rp.transfer_steps(full[-1]["members"], OLD, NEW, primary=NEW[1]) == []


def test_rollback_gives_the_old_members_their_own_priorities_back():
    before = [dict(m, priority=p) for m, p in zip(config(OLD), (2, 1, 0.5))]
    members = rp.join_steps(before, NEW)[-1]["members"]
    full = rp.transfer_steps(members, OLD, NEW, primary=OLD[0])
    mine = {OLD[0]: 2, OLD[1]: 1, OLD[2]: 0.5}
    back = rp.transfer_steps(full[-1]["members"], NEW, OLD, primary=NEW[0], priorities=mine)
    cfg, primary = mongod_accepts(full[-1]["members"], back, NEW[0])
    assert primary in OLD
    assert {m["host"]: (m["votes"], m["priority"]) for m in cfg["members"]} == dict(
        [(h, (1, float(mine[h]))) for h in OLD] + [(h, (0, 0.0)) for h in NEW])
    assert any("priority 0.5 for %s" % OLD[2] in s["why"] for s in back)
    # done: nothing left; a wrong priority or host is refused
    assert rp.transfer_steps(cfg["members"], NEW, OLD, primary=primary, priorities=mine) == []
    with pytest.raises(rp.PlanError, match="does not receive the votes"):
        rp.transfer_steps(members, NEW, OLD, primary=OLD[0], priorities={NEW[0]: 1})
    with pytest.raises(rp.PlanError, match="must be from 0 to 1000"):
        rp.transfer_steps(members, NEW, OLD, primary=OLD[0], priorities={OLD[0]: -1})


def test_remove_refuses_a_voter_and_the_checks_refuse_what_mongod_refuses():
    members = config(OLD)
    with pytest.raises(rp.PlanError, match="still votes"):
        rp.remove_steps(members, [OLD[2]])
    two = [dict(m, votes=0, priority=0) if m["host"] in OLD[1:] else m for m in members]
    with pytest.raises(rp.PlanError, match="at most one vote"):
        rp.check_step(members, two)
    with pytest.raises(MongoError):  # and mongod says the same
        mongod_accepts(members, [{"action": "reconfig", "members": two}], OLD[0])
    with pytest.raises(rp.PlanError, match="priority 0; step it down"):
        rp.check_step(members, [dict(m, priority=0) if m["host"] == OLD[0] else m
                                for m in members], primary=OLD[0])
    with pytest.raises(rp.PlanError, match="non-voting member must have priority 0"):
        rp.check_step(members, members[:2] + [dict(members[2], votes=0)])
    with pytest.raises(rp.PlanError, match="at most 7 voting"):
        rp.check_step(config(["h%d:1" % i for i in range(7)]),
                      config(["h%d:1" % i for i in range(8)]))
    with pytest.raises(rp.PlanError, match="keep its _id"):
        rp.check_step(members, [dict(members[0], _id=9)] + members[1:])
    with pytest.raises(rp.PlanError, match="not a member"):
        rp.transfer_steps(members, OLD, NEW, primary=OLD[0])
    with pytest.raises(rp.PlanError, match="port must be a number"):
        rp.parse_host("db:0")
