"""The lab's MongoDB double: insert latency at w:1 and w:majority (p50/p99), the time from a
step-down to a new writable primary (pymongo's view: replSetStepDown sent -> the next insert
acknowledged by the new primary), and memory per member (PSS). Three members in a namespace of
their own (``clh<instance>-mbench``, loopback 127.0.4.1-3), removed afterwards. Prints JSON."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from cloudhop_lab.dataplane import netns as nsx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("BENCH_QUICK") == "1"

MEASURE = r"""
import json, statistics, sys, time
from pymongo import MongoClient, WriteConcern
n, rounds = int(sys.argv[1]), int(sys.argv[2])
hosts = ["127.0.4.%d:27017" % i for i in (1, 2, 3)]
seed = MongoClient(hosts[0], directConnection=True)
seed.admin.command("replSetInitiate", {"_id": "rs0", "members": [
    {"_id": i, "host": h} for i, h in enumerate(hosts)], "settings": {
    "heartbeatIntervalMillis": 500, "electionTimeoutMillis": 2000, "heartbeatTimeoutSecs": 3}})
client = MongoClient(hosts, replicaset="rs0", serverSelectionTimeoutMS=30000)
client.app.warm.insert_one({"x": 1})
while len([m for m in client.admin.command("replSetGetStatus")["members"]
           if m["stateStr"] == "SECONDARY"]) < 2:
    time.sleep(0.1)
def pct(v, q):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(round(q / 100.0 * (len(v) - 1))))], 3)
out = {}
for name, wc in (("w1", WriteConcern(w=1)), ("majority", WriteConcern(w="majority"))):
    coll = client.app.get_collection("lat_" + name, write_concern=wc)
    ms = []
    for i in range(n):
        t0 = time.perf_counter()
        coll.insert_one({"i": i})
        ms.append((time.perf_counter() - t0) * 1000)
    out["insert_ms_" + name] = {"p50": pct(ms, 50), "p99": pct(ms, 99), "n": n}
took = []
for r in range(rounds):
    time.sleep(3)  # the last stepped-down member may stand again
    t0 = time.perf_counter()
    client.admin.command("replSetStepDown", 10, secondaryCatchUpPeriodSecs=5)
    client.app.failover.insert_one({"round": r})
    took.append(time.perf_counter() - t0)
out["stepdown_to_writable_s"] = {"median": round(statistics.median(took), 3),
                                 "runs": [round(t, 3) for t in took]}
print(json.dumps(out))
"""


def pss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid, encoding="utf-8") as fh:
        return sum(int(line.split()[1]) for line in fh if line.startswith("Pss:"))


def main():
    ns = nsx.ns_name("mbench")
    base = tempfile.mkdtemp(prefix="cloudhop-mbench-")
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests", "lab"))
    procs = []
    try:
        nsx.create(ns)
        for i in (1, 2, 3):
            host = "127.0.4.%d" % i
            procs.append(subprocess.Popen(  # pylint: disable=consider-using-with
                ["ip", "netns", "exec", ns, sys.executable, "-m", "cloudhop_lab.mongo.member",
                 "--host", host + ":27017", "--bind", host, "--port", "27017",
                 "--replSet", "rs0", "--dbpath", os.path.join(base, str(i))],
                stdout=subprocess.DEVNULL, stderr=open(  # pylint: disable=consider-using-with
                    os.path.join(base, "%d.log" % i), "wb"), env=env))
        time.sleep(1.0)
        out = json.loads(subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", MEASURE,
             "200" if QUICK else "2000", "1" if QUICK else "5"],
            check=True, capture_output=True, text=True, env=env, timeout=600).stdout)
        members = [int(p) for p in subprocess.run(["ip", "netns", "pids", ns],
                                                  capture_output=True, text=True,
                                                  check=False).stdout.split()]
        pss = [pss_kib(p) for p in members]
        out["pss_mib_per_member"] = round(sum(pss) / len(pss) / 1024.0, 1) if pss else None
        out["documents"] = 4 + (200 if QUICK else 2000) * 2
        print(json.dumps(out))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        nsx.kill_all(ns)
        nsx.remove(ns)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
